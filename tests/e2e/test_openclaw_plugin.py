"""The OpenClaw plugin (integrations/openclaw/): route_and_ask as a direct agent tool.

The agent test runs the real OpenClaw agent (`openclaw agent exec`, installed by
scripts/install-openclaw.sh) with the plugin installed the documented way into a
throwaway HOME. OpenClaw's own main model is a scripted loopback upstream that calls
route_and_ask on turn 1 and answers with the tool's result on turn 2; the tool goes to a
real `ai-router serve` subprocess whose only paid provider is a second scripted upstream.

The other tests run the plugin's `execute` on the same Node 24 against the in-process
server (tests/server_setup.py): the answer footer, and every failure as a readable
tool result.
"""

from __future__ import annotations

import json
import os
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from openclaw import (
    INSTALL_HINT,
    NODE,
    PLUGIN_DIR,
    PROVIDER,
    VERSION,
    OpenClaw,
    config_body,
)
from router_process import (
    FAKE_KEY,
    PAID_MODEL,
    cost_by_hand,
    ledger_rows,
    serving,
    write_models_toml,
)

import upstreams.ollama_wire as o
from ai_router.schema import CAPABILITIES
from server_setup import start_server_fixture, ups_fixture  # noqa: F401 - fixtures
from upstreams.openai_wire import (
    OpenAIUpstream,
    Received,
    chunk_body,
    completion_body,
    error_reply,
    json_reply,
    slow_reply,
    sse_reply,
    text_chunks,
    tool_call_chunk,
    usage_body,
)
from upstreams.server import free_port

OPENCLAW = OpenClaw.find()
pytestmark = pytest.mark.e2e
needs_openclaw = pytest.mark.skipif(
    OPENCLAW is None, reason=f"OpenClaw {VERSION} is not installed: {INSTALL_HINT}")
needs_node = pytest.mark.skipif(
    not NODE.is_file(), reason=f"Node 24 (OpenClaw's) is not installed: {INSTALL_HINT}")

PLUGIN_ID = "ai-router"
TOOL = "route_and_ask"
UNSCRIPTED = error_reply(400, "e2e: no scripted reply left")  # 400: OpenClaw gives up at once

QUESTION = "How do I memoise a pure Python function?"
CONTEXT = "Standard library only, Python 3.11."
DELEGATED = "Decorate it with functools.cache; it memoises by argument tuple."
FOOTER = f"ai-router: {PAID_MODEL} (cheap tier)"


# ---- the real agent ---------------------------------------------------------------------

def agent_config(directory: Path, main_v1: str) -> Path:
    """OpenClaw's config: its main model is the scripted upstream ("main/scripted"), and
    the `coding` tool profile of `agent exec` also allows route_and_ask."""
    body = config_body(main_v1, directory / "openclaw.log")
    provider = body["models"]["providers"].pop(PROVIDER)
    [auto] = [m for m in provider["models"] if m["id"] == "auto"]
    provider["models"] = [auto | {"id": "scripted", "name": "scripted main model"}]
    body["models"]["providers"] = {"main": provider}
    body["agents"]["defaults"]["model"] = {"primary": "main/scripted"}
    body["tools"] = {"alsoAllow": [TOOL]}
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "openclaw.json"
    path.write_text(json.dumps(body, indent=2))
    return path


def set_plugin_config(config: Path, settings: dict[str, Any]) -> None:
    """`plugins.entries.ai-router.config`, after `plugins install` wrote the entry."""
    body = json.loads(config.read_text())
    body["plugins"]["entries"][PLUGIN_ID]["config"] = settings
    config.write_text(json.dumps(body, indent=2))


def tool_text(request: Received) -> str:
    """The text of the (single) tool result in a main-model request."""
    [result] = [m for m in request.body["messages"] if m["role"] == "tool"]
    content = result["content"]
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content)
    return content


def echo_tool_result(request: Received):
    """Turn 2 of the main model: answer with the tool result it was just given."""
    text = f"Delegated via route_and_ask: {tool_text(request)}"
    return sse_reply(text_chunks(text), usage=usage_body(9400, 60))(request)


@needs_openclaw
def test_the_openclaw_agent_calls_route_and_ask_and_answers_with_ai_routers_delegated_reply(
        tmp_path: Path) -> None:
    assert OPENCLAW is not None
    paid, main = OpenAIUpstream(handler=UNSCRIPTED), OpenAIUpstream(handler=UNSCRIPTED)
    paid.push(json_reply(completion_body(DELEGATED, usage=usage_body(120, 30))))
    arguments = {"prompt": QUESTION, "capability": "coding", "context": CONTEXT}
    main.push(
        sse_reply([chunk_body({"role": "assistant", "content": None}),
                   tool_call_chunk(0, call_id="call_route_1", name=TOOL),
                   tool_call_chunk(0, arguments=json.dumps(arguments)),
                   chunk_body({}, finish_reason="tool_calls")], usage=usage_body(9000, 40)),
        echo_tool_result)
    workspace = tmp_path / "workspace"
    workspace.mkdir()

    with paid.running() as paid_v1, main.running() as main_v1, \
            ThreadPoolExecutor(1) as background:
        config = agent_config(tmp_path / "openclaw", main_v1)
        openclaw = OPENCLAW.isolated(tmp_path / "openclaw-home")
        installing = background.submit(openclaw.install_plugin, config)  # while serve starts
        with serving(write_models_toml(tmp_path, paid_v1), tmp_path) as server:
            installed = installing.result()
            assert installed.returncode == 0, installed.explain()
            # agent exec validates this against the manifest's configSchema (bad: exit 1)
            set_plugin_config(config, {"routerUrl": server.url, "timeoutSeconds": 60})

            turn = openclaw.exec(config, "Ask the router how to memoise a Python function.",
                                 cwd=workspace)
            calls, outcomes = ledger_rows(server.db)
            server_output = server.output()

    assert turn.returncode == 0, turn.explain()
    envelope = turn.envelope
    assert envelope["status"] == "ok", turn.explain()
    assert envelope["toolSummary"]["tools"] == [TOOL], envelope

    first, second = main.requests
    [offered] = [t["function"] for t in first.body["tools"] if t["function"]["name"] == TOOL]
    params = offered["parameters"]
    assert params["required"] == ["prompt"]
    assert set(params["properties"]) == {"prompt", "capability", "max_cost_usd", "context"}
    assert params["properties"]["capability"]["enum"] == list(CAPABILITIES)

    [delegated] = paid.requests  # ai-router's call to the paid provider, with its own key
    assert delegated.headers["authorization"] == f"Bearer {FAKE_KEY}"
    assert delegated.body["messages"] == [
        {"role": "system", "content": f"Use this context to answer:\n{CONTEXT}"},
        {"role": "user", "content": QUESTION}]

    result = tool_text(second)  # what the plugin handed back, as the main model saw it
    assert result.startswith(DELEGATED), result
    assert FOOTER in result and "left today" in result, result
    assert DELEGATED in envelope["final"] and FOOTER in envelope["final"], envelope["final"]

    [call], [outcome] = calls, outcomes  # only the delegated question touched the ledger
    assert (outcome["source"], outcome["model"], outcome["status"]) == ("tool", PAID_MODEL, "ok")
    assert outcome["capability"] == "coding"
    assert call["status"] == "settled" and call["request_id"] == outcome["id"]
    assert call["cost_micro"] == cost_by_hand(120, 30) == outcome["cost_micro"]
    assert FAKE_KEY not in server_output


# ---- the plugin's execute on Node, against the in-process server -------------------------

CALL_PLUGIN = """
const plugin = await import(process.env.PLUGIN_ENTRY);
const { config, params } = JSON.parse(process.env.PLUGIN_CALL);
const tools = [];
plugin.default.register({ pluginConfig: config, registerTool: (tool) => tools.push(tool) });
const [tool] = tools;
const result = await tool.execute("call1", params, undefined);
const { execute, ...described } = tool;
process.stdout.write(JSON.stringify({ tool: described, result }));
"""


def call_plugin(config: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """Register the plugin with a stand-in `api`, run its tool once, return what it gave."""
    env = {**os.environ, "PLUGIN_ENTRY": (PLUGIN_DIR / "index.js").as_uri(),
           "PLUGIN_CALL": json.dumps({"config": config, "params": params})}
    done = subprocess.run([str(NODE), "--input-type=module", "-e", CALL_PLUGIN], env=env,
                          capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, f"the plugin crashed:\n{done.stderr}"
    return json.loads(done.stdout)


def text_of(result: dict[str, Any]) -> str:
    [part] = result["content"]
    assert part["type"] == "text"
    return part["text"]


SERVER_KEY = "ar-plugin-KEY-never-echoed-5150"
PAID_AND_LOCAL = ("oai/gpt-test", "olla/llama-test")


@needs_node
def test_the_plugin_registers_a_direct_tool_and_answers_with_a_footer_line(start_server):
    served = start_server(models=PAID_AND_LOCAL, api_key=SERVER_KEY)
    served.ups.openai.push(json_reply(completion_body("Lima.", usage=usage_body(1000, 500))))

    got = call_plugin({"routerUrl": served.url + "/", "apiKey": SERVER_KEY},
                      {"prompt": "What is the capital of Peru?", "capability": "knowledge",
                       "max_cost_usd": None})

    assert got["tool"]["name"] == TOOL and got["tool"]["catalogMode"] == "direct-only"
    text = text_of(got["result"])
    answer = got["result"]["details"]
    assert text == ("Lima.\n\n— ai-router: oai/gpt-test (cheap tier) · cost $0.0020 · "
                    f"${answer['remaining_usd']:.4f} left today")
    assert answer["remaining_usd"] == pytest.approx(5.0 - 0.002)
    assert served.outcome(answer["request_id"])["source"] == "tool"


@needs_node
def test_when_the_budget_is_spent_the_footer_says_a_local_model_answered_and_why(
        start_server):
    served = start_server(models=PAID_AND_LOCAL, daily_usd=0.01)
    ledger, limit = served.router.ledger, served.router.limit_micro
    ledger.settle(ledger.reserve(limit, limit, provider="oai", model="oai/gpt-test",
                                 request_id="earlier-today"), limit, None)
    served.ups.ollama.push(o.json_reply(o.chat_body("A local answer.")))

    text = text_of(call_plugin({"routerUrl": served.url}, {"prompt": "What is a monad?"})["result"])

    assert text.startswith("A local answer.\n\n— ai-router: olla/llama-test (local tier) · "
                           "cost $0.0000 · $0.0000 left today · offline · note: ")
    assert "budget allows no paid model" in text
    assert served.ups.openai.requests == []


@needs_node
def test_failures_come_back_as_readable_tool_results_not_crashes(start_server):
    served = start_server(models=("oai/gpt-test",), api_key=SERVER_KEY)
    ask = {"prompt": "What is the capital of Peru?"}

    wrong_key = call_plugin({"routerUrl": served.url, "apiKey": "ar-wrong"}, ask)["result"]
    assert "HTTP 401" in text_of(wrong_key) and "apiKey" in text_of(wrong_key)
    assert wrong_key["details"]["ok"] is False and SERVER_KEY not in json.dumps(wrong_key)

    keyed = {"routerUrl": served.url, "apiKey": SERVER_KEY}
    bad = text_of(call_plugin(keyed, {"prompt": "x", "capability": "poetry"})["result"])
    assert "HTTP 400" in bad and "capability" in bad

    served.ups.openai.push(slow_reply(2, json_reply(completion_body("late"))))
    slow = call_plugin(keyed | {"timeoutSeconds": 0.5}, ask)["result"]
    assert "gave no answer within 0.5 s" in text_of(slow) and slow["details"]["timedOut"]

    served.ups.openai.push(error_reply(503, "overloaded"))
    down = text_of(call_plugin(keyed, ask)["result"])
    assert "HTTP 503" in down and "retry in" in down

    closed = f"http://127.0.0.1:{free_port()}"
    unreachable = text_of(call_plugin({"routerUrl": closed}, ask)["result"])
    assert f"could not reach ai-router at {closed}" in unreachable
    assert "ECONNREFUSED" in unreachable
