"""Nobody gets keys out. Extends test_cli_secrets (CLI output and ledger bytes) and
test_server_security (bearer auth, the serve process's log) to the server's responses of
every kind while every provider echoes its key back, the server's log records, and the
ledger with its WAL; checks that the files ai-router creates are owner-only and that the
`privacy` setting limits what the outcome log keeps of a prompt."""

from __future__ import annotations

import logging
import stat

import httpx
import pytest

from ai_router.config import load_config
from ai_router.repl.command import history_file
from ai_router.router import Router
from ai_router.schema import ChatRequest
from ai_router.server.app import create_app
from routing_setup import (
    FAKE_KEYS,
    PLANTED,
    ledger_rows,
    make_router,
    plant_keys,
    write_models_toml,
)
from server_setup import running_server
from upstreams import ollama_wire as ow
from upstreams import openai_wire as oa

ECHO = {env: f"Incorrect API key provided: {key}" for env, key in FAKE_KEYS.items()}


def answer(received: oa.Received):
    usage = oa.usage_body(12, 3)
    if received.streaming:
        return oa.sse_reply(oa.text_chunks("local ", "answer"), usage=usage)(received)
    return oa.json_reply(oa.completion_body("local answer", usage=usage))(received)


def stored_bytes(db) -> bytes:
    """The ledger file, its WAL and shared-memory file, as an attacker reading disk would."""
    return b"".join(p.read_bytes() for p in db.parent.glob(f"{db.name}*"))


def leaks(text: str | bytes) -> list[str]:
    blob = text if isinstance(text, bytes) else text.encode()
    found = [k for k in FAKE_KEYS.values() if k.encode() in blob]
    return found + (["PLANTED"] if PLANTED.encode() in blob else [])


def test_keys_echoed_by_every_provider_reach_no_response_log_line_or_ledger_byte(
        up, tmp_path, monkeypatch, caplog):
    up.reset()
    up.deepseek.handler = oa.error_reply(401, ECHO["DEEPSEEK_API_KEY"])
    up.anthropic.reply_error(401, ECHO["ANTHROPIC_API_KEY"])
    up.google.reply_error(400, ECHO["GEMINI_API_KEY"], reason="API_KEY_INVALID")
    up.local.push(oa.error_reply(500, f"local proxy saw {FAKE_KEYS['DEEPSEEK_API_KEY']}"))
    up.ollama.handler = ow.error_reply(500, f"ollama saw {FAKE_KEYS['GEMINI_API_KEY']}")
    router, db = make_router(tmp_path, monkeypatch, up.urls)
    caplog.set_level(logging.DEBUG)
    seen: list[str] = []
    chat = {"model": "cheap", "messages": [{"role": "user", "content": "hi"}]}

    with running_server(create_app(router, warm_up=False)) as url, httpx.Client(
            base_url=url, timeout=30) as client:
        failed = client.post("/v1/chat/completions", json=chat)  # every candidate fails
        up.local.handler = answer
        answered = client.post("/v1/chat/completions", json=chat)
        streamed = client.post("/v1/chat/completions", json={**chat, "stream": True})
        tool = client.post("/v1/route_and_ask", json={"prompt": "hi"})
        reads = [client.get(path) for path in ("/v1/budget", "/v1/models", "/health",
                                               "/v1/stats", "/dashboard")]
        for r in (failed, answered, streamed, tool, *reads):
            seen.append(f"{r.status_code} {dict(r.headers)} {r.text}")

    assert failed.status_code == 503 and "Incorrect API key provided: ***" in failed.text
    assert (answered.status_code, streamed.status_code, tool.status_code) == (200, 200, 200)
    assert [r.status_code for r in reads] == [200] * len(reads)
    assert not leaks("\n".join(seen)), "a key reached a client"
    assert not leaks(caplog.text), "a key reached the server log"
    stored = stored_bytes(db)
    assert b"Incorrect API key provided: ***" in stored  # the errors were kept…
    assert not leaks(stored), "a key reached the ledger"  # …without the keys


def test_the_ledger_its_wal_and_the_chat_history_are_owner_only(up, tmp_path, monkeypatch):
    up.reset()
    up.deepseek.handler = answer
    router, db = make_router(tmp_path, monkeypatch, up.urls)
    import asyncio

    async def modes_while_open() -> dict[str, int]:
        try:
            await router.ask(ChatRequest.from_prompt("hi", model="cheap"))
            # the WAL and shared-memory files exist only while a process has the ledger open
            return {p.name: stat.S_IMODE(p.stat().st_mode) for p in db.parent.glob(
                f"{db.name}*")}
        finally:
            await router.aclose()
    modes = asyncio.run(modes_while_open())
    modes["chat_history"] = stat.S_IMODE(history_file().stat().st_mode)

    assert set(modes) >= {db.name, f"{db.name}-wal", f"{db.name}-shm"}
    assert {name: oct(mode) for name, mode in modes.items() if mode & 0o077} == {}
    assert stat.S_IMODE(history_file().parent.stat().st_mode) & 0o077 == 0


SECRET_PROMPT = ("My bank PIN is 4921. Summarise the attached statement and tell me whether "
                 "the mortgage went out; my password is hunter2-correct-horse.")


@pytest.mark.parametrize("privacy, kept", [
    ("full", SECRET_PROMPT), ("preview", SECRET_PROMPT[:80]), ("off", None)])
async def test_the_privacy_setting_limits_what_the_outcome_log_keeps_of_a_prompt(
        up, tmp_path, monkeypatch, privacy, kept):
    up.reset()
    up.deepseek.handler = answer
    db = plant_keys(monkeypatch, tmp_path)
    config = write_models_toml(tmp_path, up.urls)
    config.write_text(f'privacy = "{privacy}"\n' + config.read_text())
    router = Router.from_config(load_config(config))
    try:
        await router.ask(ChatRequest.from_prompt(SECRET_PROMPT, model="cheap"))
        stream = await router.open_stream(ChatRequest.from_prompt(SECRET_PROMPT, model="cheap"))
        _ = [d async for d in stream.deltas]
    finally:
        await router.aclose()

    assert [o["prompt"] for o in ledger_rows(db, "outcomes")] == [kept, kept]
    stored = stored_bytes(db)
    assert (b"hunter2" in stored) == (privacy == "full")  # past the 80-character preview
    assert (b"4921" in stored) == (privacy != "off")
