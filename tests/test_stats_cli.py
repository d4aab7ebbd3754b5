"""`ai-router stats` on a ledger filled through real routed calls today (stats_setup, with
the worked day moved to the real date, since the command reads the real clock)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

import ai_router.stats  # noqa: F401 - registers `stats` for the in-process runs
from routing_setup import ANTHROPIC, GOOGLE, PLANTED, invoke_cli, run_cli
from stats_setup import A, B, C, Y, filled_ledger


@pytest.fixture(scope="module")
def filled(tmp_path_factory):
    today = datetime.now(UTC).date()  # the budget day is UTC in this setup
    with filled_ledger(tmp_path_factory.mktemp("stats-cli"), today) as ledger:
        yield ledger


@pytest.fixture
def env(filled, monkeypatch):
    monkeypatch.setenv("AI_ROUTER_DB", str(filled.db))
    return {"AI_ROUTER_DB": str(filled.db)}


def cells(lines: list[str], name: str) -> list[str]:
    """The cells of the first table row named `name`."""
    row = next(line for line in lines if line.startswith(f"│ {name} "))
    return [c.strip() for c in row.split("│")[2:-1]]


def test_stats_json_through_the_console_script_is_one_object_in_dollars(filled, env):
    result = run_cli("stats", "--json", "--config", str(filled.folder / "models.toml"),
                     cwd=filled.folder, env=env)

    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["today"]["spent_usd"] == (A + B + C) / 1e6
    assert report["recent"]["spent_usd"] == (A + B + C + Y) / 1e6
    assert report["recent"]["days"] == 7
    assert report["today"]["savings"]["saved_usd"] == 0.00504
    assert {r["name"]: r["cost_usd"] for r in report["today"]["by_provider"]}["google"] == (
        C / 1e6)


def test_stats_prints_tables_for_people_with_the_savings_method(filled, env):
    result = invoke_cli("stats", "--days", "2", "--config", str(filled.folder / "models.toml"),
                        env=env)

    assert result.exit_code == 0, result.stderr
    text = result.stdout
    assert f"spent ${(A + B + C) / 1e6:.6f} of $0.0500 today" in text
    assert "last 2 days" in text
    lines = text.splitlines()
    saved = next(line for line in lines if "saved" in line)
    assert "$0.005040" in saved  # today and the two days alike: yesterday ran on the reference
    assert cells(lines, "google") == ["1", "$0.001600", "1", "$0.001600"]
    assert cells(lines, "anthropic") == ["1", "$0.000900", "2", "$0.006900"]
    assert cells(lines, "fallbacks") == ["1", "1"]
    assert f"cost on {ANTHROPIC}" in text and GOOGLE in text
    assert "downgrades (last 2 days): strong → local ×1" in text
    assert "savings: every billed call" in text
    assert PLANTED not in text + result.stderr


def test_a_day_count_below_one_is_refused_with_a_clear_message(filled, env):
    result = invoke_cli("stats", "--days", "0", "--config", str(filled.folder / "models.toml"),
                        env=env)

    assert result.exit_code == 2
    assert "--days" in result.stderr and "Traceback" not in result.stderr
