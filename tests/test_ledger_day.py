"""The budget day is the calendar day in the configured zone; crashes are settled safely."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from ai_router.clock import day_elapsed_share, zone
from ai_router.ledger import Ledger
from ai_router.schema import Usage

TOKYO = ZoneInfo("Asia/Tokyo")


class FakeClock:
    def __init__(self, when: datetime):
        self.t = when.timestamp()

    def __call__(self) -> float:
        return self.t


def test_budget_resets_at_local_midnight_not_utc_midnight(tmp_path):
    clock = FakeClock(datetime(2026, 11, 26, 23, 59, 0, tzinfo=TOKYO))  # 14:59 UTC
    ledger = Ledger(tmp_path / "l.db", TOKYO, clock=clock)
    res = ledger.reserve(900, 1000, provider="p", model="p/m", request_id="a")
    ledger.settle(res, 900, Usage(input_tokens=10, output_tokens=5))
    assert ledger.reserve(200, 1000, provider="p", model="p/m", request_id="b") is None

    clock.t += 61  # 00:00:01 in Tokyo, still 26 Nov in UTC
    snap = ledger.snapshot(1000)
    assert snap.day == "2026-11-27"
    assert snap.spent_micro == 0 and snap.remaining_micro == 1000
    assert ledger.reserve(200, 1000, provider="p", model="p/m", request_id="c") is not None


def test_a_call_that_crosses_midnight_is_charged_to_the_day_it_started(tmp_path):
    clock = FakeClock(datetime(2026, 11, 26, 23, 59, 50, tzinfo=TOKYO))
    ledger = Ledger(tmp_path / "l.db", TOKYO, clock=clock)
    res = ledger.reserve(500, 1000, provider="p", model="p/m", request_id="a")
    clock.t += 30  # the answer arrives after midnight
    ledger.settle(res, 400, None)
    assert ledger.snapshot(1000).spent_micro == 0  # the new day starts clean
    assert ledger.spend_by_model("2026-11-26")[0]["cost_micro"] == 400


def test_orphaned_reservation_expires_at_its_full_amount(tmp_path):
    clock = FakeClock(datetime(2026, 11, 26, 12, 0, tzinfo=TOKYO))
    crashed = Ledger(tmp_path / "l.db", TOKYO, ttl_s=600, clock=clock)
    crashed.reserve(300, 1000, provider="p", model="p/m", request_id="a")  # never settled
    crashed.close()

    restarted = Ledger(tmp_path / "l.db", TOKYO, ttl_s=600, clock=clock)
    assert restarted.snapshot(1000).reserved_micro == 300  # still held while it may be live
    clock.t += 601
    snap = restarted.snapshot(1000)
    assert (snap.spent_micro, snap.reserved_micro) == (300, 0)  # the conservative side


def test_released_reservation_costs_nothing(tmp_path):
    ledger = Ledger(tmp_path / "l.db", zone("UTC"))
    res = ledger.reserve(700, 1000, provider="p", model="p/m", request_id="a")
    ledger.release(res)
    snap = ledger.snapshot(1000)
    assert (snap.spent_micro, snap.reserved_micro, snap.remaining_micro) == (0, 0, 1000)


def test_free_local_calls_are_allowed_when_the_money_is_gone(tmp_path):
    ledger = Ledger(tmp_path / "l.db", zone("UTC"))
    ledger.settle(ledger.reserve(1000, 1000, provider="p", model="p/m", request_id="a"), 1000, None)
    assert ledger.reserve(1, 1000, provider="p", model="p/m", request_id="b") is None
    assert ledger.reserve(0, 1000, provider="embedded", model="e/m", request_id="c") is not None


def test_database_file_is_readable_only_by_its_owner(tmp_path):
    Ledger(tmp_path / "l.db", zone("UTC")).close()
    assert (tmp_path / "l.db").stat().st_mode & 0o077 == 0


def test_day_share_on_a_daylight_saving_day_uses_real_hours():
    berlin = ZoneInfo("Europe/Berlin")
    noon = datetime(2026, 3, 29, 12, 0, tzinfo=berlin).timestamp()  # a 23-hour day
    assert abs(day_elapsed_share(noon, berlin) - 11 / 23) < 1e-9


def test_the_day_looked_up_once_per_day_is_the_same_as_worked_out_afresh():
    import random
    from datetime import timedelta

    from ai_router.clock import budget_day

    berlin = ZoneInfo("Europe/Berlin")
    start = datetime(2026, 3, 27, tzinfo=berlin).timestamp()  # over the spring DST change
    moments = [start + random.uniform(0, 4 * 86400) for _ in range(2000)]
    moments += [datetime(2026, 3, 29, tzinfo=berlin).timestamp() + d for d in (-1e-6, 0, 1e-6)]
    for ts in moments:  # in random order, so the cached day is often the wrong one
        now = datetime.fromtimestamp(ts, berlin)
        midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
        following = (midnight + timedelta(days=1, hours=2)).replace(hour=0)
        share = (ts - midnight.timestamp()) / (following.timestamp() - midnight.timestamp())
        assert budget_day(ts, berlin) == now.date().isoformat()
        assert day_elapsed_share(ts, berlin) == share
