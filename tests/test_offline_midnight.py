"""Offline-only mode: when the day's money is gone the local model answers and the result
says so; at local midnight paid models come back by themselves."""

from __future__ import annotations

from datetime import UTC, datetime

from ai_router.schema import ChatRequest
from routing_setup import DEEPSEEK, LOCAL, ledger_rows, make_router
from upstreams.openai_wire import completion_body, json_reply, usage_body


class Clock:
    def __init__(self, when: datetime):
        self.t = when.timestamp()

    def __call__(self) -> float:
        return self.t


async def test_spent_day_goes_offline_and_comes_back_online_at_local_midnight(
        up, tmp_path, monkeypatch):
    up.reset()
    up.deepseek.handler = json_reply(completion_body("paid", usage=usage_body(12, 5)))
    up.local.handler = json_reply(completion_body("local", usage=usage_body(12, 5)))
    clock = Clock(datetime(2026, 11, 26, 23, 58, tzinfo=UTC))  # the test config's zone is UTC
    router, _ = make_router(tmp_path, monkeypatch, up.urls, clock=clock, daily_usd=0.01)
    ask = lambda: router.ask(ChatRequest.from_prompt("hello", model="cheap"))  # noqa: E731
    try:
        first = await ask()
        assert first.model.ref == DEEPSEEK and not first.offline
        # the rest of the day's money goes elsewhere (another process, say)
        hold = router.ledger.reserve(first.remaining_micro, router.limit_micro,
                                     provider="other", model="other/m", request_id="x")
        router.ledger.settle(hold, first.remaining_micro, None)

        spent = await ask()
        assert spent.model.ref == LOCAL and spent.offline and spent.cost_micro == 0
        assert any("budget is spent" in o for o in spent.overrides)

        clock.t += 3 * 60  # 00:01 the next day
        back = await ask()
        assert back.model.ref == DEEPSEEK and not back.offline
        assert back.remaining_micro < router.limit_micro  # a fresh day, this call charged
    finally:
        await router.aclose()


async def test_a_call_that_crosses_midnight_is_logged_on_the_day_it_started(
        up, tmp_path, monkeypatch):
    up.reset()
    clock = Clock(datetime(2026, 11, 26, 23, 59, 30, tzinfo=UTC))
    reply = json_reply(completion_body("late answer", usage=usage_body(12, 5)))

    def slow_past_midnight(received):
        clock.t += 60  # the answer arrives at 00:00:30 the next day
        return reply(received)

    up.deepseek.handler = slow_past_midnight
    router, db = make_router(tmp_path, monkeypatch, up.urls, clock=clock)
    try:
        routed = await router.ask(ChatRequest.from_prompt("hello", model="cheap"))
    finally:
        await router.aclose()

    calls = [c for c in ledger_rows(db, "calls") if c["request_id"] == routed.request_id]
    outcomes = [o for o in ledger_rows(db, "outcomes") if o["id"] == routed.request_id]
    assert [c["day"] for c in calls] == ["2026-11-26"]  # charged to the day it was reserved
    assert [o["day"] for o in outcomes] == ["2026-11-26"]  # and its outcome with it
