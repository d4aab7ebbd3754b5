"""`ai-router mcp` serves route_and_ask to the official MCP client over stdio."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

from routing_setup import DEEPSEEK, PLANTED, ledger_rows, plant_keys, write_models_toml
from upstreams.openai_wire import completion_body, json_reply, usage_body

AI_ROUTER = str(Path(sys.executable).with_name("ai-router"))


async def call_over_stdio(config: Path, arguments: dict) -> tuple[list[str], object]:
    params = StdioServerParameters(command=AI_ROUTER, args=["mcp", "--config", str(config)],
                                   env=dict(os.environ))
    with open(os.devnull, "w") as quiet:
        async with stdio_client(params, errlog=quiet) as (read, write), \
                ClientSession(read, write) as session:
            await session.initialize()
            tools = await session.list_tools()
            result = await session.call_tool("route_and_ask", arguments)
    return [t.name for t in tools.tools], result


async def test_the_official_mcp_client_gets_an_answer_with_its_cost_and_budget(
        up, tmp_path, monkeypatch):
    up.reset()
    config = write_models_toml(tmp_path, up.urls, daily_usd=1.0)
    db = plant_keys(monkeypatch, tmp_path)
    up.deepseek.push(json_reply(completion_body("Paris.", usage=usage_body(20, 2))))

    names, result = await call_over_stdio(config, {"prompt": "Capital of France?",
                                                   "capability": "knowledge"})

    assert "route_and_ask" in names
    assert not result.is_error
    answer = result.structured_content
    assert answer["answer"] == "Paris." and answer["model"] == DEEPSEEK
    assert answer["tier"] == "cheap" and answer["cost_usd"] > 0
    assert 0 < answer["remaining_usd"] < 1.0 and answer["offline"] is False
    assert PLANTED not in str(result)
    calls = ledger_rows(db, "calls")
    assert [(c["model"], c["status"]) for c in calls] == [(DEEPSEEK, "settled")]
    assert ledger_rows(db, "outcomes")[0]["source"] == "mcp"


async def test_a_cost_ceiling_below_any_paid_call_is_answered_locally_and_says_so(
        up, tmp_path, monkeypatch):
    up.reset()
    config = write_models_toml(tmp_path, up.urls, daily_usd=1.0)
    plant_keys(monkeypatch, tmp_path)
    up.local.push(json_reply(completion_body("Local answer.", usage=usage_body(20, 3))))

    _, result = await call_over_stdio(config, {"prompt": "Capital of France?",
                                               "max_cost_usd": 0.0})

    answer = result.structured_content
    assert answer["answer"] == "Local answer." and answer["tier"] == "local"
    assert answer["cost_usd"] == 0 and up.calls()["deepseek"] == 0


async def test_a_bad_argument_is_a_tool_error_not_a_crash(up, tmp_path, monkeypatch):
    up.reset()
    config = write_models_toml(tmp_path, up.urls, daily_usd=1.0)
    plant_keys(monkeypatch, tmp_path)
    _, result = await call_over_stdio(config, {"prompt": "x", "capability": "juggling"})
    assert result.is_error
    assert "Traceback" not in str(result)
