"""The real request bodies OpenClaw sent (captured in tests/fixtures/openclaw) go through
the server as OpenClaw sends them: streamed, with its tools, tool-call turns and
internal-context messages. Also: the documented OpenClaw config names models the
server accepts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

import upstreams.anthropic_wire as a
import upstreams.gemini_wire as g
import upstreams.ollama_wire as o
from ai_router.config import load_config
from ai_router.guard import VIRTUAL_MODELS
from server_setup import served_fixture, start_server_fixture, ups_fixture  # noqa: F401
from upstreams.openai_wire import (
    chunk_body,
    sse_reply,
    text_chunks,
    tool_call_chunk,
    usage_body,
)

CAPTURED = Path(__file__).parent / "fixtures" / "openclaw"  # captured from the real agent
DOCS = Path(__file__).parents[1] / "docs" / "openclaw.example.json5"
ROUTE_ARGS = '{"prompt":"What is 2+2?","capability":"math"}'


def captured(name: str) -> dict[str, Any]:
    path = CAPTURED / f"{name}.json"
    if not path.is_file():
        pytest.skip(f"{path} is not on this machine")
    body = json.loads(path.read_text())["body"]
    return {**body, "model": "auto"}  # the id the documented config gives OpenClaw


def post_sse(url: str, body: dict[str, Any]) -> tuple[httpx.Response, list[dict[str, Any]]]:
    """POST exactly these bytes and read the SSE events; the last must be [DONE]."""
    with httpx.stream("POST", f"{url}/v1/chat/completions", content=json.dumps(body),
                      headers={"content-type": "application/json",
                               "authorization": "Bearer ai-router-local"}, timeout=30) as r:
        assert r.status_code == 200, r.read()
        data = [line[6:] for line in r.iter_lines() if line.startswith("data: ")]
    assert data[-1] == "[DONE]"
    return r, [json.loads(d) for d in data[:-1]]


def text_of(events: list[dict[str, Any]]) -> str:
    return "".join(c["delta"].get("content") or "" for e in events for c in e["choices"])


def script_everywhere(ups, text: str = "", tool: bool = False) -> None:
    """The same answer from the OpenAI-compatible and the Ollama upstream, so the test
    holds whichever the manager picks for `auto`."""
    if tool:
        chunks = [chunk_body({"role": "assistant", "content": ""}),
                  tool_call_chunk(0, call_id="call_89feb3e2", name="route_and_ask"),
                  tool_call_chunk(0, arguments=ROUTE_ARGS[:20]),
                  tool_call_chunk(0, arguments=ROUTE_ARGS[20:]),
                  chunk_body({}, finish_reason="tool_calls")]
        calls = [o.tool_call_body("route_and_ask", json.loads(ROUTE_ARGS))]
        ups.ollama.push(o.ndjson_reply([o.part_body(tool_calls=calls), o.done_body(9000, 20)]))
    else:
        chunks = text_chunks(*(text[i:i + 4] for i in range(0, len(text), 4)))
        ups.ollama.push(o.ndjson_reply([o.part_body(text), o.done_body(9000, 20)]))
    ups.openai.push(sse_reply(chunks, usage=usage_body(9000, 20, cached=8000)))


def upstream_body(served, model: str) -> dict[str, Any]:
    return (served.ups.openai if model.startswith("oai/") else served.ups.ollama).requests[-1].body


@pytest.fixture
def openclaw_server(start_server):
    return start_server(models=("oai/gpt-test", "olla/llama-test"))


def test_openclaw_first_agent_request_streams_an_answer_and_is_billed(openclaw_server):
    served = openclaw_server
    script_everywhere(served.ups, "Hello there friend!")
    r, events = post_sse(served.url, captured("agent_exec_first_request"))
    assert text_of(events) == "Hello there friend!"
    assert events[0]["choices"][0]["delta"]["role"] == "assistant"
    assert events[-2]["choices"][0]["finish_reason"] == "stop"
    assert events[-1]["choices"] == [] and events[-1]["usage"]["prompt_tokens"] == 9000
    model = r.headers["x-ai-router-model"]
    sent = upstream_body(served, model)
    assert [t["function"]["name"] for t in sent["tools"]][:3] == ["apply_patch", "edit", "exec"]
    assert len(sent["tools"]) == 11
    request_id = r.headers["x-ai-router-request-id"]
    (call,) = served.calls(request_id)
    assert call["status"] == "settled" and call["input_tokens"] == 9000
    outcome = served.outcome(request_id)
    assert (outcome["source"], outcome["model"], outcome["status"]) == ("server", model, "ok")


def test_openclaw_tool_call_turn_and_its_follow_up_stay_on_one_model(openclaw_server):
    served = openclaw_server
    script_everywhere(served.ups, tool=True)
    r1, events = post_sse(served.url, captured("toolcall_turn1_request"))
    fragments = [tc for e in events for c in e["choices"]
                 for tc in c["delta"].get("tool_calls", [])]
    assert fragments[0]["function"]["name"] == "route_and_ask"
    assert fragments[0]["type"] == "function"
    assert json.loads("".join(f["function"]["arguments"] for f in fragments)) == json.loads(
        ROUTE_ARGS)
    assert events[-2]["choices"][0]["finish_reason"] == "tool_calls"

    script_everywhere(served.ups, "The router says 4.")
    r2, events = post_sse(served.url, captured("toolcall_followup_request"))
    assert text_of(events) == "The router says 4."
    assert r2.headers["x-ai-router-model"] == r1.headers["x-ai-router-model"], "sticky"
    sent = json.dumps(upstream_body(served, r2.headers["x-ai-router-model"]))
    assert "4 (from stub router)" in sent, "the tool result reached the provider"
    assert "BEGIN_OPENCLAW_INTERNAL_CONTEXT" in sent
    day = {c["status"] for rid in (r1.headers["x-ai-router-request-id"],
                                   r2.headers["x-ai-router-request-id"])
           for c in served.calls(rid)}
    assert day == {"settled"}


@pytest.mark.parametrize("provider", ["claude", "gem"])
def test_openclaw_tool_schemas_cross_into_anthropic_and_gemini(served, provider):
    body = {**captured("agent_exec_first_request"),
            "model": {"claude": "claude/claude-test", "gem": "gem/gemini-test"}[provider]}
    if provider == "claude":
        served.ups.anthropic.reply(a.message([a.text_block("Hello from Claude.")]))
    else:
        served.ups.gemini.reply(g.response([g.text_part("Hello from Gemini.")]))
    _r, events = post_sse(served.url, body)
    assert text_of(events).startswith("Hello from")
    upstream = served.ups.anthropic if provider == "claude" else served.ups.gemini
    sent = upstream.requests[-1].body
    tools = (sent["tools"] if provider == "claude"
             else [f for t in sent["tools"] for f in t["functionDeclarations"]])
    assert sorted(t["name"] for t in tools) == sorted(
        t["function"]["name"] for t in body["tools"])


def test_documented_openclaw_config_names_only_models_the_server_accepts():
    config = json.loads(DOCS.read_text())  # kept JSON-compatible so tests can load it
    provider = config["models"]["providers"]["ai-router"]
    assert provider["baseUrl"] == "http://127.0.0.1:8787/v1"
    assert provider["api"] == "openai-completions"
    accepted = {*VIRTUAL_MODELS, *load_config(Path(__file__).parents[1] / "models.toml").models}
    ids = [m["id"] for m in provider["models"]]
    assert set(ids) <= accepted and "auto" in ids
    for m in provider["models"]:
        assert m["contextWindow"] > m["maxTokens"] > 0 and m["input"][0] == "text"
    primary = config["agents"]["defaults"]["model"]["primary"]
    assert primary == "ai-router/auto"
    assert all(f.removeprefix("ai-router/") in ids
               for f in config["agents"]["defaults"]["model"]["fallbacks"])
