"""Retrieval: the nearest labelled seed examples, in the prompt and as evidence."""

from __future__ import annotations

import json

from ai_router.config import ManagerConfig
from ai_router.digest import make_digest
from ai_router.manager import Manager
from ai_router.manager import evidence as ev
from ai_router.manager.prompt import ManagerPrompt
from ai_router.manager.retrieval import Example, SeedBank, find_seed_file, read_examples
from ai_router.schema import CAPABILITIES, ChatRequest
from upstreams.openai_wire import completion_body, json_reply

BANK = SeedBank([
    Example("Write a Python function that reverses a linked list", "coding", "strong", 800),
    Example("What is the capital of Peru?", "knowledge", "cheap", 60),
    Example("Write a poem about the winter sea", "writing", "cheap", 250),
    Example("Solve 3x + 5 = 20 for x", "math", "strong", 200),
    Example("Translate to French: good morning", "extraction", "cheap", 30),
])


def digest_of(text: str, model: str = "auto"):
    return make_digest(ChatRequest.from_prompt(text, model=model), 20)


def test_the_nearest_seed_examples_come_first():
    found = BANK.nearest("write a python function that sorts a list", k=2)
    assert found[0].example.capability == "coding"
    assert found[0].score > found[1].score > 0


def test_retrieval_skips_the_excluded_prompt_and_ignores_query_syntax():
    text = "What is the capital of Peru?"
    assert BANK.nearest(text, k=1)[0].example.prompt == text
    assert all(n.example.prompt != text for n in BANK.nearest(text, k=5, exclude=text))
    assert BANK.nearest('NEAR("zzz" OR *) AND -', k=3) == []  # FTS5 syntax is just words
    assert BANK.nearest("", k=3) == []


def test_a_seed_prompt_may_hold_unicode_line_separators(tmp_path):
    seeds = tmp_path / "seed_bank.jsonl"
    seeds.write_text(json.dumps({"prompt": "Summarize:\u2028a line\x85another",
                                 "label_capability": "extraction", "label_tier": "cheap",
                                 "ref_output_tokens": 50}, ensure_ascii=False) + "\n",
                     encoding="utf-8")
    assert [e.prompt for e in read_examples(seeds)] == ["Summarize:\u2028a line\x85another"]


def test_the_shipped_seed_bank_loads_and_covers_every_capability():
    path = find_seed_file()
    assert path is not None and path.name == "seed_bank.jsonl"
    bank = SeedBank.load(path)
    assert bank is not None and len(bank.examples) >= 150
    assert {e.capability for e in bank.examples} == set(CAPABILITIES)


def test_neighbours_go_into_the_user_message_and_the_system_prompt_stays_the_same():
    prompt = ManagerPrompt.load()
    one = prompt.messages(digest_of("write a poem"), BANK.nearest("write a poem", 2))
    two = prompt.messages(digest_of("solve 2x = 4"), BANK.nearest("solve 2x = 4", 2))
    assert one[0] == two[0]  # llama.cpp's prompt cache reuses the stable part
    user = one[1]["content"]
    assert "Request: Write a poem about the winter sea" in user
    assert '"capability":"writing"' in user
    assert user.rstrip().endswith("Request: write a poem")


def test_the_client_s_virtual_model_and_a_code_fence_settle_the_capability():
    assert ev.settled_capability(digest_of("hello", model="coding")) == "coding"
    assert ev.settled_capability(digest_of("hi\n```\nx = 1\n```")) == "coding"
    assert ev.settled_capability(digest_of("hello")) is None
    evidence = ev.gather(digest_of("what is the capital of peru", model="math"),
                         BANK.nearest("what is the capital of peru", 3))
    assert evidence.capability() == "math" and evidence.confident


def test_the_model_s_vote_breaks_a_close_call_between_the_evidence():
    close = ev.Evidence(neighbours=BANK.nearest("poem", 1),
                        votes={"writing": 0.5, "reasoning": 0.45})
    assert not close.confident
    assert close.capability() == "writing"
    assert close.capability(model_vote="reasoning") == "reasoning"


def test_output_tokens_follow_the_nearest_examples_of_the_chosen_capability():
    text = "Translate to French: see you tomorrow"
    decision = ev.decide(digest_of(text), ev.gather(digest_of(text), BANK.nearest(text, 3)))
    assert decision.capability == "extraction"
    assert decision.output_tokens == 30 and decision.tier == "cheap"


async def test_confident_evidence_decides_without_asking_the_model(openai_upstream):
    openai_upstream.reset()
    manager = Manager(ManagerConfig(endpoint=openai_upstream.base_url, model="tiny", timeout_s=30.0,
                                    embedded_fallback=False), seeds=BANK)
    result = await manager.decide(digest_of("```python\nprint(1)\n```\nwhy no output?"))
    assert result.source == "evidence" and result.decision.capability == "coding"
    assert openai_upstream.requests == []


async def test_an_uncertain_request_is_proposed_by_the_model_with_neighbours_in_its_prompt(
        openai_upstream):
    openai_upstream.reset()
    openai_upstream.push(json_reply(completion_body(json.dumps({
        "reason": "poem", "capability": "knowledge", "output_tokens": 300, "tier": "cheap"}),
        model="tiny")))
    manager = Manager(ManagerConfig(endpoint=openai_upstream.base_url, model="tiny", timeout_s=30.0,
                                    embedded_fallback=False), seeds=BANK)
    # the evidence is split between writing and knowledge; the model's vote settles it
    result = await manager.decide(digest_of("what is a poem"))
    assert result.source == "model", result.fallback_reason
    assert result.decision.capability == "knowledge"
    body = openai_upstream.requests[0].body
    assert "Request: Write a poem about the winter sea" in body["messages"][1]["content"]
    # the evidence sets tier and length, so the model is asked for its capability only
    schema = body["response_format"]["json_schema"]["schema"]
    assert set(schema["properties"]) == {"reason", "capability"}
    assert result.decision.tier == "cheap"  # the knowledge neighbour's tier
