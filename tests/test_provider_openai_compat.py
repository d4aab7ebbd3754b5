"""The openai-compatible adapter, driven through the official `openai` SDK against a
loopback server speaking OpenAI's chat-completions wire format."""

from __future__ import annotations

import json

import openai
import pytest

from ai_router.config import ProviderConfig
from ai_router.errors import AuthFailed, BadRequest, RateLimited, Unavailable
from ai_router.providers.openai_compat import OpenAICompatAdapter
from ai_router.schema import ChatRequest, Delta
from upstreams.openai_wire import (
    OpenAIUpstream,
    chunk_body,
    completion_body,
    error_reply,
    json_reply,
    malformed_reply,
    slow_reply,
    sse_reply,
    text_chunks,
    tool_call_body,
    tool_call_chunk,
    usage_body,
)
from upstreams.server import free_port

KEY = "fake-openai-DO-NOT-LEAK-4242"
WEATHER_TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                   "required": ["city"]}}}


def make_adapter(base_url: str, *, field: str = "max_tokens",
                 timeout_s: float = 5.0) -> OpenAICompatAdapter:
    config = ProviderConfig(kind="openai-compatible", base_url=base_url, key_env="TEST_API_KEY",
                            timeout_s=timeout_s, max_tokens_field=field)
    return OpenAICompatAdapter("testprov", config, api_key=KEY)


@pytest.fixture(scope="module")
def _served():
    up = OpenAIUpstream()
    with up.running():
        yield up


@pytest.fixture
def upstream(_served):
    _served.reset()
    return _served


@pytest.fixture
async def adapter(upstream):
    a = make_adapter(upstream.base_url)
    yield a
    await a.aclose()


async def collect(adapter, request, model="gpt-test", max_tokens=64) -> list[Delta]:
    return [d async for d in adapter.stream(request, model, max_tokens)]


def joined_tool_calls(deltas: list[Delta]) -> dict[int, dict]:
    """Reassemble streamed tool-call fragments the way an OpenAI client does."""
    calls: dict[int, dict] = {}
    for d in deltas:
        for f in d.tool_calls:
            call = calls.setdefault(f.index, {"id": None, "name": None, "arguments": ""})
            call["id"] = call["id"] or f.id
            call["name"] = call["name"] or f.name
            call["arguments"] += f.arguments
    return calls


# ---- complete() -------------------------------------------------------------------------

async def test_completion_returns_text_model_and_full_usage_with_cached_and_reasoning(
        upstream, adapter):
    upstream.push(json_reply(completion_body(
        "Paris.", model="gpt-5-mini-2025",
        usage=usage_body(1200, 300, cached=1000, reasoning=250))))

    done = await adapter.complete(ChatRequest.from_prompt("Capital of France?"), "gpt-5-mini", 512)

    assert done.text == "Paris."
    assert done.model == "gpt-5-mini-2025"
    assert done.finish_reason == "stop"
    assert done.usage is not None
    assert (done.usage.input_tokens, done.usage.cache_read_tokens) == (1200, 1000)
    assert (done.usage.output_tokens, done.usage.reasoning_tokens) == (300, 250)
    assert done.usage.estimated is False


async def test_deepseek_reasoning_content_and_cache_hit_tokens_are_read(upstream, adapter):
    upstream.push(json_reply(completion_body(
        "42", model="deepseek-reasoner", reasoning_content="6 times 7 is 42",
        usage=usage_body(800, 120, reasoning=100, deepseek_cache_hit=640))))

    done = await adapter.complete(ChatRequest.from_prompt("6*7?"), "deepseek-reasoner", 256)

    assert done.reasoning == "6 times 7 is 42"
    assert done.usage.cache_read_tokens == 640
    assert (done.usage.input_tokens, done.usage.output_tokens) == (800, 120)
    assert done.usage.reasoning_tokens == 100


async def test_usage_is_none_when_the_provider_reports_none(upstream, adapter):
    upstream.push(json_reply(completion_body("hi", usage=None)))

    done = await adapter.complete(ChatRequest.from_prompt("hi"), "local", 16)

    assert done.usage is None


@pytest.mark.parametrize("field", ["max_tokens", "max_completion_tokens"])
async def test_the_cap_is_sent_under_the_configured_field_only(upstream, field):
    upstream.push(json_reply(completion_body("ok")))
    adapter = make_adapter(upstream.base_url, field=field)
    request = ChatRequest.from_prompt("hi", max_tokens=9999)  # the client's own ask is ignored

    await adapter.complete(request, "gpt-test", 77)
    await adapter.aclose()

    body = upstream.requests[0].body
    other = {"max_tokens", "max_completion_tokens"} - {field}
    assert body[field] == 77
    assert not other & body.keys()


async def test_unset_fields_are_omitted_and_set_fields_passed_through(upstream, adapter):
    upstream.push(json_reply(completion_body("ok")), json_reply(completion_body("ok")))
    bare = ChatRequest.from_prompt("hi")
    full = ChatRequest.from_prompt("hi", system="be brief", temperature=0.2, top_p=0.9,
                                   stop=["END"], reasoning_effort="low",
                                   response_format={"type": "json_object"})

    await adapter.complete(bare, "gpt-test", 10)
    await adapter.complete(full, "gpt-test", 10)

    assert set(upstream.requests[0].body) == {"model", "messages", "max_tokens"}
    sent = upstream.requests[1].body
    assert sent["messages"] == full.messages
    assert (sent["temperature"], sent["top_p"], sent["stop"]) == (0.2, 0.9, ["END"])
    assert sent["reasoning_effort"] == "low"
    assert sent["response_format"] == {"type": "json_object"}
    assert "tools" not in sent and "tool_choice" not in sent


async def test_the_key_is_sent_as_a_bearer_token(upstream, adapter):
    upstream.push(json_reply(completion_body("ok")))

    await adapter.complete(ChatRequest.from_prompt("hi"), "gpt-test", 10)

    assert upstream.requests[0].headers["authorization"] == f"Bearer {KEY}"


async def sent_both_ways(upstream, adapter, request: ChatRequest) -> list:
    """What the upstream received for `request` asked once plain, once streamed."""
    upstream.push(json_reply(completion_body("ok")),
                  sse_reply([chunk_body({"content": "ok"}, finish_reason="stop")]))
    await adapter.complete(request, "gpt-test", 10)
    await collect(adapter, request)
    return upstream.requests


async def test_the_sdks_telemetry_headers_are_not_sent(upstream, adapter):
    for sent in await sent_both_ways(upstream, adapter, ChatRequest.from_prompt("hi")):
        assert not [h for h in sent.headers if h.startswith("x-stainless")], sent.headers
        assert sent.headers["user-agent"].startswith("AsyncOpenAI/Python")


async def test_requests_are_json_with_non_ascii_text_intact(upstream, adapter):
    request = ChatRequest.from_prompt("Grüße aus Köln, 東京 🚀")
    sent_plain, sent_streamed = await sent_both_ways(upstream, adapter, request)

    for sent in (sent_plain, sent_streamed):
        assert sent.headers["content-type"] == "application/json"
        assert sent.body["messages"] == request.messages
    assert sent_streamed.body["stream"] is True
    assert sent_streamed.body["stream_options"] == {"include_usage": True}


async def test_tool_calls_round_trip_in_openai_shape(upstream, adapter):
    call = tool_call_body("call_abc", "get_weather", {"city": "Oslo"})
    upstream.push(json_reply(completion_body(None, tool_calls=[call])),
                  json_reply(completion_body("It is 3°C in Oslo.")))
    ask = ChatRequest.from_prompt("Weather in Oslo?", tools=[WEATHER_TOOL], tool_choice="auto")

    first = await adapter.complete(ask, "gpt-test", 100)
    follow_up = ChatRequest(messages=[
        *ask.messages,
        {"role": "assistant", "content": None, "tool_calls": first.tool_calls},
        {"role": "tool", "tool_call_id": "call_abc", "content": "3°C"}], tools=[WEATHER_TOOL])
    second = await adapter.complete(follow_up, "gpt-test", 100)

    assert first.finish_reason == "tool_calls"
    assert first.text == ""
    assert first.tool_calls == [call]
    assert json.loads(first.tool_calls[0]["function"]["arguments"]) == {"city": "Oslo"}
    assert upstream.requests[0].body["tools"] == [WEATHER_TOOL]
    assert upstream.requests[0].body["tool_choice"] == "auto"
    assert upstream.requests[1].body["messages"][1:] == follow_up.messages[1:]
    assert second.text == "It is 3°C in Oslo."


# ---- stream() ---------------------------------------------------------------------------

async def test_stream_yields_text_then_finish_and_usage_from_the_final_chunk(upstream, adapter):
    upstream.push(sse_reply(text_chunks("Hel", "lo", "!"),
                            usage=usage_body(20, 3, cached=16, reasoning=0)))

    deltas = await collect(adapter, ChatRequest.from_prompt("hi"))

    sent = upstream.requests[0].body
    assert sent["stream"] is True
    assert sent["stream_options"] == {"include_usage": True}
    assert "".join(d.text for d in deltas) == "Hello!"
    assert [d.finish_reason for d in deltas if d.finish_reason] == ["stop"]
    assert deltas[-1].usage is not None
    assert (deltas[-1].usage.input_tokens, deltas[-1].usage.cache_read_tokens) == (20, 16)
    assert deltas[-1].usage.output_tokens == 3


async def test_stream_without_usage_still_finishes(upstream, adapter):
    upstream.push(sse_reply(text_chunks("ok")))  # a server that ignores include_usage

    deltas = await collect(adapter, ChatRequest.from_prompt("hi"))

    assert "".join(d.text for d in deltas) == "ok"
    assert deltas[-1].finish_reason == "stop"
    assert all(d.usage is None for d in deltas)


async def test_stream_keeps_every_tool_call_fragment_in_order(upstream, adapter):
    upstream.push(sse_reply([
        chunk_body({"role": "assistant", "content": None}),
        tool_call_chunk(0, call_id="call_1", name="get_weather"),
        tool_call_chunk(0, arguments='{"ci'),
        tool_call_chunk(0, arguments='ty": "Os'),
        tool_call_chunk(0, arguments='lo"}'),
        tool_call_chunk(1, call_id="call_2", name="get_weather", arguments='{"city"'),
        tool_call_chunk(1, arguments=': "Rome"}'),
        chunk_body({}, finish_reason="tool_calls")], usage=usage_body(50, 30)))

    deltas = await collect(adapter, ChatRequest.from_prompt("Oslo and Rome?",
                                                             tools=[WEATHER_TOOL]))

    calls = joined_tool_calls(deltas)
    assert calls[0] == {"id": "call_1", "name": "get_weather", "arguments": '{"city": "Oslo"}'}
    assert calls[1] == {"id": "call_2", "name": "get_weather", "arguments": '{"city": "Rome"}'}
    assert deltas[-1].usage.output_tokens == 30
    assert [d.finish_reason for d in deltas if d.finish_reason] == ["tool_calls"]


async def test_stream_keeps_the_tool_name_when_text_and_a_tool_call_share_a_chunk(
        upstream, adapter):
    upstream.push(sse_reply([
        tool_call_chunk(0, call_id="call_9", name="get_weather", arguments='{"city": "Oslo"}',
                        content="Let me check. "),
        chunk_body({}, finish_reason="tool_calls")]))

    deltas = await collect(adapter, ChatRequest.from_prompt("Oslo?", tools=[WEATHER_TOOL]))

    assert "".join(d.text for d in deltas) == "Let me check. "
    assert joined_tool_calls(deltas) == {
        0: {"id": "call_9", "name": "get_weather", "arguments": '{"city": "Oslo"}'}}


async def test_stream_yields_deepseek_reasoning_content(upstream, adapter):
    upstream.push(sse_reply([
        chunk_body({"role": "assistant", "content": None, "reasoning_content": "Think"}),
        chunk_body({"content": None, "reasoning_content": "ing."}),
        chunk_body({"content": "42"}),
        chunk_body({}, finish_reason="stop")],
        usage=usage_body(10, 40, reasoning=30, deepseek_cache_hit=8)))

    deltas = await collect(adapter, ChatRequest.from_prompt("6*7?"))

    assert "".join(d.reasoning for d in deltas) == "Thinking."
    assert "".join(d.text for d in deltas) == "42"
    assert deltas[-1].usage.cache_read_tokens == 8
    assert deltas[-1].usage.reasoning_tokens == 30


async def test_stream_cut_midway_raises_unavailable_after_the_text_so_far(upstream, adapter):
    upstream.push(sse_reply(text_chunks("one ", "two ", "three"), cut_after=2))
    seen: list[Delta] = []

    with pytest.raises(Unavailable) as caught:
        async for d in adapter.stream(ChatRequest.from_prompt("count"), "gpt-test", 10):
            seen.append(d)

    assert "".join(d.text for d in seen) == "one "
    assert caught.value.retryable


async def test_stream_that_ends_without_a_finish_reason_raises_unavailable(upstream, adapter):
    upstream.push(sse_reply([chunk_body({"content": "partial"})], done=False))

    with pytest.raises(Unavailable, match="ended before"):
        await collect(adapter, ChatRequest.from_prompt("hi"))


async def test_a_malformed_chunk_raises_unavailable(upstream, adapter):
    upstream.push(sse_reply([chunk_body({"content": "ok"}), {"id": "chatcmpl-test"}]))

    with pytest.raises(Unavailable, match="malformed"):
        await collect(adapter, ChatRequest.from_prompt("hi"))


async def test_an_error_event_inside_the_stream_raises_unavailable(upstream, adapter):
    upstream.push(sse_reply([chunk_body({"content": "par"}),
                             {"error": {"message": "overloaded", "type": "server_error"}}]))

    with pytest.raises(Unavailable, match="overloaded") as caught:
        await collect(adapter, ChatRequest.from_prompt("hi"))

    assert isinstance(caught.value.__cause__, openai.APIError)


async def test_stream_maps_an_http_error_before_the_first_chunk(upstream, adapter):
    upstream.push(error_reply(429, headers={"retry-after": "7"}))

    with pytest.raises(RateLimited) as caught:
        await collect(adapter, ChatRequest.from_prompt("hi"))

    assert caught.value.retry_after_s == 7.0


# ---- errors -----------------------------------------------------------------------------

@pytest.mark.parametrize(("headers", "seconds"), [
    ({"retry-after": "3"}, 3.0),
    ({"retry-after-ms": "1500"}, 1.5),
    ({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, 0.0),  # a date in the past
    ({}, None),
])
async def test_429_maps_to_rate_limited_with_retry_after(upstream, adapter, headers, seconds):
    upstream.push(error_reply(429, "Rate limit reached", headers=headers))

    with pytest.raises(RateLimited) as caught:
        await adapter.complete(ChatRequest.from_prompt("hi"), "gpt-test", 10)

    assert caught.value.retry_after_s == seconds
    assert caught.value.status == 429
    assert isinstance(caught.value.__cause__, openai.RateLimitError)


@pytest.mark.parametrize(("status", "error"), [
    (500, Unavailable), (503, Unavailable), (401, AuthFailed), (403, AuthFailed),
    (400, BadRequest), (404, BadRequest), (422, BadRequest)])
async def test_http_status_maps_to_the_router_error(upstream, adapter, status, error):
    upstream.push(error_reply(status, "scripted failure"))

    with pytest.raises(error) as caught:
        await adapter.complete(ChatRequest.from_prompt("hi"), "gpt-test", 10)

    assert caught.value.status == status
    assert caught.value.provider == "testprov"
    assert isinstance(caught.value.__cause__, openai.APIStatusError)


async def test_auth_failure_names_the_env_var_to_fix(upstream, adapter):
    upstream.push(error_reply(401, "Invalid Authentication"))

    with pytest.raises(AuthFailed, match="TEST_API_KEY"):
        await adapter.complete(ChatRequest.from_prompt("hi"), "gpt-test", 10)


async def test_connection_refused_maps_to_unavailable():
    adapter = make_adapter(f"http://127.0.0.1:{free_port()}/v1")

    with pytest.raises(Unavailable) as caught:
        await adapter.complete(ChatRequest.from_prompt("hi"), "gpt-test", 10)
    await adapter.aclose()

    assert isinstance(caught.value.__cause__, openai.APIConnectionError)
    assert "cannot connect" in str(caught.value)
    assert not caught.value.maybe_billed  # nothing reached the provider: nothing to charge


async def test_read_timeout_maps_to_unavailable(upstream):
    upstream.push(slow_reply(0.6, json_reply(completion_body("late"))))
    adapter = make_adapter(upstream.base_url, timeout_s=0.2)

    with pytest.raises(Unavailable, match="0.2s") as caught:
        await adapter.complete(ChatRequest.from_prompt("hi"), "gpt-test", 10)
    await adapter.aclose()

    assert isinstance(caught.value.__cause__, openai.APITimeoutError)
    assert caught.value.maybe_billed  # the request was sent: the provider may have billed it


@pytest.mark.parametrize("reply", [malformed_reply(), json_reply({"unexpected": True}),
                                   json_reply({"choices": []})],
                         ids=["broken-json", "not-a-completion", "no-choices"])
async def test_a_malformed_body_maps_to_unavailable(upstream, adapter, reply):
    upstream.push(reply)

    with pytest.raises(Unavailable, match="malformed"):
        await adapter.complete(ChatRequest.from_prompt("hi"), "gpt-test", 10)


@pytest.mark.parametrize("reply", [
    error_reply(401, f"Incorrect API key provided: {KEY}"),
    error_reply(429, f"rate limit for key {KEY}"),
    error_reply(500, f"internal error ({KEY})"),
    error_reply(400, f"bad request from {KEY}")], ids=["401", "429", "500", "400"])
async def test_the_api_key_never_appears_in_a_raised_error(upstream, adapter, reply):
    upstream.push(reply)

    with pytest.raises(Exception) as caught:
        await adapter.complete(ChatRequest.from_prompt("hi"), "gpt-test", 10)

    assert KEY not in str(caught.value)
    assert KEY not in repr(caught.value)
    assert "***" in str(caught.value)  # the provider's message is kept, scrubbed
