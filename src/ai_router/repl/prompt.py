"""The input line: Enter sends, Alt-Enter adds a line, history kept in a file."""

from __future__ import annotations

from pathlib import Path

from prompt_toolkit import PromptSession
from prompt_toolkit.history import FileHistory
from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent


def make_prompt(history: Path) -> PromptSession[str]:
    keys = KeyBindings()

    @keys.add("escape", "enter")  # Alt-Enter sends Esc then Enter in most terminals
    def _newline(event: KeyPressEvent) -> None:
        event.current_buffer.insert_text("\n")

    @keys.add("c-c")
    def _interrupt(event: KeyPressEvent) -> None:
        """Ctrl-C drops a half-typed line, like a shell; on an empty line it tells the
        loop, which explains how to leave instead of leaving."""
        if event.current_buffer.text:
            event.current_buffer.reset()
        else:
            event.app.exit(exception=KeyboardInterrupt, style="class:aborting")

    return PromptSession(history=FileHistory(str(history)), key_bindings=keys,
                         multiline=False, prompt_continuation=lambda width, *_: "… ".rjust(width))
