"""`ai-router doctor` against a real Ollama wire server: it finds the manager model missing,
says how to fix it, and with `--pull` pulls it (streamed progress) so the next check is ok."""

from __future__ import annotations

import re

import pytest

from routing_setup import invoke_cli, write_models_toml
from upstreams.ollama_wire import OllamaUpstream

MANAGER_MODEL = "qwen2.5:0.5b"


@pytest.fixture
def ollama():
    upstream = OllamaUpstream(models=["llama3.2:1b"], pullable={MANAGER_MODEL: [800, 200]})
    with upstream.running():
        yield upstream


@pytest.fixture
def config(tmp_path, ollama, monkeypatch, up):
    monkeypatch.setenv("AI_ROUTER_DB", str(tmp_path / "ledger.db"))
    path = write_models_toml(tmp_path, up.urls)
    text = re.sub(r'endpoint = "[^"]+"',
                  f'endpoint = "{ollama.base_url}"\nmodel = "{MANAGER_MODEL}"',
                  path.read_text(encoding="utf-8"), count=1)
    path.write_text(text, encoding="utf-8")
    return path


def test_doctor_says_the_manager_model_is_missing_and_how_to_pull_it(config, ollama):
    done = invoke_cli("doctor", "--config", str(config))

    assert done.exit_code == 0, done.stderr
    assert f"Ollama runs but lacks {MANAGER_MODEL}" in done.stdout
    assert "ai-router doctor --pull" in done.stdout
    assert not any(r.path == "/api/pull" for r in ollama.requests)


def test_doctor_pull_pulls_the_missing_manager_model_then_finds_it(config, ollama):
    done = invoke_cli("doctor", "--config", str(config), "--pull")

    assert done.exit_code == 0, done.stderr
    assert f"pulling {MANAGER_MODEL}" in done.stdout  # the progress bar's label
    assert f"manager: pulled {MANAGER_MODEL}" in done.stdout
    pulls = [r for r in ollama.requests if r.path == "/api/pull"]
    assert [r.body["model"] for r in pulls] == [MANAGER_MODEL]
    assert MANAGER_MODEL in ollama.models

    again = invoke_cli("doctor", "--config", str(config))
    assert f"Ollama at {ollama.base_url} has {MANAGER_MODEL}" in again.stdout


def test_doctor_pull_of_a_model_ollama_cannot_find_says_so_without_a_traceback(
        config, ollama):
    ollama.pullable = {}

    done = invoke_cli("doctor", "--config", str(config), "--pull")

    assert done.exit_code == 0, done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    assert f"could not pull {MANAGER_MODEL}: " in done.stdout
    assert "file does not exist" in done.stdout
    assert "reachable at" in done.stdout  # the remaining checks still ran
