"""Sticky routing across processes: a conversation stays on the model of its first turn
whichever process serves the next one (server workers, the REPL, a restarted server),
because the model is found in the shared outcome log. Two Routers on one ledger file are
two processes here: each has its own SQLite connections, manager and memory."""

from __future__ import annotations

import pytest

from ai_router.config import load_config
from ai_router.router import Router
from ai_router.schema import ChatRequest
from routing_setup import ANTHROPIC, DEEPSEEK, plant_keys, standard_models, write_models_toml
from upstreams import anthropic_wire as aw
from upstreams import openai_wire as oa


def first_turn(system: str) -> ChatRequest:
    return ChatRequest(model="cheap", messages=[
        {"role": "system", "content": system},
        {"role": "user", "content": "hello there"}])


def next_turn(system: str) -> ChatRequest:
    return ChatRequest(model="cheap", messages=[
        *first_turn(system).messages,
        {"role": "assistant", "content": "Hello! How can I help?"},
        {"role": "user", "content": "write a Python function that merges two sorted lists"}])


@pytest.fixture
def routers(up, tmp_path, monkeypatch):
    """Two processes' Routers over one ledger. Of the cheap models DeepSeek ranks first
    but may only chat, so a coding turn goes to Claude unless it sticks to DeepSeek."""
    up.reset()
    up.deepseek.handler = oa.json_reply(oa.completion_body("from deepseek"))
    up.anthropic.reply(aw.message([aw.text_block("from claude")]))  # the last one repeats
    plant_keys(monkeypatch, tmp_path)
    models = standard_models()
    models[DEEPSEEK] = {**models[DEEPSEEK], "capabilities": ["chat"]}

    def make(privacy: str) -> Router:
        path = write_models_toml(tmp_path, up.urls, models=models)
        path.write_text(f'privacy = "{privacy}"\n' + path.read_text())
        return Router.from_config(load_config(path))
    return make


async def test_the_next_turn_stays_on_the_first_turns_model_in_another_process(routers):
    a, b = routers("preview"), routers("preview")
    try:
        first = await a.ask(first_turn("You are Ada."), capability="chat", source="server")
        assert first.model.ref == DEEPSEEK
        # another conversation's coding turn goes where coding goes...
        fresh = await b.ask(next_turn("You are Bob."), capability="coding", source="server")
        assert fresh.model.ref == ANTHROPIC
        # ...but this conversation's, in the other process, stays where it began
        later = await b.ask(next_turn("You are Ada."), capability="coding", source="server")
        assert later.model.ref == DEEPSEEK
    finally:
        await a.aclose()
        await b.aclose()


async def test_with_privacy_off_the_conversation_key_means_nothing_outside_its_process(
        routers):
    a, b = routers("off"), routers("off")
    try:
        assert (await a.ask(first_turn("You are Ada."), capability="chat")).model.ref == DEEPSEEK
        elsewhere = await b.ask(next_turn("You are Ada."), capability="coding")
        assert elsewhere.model.ref == ANTHROPIC  # no shared key: decided afresh
        here = await a.ask(next_turn("You are Ada."), capability="coding")
        assert here.model.ref == DEEPSEEK  # the process that holds the salt still sticks
    finally:
        await a.aclose()
        await b.aclose()
