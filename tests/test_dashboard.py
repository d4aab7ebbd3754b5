"""GET /v1/stats and GET /dashboard on the real server (uvicorn on loopback) over a ledger
filled through real routed calls (stats_setup: the day is worked out by hand there)."""

from __future__ import annotations

import re
from contextlib import ExitStack
from html.parser import HTMLParser

import httpx
import pytest

from ai_router import stats
from ai_router.server.app import create_app
from ai_router.server.chart import BUDGET_COLOUR, SPEND_COLOUR
from routing_setup import ANTHROPIC, GOOGLE, PLANTED
from server_setup import running_server
from stats_setup import A, B, C, filled_ledger

API_KEY = "dashboard-test-key-SECRET-77"


@pytest.fixture(scope="module")
def filled(tmp_path_factory):
    with filled_ledger(tmp_path_factory.mktemp("dashboard")) as ledger:
        yield ledger


@pytest.fixture
def serve(filled, monkeypatch):
    """serve(api_key=None) → base URL of the app on a router whose clock says 12:00."""
    with ExitStack() as stack:
        yield lambda api_key=None: stack.enter_context(running_server(
            create_app(filled.router(monkeypatch), api_key=api_key, warm_up=False)))


class Page(HTMLParser):
    """Tables (id → rows of cell text) and SVG elements (tag, attributes) of a page."""

    def __init__(self, html: str):
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.svg: list[tuple[str, dict[str, str]]] = []
        self.scripts = 0
        self._table: str | None = None
        self._in_cell = False
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        a = {k: v or "" for k, v in attrs}
        if tag == "table":
            self._table = a.get("id", "")
            self.tables[self._table] = []
        elif tag == "tr" and self._table is not None:
            self.tables[self._table].append([])
        elif tag in ("td", "th"):
            self._in_cell = True
            self.tables[self._table][-1].append("")
        elif tag in ("svg", "path", "line", "text", "rect"):
            self.svg.append((tag, a))
        self.scripts += tag == "script"

    def handle_endtag(self, tag):
        if tag == "table":
            self._table = None
        elif tag in ("td", "th"):
            self._in_cell = False

    def handle_data(self, data):
        if self._in_cell:
            self.tables[self._table][-1][-1] += data


def test_v1_stats_is_the_stats_report_in_dollars(filled, serve, monkeypatch):
    url = serve()

    body = httpx.get(f"{url}/v1/stats", timeout=20).json()

    router = filled.router(monkeypatch)
    expected = stats.to_json(stats.report(
        filled.db, filled.config, router.prices, stats.keyed_providers(router.config, router.keys),
        now=filled.now))
    router.ledger.close()
    assert body == expected
    assert body["today"]["spent_usd"] == (A + B + C) / 1e6
    assert body["today"]["savings"]["reference"] == ANTHROPIC


def test_the_days_parameter_sets_the_window_and_a_bad_one_is_a_400(filled, serve):
    url = serve()

    assert httpx.get(f"{url}/v1/stats?days=1").json()["recent"]["spent_usd"] == (
        A + B + C) / 1e6
    for bad in ("0", "367", "seven", "-1"):
        r = httpx.get(f"{url}/v1/stats", params={"days": bad})
        assert r.status_code == 400
        assert r.json()["error"]["param"] == "days"
    assert httpx.get(f"{url}/dashboard?days=0").status_code == 400


def test_the_dashboard_shows_todays_numbers_and_the_spend_against_the_budget(filled, serve):
    url = serve()

    r = httpx.get(f"{url}/dashboard?days=3", timeout=20)

    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    page = Page(r.text)
    providers = {row[0]: row[1:] for row in page.tables["by-provider"][1:]}
    assert providers["google"] == ["1", "$0.001600", "1", "$0.001600"]
    assert providers["anthropic"] == ["1", "$0.000900", "2", "$0.006900"]
    summary = {row[0]: row[1:] for row in page.tables["summary"][1:]}
    assert summary["fallbacks"] == ["1", "1"] and summary["downgrades"] == ["1", "1"]
    assert summary["saved"] == ["$0.005040", "$0.005040"]
    assert page.tables["by-day"][1] == [filled.day(0), "$0.002870"]
    assert page.tables["by-capability"][0][0] == "capability"
    assert GOOGLE in r.text and "$0.002870" in r.text

    # the chart: a budget line across the whole day, and the spend line below it
    budget = next(a for tag, a in page.svg if a.get("class") == "budget")
    spend = next(a for tag, a in page.svg if a.get("class") == "spend")
    assert budget["stroke"] == BUDGET_COLOUR and spend["stroke"] == SPEND_COLOUR
    assert budget["y1"] == budget["y2"] and float(budget["x2"]) - float(budget["x1"]) > 800
    levels = [float(v) for v in re.findall(r"V([\d.]+)", spend["d"])]
    assert len(levels) == 4  # 09:00, 10:00, 11:00 and now (local calls cost nothing)
    assert levels[0] > levels[1] > levels[2] == levels[3] > float(budget["y1"])
    assert page.scripts == 0


def test_the_page_loads_nothing_from_elsewhere_and_says_so_in_its_headers(filled, serve):
    url = serve()

    r = httpx.get(f"{url}/dashboard")

    csp = r.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src" not in csp
    assert r.headers["cache-control"] == "no-store"
    assert r.headers["referrer-policy"] == "no-referrer"
    assert not re.search(r"""(src|href)\s*=|<link|<script|@import|url\(""", r.text)
    assert PLANTED not in r.text and PLANTED not in httpx.get(f"{url}/v1/stats").text


def test_with_an_api_key_the_page_and_the_stats_need_the_bearer_header(filled, serve):
    url = serve(api_key=API_KEY)

    for path in ("/dashboard", "/v1/stats"):
        assert httpx.get(f"{url}{path}").status_code == 401
        assert httpx.get(f"{url}{path}", params={"key": API_KEY}).status_code == 401
        assert httpx.get(f"{url}{path}", headers={
            "authorization": "Bearer wrong"}).status_code == 401
        ok = httpx.get(f"{url}{path}", headers={"authorization": f"Bearer {API_KEY}"})
        assert ok.status_code == 200
        assert API_KEY not in ok.text
