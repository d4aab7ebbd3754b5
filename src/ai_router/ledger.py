"""The budget ledger: one SQLite file (WAL) shared by every ai-router process.

Money is integer micro-USD. A call first reserves its worst-case cost inside a
`BEGIN IMMEDIATE` transaction that refuses when spent + reserved + amount would
pass the day's limit; afterwards it settles with the actual cost. Reservations
orphaned by a crash expire after a TTL and are settled at their full amount.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ParamSpec, TypeVar, overload
from zoneinfo import ZoneInfo

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from . import fastjson
from .clock import Clock, budget_day, day_elapsed_share, system_clock
from .errors import LedgerError
from .schema import Usage

migrations = Migrations("ai-router")
BUSY_TIMEOUT_MS = 30_000  # how long a write waits while another process holds the lock
# Ledger.run's pauses on the event loop while another process holds the write lock (a
# transaction takes ~0.05 ms) before handing the call to a thread, where SQLite's own
# busy handler would sleep in steps of 1 ms and more
BUSY_PAUSES_S = (0.0, 0.0002, 0.0005, 0.001)
EXPIRE_EVERY_S = 1.0  # how often a reservation looks for holds past their TTL
WAL_RESET_BYTES = 16 * 2**20  # a WAL past this is emptied at the next checkpoint
P = ParamSpec("P")
T = TypeVar("T")


@migrations()
def m001_calls_and_outcomes(db: Database) -> None:
    db["calls"].create({
        "id": str, "day": str, "request_id": str, "provider": str, "model": str,
        "status": str,  # reserved | settled | released | expired
        "reserved_micro": int, "cost_micro": int,
        "created_at": float, "expires_at": float, "settled_at": float,
        "input_tokens": int, "cache_read_tokens": int, "cache_write_tokens": int,
        "output_tokens": int, "reasoning_tokens": int, "usage_estimated": int,
    }, pk="id", not_null={"day", "status", "reserved_micro", "created_at", "expires_at"})
    db["calls"].create_index(["day", "status"])
    db["calls"].create_index(["status", "expires_at"])
    db["outcomes"].create({
        "id": str, "ts": float, "day": str, "source": str, "prompt": str,
        "digest": str, "decision": str, "decision_source": str, "manager_ms": float,
        "overrides": str, "capability": str, "tier": str, "provider": str, "model": str,
        "input_tokens": int, "output_tokens": int, "cost_micro": int, "latency_ms": float,
        "attempts": int, "status": str, "error": str, "feedback": str,
    }, pk="id")
    db["outcomes"].create_index(["day"])


@migrations()
def m002_outcome_manager_tokens(db: Database) -> None:
    # the local manager model's own tokens per request (prompt + reply; 0 when not asked)
    db["outcomes"].add_column("manager_tokens", int)


# What one calls row adds to its day's totals: spent once settled or expired, held while
# reserved (the sums `Ledger._totals` used to compute over all of the day's rows).
_SPENT = "CASE WHEN {r}.status IN ('settled','expired') THEN coalesce({r}.cost_micro, 0) ELSE 0 END"
_HELD = "CASE WHEN {r}.status='reserved' THEN {r}.reserved_micro ELSE 0 END"
_ADD = ("INSERT INTO day_totals (day, spent_micro, reserved_micro) VALUES ({r}.day, {sign}"
        + _SPENT + ", {sign}" + _HELD + ") ON CONFLICT(day) DO UPDATE SET"
        " spent_micro = spent_micro + excluded.spent_micro,"
        " reserved_micro = reserved_micro + excluded.reserved_micro;")


@migrations()
def m003_day_totals(db: Database) -> None:
    """Running totals per day, so a reservation reads one row instead of summing the day's
    calls (10 ms per transaction at 50k calls). Triggers keep them in the same transaction
    as every change to `calls`, whoever writes it; existing rows are back-filled."""
    conn = db.conn
    conn.execute("CREATE TABLE day_totals (day TEXT PRIMARY KEY,"
                 " spent_micro INTEGER NOT NULL, reserved_micro INTEGER NOT NULL)")
    conn.execute("INSERT INTO day_totals SELECT day, sum(" + _SPENT.format(r="calls") + "),"
                 " sum(" + _HELD.format(r="calls") + ") FROM calls GROUP BY day")
    new, old = _ADD.format(r="NEW", sign=""), _ADD.format(r="OLD", sign="-")
    conn.execute(f"CREATE TRIGGER calls_insert_totals AFTER INSERT ON calls BEGIN {new} END")
    conn.execute(f"CREATE TRIGGER calls_update_totals AFTER UPDATE ON calls BEGIN {old} {new}"
                 " END")
    conn.execute(f"CREATE TRIGGER calls_delete_totals AFTER DELETE ON calls BEGIN {old} END")


@migrations()
def m004_outcome_indexes(db: Database) -> None:
    """What the learner reads every few seconds (recent answers; every outcome of the
    rated prompts), found by index instead of a scan of the whole log."""
    conn = db.conn
    conn.execute("CREATE INDEX outcomes_ts ON outcomes (ts)")
    conn.execute("CREATE INDEX outcomes_prompt ON outcomes (prompt)")
    conn.execute("CREATE INDEX outcomes_rated ON outcomes (prompt, ts) WHERE feedback IS NOT NULL")


@migrations()
def m005_outcome_conversation(db: Database) -> None:
    """Which conversation each request belongs to (a hash), so any process finds the model
    that answered it: sticky routing shared by server workers and kept over restarts."""
    db["outcomes"].add_column("conversation", str)
    db.conn.execute("CREATE INDEX outcomes_conversation ON outcomes (conversation, ts)")


@dataclass(frozen=True)
class Snapshot:
    """Today's money, as the guard sees it."""

    day: str
    limit_micro: int
    spent_micro: int
    reserved_micro: int
    elapsed_share: float  # of the local day, 0–1

    @property
    def remaining_micro(self) -> int:
        return max(0, self.limit_micro - self.spent_micro - self.reserved_micro)


@dataclass(frozen=True)
class Reservation:
    id: str
    day: str
    amount_micro: int
    remaining_micro: int = 0  # what the day's limit still allowed once this was held


class _Busy(Exception):
    """The write lock is taken (another process, or another thread of this one)."""


def usd(micro: int) -> float:
    return micro / 1_000_000


def to_micro(dollars: float) -> int:
    return round(dollars * 1_000_000)


class Ledger:
    """Thread-safe within a process (one connection, one lock); process-safe through SQLite."""

    def __init__(self, path: Path | str, tz: ZoneInfo, *, ttl_s: float = 900,
                 clock: Clock = system_clock):
        self.path, self.tz, self.ttl_s, self.clock = Path(path), tz, ttl_s, clock
        self._lock = threading.Lock()  # self.db's connection: threads and synchronous callers
        self._loop_lock = threading.Lock()  # the event loop's own connection (Ledger.run)
        self._local = threading.local()  # .nowait: this thread must not wait for the lock
        self._next_expiry = float("-inf")
        # (feedback given, outcomes written) by this process: the learner reloads when they move
        self._rated = self._written = 0
        self._checkpointer: sqlite3.Connection | None = None
        self._checkpoint_lock = threading.Lock()  # close() waits for a running checkpoint
        self._closed = False
        self.db = open_database(self.path)
        # busy_timeout 0: a write it cannot begin at once raises _Busy instead of waiting
        self._loop_conn = _connect(self.path, busy_timeout_ms=0)

    async def run(self, method: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Call one of this ledger's methods from the event loop: right there when the
        write lock is free (a transaction takes ~0.05 ms, a thread hop more), after a short
        pause when another process holds it, else in a worker thread, so waiting for
        another process's write never blocks the loop."""
        for pause in BUSY_PAUSES_S:
            if pause:
                await asyncio.sleep(pause)
            self._local.nowait = True
            try:
                return method(*args, **kwargs)
            except _Busy:
                pass  # nothing was done: the transaction could not begin
            finally:
                self._local.nowait = False
        return await asyncio.to_thread(method, *args, **kwargs)

    # -- the day's money ----------------------------------------------------------------

    def reserve(self, amount_micro: int, limit_micro: int, *, provider: str, model: str,
                request_id: str) -> Reservation | None:
        """Hold `amount_micro` for one call, or return None if it would pass the limit."""
        if amount_micro < 0:
            raise ValueError("a reservation cannot be negative")
        now = self.clock()
        day = budget_day(now, self.tz)
        with self._immediate() as conn:
            if now >= self._next_expiry:  # the sum is the same either way (see peek)
                self._expire(conn, now)
                self._next_expiry = now + EXPIRE_EVERY_S
            spent, reserved = self._totals(conn, day)
            if spent + reserved + amount_micro > limit_micro and amount_micro > 0:
                return None
            rid = uuid.uuid4().hex
            conn.execute(
                "INSERT INTO calls (id, day, request_id, provider, model, status, reserved_micro,"
                " created_at, expires_at) VALUES (?, ?, ?, ?, ?, 'reserved', ?, ?, ?)",
                (rid, day, request_id, provider, model, amount_micro, now, now + self.ttl_s))
        remaining = max(0, limit_micro - spent - reserved - amount_micro)
        return Reservation(rid, day, amount_micro, remaining)

    @overload
    def settle(self, reservation: Reservation, cost_micro: int, usage: Usage | None) -> None: ...

    @overload
    def settle(self, reservation: Reservation, cost_micro: int, usage: Usage | None, *,
               limit_micro: int) -> Snapshot: ...

    def settle(self, reservation: Reservation, cost_micro: int, usage: Usage | None, *,
               limit_micro: int | None = None, outcome: dict[str, Any] | None = None
               ) -> Snapshot | None:
        """Record the actual cost (the provider's usage is the truth) and free the rest.
        Given the day's limit, also return the money left after it; given the call's
        outcome row, write it too (same transaction: one commit instead of two)."""
        u = usage or Usage(estimated=True)
        now = self.clock()
        with self._immediate() as conn:
            conn.execute(
                "UPDATE calls SET status='settled', cost_micro=?, settled_at=?, input_tokens=?,"
                " cache_read_tokens=?, cache_write_tokens=?, output_tokens=?,"
                " reasoning_tokens=?, usage_estimated=? WHERE id=?",
                (max(0, cost_micro), now, u.input_tokens, u.cache_read_tokens,
                 u.cache_write_tokens, u.output_tokens, u.reasoning_tokens, int(u.estimated),
                 reservation.id))
            if outcome is not None:
                self._insert_outcome(conn, outcome)
            after = None if limit_micro is None else self._snapshot(conn, now, limit_micro)
        if outcome is not None:
            self._written += 1
        return after

    def release(self, reservation: Reservation) -> None:
        """The call failed before the provider did any billable work: nothing was spent."""
        with self._immediate() as conn:
            conn.execute("UPDATE calls SET status='released', cost_micro=0, settled_at=?"
                         " WHERE id=? AND status='reserved'", (self.clock(), reservation.id))

    def snapshot(self, limit_micro: int) -> Snapshot:
        now = self.clock()
        with self._immediate() as conn:
            self._expire(conn, now)
            return self._snapshot(conn, now, limit_micro)

    def peek(self, limit_micro: int) -> Snapshot:
        """The day's totals as one read, no write lock: what the guard plans with. Holds
        past their TTL are not yet marked expired, so they count as reserved instead of
        spent; the sum, and so what remains, is the same (the next write expires them)."""
        now = self.clock()
        try:
            with self._connection() as conn:
                return self._snapshot(conn, now, limit_micro)
        except sqlite3.Error as e:
            raise LedgerError(f"budget ledger {self.path} is unavailable: {e}") from e

    def spend_by_model(self, day: str | None = None) -> list[dict[str, Any]]:
        day = day or budget_day(self.clock(), self.tz)
        return self._query(
            "SELECT provider, model, count(*) AS calls, sum(coalesce(cost_micro, 0)) AS"
            " cost_micro, sum(coalesce(input_tokens, 0)) AS input_tokens,"
            " sum(coalesce(output_tokens, 0)) AS output_tokens FROM calls WHERE day=? AND"
            " status IN ('settled', 'expired') GROUP BY provider, model"
            " ORDER BY cost_micro DESC", (day,))

    # -- the outcome log ----------------------------------------------------------------

    @property
    def outcome_changes(self) -> tuple[int, int]:
        return self._rated, self._written

    def record_outcome(self, outcome: dict[str, Any]) -> None:
        with self._immediate() as conn:
            self._insert_outcome(conn, outcome)
        self._written += 1

    def set_feedback(self, outcome_id: str, feedback: str) -> bool:
        with self._immediate() as conn:
            cur = conn.execute("UPDATE outcomes SET feedback=? WHERE id=?", (feedback, outcome_id))
        self._rated += 1
        return cur.rowcount == 1

    def conversation_model(self, conversation: str) -> str | None:
        """The model that last answered this conversation at its first try: a fallback's
        answer does not decide which model the conversation stays on."""
        with self._connection() as conn:
            row = conn.execute(
                "SELECT model FROM outcomes WHERE conversation=? AND status='ok' AND"
                " attempts=0 ORDER BY ts DESC LIMIT 1", (conversation,)).fetchone()
        return row[0] if row else None

    def rated_outcomes(self, prompts: int) -> list[dict[str, Any]]:
        """Every outcome of the `prompts` most recently rated prompts, oldest first: what
        the manager learns examples from (manager/learning.py)."""
        return self._query(
            "SELECT ts, prompt, capability, tier, output_tokens, status, feedback FROM outcomes"
            " WHERE prompt IN (SELECT prompt FROM outcomes WHERE feedback IS NOT NULL AND"
            " prompt IS NOT NULL GROUP BY prompt ORDER BY max(ts) DESC LIMIT ?)"
            " ORDER BY ts, rowid", (prompts,))

    def recent_usage(self, limit: int) -> list[dict[str, Any]]:
        """The latest answered requests' estimated and real output length, newest first:
        what output-token calibration reads. The estimate is taken out of the `decision`
        JSON by SQLite (thousands of rows, while the event loop needs the interpreter)."""
        return self._query(
            "SELECT capability, model, output_tokens, CASE WHEN json_valid(decision) THEN"
            " json_extract(decision, '$.output_tokens') END AS estimate FROM outcomes WHERE"
            " status='ok' AND model IS NOT NULL AND output_tokens > 0"
            " ORDER BY ts DESC LIMIT ?", (limit,))

    # -- internals ----------------------------------------------------------------------

    def _insert_outcome(self, conn: sqlite3.Connection, outcome: dict[str, Any]) -> None:
        row = {k: fastjson.dumps(v).decode() if isinstance(v, (dict, list)) else v
               for k, v in outcome.items()}
        row.setdefault("ts", self.clock())
        row.setdefault("day", budget_day(row["ts"], self.tz))
        names = ", ".join(f'"{k}"' for k in row)  # our own field names, never user input
        # plain SQL: sqlite-utils' insert costs 0.1 ms here
        conn.execute(f"INSERT INTO outcomes ({names}) VALUES ({', '.join('?' * len(row))})",
                     tuple(row.values()))

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        """Inside Ledger.run, the event loop's own connection, which never waits (_Busy sends
        the call elsewhere instead); anywhere else the shared one, under its lock."""
        nowait = getattr(self._local, "nowait", False)
        lock, conn = (self._loop_lock, self._loop_conn) if nowait else (self._lock, self.db.conn)
        if not lock.acquire(blocking=not nowait):
            raise _Busy
        try:
            yield conn
        except sqlite3.OperationalError as e:
            # a read the loop's connection could not start at once (a WAL being reset)
            if nowait and _busy(e) and not conn.in_transaction:
                raise _Busy from e
            raise
        finally:
            lock.release()

    @contextmanager
    def _immediate(self) -> Iterator[sqlite3.Connection]:
        """A write transaction that takes the lock up front, so read-check-write is atomic
        across processes (a deferred BEGIN would fail with 'database is locked')."""
        with self._connection() as conn:
            try:
                self._begin(conn)
            except sqlite3.Error as e:
                raise LedgerError(f"budget ledger {self.path} is unavailable: {e}") from e
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException as e:
                if conn.in_transaction:  # SQLite may have rolled back already (disk full)
                    conn.execute("ROLLBACK")
                if isinstance(e, sqlite3.Error):  # disk full, read-only, corrupt: say so
                    raise LedgerError(f"budget ledger {self.path} could not be written: {e};"
                                      " check free disk space and the file's permissions"
                                      ) from e
                raise

    def _begin(self, conn: sqlite3.Connection) -> None:
        try:
            conn.execute("BEGIN IMMEDIATE")  # the shared connection waits up to busy_timeout
        except sqlite3.OperationalError as e:
            if conn is self._loop_conn and _busy(e):
                raise _Busy from e
            raise

    def _expire(self, conn: sqlite3.Connection, now: float) -> None:
        # a crashed process never settles: count its hold as spent, the conservative side
        conn.execute("UPDATE calls SET status='expired', cost_micro=reserved_micro,"
                     " settled_at=? WHERE status='reserved' AND expires_at < ?", (now, now))

    def _snapshot(self, conn: sqlite3.Connection, now: float, limit_micro: int) -> Snapshot:
        day = budget_day(now, self.tz)
        spent, reserved = self._totals(conn, day)
        return Snapshot(day, limit_micro, spent, reserved, day_elapsed_share(now, self.tz))

    @staticmethod
    def _totals(conn: sqlite3.Connection, day: str) -> tuple[int, int]:
        row = conn.execute("SELECT spent_micro, reserved_micro FROM day_totals WHERE day=?",
                           (day,)).fetchone()
        return (row[0], row[1]) if row else (0, 0)

    def _query(self, sql: str, params: tuple = ()) -> list[dict[str, Any]]:
        with self._lock:
            cur = self.db.conn.execute(sql, params)
            names = [d[0] for d in cur.description]
            return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    # -- checkpoints --------------------------------------------------------------------

    def defer_checkpoints(self) -> None:
        """Stop commits on this connection from copying the WAL back into the database
        file: every ~40th call's commit did it (1000 pages, then an fsync), 1–5 ms that
        landed on that request. The owner then calls checkpoint() off its event loop.
        Durability is unchanged: a committed transaction is in the WAL either way, and
        whoever opens the file next replays it (ai-router's CLI commands still checkpoint)."""
        with self._lock, self._loop_lock:
            for conn in (self.db.conn, self._loop_conn):
                conn.execute("PRAGMA wal_autocheckpoint=0")

    def checkpoint(self) -> None:
        """Copy the WAL into the database file (PASSIVE: it never waits for a writer nor
        blocks one), on a connection of its own so calls go on meanwhile. Blocking.

        SQLite starts the WAL over only when a writer finds it wholly copied, which never
        happens while commits keep coming (under load it grew by 30 MB a second). Past
        WAL_RESET_BYTES, a TRUNCATE checkpoint holds new writers back for the moment it
        takes to copy the rest and empty the file."""
        with self._checkpoint_lock:
            if self._closed:
                return
            if self._checkpointer is None:
                self._checkpointer = _connect(self.path, busy_timeout_ms=BUSY_TIMEOUT_MS)
            self._checkpointer.execute("PRAGMA wal_checkpoint(PASSIVE)")
            wal = self.path.with_name(self.path.name + "-wal")
            with suppress(OSError):  # no WAL file: nothing to empty
                if wal.stat().st_size > WAL_RESET_BYTES:
                    self._checkpointer.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def close(self) -> None:
        with self._checkpoint_lock:
            self._closed = True
            if self._checkpointer is not None:
                self._checkpointer.close()
        self._loop_conn.close()
        self.db.close()


def open_database(path: Path) -> Database:
    """The one place the ledger database is opened: WAL, owner-only, migrations applied."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)  # owner-only from the start
        os.close(fd)
        conn = _connect(path, busy_timeout_ms=BUSY_TIMEOUT_MS)
        conn.execute("PRAGMA journal_mode=WAL")
        db = Database(conn)
        conn.execute("BEGIN IMMEDIATE")  # several processes may start on a fresh file at once
        try:
            migrations.apply(db)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return db
    except (OSError, sqlite3.Error) as e:
        raise LedgerError(f"cannot open the budget ledger at {path}: {e}; check the path "
                          "(AI_ROUTER_DB or `database` in models.toml) and its permissions") from e


def _busy(e: sqlite3.OperationalError) -> bool:
    """Another connection holds the lock this statement needed (SQLITE_BUSY)."""
    return e.sqlite_errorcode & 0xFF == sqlite3.SQLITE_BUSY


def _connect(path: Path, *, busy_timeout_ms: int) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA synchronous=NORMAL")  # with WAL: a crashed process loses no commit
    conn.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
    return conn
