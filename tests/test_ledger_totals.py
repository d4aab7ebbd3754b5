"""The per-day running totals always equal the sums over the day's calls rows."""

from __future__ import annotations

import random
import sqlite3
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlite_utils import Database

from ai_router.ledger import Ledger, migrations
from ai_router.schema import Usage

UTC = ZoneInfo("UTC")


class FakeClock:
    def __init__(self, when: datetime):
        self.t = when.timestamp()

    def __call__(self) -> float:
        return self.t


def summed(path) -> dict[str, tuple[int, int]]:
    """Spent and reserved per day, the slow way: over every calls row."""
    conn = sqlite3.connect(path)
    rows = conn.execute(
        "SELECT day, coalesce(sum(CASE WHEN status IN ('settled','expired') THEN cost_micro"
        " END), 0), coalesce(sum(CASE WHEN status='reserved' THEN reserved_micro END), 0)"
        " FROM calls GROUP BY day").fetchall()
    conn.close()
    return {day: (spent, reserved) for day, spent, reserved in rows}


def kept(path) -> dict[str, tuple[int, int]]:
    conn = sqlite3.connect(path)
    rows = conn.execute("SELECT day, spent_micro, reserved_micro FROM day_totals").fetchall()
    conn.close()
    return {day: (spent, reserved) for day, spent, reserved in rows}


def test_totals_follow_reserve_settle_release_and_expiry_across_midnight(tmp_path):
    clock = FakeClock(datetime(2026, 11, 26, 23, 0, tzinfo=UTC))
    ledger = Ledger(tmp_path / "l.db", UTC, ttl_s=600, clock=clock)
    rng = random.Random(7)
    held = []
    for _ in range(300):
        clock.t += rng.uniform(0, 30)  # ~75 minutes: crosses midnight, some holds expire
        res = ledger.reserve(rng.randint(0, 5_000), 10**9, provider="p", model="p/m",
                             request_id="r")
        assert res is not None
        held.append(res)
        if rng.random() < 0.7:
            res = held.pop(rng.randrange(len(held)))
            if rng.random() < 0.25:
                ledger.release(res)
            else:  # settled late sometimes, after it expired: the actual cost replaces it
                ledger.settle(res, rng.randint(0, res.amount_micro), Usage(input_tokens=1))
    ledger.snapshot(10**9)
    statuses = {s for (s,) in ledger.db.conn.execute("SELECT DISTINCT status FROM calls")}
    assert statuses == {"reserved", "settled", "released", "expired"}, "not every path ran"
    assert len(summed(tmp_path / "l.db")) == 2
    assert kept(tmp_path / "l.db") == summed(tmp_path / "l.db")
    snap = ledger.snapshot(10**9)
    assert (snap.spent_micro, snap.reserved_micro) == summed(tmp_path / "l.db")[snap.day]


def test_settle_reports_what_is_left_and_reserve_what_it_leaves(tmp_path):
    ledger = Ledger(tmp_path / "l.db", UTC)
    first = ledger.reserve(400, 1000, provider="p", model="p/m", request_id="a")
    second = ledger.reserve(500, 1000, provider="p", model="p/m", request_id="b")
    assert first is not None and second is not None
    assert (first.remaining_micro, second.remaining_micro) == (600, 100)
    after = ledger.settle(first, 150, None, limit_micro=1000)
    assert (after.spent_micro, after.reserved_micro, after.remaining_micro) == (150, 500, 350)
    assert ledger.settle(second, 500, None) is None  # no limit given: nothing to report
    assert ledger.snapshot(1000).remaining_micro == 350


def test_an_existing_ledger_is_back_filled_when_the_totals_arrive(tmp_path):
    path = tmp_path / "old.db"
    db = Database(sqlite3.connect(path, isolation_level=None))
    migrations.apply(db, stop_before="m003_day_totals")  # a ledger from before the totals
    rows = [("a", "2026-11-25", "settled", 300, 250), ("b", "2026-11-26", "settled", 900, 900),
            ("c", "2026-11-26", "reserved", 200, None), ("d", "2026-11-26", "released", 50, 0),
            ("e", "2026-11-26", "expired", 70, 70)]
    db.conn.executemany(
        "INSERT INTO calls (id, day, request_id, provider, model, status, reserved_micro,"
        " cost_micro, created_at, expires_at) VALUES (?, ?, 'r', 'p', 'p/m', ?, ?, ?, 0, 1e12)",
        rows)
    db.conn.close()

    clock = FakeClock(datetime(2026, 11, 26, 12, 0, tzinfo=UTC))
    ledger = Ledger(path, UTC, clock=clock)
    assert kept(path) == {"2026-11-25": (250, 0), "2026-11-26": (970, 200)}
    assert ledger.reserve(831, 2000, provider="p", model="p/m", request_id="f") is None
    assert ledger.reserve(830, 2000, provider="p", model="p/m", request_id="g") is not None
