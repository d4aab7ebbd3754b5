"""`ai-router serve --workers N`: several processes on one port and one ledger.

The real console script starts; uvicorn spawns the workers, each with its own Router on
the shared SQLite file. Requests over many connections are all answered and each is
recorded once; a killed worker is replaced; Ctrl-C stops every process. (Sticky routing
across processes: test_router_sticky.py; cross-process locking: test_ledger_concurrency.py.)"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from routing_setup import FAKE_KEYS, ledger_rows, write_models_toml
from upstreams import openai_wire as oa
from upstreams.server import free_port

ASK = {"model": "cheap", "max_tokens": 50, "messages": [{"role": "user", "content": "hi"}]}


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            if ppid == pid and b"spawn_main" in cmdline:
                found.append(int(entry.name))
    return found


def test_two_workers_share_the_port_and_the_ledger_and_are_replaced_and_stopped(up, tmp_path):
    up.reset()
    up.deepseek.handler = oa.json_reply(oa.completion_body("ok", usage=oa.usage_body(9, 4)))
    config = write_models_toml(tmp_path, up.urls)
    db, port = tmp_path / "ledger.db", free_port()
    exe = Path(sys.executable).with_name("ai-router")
    proc = subprocess.Popen(
        [str(exe), "serve", "--workers", "2", "--port", str(port), "--config", str(config)],
        env={**os.environ, **FAKE_KEYS, "AI_ROUTER_DB": str(db)}, cwd=tmp_path,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while len(children(proc.pid)) < 2 or not _healthy(url):
            assert proc.poll() is None and time.monotonic() < deadline, "serve did not start"
            time.sleep(0.2)
        workers = children(proc.pid)
        assert len(workers) == 2

        def ask(_: int) -> tuple[int, str]:
            with httpx.Client(timeout=30) as client:  # a connection of its own
                r = client.post(f"{url}/v1/chat/completions", json=ASK)
                return r.status_code, r.headers.get("x-ai-router-request-id", "")
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(ask, range(40)))
        assert {status for status, _ in answers} == {200}
        ids = {rid for _, rid in answers}
        assert len(ids) == 40
        calls = ledger_rows(db, "calls")
        assert sorted(c["request_id"] for c in calls) == sorted(ids)
        assert {c["status"] for c in calls} == {"settled"}
        assert sorted(o["id"] for o in ledger_rows(db, "outcomes")) == sorted(ids)

        os.kill(workers[0], signal.SIGKILL)  # a worker dies: the supervisor starts another
        deadline = time.monotonic() + 60
        while len(children(proc.pid)) < 2 or workers[0] in children(proc.pid):
            assert time.monotonic() < deadline, "no worker replaced the killed one"
            time.sleep(0.2)
        workers = children(proc.pid)
        assert {status for status, _ in map(ask, range(5))} == {200}
    finally:
        proc.send_signal(signal.SIGINT)
        output = proc.communicate(timeout=60)[0]
    assert proc.returncode == 0, output
    assert "2 workers" in output and "Traceback" not in output
    assert not [pid for pid in workers if Path(f"/proc/{pid}").exists()]


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=2).status_code == 200
    except httpx.TransportError:
        return False
