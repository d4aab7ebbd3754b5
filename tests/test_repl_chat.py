"""`ai-router chat` driven through a real pseudo-terminal: streamed answers with a footer,
slash commands, Ctrl-C, history across runs, and the one-line budget notices. Answers come
from loopback upstreams with scripted SSE replies; the ledger is a real SQLite file.

Each spawned REPL costs seconds of Python startup, so one long session covers most
behaviours and a second run checks what must survive a restart."""

from __future__ import annotations

import asyncio
import json
import os
import re
import sqlite3
import sys
import time
from io import StringIO
from pathlib import Path

import pexpect
from starlette.responses import StreamingResponse

from routing_setup import (
    DEEPSEEK,
    FAKE_KEYS,
    LOCAL,
    PLANTED,
    ledger_rows,
    plant_keys,
    standard_models,
    write_models_toml,
)
from upstreams.openai_wire import Received, chunk_body, sse_reply, text_chunks, usage_body

AI_ROUTER = Path(sys.executable).parent / "ai-router"
STRONG = "deepseek/deepseek-reasoner"  # a strong-tier model on the deepseek upstream
PROMPT = "›"  # prompt_toolkit draws the trailing space as a cursor move


def models_with_strong() -> dict:
    models = standard_models()
    models[STRONG] = {**models[DEEPSEEK], "tier": "strong", "quality": 5,
                      "price": {"input": 0.55, "output": 2.19}}
    return models


def spawn(config: Path, folder: Path, *extra: str) -> tuple[pexpect.spawn, StringIO]:
    env = {**os.environ, "PROMPT_TOOLKIT_NO_CPR": "1", "TERM": "xterm", "NO_COLOR": "1"}
    transcript = StringIO()
    child = pexpect.spawn(str(AI_ROUTER), ["chat", "--config", str(config), *extra], env=env,
                          cwd=str(folder), dimensions=(40, 160), encoding="utf-8", timeout=30)
    child.logfile_read = transcript
    child.expect_exact(PROMPT)
    return child, transcript


def send(child: pexpect.spawn, line: str) -> None:
    child.send(line + "\r")


def slow_sse(first: str, stall_s: float = 20.0):
    """A stream that sends one piece of text and then stalls, like a long answer."""
    def reply(_received: Received) -> StreamingResponse:
        async def body():
            for chunk in (chunk_body({"role": "assistant", "content": ""}),
                          chunk_body({"content": first})):
                yield f"data: {json.dumps(chunk)}\n\n"
            await asyncio.sleep(stall_s)
            yield f"data: {json.dumps(chunk_body({'content': 'never shown'}))}\n\n"
        return StreamingResponse(body(), media_type="text/event-stream")
    return reply


def test_a_chat_streams_answers_and_obeys_its_commands(up, tmp_path, monkeypatch):
    up.reset()
    db = plant_keys(monkeypatch, tmp_path)
    config = write_models_toml(tmp_path, up.urls, daily_usd=1.0, models=models_with_strong())
    child, transcript = spawn(config, tmp_path, "--model", "cheap")  # not up to the manager

    # a streamed answer, then the footer: model, tier, tokens in→out, cost, what is left
    thinking = chunk_body({"role": "assistant", "content": "", "reasoning_content": "hmm..."})
    up.deepseek.push(sse_reply([thinking, *text_chunks("Hel", "lo ", "world")],
                               usage=usage_body(12, 3)))
    send(child, "hello there")
    child.expect_exact("hmm...")  # reasoning first (dimmed), then the answer
    child.expect_exact("Hello world")
    child.expect(r"deepseek/deepseek-chat · cheap · 12→3 tokens · \$0\.0000\d+ · \$1\.00 left")
    child.expect_exact(PROMPT)

    send(child, "/budget")
    child.expect(r"limit \$1\.00 · spent \$0\.00000\d · reserved \$0\.000000")
    child.expect_exact(DEEPSEEK)
    child.expect_exact(PROMPT)

    send(child, "/good")
    child.expect_exact("noted: the last answer was good")
    send(child, "/help")
    child.expect_exact("Alt-Enter (or Esc then Enter) starts a new line")

    # /use pins a model; the conversation so far goes with the next question
    send(child, f"/use {LOCAL}")
    child.expect_exact(f"using {LOCAL} until /auto")
    up.local.push(sse_reply(text_chunks("local says hi"), usage=usage_body(20, 4)))
    send(child, "and now?")
    child.expect_exact("local says hi")
    child.expect_exact(f"{LOCAL} · local · 20→4 tokens")
    child.expect_exact(PROMPT)

    # /retry stronger asks the same question again of a strong model
    up.deepseek.push(sse_reply(text_chunks("a stronger answer"), usage=usage_body(30, 5)))
    send(child, "/retry stronger")
    child.expect_exact("a stronger answer")
    child.expect_exact(f"{STRONG} · strong · 30→5 tokens")
    child.expect_exact(PROMPT)

    # Ctrl-C mid-answer stops it and the chat goes on
    up.deepseek.push(slow_sse("Once upon a time"))
    send(child, "/use cheap")
    send(child, "tell me a long story")
    child.expect_exact("Once upon a time")
    child.sendintr()
    child.expect_exact("(stopped)")
    child.expect(r"deepseek/deepseek-chat · cheap · \d+→\d+ tokens \(estimated\)")
    child.expect_exact(PROMPT)
    child.sendintr()  # at an empty prompt: a hint, not an exit
    child.expect_exact("Ctrl-D or /quit to leave")
    send(child, "/frobnicate")
    child.expect_exact("unknown command /frobnicate; /help lists the commands")

    # /offline: one notice line, then answers come from the local model
    send(child, "/auto")
    child.expect_exact("the router chooses each model again")
    send(child, "/offline")
    child.expect_exact("offline-only mode: answering with local models")
    up.local.push(sse_reply(text_chunks("offline answer"), usage=usage_body(25, 2)),
                  sse_reply(text_chunks("still offline"), usage=usage_body(25, 2)))
    send(child, "what now?")
    child.expect_exact("offline answer")
    child.expect_exact(f"{LOCAL} · local · 25→2 tokens")
    send(child, "/new")
    child.expect_exact("new conversation")
    send(child, "and again?")
    child.expect_exact("still offline")
    child.expect_exact(PROMPT)
    send(child, "/quit")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0

    asked = [(r.body["model"], r.body["messages"]) for r in up.deepseek.requests]
    assert [m for m, _ in asked] == ["deepseek-chat", "deepseek-reasoner", "deepseek-chat"]
    assert asked[1][1][-1] == {"role": "user", "content": "and now?"}  # the retried question
    assert [m["content"] for m in up.local.requests[0].body["messages"]] == [
        "hello there", "Hello world", "and now?"]  # the conversation went with it
    # nothing asked of a cheaper or stronger tier fell back on the conversation's local model
    assert [r.body["messages"][-1]["content"] for r in up.local.requests] == [
        "and now?", "what now?", "and again?"]
    assert len(up.local.requests[2].body["messages"]) == 1  # /new forgot the conversation

    outcomes = ledger_rows(db, "outcomes")
    assert [o["source"] for o in outcomes] == ["repl"] * 6
    assert outcomes[0]["feedback"] == "good"
    assert outcomes[1]["feedback"] == "escalated"  # the answer /retry stronger replaced
    assert any("the client asked for strong" in o for o in json.loads(outcomes[2]["overrides"]))
    assert outcomes[3]["status"] == "cancelled"
    stopped = [c for c in ledger_rows(db, "calls") if c["request_id"] == outcomes[3]["id"]]
    assert [c["status"] for c in stopped] == ["settled"]  # nothing left reserved

    text = transcript.getvalue()
    assert text.count("offline-only mode: answering with local models") == 1
    for key in FAKE_KEYS.values():
        assert key not in text
    assert PLANTED not in text


def test_history_survives_a_restart_and_a_spent_budget_answers_locally(up, tmp_path,
                                                                       monkeypatch):
    up.reset()
    db = plant_keys(monkeypatch, tmp_path, keys={})  # no keys at all
    config = write_models_toml(tmp_path, up.urls, daily_usd=0.0)
    up.local.push(sse_reply(text_chunks("first local"), usage=usage_body(9, 2)),
                  sse_reply(text_chunks("second local"), usage=usage_body(9, 2)))

    child, transcript = spawn(config, tmp_path)
    send(child, "remember this line")
    child.expect_exact("first local")
    child.send("one more\x1b\rover two lines\r")  # Esc-Enter (Alt-Enter): a newline, not send
    child.expect_exact("second local")
    child.expect_exact(PROMPT)
    child.sendeof()
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    notices = re.findall(r"budget is spent: answering with local models until midnight",
                         transcript.getvalue())
    assert len(notices) == 1  # said once, not on every answer

    history = tmp_path / "data" / "ai-router" / "chat_history"
    assert history.stat().st_mode & 0o777 == 0o600
    child, _ = spawn(config, tmp_path)
    child.send("\x1b[A")  # ↑: the last line of the previous run, both of its lines
    child.expect_exact("one more")
    child.expect_exact("over two lines")
    child.sendintr()  # Ctrl-C drops the recalled line unsent

    # Ctrl-C stops a command stuck waiting (another process holds the ledger's write lock)
    # and the chat goes on
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    send(child, "/budget")
    time.sleep(1.0)  # let the command reach the ledger and wait there
    child.sendintr()
    child.expect_exact("(stopped)")
    child.expect_exact(PROMPT)
    holder.execute("ROLLBACK")
    holder.close()
    send(child, "/budget")
    child.expect(r"limit \$0\.00")
    child.expect_exact(PROMPT)
    child.sendeof()
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert [r.body["messages"][-1]["content"] for r in up.local.requests] == [
        "remember this line", "one more\nover two lines"]
