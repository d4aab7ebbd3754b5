"""The ollama adapter, driven through the official `ollama` SDK against a loopback server
speaking Ollama's native API (/api/chat, /api/show, /api/tags, /api/pull)."""

from __future__ import annotations

import base64
import json

import ollama
import pytest

from ai_router.config import ProviderConfig
from ai_router.errors import BadRequest, RateLimited, Unavailable
from ai_router.providers.ollama import OllamaAdapter
from ai_router.schema import ChatRequest, Delta
from upstreams.ollama_wire import (
    OllamaUpstream,
    chat_body,
    done_body,
    error_reply,
    json_reply,
    malformed_reply,
    ndjson_reply,
    part_body,
    slow_reply,
    tool_call_body,
)
from upstreams.server import free_port

MODEL = "llama3.2:1b"
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n tiny").decode()
WEATHER_TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                   "required": ["city"]}}}


def make_adapter(host: str, timeout_s: float = 5.0) -> OllamaAdapter:
    return OllamaAdapter("ollama", ProviderConfig(kind="ollama", base_url=host,
                                                  timeout_s=timeout_s))


@pytest.fixture(scope="module")
def _served():
    up = OllamaUpstream()
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


async def collect(adapter, request, max_tokens=64) -> list[Delta]:
    return [d async for d in adapter.stream(request, MODEL, max_tokens)]


# ---- complete() -------------------------------------------------------------------------

async def test_completion_returns_text_and_usage_from_eval_counts(upstream, adapter):
    upstream.push(json_reply(chat_body("Paris.", prompt_eval_count=26, eval_count=3,
                                       model=MODEL)))

    done = await adapter.complete(ChatRequest.from_prompt("Capital of France?"), MODEL, 128)

    assert done.text == "Paris."
    assert done.model == MODEL
    assert done.finish_reason == "stop"
    assert (done.usage.input_tokens, done.usage.output_tokens) == (26, 3)
    assert upstream.requests[0].body["stream"] is False


async def test_request_carries_cap_options_keep_alive_and_json_format(upstream, adapter):
    upstream.push(json_reply(chat_body("{}")), json_reply(chat_body("{}")))
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    json_mode = ChatRequest.from_prompt("hi", temperature=0.3, top_p=0.8, stop="END",
                                        response_format={"type": "json_object"})
    schema_mode = ChatRequest.from_prompt("hi", response_format={
        "type": "json_schema", "json_schema": {"name": "a", "schema": schema}})

    await adapter.complete(json_mode, MODEL, 200)
    await adapter.complete(schema_mode, MODEL, 50)

    first, second = (r.body for r in upstream.requests)
    assert first["options"] == {"num_predict": 200, "temperature": 0.3, "top_p": 0.8,
                                "stop": ["END"]}
    assert first["keep_alive"] == "30m"
    assert first["format"] == "json"
    assert second["format"] == schema
    assert second["options"] == {"num_predict": 50}  # unset options are omitted


async def test_messages_translate_system_images_tool_calls_and_results(upstream, adapter):
    upstream.push(json_reply(chat_body("Sunny.")))
    request = ChatRequest(messages=[
        {"role": "developer", "content": "Be brief."},
        {"role": "user", "content": [
            {"type": "text", "text": "What is in this picture,"},
            {"type": "text", "text": "and the weather in Oslo?"},
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}}]},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function",
             "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "3°C, clear"}],
        tools=[WEATHER_TOOL])

    await adapter.complete(request, MODEL, 64)

    sent = upstream.requests[0].body
    system, user, assistant, tool = sent["messages"]
    assert system == {"role": "system", "content": "Be brief."}
    assert user["content"] == "What is in this picture,\nand the weather in Oslo?"
    assert user["images"] == [PNG]
    assert assistant["tool_calls"] == [{"function": {"name": "get_weather",
                                                     "arguments": {"city": "Oslo"}}}]
    assert tool == {"role": "tool", "content": "3°C, clear", "tool_name": "get_weather"}
    assert sent["tools"][0]["function"]["name"] == "get_weather"


async def test_tool_calls_come_back_in_openai_shape_with_json_string_arguments(
        upstream, adapter):
    upstream.push(json_reply(chat_body("", tool_calls=[
        tool_call_body("get_weather", {"city": "Oslo", "days": 2})])))

    done = await adapter.complete(ChatRequest.from_prompt("Oslo?", tools=[WEATHER_TOOL]),
                                  MODEL, 64)

    [call] = done.tool_calls
    assert call["type"] == "function"
    assert call["id"].startswith("call_")
    assert call["function"]["name"] == "get_weather"
    assert json.loads(call["function"]["arguments"]) == {"city": "Oslo", "days": 2}
    assert done.finish_reason == "tool_calls"


async def test_tools_are_not_sent_when_tool_choice_is_none(upstream, adapter):
    upstream.push(json_reply(chat_body("ok")))

    await adapter.complete(ChatRequest.from_prompt("hi", tools=[WEATHER_TOOL],
                                                   tool_choice="none"), MODEL, 16)

    assert not upstream.requests[0].body.get("tools")  # the SDK always sends a list


async def test_a_tool_schema_reaches_ollama_whole_nested_objects_included(upstream, adapter):
    # the SDK's own Tool model would cut `where` down to {"type": "object"}
    parameters = {
        "type": "object", "additionalProperties": False, "required": ["where"],
        "properties": {
            "where": {"type": "object", "required": ["city"],
                      "properties": {"city": {"type": "string"},
                                     "country": {"type": "string", "format": "iso-3166"}}},
            "days": {"anyOf": [{"type": "integer"}, {"type": "null"}]},
            "units": {"type": "string", "enum": ["c", "f"]},
        }}
    tool = {"type": "function", "function": {"name": "forecast", "description": "Weather",
                                             "parameters": parameters}}
    upstream.push(json_reply(chat_body("ok")))

    await adapter.complete(ChatRequest.from_prompt("hi", tools=[tool]), MODEL, 16)

    assert upstream.requests[0].body["tools"] == [tool]


async def test_usage_is_none_when_ollama_reports_no_counts(upstream, adapter):
    upstream.push(json_reply(chat_body("hi", prompt_eval_count=None, eval_count=None)))

    done = await adapter.complete(ChatRequest.from_prompt("hi"), MODEL, 16)

    assert done.usage is None


async def test_the_length_done_reason_maps_to_finish_reason_length(upstream, adapter):
    upstream.push(json_reply(chat_body("cut", done_reason="length")))

    done = await adapter.complete(ChatRequest.from_prompt("hi"), MODEL, 1)

    assert done.finish_reason == "length"


async def test_a_linked_image_is_refused_before_any_call(upstream, adapter):
    request = ChatRequest(messages=[{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}]}])

    with pytest.raises(BadRequest, match="data: URLs"):
        await adapter.complete(request, MODEL, 16)

    assert upstream.requests == []


# ---- stream() ---------------------------------------------------------------------------

async def test_stream_yields_text_then_finish_and_usage_from_the_done_object(upstream, adapter):
    upstream.push(ndjson_reply([part_body("Hel"), part_body("lo"), part_body("!"),
                                done_body(30, 4)]))

    deltas = await collect(adapter, ChatRequest.from_prompt("hi"))

    assert upstream.requests[0].body["stream"] is True
    assert "".join(d.text for d in deltas) == "Hello!"
    assert deltas[-1].finish_reason == "stop"
    assert (deltas[-1].usage.input_tokens, deltas[-1].usage.output_tokens) == (30, 4)
    assert all(d.usage is None and d.finish_reason is None for d in deltas[:-1])


async def test_streamed_tool_calls_keep_their_arguments(upstream, adapter):
    upstream.push(ndjson_reply([
        part_body("", tool_calls=[tool_call_body("get_weather", {"city": "Oslo"})]),
        part_body("", tool_calls=[tool_call_body("get_weather", {"city": "Rome"})]),
        done_body(40, 20)]))

    deltas = await collect(adapter, ChatRequest.from_prompt("Oslo, Rome?", tools=[WEATHER_TOOL]))

    fragments = [f for d in deltas for f in d.tool_calls]
    assert [f.index for f in fragments] == [0, 1]
    assert all(f.name == "get_weather" and f.id for f in fragments)
    assert [json.loads(f.arguments) for f in fragments] == [{"city": "Oslo"}, {"city": "Rome"}]
    assert deltas[-1].finish_reason == "tool_calls"


async def test_stream_keeps_text_and_a_tool_call_from_one_object(upstream, adapter):
    upstream.push(ndjson_reply([
        part_body("Checking. ", tool_calls=[tool_call_body("get_weather", {"city": "Oslo"})]),
        done_body(10, 5)]))

    deltas = await collect(adapter, ChatRequest.from_prompt("Oslo?", tools=[WEATHER_TOOL]))

    assert "".join(d.text for d in deltas) == "Checking. "
    [fragment] = [f for d in deltas for f in d.tool_calls]
    assert (fragment.name, json.loads(fragment.arguments)) == ("get_weather", {"city": "Oslo"})


async def test_stream_yields_thinking_as_reasoning(upstream, adapter):
    upstream.push(ndjson_reply([part_body(thinking="Hmm, "), part_body(thinking="easy."),
                                part_body("4"), done_body(5, 9)]))

    deltas = await collect(adapter, ChatRequest.from_prompt("2+2?"))

    assert "".join(d.reasoning for d in deltas) == "Hmm, easy."
    assert "".join(d.text for d in deltas) == "4"


async def test_stream_cut_midway_raises_unavailable_after_the_text_so_far(upstream, adapter):
    upstream.push(ndjson_reply([part_body("one "), part_body("two "), done_body(3, 2)],
                               cut_after=1))
    seen: list[Delta] = []

    with pytest.raises(Unavailable):
        async for d in adapter.stream(ChatRequest.from_prompt("count"), MODEL, 10):
            seen.append(d)

    assert "".join(d.text for d in seen) == "one "


async def test_stream_without_a_done_object_raises_unavailable(upstream, adapter):
    upstream.push(ndjson_reply([part_body("partial")]))

    with pytest.raises(Unavailable, match="ended before"):
        await collect(adapter, ChatRequest.from_prompt("hi"))


async def test_an_error_object_inside_the_stream_raises_unavailable(upstream, adapter):
    upstream.push(ndjson_reply([part_body("par"), {"error": "model runner crashed"}]))

    with pytest.raises(Unavailable, match="runner crashed") as caught:
        await collect(adapter, ChatRequest.from_prompt("hi"))

    assert isinstance(caught.value.__cause__, ollama.ResponseError)


# ---- errors -----------------------------------------------------------------------------

async def test_a_missing_model_maps_to_bad_request_with_how_to_fix(upstream, adapter):
    upstream.push(error_reply(404, f"model '{MODEL}' not found"))

    with pytest.raises(BadRequest, match="ollama pull") as caught:
        await adapter.complete(ChatRequest.from_prompt("hi"), MODEL, 16)

    assert caught.value.status == 404
    assert isinstance(caught.value.__cause__, ollama.ResponseError)


@pytest.mark.parametrize(("status", "error"), [
    (500, Unavailable), (503, Unavailable), (400, BadRequest), (429, RateLimited)])
async def test_http_status_maps_to_the_router_error(upstream, adapter, status, error):
    upstream.push(error_reply(status, "scripted failure"))

    with pytest.raises(error, match="scripted failure") as caught:
        await adapter.complete(ChatRequest.from_prompt("hi"), MODEL, 16)

    assert caught.value.status == status


async def test_a_streamed_call_maps_http_errors_too(upstream, adapter):
    upstream.push(error_reply(404, f"model '{MODEL}' not found"))

    with pytest.raises(BadRequest):
        await collect(adapter, ChatRequest.from_prompt("hi"))


@pytest.mark.parametrize("streamed", [False, True], ids=["complete", "stream"])
async def test_connection_refused_maps_to_unavailable(streamed):
    adapter = make_adapter(f"http://127.0.0.1:{free_port()}")
    request = ChatRequest.from_prompt("hi")

    with pytest.raises(Unavailable, match="cannot connect"):
        if streamed:
            await collect(adapter, request)
        else:
            await adapter.complete(request, MODEL, 16)
    await adapter.aclose()


async def test_read_timeout_maps_to_unavailable(upstream):
    upstream.push(slow_reply(0.6, json_reply(chat_body("late"))))
    adapter = make_adapter(upstream.base_url, timeout_s=0.2)

    with pytest.raises(Unavailable, match="0.2s"):
        await adapter.complete(ChatRequest.from_prompt("hi"), MODEL, 16)
    await adapter.aclose()


@pytest.mark.parametrize("reply", [malformed_reply(), json_reply({"model": MODEL})],
                         ids=["broken-json", "no-message"])
async def test_a_malformed_body_maps_to_unavailable(upstream, adapter, reply):
    upstream.push(reply)

    with pytest.raises(Unavailable, match="malformed"):
        await adapter.complete(ChatRequest.from_prompt("hi"), MODEL, 16)


# ---- has_model / pull -------------------------------------------------------------------

async def test_has_model_is_true_for_an_installed_model_and_a_bare_name(upstream, adapter):
    upstream.models = [MODEL, "qwen2.5:latest"]

    assert await adapter.has_model(MODEL)
    assert await adapter.has_model("qwen2.5")


async def test_has_model_is_false_for_a_missing_model(upstream, adapter):
    upstream.models = ["qwen2.5:latest"]

    assert not await adapter.has_model(MODEL)


async def test_pull_reports_byte_progress_summed_over_layers_and_installs(upstream, adapter):
    upstream.pullable = {MODEL: [800, 200]}
    progress: list[tuple[int, int]] = []

    await adapter.pull(MODEL, lambda done, total: progress.append((done, total)))

    assert progress[0] == (0, 800)
    assert progress[-1] == (1000, 1000)
    assert [done for done, _ in progress] == sorted(done for done, _ in progress)
    assert await adapter.has_model(MODEL)


async def test_pulling_an_unknown_model_raises_bad_request(upstream, adapter):
    with pytest.raises(BadRequest, match="file does not exist"):
        await adapter.pull("no-such-model:1b", lambda done, total: None)
