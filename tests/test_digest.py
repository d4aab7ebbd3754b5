"""The digest: what the manager model reads, measured from real OpenClaw requests and plain ones."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from ai_router.digest import MAX_TEXT_CHARS, make_digest
from ai_router.schema import ChatRequest

CAPTURES = Path(__file__).parent / "fixtures" / "openclaw"  # captured from the real agent


def openclaw_request(name: str) -> ChatRequest:
    path = CAPTURES / f"{name}.json"
    if not path.is_file():
        pytest.skip(f"OpenClaw capture {path} not available")
    return ChatRequest.model_validate(json.loads(path.read_text())["body"])


def test_openclaw_first_turn_yields_the_users_own_words():
    digest = make_digest(openclaw_request("agent_exec_first_request"), input_tokens=9_000)
    assert digest.text == "Say hello in one short sentence."
    assert digest.virtual_model == "router-auto"
    assert digest.has_tools and not digest.in_tool_loop
    assert digest.turns == 1
    assert digest.requested_max_output == 4096


def test_openclaw_wrapper_and_internal_context_never_reach_the_manager():
    for name in ("agent_exec_first_request", "toolcall_turn1_request",
                 "toolcall_followup_request"):
        text = make_digest(openclaw_request(name), input_tokens=9_000).text
        assert "Runtime:" not in text and "UTC]" not in text
        assert "OPENCLAW_INTERNAL_CONTEXT" not in text and "Active Subagents" not in text


def test_openclaw_tool_follow_up_is_recognised_as_a_tool_loop():
    digest = make_digest(openclaw_request("toolcall_followup_request"), input_tokens=9_500)
    # the last message is an internal-context user message, not the tool result
    assert digest.text == "Please use the router. CALLTOOL:route_and_ask"
    assert digest.in_tool_loop
    assert digest.turns == 3  # user, assistant tool call, tool result


def test_digest_of_a_full_openclaw_request_takes_well_under_a_millisecond():
    request = openclaw_request("toolcall_followup_request")
    start = time.perf_counter()
    for _ in range(100):
        make_digest(request, input_tokens=9_500)
    assert (time.perf_counter() - start) / 100 < 0.001


def test_plain_prompt_is_taken_as_is():
    digest = make_digest(ChatRequest.from_prompt("What is 2+2?", system="Be brief."), 20)
    assert digest.text == "What is 2+2?"
    assert not (digest.has_tools or digest.has_images or digest.wants_json
                or digest.in_tool_loop or digest.long_context)
    assert digest.turns == 1
    assert digest.virtual_model == "auto"


def test_latest_user_message_wins_over_earlier_ones():
    request = ChatRequest(messages=[
        {"role": "user", "content": "first question"},
        {"role": "assistant", "content": "an answer"},
        {"role": "user", "content": "second question"},
    ])
    digest = make_digest(request, 30)
    assert digest.text == "second question"
    assert digest.turns == 3


def test_text_parts_are_joined_and_images_are_detected():
    request = ChatRequest(model="coding", messages=[{"role": "user", "content": [
        {"type": "text", "text": "What is in"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
        {"type": "text", "text": "this picture?"},
    ]}])
    digest = make_digest(request, 800)
    assert digest.text == "What is in\nthis picture?"
    assert digest.has_images
    assert digest.virtual_model == "coding"


def test_json_response_format_is_detected_and_text_format_is_not():
    prompt = [{"role": "user", "content": "list three colours"}]
    wants = ChatRequest(messages=prompt, response_format={"type": "json_object"})
    schema = ChatRequest(messages=prompt, response_format={
        "type": "json_schema", "json_schema": {"name": "x", "schema": {}}})
    text = ChatRequest(messages=prompt, response_format={"type": "text"})
    assert make_digest(wants, 10).wants_json
    assert make_digest(schema, 10).wants_json
    assert not make_digest(text, 10).wants_json


def test_long_context_follows_the_configured_threshold():
    request = ChatRequest.from_prompt("summarize")
    assert make_digest(request, 40_000).long_context
    assert not make_digest(request, 40_000, long_context_tokens=50_000).long_context
    assert not make_digest(request, 32_000).long_context


def test_long_text_keeps_its_start_and_its_end():
    text = "START " + "filler words " * 2_000 + " THE END"
    digest = make_digest(ChatRequest.from_prompt(text), 5_000)
    assert len(digest.text) <= MAX_TEXT_CHARS
    assert digest.text.startswith("START") and digest.text.endswith("THE END")
    assert digest.text_chars == len(text)


def test_tool_results_after_the_user_text_mean_a_tool_loop_even_without_openclaw():
    request = ChatRequest(
        tools=[{"type": "function", "function": {"name": "f", "parameters": {}}}],
        messages=[
            {"role": "user", "content": "what's the weather?"},
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": "c1", "type": "function",
                 "function": {"name": "f", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
        ])
    digest = make_digest(request, 100)
    assert digest.in_tool_loop and digest.has_tools
    assert digest.text == "what's the weather?"


def test_a_request_with_no_user_text_gives_empty_text():
    request = ChatRequest(messages=[{"role": "system", "content": "You are terse."}])
    digest = make_digest(request, 5)
    assert digest.text == "" and digest.turns == 0
