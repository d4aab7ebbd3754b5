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
    return datetime.fromtimestamp(ts, tz).date().isoformat()


def day_elapsed_share(ts: float, tz: ZoneInfo) -> float:
    """How much of the local day has passed, 0–1 (DST days are 23 or 25 hours long)."""
    now = datetime.fromtimestamp(ts, tz)
    start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    end = (start + timedelta(days=1, hours=2)).replace(hour=0)  # next local midnight
    # timestamps, not aware-datetime subtraction: Python ignores DST between same-zone datetimes
    return (ts - start.timestamp()) / (end.timestamp() - start.timestamp())


def system_clock() -> float:
    return time.time()
