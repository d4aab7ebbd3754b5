"""ai-router as OpenClaw meets it: `ai-router serve` as a real subprocess whose only paid
provider is a scripted loopback upstream, and the ledger rows the calls left behind.

    toml = write_models_toml(tmp, upstream.base_url)
    with serving(toml, tmp) as server:         # waits for GET /health
        server.v1                               # "http://127.0.0.1:PORT/v1" for OpenClaw
    calls, outcomes = ledger_rows(server.db)

The manager points at a closed port with no embedded fallback, so every routing decision
is the instant, deterministic heuristic one; every chain is `cheap → local`, and the only
cheap model is the loopback one, so routing does not depend on the heuristic either.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from ai_router.schema import CAPABILITIES
from upstreams.server import free_port

PAID_MODEL = "loopback/gpt-e2e"       # provider/name in models.toml
KEY_ENV = "LOOPBACK_API_KEY"          # Keys only reads variables named *_API_KEY
FAKE_KEY = "fake-e2e-PLANTED-7c41d09b"
PRICE = {"input": 2.0, "output": 8.0}  # USD per million tokens (override: no genai-prices lookup)


def models_toml(upstream_v1: str, manager_url: str) -> str:
    chains = "\n".join(f'{cap} = ["cheap", "local"]' for cap in CAPABILITIES)
    return f"""
[budget]
daily_usd = 1.0
timezone = "UTC"

[manager]
endpoint = "{manager_url}"
timeout_s = 1.0
embedded_fallback = false

[routing]
default_output_tokens = 512

[routing.chains]
{chains}

[providers.loopback]
kind = "openai-compatible"
base_url = "{upstream_v1}"
key_env = "{KEY_ENV}"
timeout_s = 30
max_tokens_field = "max_completion_tokens"

[providers.embedded]
kind = "embedded"

[models."{PAID_MODEL}"]
tier = "cheap"
features = ["tools", "json"]
context_window = 128000
max_output = 8192
price = {{ input = {PRICE["input"]}, output = {PRICE["output"]} }}

[models."embedded/smollm2-135m-instruct"]
tier = "local"
features = ["json"]
context_window = 8192
max_output = 2048
"""


def write_models_toml(directory: Path, upstream_v1: str) -> Path:
    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens: heuristic decisions
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "models.toml"
    path.write_text(models_toml(upstream_v1, closed))
    return path


def cost_by_hand(input_tokens: int, output_tokens: int) -> int:
    """Micro-USD the ledger must settle for this usage at PRICE (USD per million tokens)."""
    usd_e6 = (Decimal(input_tokens) * Decimal(str(PRICE["input"]))
              + Decimal(output_tokens) * Decimal(str(PRICE["output"])))
    return int(usd_e6)  # (tokens × USD/M) is already micro-USD


@dataclass
class RouterServer:
    url: str  # http://127.0.0.1:PORT
    db: Path
    log: Path
    process: subprocess.Popen[bytes]

    @property
    def v1(self) -> str:
        return f"{self.url}/v1"

    def output(self) -> str:
        """What the server printed (stdout and stderr), for assertion messages and leak checks."""
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def _executable() -> str:
    beside = Path(sys.executable).parent / "ai-router"  # the venv running pytest
    return str(beside) if beside.exists() else (shutil.which("ai-router") or "ai-router")


def server_env(home: Path, db: Path) -> dict[str, str]:
    """The parent's environment minus real keys and user dirs, plus the fake key and ledger."""
    env = {k: v for k, v in os.environ.items()
           if not k.endswith("_API_KEY") and not k.startswith(("AI_ROUTER_", "XDG_"))}
    return env | {"HOME": str(home), "AI_ROUTER_DB": str(db), KEY_ENV: FAKE_KEY,
                  "NO_COLOR": "1"}


@contextmanager
def serving(config: Path, workdir: Path, *, startup_s: float = 60,
            workers: int = 1) -> Iterator[RouterServer]:
    """Run `ai-router serve [--workers N]` on a free loopback port until the block ends."""
    port = free_port()
    home, db, log = workdir / "router-home", workdir / "ledger.db", workdir / "serve.log"
    home.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as sink:
        # cwd = workdir: no ./models.toml or ./.env of the project can leak in
        process = subprocess.Popen(
            [_executable(), "serve", "--host", "127.0.0.1", "--port", str(port),
             "--config", str(config), "--workers", str(workers)],
            cwd=workdir, env=server_env(home, db), stdin=subprocess.DEVNULL,
            stdout=sink, stderr=subprocess.STDOUT)
    server = RouterServer(f"http://127.0.0.1:{port}", db, log, process)
    try:
        _wait_healthy(server, startup_s)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_healthy(server: RouterServer, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"ai-router serve exited with {server.process.returncode}:\n"
                               f"{server.output()[-3000:]}")
        try:
            if httpx.get(f"{server.url}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"ai-router serve not healthy after {timeout_s:.0f} s:\n"
                       f"{server.output()[-3000:]}")


def ledger_rows(db: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Every row of the `calls` and `outcomes` tables, oldest first (read-only)."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    try:
        calls = [dict(r) for r in conn.execute("SELECT * FROM calls ORDER BY created_at")]
        outcomes = [dict(r) for r in conn.execute("SELECT * FROM outcomes ORDER BY ts")]
    finally:
        conn.close()
    return calls, outcomes
