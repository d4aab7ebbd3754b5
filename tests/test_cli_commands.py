"""The CLI against loopback providers, with planted fake keys: ask (JSON and plain), budget,
models, doctor, offline mode and clean configuration errors. `ask`, `doctor` and the
configuration errors run the real console script in a subprocess (3-8 s each: it imports
every SDK it may need); the rest run in-process through typer's CliRunner."""

from __future__ import annotations

import asyncio
import json

import pytest

from ai_router.schema import ChatRequest
from routing_setup import (
    DEEPSEEK,
    FAKE_KEYS,
    LOCAL,
    PRICES,
    cost_by_hand,
    make_router,
    plant_keys,
    write_models_toml,
)
from routing_setup import invoke_cli as invoke
from routing_setup import run_cli as run
from upstreams import openai_wire as oa

USAGE = oa.usage_body(1200, 300, cached=400, reasoning=100)
COST = cost_by_hand(PRICES[DEEPSEEK], input_tokens=1200, output_tokens=300, cache_read=400)


@pytest.fixture
def cli(up, tmp_path, monkeypatch):
    """A loopback setup the console script finds through AI_ROUTER_CONFIG and AI_ROUTER_DB.
    DeepSeek answers every request with USAGE; the local tier answers for free."""
    up.reset()
    up.deepseek.handler = oa.json_reply(oa.completion_body("hello", usage=USAGE))
    up.local.handler = oa.json_reply(oa.completion_body("local hello",
                                                        usage=oa.usage_body(20, 3)))
    config = write_models_toml(tmp_path, up.urls)
    db = plant_keys(monkeypatch, tmp_path)
    monkeypatch.setenv("AI_ROUTER_CONFIG", str(config))
    return tmp_path, db


def test_ask_json_prints_one_object_with_the_answer_route_usage_cost_and_budget(cli, up):
    folder, _ = cli
    done = run("ask", "--json", "--model", "cheap", "hi", cwd=folder)

    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)  # the whole of stdout is one JSON object
    assert answer["answer"] == "hello"
    assert (answer["provider"], answer["model"], answer["tier"]) == ("deepseek", DEEPSEEK,
                                                                     "cheap")
    assert answer["usage"]["input_tokens"] == 1200
    assert answer["usage"]["cache_read_tokens"] == 400
    assert answer["usage"]["reasoning_tokens"] == 100
    assert answer["cost_usd"] == pytest.approx(COST / 1e6)
    assert answer["remaining_usd"] == pytest.approx(1.0 - COST / 1e6)
    assert {"capability", "tier", "output_tokens", "source"} <= answer["decision"].keys()
    assert answer["offline"] is False and answer["attempts"] == []
    assert done.stderr.strip() == ""  # nothing else: no log lines, no footer
    assert up.deepseek.requests[0].headers["authorization"] == (
        f"Bearer {FAKE_KEYS['DEEPSEEK_API_KEY']}")


def test_ask_prints_the_answer_on_stdout_and_a_one_line_footer_on_stderr(cli):
    folder, _ = cli
    done = run("ask", "--model", "cheap", "hi", cwd=folder)

    assert done.returncode == 0, done.stderr
    assert done.stdout == "hello\n"
    [footer] = done.stderr.strip().splitlines()
    assert DEEPSEEK in footer and "cheap" in footer and "1200→300 tokens" in footer
    assert f"${COST / 1e6:.6f}" in footer and f"${1 - COST / 1e6:.2f} left today" in footer


@pytest.mark.parametrize("how", ["flag", "env"])
def test_offline_mode_is_forced_by_the_flag_or_the_environment(cli, up, how):
    args = ("ask", "--json", "--offline", "hi") if how == "flag" else ("ask", "--json", "hi")
    done = invoke(*args, env={"AI_ROUTER_OFFLINE": "1"} if how == "env" else None)

    assert done.exit_code == 0, done.stderr
    answer = json.loads(done.stdout)
    assert (answer["model"], answer["tier"], answer["offline"]) == (LOCAL, "local", True)
    assert answer["cost_usd"] == 0 and up.deepseek.requests == []


def test_budget_shows_limit_spent_reserved_remaining_and_spend_per_model(cli, up, monkeypatch):
    folder, db = cli

    async def three_calls():
        router, _ = make_router(folder, monkeypatch, up.urls, name="same.toml")
        for text in ("one", "two"):
            await router.ask(ChatRequest.from_prompt(text, model="cheap"))
        await router.ask(ChatRequest.from_prompt("three", model="local"))
        await router.aclose()
    asyncio.run(three_calls())

    done = invoke("budget", "--json")
    assert done.exit_code == 0, done.stderr
    budget = json.loads(done.stdout)
    assert budget["limit_usd"] == 1.0 and budget["reserved_usd"] == 0
    assert budget["spent_usd"] == pytest.approx(2 * COST / 1e6)
    assert budget["remaining_usd"] == pytest.approx(1.0 - 2 * COST / 1e6)
    per_model = {m["model"]: m for m in budget["by_model"]}
    assert per_model[DEEPSEEK]["calls"] == 2
    assert per_model[DEEPSEEK]["cost_usd"] == pytest.approx(2 * COST / 1e6)
    assert per_model[LOCAL]["calls"] == 1 and per_model[LOCAL]["cost_usd"] == 0

    table = invoke("budget")
    assert table.exit_code == 0, table.stderr
    assert "limit $1.00" in table.stdout and f"spent ${2 * COST / 1e6:.6f}" in table.stdout
    assert DEEPSEEK in table.stdout and LOCAL in table.stdout


def test_models_lists_the_registry_with_each_keys_status(cli, monkeypatch):
    folder, _ = cli
    monkeypatch.delenv("GEMINI_API_KEY")
    done = invoke("models")

    assert done.exit_code == 0, done.stderr
    lines = {line.split()[1]: line for line in done.stdout.splitlines()
             if "/" in line and len(line.split()) > 2}
    assert {DEEPSEEK, LOCAL, "google/gemini-2.5-flash"} <= lines.keys()
    assert "DEEPSEEK_API_KEY" in lines[DEEPSEEK] and "unset" not in lines[DEEPSEEK]
    assert "GEMINI_API_KEY unset" in lines["google/gemini-2.5-flash"]
    assert "not needed" in lines[LOCAL]
    assert "0.27" in lines[DEEPSEEK] and "1.1" in lines[DEEPSEEK]  # $/M in and out


def test_doctor_reports_config_masked_keys_the_local_model_and_reachability(cli, up):
    folder, _ = cli
    done = run("doctor", cwd=folder)

    assert done.returncode == 0, done.stderr
    report = done.stdout
    assert "config" in report and "5 providers, 5 models" in report
    for env, value in FAKE_KEYS.items():
        assert f"key {env}: set ({len(value)} characters)" in report
    assert "manager:" in report and "embedded model" in report
    for name, url in up.urls.items():
        assert f"{name}: reachable at {url}" in report


def test_doctor_says_which_provider_is_unreachable(cli, up, tmp_path):
    folder, _ = cli
    urls = {**up.urls, "anthropic": "http://127.0.0.1:9"}
    config = write_models_toml(tmp_path, urls, name="down.toml")
    done = invoke("doctor", "--config", str(config))

    assert done.exit_code == 0, done.stderr
    assert "anthropic: unreachable at http://127.0.0.1:9" in done.stdout


@pytest.mark.parametrize("broken, where", [
    ('context_window = "big"', "models.deepseek/deepseek-chat.context_window"),
    ("context_window = [", "not valid TOML"),
])
def test_a_malformed_models_toml_gives_one_clear_line_and_exit_1(cli, broken, where):
    folder, _ = cli
    config = folder / "models.toml"
    config.write_text(config.read_text().replace("context_window = 128000", broken, 1))
    done = run("ask", "hi", cwd=folder, env={"COLUMNS": "80"})  # long lines must not wrap

    assert done.returncode == 1
    assert done.stdout == ""
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("error:") and str(config) in line and where in line
    assert "Traceback" not in done.stderr


def test_an_unknown_model_lists_the_valid_names(cli, up):
    done = invoke("ask", "--model", "gpt-17", "hi")

    assert done.exit_code == 1
    assert isinstance(done.exception, SystemExit)  # a clean exit, not a crash
    assert "unknown model 'gpt-17'" in done.stderr
    for name in ("auto", "cheap", "local", DEEPSEEK, LOCAL):
        assert name in done.stderr
    assert up.calls() == {name: 0 for name in up.urls}
