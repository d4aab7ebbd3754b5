"""`ai-router chat`: the terminal chat (registered in cli.COMMAND_MODULES)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ..cli import ConfigOpt, app, clean_errors, offline_forced
from ..config import user_data_dir

if TYPE_CHECKING:
    from ..router import Router


@app.command()
@clean_errors
def chat(model: Annotated[str | None, typer.Option(
             help="pin a virtual model (auto, coding, cheap, local, …) or provider/model")] = None,
         offline: Annotated[bool, typer.Option(help="use local models only")] = False,
         config: ConfigOpt = None) -> None:
    """Chat in the terminal: streamed answers, a cost footer after each, /help for commands."""
    from ..config import load_config
    from ..router import Router

    router = Router.from_config(load_config(config), offline=offline_forced(offline))
    asyncio.run(_run(router, model))


async def _run(router: Router, model: str | None) -> None:
    from rich.console import Console

    from ..errors import UnknownModel
    from .loop import Chat
    from .prompt import make_prompt
    from .session import Session

    try:
        if model is not None and model not in router.valid_model_names():
            raise UnknownModel(model, router.valid_model_names())
        chat = Chat(router, Session(pinned=None if model in (None, "auto") else model),
                    Console(highlight=False))
        await chat.run(make_prompt(history_file()))
    finally:
        await router.aclose()


def history_file() -> Path:
    """The prompt history, kept across runs; owner-only, since questions can be private."""
    path = user_data_dir() / "chat_history"
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600))
    path.chmod(0o600)
    return path
