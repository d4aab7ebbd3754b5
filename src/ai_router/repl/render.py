"""What the chat prints besides answers: the streamed answer itself, the footer, one-line
notices, /models and /help. The footer and the budget view are shared with the CLI."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from ..guard import VIRTUAL_MODELS
from ..schema import Delta, Tier

KEYS_HELP = ("Enter sends · Alt-Enter (or Esc then Enter) starts a new line; pasted newlines "
             "are kept · ↑/↓ history · Ctrl-C stops an answer · Ctrl-D or /quit leaves")


class AnswerPrinter:
    """Writes deltas as they arrive: reasoning dimmed, then the answer text."""

    def __init__(self, console: Console):
        self.console = console
        self.kind = ""  # "reasoning" or "text": what was written last
        self.tail = "\n"  # the last character written (a footer starts on a fresh line)

    def write(self, delta: Delta) -> None:
        if delta.reasoning:
            self._emit(delta.reasoning, "reasoning")
        if delta.text:
            if self.kind == "reasoning":
                self._emit("\n", "reasoning")
            self._emit(delta.text, "text")

    def finish(self) -> None:
        if self.tail != "\n":
            self.console.print()
            self.tail = "\n"

    def _emit(self, piece: str, kind: str) -> None:
        style = "dim italic" if kind == "reasoning" else ""
        self.console.print(Text(piece, style=style), end="", soft_wrap=True)
        self.kind, self.tail = kind, piece[-1]


def notice(ceiling: Tier, why: str | None, forced_offline: bool) -> str:
    """One plain line saying what the router will do now that the budget state changed."""
    if ceiling == "local":
        if forced_offline:
            return "offline-only mode: answering with local models (/online to use others)"
        return f"{why or 'budget spent for today'}: answering with local models until midnight"
    if ceiling == "cheap":
        return f"{why}: answering with cheaper models for now"
    return "all models are available again"


def line(console: Console, message: str, style: str = "dim") -> None:
    """A one-line status message (never markup from the user or a provider)."""
    console.print(Text(message, style=style), soft_wrap=True)


def error(console: Console, message: str) -> None:
    console.print(f"[red]error:[/red] {escape(message)}", soft_wrap=True, highlight=False)


def print_models(console: Console, rows: list[tuple[str, str, str, str]],
                 pinned: str | None) -> None:
    """rows: (ref, tier, availability, price) per model; then the virtual names."""
    table = Table("model", "tier", "available", "$/M in→out")
    for ref, tier, available, price in rows:
        table.add_row(f"{ref} (pinned)" if ref == pinned else ref, tier,
                      "yes" if available == "yes" else f"[yellow]{available}[/yellow]", price)
    console.print(table)
    line(console, f"virtual models: {', '.join(VIRTUAL_MODELS)} · pinned: {pinned or 'none'}")


def help_text(commands: dict[str, tuple[str, str]]) -> str:
    """commands: name → (usage, help)."""
    width = max(len(f"/{n} {u}") for n, (u, _) in commands.items())
    rows = [f"  {f'/{n} {u}'.ljust(width)}  {h}" for n, (u, h) in commands.items()]
    return "\n".join(["Type a question to ask it. Commands:", *rows, "", KEYS_HELP])
