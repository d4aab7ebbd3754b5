"""`GET /dashboard` (one self-contained HTML page) and `GET /v1/stats` (the same report as
JSON): where the money went, from the ledger file (see `ai_router.stats`).

Access is the server's own: loopback by default, and when AI_ROUTER_API_KEY is set every
request, this page included, needs `Authorization: Bearer <key>` (BearerAuth). A key in
the URL (`?key=`) is deliberately not accepted: URLs end up in access logs, browser
history and Referer headers. docs/database.md says how to open the page then. The page
has no script and loads nothing (a strict CSP says so), so it also works saved to a file.
"""

from __future__ import annotations

import asyncio
from html import escape
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from ..router import Router
from ..stats import dollars, keyed_providers, report, to_json
from .chart import BUDGET_COLOUR, PACE_COLOUR, SPEND_COLOUR, spend_chart
from .failures import ApiError

routes = APIRouter()
PAGE_HEADERS = {
    "content-security-policy": "default-src 'none'; style-src 'unsafe-inline'; img-src data:;"
                               " base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "cache-control": "no-store", "referrer-policy": "no-referrer",
    "x-content-type-options": "nosniff"}
REFRESH_S = 60


@routes.get("/v1/stats")
async def stats_json(request: Request) -> dict[str, Any]:
    return to_json(await _report(request))


@routes.get("/dashboard", response_class=HTMLResponse)
async def dashboard(request: Request) -> HTMLResponse:
    return HTMLResponse(page(await _report(request)), headers=PAGE_HEADERS)


async def _report(request: Request) -> dict[str, Any]:
    router: Router = request.app.state.router
    days = _days(request.query_params.get("days", "7"))
    return await asyncio.to_thread(
        report, router.ledger.path, router.config, router.prices,
        keyed_providers(router.config, router.keys), now=router.clock(), days=days)


def _days(raw: str) -> int:
    if not raw.isdigit() or not 1 <= int(raw) <= 366:
        raise ApiError(400, "days must be a whole number from 1 to 366", param="days")
    return int(raw)


# -- the page ------------------------------------------------------------------------------

def page(r: dict[str, Any]) -> str:
    today, recent = r["today"], r["recent"]
    window = f"last {recent['days']} days"
    limit, spent = r["limit_micro"], today["spent_micro"]
    saved = today["savings"]
    cards = [
        ("spent today", dollars(spent), f"of {dollars(limit)} ({_share(spent, limit)})"),
        ("left today", dollars(max(0, limit - spent)), "budget resets at local midnight"),
        ("saved today", dollars(saved["saved_micro"]) if saved else "–",
         f"vs always {saved['reference']}" if saved else "no priced model configured"),
        ("requests today", str(today["requests"]),
         f"fallbacks {today['fallbacks']} · downgrades {today['downgrades']} · "
         f"errors {today['errors']}"),
    ]
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="refresh" content="{REFRESH_S}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>ai-router · where the money went</title>
<style>{STYLE}</style></head>
<body>
<header><h1>ai-router · where the money went</h1>
<p class="sub">{escape(today['first_day'])} · {escape(r['timezone'])} time ·
updated {escape(r['generated_at'][11:19])}</p></header>
<section class="cards">{''.join(_card(*c) for c in cards)}</section>
<section><h2>Spend through today</h2>
<p class="legend"><span style="background:{SPEND_COLOUR}"></span>spent
<span style="background:{BUDGET_COLOUR}"></span>budget limit
<span class="dashed" style="border-color:{PACE_COLOUR}"></span>even pace</p>
{spend_chart(r['today_series'], limit)}</section>
<section class="grid">
{_summary(today, recent, window)}
{_breakdown('provider', today, recent, window)}
{_breakdown('model', today, recent, window)}
{_breakdown('capability', today, recent, window)}
{_by_day(r['by_day'])}
</section>
<footer><p><b>Savings</b>: {escape(r['savings_method'])}</p>
<p>Fallbacks: requests answered by a later candidate after a failure. Downgrades: requests
whose tier the guard lowered ({escape(_steps(recent['downgrade_steps']))}).
The same numbers: <code>ai-router stats</code>, <code>GET /v1/stats</code>.
This page refreshes every {REFRESH_S} s.</p></footer>
</body></html>
"""


def _card(title: str, value: str, note: str) -> str:
    return (f'<div class="card"><div class="t">{escape(title)}</div>'
            f'<div class="v">{escape(value)}</div><div class="n">{escape(note)}</div></div>')


def _summary(today: dict[str, Any], recent: dict[str, Any], window: str) -> str:
    rows = [(k, str(today[k]), str(recent[k]))
            for k in ("requests", "served", "errors", "fallbacks", "downgrades")]
    rows.append(("spent", dollars(today["spent_micro"]), dollars(recent["spent_micro"])))
    if today["savings"]:
        rows.append((f"on {today['savings']['reference']}",
                     dollars(today["savings"]["strongest_micro"]),
                     dollars(recent["savings"]["strongest_micro"])))
        rows.append(("saved", dollars(today["savings"]["saved_micro"]),
                     dollars(recent["savings"]["saved_micro"])))
    return _table("summary", ["", "today", window], rows)


def _breakdown(title: str, today: dict[str, Any], recent: dict[str, Any], window: str) -> str:
    now = {row["name"]: row for row in today[f"by_{title}"]}
    rows = []
    for row in recent[f"by_{title}"]:
        t = now.get(row["name"], {"calls": 0, "cost_micro": 0})
        rows.append((row["name"], str(t["calls"]), dollars(t["cost_micro"]), str(row["calls"]),
                     dollars(row["cost_micro"])))
    return _table(f"by-{title}", [title, "calls today", "$ today", f"calls {window}",
                                  f"$ {window}"], rows)


def _by_day(days: list[dict[str, Any]]) -> str:
    return _table("by-day", ["day", "spent"], [(d["day"], dollars(d["cost_micro"]))
                                               for d in reversed(days)])


def _table(name: str, head: list[str], rows: list[tuple[str, ...]]) -> str:
    th = "".join(f"<th>{escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>"
                   for row in rows) or f'<tr><td colspan="{len(head)}">nothing yet</td></tr>'
    return f'<table id="{name}"><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>'


def _share(part: int, whole: int) -> str:
    return f"{part / whole:.1%}" if whole else "no budget"


def _steps(steps: dict[str, int]) -> str:
    return ", ".join(f"{s} ×{n}" for s, n in steps.items()) or "none lately"


STYLE = """
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",sans-serif;margin:16px 28px;color:#1f2328;
 background:#fff}
h1{font-size:20px;margin:0}h2{font-size:15px;margin:14px 0 2px}
.sub{color:#57606a;margin:2px 0 10px}
.cards{display:flex;gap:12px;flex-wrap:wrap}
.card{border:1px solid #d0d7de;border-radius:8px;padding:8px 12px;min-width:190px;flex:1}
.card .t{color:#57606a;font-size:12px;text-transform:uppercase;letter-spacing:.04em}
.card .v{font-size:22px;font-weight:600}.card .n{color:#57606a;font-size:12px}
.legend{margin:0 0 4px;color:#57606a;font-size:12px}
.legend span{display:inline-block;width:18px;height:4px;margin:0 5px 2px 12px;
 vertical-align:middle}
.legend span.dashed{height:0;border-top:2px dashed}
svg{max-width:100%;height:auto;font-size:11px}
.grid{display:flex;flex-wrap:wrap;gap:14px;align-items:flex-start}
table{border-collapse:collapse;font-size:13px}
th,td{border-bottom:1px solid #eaeef2;padding:3px 8px;text-align:right}
th:first-child,td:first-child{text-align:left}th{color:#57606a;font-weight:600}
footer{color:#57606a;font-size:12px;max-width:920px;margin-top:14px}
"""
