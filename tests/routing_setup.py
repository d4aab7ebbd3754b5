"""A whole routing setup on loopback: upstream servers, a models.toml pointing at them,
planted fake keys and a ledger file in a temporary folder. Shared by router, CLI and
server tests.

    with Loopbacks.running() as up:                        # once per module (≈1 s)
        ...
    # per test (monkeypatch, tmp_path are pytest fixtures):
    up.reset()
    router, db = make_router(tmp_path, monkeypatch, up.urls, daily_usd=1.0)
    # (make_router = write_models_toml + plant_keys + Router.from_config; the CLI tests
    #  use the first two and run the console script instead)
    up.deepseek.push(json_reply(completion_body("hi", usage=usage_body(12, 3))))
    routed = await router.ask(ChatRequest.from_prompt("hi", model=DEEPSEEK))

The registry (`standard_models()`) has one model per provider kind with explicit prices,
so a test can compute the expected cost by hand (`cost_by_hand`):

- `deepseek/deepseek-chat`   openai-compatible, cheap, quality 5 (first choice for chat)
- `anthropic/claude-haiku-4-5`  anthropic, cheap, quality 4
- `google/gemini-2.5-flash`  google, cheap, quality 3
- `local/qwen-local`         openai-compatible, local tier, quality 3 (the local answer)
- `ollama/llama3.2:1b`       ollama, local tier, quality 2

The manager points at a closed port with no embedded fallback, so it never starts a
model. Chains are `cheap → local` for every capability; a test that needs a given
route asks for a virtual model ("cheap", "local") or pins a model, so the outcome does
not depend on what the manager's decision happens to be.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from ai_router.clock import Clock, system_clock
from ai_router.config import load_config
from ai_router.router import Router
from upstreams.anthropic_wire import AnthropicWire
from upstreams.gemini_wire import GeminiWire
from upstreams.ollama_wire import OllamaUpstream
from upstreams.openai_wire import OpenAIUpstream
from upstreams.server import free_port, serve

DEEPSEEK = "deepseek/deepseek-chat"
ANTHROPIC = "anthropic/claude-haiku-4-5"
GOOGLE = "google/gemini-2.5-flash"
LOCAL = "local/qwen-local"
OLLAMA = "ollama/llama3.2:1b"

# Recognisable fake keys: a test can grep any output or file for "PLANTED".
FAKE_KEYS = {
    "DEEPSEEK_API_KEY": "fake-PLANTED-deepseek-5f1c9e0a7b3d",
    "ANTHROPIC_API_KEY": "fake-PLANTED-anthropic-82c4d6e1",
    "GEMINI_API_KEY": "fake-PLANTED-gemini-0d9b7a55c3",
}
PLANTED = "PLANTED"

PRICES = {  # USD per million tokens
    DEEPSEEK: {"input": 0.27, "output": 1.10, "cache_read": 0.07},
    ANTHROPIC: {"input": 1.0, "output": 5.0, "cache_read": 0.1, "cache_write": 1.25},
    GOOGLE: {"input": 0.30, "output": 2.50, "cache_read": 0.075},
}


@dataclass
class Loopbacks:
    """One running loopback server per provider kind, plus a local OpenAI-compatible one."""

    deepseek: OpenAIUpstream = field(default_factory=OpenAIUpstream)
    anthropic: AnthropicWire = field(default_factory=AnthropicWire)
    google: GeminiWire = field(default_factory=GeminiWire)
    ollama: OllamaUpstream = field(default_factory=OllamaUpstream)
    local: OpenAIUpstream = field(default_factory=OpenAIUpstream)
    urls: dict[str, str] = field(default_factory=dict)  # provider name → base_url

    @classmethod
    @contextmanager
    def running(cls) -> Iterator[Loopbacks]:
        up = cls()
        with ExitStack() as stack:
            up.urls = {
                "deepseek": stack.enter_context(up.deepseek.running()),
                "anthropic": stack.enter_context(serve(up.anthropic.app)),
                "google": stack.enter_context(serve(up.google.app)),
                "ollama": stack.enter_context(up.ollama.running()),
                "local": stack.enter_context(up.local.running()),
            }
            yield up

    def reset(self) -> None:
        """Forget every script and record (between tests sharing the servers)."""
        for server in (self.deepseek, self.anthropic, self.google, self.ollama, self.local):
            server.reset()

    def calls(self) -> dict[str, int]:
        """Requests each upstream received, by provider name."""
        return {"deepseek": len(self.deepseek.requests), "anthropic": len(self.anthropic.requests),
                "google": len(self.google.requests), "ollama": len(self.ollama.requests),
                "local": len(self.local.requests)}


def provider_tables(urls: dict[str, str], timeout_s: float = 10.0) -> dict[str, dict[str, Any]]:
    """[providers.*] for the loopback servers; keys by their conventional env-var names."""
    common = {"timeout_s": timeout_s}
    return {
        "deepseek": {"kind": "openai-compatible", "base_url": urls["deepseek"],
                     "key_env": "DEEPSEEK_API_KEY", **common},
        "anthropic": {"kind": "anthropic", "base_url": urls["anthropic"],
                      "key_env": "ANTHROPIC_API_KEY", **common},
        "google": {"kind": "google", "base_url": urls["google"], "key_env": "GEMINI_API_KEY",
                   **common},
        "ollama": {"kind": "ollama", "base_url": urls["ollama"], **common},
        "local": {"kind": "openai-compatible", "base_url": urls["local"], **common},
    }


def standard_models() -> dict[str, dict[str, Any]]:
    """[models.*]: one model per provider kind, explicit prices, a known quality order."""
    paid = {"tier": "cheap", "features": ["tools", "json"], "context_window": 128_000,
            "max_output": 8192}
    local = {"tier": "local", "features": ["json"], "context_window": 32_768,
             "max_output": 4096}
    return {
        DEEPSEEK: {**paid, "quality": 5, "price": PRICES[DEEPSEEK]},
        ANTHROPIC: {**paid, "quality": 4, "price": PRICES[ANTHROPIC]},
        GOOGLE: {**paid, "quality": 3, "price": PRICES[GOOGLE]},
        LOCAL: {**local, "quality": 3},
        OLLAMA: {**local, "quality": 2},
    }


def write_models_toml(folder: Path, urls: dict[str, str], *, daily_usd: float = 1.0,
                      models: dict[str, dict[str, Any]] | None = None,
                      providers: dict[str, dict[str, Any]] | None = None,
                      chains: dict[str, list[str]] | None = None,
                      budget: dict[str, Any] | None = None, timeout_s: float = 10.0,
                      name: str = "models.toml") -> Path:
    """Write a models.toml for the loopback setup and return its path. `models` and
    `providers` replace the standard tables; `budget` adds keys to [budget]."""
    capabilities = ("chat", "knowledge", "writing", "coding", "math", "reasoning", "extraction")
    tables: dict[str, Any] = {
        # a wide pace margin: a test running early in the day is not downgraded for pace
        "budget": {"daily_usd": daily_usd, "timezone": "UTC", "pace_margin": 10.0,
                   **(budget or {})},
        "manager": {"endpoint": f"http://127.0.0.1:{free_port()}", "timeout_s": 2.0,
                    "embedded_fallback": False},
        "routing": {"chains": chains or {c: ["cheap", "local"] for c in capabilities}},
        "providers": providers if providers is not None else provider_tables(urls, timeout_s),
        "models": models if models is not None else standard_models(),
    }
    path = folder / name
    path.write_text(to_toml(tables), encoding="utf-8")
    return path


def plant_keys(monkeypatch: Any, folder: Path, keys: dict[str, str] | None = None) -> Path:
    """Set the fake keys in the environment and point AI_ROUTER_DB at a fresh file
    in `folder`; returns the database path."""
    for env, value in (FAKE_KEYS if keys is None else keys).items():
        monkeypatch.setenv(env, value)
    db = folder / "ledger.db"
    monkeypatch.setenv("AI_ROUTER_DB", str(db))
    return db


def make_router(folder: Path, monkeypatch: Any, urls: dict[str, str], *,
                clock: Clock = system_clock, offline: bool = False,
                **toml: Any) -> tuple[Router, Path]:
    """A Router over the loopback setup (keys planted, fresh ledger in `folder`) and the
    ledger's path. `toml` goes to write_models_toml. Close it with `await router.aclose()`."""
    db = plant_keys(monkeypatch, folder)
    config = load_config(write_models_toml(folder, urls, **toml))
    return Router.from_config(config, offline=offline, clock=clock), db


def run_cli(*args: str, cwd: Path, env: dict[str, str] | None = None
            ) -> subprocess.CompletedProcess[str]:
    """Run the real `ai-router` console script of this venv with the current environment
    (plus `env`), in a wide terminal so rich tables are not cut."""
    script = Path(sys.executable).with_name("ai-router")
    return subprocess.run([str(script), *args], capture_output=True, text=True, timeout=180,
                          cwd=cwd, env={**os.environ, "COLUMNS": "200", **(env or {})})


def invoke_cli(*args: str, env: dict[str, str] | None = None) -> Any:
    """The CLI in-process through typer's CliRunner (much faster than a subprocess), in a
    wide terminal; the result has .exit_code, .stdout and .stderr kept apart."""
    from typer.testing import CliRunner

    import ai_router.doctor  # noqa: F401 - registers `doctor` on the app
    from ai_router.cli import app

    return CliRunner().invoke(app, list(args), env={"COLUMNS": "200", **(env or {})})


def cost_by_hand(price: dict[str, float], *, input_tokens: int, output_tokens: int,
                 cache_read: int = 0, cache_write: int = 0) -> int:
    """The expected cost in micro-USD, computed independently of ai_router.prices:
    uncached input, cache reads and writes, output (reasoning included), rounded up."""
    per = {k: Decimal(str(v)) for k, v in price.items()}
    uncached = input_tokens - cache_read - cache_write
    total = (uncached * per["input"] + cache_read * per.get("cache_read", per["input"])
             + cache_write * per.get("cache_write", per["input"]) + output_tokens * per["output"])
    return math.ceil(total)


def ledger_rows(db: Path, table: str) -> list[dict[str, Any]]:
    """Every row of `calls` or `outcomes`, read with plain sqlite3 (not through the Ledger)."""
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute(f"SELECT * FROM {table} ORDER BY rowid")]
    finally:
        conn.close()


# ---- a TOML writer for the few value types models.toml uses ------------------------------

def _value(v: Any) -> str:
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{_key(k)} = {_value(x)}" for k, x in v.items()) + " }"
    if isinstance(v, list):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    return json.dumps(v)  # strings, numbers and booleans are valid TOML as JSON writes them


def _key(k: str) -> str:
    return k if k.replace("_", "").replace("-", "").isalnum() else json.dumps(k)


def to_toml(tables: dict[str, dict[str, Any]]) -> str:
    """Top-level tables; in providers/models/routing, each entry becomes its own table.
    None values are left out (TOML has no null)."""
    lines: list[str] = []
    for name, table in tables.items():
        nested = name in ("providers", "models", "routing")
        if not nested:
            lines.append(f"[{name}]")
            lines += [f"{_key(k)} = {_value(v)}" for k, v in table.items() if v is not None]
            continue
        for key, sub in table.items():
            lines.append(f"[{name}.{_key(key)}]")
            lines += [f"{_key(k)} = {_value(v)}" for k, v in sub.items() if v is not None]
    return "\n".join(lines) + "\n"
