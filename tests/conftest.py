"""Shared test setup. No test may reach the internet: every provider is a loopback server."""

from __future__ import annotations

import os

import pytest

from routing_setup import Loopbacks
from upstreams.openai_wire import OpenAIUpstream


@pytest.fixture(autouse=True)
def _isolated_environment(tmp_path, monkeypatch):
    """Each test gets its own HOME/config/data dirs and no real API keys."""
    for var in list(os.environ):
        if var.endswith("_API_KEY"):
            monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.delenv("AI_ROUTER_CONFIG", raising=False)
    monkeypatch.delenv("AI_ROUTER_DB", raising=False)
    monkeypatch.delenv("AI_ROUTER_OFFLINE", raising=False)


@pytest.fixture(scope="module")
def up():
    """Loopback servers for every provider kind (tests/routing_setup.py), one set per module
    (starting them costs ~1 s); tests call `up.reset()` before scripting replies."""
    with Loopbacks.running() as running:
        yield running


@pytest.fixture(scope="module")
def openai_upstream():
    """One OpenAI-wire loopback server per module (e.g. a manager model's endpoint); tests
    call `openai_upstream.reset()` before scripting replies."""
    upstream = OpenAIUpstream()
    with upstream.running():
        yield upstream
