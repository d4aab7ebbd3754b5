"""The manager's prompt: templates found on disk, stable first, facts measured, output bounded."""

from __future__ import annotations

import json
import re

import pytest

from ai_router.digest import make_digest
from ai_router.errors import ConfigError
from ai_router.manager.prompt import ManagerPrompt, find_prompt
from ai_router.manager.structured import REASON_CHARS, ManagerReply, decision_grammar
from ai_router.schema import CAPABILITIES, TIERS, ChatRequest


def test_the_prompt_templates_ship_in_the_project_prompts_folder():
    assert find_prompt("manager.md").parent.name == "prompts"
    prompt = ManagerPrompt.load()
    assert all(cap in prompt.system for cap in CAPABILITIES)


def test_the_system_prompt_is_identical_for_every_request_so_it_stays_cached():
    prompt = ManagerPrompt.load()
    one = prompt.messages(make_digest(ChatRequest.from_prompt("hi"), 3))
    two = prompt.messages(make_digest(ChatRequest.from_prompt("Solve x + 1 = 2"), 9))
    assert one[0] == two[0] and one[0]["role"] == "system"
    assert one[1] != two[1] and one[1]["role"] == "user"


def test_measured_facts_and_the_text_reach_the_model():
    request = ChatRequest.from_prompt(
        "Describe this chart", response_format={"type": "json_object"},
        tools=[{"type": "function", "function": {"name": "f"}}])
    user = ManagerPrompt.load().messages(make_digest(request, 40_000))[1]["content"]
    assert "40000 input tokens" in user and "uses tools" in user
    assert "wants JSON" in user and "long context" in user
    assert user.rstrip().endswith("Describe this chart")


def test_a_prompts_folder_from_the_environment_overrides_the_default(tmp_path, monkeypatch):
    (tmp_path / "manager.md").write_text("Route it.")
    (tmp_path / "manager_request.md").write_text("Q: $text")
    monkeypatch.setenv("AI_ROUTER_PROMPTS", str(tmp_path))
    messages = ManagerPrompt.load().messages(make_digest(ChatRequest.from_prompt("hey"), 1))
    assert messages == [{"role": "system", "content": "Route it."},
                        {"role": "user", "content": "Q: hey"}]


def test_a_missing_template_is_a_config_error_naming_the_file():
    with pytest.raises(ConfigError, match="nope.md"):
        find_prompt("nope.md")


def test_the_grammar_allows_no_whitespace_outside_the_reason():
    grammar = decision_grammar()
    root = grammar.splitlines()[0]
    literals = re.findall(r'"((?:[^"\\]|\\.)*)"', root)
    assert literals and not any(ch.isspace() for lit in literals for ch in lit)
    assert all(f'"{c}"' in grammar for c in CAPABILITIES + TIERS)
    assert f"{{0,{REASON_CHARS}}}" in grammar


def test_what_the_grammar_produces_is_a_valid_reply():
    # the shape the grammar spells out, written by hand: it must parse as ManagerReply
    text = '{"reason":"fact question","capability":"knowledge","output_tokens":80,"tier":"cheap"}'
    assert ManagerReply.model_validate_json(text).capability == "knowledge"
    assert list(json.loads(text)) == list(ManagerReply.model_fields)
