"""The stats queries on a ledger filled through real routed calls (stats_setup: the day is
worked out by hand there). Money in micro-USD."""

from __future__ import annotations

import sqlite3

import pytest

from ai_router import stats
from ai_router.config import Price
from ai_router.router import _price_table
from routing_setup import ANTHROPIC, DEEPSEEK, GOOGLE, LOCAL, OLLAMA
from stats_setup import (
    A_STRONG,
    C_STRONG,
    D_STRONG,
    DAILY_USD,
    E_STRONG,
    A,
    B,
    C,
    Filled,
    Y,
    filled_ledger,
)

EVERY_PROVIDER = {"deepseek", "anthropic", "google", "local", "ollama"}


@pytest.fixture(scope="module")
def filled(tmp_path_factory):
    with filled_ledger(tmp_path_factory.mktemp("stats")) as ledger:
        yield ledger


def report_of(filled: Filled, days: int = 7, keyed=EVERY_PROVIDER) -> dict:
    return stats.report(filled.db, filled.config, _price_table(filled.config), keyed,
                        now=filled.now, days=days)


def spend(rows: list[dict]) -> dict[str, tuple[int, int]]:
    return {r["name"]: (r["calls"], r["cost_micro"]) for r in rows}


def test_spend_per_provider_model_and_capability_matches_the_day_worked_by_hand(filled):
    today = report_of(filled)["today"]

    assert today["spent_micro"] == A + B + C == 2870
    assert spend(today["by_provider"]) == {
        "google": (1, C), "anthropic": (1, B), "deepseek": (1, A), "local": (2, 0)}
    assert spend(today["by_model"]) == {
        GOOGLE: (1, C), ANTHROPIC: (1, B), DEEPSEEK: (1, A), LOCAL: (2, 0)}
    assert spend(today["by_capability"]) == {"writing": (1, C), "coding": (2, A + B),
                                             "chat": (2, 0)}
    assert [r["name"] for r in today["by_provider"]] == ["google", "anthropic", "deepseek",
                                                         "local"]  # dearest first


def test_the_week_adds_yesterday_and_the_spend_agrees_with_the_ledgers_own_snapshot(
        filled, monkeypatch):
    report = report_of(filled)
    recent = report["recent"]

    assert (recent["first_day"], recent["last_day"]) == (filled.day(6), filled.day(0))
    assert recent["spent_micro"] == Y + A + B + C
    assert spend(recent["by_provider"])["anthropic"] == (2, Y + B)
    assert spend(recent["by_capability"])["writing"] == (2, Y + C)
    by_hand = {filled.day(0): A + B + C, filled.day(1): Y}
    assert report["by_day"] == [{"day": filled.day(n), "cost_micro": by_hand.get(filled.day(n), 0)}
                                for n in range(6, -1, -1)]
    router = filled.router(monkeypatch)
    try:
        assert router.ledger.snapshot(router.limit_micro).spent_micro == report["today"][
            "spent_micro"]
    finally:
        router.ledger.close()


def test_requests_errors_fallbacks_and_downgrades_come_from_the_outcome_log(filled):
    report = report_of(filled)
    today, recent = report["today"], report["recent"]

    # D was answered by local after deepseek's 503; E was cut from strong to local offline;
    # F failed everywhere (an error, not a fallback)
    assert {k: today[k] for k in ("requests", "served", "errors", "fallbacks",
                                  "downgrades")} == {
        "requests": 6, "served": 5, "errors": 1, "fallbacks": 1, "downgrades": 1}
    assert today["downgrade_steps"] == {"strong → local": 1}
    assert (recent["requests"], recent["served"]) == (7, 6)


def test_savings_price_every_call_at_the_strongest_model_for_the_same_usage(filled):
    report = report_of(filled)

    assert report["today"]["savings"] == {
        "reference": ANTHROPIC, "actual_micro": A + B + C,
        "strongest_micro": A_STRONG + B + C_STRONG + D_STRONG + E_STRONG,
        "saved_micro": 7910 - 2870, "calls_compared": 5}
    assert report["recent"]["savings"]["saved_micro"] == 5040  # yesterday was on it already
    assert report["recent"]["savings"]["strongest_micro"] == 7910 + Y
    assert ANTHROPIC in report["savings_method"]


def test_spend_through_today_is_cumulative_from_midnight_to_now(filled):
    report = report_of(filled)

    assert [(p["time"], p["share"], p["spent_micro"]) for p in report["today_series"]] == [
        ("00:00:00", 0.0, 0), ("09:00:00", 0.375, A), ("10:00:00", round(10 / 24, 6), A + B),
        ("11:00:00", round(11 / 24, 6), A + B + C), ("12:00:00", 0.5, A + B + C)]
    assert report["limit_micro"] == round(DAILY_USD * 1e6)


def test_a_one_day_window_is_today_alone(filled):
    report = report_of(filled, days=1)

    assert report["recent"]["spent_micro"] == report["today"]["spent_micro"] == A + B + C
    assert report["by_day"] == [{"day": filled.day(0), "cost_micro": A + B + C}]


def test_the_strongest_model_is_a_paid_one_with_a_key_when_there_is_one(filled):
    prices = _price_table(filled.config)

    assert stats.strongest(filled.config, prices, EVERY_PROVIDER).ref == ANTHROPIC
    # no anthropic key: the best paid model left (deepseek, quality 5)
    assert stats.strongest(filled.config, prices, {"deepseek", "google", "local"}).ref == (
        DEEPSEEK)
    # no paid key at all: still the strongest configured, so savings mean something
    assert stats.strongest(filled.config, prices, {"local", "ollama"}).ref == ANTHROPIC
    # a tie goes to the cheaper model, so savings are never overstated
    tie = {**prices, DEEPSEEK: Price(input=9, output=90)}
    config = filled.config.model_copy(update={"models": {
        ref: m.model_copy(update={"tier": "cheap", "quality": 5})
        if ref in (DEEPSEEK, GOOGLE) else m for ref, m in filled.config.models.items()
        if ref != ANTHROPIC}})
    assert stats.strongest(config, tie, EVERY_PROVIDER).ref == GOOGLE
    locals_only = filled.config.model_copy(update={"models": {
        ref: m for ref, m in filled.config.models.items() if ref in (LOCAL, OLLAMA)}})
    assert stats.strongest(locals_only, prices, EVERY_PROVIDER).ref == LOCAL


def test_a_missing_ledger_file_reports_zeros_instead_of_failing(filled, tmp_path):
    report = stats.report(tmp_path / "fresh.db", filled.config, _price_table(filled.config),
                          EVERY_PROVIDER, now=filled.now)

    assert (tmp_path / "fresh.db").exists()
    assert report["today"]["spent_micro"] == report["recent"]["requests"] == 0
    assert report["today"]["savings"]["saved_micro"] == 0
    assert [p["spent_micro"] for p in report["today_series"]] == [0, 0]


def test_reading_the_stats_never_writes_to_the_ledger(filled):
    before = filled.db.read_bytes()
    with stats.reading(filled.db) as conn, pytest.raises(sqlite3.OperationalError,
                                                         match="readonly"):
        conn.execute("DELETE FROM calls")
    report_of(filled)
    assert filled.db.read_bytes() == before


def test_json_turns_every_micro_amount_into_dollars(filled):
    as_json = stats.to_json(report_of(filled))

    assert as_json["today"]["spent_usd"] == 0.00287
    assert as_json["today"]["savings"]["saved_usd"] == 0.00504
    assert as_json["limit_usd"] == DAILY_USD
    assert as_json["today_series"][-1]["spent_usd"] == 0.00287
    assert "_micro" not in str(as_json)
