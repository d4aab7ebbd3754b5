"""The day's budget through the router: concurrent requests never spend past the limit,
the ones the budget refuses are answered by the local tier, and with the money gone (or
offline mode forced) everything is served locally."""

from __future__ import annotations

import asyncio
import json

import pytest

from ai_router.schema import ChatRequest
from routing_setup import (
    DEEPSEEK,
    LOCAL,
    ledger_rows,
    make_router,
    standard_models,
)
from upstreams import openai_wire as oa

CAP = 200  # the client's max_tokens, so every reservation has a known size
PAID_USAGE = oa.usage_body(14, CAP)  # the worst case: every allowed token used


def request(text: str, model: str = "cheap") -> ChatRequest:
    return ChatRequest.from_prompt(text, model=model, max_tokens=CAP)


@pytest.fixture
async def routing(up, tmp_path, monkeypatch):
    up.reset()
    up.deepseek.handler = oa.slow_reply(0.05, oa.json_reply(
        oa.completion_body("paid answer", usage=PAID_USAGE)))
    up.local.handler = oa.json_reply(oa.completion_body("local answer",
                                                        usage=oa.usage_body(14, 3)))
    made = []

    def build(**kw):
        models = {ref: m for ref, m in standard_models().items() if ref in (DEEPSEEK, LOCAL)}
        router, db = make_router(tmp_path, monkeypatch, up.urls, models=models, **kw)
        made.append(router)
        return router, db

    yield build
    for router in made:
        await router.aclose()


async def test_forty_concurrent_requests_never_spend_past_a_tiny_daily_limit(routing, up):
    router, db = routing(daily_usd=0.002)  # room for about eight worst-case answers

    answers = await asyncio.gather(*(router.ask(request(f"question {i}")) for i in range(40)))

    snap = router.ledger.snapshot(router.limit_micro)
    assert snap.reserved_micro == 0
    assert 0 < snap.spent_micro <= router.limit_micro
    paid = [a for a in answers if a.model.ref == DEEPSEEK]
    local = [a for a in answers if a.model.ref == LOCAL]
    assert len(paid) + len(local) == 40 and paid and local
    assert all(a.completion.text == "local answer" and a.cost_micro == 0 for a in local)
    assert sum(a.cost_micro for a in paid) == snap.spent_micro
    settled = [c for c in ledger_rows(db, "calls") if c["model"] == DEEPSEEK]
    assert len(settled) == len(paid) == len(up.deepseek.requests)  # no call without a hold
    assert {c["status"] for c in settled} == {"settled"}
    assert len(ledger_rows(db, "outcomes")) == 40


async def test_with_the_days_money_gone_the_local_tier_answers_offline(routing, up):
    router, db = routing(daily_usd=0.001)
    hold = router.ledger.reserve(router.limit_micro, router.limit_micro, provider="deepseek",
                                 model=DEEPSEEK, request_id="earlier")
    router.ledger.settle(hold, router.limit_micro, None)  # spent it all earlier today

    routed = await router.ask(request("hi"))

    assert (routed.model.ref, routed.offline, routed.cost_micro) == (LOCAL, True, 0)
    assert routed.remaining_micro == 0
    assert any("today's budget is spent" in o for o in routed.overrides)
    assert up.deepseek.requests == []
    outcome = ledger_rows(db, "outcomes")[-1]
    assert outcome["tier"] == "local" and "budget is spent" in outcome["overrides"]


async def test_a_pinned_paid_model_is_refused_too_once_the_money_is_gone(routing, up):
    router, db = routing(daily_usd=0.001)
    hold = router.ledger.reserve(router.limit_micro, router.limit_micro, provider="deepseek",
                                 model=DEEPSEEK, request_id="earlier")
    router.ledger.settle(hold, router.limit_micro, None)

    routed = await router.ask(request("hi", model=DEEPSEEK))

    assert routed.model.ref == LOCAL and routed.offline and up.deepseek.requests == []


@pytest.mark.parametrize("stream", [False, True], ids=["ask", "stream"])
async def test_forced_offline_mode_serves_locally_with_money_left(routing, up, stream):
    router, db = routing(daily_usd=5.0, offline=True)
    up.local.handler = oa.sse_reply(oa.text_chunks("local ", "answer"),
                                    usage=oa.usage_body(14, 2)) if stream else up.local.handler

    if stream:
        opened = await router.open_stream(request("hi"))
        text = "".join([d.text async for d in opened.deltas])
        routed = opened.result
    else:
        routed = await router.ask(request("hi"))
        text = routed.completion.text

    assert text == "local answer"
    assert (routed.model.ref, routed.offline) == (LOCAL, True)
    assert any("offline-only mode is on" in o for o in routed.overrides)
    assert routed.remaining_micro == router.limit_micro
    assert up.deepseek.requests == []
    assert json.loads(ledger_rows(db, "outcomes")[-1]["overrides"])
