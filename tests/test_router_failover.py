"""Failover and money: a failing candidate hands over to the next one, its reservation is
released (or kept when the provider may have billed), nothing is counted twice, and a
failing provider is skipped for its cooldown. Candidates for the "cheap" virtual model:
deepseek → anthropic → google, then the local tier: local → ollama."""

from __future__ import annotations

import json
import time

import pytest

from ai_router import providers
from ai_router.errors import BadRequest, NoRoute, ProviderError
from ai_router.providers.openai_compat import OpenAICompatAdapter
from ai_router.router import PROVIDER_COOLDOWN_S
from ai_router.schema import ChatRequest
from routing_setup import (
    ANTHROPIC,
    DEEPSEEK,
    LOCAL,
    PRICES,
    cost_by_hand,
    ledger_rows,
    make_router,
    provider_tables,
    standard_models,
)
from upstreams import anthropic_wire as aw
from upstreams import ollama_wire as ow
from upstreams import openai_wire as oa
from upstreams.server import free_port

HAIKU_USAGE = aw.usage(100, 20)  # 100 uncached input + 20 output tokens
HAIKU_COST = cost_by_hand(PRICES[ANTHROPIC], input_tokens=100, output_tokens=20)


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def routing(up, tmp_path, monkeypatch):
    """(router, db, clock) with the standard setup; `routing.build(**toml)` for variants."""
    up.reset()
    clock = Clock()
    made = []

    def build(**toml):
        router, db = make_router(tmp_path, monkeypatch, up.urls, clock=clock, **toml)
        made.append(router)
        return router, db, clock

    yield build
    for router in made:
        await router.aclose()


def cheap(text: str) -> ChatRequest:
    """A request for the cheap tier, so routing does not depend on what the manager says."""
    return ChatRequest.from_prompt(text, model="cheap")


def by_model(db) -> dict[str, dict]:
    return {row["model"]: row for row in ledger_rows(db, "calls")}


def spent(router) -> tuple[int, int]:
    snap = router.ledger.snapshot(router.limit_micro)
    return snap.spent_micro, snap.reserved_micro


@pytest.mark.parametrize("failure", ["429", "500"])
async def test_a_failing_first_candidate_hands_over_and_its_reservation_is_released(
        routing, up, failure):
    router, db, _ = routing()
    up.deepseek.push(oa.error_reply(429, headers={"retry-after": "7"}) if failure == "429"
                     else oa.error_reply(500))
    up.anthropic.reply(aw.message([aw.text_block("from haiku")], usage=HAIKU_USAGE))

    routed = await router.ask(cheap("hi"))

    assert routed.completion.text == "from haiku" and routed.model.ref == ANTHROPIC
    assert len(routed.attempts) == 1 and routed.attempts[0].startswith(DEEPSEEK)
    rows = by_model(db)
    assert rows[DEEPSEEK]["status"] == "released" and rows[DEEPSEEK]["cost_micro"] == 0
    assert rows[DEEPSEEK]["reserved_micro"] > 0
    assert rows[ANTHROPIC]["status"] == "settled"
    assert rows[ANTHROPIC]["cost_micro"] == HAIKU_COST == routed.cost_micro
    assert spent(router) == (HAIKU_COST, 0)  # charged once, for the call that answered
    [outcome] = ledger_rows(db, "outcomes")
    assert (outcome["attempts"], outcome["model"], outcome["status"]) == (1, ANTHROPIC, "ok")


async def test_a_rate_limited_provider_is_skipped_until_its_retry_after_has_passed(routing, up):
    router, db, clock = routing()
    up.deepseek.push(oa.error_reply(429, headers={"retry-after": "7"}))
    up.anthropic.reply(aw.message([aw.text_block("from haiku")], usage=HAIKU_USAGE))
    await router.ask(cheap("hi"))
    assert len(up.deepseek.requests) == 1

    clock.now += 5
    second = await router.ask(cheap("hello there"))
    assert second.model.ref == ANTHROPIC and second.attempts == []
    assert len(up.deepseek.requests) == 1  # not even tried while cooling down
    assert any(DEEPSEEK in o and "failing" in o for o in second.overrides)

    clock.now += 3  # 8 s after the 429: Retry-After (7 s) has passed
    up.deepseek.push(oa.json_reply(oa.completion_body("back", usage=oa.usage_body(20, 2))))
    third = await router.ask(cheap("good morning"))
    assert third.model.ref == DEEPSEEK and len(up.deepseek.requests) == 2


async def test_a_server_error_cools_the_provider_down_for_the_default_period(routing, up):
    router, db, clock = routing()
    up.deepseek.push(oa.error_reply(503))
    up.anthropic.reply(aw.message([aw.text_block("from haiku")], usage=HAIKU_USAGE))
    await router.ask(cheap("hi"))

    clock.now += PROVIDER_COOLDOWN_S - 1
    await router.ask(cheap("hello again"))
    assert len(up.deepseek.requests) == 1
    clock.now += 2
    up.deepseek.push(oa.json_reply(oa.completion_body("back", usage=oa.usage_body(20, 2))))
    assert (await router.ask(cheap("hey"))).model.ref == DEEPSEEK


async def test_a_rejected_request_does_not_take_the_provider_out_of_rotation(routing, up):
    router, db, _ = routing()
    up.deepseek.push(oa.error_reply(400, "this request is malformed"))
    up.anthropic.reply(aw.message([aw.text_block("from haiku")], usage=HAIKU_USAGE))
    assert (await router.ask(cheap("hi"))).model.ref == ANTHROPIC

    up.deepseek.push(oa.json_reply(oa.completion_body("fine", usage=oa.usage_body(20, 2))))
    assert (await router.ask(cheap("hello"))).model.ref == DEEPSEEK


async def test_a_refused_connection_hands_over_and_charges_nothing(routing, up):
    tables = provider_tables(up.urls)
    tables["deepseek"]["base_url"] = f"http://127.0.0.1:{free_port()}/v1"
    router, db, _ = routing(providers=tables)
    up.anthropic.reply(aw.message([aw.text_block("from haiku")], usage=HAIKU_USAGE))

    routed = await router.ask(cheap("hi"))

    assert routed.model.ref == ANTHROPIC and "cannot connect" in routed.attempts[0]
    assert by_model(db)[DEEPSEEK]["status"] == "released"
    assert spent(router) == (HAIKU_COST, 0)


async def test_a_read_timeout_may_have_been_billed_so_its_whole_reservation_is_kept(routing, up):
    tables = provider_tables(up.urls)
    tables["deepseek"]["timeout_s"] = 0.3
    router, db, _ = routing(providers=tables)
    up.deepseek.push(oa.slow_reply(1.5))
    up.anthropic.reply(aw.message([aw.text_block("from haiku")], usage=HAIKU_USAGE))

    routed = await router.ask(cheap("hi"))

    assert routed.model.ref == ANTHROPIC
    timed_out = by_model(db)[DEEPSEEK]
    assert timed_out["status"] == "settled" and timed_out["usage_estimated"] == 1
    assert timed_out["cost_micro"] == timed_out["reserved_micro"] > 0
    assert spent(router) == (timed_out["reserved_micro"] + HAIKU_COST, 0)


class NoSecondChances(OpenAICompatAdapter):
    """A provider whose rejections are final (content policy, say): not retryable."""

    async def complete(self, request, model, max_tokens):
        try:
            return await super().complete(request, model, max_tokens)
        except BadRequest as e:
            raise ProviderError(self.name, "refused by content policy", e.status,
                                retryable=False) from e


async def test_a_non_retryable_error_is_surfaced_without_trying_another_model(
        routing, up, monkeypatch):
    registered = providers.adapter_class
    monkeypatch.setattr(providers, "adapter_class", lambda kind: NoSecondChances
                        if kind == "openai-compatible" else registered(kind))
    router, db, _ = routing()
    up.deepseek.push(oa.error_reply(400, "content policy"))

    with pytest.raises(ProviderError, match="content policy") as raised:
        await router.ask(cheap("hi"))

    assert not raised.value.retryable
    assert up.calls() == {"deepseek": 1, "anthropic": 0, "google": 0, "ollama": 0, "local": 0}
    assert by_model(db)[DEEPSEEK]["status"] == "released" and spent(router) == (0, 0)
    [outcome] = ledger_rows(db, "outcomes")
    assert outcome["status"] == "error" and "content policy" in outcome["error"]


async def test_when_every_candidate_fails_no_route_lists_the_attempts_local_last(routing, up):
    router, db, _ = routing()
    up.deepseek.push(oa.error_reply(500))
    up.anthropic.reply_error(529)
    up.google.reply_error(503)
    up.local.push(oa.error_reply(500))
    up.ollama.push(ow.error_reply(500))

    with pytest.raises(NoRoute, match="every candidate failed") as raised:
        await router.ask(cheap("hi"))

    tried = [a.split(":")[0] for a in raised.value.attempts]
    assert tried == ["deepseek/deepseek-chat", "anthropic/claude-haiku-4-5",
                     "google/gemini-2.5-flash", "local/qwen-local", "ollama/llama3.2"]
    assert {r["status"] for r in ledger_rows(db, "calls")} == {"released"}
    assert spent(router) == (0, 0)
    [outcome] = ledger_rows(db, "outcomes")
    assert outcome["status"] == "error" and outcome["attempts"] == 5


async def test_when_the_paid_models_fail_the_local_tier_answers(routing, up):
    router, db, _ = routing()
    up.deepseek.push(oa.error_reply(500))
    up.anthropic.reply_error(500)
    up.google.reply_error(500)
    up.local.push(oa.json_reply(oa.completion_body("local answer", usage=oa.usage_body(9, 2))))

    routed = await router.ask(cheap("hi"))

    assert (routed.model.ref, routed.model.tier, routed.cost_micro) == (LOCAL, "local", 0)
    assert len(routed.attempts) == 3 and spent(router) == (0, 0)


async def test_usage_the_provider_did_not_report_is_estimated_and_flagged(routing, up):
    router, db, _ = routing()
    up.deepseek.push(oa.json_reply(oa.completion_body("a short answer", usage=None)))

    routed = await router.ask(cheap("hi"))

    assert routed.usage.estimated and routed.usage.input_tokens > 0
    assert routed.usage.output_tokens > 0
    call = by_model(db)[DEEPSEEK]
    assert call["usage_estimated"] == 1 and call["status"] == "settled"
    assert call["cost_micro"] == routed.cost_micro == cost_by_hand(
        PRICES[DEEPSEEK], input_tokens=routed.usage.input_tokens,
        output_tokens=routed.usage.output_tokens) > 0


async def test_a_paid_model_with_no_known_price_is_never_called(routing, up):
    tables = provider_tables(up.urls)
    tables["mystery"] = {**tables["deepseek"]}  # same loopback, no price anywhere
    models = {**standard_models(), "mystery/m1": {"tier": "cheap", "context_window": 8000,
                                                  "max_output": 1000}}
    router, db, _ = routing(providers=tables, models=models)
    up.local.push(oa.json_reply(oa.completion_body("local answer", usage=oa.usage_body(9, 2))))

    routed = await router.ask(ChatRequest.from_prompt("hi", model="mystery/m1"))

    assert routed.model.ref == LOCAL
    assert up.deepseek.requests == []
    assert any("mystery/m1" in o and "no known price" in o for o in routed.overrides)
    assert "mystery/m1" not in by_model(db)


# ---- streams ------------------------------------------------------------------------------

async def test_a_stream_fails_over_before_its_first_delta_and_releases_the_failed_hold(
        routing, up):
    router, db, _ = routing()
    up.deepseek.push(oa.error_reply(429))
    up.anthropic.reply(aw.message([aw.text_block("streamed haiku")], usage=HAIKU_USAGE))

    stream = await router.open_stream(cheap("hi"))
    text = "".join([d.text async for d in stream.deltas])

    assert (stream.model.ref, text) == (ANTHROPIC, "streamed haiku")
    assert stream.result.cost_micro == HAIKU_COST
    assert by_model(db)[DEEPSEEK]["status"] == "released"
    assert spent(router) == (HAIKU_COST, 0)


async def test_a_stream_closed_by_its_consumer_cancels_the_upstream_and_settles_what_was_used(
        routing, up):
    import asyncio
    import threading

    from starlette.responses import StreamingResponse

    upstream_cancelled = threading.Event()

    def endless(_received):
        async def body():
            try:
                yield f"data: {json.dumps(oa.chunk_body({'content': 'first words'}))}\n\n"
                for _ in range(300):
                    await asyncio.sleep(0.1)
                    yield f"data: {json.dumps(oa.chunk_body({'content': ' more'}))}\n\n"
            finally:
                upstream_cancelled.set()
        return StreamingResponse(body(), media_type="text/event-stream")

    router, db, _ = routing()
    up.deepseek.push(endless)
    stream = await router.open_stream(cheap("hi"))
    first = await anext(stream.deltas)
    assert first.text == "first words"

    await stream.deltas.aclose()

    assert await asyncio.to_thread(upstream_cancelled.wait, 5)
    call = by_model(db)[DEEPSEEK]
    assert call["status"] == "settled" and call["usage_estimated"] == 1
    assert 0 < call["cost_micro"] < call["reserved_micro"]  # what was used, not the hold
    assert stream.result.cost_micro == call["cost_micro"]
    assert spent(router) == (call["cost_micro"], 0)
    [outcome] = ledger_rows(db, "outcomes")
    assert outcome["status"] == "cancelled"


async def test_a_stream_cut_by_the_upstream_is_settled_at_its_whole_reservation(routing, up):
    router, db, _ = routing()
    up.deepseek.push(oa.sse_reply(oa.text_chunks("one ", "two ", "three"), cut_after=2,
                                  usage=oa.usage_body(20, 3)))

    stream = await router.open_stream(cheap("hi"))
    received = []
    with pytest.raises(ProviderError) as raised:
        async for delta in stream.deltas:
            received.append(delta.text)

    assert received == ["one "] and raised.value.maybe_billed
    call = by_model(db)[DEEPSEEK]
    assert call["status"] == "settled"
    assert call["cost_micro"] == call["reserved_micro"] > 0  # the provider may bill it all
    assert spent(router) == (call["reserved_micro"], 0)
    [outcome] = ledger_rows(db, "outcomes")
    assert outcome["status"] == "error"
