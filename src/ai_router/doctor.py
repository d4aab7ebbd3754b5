"""`ai-router doctor`: check config, keys, the local model and each provider; say how to fix."""

from __future__ import annotations

import asyncio
from typing import Annotated

import httpx
import typer
from rich.markup import escape
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn

from .cli import ConfigOpt, app, clean_errors, out
from .clock import zone
from .config import Config, Keys, ProviderConfig, load_config
from .errors import LedgerError, RouterError
from .ledger import Ledger

OK, WARN, BAD = "[green]ok[/green]", "[yellow]warn[/yellow]", "[red]fail[/red]"


@app.command()
@clean_errors
def doctor(config: ConfigOpt = None,
           pull: Annotated[bool, typer.Option(help="ollama pull the manager model if missing")]
           = False) -> None:
    """Check configuration, keys (masked), the local model and each provider's reachability."""
    cfg = load_config(config)
    out.print(f"{OK} config {cfg.path} ({len(cfg.providers)} providers, {len(cfg.models)} models)")
    _check_ledger(cfg)
    keys = Keys.load()
    for name, p in cfg.providers.items():
        if p.key_env:
            status = OK if keys.has(p.key_env) else WARN
            hint = "" if keys.has(p.key_env) else f" — set {p.key_env} in .env to use {name}"
            out.print(f"{status} key {p.key_env}: {keys.mask(p.key_env)}{hint}", highlight=False)
    asyncio.run(_check_local(cfg, pull))
    results = asyncio.run(_reachability(cfg))
    for name, (ok, detail) in results.items():
        out.print(f"{OK if ok else WARN} {name}: {detail}", highlight=False)


def _check_ledger(cfg: Config) -> None:
    path = cfg.database_path()
    try:
        ledger = Ledger(path, zone(cfg.budget.timezone))
        snap = ledger.snapshot(round(cfg.budget.daily_usd * 1e6))
        ledger.close()
        out.print(f"{OK} ledger {path}: ${snap.remaining_micro / 1e6:.2f} of "
                  f"${cfg.budget.daily_usd:.2f} left today", highlight=False)
    except LedgerError as e:
        out.print(f"{BAD} {escape(str(e))}", highlight=False)


async def _check_local(cfg: Config, pull: bool) -> None:
    from .local_model import EmbeddedModelUnavailable, gguf_path, ollama_status

    m = cfg.manager
    endpoint = m.endpoint.rstrip("/")
    status = "elsewhere" if endpoint == "embedded" or endpoint.endswith("/v1") else \
        await ollama_status(m.endpoint, m.model)
    fallback = ("the embedded model decides" if m.embedded_fallback else
                "the built-in heuristics decide (embedded_fallback = false)")
    if status == "elsewhere":
        where = "the embedded model" if endpoint == "embedded" else f"{m.model} at {endpoint}"
        out.print(f"{OK} manager: {where} (set in models.toml)", highlight=False)
    elif status == "ready":
        out.print(f"{OK} manager: Ollama at {m.endpoint} has {m.model}")
    elif status == "missing" and pull:
        try:
            await _pull(cfg, m.model)
        except RouterError as e:  # say it and go on with the other checks
            out.print(f"{BAD} manager: could not pull {m.model}: {escape(str(e))} — check "
                      "`model` under [manager] in models.toml", highlight=False)
    elif status == "missing":
        out.print(f"{WARN} manager: Ollama runs but lacks {m.model} — run `ai-router doctor "
                  f"--pull` (or `ollama pull {m.model}`)")
    else:
        out.print(f"{WARN} manager: no Ollama at {m.endpoint}; {fallback} "
                  "(install Ollama for a stronger manager)", highlight=False)
    try:
        out.print(f"{OK} embedded model: {gguf_path().name}", highlight=False)
    except EmbeddedModelUnavailable as e:
        out.print(f"{BAD} embedded model: {escape(str(e))}; reinstall ai-router (uv sync)",
                  highlight=False)


async def _pull(cfg: Config, model: str) -> None:
    from .providers.ollama import OllamaAdapter

    adapter = OllamaAdapter("ollama", ProviderConfig(kind="ollama", base_url=cfg.manager.endpoint))
    with Progress(TextColumn(f"pulling {model}"), BarColumn(), DownloadColumn()) as bar:
        task = bar.add_task("pull", total=None)
        await adapter.pull(model, lambda done, total: bar.update(task, completed=done,
                                                                 total=total or None))
    out.print(f"{OK} manager: pulled {model}")


async def _reachability(cfg: Config) -> dict[str, tuple[bool, str]]:
    """Any HTTP answer means reachable; only connection-level failures count as down."""
    async def probe(client: httpx.AsyncClient, p: ProviderConfig) -> tuple[bool, str]:
        if not p.base_url:
            return True, "in-process"
        try:
            r = await client.get(p.base_url)
            return True, f"reachable at {p.base_url} (HTTP {r.status_code})"
        except httpx.HTTPError as e:
            return False, f"unreachable at {p.base_url} ({type(e).__name__}); check the " \
                          "network or base_url in models.toml"

    async with httpx.AsyncClient(timeout=3.0) as client:
        names = list(cfg.providers)
        found = await asyncio.gather(*(probe(client, cfg.providers[n]) for n in names))
    return dict(zip(names, found, strict=True))
