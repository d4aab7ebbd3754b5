"""The decision cache: a question decided once is not sent to the model again."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from ai_router.config import ManagerConfig
from ai_router.digest import make_digest
from ai_router.manager import Manager
from ai_router.manager.cache import DecisionCache
from ai_router.schema import ChatRequest
from upstreams.openai_wire import completion_body, json_reply
from upstreams.server import free_port

REPLY = json.dumps({"reason": "code", "capability": "coding", "output_tokens": 700,
                    "tier": "strong"})


def digest_of(text: str, input_tokens: int = 20):
    return make_digest(ChatRequest.from_prompt(text), input_tokens)


@pytest.fixture
def manager(openai_upstream) -> Manager:
    openai_upstream.reset()
    openai_upstream.handler = lambda received: json_reply(
        completion_body(REPLY, model="tiny"))(received)
    # no seed bank: every fresh decision goes to the (loopback) model
    return Manager(ManagerConfig(endpoint=openai_upstream.base_url, model="tiny", timeout_s=30.0,
                                 embedded_fallback=False), seeds=None)


async def test_the_same_digest_is_answered_from_the_cache_without_calling_the_model(
        manager, openai_upstream):
    first = await manager.decide(digest_of("Sort a list in Rust"))
    again = await manager.decide(digest_of("Sort a list in Rust"))
    assert len(openai_upstream.requests) == 1
    assert first.source == "model" and not first.cached, first.fallback_reason
    assert again.cached and again.decision == first.decision and again.source == "model"
    assert again.latency_s < first.latency_s


async def test_a_tool_loop_follow_up_of_the_same_question_is_a_cache_hit(manager, openai_upstream):
    digest = digest_of("Refactor utils.py into two modules")
    await manager.decide(digest)
    grown = replace(digest, input_tokens=9_000, turns=7, in_tool_loop=True)
    assert (await manager.decide(grown)).cached
    assert len(openai_upstream.requests) == 1


async def test_a_different_question_or_feature_asks_the_model_again(manager, openai_upstream):
    digest = digest_of("Sort a list in Rust")
    await manager.decide(digest)
    await manager.decide(digest_of("Sort a list in Go"))
    await manager.decide(replace(digest, has_images=True))
    assert len(openai_upstream.requests) == 3


async def test_a_fallback_decision_is_not_remembered():
    closed = f"http://127.0.0.1:{free_port()}/v1"
    manager = Manager(ManagerConfig(endpoint=closed, model="tiny", timeout_s=1.0,
                                    embedded_fallback=False), seeds=None)
    digest = digest_of("hello")
    assert (await manager.decide(digest)).source == "fallback"
    assert not (await manager.decide(digest)).cached
    assert len(manager.cache) == 0


def test_the_cache_forgets_the_least_recently_used_decision_beyond_its_size():
    cache: DecisionCache[str] = DecisionCache(size=2)
    a, b, c = digest_of("a"), digest_of("b"), digest_of("c")
    cache.put(a, "A")
    cache.put(b, "B")
    assert cache.get(a) == "A"  # a is now the most recently used
    cache.put(c, "C")
    assert cache.get(b) is None and cache.get(a) == "A" and cache.get(c) == "C"
    assert len(cache) == 2


def test_case_and_spacing_do_not_make_a_new_question():
    cache: DecisionCache[str] = DecisionCache()
    cache.put(digest_of("Sort  a list in Rust"), "x")
    assert cache.get(digest_of("sort a list in rust ")) == "x"


async def test_warm_up_reaches_the_model_even_when_the_evidence_is_sure(manager, openai_upstream):
    shipped = Manager(manager.config)  # combined mode with the seed bank, as shipped
    sure = await shipped.decide(digest_of("Hello!"))
    assert sure.source == "evidence" and len(openai_upstream.requests) == 0
    await shipped.warm_up()
    assert len(openai_upstream.requests) == 1  # the model is loaded and its prompt cached
