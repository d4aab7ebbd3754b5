"""A fresh machine: no API keys, no Ollama, no LM Studio. `ai-router ask` still answers,
from the embedded local model (SmolLM2-135M through llama.cpp), and says so."""

from __future__ import annotations

from pathlib import Path

import pytest

from routing_setup import run_cli
from upstreams.server import free_port

SHIPPED = Path(__file__).parents[1] / "models.toml"


@pytest.mark.local_model
def test_ask_with_no_keys_and_no_local_servers_is_answered_by_the_embedded_model(tmp_path,
                                                                                 monkeypatch):
    # the shipped configuration, with Ollama and LM Studio at ports where nothing listens
    config = SHIPPED.read_text().replace("localhost:11434", f"127.0.0.1:{free_port()}")
    config = config.replace("localhost:1234", f"127.0.0.1:{free_port()}")
    (tmp_path / "models.toml").write_text(config)
    monkeypatch.setenv("AI_ROUTER_DB", str(tmp_path / "ledger.db"))

    done = run_cli("ask", "Say hello in one short sentence.", cwd=tmp_path)

    assert done.returncode == 0, done.stderr
    assert done.stdout.strip()
    footer = done.stderr.strip().splitlines()[-1]
    assert "embedded/smollm2-135m-instruct" in footer and "local" in footer
    assert "$0.000000" in footer and "offline-only" not in footer
    assert "ERROR" not in done.stderr and "Traceback" not in done.stderr
