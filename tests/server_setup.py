"""Helpers for the server tests: loopback upstreams of every provider kind, a Config
pointing at them, and `ai-router serve`'s app run for real by uvicorn.

    with running_upstreams() as ups:             # module-scoped in the tests
        router = make_router(ups, tmp_path, models=("oai/gpt-test", "olla/llama-test"))
        with running_server(create_app(router)) as url:
            client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused")

The manager points at a closed port with no embedded fallback, so decisions are the
deterministic heuristic ones and instant.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from ai_router.config import Config
from ai_router.router import Router
from upstreams.anthropic_wire import AnthropicWire
from upstreams.gemini_wire import GeminiWire
from upstreams.ollama_wire import OllamaUpstream
from upstreams.openai_wire import OpenAIUpstream
from upstreams.server import free_port, serve

KEYS = {"OPENAI_API_KEY": "test-key-openai-SECRET-0001",
        "ANTHROPIC_API_KEY": "test-key-anthropic-SECRET-0002",
        "GEMINI_API_KEY": "test-key-gemini-SECRET-0003"}
ALL_MODELS = ("oai/gpt-test", "claude/claude-test", "gem/gemini-test", "olla/llama-test")
PRICE = {"input": 1.0, "output": 2.0}  # USD per million tokens
CAPABLE = {"features": ["tools", "vision", "json"], "context_window": 200_000,
           "max_output": 8192}


@dataclass
class Upstreams:
    openai: OpenAIUpstream
    anthropic: AnthropicWire
    gemini: GeminiWire
    ollama: OllamaUpstream
    urls: dict[str, str]

    def reset(self) -> None:
        for u in (self.openai, self.anthropic, self.gemini, self.ollama):
            u.reset()


@contextmanager
def running_upstreams() -> Iterator[Upstreams]:
    ups = Upstreams(OpenAIUpstream(), AnthropicWire(), GeminiWire(), OllamaUpstream(), {})
    with ExitStack() as stack:
        ups.urls["oai"] = stack.enter_context(ups.openai.running())
        ups.urls["claude"] = stack.enter_context(serve(ups.anthropic.app))
        ups.urls["gem"] = stack.enter_context(serve(ups.gemini.app))
        ups.urls["olla"] = stack.enter_context(ups.ollama.running())
        yield ups


def make_config(ups: Upstreams, *, models: tuple[str, ...] = ALL_MODELS,
                daily_usd: float = 5.0) -> Config:
    providers = {
        "oai": {"kind": "openai-compatible", "base_url": ups.urls["oai"],
                "key_env": "OPENAI_API_KEY", "timeout_s": 10},
        "claude": {"kind": "anthropic", "base_url": ups.urls["claude"],
                   "key_env": "ANTHROPIC_API_KEY", "timeout_s": 10},
        "gem": {"kind": "google", "base_url": ups.urls["gem"], "key_env": "GEMINI_API_KEY",
                "timeout_s": 10},
        "olla": {"kind": "ollama", "base_url": ups.urls["olla"], "timeout_s": 10}}
    table: dict[str, dict[str, Any]] = {
        "oai/gpt-test": {"tier": "cheap", "price": PRICE, "quality": 4, **CAPABLE},
        "claude/claude-test": {"tier": "strong", "price": PRICE, "quality": 5, **CAPABLE},
        "gem/gemini-test": {"tier": "cheap", "price": PRICE, "quality": 3, **CAPABLE},
        "olla/llama-test": {"tier": "local", "features": ["tools"],
                            "context_window": 200_000, "max_output": 4096}}
    tiers = ["strong", "cheap", "local"]
    return Config.model_validate({
        "providers": providers, "models": {m: table[m] for m in models},
        "routing": {"chains": {c: tiers for c in ("chat", "knowledge", "writing", "coding",
                                                  "math", "reasoning", "extraction")}},
        "budget": {"daily_usd": daily_usd, "timezone": "UTC", "pace_margin": None},
        "manager": {"endpoint": f"http://127.0.0.1:{free_port()}", "timeout_s": 1.0,
                    "embedded_fallback": False}})


def make_router(ups: Upstreams, db: Path, monkeypatch, **config_kw: Any) -> Router:
    for name, value in KEYS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AI_ROUTER_DB", str(db))
    return Router.from_config(make_config(ups, **config_kw))


@contextmanager
def running_server(app: Any, host: str = "127.0.0.1") -> Iterator[str]:
    """Serve the app like `ai-router serve` does (lifespan on) on a free port."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning",
                                           lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("ai-router server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def rows(db: Path, sql: str, *params: Any) -> list[dict[str, Any]]:
    """Read the ledger file directly, as another process would."""
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute(sql, params)]
    finally:
        conn.close()


def wait_for(predicate, timeout: float = 5.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.02)


# ---- fixtures: test modules import the *_fixture names; tests ask for ups, start_server, served

@dataclass
class Served:
    url: str
    db: Path
    router: Router
    ups: Upstreams

    def client(self, api_key: str = "unused", **kw: Any):
        import openai
        return openai.OpenAI(base_url=f"{self.url}/v1", api_key=api_key, max_retries=0,
                             timeout=20, **kw)

    def outcome(self, request_id: str) -> dict[str, Any]:
        found = wait_for(lambda: rows(self.db, "SELECT * FROM outcomes WHERE id=?", request_id))
        assert found, f"no outcome row for request {request_id}"
        return found[0]

    def calls(self, request_id: str) -> list[dict[str, Any]]:
        return rows(self.db, "SELECT * FROM calls WHERE request_id=?", request_id)


@pytest.fixture(scope="module", name="ups")
def ups_fixture() -> Iterator[Upstreams]:
    with running_upstreams() as shared:
        yield shared


@pytest.fixture(name="start_server")
def start_server_fixture(ups, tmp_path, monkeypatch):
    """start_server(models=..., daily_usd=..., api_key=..., max_body_bytes=...) → Served."""
    from ai_router.server.app import create_app

    ups.reset()
    stack = ExitStack()

    def start(*, api_key: str | None = None, max_body_bytes: int | None = None,
              **config_kw: Any) -> Served:
        router = make_router(ups, tmp_path / "ledger.db", monkeypatch, **config_kw)
        app_kw: dict[str, Any] = {"api_key": api_key}
        if max_body_bytes is not None:
            app_kw["max_body_bytes"] = max_body_bytes
        url = stack.enter_context(running_server(create_app(router, **app_kw)))
        return Served(url, tmp_path / "ledger.db", router, ups)

    with stack:
        yield start


@pytest.fixture(name="served")
def served_fixture(start_server) -> Served:
    return start_server()
