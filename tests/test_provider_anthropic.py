"""The Anthropic adapter, driven through the official SDK against a loopback Messages API."""

from __future__ import annotations

import json

import anthropic
import pytest

from ai_router.config import ProviderConfig
from ai_router.errors import AuthFailed, BadRequest, MissingKey, RateLimited, Unavailable
from ai_router.providers.anthropic import AnthropicAdapter, to_anthropic_tool_choice
from ai_router.schema import ChatRequest
from upstreams.anthropic_wire import (
    AnthropicWire,
    error_body,
    message,
    stream_events,
    text_block,
    thinking_block,
    tool_use_block,
    usage,
)
from upstreams.server import free_port, serve

KEY = "fake-anthropic-TESTKEY-must-never-leak-0123456789"
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk"
WEATHER_TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                   "required": ["city"]}}}


@pytest.fixture(scope="module")
def upstream():
    shared = AnthropicWire()
    with serve(shared.app) as url:
        yield shared, url


@pytest.fixture
def wire(upstream):
    upstream[0].reset()
    return upstream[0]


@pytest.fixture
def base_url(upstream):
    return upstream[1]


def make_adapter(base_url: str, timeout_s: float = 5.0) -> AnthropicAdapter:
    config = ProviderConfig(kind="anthropic", base_url=base_url, key_env="ANTHROPIC_API_KEY",
                            timeout_s=timeout_s)
    return AnthropicAdapter("anthropic", config, api_key=KEY)


@pytest.fixture
async def adapter(base_url):
    a = make_adapter(base_url)
    yield a
    await a.aclose()


def ask(text: str = "Hi", **kw) -> ChatRequest:
    return ChatRequest.from_prompt(text, **kw)


def sent_key(headers: dict[str, str]) -> str | None:
    """The key as the SDK sent it: x-api-key, or a bearer token (SDK 2.x)."""
    bearer = headers.get("authorization", "")
    return headers.get("x-api-key") or (bearer[7:] if bearer.startswith("Bearer ") else None)


async def collect(adapter, request, cap=256):
    return [d async for d in adapter.stream(request, "claude-haiku-4-5", cap)]


# ------------------------------------------------------------------ request translation


async def test_a_full_conversation_reaches_the_upstream_translated_to_anthropic_messages(
        wire, adapter):
    wire.reply(message([text_block("Sunny.")]))
    request = ChatRequest(
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "developer", "content": "Use metric units."},
            {"role": "user", "content": [
                {"type": "text", "text": "What is in these pictures, and the weather?"},
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
                {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}}]},
            {"role": "assistant", "content": "Let me check.", "tool_calls": [
                {"id": "toolu_1", "type": "function",
                 "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}},
                {"id": "toolu_2", "type": "function",
                 "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'}}]},
            {"role": "tool", "tool_call_id": "toolu_1", "content": "18C sunny"},
            {"role": "tool", "tool_call_id": "toolu_2", "content": "4C snow"},
            {"role": "user", "content": "Summarise."}],
        tools=[WEATHER_TOOL], tool_choice={"type": "function", "function": {"name": "get_weather"}},
        stop="END", temperature=1.7, max_tokens=9999)

    await adapter.complete(request, "claude-haiku-4-5", 321)

    received = wire.requests[0]
    assert received.path == "/v1/messages"
    assert sent_key(received.headers) == KEY
    assert received.body == {
        "model": "claude-haiku-4-5",
        "max_tokens": 321,  # the guard's cap, not the client's max_tokens
        "system": "Be brief.\n\nUse metric units.",
        "messages": [
            {"role": "user", "content": [
                {"type": "text", "text": "What is in these pictures, and the weather?"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                             "data": PNG}},
                {"type": "image", "source": {"type": "url",
                                             "url": "https://example.com/cat.jpg"}}]},
            {"role": "assistant", "content": [
                {"type": "text", "text": "Let me check."},
                {"type": "tool_use", "id": "toolu_1", "name": "get_weather",
                 "input": {"city": "Paris"}},
                {"type": "tool_use", "id": "toolu_2", "name": "get_weather",
                 "input": {"city": "Oslo"}}]},
            {"role": "user", "content": [  # both results and the next user text: one turn
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C sunny"},
                {"type": "tool_result", "tool_use_id": "toolu_2", "content": "4C snow"},
                {"type": "text", "text": "Summarise."}]}],
        "tools": [{"name": "get_weather", "description": "Current weather for a city",
                   "input_schema": WEATHER_TOOL["function"]["parameters"]}],
        "tool_choice": {"type": "tool", "name": "get_weather"},
        "stop_sequences": ["END"],
        # no temperature: the API version the SDK pins refuses sampling parameters
    }


@pytest.mark.parametrize("choice, parallel, expected", [
    ("auto", None, {"type": "auto"}),
    ("none", None, {"type": "none"}),
    ("required", None, {"type": "any"}),
    ({"type": "function", "function": {"name": "f"}}, None, {"type": "tool", "name": "f"}),
    (None, False, {"type": "auto", "disable_parallel_tool_use": True}),
    (None, None, None),
])
def test_openai_tool_choice_maps_to_the_anthropic_equivalent(choice, parallel, expected):
    assert to_anthropic_tool_choice(choice, parallel) == expected


async def test_json_object_output_is_asked_for_in_the_system_prompt(wire, adapter):
    wire.reply(message([text_block("{}")]))
    await adapter.complete(ask(system="Be brief.", response_format={"type": "json_object"}),
                           "claude-haiku-4-5", 100)
    assert wire.requests[0].body["system"].startswith("Be brief.\n\n")
    assert "JSON" in wire.requests[0].body["system"]


async def test_a_json_schema_becomes_native_structured_output(wire, adapter):
    wire.reply(message([text_block('{"n": 1}')]))
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    await adapter.complete(
        ask(response_format={"type": "json_schema", "json_schema": {"name": "x",
                                                                    "schema": schema}}),
        "claude-haiku-4-5", 100)
    fmt = wire.requests[0].body["output_config"]["format"]
    assert fmt["type"] == "json_schema"
    assert fmt["schema"]["properties"] == {"n": {"type": "integer"}}
    assert fmt["schema"]["additionalProperties"] is False  # the API requires closed objects


async def test_reasoning_effort_turns_on_a_thinking_budget_below_the_cap(wire, adapter):
    wire.reply(message([text_block("42")]))
    await adapter.complete(ask(reasoning_effort="medium"), "claude-haiku-4-5", 8000)
    assert wire.requests[0].body["thinking"] == {"type": "enabled", "budget_tokens": 4000}


async def test_no_thinking_when_the_cap_leaves_no_room_for_the_minimum_budget(wire, adapter):
    wire.reply(message([text_block("42")]))
    await adapter.complete(ask(reasoning_effort="high"), "claude-haiku-4-5", 1024)
    assert "thinking" not in wire.requests[0].body


async def test_untranslatable_content_is_a_bad_request_before_any_call(wire, adapter):
    request = ChatRequest(messages=[{"role": "user", "content": [
        {"type": "input_audio", "input_audio": {"data": "x", "format": "wav"}}]}])
    with pytest.raises(BadRequest):
        await adapter.complete(request, "claude-haiku-4-5", 100)
    assert wire.requests == []


# ------------------------------------------------------------------ responses and usage


async def test_a_reply_with_thinking_and_tool_use_becomes_an_openai_completion(wire, adapter):
    wire.reply(message([thinking_block("The user wants weather."), text_block("Checking."),
                        tool_use_block("toolu_9", "get_weather", {"city": "Rome"})],
                       stop_reason="tool_use"))
    done = await adapter.complete(ask(tools=[WEATHER_TOOL]), "claude-haiku-4-5", 100)
    assert done.text == "Checking."
    assert done.reasoning == "The user wants weather."
    assert done.tool_calls == [{"id": "toolu_9", "type": "function", "function": {
        "name": "get_weather", "arguments": '{"city": "Rome"}'}}]
    assert done.finish_reason == "tool_calls"
    assert done.model == "claude-haiku-4-5-20251001"


@pytest.mark.parametrize("stop_reason, finish", [
    ("end_turn", "stop"), ("stop_sequence", "stop"), ("max_tokens", "length"),
    ("tool_use", "tool_calls"), ("refusal", "content_filter")])
async def test_stop_reasons_map_to_openai_finish_reasons(wire, adapter, stop_reason, finish):
    wire.reply(message([text_block("x")], stop_reason=stop_reason))
    assert (await adapter.complete(ask(), "claude-haiku-4-5", 10)).finish_reason == finish


async def test_cache_reads_and_writes_are_counted_in_input_exactly_once(wire, adapter):
    wire.reply(message([text_block("ok")],
                       usage=usage(50, 20, cache_read=1000, cache_write=200)))
    u = (await adapter.complete(ask(), "claude-haiku-4-5", 100)).usage
    assert (u.input_tokens, u.cache_read_tokens, u.cache_write_tokens) == (1250, 1000, 200)
    assert u.output_tokens == 20
    assert u.total_tokens == 1270


async def test_thinking_tokens_are_reported_inside_output_not_added_to_it(wire, adapter):
    wire.reply(message([thinking_block("hmm"), text_block("ok")],
                       usage={**usage(10, 300), "output_tokens_details": {"thinking_tokens": 250}}))
    u = (await adapter.complete(ask(), "claude-haiku-4-5", 2000)).usage
    assert (u.output_tokens, u.reasoning_tokens) == (300, 250)


# ------------------------------------------------------------------ streaming


async def test_a_stream_yields_thinking_text_and_tool_arguments_in_order_then_finish_and_usage(
        wire, adapter):
    wire.reply(message([thinking_block("Need the weather."), text_block("Let me look."),
                        tool_use_block("toolu_7", "get_weather", {"city": "Lisbon", "days": 3})],
                       stop_reason="tool_use", usage=usage(40, 90, cache_read=600, cache_write=60)),
               piece=5)
    deltas = await collect(adapter, ask(tools=[WEATHER_TOOL]))

    assert "".join(d.reasoning for d in deltas) == "Need the weather."
    assert "".join(d.text for d in deltas) == "Let me look."
    reasoning_at = max(i for i, d in enumerate(deltas) if d.reasoning)
    text_at = min(i for i, d in enumerate(deltas) if d.text)
    assert reasoning_at < text_at
    fragments = [c for d in deltas for c in d.tool_calls]
    assert len(fragments) > 3  # the arguments really arrived in pieces
    assert (fragments[0].index, fragments[0].id, fragments[0].name) == (0, "toolu_7",
                                                                        "get_weather")
    assert all(f.index == 0 for f in fragments)
    assert json.loads("".join(f.arguments for f in fragments)) == {"city": "Lisbon", "days": 3}
    final = deltas[-1]
    assert [d.finish_reason for d in deltas].count(None) == len(deltas) - 1
    assert final.finish_reason == "tool_calls"
    assert (final.usage.input_tokens, final.usage.cache_read_tokens,
            final.usage.cache_write_tokens, final.usage.output_tokens) == (700, 600, 60, 90)
    assert wire.requests[0].body["stream"] is True


async def test_two_streamed_tool_calls_keep_separate_openai_indexes(wire, adapter):
    wire.reply(message([tool_use_block("toolu_a", "get_weather", {"city": "A"}),
                        tool_use_block("toolu_b", "get_weather", {"city": "B"})],
                       stop_reason="tool_use"))
    deltas = await collect(adapter, ask(tools=[WEATHER_TOOL]))
    by_index: dict[int, str] = {}
    for c in (c for d in deltas for c in d.tool_calls):
        by_index[c.index] = by_index.get(c.index, "") + c.arguments
    assert {i: json.loads(a) for i, a in by_index.items()} == {0: {"city": "A"},
                                                               1: {"city": "B"}}


async def test_a_streamed_tool_without_parameters_gets_empty_object_arguments(wire, adapter):
    msg = message([tool_use_block("toolu_n", "now", {})], stop_reason="tool_use")
    events = [e for e in stream_events(msg) if e[1].get("delta", {}).get("type")
              != "input_json_delta"]
    wire.reply_events(events)
    deltas = await collect(adapter, ask())
    assert "".join(c.arguments for d in deltas for c in d.tool_calls) == "{}"


# ------------------------------------------------------------------ errors


@pytest.mark.parametrize("status, error", [
    (400, BadRequest), (404, BadRequest), (422, BadRequest), (401, AuthFailed),
    (403, AuthFailed), (500, Unavailable), (503, Unavailable), (529, Unavailable)])
async def test_http_failures_map_to_router_errors_by_status(wire, adapter, status, error):
    wire.reply_error(status)
    with pytest.raises(error) as caught:
        await adapter.complete(ask(), "claude-haiku-4-5", 10)
    assert caught.value.status == status
    assert isinstance(caught.value.__cause__, anthropic.APIStatusError)
    assert KEY not in str(caught.value)


async def test_rate_limiting_carries_the_retry_after_header(wire, adapter):
    wire.reply_error(429, retry_after="7")
    with pytest.raises(RateLimited) as caught:
        await adapter.complete(ask(), "claude-haiku-4-5", 10)
    assert caught.value.retry_after_s == 7.0
    assert caught.value.retryable


async def test_rate_limiting_without_retry_after_leaves_it_unknown(wire, adapter):
    wire.reply_error(429)
    with pytest.raises(RateLimited) as caught:
        await adapter.complete(ask(), "claude-haiku-4-5", 10)
    assert caught.value.retry_after_s is None
    assert len(wire.requests) == 1  # the SDK did not retry on its own


async def test_an_upstream_message_echoing_the_key_is_scrubbed(wire, adapter):
    wire.reply_error(401, message=f"invalid x-api-key: {KEY}")
    with pytest.raises(AuthFailed) as caught:
        await adapter.complete(ask(), "claude-haiku-4-5", 10)
    assert KEY not in str(caught.value)
    assert "ANTHROPIC_API_KEY" in str(caught.value)  # says which setting to fix


async def test_a_malformed_body_is_unavailable(wire, adapter):
    wire.reply_raw('{"id": "msg_1", "content": [')
    with pytest.raises(Unavailable):
        await adapter.complete(ask(), "claude-haiku-4-5", 10)


async def test_a_slow_upstream_times_out_as_unavailable(wire, base_url):
    wire.reply(message([text_block("late")]), delay_s=1.0)
    adapter = make_adapter(base_url, timeout_s=0.2)
    with pytest.raises(Unavailable) as caught:
        await adapter.complete(ask(), "claude-haiku-4-5", 10)
    assert isinstance(caught.value.__cause__, anthropic.APITimeoutError)
    await adapter.aclose()


async def test_a_refused_connection_is_unavailable():
    adapter = make_adapter(f"http://127.0.0.1:{free_port()}")
    with pytest.raises(Unavailable) as caught:
        await adapter.complete(ask(), "claude-haiku-4-5", 10)
    assert KEY not in str(caught.value)


async def test_a_stream_cut_mid_way_is_unavailable_after_the_deltas_already_sent(wire, adapter):
    wire.reply(message([text_block("A long answer that never ends")]), cut_after=5)
    seen = []
    with pytest.raises(Unavailable) as caught:
        async for d in adapter.stream(ask(), "claude-haiku-4-5", 100):
            seen.append(d)
    assert not isinstance(caught.value.__cause__, anthropic.APIStatusError)  # a transport break
    assert "".join(d.text for d in seen).startswith("A lo")
    assert all(d.finish_reason is None for d in seen)


async def test_a_stream_that_ends_cleanly_before_message_stop_is_unavailable(wire, adapter):
    wire.reply(message([text_block("Half an answer")]), cut_after=5, abort=False)
    with pytest.raises(Unavailable):
        await collect(adapter, ask())


async def test_an_overloaded_error_event_mid_stream_is_unavailable(wire, adapter):
    events = stream_events(message([text_block("Hello there")]))[:4]
    wire.reply_events([*events, ("error", error_body(529, "Overloaded"))])
    with pytest.raises(Unavailable) as caught:
        await collect(adapter, ask())
    assert caught.value.status == 529


async def test_no_key_and_no_injected_client_is_a_missing_key_error(base_url):
    config = ProviderConfig(kind="anthropic", base_url=base_url, key_env="ANTHROPIC_API_KEY")
    with pytest.raises(MissingKey) as caught:
        await AnthropicAdapter("anthropic", config).complete(ask(), "claude-haiku-4-5", 10)
    assert caught.value.env_var == "ANTHROPIC_API_KEY"


async def test_an_injected_client_is_used_as_given(wire, base_url):
    wire.reply(message([text_block("injected")]))
    client = anthropic.AsyncAnthropic(api_key="other-key", base_url=base_url, max_retries=0)
    config = ProviderConfig(kind="anthropic", base_url="http://unused.invalid")
    adapter = AnthropicAdapter("anthropic", config, client=client)
    assert (await adapter.complete(ask(), "claude-haiku-4-5", 10)).text == "injected"
    assert sent_key(wire.requests[0].headers) == "other-key"
    await adapter.aclose()
