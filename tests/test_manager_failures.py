"""A manager model that is down, talks nonsense or is too slow yields the fallback."""

from __future__ import annotations

import asyncio
import json
import threading
import time

import pytest
from starlette.responses import Response

from ai_router.config import ManagerConfig
from ai_router.digest import make_digest
from ai_router.manager import Manager
from ai_router.manager.fallback import fallback_decision
from ai_router.schema import ChatRequest
from upstreams.openai_wire import completion_body, error_reply, json_reply
from upstreams.server import free_port

DIGEST = make_digest(ChatRequest.from_prompt("Write a Python function that sorts a list"), 20)


@pytest.fixture(autouse=True)
def _fresh_script(openai_upstream):
    openai_upstream.reset()


def manager_at(base_url: str, timeout_s: float = 10.0) -> Manager:
    # an endpoint ending in /v1 is used as a plain OpenAI-compatible server; no seed bank
    # and no cache, so every decision is the model's (or the fallback's)
    return Manager(ManagerConfig(endpoint=base_url, model="tiny", timeout_s=timeout_s,
                                 embedded_fallback=False), seeds=None, cache_size=0)


def text_reply(text: str):
    return json_reply(completion_body(text, model="tiny"))


async def test_a_valid_answer_from_the_endpoint_is_used_and_sanitized(openai_upstream):
    openai_upstream.push(text_reply(json.dumps({
        "reason": "python   function", "capability": "coding", "output_tokens": 9_999_999,
        "tier": "strong"})))
    result = await manager_at(openai_upstream.base_url).decide(DIGEST)
    assert result.source == "model" and result.fallback_reason is None
    assert result.decision.capability == "coding"
    assert result.decision.output_tokens == 32_000  # clamped to a sane range
    assert result.decision.reason == "python function"
    assert result.model == "openai/tiny"
    sent = openai_upstream.requests[0].body
    assert sent["response_format"]["type"] == "json_schema"  # instructor's JSON-schema mode
    assert sent["max_tokens"] <= 256 and sent["temperature"] == 0


async def test_a_closed_port_falls_back_with_a_reason():
    result = await manager_at(f"http://127.0.0.1:{free_port()}/v1").decide(DIGEST)
    assert result.source == "fallback"
    assert "cannot reach" in result.fallback_reason
    assert result.decision == fallback_decision(DIGEST)


async def test_ollama_down_without_embedded_fallback_falls_back_with_a_reason():
    config = ManagerConfig(endpoint=f"http://127.0.0.1:{free_port()}", embedded_fallback=False)
    result = await Manager(config, seeds=None).decide(DIGEST)
    assert result.source == "fallback"
    assert "not answering" in result.fallback_reason
    assert result.model == "fallback"


async def test_garbage_instead_of_json_falls_back(openai_upstream):
    openai_upstream.push(text_reply("Sure! I think this is about coding, probably {"))
    result = await manager_at(openai_upstream.base_url).decide(DIGEST)
    assert result.source == "fallback"
    assert "does not fit the decision schema" in result.fallback_reason
    assert result.decision.capability == "coding"  # the heuristics still route sensibly


async def test_json_outside_the_schema_falls_back(openai_upstream):
    openai_upstream.push(text_reply(json.dumps({"capability": "dancing", "output_tokens": "lots",
                                         "tier": "premium"})))
    result = await manager_at(openai_upstream.base_url).decide(DIGEST)
    assert result.source == "fallback"
    assert "schema" in result.fallback_reason


async def test_a_server_error_falls_back_naming_the_status(openai_upstream):
    openai_upstream.push(error_reply(503, "loading model"))
    result = await manager_at(openai_upstream.base_url).decide(DIGEST)
    assert result.source == "fallback"
    assert "503" in result.fallback_reason


async def test_an_answer_cut_off_by_max_tokens_falls_back(openai_upstream):
    openai_upstream.push(json_reply(completion_body('{"reason":"x","capab',
                                                    finish_reason="length")))
    result = await manager_at(openai_upstream.base_url).decide(DIGEST)
    assert result.source == "fallback"
    assert "ran out of tokens" in result.fallback_reason


async def test_a_slow_model_falls_back_within_the_timeout(openai_upstream):
    release = threading.Event()

    async def stall(_received) -> Response:
        for _ in range(200):  # hold the request until the test is done, at most 10 s
            if release.is_set():
                break
            await asyncio.sleep(0.05)
        return Response(status_code=504)

    openai_upstream.push(stall)
    timeout_s = 0.5
    start = time.perf_counter()
    try:
        result = await manager_at(openai_upstream.base_url, timeout_s=timeout_s).decide(DIGEST)
    finally:
        release.set()
    elapsed = time.perf_counter() - start
    assert result.source == "fallback"
    assert "within 0.5s" in result.fallback_reason or "cannot reach" in result.fallback_reason
    assert elapsed < timeout_s + 2.0  # the 10 s stall is not waited out
    assert result.latency_s < timeout_s + 2.0


async def test_decide_never_raises_even_when_the_prompt_is_broken(openai_upstream):
    class BrokenPrompt:
        def messages(self, digest, neighbours=()):
            raise RuntimeError("template exploded")

    manager = manager_at(openai_upstream.base_url)
    manager.prompt = BrokenPrompt()  # type: ignore[assignment]
    result = await manager.decide(DIGEST)
    assert result.source == "fallback"
    assert "RuntimeError" in result.fallback_reason
