"""`ai-router serve` answers the official OpenAI SDK, streamed and not, through every
provider kind, with tool calls round-tripping and the transparency headers set."""

from __future__ import annotations

import json
from typing import Any

import pytest

import upstreams.anthropic_wire as a
import upstreams.gemini_wire as g
import upstreams.ollama_wire as o
from ai_router.guard import VIRTUAL_MODELS
from server_setup import (  # noqa: F401 - fixtures
    ALL_MODELS,
    served_fixture,
    start_server_fixture,
    ups_fixture,
)
from upstreams.openai_wire import (
    chunk_body,
    completion_body,
    json_reply,
    sse_reply,
    text_chunks,
    tool_call_body,
    tool_call_chunk,
    usage_body,
)

MODEL = {"oai": "oai/gpt-test", "claude": "claude/claude-test", "gem": "gem/gemini-test",
         "olla": "olla/llama-test"}
PROVIDERS = list(MODEL)
ARGS = {"city": "São Paulo", "units": "metric", "days": [1, 2, 3], "note": "a \"quoted\" {x}"}
WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {
        "city": {"type": "string"}, "units": {"type": "string"},
        "days": {"type": "array", "items": {"type": "integer"}},
        "note": {"type": "string"}}, "required": ["city"]}}}
ASK = [{"role": "user", "content": "What's the weather in São Paulo?"}]
HEADERS = ("x-ai-router-model", "x-ai-router-tier", "x-ai-router-cost-usd",
           "x-ai-router-remaining-usd", "x-ai-router-decision", "x-ai-router-request-id")
# (prompt, completion, cached, reasoning) as each provider's usage normalises to OpenAI's
USAGE = {"oai": (40, 4, 30, 2), "claude": (40, 4, 30, 0), "gem": (40, 6, 30, 2),
         "olla": (40, 4, 0, 0)}


def either(streamed, whole):
    """An OpenAI/Ollama upstream reply that matches the request's stream flag."""
    return lambda r: (streamed if r.body.get("stream") else whole)(r)


def script_text(ups, provider: str) -> None:
    if provider == "oai":
        u = usage_body(40, 4, cached=30, reasoning=2)
        first = chunk_body({"role": "assistant", "content": "", "reasoning_content": "thinking..."})
        ups.openai.push(either(sse_reply([first, *text_chunks("Hel", "lo ", "world")], usage=u),
                               json_reply(completion_body("Hello world", usage=u,
                                                          reasoning_content="thinking..."))))
    elif provider == "claude":
        blocks = [a.thinking_block("thinking..."), a.text_block("Hello world")]
        ups.anthropic.reply(a.message(blocks, usage=a.usage(10, 4, cache_read=30)))
    elif provider == "gem":
        ups.gemini.reply(g.response([g.thought_part("thinking..."), g.text_part("Hello world")],
                                    usage=g.usage(40, 4, cached=30, thoughts=2)))
    else:
        ups.ollama.push(either(
            o.ndjson_reply([o.part_body("", thinking="thinking..."), o.part_body("Hello"),
                            o.part_body(" world"), o.done_body(40, 4)]),
            o.json_reply(o.chat_body("Hello world", thinking="thinking...",
                                     prompt_eval_count=40, eval_count=4))))


def script_tool_call(ups, provider: str) -> None:
    args = json.dumps(ARGS, ensure_ascii=False)
    if provider == "oai":
        chunks = [chunk_body({"role": "assistant", "content": ""}),
                  tool_call_chunk(0, call_id="call_w1", name="get_weather"),
                  *(tool_call_chunk(0, arguments=args[i:i + 5]) for i in range(0, len(args), 5)),
                  chunk_body({}, finish_reason="tool_calls")]
        whole = completion_body(None, tool_calls=[tool_call_body("call_w1", "get_weather", args)],
                                usage=usage_body(50, 10))
        ups.openai.push(either(sse_reply(chunks, usage=usage_body(50, 10)), json_reply(whole)))
    elif provider == "claude":
        ups.anthropic.reply(a.message([a.tool_use_block("toolu_w1", "get_weather", ARGS)],
                                      stop_reason="tool_use", usage=a.usage(50, 10)), piece=3)
    elif provider == "gem":
        ups.gemini.reply(g.response([g.function_call_part("get_weather", ARGS)],
                                    usage=g.usage(50, 10)))
    else:
        calls = [o.tool_call_body("get_weather", ARGS)]
        ups.ollama.push(either(o.ndjson_reply([o.part_body(tool_calls=calls), o.done_body(50, 10)]),
                               o.json_reply(o.chat_body(tool_calls=calls))))


def last_upstream_body(ups, provider: str) -> dict[str, Any]:
    source = {"oai": ups.openai, "claude": ups.anthropic, "gem": ups.gemini, "olla": ups.ollama}
    return source[provider].requests[-1].body


def collect(stream) -> dict[str, Any]:
    """Accumulate SDK-parsed chunks the way an OpenAI client does."""
    out: dict[str, Any] = {"chunks": [], "content": "", "reasoning": "", "calls": {},
                           "finish": None, "usage": None}
    for chunk in stream:
        out["chunks"].append(chunk)
        if chunk.usage is not None:
            out["usage"] = chunk.usage
        for choice in chunk.choices:
            d = choice.delta
            out["content"] += d.content or ""
            out["reasoning"] += (d.model_extra or {}).get("reasoning_content") or ""
            for tc in d.tool_calls or []:
                call = out["calls"].setdefault(tc.index, {"id": None, "name": None, "args": ""})
                if tc.id:
                    assert call["id"] is None, "a tool call's id arrives once"
                    call["id"] = tc.id
                if tc.function and tc.function.name:
                    call["name"] = tc.function.name
                if tc.function and tc.function.arguments:
                    call["args"] += tc.function.arguments
            out["finish"] = choice.finish_reason or out["finish"]
    return out


@pytest.mark.parametrize("provider", PROVIDERS)
def test_non_streamed_answer_has_openai_shape_usage_reasoning_and_headers(served, provider):
    script_text(served.ups, provider)
    raw = served.client().chat.completions.with_raw_response.create(
        model=MODEL[provider], messages=ASK)
    reply = raw.parse()
    message = reply.choices[0].message
    assert (reply.object, reply.model, message.content) == (
        "chat.completion", MODEL[provider], "Hello world")
    assert message.model_extra["reasoning_content"] == "thinking..."
    assert reply.choices[0].finish_reason == "stop"
    prompt, completion, cached, reasoning = USAGE[provider]
    u = reply.usage
    assert (u.prompt_tokens, u.completion_tokens, u.total_tokens) == (
        prompt, completion, prompt + completion)
    assert u.prompt_tokens_details.cached_tokens == cached
    assert u.completion_tokens_details.reasoning_tokens == reasoning
    assert all(raw.headers.get(h) for h in HEADERS)
    assert raw.headers["x-ai-router-model"] == MODEL[provider]
    request_id = raw.headers["x-ai-router-request-id"]
    assert reply.id == f"chatcmpl-{request_id}"
    (call,) = served.calls(request_id)
    assert call["status"] == "settled"
    assert float(raw.headers["x-ai-router-cost-usd"]) == pytest.approx(call["cost_micro"] / 1e6)
    assert served.outcome(request_id)["model"] == MODEL[provider]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_streamed_answer_sends_role_text_reasoning_finish_and_usage_chunks(served, provider):
    script_text(served.ups, provider)
    raw = served.client().chat.completions.with_raw_response.create(
        model=MODEL[provider], messages=ASK, stream=True, stream_options={"include_usage": True})
    assert all(raw.headers.get(h) for h in HEADERS), "headers go out before the first byte"
    assert raw.headers["content-type"].startswith("text/event-stream")
    got = collect(raw.parse())
    first, finish, last = got["chunks"][0], got["chunks"][-2], got["chunks"][-1]
    assert first.choices[0].delta.role == "assistant"
    assert (got["content"], got["reasoning"], got["finish"]) == ("Hello world", "thinking...",
                                                                 "stop")
    assert finish.choices[0].finish_reason == "stop"
    assert last.choices == [] and last.usage is not None, "usage rides alone at the end"
    prompt, completion, cached, reasoning = USAGE[provider]
    assert (got["usage"].prompt_tokens, got["usage"].completion_tokens) == (prompt, completion)
    assert got["usage"].prompt_tokens_details.cached_tokens == cached
    assert {c.model for c in got["chunks"]} == {MODEL[provider]}
    request_id = raw.headers["x-ai-router-request-id"]
    (call,) = served.calls(request_id)
    assert call["status"] == "settled" and call["input_tokens"] == prompt
    reserved = float(raw.headers["x-ai-router-cost-usd"])
    assert reserved * 1e6 == pytest.approx(call["reserved_micro"])
    assert (reserved > 0) == (provider != "olla"), "paid calls hold money; local ones do not"


def test_stream_without_include_usage_has_no_usage_chunk(served):
    script_text(served.ups, "oai")
    got = collect(served.client().chat.completions.create(
        model="oai/gpt-test", messages=ASK, stream=True))
    assert got["usage"] is None and got["chunks"][-1].choices[0].finish_reason == "stop"


@pytest.mark.parametrize("provider", PROVIDERS)
def test_streamed_tool_call_round_trips_with_arguments_intact(served, provider):
    script_tool_call(served.ups, provider)
    client = served.client()
    got = collect(client.chat.completions.create(
        model=MODEL[provider], messages=ASK, tools=[WEATHER], tool_choice="auto", stream=True,
        stream_options={"include_usage": True}))
    (call,) = got["calls"].values()
    assert call["name"] == "get_weather" and call["id"]
    assert json.loads(call["args"]) == ARGS, "fragments concatenate to the original JSON"
    assert got["finish"] == "tool_calls"
    assert got["usage"].prompt_tokens == 50

    served.ups.reset()
    script_text(served.ups, provider)
    history = [*ASK, {"role": "assistant", "content": None, "tool_calls": [
        {"id": call["id"], "type": "function",
         "function": {"name": "get_weather", "arguments": call["args"]}}]},
        {"role": "tool", "tool_call_id": call["id"], "content": "sunny-21C-marker"}]
    answer = collect(client.chat.completions.create(
        model=MODEL[provider], messages=history, tools=[WEATHER], stream=True))
    assert answer["content"] == "Hello world"
    sent = json.dumps(last_upstream_body(served.ups, provider), ensure_ascii=False)
    assert "sunny-21C-marker" in sent, "the tool result reached the provider"


@pytest.mark.parametrize("provider", PROVIDERS)
def test_non_streamed_tool_call_comes_back_whole(served, provider):
    script_tool_call(served.ups, provider)
    reply = served.client().chat.completions.create(model=MODEL[provider], messages=ASK,
                                                    tools=[WEATHER])
    (call,) = reply.choices[0].message.tool_calls
    assert (call.type, call.function.name) == ("function", "get_weather") and call.id
    assert json.loads(call.function.arguments) == ARGS
    assert reply.choices[0].finish_reason == "tool_calls"


def test_tool_name_survives_when_text_and_a_tool_call_share_one_chunk(served):
    chunks = [chunk_body({"role": "assistant", "content": ""}),
              tool_call_chunk(0, call_id="call_x", name="get_weather", arguments='{"city":',
                              content="Checking."),
              tool_call_chunk(0, arguments='"Oslo"}'),
              chunk_body({}, finish_reason="tool_calls")]
    served.ups.openai.push(sse_reply(chunks, usage=usage_body(20, 5)))
    got = collect(served.client().chat.completions.create(
        model="oai/gpt-test", messages=ASK, tools=[WEATHER], stream=True))
    assert got["content"] == "Checking."
    assert got["calls"] == {0: {"id": "call_x", "name": "get_weather", "args": '{"city":"Oslo"}'}}


def test_sdk_stream_helper_assembles_the_final_message(served):
    """The SDK's own accumulator validates every chunk's shape (ids, types, indexes)."""
    script_tool_call(served.ups, "claude")
    with served.client().chat.completions.stream(model="claude/claude-test", messages=ASK,
                                                 tools=[WEATHER]) as stream:
        final = stream.get_final_completion()
    (call,) = final.choices[0].message.tool_calls
    assert call.function.name == "get_weather" and json.loads(call.function.arguments) == ARGS


def test_unknown_request_fields_are_ignored(served):
    script_text(served.ups, "oai")
    reply = served.client().chat.completions.create(
        model="oai/gpt-test", messages=ASK, user="me", n=1, store=False, seed=7,
        parallel_tool_calls=False, metadata={"k": "v"}, temperature=0.2, stop=["\n\n"],
        max_completion_tokens=50, extra_body={"some_future_field": {"x": [1]}, "top_k": 3})
    assert reply.choices[0].message.content == "Hello world"
    sent = served.ups.openai.requests[-1].body
    assert sent["temperature"] == 0.2 and sent["stop"] == ["\n\n"]
    assert "some_future_field" not in sent


@pytest.mark.parametrize("name", ["ai-router/oai/gpt-test", "ai-router/auto", "cheap"])
def test_model_names_accept_virtual_names_concrete_refs_and_the_ai_router_prefix(
        start_server, name):
    served = start_server(models=("oai/gpt-test", "olla/llama-test"))
    script_text(served.ups, "oai")
    raw = served.client().chat.completions.with_raw_response.create(model=name, messages=ASK)
    assert raw.parse().model == "oai/gpt-test" == raw.headers["x-ai-router-model"]


def test_spent_budget_is_not_an_error_the_local_model_answers_offline(start_server):
    served = start_server(models=("oai/gpt-test", "olla/llama-test"), daily_usd=0)
    script_text(served.ups, "olla")
    raw = served.client().chat.completions.with_raw_response.create(
        model="auto", messages=ASK, stream=True)
    got = collect(raw.parse())
    assert got["content"] == "Hello world"
    assert raw.headers["x-ai-router-model"] == "olla/llama-test"
    assert raw.headers["x-ai-router-tier"] == "local"
    assert raw.headers["x-ai-router-offline"] == "1"
    assert served.ups.openai.requests == []


def test_models_lists_virtual_and_configured_models(served):
    ids = [m.id for m in served.client().models.list()]
    assert ids == [*VIRTUAL_MODELS, *ALL_MODELS]


def test_budget_and_health_report_todays_money(served):
    import httpx

    script_text(served.ups, "oai")
    served.client().chat.completions.create(model="oai/gpt-test", messages=ASK)
    budget = httpx.get(f"{served.url}/v1/budget").json()
    assert budget["limit_usd"] == 5.0 and budget["spent_usd"] > 0
    assert budget["remaining_usd"] == pytest.approx(5.0 - budget["spent_usd"])
    assert [(r["model"], r["calls"]) for r in budget["by_model"]] == [("oai/gpt-test", 1)]
    assert httpx.get(f"{served.url}/health").json()["status"] == "ok"
