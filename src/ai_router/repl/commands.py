"""Slash commands: a registry of small handlers, looked up by name."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..cli import print_budget
from . import render

if TYPE_CHECKING:
    from .loop import Chat

Handler = Callable[["Chat", str], Awaitable[None]]


@dataclass(frozen=True)
class Command:
    run: Handler
    help: str
    usage: str = ""


COMMANDS: dict[str, Command] = {}


def command(name: str, help: str, usage: str = "") -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        COMMANDS[name] = Command(fn, help, usage)
        return fn
    return register


async def dispatch(chat: Chat, line: str) -> None:
    name, _, arg = line[1:].partition(" ")
    found = COMMANDS.get(name.lower())
    if found is None:
        render.line(chat.console, f"unknown command /{name}; /help lists the commands")
        return
    await found.run(chat, arg.strip())


@command("help", "this list")
async def _help(chat: Chat, arg: str) -> None:
    chat.console.print(render.help_text({n: (c.usage, c.help) for n, c in COMMANDS.items()}),
                       highlight=False, markup=False)


@command("budget", "today's limit, spent, reserved, remaining, per model")
async def _budget(chat: Chat, arg: str) -> None:
    ledger = chat.router.ledger
    snap = await asyncio.to_thread(ledger.snapshot, chat.router.limit_micro)
    print_budget(chat.console, snap, await asyncio.to_thread(ledger.spend_by_model, snap.day))


@command("models", "the models and whether each can answer now")
async def _models(chat: Chat, arg: str) -> None:
    render.print_models(chat.console, chat.model_rows(), chat.session.pinned)


@command("use", "pin a model: a virtual one (auto, coding, cheap, strong, local, …) or "
         "provider/model", usage="<model>")
async def _use(chat: Chat, arg: str) -> None:
    valid = chat.router.valid_model_names()
    if arg not in valid:
        render.line(chat.console, f"usage: /use <model>, one of: {', '.join(valid)}")
        return
    chat.session.pinned = None if arg == "auto" else arg
    render.line(chat.console, f"using {arg} until /auto" if arg != "auto" else
                "the router chooses each model again")


@command("auto", "let the router choose the model again")
async def _auto(chat: Chat, arg: str) -> None:
    await _use(chat, "auto")


@command("offline", "local models only")
async def _offline(chat: Chat, arg: str) -> None:
    chat.router.offline = True
    await chat.announce_budget_state()


@command("online", "paid models allowed again (budget permitting)")
async def _online(chat: Chat, arg: str) -> None:
    chat.router.offline = False
    await chat.announce_budget_state()


@command("retry", "ask the last question again; 'stronger' uses a strong model once",
         usage="[stronger]")
async def _retry(chat: Chat, arg: str) -> None:
    if arg not in ("", "stronger"):
        render.line(chat.console, "usage: /retry [stronger]")
        return
    if chat.session.last_question is None:
        render.line(chat.console, "nothing to retry yet")
        return
    await chat.retry(stronger=arg == "stronger")


async def _rate(chat: Chat, feedback: str) -> None:
    outcome = chat.session.last_outcome_id
    if outcome is None:
        render.line(chat.console, "no answer to rate yet")
        return
    if await asyncio.to_thread(chat.router.ledger.set_feedback, outcome, feedback):
        render.line(chat.console, f"noted: the last answer was {feedback}")


@command("good", "the last answer was good (the router learns from it)")
async def _good(chat: Chat, arg: str) -> None:
    await _rate(chat, "good")


@command("bad", "the last answer was bad")
async def _bad(chat: Chat, arg: str) -> None:
    await _rate(chat, "bad")


@command("new", "start a new conversation")
async def _new(chat: Chat, arg: str) -> None:
    chat.session.new()
    render.line(chat.console, "new conversation")


@command("quit", "leave (Ctrl-D too)")
async def _quit(chat: Chat, arg: str) -> None:
    chat.done = True
