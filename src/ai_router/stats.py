"""Where the money went: `ai-router stats` (GET /v1/stats and /dashboard show the same report).

Pure queries over the ledger's SQLite file, on a connection of their own inside one read
transaction (WAL: a consistent snapshot that never blocks the router's writers). Spend comes
from `calls`, every billed call including fallbacks' and cut streams', so totals match
`ai-router budget`; how each request was asked and routed comes from `outcomes`
(`outcomes.id` = `calls.request_id`). Money stays integer micro-USD until `to_json` turns
every `*_micro` into `*_usd`.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections import Counter
from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import typer
from rich.console import Console
from rich.table import Table

from . import prices as pricing
from .cli import ConfigOpt, app, clean_errors, out
from .clock import budget_day, day_elapsed_share, system_clock, zone
from .config import Config, Keys, ModelConfig, Price, load_config
from .errors import LedgerError
from .ledger import open_database, to_micro, usd
from .schema import TIERS, Usage

BILLED = "c.status IN ('settled', 'expired')"  # what `Ledger.snapshot` counts as spent
TIER_CHANGE = re.compile(r"^tier (\w+) → (\w+):")  # the guard's wording for a tier override
SAVINGS_METHOD = (
    "every billed call's own token counts (input, cache reads and writes, output) priced at "
    "{ref}, the strongest configured model (highest tier, then quality, among paid models "
    "with a known price, those with a key first; a tie goes to the cheaper), minus what the "
    "call really "
    "cost. Calls with no reported usage (expired, or held after a failure) count the same on "
    "both sides. Token counts differ a little between tokenizers, so this is an estimate.")


# -- reading the file ----------------------------------------------------------------------

@contextmanager
def reading(path: Path) -> Iterator[sqlite3.Connection]:
    """The ledger file, read-only, in one read transaction. A missing file is first created
    empty by the ledger's own opener, so a fresh machine shows zeros, not an error."""
    try:
        if not path.exists():
            open_database(path).close()
        conn = sqlite3.connect(path, timeout=30, isolation_level=None)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA query_only=ON")
        conn.execute("BEGIN")
    except sqlite3.Error as e:
        raise LedgerError(f"cannot read the budget ledger at {path}: {e}") from e
    try:
        yield conn
    finally:
        conn.close()


def _rows(conn: sqlite3.Connection, sql: str, params: tuple = ()) -> list[dict[str, Any]]:
    try:
        return [dict(r) for r in conn.execute(sql, params)]
    except sqlite3.Error as e:
        raise LedgerError(f"cannot read the budget ledger: {e}") from e


# -- the report ----------------------------------------------------------------------------

def keyed_providers(config: Config, keys: Keys) -> set[str]:
    return {name for name, p in config.providers.items() if keys.has(p.key_env)}


def strongest(config: Config, prices: Mapping[str, Price | None],
              keyed: Collection[str]) -> ModelConfig | None:
    """The model that "always the strongest" would have used (see SAVINGS_METHOD)."""
    priced = [m for m in config.models.values() if prices.get(m.ref) is not None]
    paid = [m for m in priced if not m.is_local]
    usable = [m for m in paid if m.provider in keyed] or paid or priced
    return max(usable, default=None, key=lambda m: (
        TIERS.index(m.tier), m.quality, -prices[m.ref].output))  # type: ignore[union-attr]


def report(path: Path, config: Config, prices: Mapping[str, Price | None],
           keyed: Collection[str], *, now: float, days: int = 7) -> dict[str, Any]:
    """Today and the last `days` days (today included), from the ledger file at `path`."""
    tz = zone(config.budget.timezone)
    today = budget_day(now, tz)
    first = (date.fromisoformat(today) - timedelta(days=days - 1)).isoformat()
    ref = strongest(config, prices, keyed)
    with reading(path) as conn:
        return {
            "generated_at": datetime.fromtimestamp(now, tz).isoformat(timespec="seconds"),
            "timezone": config.budget.timezone, "limit_micro": to_micro(config.budget.daily_usd),
            "today": _period(conn, config, ref, today, today),
            "recent": {"days": days, **_period(conn, config, ref, first, today)},
            "by_day": _by_day(conn, first, today),
            "today_series": _series(conn, tz, today, now),
            "savings_method": SAVINGS_METHOD.format(ref=ref.ref if ref else "(none priced)"),
        }


def _period(conn: sqlite3.Connection, config: Config, ref: ModelConfig | None,
            first: str, last: str) -> dict[str, Any]:
    span = (first, last)

    def spend_by(column: str) -> list[dict[str, Any]]:
        return _rows(conn, f"SELECT {column} AS name, count(*) AS calls,"
                     " sum(coalesce(c.cost_micro, 0)) AS cost_micro FROM calls c"
                     " LEFT JOIN outcomes o ON o.id = c.request_id"
                     f" WHERE c.day BETWEEN ? AND ? AND {BILLED} GROUP BY 1 ORDER BY 3 DESC, 1",
                     span)

    asked = _rows(conn, "SELECT count(*) AS requests, coalesce(sum(status = 'ok'), 0) AS served,"
                  " coalesce(sum(status != 'ok'), 0) AS errors,"
                  # answered by a later candidate after the first one(s) failed
                  " coalesce(sum(status = 'ok' AND attempts > 0), 0) AS fallbacks"
                  " FROM outcomes WHERE day BETWEEN ? AND ?", span)[0]
    overrides = _rows(conn, "SELECT overrides FROM outcomes WHERE day BETWEEN ? AND ?", span)
    downgraded, steps = _downgrades(r["overrides"] for r in overrides)
    by_model = spend_by("c.model")
    return {"first_day": first, "last_day": last,
            "spent_micro": sum(r["cost_micro"] for r in by_model), **asked,
            "downgrades": downgraded, "downgrade_steps": steps,
            "by_provider": spend_by("c.provider"), "by_model": by_model,
            "by_capability": spend_by("coalesce(o.capability, 'unrecorded')"),
            "savings": _savings(conn, config, ref, span)}


def _downgrades(overrides: Iterator[str | None]) -> tuple[int, dict[str, int]]:
    """Requests whose tier the guard lowered (budget, pace, offline mode, the client's own
    choice, a capability that never needs more), and how often each step happened."""
    requests, steps = 0, Counter[str]()
    for raw in overrides:
        lowered = [f"{m[1]} → {m[2]}" for o in json.loads(raw or "[]")
                   if (m := TIER_CHANGE.match(o)) and m[1] in TIERS and m[2] in TIERS
                   and TIERS.index(m[2]) < TIERS.index(m[1])]
        requests += bool(lowered)
        steps.update(lowered)
    return requests, dict(steps.most_common())


def _savings(conn: sqlite3.Connection, config: Config, ref: ModelConfig | None,
             span: tuple[str, str]) -> dict[str, Any] | None:
    if ref is None:
        return None
    provider = config.providers[ref.provider]
    actual = strongest_cost = compared = 0
    for r in _rows(conn, "SELECT c.cost_micro, c.input_tokens, c.cache_read_tokens,"
                   " c.cache_write_tokens, c.output_tokens, c.reasoning_tokens FROM calls c"
                   f" WHERE c.day BETWEEN ? AND ? AND {BILLED}", span):
        cost = r.pop("cost_micro") or 0
        usage = Usage(**{k: v or 0 for k, v in r.items()})
        actual += cost
        if usage.input_tokens or usage.output_tokens:
            strongest_cost += pricing.cost_micro(ref, provider, usage)
            compared += 1
        else:
            strongest_cost += cost
    return {"reference": ref.ref, "actual_micro": actual, "strongest_micro": strongest_cost,
            "saved_micro": strongest_cost - actual, "calls_compared": compared}


def _by_day(conn: sqlite3.Connection, first: str, last: str) -> list[dict[str, Any]]:
    spent = {r["day"]: r["cost_micro"] for r in _rows(
        conn, "SELECT c.day, sum(coalesce(c.cost_micro, 0)) AS cost_micro FROM calls c"
        f" WHERE c.day BETWEEN ? AND ? AND {BILLED} GROUP BY 1", (first, last))}
    start, end = date.fromisoformat(first), date.fromisoformat(last)
    days = [(start + timedelta(days=i)).isoformat() for i in range((end - start).days + 1)]
    return [{"day": d, "cost_micro": spent.get(d, 0)} for d in days]


def _series(conn: sqlite3.Connection, tz: ZoneInfo, today: str,
            now: float) -> list[dict[str, Any]]:
    """Cumulative spend through today: midnight, one point per paid call (when it was
    settled), and now. `share` is the part of the local day gone (0–1)."""
    points = [{"time": "00:00:00", "share": 0.0, "spent_micro": 0}]
    total = 0
    for r in _rows(conn, "SELECT coalesce(c.settled_at, c.created_at) AS ts, c.cost_micro"
                   f" FROM calls c WHERE c.day = ? AND {BILLED} AND c.cost_micro > 0"
                   " ORDER BY ts", (today,)):
        total += r["cost_micro"]
        points.append(_point(r["ts"], tz, today, total, points[-1]["share"]))
    points.append(_point(now, tz, today, total, points[-1]["share"]))
    return points


def _point(ts: float, tz: ZoneInfo, today: str, spent: int, floor: float) -> dict[str, Any]:
    # a call reserved before midnight and settled after it still belongs to its own day
    share = day_elapsed_share(ts, tz) if budget_day(ts, tz) == today else 1.0
    return {"time": datetime.fromtimestamp(ts, tz).strftime("%H:%M:%S"),
            "share": round(max(share, floor), 6), "spent_micro": spent}


def to_json(value: Any) -> Any:
    """The report for JSON readers: each `x_micro` becomes `x_usd`."""
    if isinstance(value, dict):
        return {(k[:-6] + "_usd" if k.endswith("_micro") else k):
                (usd(v) if k.endswith("_micro") and isinstance(v, int) else to_json(v))
                for k, v in value.items()}
    if isinstance(value, list):
        return [to_json(v) for v in value]
    return value


# -- the command ---------------------------------------------------------------------------

@app.command()
@clean_errors
def stats(days: Annotated[int, typer.Option(min=1, max=366,
                                             help="how many days back, today included")] = 7,
          as_json: Annotated[bool, typer.Option("--json", help="one JSON object")] = False,
          config: ConfigOpt = None) -> None:
    """Where the money went: spend per provider, model and capability (today and the last
    DAYS days), requests, fallbacks, downgrades, and savings versus always using the
    strongest model."""
    from .router import _price_table

    cfg = load_config(config)
    found = report(cfg.database_path(), cfg, _price_table(cfg), keyed_providers(cfg, Keys.load()),
                   now=system_clock(), days=days)
    if as_json:
        print(json.dumps(to_json(found), ensure_ascii=False))
        return
    render(out, found)


def dollars(micro: int) -> str:
    """Cents once there are dollars, down to the micro-dollar for small amounts."""
    places = 2 if micro >= 1_000_000 or micro == 0 else 4 if micro >= 10_000 else 6
    return f"${usd(micro):.{places}f}"


def render(console: Console, r: dict[str, Any]) -> None:
    today, recent, window = r["today"], r["recent"], f"last {r['recent']['days']} days"
    console.print(f"[bold]{today['first_day']}[/bold] ({r['timezone']})  spent "
                  f"{dollars(today['spent_micro'])} of {dollars(r['limit_micro'])} today",
                  highlight=False)
    summary = Table("", "today", window)
    for label, key in (("requests", "requests"), ("served", "served"), ("errors", "errors"),
                       ("fallbacks", "fallbacks"), ("downgrades", "downgrades")):
        summary.add_row(label, str(today[key]), str(recent[key]))
    summary.add_row("spent", dollars(today["spent_micro"]), dollars(recent["spent_micro"]))
    if today["savings"]:
        summary.add_row(f"cost on {today['savings']['reference']}",
                        dollars(today["savings"]["strongest_micro"]),
                        dollars(recent["savings"]["strongest_micro"]))
        summary.add_row("[green]saved[/green]", dollars(today["savings"]["saved_micro"]),
                        dollars(recent["savings"]["saved_micro"]))
    console.print(summary)
    for title in ("provider", "model", "capability"):
        console.print(_breakdown(title, today[f"by_{title}"], recent[f"by_{title}"], window))
    console.print("spent per day: " + " · ".join(
        f"{d['day'][5:]} {dollars(d['cost_micro'])}" for d in r["by_day"]), highlight=False)
    if recent["downgrade_steps"]:
        console.print(f"downgrades ({window}): " + ", ".join(
            f"{step} ×{n}" for step, n in recent["downgrade_steps"].items()), highlight=False)
    console.print(f"[dim]savings: {r['savings_method']}[/dim]", highlight=False)


def _breakdown(title: str, today: list[dict[str, Any]], recent: list[dict[str, Any]],
               window: str) -> Table:
    """One row per name, today's numbers beside the window's, dearest first."""
    now = {row["name"]: row for row in today}
    table = Table(title, "calls today", "$ today", f"calls {window}", f"$ {window}")
    for row in recent:
        t = now.get(row["name"], {"calls": 0, "cost_micro": 0})
        table.add_row(row["name"], str(t["calls"]), dollars(t["cost_micro"]), str(row["calls"]),
                      dollars(row["cost_micro"]))
    return table
