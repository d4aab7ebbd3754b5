"""Nothing is lost on a crash, and a ledger that cannot be written is a clear error:
`ai-router serve` killed mid-flight leaves reservations that expire at their full hold
after the TTL (counted once, never lost, never doubled); a full disk or a broken ledger
file is a 503 from the server and one line from the CLI, never silent loss."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from starlette.responses import StreamingResponse

import ai_router.ledger as ledger_module
from routing_setup import (
    FAKE_KEYS,
    PLANTED,
    invoke_cli,
    ledger_rows,
    make_router,
    plant_keys,
    run_cli,
    write_models_toml,
)
from upstreams import openai_wire as oa
from upstreams.server import free_port

TTL_S = 4
ASK = {"model": "cheap", "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}]}


def hanging(received: oa.Received):
    """A provider that takes the call and never finishes it (a stream sends one chunk)."""
    async def body():
        yield f"data: {json.dumps(oa.chunk_body({'role': 'assistant', 'content': 'par'}))}\n\n"
        await asyncio.sleep(60)
    if received.streaming:
        return StreamingResponse(body(), media_type="text/event-stream")
    return oa.slow_reply(60)(received)


def serve(config: Path, db: Path, cwd: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, **FAKE_KEYS, "AI_ROUTER_DB": str(db)}
    exe = Path(sys.executable).with_name("ai-router")
    proc = subprocess.Popen([str(exe), "serve", "--port", str(port), "--config", str(config)],
                            env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            httpx.get(f"{url}/health", timeout=2)
            return proc, url
        except httpx.TransportError:
            assert proc.poll() is None and time.monotonic() < deadline, "serve did not start"
            time.sleep(0.1)


def fire(url: str, body: dict) -> str:
    """One request that is expected to die with the server."""
    try:
        with httpx.stream("POST", f"{url}/v1/chat/completions", json=body, timeout=90) as r:
            for _ in r.iter_bytes():
                pass
        return f"finished {r.status_code}"
    except httpx.HTTPError as e:
        return type(e).__name__


def wait_until(predicate, timeout: float = 30):
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)
    return value


def test_a_killed_server_loses_no_call_and_its_open_holds_expire_at_full_cost_after_the_ttl(
        up, tmp_path):
    up.reset()
    up.deepseek.handler = hanging
    config = write_models_toml(tmp_path, up.urls, budget={"reservation_ttl_s": TTL_S})
    db = tmp_path / "ledger.db"
    proc, url = serve(config, db, tmp_path)
    bodies = [ASK, ASK, ASK, {**ASK, "stream": True}, {**ASK, "stream": True}]
    with ThreadPoolExecutor(len(bodies)) as pool:
        clients = [pool.submit(fire, url, b) for b in bodies]
        wait_until(lambda: len(up.deepseek.requests) == len(bodies))
        held = wait_until(lambda: [r for r in ledger_rows(db, "calls")
                                   if r["status"] == "reserved"] if len(ledger_rows(
                                       db, "calls")) == len(bodies) else None)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        assert all(c.result(timeout=30) != "finished 200" for c in clients)

    assert len(held) == len(bodies) and all(r["reserved_micro"] > 0 for r in held)
    assert [r["status"] for r in ledger_rows(db, "calls")] == ["reserved"] * len(bodies)
    up.deepseek.handler = oa.json_reply(oa.completion_body("back", usage=oa.usage_body(9, 4)))
    proc, url = serve(config, db, tmp_path)
    try:
        time.sleep(max(0.0, max(r["expires_at"] for r in held) - time.time()) + 0.2)
        budget = httpx.get(f"{url}/v1/budget").json()
        after = {r["id"]: r for r in ledger_rows(db, "calls")}
        assert set(after) == {r["id"] for r in held}  # none lost, none added
        assert all(r["status"] == "expired" and r["cost_micro"] == r["reserved_micro"]
                   for r in after.values())
        orphaned = sum(r["reserved_micro"] for r in held)
        assert round(budget["spent_usd"] * 1e6) == orphaned and budget["reserved_usd"] == 0

        served = httpx.post(f"{url}/v1/chat/completions", json=ASK, timeout=30)
        assert served.status_code == 200 and served.json()["choices"][0]["message"][
            "content"] == "back"
        rows = ledger_rows(db, "calls")
        assert len(rows) == len(bodies) + 1 and rows[-1]["status"] == "settled"
        budget = httpx.get(f"{url}/v1/budget").json()
        assert round(budget["spent_usd"] * 1e6) == orphaned + rows[-1]["cost_micro"]
    finally:
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=20)
    assert "Traceback" not in output and PLANTED not in output


# ---- a ledger that cannot be written ------------------------------------------------------

def cap_disk(monkeypatch) -> None:
    """Every ledger opened from now on may not grow past its size after migrations: a full
    disk as SQLite reports it (SQLITE_FULL), which works as root, unlike chmod. The cap is
    per connection, so each connection the ledger opens afterwards gets it too."""
    original_open, original_connect = ledger_module.open_database, ledger_module._connect
    pages: dict[Path, int] = {}

    def full(path: Path):
        db = original_open(path)
        pages[path] = db.conn.execute("PRAGMA page_count").fetchone()[0]
        db.conn.execute(f"PRAGMA max_page_count={pages[path]}")
        return db

    def connect(path: Path, **options):
        conn = original_connect(path, **options)
        if path in pages:
            conn.execute(f"PRAGMA max_page_count={pages[path]}")
        return conn
    monkeypatch.setattr(ledger_module, "open_database", full)
    monkeypatch.setattr(ledger_module, "_connect", connect)


async def test_a_full_disk_is_a_503_from_the_server_and_no_answer_goes_unrecorded(
        up, tmp_path, monkeypatch):
    from ai_router.server.app import create_app
    from server_setup import running_server

    up.reset()
    up.deepseek.handler = oa.json_reply(oa.completion_body("ok", usage=oa.usage_body(9, 4)))
    cap_disk(monkeypatch)
    router, db = make_router(tmp_path, monkeypatch, up.urls)
    statuses = []
    with running_server(create_app(router, warm_up=False)) as url:
        for _ in range(60):
            r = await asyncio.to_thread(httpx.post, f"{url}/v1/chat/completions", json=ASK,
                                        timeout=30)
            statuses.append(r.status_code)
            if r.status_code != 200:
                break
    assert statuses[-1] == 503, statuses
    error = r.json()["error"]
    assert error["code"] == "ledger_unavailable" and "disk is full" in error["message"]
    assert "Traceback" not in r.text and r.headers["retry-after"]
    answered = statuses.count(200)
    rows = ledger_rows(db, "calls")
    settled = [row for row in rows if row["status"] == "settled"]
    assert answered >= 1 and len(settled) >= answered  # every answer given is paid for
    # a call whose settle failed is still held: it expires at its full cost, never free
    assert all(row["status"] in ("settled", "reserved") for row in rows)
    assert len(rows) <= len(up.deepseek.requests) + 1


def test_a_full_disk_is_one_clear_line_from_the_cli(up, tmp_path, monkeypatch):
    up.reset()
    up.deepseek.handler = oa.json_reply(oa.completion_body("ok", usage=oa.usage_body(9, 4)))
    monkeypatch.setenv("AI_ROUTER_CONFIG", str(write_models_toml(tmp_path, up.urls)))
    plant_keys(monkeypatch, tmp_path)
    cap_disk(monkeypatch)
    for _ in range(40):
        done = invoke_cli("ask", "--model", "cheap", "hi")
        if done.exit_code != 0:
            break
    assert done.exit_code == 1
    assert done.exception is None or isinstance(done.exception, SystemExit)  # no crash
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("error: budget ledger") and "disk is full" in line
    assert "Traceback" not in done.stdout + done.stderr


@pytest.mark.parametrize("where", ["corrupt file", "uncreatable folder"])
def test_a_ledger_that_cannot_be_opened_stops_ask_and_serve_with_one_line(up, tmp_path, where):
    if where == "corrupt file":
        db = tmp_path / "ledger.db"
        db.write_bytes(b"this is not a SQLite database" * 200)
    else:
        db = Path("/proc/ai-router-test/ledger.db")  # not even root can create it
    config = write_models_toml(tmp_path, up.urls)
    env = {"AI_ROUTER_DB": str(db), **FAKE_KEYS}
    for args in (("ask", "hi"), ("serve", "--port", str(free_port()))):
        done = run_cli(*args, "--config", str(config), cwd=tmp_path, env=env)
        assert done.returncode == 1, done.stdout + done.stderr
        [line] = done.stderr.strip().splitlines()[-1:]
        assert line.startswith("error: cannot open the budget ledger at")
        assert "Traceback" not in done.stderr


def test_a_read_only_ledger_is_one_clear_line_and_no_paid_call(up, tmp_path, monkeypatch):
    """Root ignores permission bits, so the file is made immutable (chattr +i)."""
    up.reset()
    up.deepseek.handler = oa.json_reply(oa.completion_body("ok", usage=oa.usage_body(9, 4)))
    config = write_models_toml(tmp_path, up.urls)
    db = plant_keys(monkeypatch, tmp_path)
    ledger_module.Ledger(db, ZoneInfo("UTC")).close()  # schema, WAL checkpointed
    for leftover in (tmp_path / "ledger.db-wal", tmp_path / "ledger.db-shm"):
        leftover.unlink(missing_ok=True)
    if subprocess.run(["chattr", "+i", str(db)], capture_output=True).returncode != 0:
        pytest.skip("chattr +i is not permitted on this file system")
    try:
        done = run_cli("ask", "--model", "cheap", "hi", "--config", str(config), cwd=tmp_path)
    finally:
        subprocess.run(["chattr", "-i", str(db)], check=True)
    assert done.returncode == 1
    [line] = done.stderr.strip().splitlines()[-1:]
    assert line.startswith("error: cannot open the budget ledger") and "permissions" in line
    assert "Traceback" not in done.stderr
    assert up.calls()["deepseek"] == 0  # nothing is spent that the ledger cannot record
