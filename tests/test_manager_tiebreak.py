"""A model asked to break a tie gets a short deadline; when it is late the evidence decides,
and the outcome log says so. The manager's own token use is recorded per request."""

from __future__ import annotations

import json

import pytest

from ai_router.config import ManagerConfig
from ai_router.digest import make_digest
from ai_router.manager import Manager
from ai_router.manager import evidence as ev
from ai_router.manager.retrieval import SeedBank
from ai_router.schema import ChatRequest
from routing_setup import ledger_rows, make_router
from upstreams.openai_wire import (
    completion_body,
    json_reply,
    slow_reply,
    usage_body,
)

# keywords alone never make the evidence sure, so the model is asked
DIGEST = make_digest(ChatRequest.from_prompt("Tell me about the moon landing"), 20)
REPLY = json.dumps({"reason": "history", "capability": "knowledge"})


def answer(prompt_tokens: int = 300, completion_tokens: int = 12):
    return json_reply(completion_body(REPLY, model="tiny",
                                      usage=usage_body(prompt_tokens, completion_tokens)))


@pytest.fixture
def manager(openai_upstream) -> Manager:
    openai_upstream.reset()
    config = ManagerConfig(endpoint=openai_upstream.base_url, model="tiny", timeout_s=30.0,
                           embedded_fallback=False)
    return Manager(config, seeds=SeedBank([]), cache_size=0, tiebreak_s=0.2)


async def test_a_late_tie_break_leaves_the_decision_to_the_evidence_and_says_so(
        manager, openai_upstream):
    openai_upstream.push(answer())
    await manager.warm_up()  # the first call may take the cold-start allowance
    openai_upstream.push(slow_reply(5.0, then=answer()))

    late = await manager.decide(DIGEST)

    assert late.source == "model_late" and late.tokens is None
    assert "did not break the tie within 0.2s" in late.fallback_reason
    assert late.decision == ev.decide(DIGEST, ev.gather(DIGEST, []))
    # slow is not broken: the endpoint is kept, and the next tie-break reaches it
    openai_upstream.push(answer(280, 9))
    on_time = await manager.decide(DIGEST)
    assert on_time.source == "model" and on_time.fallback_reason is None
    assert on_time.tokens == 289


async def test_a_cold_model_is_not_held_to_the_tie_break_deadline(manager, openai_upstream):
    openai_upstream.push(slow_reply(0.5, then=answer()))  # longer than 0.2 s, far below 30 s
    result = await manager.decide(DIGEST)
    assert result.source == "model", result.fallback_reason


async def test_the_outcome_log_records_the_managers_latency_and_tokens(up, tmp_path,
                                                                         monkeypatch):
    up.reset()
    router, db = make_router(tmp_path, monkeypatch, up.urls)
    try:
        up.local.push(json_reply(completion_body("hi", usage=usage_body(10, 5))))
        routed = await router.ask(ChatRequest.from_prompt("Hello!"))  # the evidence is sure
        [row] = ledger_rows(db, "outcomes")
        assert row["id"] == routed.request_id and row["decision_source"] == "evidence"
        assert row["manager_tokens"] == 0 and row["manager_ms"] is not None
    finally:
        await router.aclose()


async def test_a_model_late_for_several_tie_breaks_is_not_waited_for_until_a_pause_ends(
        manager, openai_upstream):
    from ai_router.manager import core

    openai_upstream.push(answer())
    await manager.warm_up()
    for _ in range(core.LATE_STREAK):
        openai_upstream.push(slow_reply(5.0, then=answer()))
        assert (await manager.decide(DIGEST)).source == "model_late"
    asked = len(openai_upstream.requests)

    skipped = await manager.decide(DIGEST)  # not asked: no wait for the deadline

    assert skipped.source == "model_late" and len(openai_upstream.requests) == asked
    assert f"missed its last {core.LATE_STREAK} tie-breaks" in skipped.fallback_reason
    assert skipped.decision == ev.decide(DIGEST, ev.gather(DIGEST, []))
    # after the pause the model is asked again, and an answer in time resets the streak
    manager._late_until = 0.0  # the pause is over
    openai_upstream.push(answer())
    assert (await manager.decide(DIGEST)).source == "model"
    assert len(openai_upstream.requests) == asked + 1
