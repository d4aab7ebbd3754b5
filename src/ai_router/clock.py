"""Time and the budget day. The day is the calendar day in the configured time zone."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from .errors import ConfigError

Clock = Callable[[], float]  # epoch seconds; injectable so tests can cross midnight


def zone(name: str) -> ZoneInfo:
    """An IANA zone, or the machine's own zone for "local" (DST-aware, not a fixed offset)."""
    if name != "local":
        try:
            return ZoneInfo(name)
        except Exception as e:
            raise ConfigError(f"budget.timezone: unknown time zone {name!r}") from e
    try:
        with Path("/etc/localtime").open("rb") as f:
            return ZoneInfo.from_file(f, key="localtime")
    except OSError:
        return ZoneInfo("UTC")


def budget_day(ts: float, tz: ZoneInfo) -> str:
    return _day(ts, tz)[2]


def day_elapsed_share(ts: float, tz: ZoneInfo) -> float:
    """How much of the local day has passed, 0–1 (DST days are 23 or 25 hours long)."""
    start, end, _ = _day(ts, tz)
    return (ts - start) / (end - start)


_days: dict[ZoneInfo, tuple[float, float, str]] = {}  # per zone: the last day looked up


def _day(ts: float, tz: ZoneInfo) -> tuple[float, float, str]:
    """The local day around `ts`: its start and end (timestamps) and its date, worked out
    once per day and zone (every request asks, twice)."""
    day = _days.get(tz)
    if day is None or not day[0] <= ts < day[1]:
        now = datetime.fromtimestamp(ts, tz)
        start = now.replace(hour=0, minute=0, second=0, microsecond=0)
        end = (start + timedelta(days=1, hours=2)).replace(hour=0)  # next local midnight
        # timestamps, not aware-datetime subtraction: Python ignores DST between same-zone
        # datetimes
        day = _days[tz] = (start.timestamp(), end.timestamp(), now.date().isoformat())
    return day


def system_clock() -> float:
    return time.time()
