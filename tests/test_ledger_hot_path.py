"""The ledger's cheaper per-request operations: the guard's read-only peek, the outcome
row written in the settle transaction, and checkpoints taken off the request path."""

from __future__ import annotations

import shutil
import sqlite3
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from ai_router.errors import LedgerError
from ai_router.ledger import Ledger
from ai_router.schema import Usage
from server_setup import ups_fixture  # noqa: F401 - fixture

UTC = ZoneInfo("UTC")


class Clock:
    def __init__(self) -> None:
        self.t = datetime(2026, 11, 26, 12, tzinfo=UTC).timestamp()

    def __call__(self) -> float:
        return self.t


def test_peek_leaves_the_same_money_as_snapshot_also_past_a_holds_ttl(tmp_path):
    clock = Clock()
    ledger = Ledger(tmp_path / "l.db", UTC, ttl_s=60, clock=clock)
    settled = ledger.reserve(300, 1000, provider="p", model="p/m", request_id="a")
    ledger.settle(settled, 120, Usage(input_tokens=1))
    ledger.reserve(200, 1000, provider="p", model="p/m", request_id="b")  # never settled
    peek = ledger.peek(1000)
    assert (peek.spent_micro, peek.reserved_micro, peek.remaining_micro) == (120, 200, 680)
    clock.t += 120  # the hold is past its TTL: a crashed caller's, now counted as spent
    peek, snap = ledger.peek(1000), ledger.snapshot(1000)
    assert (snap.spent_micro, snap.reserved_micro) == (320, 0)
    assert (peek.spent_micro, peek.reserved_micro) == (120, 200)  # not marked yet...
    assert peek.remaining_micro == snap.remaining_micro == 680  # ...the same money left
    assert (peek.day, peek.elapsed_share) == (snap.day, snap.elapsed_share)


def test_settle_writes_the_outcome_row_in_the_same_transaction(tmp_path):
    ledger = Ledger(tmp_path / "l.db", UTC)
    held = ledger.reserve(300, 1000, provider="p", model="p/m", request_id="r1")
    after = ledger.settle(held, 100, None, limit_micro=1000,
                          outcome={"id": "r1", "status": "ok", "digest": {"turns": 1}})
    assert after.remaining_micro == 900
    assert ledger.outcome_changes == (0, 1)  # the learner sees the new row
    row = ledger.db.conn.execute("SELECT status, digest FROM outcomes WHERE id='r1'").fetchone()
    assert row == ("ok", '{"turns":1}')
    # a row that cannot be written takes the settlement with it: the hold stays, and
    # expires at its full amount (the conservative side), rather than money without a row
    again = ledger.reserve(300, 1000, provider="p", model="p/m", request_id="r1")
    with pytest.raises(LedgerError):
        ledger.settle(again, 100, None, outcome={"id": "r1", "status": "ok"})  # same id
    status = ledger.db.conn.execute("SELECT status FROM calls WHERE id=?", (again.id,))
    assert status.fetchone() == ("reserved",)
    assert ledger.outcome_changes == (0, 1)


def rows_in_file_alone(path, copy) -> int:
    """Calls rows in the database file without its WAL (what a checkpoint has copied)."""
    shutil.copy(path, copy)
    conn = sqlite3.connect(copy)
    try:
        return conn.execute("SELECT count(*) FROM calls").fetchone()[0]
    finally:
        conn.close()


def test_deferred_checkpoints_happen_when_asked_and_lose_nothing(tmp_path):
    path = tmp_path / "l.db"
    ledger = Ledger(path, UTC)
    ledger.checkpoint()  # the tables, in the file
    ledger.defer_checkpoints()
    for i in range(1500):  # well past SQLite's 1000-page automatic checkpoint
        held = ledger.reserve(1, 10**9, provider="p", model="p/m", request_id=str(i))
        ledger.settle(held, 1, None, outcome={"id": str(i), "status": "ok"})
    assert rows_in_file_alone(path, tmp_path / "a.db") == 0  # all still in the WAL
    reader = Ledger(path, UTC)  # another process sees every call meanwhile
    assert reader.snapshot(10**9).spent_micro == 1500
    ledger.checkpoint()
    assert rows_in_file_alone(path, tmp_path / "b.db") == 1500
    reader.close()
    ledger.close()


def test_the_server_checkpoints_its_ledger_in_the_background(ups, tmp_path, monkeypatch):
    import httpx

    from ai_router.server import app as server_app
    from server_setup import make_router, running_server, wait_for
    from upstreams.openai_wire import completion_body, json_reply

    monkeypatch.setattr(server_app, "CHECKPOINT_S", 0.05)
    ups.reset()
    ups.openai.handler = json_reply(completion_body("hi"))
    path = tmp_path / "ledger.db"
    router = make_router(ups, path, monkeypatch, models=("oai/gpt-test",))
    router.ledger.checkpoint()  # the tables, in the file
    with running_server(server_app.create_app(router, warm_up=False)) as url:
        reply = httpx.post(f"{url}/v1/chat/completions", timeout=20, json={
            "model": "oai/gpt-test", "messages": [{"role": "user", "content": "hello"}]})
        assert reply.status_code == 200
        # one call is a few pages: only a checkpoint, not SQLite's own at 1000, copies it
        assert wait_for(lambda: rows_in_file_alone(path, tmp_path / "copy.db") == 1)


async def test_a_write_lock_another_process_holds_briefly_is_waited_for_on_the_event_loop(
        tmp_path, monkeypatch):
    import asyncio

    path = tmp_path / "l.db"
    ledger = Ledger(path, UTC)
    other = sqlite3.connect(path, isolation_level=None)  # another process's connection
    threads = []

    async def to_thread(*args, **kwargs):
        threads.append(args[0].__name__)
        return await real_to_thread(*args, **kwargs)
    real_to_thread = asyncio.to_thread
    monkeypatch.setattr(asyncio, "to_thread", to_thread)

    other.execute("BEGIN IMMEDIATE")
    asyncio.get_running_loop().call_later(0.0003, other.execute, "COMMIT")
    held = await ledger.run(ledger.reserve, 10, 1000, provider="p", model="p/m",
                            request_id="a")
    assert held is not None and threads == []  # a pause on the loop, then done there

    # held for longer: the call goes to a thread, which waits for the lock meanwhile
    other.execute("BEGIN IMMEDIATE")
    asyncio.get_running_loop().call_later(0.05, other.execute, "COMMIT")
    after = await ledger.run(ledger.settle, held, 7, None, limit_micro=1000)
    assert threads == ["settle"] and after.spent_micro == 7
    other.close()
    ledger.close()


@pytest.mark.parametrize("reset_bytes", [256 * 1024, None])
def test_the_wal_is_emptied_under_continuous_writes(tmp_path, monkeypatch, reset_bytes):
    """A PASSIVE checkpoint copies the WAL but SQLite starts it over only when a writer
    finds it wholly copied, which never happens while commits keep coming."""
    import threading
    import time

    from ai_router import ledger as ledger_module

    limit = 256 * 1024
    monkeypatch.setattr(ledger_module, "WAL_RESET_BYTES", reset_bytes or 10**12)
    path = tmp_path / "l.db"
    ledger = Ledger(path, UTC)
    ledger.defer_checkpoints()
    wal = tmp_path / "l.db-wal"
    stop = threading.Event()

    def write() -> None:
        i = 0
        while not stop.is_set():
            held = ledger.reserve(1, 10**12, provider="p", model="p/m", request_id=str(i))
            ledger.settle(held, 1, None)
            i += 1
    writer = threading.Thread(target=write)
    writer.start()
    sizes = []
    try:
        deadline = time.monotonic() + 0.6
        while time.monotonic() < deadline:
            time.sleep(0.03)
            ledger.checkpoint()
            sizes.append(wal.stat().st_size)
    finally:
        stop.set()
        writer.join()
    calls = ledger.db.conn.execute("SELECT count(*) FROM calls").fetchone()[0]
    ledger.close()
    assert calls > 200  # the writer kept writing meanwhile
    if reset_bytes:
        assert max(sizes[len(sizes) // 2:]) < 4 * limit, sizes
    else:  # without the reset the WAL only grows: the test can tell the two apart
        assert sizes[-1] > 4 * limit and sizes == sorted(sizes), sizes


async def test_a_read_the_loops_connection_cannot_start_at_once_is_tried_again(
        tmp_path, monkeypatch):
    ledger = Ledger(tmp_path / "l.db", UTC)
    real_totals, failures = Ledger._totals, [1]

    def busy_once(conn, day):
        if failures:
            failures.pop()
            error = sqlite3.OperationalError("database is locked")
            error.sqlite_errorcode = sqlite3.SQLITE_BUSY
            raise error
        return real_totals(conn, day)
    monkeypatch.setattr(Ledger, "_totals", staticmethod(busy_once))
    peek = await ledger.run(ledger.peek, 1000)
    assert peek.remaining_micro == 1000 and failures == []
    ledger.close()
