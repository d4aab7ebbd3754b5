"""The budget holds under load: `bench/stress.py --quick` runs two `ai-router serve`
processes, a REPL-like streaming client and tool callers on one ledger file against
chaotic loopback upstreams, with a sampler process reading the file throughout."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench" / "stress.py"


def test_the_quick_stress_run_never_passes_the_limit_and_every_call_has_exactly_one_row():
    done = subprocess.run([sys.executable, str(BENCH), "--quick", "--json", "--seconds", "15",
                           "--limit", "0.1"],
                          capture_output=True, text=True, timeout=240)
    summary = json.loads(done.stdout)

    assert summary["overshoot_micro"] == 0 and summary["sample_violations"] == []
    assert summary["row_mismatch"] == {} and summary["rows_left_reserved"] == 0
    assert sum(summary["ledger_rows"].values()) >= sum(summary["upstream_received"].values())
    assert summary["calls_costing_more_than_their_hold"] == 0
    assert summary["internal_errors"] == 0 and summary["server_tracebacks"] == 0
    assert done.returncode == 0, done.stderr[-2000:]
    # the run was a real test of the edge: every client kind ran, the limit was pressed
    # (paid answers refused for money), and the sampler saw it happen
    assert all(summary["requests"][k] > 0 for k in ("http", "repl", "tool"))
    assert summary["requests"]["total"] >= 100
    assert summary["peak_share"] >= 0.9 and summary["budget_overrides"] > 0
    assert summary["samples"] >= 20  # the sampler really watched (fewer on a busy machine)
