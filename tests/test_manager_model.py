"""The manager against the real embedded local model (SmolLM2-135M via llama.cpp)."""

from __future__ import annotations

import asyncio

import pytest

from ai_router import local_model
from ai_router.config import ManagerConfig
from ai_router.digest import make_digest
from ai_router.manager import Manager
from ai_router.schema import CAPABILITIES, TIERS, ChatRequest, RoutingDecision

pytestmark = pytest.mark.local_model

PROMPTS = [
    "hi!",
    "What is the capital of Australia?",
    "Write a haiku about autumn leaves",
    "Write a Python function that checks whether a string is a palindrome",
    "Solve 2x^2 - 8 = 0",
    "Summarize in one line: the meeting moved to Friday because the room was booked.",
]


@pytest.fixture(scope="session")
def embedded_url() -> str:
    """One embedded server per test session (it stays loaded for the process's life)."""
    return asyncio.run(local_model.embedded_base_url())


@pytest.fixture
def manager(embedded_url) -> Manager:
    # the model's own full proposal: no seed bank (test_eval_local_model covers the
    # prompt with neighbours), no cache, so every prompt reaches the model
    # a generous deadline: this proves the model's output is usable, not how fast it is
    # (docs/benchmarks.md measures latency; a shared 2-core machine can be 10x slower)
    return Manager(ManagerConfig(endpoint="embedded", timeout_s=60.0), seeds=None,
                   cache_size=0)


async def test_the_embedded_model_proposes_a_schema_valid_decision(manager):
    for prompt in PROMPTS:
        digest = make_digest(ChatRequest.from_prompt(prompt), input_tokens=20)
        result = await manager.decide(digest)
        assert result.source == "model", result.fallback_reason
        assert result.fallback_reason is None
        assert result.model == "embedded/SmolLM2-135M-Instruct"
        decision = RoutingDecision.model_validate(result.decision.model_dump())
        assert decision.capability in CAPABILITIES and decision.tier in TIERS
        assert 16 <= decision.output_tokens <= 32_000


async def test_an_openclaw_sized_digest_is_decided_by_the_model(manager):
    digest = make_digest(ChatRequest(model="router-auto", messages=[
        {"role": "system", "content": "You are a personal assistant. " * 800},
        {"role": "user", "content": "[Thu 2026-11-26 01:03 UTC] Refactor utils.py into "
                                    "two modules\n\nRuntime: agent=main | shell=bash"},
    ], tools=[{"type": "function", "function": {"name": "read", "parameters": {}}}]),
        input_tokens=9_000)
    result = await manager.decide(digest)
    assert result.source == "model", result.fallback_reason


async def test_the_embedded_server_is_shared_across_managers(embedded_url):
    first = Manager(ManagerConfig(endpoint="embedded"))
    second = Manager(ManagerConfig(endpoint="http://127.0.0.1:9", embedded_fallback=True))
    assert (await first.endpoints.get()).base_url == embedded_url
    assert (await second.endpoints.get()).base_url == embedded_url  # Ollama down → embedded
