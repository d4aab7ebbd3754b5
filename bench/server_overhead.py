"""What `ai-router serve` adds over calling the upstream directly.

    python bench/server_overhead.py --quick      # under a minute
    python bench/server_overhead.py              # the full run, a few minutes
    python bench/server_overhead.py --profile    # also: where the router's time goes

Three processes on 127.0.0.1: bench/fast_upstream.py (answers instantly, canned body),
the real `ai-router serve` (uvicorn) whose one provider points at it (fake key, price
override, a real SQLite ledger: reserve + settle + outcome row per call; the manager at
a closed port with no embedded fallback, so decisions are the heuristic ones, see
--manager-at), and this
process, a lean raw-socket HTTP/1.1 keep-alive client (httpx or the openai SDK would
saturate a core themselves at concurrency 64). Every figure is measured on both paths,
direct (client → upstream) and routed (client → router → upstream), in alternating
rounds (A B A B …) so the shared machine's noise lands on both; the table compares each
routed figure with the direct one of the same run. The manager's own cost (the real
embedded model, fresh vs cached decisions) is measured last, on its own.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the models.toml writer of the test setup
BIN = Path(sys.executable).parent
CAPTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "openclaw"
OPENCLAW = Path(os.environ.get("OPENCLAW_SAMPLES", CAPTURES))
PATH = b"/v1/chat/completions"
CAPABILITIES = ("chat", "knowledge", "writing", "coding", "math", "reasoning", "extraction")
_CONTENT = re.compile(rb'"content":\s*"[^"]')  # a chunk carrying text (not the role chunk)
_LENGTH = re.compile(rb"\r\ncontent-length:\s*(\d+)")
AIOHTTP_HEADERS = {"content-type": "application/json", "authorization": "Bearer sk-x"}


# ---- the bodies ------------------------------------------------------------------------

def bodies() -> dict[str, dict[str, Any]]:
    small = {"model": "auto", "messages": [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "What is the capital of France? One word, please."}]}
    agent = json.loads((OPENCLAW / "agent_exec_first_request.json").read_text())["body"]
    # the sample's system prompt is trimmed; the real one (26k characters) is beside it
    agent["messages"][0]["content"] = (OPENCLAW / "agent_exec_system_prompt.txt").read_text()
    agent = {**agent, "model": "auto"}
    for body in (small, agent):
        body.pop("stream", None)
        body.pop("stream_options", None)
    return {"small": small, "agent": agent}


def encode(body: dict[str, Any], *, model: str, stream: bool) -> bytes:
    extra = {"stream": True, "stream_options": {"include_usage": True}} if stream else {}
    return json.dumps({**body, "model": model, **extra}).encode()


# ---- a minimal HTTP/1.1 keep-alive client ------------------------------------------------

class Conn:
    """One keep-alive connection; `post` returns the arrival times (seconds after sending)
    of the chunks carrying content, and of the end of the response."""

    def __init__(self, port: int):
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, body: bytes) -> tuple[list[float], float]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        reader = self.reader
        assert reader is not None
        start = time.perf_counter()
        self.writer.write(b"POST %s HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: "
                          b"application/json\r\ncontent-length: %d\r\n\r\n%s"
                          % (PATH, len(body), body))
        head = await reader.readuntil(b"\r\n\r\n")
        if head[9:12] != b"200":
            raise RuntimeError(f"HTTP {head[9:12].decode()}: {(await reader.read(500))!r}")
        length = _LENGTH.search(head.lower())
        times: list[float] = []
        if length:
            await reader.readexactly(int(length.group(1)))
            times.append(time.perf_counter() - start)
        else:  # chunked: each chunk is one or more SSE events
            while size := int((await reader.readuntil(b"\r\n")).strip(), 16):
                if _CONTENT.search(await reader.readexactly(size + 2)):
                    times.append(time.perf_counter() - start)
            await reader.readuntil(b"\r\n")
        return times, time.perf_counter() - start

    def close(self) -> None:
        if self.writer:
            self.writer.close()


async def health(port: int, n: int) -> list[float]:
    """The bare HTTP stack: GET /health through the same server and middlewares."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    out = []
    try:
        for _ in range(n):
            start = time.perf_counter()
            writer.write(b"GET /health HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n")
            head = await reader.readuntil(b"\r\n\r\n")
            length = _LENGTH.search(head.lower())
            await reader.readexactly(int(length.group(1)) if length else 0)
            out.append(time.perf_counter() - start)
    finally:
        writer.close()
    return out


async def sequential(port: int, body: bytes, n: int) -> list[float]:
    """Concurrency 1: time to the first content (the whole answer when not streamed)."""
    conn = Conn(port)
    try:
        return [(await conn.post(body))[0][0] for _ in range(n)]
    finally:
        conn.close()


async def throughput(port: int, body: bytes, concurrency: int, seconds: float) -> float:
    conns = [Conn(port) for _ in range(concurrency)]
    done = 0
    deadline = time.perf_counter() + seconds

    async def worker(conn: Conn) -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            await conn.post(body)
            done += 1

    start = time.perf_counter()
    try:
        await asyncio.gather(*(worker(c) for c in conns))
    finally:
        for c in conns:
            c.close()
    return done / (time.perf_counter() - start)


# ---- the processes -----------------------------------------------------------------------

def write_config(folder: Path, upstream_port: int, manager_at: str) -> Path:
    """One provider at the fast upstream; the manager at a closed port ("closed": probed
    as Ollama, as the tests do; "closed-v1": an OpenAI-compatible URL, never probed)."""
    from routing_setup import write_models_toml

    url = f"http://127.0.0.1:{upstream_port}/v1"
    model = {"tier": "cheap", "features": ["tools", "json"], "context_window": 200_000,
             "max_output": 8192, "price": {"input": 0.01, "output": 0.02}}
    path = write_models_toml(
        folder, {}, daily_usd=100_000.0, chains={c: ["cheap"] for c in CAPABILITIES},
        providers={"fast": {"kind": "openai-compatible", "base_url": url,
                            "key_env": "FAST_API_KEY", "timeout_s": 30}},
        models={"fast/fast-model": {**model, "quality": 5},
                "fast/paced": {**model, "quality": 1}},
        name="models.toml" if manager_at == "closed" else "models.base.toml")
    if manager_at == "closed":
        return path
    closed = f'endpoint = "http://127.0.0.1:{free_port()}/v1"'
    lines = [closed if line.startswith("endpoint = ") else line
             for line in path.read_text().splitlines()]  # only [manager] has an endpoint
    out = folder / "models.toml"
    out.write_text("\n".join(lines) + "\n")
    return out


def start(args: list[str], folder: Path, log: str, env: dict[str, str]) -> subprocess.Popen:
    out = open(folder / log, "w")  # noqa: SIM115 - a file, never a pipe that fills up
    return subprocess.Popen(args, cwd=folder, env=env, stdout=out, stderr=subprocess.STDOUT)


def wait_listening(port: int, proc: subprocess.Popen, seconds: float = 90) -> None:
    import socket

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"a benchmark process exited early ({proc.args})")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise SystemExit(f"nothing listening on {port} after {seconds:.0f}s")


def free_port() -> int:
    from upstreams.server import free_port as pick

    return pick()


# ---- the measurements --------------------------------------------------------------------

def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process and its live children (`serve --workers`) have
    used so far (Linux /proc)."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # gone meanwhile
            continue
        if stat.parent.name == str(pid) or fields[1] == str(pid):
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


async def measure(direct: int, routed: int, cfg: argparse.Namespace, db: Path,
                  router_pid: int) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    await health(routed, 50)
    bare = [t for _ in range(cfg.rounds) for t in await health(routed, cfg.n)]
    for q, label in ((0.5, "p50"), (0.99, "p99")):
        rows.append(row(f"GET /health {label} c=1 (ms), routed port only", "–", float("nan"),
                        pct(bare, q) * 1e3, 0))
    for name, body in bodies().items():
        for stream in (False, True):
            d_body = encode(body, model="fast-model", stream=stream)
            r_body = encode(body, model="auto", stream=stream)
            await sequential(direct, d_body, 5)  # warm both paths up
            await sequential(routed, r_body, 5)
            d, r, held, cpu = [], [], ledger_rows(db), 0.0
            for _ in range(cfg.rounds):  # A B A B …
                d += await sequential(direct, d_body, cfg.n)
                used = cpu_seconds(router_pid)
                r += await sequential(routed, r_body, cfg.n)
                cpu += cpu_seconds(router_pid) - used
            what = "TTFT, stream" if stream else "latency"
            for q, label in ((0.5, "p50"), (0.99, "p99")):
                rows.append(row(f"{what} {label} c=1 (ms)", name, pct(d, q) * 1e3,
                                pct(r, q) * 1e3, held))
            rows.append(row(f"router CPU ms per request at c=1{', stream' if stream else ''}",
                            name, float("nan"), cpu / len(r) * 1e3, held))
        d_body, r_body = encode(body, model="fast-model", stream=False), encode(
            body, model="auto", stream=False)
        d_rps, r_rps, held, cpu_ms = [], [], ledger_rows(db), []
        # steady state: 64 connections opened on both paths (and the router's own pool to
        # the upstream, per worker) before anything is counted
        await throughput(direct, d_body, cfg.concurrency, 1.0)
        await throughput(routed, r_body, cfg.concurrency, 1.0)
        for _ in range(cfg.tp_rounds):
            d_rps.append(await throughput(direct, d_body, cfg.concurrency, cfg.seconds))
            used = cpu_seconds(router_pid)
            r_rps.append(await throughput(routed, r_body, cfg.concurrency, cfg.seconds))
            cpu_ms.append((cpu_seconds(router_pid) - used) / (r_rps[-1] * cfg.seconds) * 1e3)
        rows.append(row(f"req/s c={cfg.concurrency} (median of {cfg.tp_rounds})", name,
                        statistics.median(d_rps), statistics.median(r_rps), held))
        rows.append(row(f"router CPU ms per request at c={cfg.concurrency}", name,
                        float("nan"), statistics.median(cpu_ms), held))
    return rows


def row(metric: str, body: str, direct: float, routed: float, held: int) -> dict[str, Any]:
    return {"metric": metric, "body": body, "direct": direct, "routed": routed, "rows": held,
            "added": routed - direct, "ratio": routed / direct}


async def buffering(direct: int, routed: int) -> dict[str, Any]:
    """A paced stream (5 chunks, 50 ms apart): through the router each chunk must arrive
    when the upstream sends it, not all together at the end."""
    from fast_upstream import PACE_S, PACED_CHUNKS

    body = bodies()["small"]
    out = {}
    for path, port, model in (("direct", direct, "paced"), ("routed", routed, "fast/paced")):
        conn = Conn(port)
        times, _ = await conn.post(encode(body, model=model, stream=True))
        conn.close()
        out[path] = [round(t * 1e3, 1) for t in times]
    gaps = [b - a for a, b in zip(out["routed"], out["routed"][1:], strict=False)]
    out["streamed"] = (len(out["routed"]) == PACED_CHUNKS
                       and min(gaps, default=0) > PACE_S * 1e3 * 0.5)
    return out


async def components(config_path: Path, upstream: int, folder: Path) -> list[tuple[str, float]]:
    """The hot path's parts, timed in this process (median of 30, ms) on a Router built
    from the same models.toml (its own ledger file) against the same upstream."""
    import uuid

    import aiohttp

    from ai_router import tokens
    from ai_router.config import load_config
    from ai_router.router import Router
    from ai_router.server.app import parse_chat_request

    os.environ["AI_ROUTER_DB"], os.environ["FAST_API_KEY"] = str(folder / "parts.db"), "sk-x"
    router = Router.from_config(load_config(config_path))
    out: list[tuple[str, float]] = []

    async def timed(label: str, call: Any, n: int = 30) -> None:
        samples = []
        for _ in range(n + 2):
            start = time.perf_counter()
            result = call()
            if asyncio.iscoroutine(result):
                await result
            samples.append(time.perf_counter() - start)
        out.append((label, statistics.median(samples[2:]) * 1e3))

    for name, body in bodies().items():
        raw = json.dumps(body).encode()
        request = parse_chat_request(raw, router)
        digest = (await router.prepare(request))[0]
        await timed(f"{name}: parse_chat_request (json.loads + validation)",
                    lambda: parse_chat_request(raw, router))  # noqa: B023
        await timed(f"{name}: tokens.count_request", lambda: tokens.count_request(request))  # noqa: B023
        await timed(f"{name}: manager.decide (as configured)",
                    lambda: router.manager.decide(digest))  # noqa: B023
        await timed(f"{name}: router.prepare (count + digest + decide + snapshot + guard)",
                    lambda: router.prepare(request))  # noqa: B023
        conn = Conn(upstream)
        direct = encode(body, model="fast-model", stream=False)
        await timed(f"{name}: raw HTTP call to the upstream (this client)",
                    lambda: conn.post(direct))  # noqa: B023
        conn.close()
        async with aiohttp.ClientSession() as session:
            async def via_aiohttp(body: bytes = direct) -> Any:
                async with session.post(f"http://127.0.0.1:{upstream}/v1{PATH[3:].decode()}",
                                        data=body, headers=AIOHTTP_HEADERS) as reply:
                    return json.loads(await reply.read())
            await timed(f"{name}: aiohttp alone (the SDK's transport, without the SDK)",
                        via_aiohttp)
        adapter = router.adapter("fast")
        await timed(f"{name}: adapter.complete (openai SDK) to the upstream",
                    lambda: adapter.complete(request, "fast-model", 1024))  # noqa: B023
        await timed(f"{name}: router.ask in-process (no HTTP server)",
                    lambda: router.ask(request, source="bench"))  # noqa: B023
    ledger = router.ledger

    def reserve_settle() -> None:
        held = ledger.reserve(10, 10**12, provider="fast", model="fast/fast-model",
                              request_id="bench")
        ledger.settle(held, 5, None)  # type: ignore[arg-type]

    await timed("ledger: reserve + settle (2 transactions)", reserve_settle)
    await timed("ledger: snapshot", lambda: ledger.snapshot(10**12))
    await timed("ledger: record_outcome", lambda: ledger.record_outcome(
        {"id": uuid.uuid4().hex, "source": "bench", "digest": {"turns": 1}}))
    await timed("asyncio.to_thread round trip (empty)", lambda: asyncio.to_thread(int))
    await router.aclose()
    return out


def ledger_growth(folder: Path) -> list[tuple[int, float, float]]:
    """The ledger's snapshot and reserve+settle (median ms) with N settled calls already
    in today's rows: the day's totals are summed over those rows on every transaction."""
    from zoneinfo import ZoneInfo

    from ai_router.clock import budget_day
    from ai_router.ledger import Ledger

    ledger = Ledger(folder / "growth.db", ZoneInfo("UTC"))
    out, rows = [], 0
    for target in (0, 1_000, 10_000, 50_000):
        now = time.time()
        day = budget_day(now, ledger.tz)
        with ledger._immediate() as conn:  # noqa: SLF001 - bulk-filling a bench ledger
            conn.executemany(
                "INSERT INTO calls (id, day, request_id, provider, model, status,"
                " reserved_micro, cost_micro, created_at, expires_at)"
                " VALUES (?, ?, 'r', 'p', 'm', 'settled', 10, 5, ?, ?)",
                [(f"fill{i}", day, now, now + 900) for i in range(rows, target)])
        rows = target
        snap, hold = [], []
        for _ in range(30):
            start = time.perf_counter()
            ledger.snapshot(10**12)
            snap.append(time.perf_counter() - start)
            start = time.perf_counter()
            held = ledger.reserve(1, 10**12, provider="p", model="m", request_id="bench")
            ledger.settle(held, 1, None)  # type: ignore[arg-type]
            hold.append(time.perf_counter() - start)
        out.append((target, statistics.median(snap) * 1e3, statistics.median(hold) * 1e3))
    ledger.close()
    return out


def ledger_rows(db: Path) -> int:
    import sqlite3

    conn = sqlite3.connect(db)
    try:
        return int(conn.execute("SELECT count(*) FROM calls").fetchone()[0])
    finally:
        conn.close()


def print_table(rows: list[dict[str, Any]]) -> str:
    lines = ["| metric | body | direct | routed | added | routed/direct | ledger rows |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        if r["direct"] != r["direct"]:  # NaN: a figure of the router alone
            lines.append(f"| {r['metric']} | {r['body']} | – | {r['routed']:.2f} | – | – "
                         f"| {r['rows']} |")
            continue
        lines.append(f"| {r['metric']} | {r['body']} | {r['direct']:.2f} | {r['routed']:.2f} "
                     f"| {r['added']:+.2f} | {r['ratio']:.2f}× | {r['rows']} |")
    return "\n".join(lines)


async def manager_cost(samples: int) -> dict[str, Any]:
    """The real embedded model. mode="model" asks it every time: its cold start, then
    `samples` distinct held-out prompts (fresh) and the same ones again (cached), and the
    agent body. Then the default "combined" mode on the same prompts, where confident
    retrieval evidence decides without a model call."""
    from ai_router.config import ManagerConfig, load_config
    from ai_router.digest import make_digest
    from ai_router.evaluate import load_items, to_digest
    from ai_router.manager import Manager
    from ai_router.schema import ChatRequest
    from ai_router.tokens import count_request

    config = load_config(ROOT / "models.toml")
    settings = ManagerConfig(endpoint=f"http://127.0.0.1:{free_port()}", embedded_fallback=True)
    items = load_items(ROOT / "data" / "heldout.jsonl")[:: max(1, 128 // samples)][:samples]
    digests = [to_digest(i, config) for i in items]
    agent = ChatRequest.model_validate(bodies()["agent"])
    agent_digest = make_digest(agent, count_request(agent).tokens,
                               config.routing.long_context_tokens)
    model = Manager(settings, mode="model")
    started = time.perf_counter()
    warm = await model.warm_up()
    out: dict[str, Any] = {"cold_start_s": round(time.perf_counter() - started, 1),
                           "cold_start_source": warm.source}
    for label, manager in (("model", model), ("combined", Manager(settings))):
        fresh = [await manager.decide(d) for d in [*digests, agent_digest]]
        cached = [await manager.decide(d) for d in [*digests, agent_digest]]
        out[label] = {"fresh_ms": summary([f.latency_s * 1e3 for f in fresh]),
                      "fresh_sources": dict(Counter(f.source for f in fresh)),
                      "agent_fresh_ms": round(fresh[-1].latency_s * 1e3, 1),
                      "cached_ms": summary([c.latency_s * 1e3 for c in cached]),
                      "cached_hits": sum(c.cached for c in cached)}
    out["samples"] = len(digests) + 1
    return out


def summary(ms: list[float]) -> dict[str, float]:
    return {"p50": round(pct(ms, 0.5), 3), "p90": round(pct(ms, 0.9), 3),
            "max": round(max(ms), 3)}


# ---- orchestration -----------------------------------------------------------------------

def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="small samples, under a minute")
    p.add_argument("--profile", metavar="FILE", nargs="?", const="/tmp/ai-router-serve.prof",
                   help="run the router under cProfile, print where its time goes and keep "
                        "the stats in FILE (default %(const)s)")
    p.add_argument("--no-manager", action="store_true",
                   help="skip the embedded-model phase (--quick always skips it: its cold "
                        "start alone takes ~30 s on a busy 2-core machine)")
    p.add_argument("--manager-at", choices=("closed", "closed-v1"), default="closed",
                   help="closed: a closed port probed as Ollama (the tests' setup); "
                        "closed-v1: a closed OpenAI-compatible URL (no probe)")
    p.add_argument("--router-path", metavar="DIR",
                   help="prepended to the router's PYTHONPATH (e.g. uvloop + httptools)")
    p.add_argument("--concurrency", type=int, default=64)
    p.add_argument("--workers", type=int, default=1, help="ai-router serve --workers N")
    args = p.parse_args(argv)
    quick = args.quick
    args.no_manager = args.no_manager or quick
    args.rounds, args.n = (3, 30) if quick else (5, 100)
    args.tp_rounds, args.seconds = (2, 2.0) if quick else (3, 5.0)
    args.manager_samples = 20
    return args


async def run(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="ai-router-bench-") as tmp:
        folder = Path(tmp)
        env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
        env.update(FAST_API_KEY="sk-bench-fake-key", AI_ROUTER_DB=str(folder / "ledger.db"),
                   HOME=str(folder), XDG_CONFIG_HOME=str(folder / "config"),
                   XDG_DATA_HOME=str(folder / "data"), XDG_CACHE_HOME=str(folder / "cache"))
        up_port, router_port = free_port(), free_port()
        upstream = start([sys.executable, str(ROOT / "bench" / "fast_upstream.py"),
                          "--port", str(up_port)], folder, "upstream.log", env)
        config = write_config(folder, up_port, args.manager_at)
        serve = ["serve", "--config", str(config), "--port", str(router_port),
                 *(["--workers", str(args.workers)] if args.workers > 1 else [])]
        profile = Path(args.profile or folder / "router.prof")
        cmd = ([sys.executable, "-m", "cProfile", "-o", str(profile), str(BIN / "ai-router"),
                *serve] if args.profile else [str(BIN / "ai-router"), *serve])
        router_env = dict(env)
        if args.router_path:
            router_env["PYTHONPATH"] = os.pathsep.join(
                [args.router_path, *filter(None, [env.get("PYTHONPATH")])])
        router = start(cmd, folder, "router.log", router_env)
        procs = [upstream, router]
        try:
            wait_listening(up_port, upstream)
            wait_listening(router_port, router)
            sys.path.insert(0, str(ROOT / "bench"))
            result: dict[str, Any] = {"load_before": os.getloadavg()}
            result["rows"] = await measure(up_port, router_port, args, folder / "ledger.db",
                                           router.pid)
            result["buffering"] = await buffering(up_port, router_port)
            result["components"] = await components(config, up_port, folder)
            result["ledger_rows"] = ledger_rows(folder / "ledger.db")
            result["growth"] = ledger_growth(folder)
            result["load_after"] = os.getloadavg()
        finally:
            for p in procs:
                p.send_signal(2)  # SIGINT: uvicorn shuts down cleanly, cProfile writes
            for p in procs:
                try:
                    p.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    p.kill()
        if args.profile:
            result["profile"] = profile_report(profile)
    if not args.no_manager:
        result["manager"] = await manager_cost(args.manager_samples)
    return result


PACKAGES = ("ai_router", "openai", "httpx2", "httpcore2", "httpx", "httpcore", "anyio", "h11",
            "uvicorn", "starlette", "fastapi", "pydantic", "sqlite_utils", "asyncio", "json",
            "ssl", "concurrent", "threading", "logging", "re", "typing", "importlib")


def profile_report(path: Path) -> str:
    """Own time (cProfile's tottime) by package, then the 20 costliest functions."""
    import io
    import pstats

    out = io.StringIO()
    stats = pstats.Stats(str(path), stream=out)
    by: dict[str, float] = {}
    for (file, _line, name), (_cc, _nc, tt, _ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        where = f"{file}:{name}"
        if "epoll" in name or "select" in name:
            key = "(idle: waiting in epoll)"
        elif file == "~":  # C functions: name them by what they are
            key = {"load_verify_locations": "ssl", "execute": "sqlite3"}.get(
                name.split("'")[1] if "'" in name else "", "(C builtins)")
        else:
            key = next((p for p in PACKAGES if f"/{p}/" in where or f"/{p}.py" in where),
                       "(other)")
        by[key] = by.get(key, 0.0) + tt
    total = sum(by.values())
    out.write("own time by package (cProfile, whole router process):\n")
    for key, tt in sorted(by.items(), key=lambda kv: -kv[1]):
        out.write(f"  {key:28s} {tt:7.2f}s  {tt / total:5.1%}\n")
    stats.sort_stats("tottime").print_stats(20)
    return out.getvalue()


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    started = time.perf_counter()
    result = asyncio.run(run(args))
    print(f"load average before/after the HTTP phases: "
          f"{'/'.join(f'{x:.1f}' for x in result['load_before'])} → "
          f"{'/'.join(f'{x:.1f}' for x in result['load_after'])} (2 cores)")
    print(f"router: ai-router serve --workers {args.workers}")
    print(f"rounds: latency {args.rounds}×{args.n} per path, throughput {args.tp_rounds}×"
          f"{args.seconds:g}s per path, alternating direct/routed\n")
    print(print_table(result["rows"]))
    print(f"\nstream buffering check (content chunk arrival, ms): {result['buffering']}")
    print("\nparts of the hot path, in-process (median ms):")
    for label, ms in result["components"]:
        print(f"  {label:66s} {ms:8.3f}")
    print(f"\ncalls rows in the served ledger at the end: {result['ledger_rows']}")
    print("ledger cost vs calls already settled today (median ms):")
    for n, snap, hold in result["growth"]:
        print(f"  {n:6d} rows: snapshot {snap:7.3f}   reserve + settle {hold:7.3f}")
    if "manager" in result:
        print("\nmanager (embedded model), ms:")
        for key, value in result["manager"].items():
            print(f"  {key}: {json.dumps(value)}")
    if "profile" in result:
        print("\n" + result["profile"])
    print(f"\ntotal {time.perf_counter() - started:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
