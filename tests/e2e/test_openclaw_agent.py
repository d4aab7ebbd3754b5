"""The real OpenClaw agent uses ai-router as its model provider, end to end.

OpenClaw (`openclaw agent exec`, installed by scripts/install-openclaw.sh), configured by
docs/openclaw.example.json5 ("ai-router/auto"), talks to a real `ai-router serve`
subprocess; ai-router routes to a scripted loopback upstream speaking OpenAI's wire
format (the paid provider) and writes a real SQLite ledger. An agent turn costs 10-20 s
here, so both tests share one server. It runs two workers, as a busy user would run it:
the requests of one agent turn may land on either, sharing one ledger.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from openclaw import INSTALL_HINT, VERSION, OpenClaw, Turn, write_config
from router_process import (
    FAKE_KEY,
    RouterServer,
    cost_by_hand,
    ledger_rows,
    serving,
    write_models_toml,
)

from upstreams.openai_wire import (
    OpenAIUpstream,
    chunk_body,
    error_reply,
    sse_reply,
    text_chunks,
    tool_call_chunk,
    usage_body,
)

OPENCLAW = OpenClaw.find()
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(OPENCLAW is None, reason=f"OpenClaw {VERSION} is not installed: "
                                                f"{INSTALL_HINT}"),
]

# An unscripted request gets a 400, which OpenClaw gives up on at once (a 5xx would be
# retried for ~90 s), so a surprise extra call fails the test fast.
UNSCRIPTED = error_reply(400, "e2e: no scripted reply left")

# The manager proposes a tier from the prompt; OpenClaw always sends tools, which the
# local model lacks, and the guard never climbs above the proposed tier. These prompts
# are ones the (deterministic) fallback routes to a paid tier, so the upstream answers.
PLAIN_PROMPT = "What is the capital of France? Answer in one sentence."
TOOL_PROMPT = "What is the secret word in note.txt?"


@dataclass
class Stack:
    upstream: OpenAIUpstream
    server: RouterServer
    openclaw: OpenClaw
    config: Path

    def turn(self, message: str, workspace: Path) -> tuple[Turn, list, list]:
        """One agent turn; returns it with the ledger's new `calls` and `outcomes` rows."""
        calls_before, outcomes_before = ledger_rows(self.server.db)
        turn = self.openclaw.exec(self.config, message, cwd=workspace)
        calls, outcomes = ledger_rows(self.server.db)
        return turn, calls[len(calls_before):], outcomes[len(outcomes_before):]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    assert OPENCLAW is not None
    root = tmp_path_factory.mktemp("openclaw-e2e")
    upstream = OpenAIUpstream(handler=UNSCRIPTED)
    with upstream.running() as upstream_v1, \
            serving(write_models_toml(root, upstream_v1), root, workers=2) as server:
        assert "(2 workers)" in server.output(), server.output()
        config = write_config(root / "openclaw", server.v1)
        openclaw = OPENCLAW.isolated(root / "openclaw-home")
        validated = openclaw.validate(config)
        assert validated.returncode == 0, validated.explain()
        assert json.loads(validated.stdout)["valid"] is True, validated.explain()
        yield Stack(upstream, server, openclaw, config)


@pytest.fixture
def agent(stack: Stack) -> Stack:
    stack.upstream.reset()
    stack.upstream.handler = UNSCRIPTED
    return stack


def routed(outcomes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """How ai-router routed each call, for assertion messages (the manager's tier matters)."""
    keys = ("decision", "decision_source", "overrides", "model", "status", "error")
    return [{k: o[k] for k in keys} for o in outcomes]


def tool_names(body: dict[str, Any]) -> set[str]:
    return {t["function"]["name"] for t in body.get("tools") or []}


def assert_settled(call: dict[str, Any], outcome: dict[str, Any], usage: tuple[int, int]
                   ) -> None:
    """One ledger call settled at the upstream's reported usage, and its outcome logged."""
    input_tokens, output_tokens = usage
    assert call["status"] == "settled", call
    assert call["provider"] == "loopback", call
    assert (call["input_tokens"], call["output_tokens"]) == usage, call
    assert not call["usage_estimated"], call
    assert call["cost_micro"] == cost_by_hand(input_tokens, output_tokens), call
    assert call["cost_micro"] <= call["reserved_micro"], call
    assert outcome["status"] == "ok", outcome
    assert (outcome["input_tokens"], outcome["output_tokens"]) == usage, outcome
    assert outcome["cost_micro"] == call["cost_micro"], outcome


def test_an_openclaw_turn_is_answered_by_the_paid_upstream_through_ai_router_and_settled(
        agent: Stack, tmp_path: Path) -> None:
    agent.upstream.push(sse_reply(text_chunks("Hello from ", "the paid upstream, via ai-router."),
                                  usage=usage_body(9100, 11)))

    turn, calls, outcomes = agent.turn(PLAIN_PROMPT, tmp_path)

    assert turn.returncode == 0, turn.explain()
    envelope = turn.envelope
    assert envelope["status"] == "ok", turn.explain()
    assert "Hello from the paid upstream, via ai-router." in envelope["final"], routed(outcomes)
    assert (envelope["provider"], envelope["model"]) == ("ai-router", "auto")

    [received] = agent.upstream.requests
    body = received.body
    assert body["model"] == "gpt-e2e"  # ai-router resolved "auto" to the upstream's own name
    assert {"read", "write", "exec"} <= tool_names(body)  # OpenClaw's tools made it through
    assert PLAIN_PROMPT in json.dumps(body["messages"])
    # ai-router calls with its own provider key, never with OpenClaw's dummy one
    assert received.headers["authorization"] == f"Bearer {FAKE_KEY}"

    [call], [outcome] = calls, outcomes
    assert_settled(call, outcome, (9100, 11))
    assert FAKE_KEY not in agent.server.output()
    assert FAKE_KEY.encode() not in agent.server.db.read_bytes()


def test_an_openclaw_tool_call_round_trips_through_ai_router_with_two_settled_calls(
        agent: Stack, tmp_path: Path) -> None:
    (tmp_path / "note.txt").write_text("The secret word is pineapple-42.\n")
    agent.upstream.push(
        sse_reply([chunk_body({"role": "assistant", "content": None}),
                   tool_call_chunk(0, call_id="call_read_1", name="read"),
                   tool_call_chunk(0, arguments=json.dumps({"path": "note.txt"})),
                   chunk_body({}, finish_reason="tool_calls")],
                  usage=usage_body(9000, 24)),
        sse_reply(text_chunks("The note says the secret word ", "is pineapple-42."),
                  usage=usage_body(9300, 12)))

    turn, calls, outcomes = agent.turn(TOOL_PROMPT, tmp_path)

    assert turn.returncode == 0, turn.explain()
    envelope = turn.envelope
    assert "The note says the secret word is pineapple-42." in envelope["final"], routed(outcomes)
    assert envelope["toolSummary"]["tools"] == ["read"], envelope

    first, second = agent.upstream.requests
    assert "read" in tool_names(first.body)
    messages = second.body["messages"]
    [assistant] = [m for m in messages if m["role"] == "assistant"]
    [call_out] = assistant["tool_calls"]
    assert call_out["function"]["name"] == "read"
    assert json.loads(call_out["function"]["arguments"]) == {"path": "note.txt"}
    [result] = [m for m in messages if m["role"] == "tool"]
    assert result["tool_call_id"] == call_out["id"]
    assert "The secret word is pineapple-42." in json.dumps(result["content"])

    assert len(calls) == len(outcomes) == 2, (calls, outcomes)
    assert_settled(calls[0], outcomes[0], (9000, 24))
    assert_settled(calls[1], outcomes[1], (9300, 12))
