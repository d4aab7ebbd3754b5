"""With the money gone, an agent request that offers tools is still answered locally,
in plain text, with the tool history turned into text the local model can read."""

from __future__ import annotations

import pytest

from ai_router.errors import NoRoute
from ai_router.schema import ChatRequest
from routing_setup import LOCAL, make_router
from upstreams.openai_wire import completion_body, json_reply, usage_body

TOOL = {"type": "function", "function": {"name": "read", "parameters": {
    "type": "object", "properties": {"path": {"type": "string"}}}}}


def agent_turn() -> ChatRequest:
    return ChatRequest(model="auto", tools=[TOOL], tool_choice="auto", messages=[
        {"role": "user", "content": "What is in notes.txt?"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call1", "type": "function",
             "function": {"name": "read", "arguments": "{\"path\": \"notes.txt\"}"}}]},
        {"role": "tool", "tool_call_id": "call1", "content": "buy milk"},
    ])


async def test_offline_agent_turn_reaches_the_local_model_without_tools(up, tmp_path,
                                                                         monkeypatch):
    up.reset()
    router, _ = make_router(tmp_path, monkeypatch, up.urls, offline=True)
    up.local.push(json_reply(completion_body("It says: buy milk.", usage=usage_body(40, 6))))
    try:
        routed = await router.ask(agent_turn())
    finally:
        await router.aclose()
    assert routed.model.ref == LOCAL and routed.offline
    assert routed.completion.text == "It says: buy milk."
    sent = up.local.requests[-1].body
    assert "tools" not in sent and "tool_choice" not in sent
    assert all(m["role"] in ("user", "assistant", "system") for m in sent["messages"])
    assert "buy milk" in sent["messages"][-1]["content"]
    assert "read(" in sent["messages"][1]["content"]
    assert any("without tools" in o for o in routed.overrides)


async def test_a_request_that_demands_a_tool_is_refused_clearly_offline(up, tmp_path,
                                                                        monkeypatch):
    up.reset()
    router, _ = make_router(tmp_path, monkeypatch, up.urls, offline=True)
    request = agent_turn().model_copy(update={"tool_choice": "required"})
    try:
        with pytest.raises(NoRoute, match="tools"):
            await router.ask(request)
    finally:
        await router.aclose()
    assert up.calls()["local"] == 0
