"""The router end to end through every provider kind: a loopback upstream speaking the real
wire format answers, and the ledger afterwards holds exactly what the provider reported."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest

from ai_router.schema import CAPABILITIES, ChatRequest, Usage
from routing_setup import (
    ANTHROPIC,
    DEEPSEEK,
    GOOGLE,
    LOCAL,
    OLLAMA,
    PRICES,
    Loopbacks,
    cost_by_hand,
    ledger_rows,
    make_router,
)
from upstreams import anthropic_wire as aw
from upstreams import gemini_wire as gw
from upstreams import ollama_wire as ow
from upstreams import openai_wire as oa


@dataclass
class Kind:
    """How one provider kind is scripted to answer "hello", and the usage it then reports."""

    model: str
    script: Any  # (Loopbacks, streamed: bool) -> None
    usage: Usage  # normalised: input includes cache, output includes reasoning


def _deepseek(up: Loopbacks, streamed: bool) -> None:
    usage = oa.usage_body(1200, 300, cached=400, reasoning=100)
    up.deepseek.push(oa.sse_reply(oa.text_chunks("hel", "lo"), usage=usage) if streamed
                     else oa.json_reply(oa.completion_body("hello", usage=usage)))


def _anthropic(up: Loopbacks, streamed: bool) -> None:
    up.anthropic.reply(aw.message([aw.text_block("hello")],
                                  usage=aw.usage(800, 300, cache_read=300, cache_write=100)))


def _google(up: Loopbacks, streamed: bool) -> None:
    up.google.reply(gw.response([gw.text_part("hello")],
                                usage=gw.usage(1200, 200, cached=400, thoughts=100)))


def _ollama(up: Loopbacks, streamed: bool) -> None:
    up.ollama.push(ow.ndjson_reply([ow.part_body("hel"), ow.part_body("lo"),
                                    ow.done_body(1200, 300)]) if streamed
                   else ow.json_reply(ow.chat_body("hello", prompt_eval_count=1200,
                                                   eval_count=300)))


KINDS = {
    "openai-compatible": Kind(DEEPSEEK, _deepseek, Usage(
        input_tokens=1200, cache_read_tokens=400, output_tokens=300, reasoning_tokens=100)),
    "anthropic": Kind(ANTHROPIC, _anthropic, Usage(
        input_tokens=1200, cache_read_tokens=300, cache_write_tokens=100, output_tokens=300)),
    "google": Kind(GOOGLE, _google, Usage(
        input_tokens=1200, cache_read_tokens=400, output_tokens=300, reasoning_tokens=100)),
    "ollama": Kind(OLLAMA, _ollama, Usage(input_tokens=1200, output_tokens=300)),
}


def expected_cost(kind: Kind) -> int:
    if kind.model not in PRICES:
        return 0  # a local model
    u = kind.usage
    return cost_by_hand(PRICES[kind.model], input_tokens=u.input_tokens,
                        output_tokens=u.output_tokens, cache_read=u.cache_read_tokens,
                        cache_write=u.cache_write_tokens)


@pytest.fixture
async def setup(up, tmp_path, monkeypatch):
    up.reset()
    router, db = make_router(tmp_path, monkeypatch, up.urls)
    yield router, db
    await router.aclose()


def assert_settled_once(db, kind: Kind, request_id: str, source: str) -> None:
    calls = ledger_rows(db, "calls")
    assert len(calls) == 1, calls
    call = calls[0]
    assert (call["status"], call["request_id"], call["model"]) == ("settled", request_id,
                                                                   kind.model)
    u = kind.usage
    assert (call["input_tokens"], call["cache_read_tokens"], call["cache_write_tokens"],
            call["output_tokens"], call["reasoning_tokens"], call["usage_estimated"]) == (
        u.input_tokens, u.cache_read_tokens, u.cache_write_tokens, u.output_tokens,
        u.reasoning_tokens, 0)
    assert call["cost_micro"] == expected_cost(kind)
    if kind.model in PRICES:
        assert call["reserved_micro"] > 0  # a paid call held money while it ran

    [outcome] = ledger_rows(db, "outcomes")
    assert outcome["id"] == request_id and outcome["source"] == source
    assert (outcome["status"], outcome["model"], outcome["cost_micro"]) == (
        "ok", kind.model, expected_cost(kind))
    assert (outcome["input_tokens"], outcome["output_tokens"]) == (u.input_tokens,
                                                                  u.output_tokens)
    assert json.loads(outcome["decision"])["capability"] in CAPABILITIES
    assert outcome["decision_source"] and isinstance(json.loads(outcome["overrides"]), list)
    assert outcome["latency_ms"] > 0 and outcome["error"] is None


@pytest.mark.parametrize("kind_name", KINDS)
async def test_a_pinned_model_of_each_kind_answers_and_is_settled_at_its_reported_usage(
        setup, up, kind_name):
    router, db = setup
    kind = KINDS[kind_name]
    kind.script(up, False)

    routed = await router.ask(ChatRequest.from_prompt("hi", model=kind.model))

    assert routed.completion.text == "hello"
    assert routed.model.ref == kind.model and routed.attempts == [] and not routed.offline
    assert routed.usage == kind.usage
    assert routed.cost_micro == expected_cost(kind)
    assert_settled_once(db, kind, routed.request_id, "cli")
    snap = router.ledger.snapshot(router.limit_micro)
    assert (snap.spent_micro, snap.reserved_micro) == (expected_cost(kind), 0)
    assert routed.remaining_micro == router.limit_micro - expected_cost(kind)


@pytest.mark.parametrize("kind_name", KINDS)
async def test_a_stream_of_each_kind_relays_deltas_and_settles_with_the_final_usage(
        setup, up, kind_name):
    router, db = setup
    kind = KINDS[kind_name]
    kind.script(up, True)

    stream = await router.open_stream(ChatRequest.from_prompt("hi", model=kind.model))
    assert stream.model.ref == kind.model and stream.result is None
    deltas = [d async for d in stream.deltas]

    assert len([d for d in deltas if d.text]) >= 2  # it really arrived in pieces
    assert "".join(d.text for d in deltas) == "hello"
    assert deltas[-1].usage == kind.usage
    assert stream.result is not None
    assert stream.result.completion.text == "hello"
    assert stream.result.usage == kind.usage
    assert stream.result.cost_micro == expected_cost(kind)
    assert_settled_once(db, kind, stream.request_id, "server")
    assert router.ledger.snapshot(router.limit_micro).reserved_micro == 0


async def test_the_cheap_tier_goes_to_its_best_model_and_the_guards_cap_is_sent(setup, up):
    router, db = setup
    _deepseek(up, False)

    routed = await router.ask(ChatRequest.from_prompt("hi", model="cheap"))

    assert routed.model.ref == DEEPSEEK
    sent = up.deepseek.requests[0]
    assert sent.body["model"] == "deepseek-chat"
    assert 0 < sent.body["max_tokens"] <= 8192  # the guard's cap is always sent
    assert sent.headers["authorization"].startswith("Bearer fake-PLANTED")
    assert up.calls()["local"] == 0


async def test_a_local_model_answers_for_nothing(setup, up):
    router, db = setup
    up.local.push(oa.json_reply(oa.completion_body("local hello", usage=oa.usage_body(50, 5))))

    routed = await router.ask(ChatRequest.from_prompt("hi", model="local"))

    assert (routed.model.ref, routed.model.tier, routed.cost_micro) == (LOCAL, "local", 0)
    [call] = ledger_rows(db, "calls")
    assert (call["status"], call["reserved_micro"], call["cost_micro"]) == ("settled", 0, 0)
