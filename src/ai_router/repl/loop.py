"""The chat loop: prompt, stream the answer, footer, notices; Ctrl-C stops what runs."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext, suppress

from prompt_toolkit import PromptSession
from rich.console import Console

from ..cli import footer
from ..errors import RouterError
from ..guard import Intent, budget_ceiling
from ..router import RoutedStream, Router
from ..schema import ChatRequest, Tier
from . import render
from .commands import dispatch
from .session import Session


class Chat:
    def __init__(self, router: Router, session: Session, console: Console):
        self.router, self.session, self.console = router, session, console
        self.done = False
        self.state: tuple[Tier, bool] = ("strong", False)  # the budget state last announced
        self.running: list[asyncio.Task[None]] = []  # what Ctrl-C stops: the innermost

    async def run(self, prompt: PromptSession[str]) -> None:
        render.line(self.console, "ai-router chat · /help lists the commands · Ctrl-D leaves")
        await self.announce_budget_state()
        warming = asyncio.create_task(self._warm_up())  # while the user types
        try:
            while not self.done:
                try:
                    text = (await prompt.prompt_async(self.prompt_text())).strip()
                except KeyboardInterrupt:
                    render.line(self.console, "(Ctrl-D or /quit to leave)")
                    continue
                except EOFError:
                    break
                if text:
                    await self.handle(text)
        finally:
            warming.cancel()
            with suppress(asyncio.CancelledError):
                await warming

    async def handle(self, text: str) -> None:
        work = dispatch(self, text) if text.startswith("/") else self.ask(text)
        task = asyncio.create_task(work)  # type: ignore[arg-type]
        with self._interruptible(task):
            await asyncio.wait([task])
        if task.cancelled():  # Ctrl-C in a command (an answer says "(stopped)" itself)
            render.line(self.console, "(stopped)")
        elif isinstance(task.exception(), RouterError):
            render.error(self.console, str(task.exception()))
        elif task.exception() is not None:
            raise task.exception()  # type: ignore[misc]

    def prompt_text(self) -> str:
        tags = [t for t in (self.session.pinned, "offline" if self.router.offline else None) if t]
        return f"[{' · '.join(tags)}] › " if tags else "› "

    async def ask(self, question: str, model: str | None = None) -> str | None:
        """Stream one answer; return its outcome id (None if it never started)."""
        await self.announce_budget_state()
        printer = render.AnswerPrinter(self.console)
        opened: list[RoutedStream] = []
        task = asyncio.create_task(self._stream(self.session.request(question, model),
                                                printer, opened))
        with self._interruptible(task):
            await asyncio.wait([task])
        printer.finish()
        stopped = task.cancelled()
        failure = None if stopped else task.exception()
        result = opened[0].result if opened else None
        if stopped:
            render.line(self.console, "(stopped)")
        if result is not None:
            self.console.print(footer(result), highlight=False, soft_wrap=True)
        whole = result is not None and not stopped and failure is None
        self.session.asked(question, result.request_id if result else None,
                           result.completion.text if whole and result else None)
        await self.announce_budget_state()
        if failure is not None:
            raise failure
        return result.request_id if result else None

    async def retry(self, stronger: bool) -> None:
        question, previous = self.session.last_question, self.session.last_outcome_id
        assert question is not None
        self.session.forget_last_answer()
        await self.ask(question, model="strong" if stronger else None)
        if stronger and previous is not None:
            # the earlier answer was not enough: a signal for the manager's examples
            await asyncio.to_thread(self.router.ledger.set_feedback, previous, "escalated")

    async def _stream(self, request: ChatRequest, printer: render.AnswerPrinter,
                      opened: list[RoutedStream]) -> None:
        with self.console.status("thinking…", spinner="dots"):  # gone at the first words
            stream = await self.router.open_stream(request, source="repl")
        opened.append(stream)
        deltas = stream.deltas
        try:
            async for delta in deltas:
                printer.write(delta)
        finally:
            # closing the relay settles the call in the ledger, also when Ctrl-C cut it
            await deltas.aclose()  # type: ignore[attr-defined]

    async def announce_budget_state(self) -> None:
        """Print one line when the money (or /offline) changes what the router may use."""
        snap = await asyncio.to_thread(self.router.ledger.snapshot, self.router.limit_micro)
        ceiling, why = budget_ceiling(snap, self.router.config, Intent(offline=self.router.offline))
        state = (ceiling, self.router.offline)
        if state != self.state:
            self.state = state
            render.line(self.console, render.notice(ceiling, why, self.router.offline),
                        style="yellow")

    def model_rows(self) -> list[tuple[str, str, str, str]]:
        available = self.router.available_providers()
        rows = []
        for ref, m in self.router.config.models.items():
            key_env = self.router.config.providers[m.provider].key_env
            price = self.router.prices.get(ref)
            if self.router.offline and not m.is_local:
                status = "offline-only"
            elif not self.router.keys.has(key_env):
                status = f"{key_env} unset"
            elif m.provider not in available:
                status = "failing, cooling down"
            elif price is None and not m.is_local:
                status = "no known price"
            else:
                status = "yes"
            shown = "free" if m.is_local else "?" if price is None else \
                f"{price.input:g}→{price.output:g}"
            rows.append((ref, m.tier, status, shown))
        return rows

    async def _warm_up(self) -> None:
        with suppress(Exception):  # best effort: a cold manager only makes one answer slower
            await self.router.manager.warm_up()


    @contextmanager
    def _interruptible(self, task: asyncio.Task[None]) -> Iterator[None]:
        """While `task` runs, Ctrl-C (SIGINT) cancels it instead of leaving the chat. Tasks
        nest (a command that streams an answer): Ctrl-C stops the innermost, once."""
        self.running.append(task)
        with _ctrl_c_stops(self.running) if len(self.running) == 1 else nullcontext():
            try:
                yield
            finally:
                self.running.pop()


@contextmanager
def _ctrl_c_stops(running: list[asyncio.Task[None]]) -> Iterator[None]:
    loop = asyncio.get_running_loop()
    previous = signal.getsignal(signal.SIGINT)

    def interrupt() -> None:
        if running and not running[-1].cancelling():  # a second Ctrl-C must not cut
            running[-1].cancel()                       # the ledger settlement

    try:
        loop.add_signal_handler(signal.SIGINT, interrupt)
        installed = True
    except (NotImplementedError, RuntimeError, ValueError):  # no signals here (Windows, thread)
        installed = False
    try:
        yield
    finally:
        if installed:
            loop.remove_signal_handler(signal.SIGINT)
            signal.signal(signal.SIGINT, previous)  # asyncio.run's own Ctrl-C handling
