"""Several processes reserving at once never push spent + reserved past the day's limit."""

from __future__ import annotations

import multiprocessing as mp
import random
import sqlite3

from ai_router.clock import zone
from ai_router.ledger import Ledger

LIMIT = 1_000_000  # $1.00


def _worker(path: str, seed: int, attempts: int, queue) -> None:
    rng = random.Random(seed)
    ledger = Ledger(path, zone("UTC"))
    granted = refused = 0
    for _ in range(attempts):
        res = ledger.reserve(rng.randint(1_000, 60_000), LIMIT, provider="p", model="p/m",
                             request_id=f"{seed}")
        if res is None:
            refused += 1
            continue
        granted += 1
        # settle below, at or (rarely) at the full reservation, or release
        choice = rng.random()
        if choice < 0.2:
            ledger.release(res)
        else:
            ledger.settle(res, rng.randint(0, res.amount_micro), None)
    queue.put((granted, refused))


def _check_invariant(path: str) -> tuple[int, int]:
    conn = sqlite3.connect(path)
    spent, reserved = conn.execute(
        "SELECT coalesce(sum(CASE WHEN status IN ('settled','expired') THEN cost_micro END), 0),"
        " coalesce(sum(CASE WHEN status='reserved' THEN reserved_micro END), 0) FROM calls"
    ).fetchone()
    conn.close()
    return spent, reserved


def test_eight_processes_never_pass_the_daily_limit(tmp_path):
    path = str(tmp_path / "ledger.db")
    Ledger(path, zone("UTC")).close()  # create the schema once
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(path, seed, 120, queue)) for seed in range(8)]
    for p in procs:
        p.start()
    peak = 0
    while any(p.is_alive() for p in procs):
        spent, reserved = _check_invariant(path)  # sampled while they run
        peak = max(peak, spent + reserved)
        assert spent + reserved <= LIMIT
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    results = [queue.get(timeout=5) for _ in procs]
    spent, reserved = _check_invariant(path)
    assert reserved == 0
    assert spent <= LIMIT
    assert sum(r for _, r in results) > 0, "the limit was never reached: the test proves nothing"
    assert sum(g for g, _ in results) + sum(r for _, r in results) == 8 * 120
