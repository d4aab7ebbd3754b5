"""The command line: the only sync edge. Each command is a thin wrapper over async code."""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import sys
from collections.abc import Callable
from functools import wraps
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .config import load_config
from .errors import RouterError
from .ledger import usd
from .schema import CAPABILITIES, ChatRequest

if TYPE_CHECKING:
    from .ledger import Snapshot
    from .router import Routed

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="ai-router: a personal LLM gateway that spends a fixed daily budget wisely.")
out = Console()
err = Console(stderr=True, soft_wrap=True)  # an error or footer stays one line, never wrapped
T = TypeVar("T")

ConfigOpt = Annotated[str | None, typer.Option("--config", help="models.toml to use")]


def clean_errors(fn: Callable[..., T]) -> Callable[..., T]:
    """Router errors become one clear line on stderr and exit code 1, never a traceback."""
    @wraps(fn)
    def run(*args: Any, **kwargs: Any) -> T:
        try:
            return fn(*args, **kwargs)
        except RouterError as e:
            # escaped: messages quote TOML tables such as [models."x".price]
            err.print(f"[red]error:[/red] {escape(str(e))}", highlight=False)
            raise typer.Exit(1) from None
    return run


def offline_forced(flag: bool) -> bool:
    return flag or os.environ.get("AI_ROUTER_OFFLINE", "") not in ("", "0", "false")


@app.command()
@clean_errors
def ask(prompt: Annotated[str, typer.Argument(help="your question; '-' reads stdin")],
        capability: Annotated[str | None, typer.Option(
            help=f"force a capability: {', '.join(CAPABILITIES)}")] = None,
        model: Annotated[str, typer.Option(
            help="virtual model (auto, coding, cheap, local, …) or provider/model")] = "auto",
        system: Annotated[str | None, typer.Option(help="a system prompt")] = None,
        max_cost: Annotated[float | None, typer.Option(help="USD ceiling for this call")] = None,
        offline: Annotated[bool, typer.Option(help="use local models only")] = False,
        as_json: Annotated[bool, typer.Option("--json", help="one JSON object")] = False,
        config: ConfigOpt = None) -> None:
    """Ask one question; print the answer and a footer (model, tier, tokens, cost, budget)."""
    from .router import Router

    if capability and capability not in CAPABILITIES:
        raise RouterError(f"unknown capability {capability!r}; "
                          f"use one of {', '.join(CAPABILITIES)}")
    text = sys.stdin.read() if prompt == "-" else prompt
    request = ChatRequest.from_prompt(text, system=system, model=model)

    async def go() -> Any:
        router = Router.from_config(load_config(config), offline=offline_forced(offline))
        try:
            return await router.ask(request, capability=capability,  # type: ignore[arg-type]
                                    max_cost_usd=max_cost, source="cli")
        finally:
            await router.aclose()

    r = asyncio.run(go())
    if as_json:
        print(json.dumps({
            "answer": r.completion.text, "provider": r.model.provider, "model": r.model.ref,
            "tier": r.model.tier, "capability": r.capability, "usage": r.usage.model_dump(),
            "cost_usd": usd(r.cost_micro), "remaining_usd": usd(r.remaining_micro),
            "decision": {**r.manager.decision.model_dump(), "source": r.manager.source,
                         "fallback_reason": r.manager.fallback_reason},
            "overrides": r.overrides, "attempts": r.attempts, "offline": r.offline,
            "request_id": r.request_id}, ensure_ascii=False))
        return
    print(r.completion.text)
    err.print(footer(r), highlight=False)


def footer(r: Routed) -> str:
    """The line after an answer (rich markup; `ask` and `chat` share it): model, tier,
    tokens in→out, cost, what is left of today's budget."""
    u = r.usage
    return (f"[dim]— {r.model.ref} · {r.model.tier} · {u.input_tokens}→{u.output_tokens} tokens"
            f"{' (estimated)' if u.estimated else ''} · ${usd(r.cost_micro):.6f}"
            f" · ${usd(r.remaining_micro):.2f} left today"
            f"{' · offline-only' if r.offline else ''}[/dim]")


@app.command()
@clean_errors
def budget(config: ConfigOpt = None,
           as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Today's limit, spent, reserved, remaining, and spend per model."""
    from .router import Router

    router = Router.from_config(load_config(config))
    snap = router.ledger.snapshot(router.limit_micro)
    rows = router.ledger.spend_by_model(snap.day)
    router.ledger.close()
    if as_json:
        print(json.dumps({"day": snap.day, "limit_usd": usd(snap.limit_micro),
                          "spent_usd": usd(snap.spent_micro),
                          "reserved_usd": usd(snap.reserved_micro),
                          "remaining_usd": usd(snap.remaining_micro),
                          "by_model": [{k: v for k, v in r.items() if k != "cost_micro"}
                                       | {"cost_usd": usd(r["cost_micro"])} for r in rows]}))
        return
    print_budget(out, snap, rows)


def print_budget(console: Console, snap: Snapshot, rows: list[dict[str, Any]]) -> None:
    """Today's money and spend per model (`budget` and chat's /budget share it)."""
    console.print(f"[bold]{snap.day}[/bold]  limit ${usd(snap.limit_micro):.2f} · spent "
                  f"${usd(snap.spent_micro):.6f} · reserved ${usd(snap.reserved_micro):.6f} · "
                  f"remaining [green]${usd(snap.remaining_micro):.6f}[/green]", highlight=False)
    table = Table("model", "calls", "input tok", "output tok", "cost $")
    for r in rows:
        table.add_row(r["model"], str(r["calls"]), str(r["input_tokens"]),
                      str(r["output_tokens"]), f"{usd(r['cost_micro']):.6f}")
    console.print(table)


@app.command()
@clean_errors
def models(config: ConfigOpt = None) -> None:
    """The model registry with key status and prices (USD per million tokens)."""
    from .config import Keys
    from .router import _price_table

    cfg, keys = load_config(config), Keys.load()
    prices = _price_table(cfg)
    table = Table("model", "tier", "key", "in $/M", "out $/M", "context", "features")
    for ref, m in cfg.models.items():
        env = cfg.providers[m.provider].key_env
        key = "not needed" if env is None else (env if keys.has(env) else f"[red]{env} unset[/red]")
        p = prices[ref]
        table.add_row(ref, m.tier, key, "[red]unknown[/red]" if p is None else f"{p.input:g}",
                      "" if p is None else f"{p.output:g}", f"{m.context_window:,}",
                      ",".join(m.features))
    out.print(table)


# Modules that register more commands on `app` (kept out of this file to keep it short).
COMMAND_MODULES = ("doctor", "mcp_server", "server.command", "evaluate", "balance",
                   "repl.command", "stats")


def main() -> None:
    for name in COMMAND_MODULES:
        importlib.import_module(f"{__package__}.{name}")
    app()
