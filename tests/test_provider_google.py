"""The Gemini adapter, driven through the official google-genai SDK against a loopback API."""

from __future__ import annotations

import base64
import json

import pytest
from google.genai import errors as genai_errors

from ai_router.config import ProviderConfig
from ai_router.errors import AuthFailed, BadRequest, MissingKey, RateLimited, Unavailable
from ai_router.providers.google import GoogleAdapter, clean_schema, to_function_calling_config
from ai_router.schema import ChatRequest
from upstreams.gemini_wire import (
    GeminiWire,
    blocked_prompt,
    error_body,
    function_call_part,
    response,
    stream_chunks,
    text_part,
    thought_part,
    usage,
)
from upstreams.server import free_port, serve

KEY = "fake-gemini-TESTKEY-must-never-leak-0123456789"
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n-not-really-an-image").decode()
WEATHER_TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather for a city",
    "parameters": {"$schema": "https://json-schema.org/draft/2020-12/schema",
                   "type": "object", "additionalProperties": False,
                   "properties": {"city": {"type": "string"}}, "required": ["city"]}}}


@pytest.fixture(scope="module")
def upstream():
    shared = GeminiWire()
    with serve(shared.app) as url:
        yield shared, url


@pytest.fixture
def wire(upstream):
    upstream[0].reset()
    return upstream[0]


@pytest.fixture
def base_url(upstream):
    return upstream[1]


def make_adapter(base_url: str, timeout_s: float = 5.0) -> GoogleAdapter:
    config = ProviderConfig(kind="google", base_url=base_url, key_env="GEMINI_API_KEY",
                            timeout_s=timeout_s)
    return GoogleAdapter("google", config, api_key=KEY)


@pytest.fixture
async def adapter(base_url):
    a = make_adapter(base_url)
    yield a
    await a.aclose()


def ask(text: str = "Hi", **kw) -> ChatRequest:
    return ChatRequest.from_prompt(text, **kw)


async def collect(adapter, request, cap=256):
    return [d async for d in adapter.stream(request, "gemini-2.5-flash", cap)]


# ------------------------------------------------------------------ request translation
# The SDK sends some nested fields (inside inlineData, fileData, thinkingConfig and
# functionDeclarations) in snake_case; Google's proto-JSON parser accepts both
# spellings, so the expectations below spell them as the SDK really sends them.


async def test_a_full_conversation_reaches_the_upstream_translated_to_gemini_contents(
        wire, adapter):
    wire.reply(response([text_part("Sunny.")]))
    request = ChatRequest(
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": [
                {"type": "text", "text": "What is this, and the weather?"},
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}}]},
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": "call_0", "type": "function",
                 "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}},
                {"id": "call_1", "type": "function",
                 "function": {"name": "get_time", "arguments": '{"tz": "CET"}'}}]},
            {"role": "tool", "tool_call_id": "call_0", "content": '{"temp_c": 18}'},
            {"role": "tool", "tool_call_id": "call_1", "content": "14:05"},
            {"role": "user", "content": "Summarise."}],
        tools=[WEATHER_TOOL], tool_choice="required", stop=["END", "STOP"],
        temperature=0.3, top_p=0.9, max_tokens=9999)

    await adapter.complete(request, "gemini-2.5-flash", 321)

    received = wire.requests[0]
    assert received.path == "/v1beta/models/gemini-2.5-flash:generateContent"
    assert received.headers["x-goog-api-key"] == KEY
    body = received.body
    assert body["systemInstruction"]["parts"] == [{"text": "Be brief."}]
    assert body["contents"] == [
        {"role": "user", "parts": [
            {"text": "What is this, and the weather?"},
            {"inlineData": {"mime_type": "image/png", "data": PNG}}]},
        {"role": "model", "parts": [
            {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}},
            {"functionCall": {"name": "get_time", "args": {"tz": "CET"}}}]},
        {"role": "user", "parts": [  # both results (named from the calls) and the next text
            {"functionResponse": {"name": "get_weather", "response": {"temp_c": 18}}},
            {"functionResponse": {"name": "get_time", "response": {"result": "14:05"}}},
            {"text": "Summarise."}]}]
    assert body["tools"] == [{"functionDeclarations": [{
        "name": "get_weather", "description": "Current weather for a city",
        "parameters_json_schema": {"type": "object", "properties": {"city": {"type": "string"}},
                                 "required": ["city"]}}]}]
    assert body["toolConfig"] == {"functionCallingConfig": {"mode": "ANY"}}
    assert body["generationConfig"] == {"maxOutputTokens": 321, "temperature": 0.3,
                                        "topP": 0.9, "stopSequences": ["END", "STOP"]}


@pytest.mark.parametrize("choice, expected", [
    ("auto", {"mode": "AUTO"}), ("none", {"mode": "NONE"}), ("required", {"mode": "ANY"}),
    ({"type": "function", "function": {"name": "f"}},
     {"mode": "ANY", "allowed_function_names": ["f"]})])
def test_openai_tool_choice_maps_to_a_function_calling_config(choice, expected):
    assert to_function_calling_config(choice) == expected


def test_schema_cleaning_drops_rejected_keywords_but_keeps_property_names():
    schema = {"type": "object", "additionalProperties": False, "$schema": "x",
              "properties": {"strict": {"type": "boolean"},
                             "inner": {"type": "object", "additionalProperties": True}}}
    assert clean_schema(schema) == {"type": "object", "properties": {
        "strict": {"type": "boolean"}, "inner": {"type": "object"}}}


async def test_an_http_image_url_becomes_file_data(wire, adapter):
    wire.reply(response([text_part("a cat")]))
    await adapter.complete(ChatRequest(messages=[{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}]}]),
        "gemini-2.5-flash", 50)
    assert wire.requests[0].body["contents"][0]["parts"] == [
        {"fileData": {"file_uri": "https://example.com/cat.png", "mime_type": "image/png"}}]


async def test_a_json_schema_response_format_becomes_mime_type_and_schema(wire, adapter):
    wire.reply(response([text_part('{"n": 1}')]))
    schema = {"type": "object", "properties": {"n": {"type": "integer"}},
              "additionalProperties": False}
    await adapter.complete(
        ask(response_format={"type": "json_schema", "json_schema": {"name": "x",
                                                                    "schema": schema}}),
        "gemini-2.5-flash", 100)
    config = wire.requests[0].body["generationConfig"]
    assert config["responseMimeType"] == "application/json"
    assert config["responseJsonSchema"] == {"type": "object",
                                            "properties": {"n": {"type": "integer"}}}


async def test_json_object_output_asks_only_for_the_json_mime_type(wire, adapter):
    wire.reply(response([text_part("{}")]))
    await adapter.complete(ask(response_format={"type": "json_object"}), "gemini-2.5-flash", 9)
    config = wire.requests[0].body["generationConfig"]
    assert config["responseMimeType"] == "application/json"
    assert "responseJsonSchema" not in config


async def test_reasoning_effort_sets_a_thinking_budget_within_the_cap(wire, adapter):
    wire.reply(response([text_part("42")]))
    await adapter.complete(ask(reasoning_effort="high"), "gemini-2.5-flash", 10000)
    assert wire.requests[0].body["generationConfig"]["thinkingConfig"] == {
        "thinking_budget": 5000, "include_thoughts": True}


async def test_a_tool_result_for_an_unknown_call_is_a_bad_request_before_any_call(
        wire, adapter):
    request = ChatRequest(messages=[{"role": "user", "content": "hi"},
                                    {"role": "tool", "tool_call_id": "nope", "content": "x"}])
    with pytest.raises(BadRequest):
        await adapter.complete(request, "gemini-2.5-flash", 10)
    assert wire.requests == []


# ------------------------------------------------------------------ responses and usage


async def test_a_reply_with_thoughts_and_function_calls_becomes_an_openai_completion(
        wire, adapter):
    wire.reply(response([thought_part("Weather needed."), text_part("Checking."),
                         function_call_part("get_weather", {"city": "Rome"}),
                         function_call_part("get_weather", {"city": "Oslo"})]))
    done = await adapter.complete(ask(tools=[WEATHER_TOOL]), "gemini-2.5-flash", 100)
    assert (done.text, done.reasoning) == ("Checking.", "Weather needed.")
    assert done.tool_calls == [
        {"id": "call_0", "type": "function",
         "function": {"name": "get_weather", "arguments": '{"city": "Rome"}'}},
        {"id": "call_1", "type": "function",
         "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'}}]
    assert done.finish_reason == "tool_calls"  # Gemini says STOP even for calls
    assert done.model == "gemini-2.5-flash"


async def test_synthesised_call_ids_let_the_results_find_their_function_names(wire, adapter):
    wire.reply(response([function_call_part("get_weather", {"city": "Rome"})]))
    first = await adapter.complete(ask(tools=[WEATHER_TOOL]), "gemini-2.5-flash", 100)
    call = first.tool_calls[0]
    wire.reply(response([text_part("Warm.")]))
    await adapter.complete(ChatRequest(messages=[
        {"role": "user", "content": "Weather in Rome?"},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": call["id"], "content": "25C"}], tools=[WEATHER_TOOL]),
        "gemini-2.5-flash", 100)
    assert wire.requests[1].body["contents"][-1]["parts"] == [
        {"functionResponse": {"name": "get_weather", "response": {"result": "25C"}}}]


@pytest.mark.parametrize("reason, finish", [
    ("STOP", "stop"), ("MAX_TOKENS", "length"), ("SAFETY", "content_filter"),
    ("RECITATION", "content_filter"), ("PROHIBITED_CONTENT", "content_filter")])
async def test_finish_reasons_map_to_openai_ones(wire, adapter, reason, finish):
    wire.reply(response([text_part("x")], finish_reason=reason))
    assert (await adapter.complete(ask(), "gemini-2.5-flash", 10)).finish_reason == finish


async def test_a_blocked_prompt_is_a_content_filter_finish(wire, adapter):
    wire.reply(blocked_prompt())
    done = await adapter.complete(ask(), "gemini-2.5-flash", 10)
    assert (done.text, done.finish_reason) == ("", "content_filter")


async def test_cached_content_is_counted_in_input_exactly_once(wire, adapter):
    wire.reply(response([text_part("ok")], usage=usage(1200, 40, cached=1000)))
    u = (await adapter.complete(ask(), "gemini-2.5-flash", 100)).usage
    assert (u.input_tokens, u.cache_read_tokens, u.output_tokens) == (1200, 1000, 40)


async def test_thought_tokens_are_added_to_output_exactly_once(wire, adapter):
    wire.reply(response([thought_part("hmm"), text_part("ok")], usage=usage(10, 40, thoughts=300)))
    u = (await adapter.complete(ask(), "gemini-2.5-flash", 1000)).usage
    assert (u.output_tokens, u.reasoning_tokens) == (340, 300)
    assert u.total_tokens == 350  # = totalTokenCount upstream


# ------------------------------------------------------------------ streaming


async def test_a_stream_yields_thoughts_text_and_calls_in_order_then_finish_and_usage(
        wire, adapter):
    wire.reply(response([thought_part("Need weather."), text_part("Let me look."),
                         function_call_part("get_weather", {"city": "Lisbon"}),
                         function_call_part("get_weather", {"city": "Porto"})],
                        usage=usage(700, 90, cached=600, thoughts=25)), piece=5)
    deltas = await collect(adapter, ask(tools=[WEATHER_TOOL]))

    assert wire.requests[0].method == "streamGenerateContent"
    assert wire.requests[0].query == "alt=sse"
    assert "".join(d.reasoning for d in deltas) == "Need weather."
    assert "".join(d.text for d in deltas) == "Let me look."
    assert max(i for i, d in enumerate(deltas) if d.reasoning) < min(
        i for i, d in enumerate(deltas) if d.text)
    calls = [c for d in deltas for c in d.tool_calls]
    assert [(c.index, c.id, c.name, json.loads(c.arguments)) for c in calls] == [
        (0, "call_0", "get_weather", {"city": "Lisbon"}),
        (1, "call_1", "get_weather", {"city": "Porto"})]
    final = deltas[-1]
    assert [d.finish_reason for d in deltas].count(None) == len(deltas) - 1
    assert final.finish_reason == "tool_calls"
    assert (final.usage.input_tokens, final.usage.cache_read_tokens,
            final.usage.output_tokens, final.usage.reasoning_tokens) == (700, 600, 115, 25)


async def test_a_streamed_text_answer_finishes_with_stop(wire, adapter):
    wire.reply(response([text_part("Hello there, friend")], finish_reason="MAX_TOKENS"))
    deltas = await collect(adapter, ask())
    assert "".join(d.text for d in deltas) == "Hello there, friend"
    assert deltas[-1].finish_reason == "length"


# ------------------------------------------------------------------ errors


@pytest.mark.parametrize("status, error", [
    (400, BadRequest), (404, BadRequest), (422, BadRequest), (401, AuthFailed),
    (403, AuthFailed), (500, Unavailable), (503, Unavailable), (504, Unavailable)])
async def test_http_failures_map_to_router_errors_by_status(wire, adapter, status, error):
    wire.reply_error(status)
    with pytest.raises(error) as caught:
        await adapter.complete(ask(), "gemini-2.5-flash", 10)
    assert caught.value.status == status
    assert isinstance(caught.value.__cause__, genai_errors.APIError)
    assert KEY not in str(caught.value)
    assert len(wire.requests) == 1  # the SDK did not retry on its own


async def test_an_invalid_key_reported_as_400_is_an_auth_failure(wire, adapter):
    wire.reply_error(400, f"API key not valid: {KEY}", reason="API_KEY_INVALID")
    with pytest.raises(AuthFailed) as caught:
        await adapter.complete(ask(), "gemini-2.5-flash", 10)
    assert KEY not in str(caught.value)
    assert "GEMINI_API_KEY" in str(caught.value)  # says which setting to fix


async def test_rate_limiting_carries_the_retry_after_header(wire, adapter):
    wire.reply_error(429, retry_after="7")
    with pytest.raises(RateLimited) as caught:
        await adapter.complete(ask(), "gemini-2.5-flash", 10)
    assert caught.value.retry_after_s == 7.0


async def test_rate_limiting_reads_the_retry_delay_from_the_error_details(wire, adapter):
    wire.reply_error(429, retry_delay="37s")
    with pytest.raises(RateLimited) as caught:
        await adapter.complete(ask(), "gemini-2.5-flash", 10)
    assert caught.value.retry_after_s == 37.0


async def test_rate_limiting_without_a_delay_leaves_it_unknown(wire, adapter):
    wire.reply_error(429)
    with pytest.raises(RateLimited) as caught:
        await adapter.complete(ask(), "gemini-2.5-flash", 10)
    assert caught.value.retry_after_s is None
    assert len(wire.requests) == 1


async def test_a_malformed_body_is_unavailable(wire, adapter):
    wire.reply_raw('{"candidates": [')
    with pytest.raises(Unavailable):
        await adapter.complete(ask(), "gemini-2.5-flash", 10)


async def test_a_slow_upstream_times_out_as_unavailable(wire, base_url):
    wire.reply(response([text_part("late")]), delay_s=1.0)
    adapter = make_adapter(base_url, timeout_s=0.2)
    with pytest.raises(Unavailable):
        await adapter.complete(ask(), "gemini-2.5-flash", 10)
    await adapter.aclose()


async def test_a_refused_connection_is_unavailable_without_waiting_for_sdk_retries():
    adapter = make_adapter(f"http://127.0.0.1:{free_port()}")
    with pytest.raises(Unavailable) as caught:
        await adapter.complete(ask(), "gemini-2.5-flash", 10)
    assert KEY not in str(caught.value)
    await adapter.aclose()


async def test_a_stream_cut_mid_way_is_unavailable_after_the_deltas_already_sent(wire, adapter):
    wire.reply(response([text_part("A long answer that never ends")]), cut_after=2)
    seen = []
    with pytest.raises(Unavailable) as caught:
        async for d in adapter.stream(ask(), "gemini-2.5-flash", 100):
            seen.append(d)
    assert "".join(d.text for d in seen) == "A long a"
    assert all(d.finish_reason is None for d in seen)
    assert not isinstance(caught.value.__cause__, genai_errors.APIError)  # a transport break
    assert len(wire.requests) == 1  # no automatic continuation re-sent the request


async def test_a_stream_that_ends_cleanly_without_a_finish_reason_is_unavailable(wire, adapter):
    wire.reply(response([text_part("Half an answer")]), cut_after=2, abort=False)
    with pytest.raises(Unavailable):
        await collect(adapter, ask())
    assert len(wire.requests) == 1


async def test_an_error_chunk_mid_stream_maps_by_its_code(wire, adapter):
    chunks = stream_chunks(response([text_part("Hello there")]))[:2]
    wire.reply_chunks([*chunks, error_body(503, "overloaded")])
    with pytest.raises(Unavailable) as caught:
        await collect(adapter, ask())
    assert caught.value.status == 503


async def test_no_key_and_no_injected_client_is_a_missing_key_error(base_url):
    config = ProviderConfig(kind="google", base_url=base_url, key_env="GEMINI_API_KEY")
    with pytest.raises(MissingKey) as caught:
        await GoogleAdapter("google", config).complete(ask(), "gemini-2.5-flash", 10)
    assert caught.value.env_var == "GEMINI_API_KEY"


async def test_an_injected_client_is_used_as_given(wire, base_url):
    from google import genai
    from google.genai import types
    wire.reply(response([text_part("injected")]))
    client = genai.Client(api_key="other-key", http_options=types.HttpOptions(
        base_url=base_url, api_version="v1beta"))
    config = ProviderConfig(kind="google", base_url="http://unused.invalid")
    adapter = GoogleAdapter("google", config, client=client)
    assert (await adapter.complete(ask(), "gemini-2.5-flash", 10)).text == "injected"
    assert wire.requests[0].headers["x-goog-api-key"] == "other-key"
    await adapter.aclose()
