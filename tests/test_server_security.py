"""Loopback by default; a key for anything else, checked on every request; no secret in
any log line."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import httpx
import openai
import pytest
from typer.testing import CliRunner

import ai_router.server.command  # noqa: F401 - registers `serve`
from ai_router.cli import app
from ai_router.server.security import InsecureBind, check_bind, is_loopback
from server_setup import (  # noqa: F401 - fixtures
    KEYS,
    served_fixture,
    start_server_fixture,
    ups_fixture,
)
from upstreams.openai_wire import completion_body, json_reply, usage_body
from upstreams.server import free_port

SERVER_KEY = "ar-test-SERVER-KEY-never-logged-42"
ASK = [{"role": "user", "content": "hello"}]


@pytest.mark.parametrize("host, loopback", [
    ("127.0.0.1", True), ("127.0.0.2", True), ("::1", True), ("[::1]", True),
    ("localhost", True), ("0.0.0.0", False), ("::", False), ("192.168.1.20", False),
    ("my-laptop.local", False)])
def test_only_loopback_addresses_count_as_local(host, loopback):
    assert is_loopback(host) is loopback


def test_binding_beyond_loopback_needs_a_key():
    check_bind("127.0.0.1", None)
    check_bind("0.0.0.0", SERVER_KEY)
    with pytest.raises(InsecureBind, match="AI_ROUTER_API_KEY"):
        check_bind("0.0.0.0", None)


def test_serve_refuses_to_start_on_a_public_address_without_a_key():
    result = CliRunner().invoke(app, ["serve", "--host", "0.0.0.0", "--port", str(free_port())])
    assert result.exit_code == 1
    output = result.output + (result.stderr if result.stderr_bytes is not None else "")
    assert "refusing to listen on 0.0.0.0" in output and "AI_ROUTER_API_KEY" in output
    assert "Traceback" not in output


def test_with_a_key_every_request_needs_the_bearer_token(start_server):
    served = start_server(api_key=SERVER_KEY)
    for path in ("/health", "/v1/models", "/v1/budget"):
        r = httpx.get(f"{served.url}{path}")
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
        assert r.json()["error"]["code"] == "invalid_api_key"
    with pytest.raises(openai.AuthenticationError) as caught:
        served.client(api_key="ar-wrong-key").chat.completions.create(model="auto", messages=ASK)
    assert SERVER_KEY not in caught.value.response.text
    assert httpx.get(f"{served.url}/health",
                     headers={"authorization": f"Basic {SERVER_KEY}"}).status_code == 401
    served.ups.openai.push(json_reply(completion_body("hi", usage=usage_body(5, 1))))
    reply = served.client(api_key=SERVER_KEY).chat.completions.create(model="oai/gpt-test",
                                                                      messages=ASK)
    assert reply.choices[0].message.content == "hi"
    assert served.ups.openai.requests[-1].headers["authorization"] == (
        f"Bearer {KEYS['OPENAI_API_KEY']}"), "the provider gets its own key, not the client's"


def test_the_serve_command_answers_and_its_logs_hold_no_secret(ups, tmp_path):
    """`ai-router serve` as a real process: bearer auth, an answer, a clean shutdown, and
    neither the server key nor a provider key anywhere in its output."""
    ups.reset()
    ups.openai.push(json_reply(completion_body("from the subprocess", usage=usage_body(5, 2))))
    config = tmp_path / "models.toml"
    config.write_text(f"""
[budget]
daily_usd = 1.0
timezone = "UTC"
[manager]
endpoint = "http://127.0.0.1:{free_port()}"
embedded_fallback = false
[routing.chains]
chat = ["cheap"]
knowledge = ["cheap"]
writing = ["cheap"]
coding = ["cheap"]
math = ["cheap"]
reasoning = ["cheap"]
extraction = ["cheap"]
[providers.oai]
kind = "openai-compatible"
base_url = "{ups.urls['oai']}"
key_env = "OPENAI_API_KEY"
[models."oai/gpt-test"]
tier = "cheap"
context_window = 100000
max_output = 4096
price = {{ input = 1.0, output = 2.0 }}
""")
    port = free_port()
    env = {**os.environ, "AI_ROUTER_API_KEY": SERVER_KEY, "OPENAI_API_KEY": KEYS["OPENAI_API_KEY"],
           "AI_ROUTER_DB": str(tmp_path / "ledger.db")}
    exe = os.path.join(os.path.dirname(sys.executable), "ai-router")
    proc = subprocess.Popen([exe, "serve", "--port", str(port), "--config", str(config)],
                            env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                assert httpx.get(f"{url}/health").status_code == 401
                break
            except httpx.ConnectError:
                assert proc.poll() is None and time.monotonic() < deadline, "serve did not start"
                time.sleep(0.2)
        client = openai.OpenAI(base_url=f"{url}/v1", api_key=SERVER_KEY, max_retries=0)
        reply = client.chat.completions.create(model="oai/gpt-test", messages=ASK)
        assert reply.choices[0].message.content == "from the subprocess"
        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(base_url=f"{url}/v1", api_key="ar-wrong-key-also-secret",
                          max_retries=0).models.list()
    finally:
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=20)
    # uvicorn shuts down gracefully, then re-raises the signal it caught
    assert proc.returncode in (0, -signal.SIGTERM), output
    assert "Application shutdown complete" in output
    assert '"POST /v1/chat/completions HTTP/1.1" 200' in output, "access log is on"
    for secret in (SERVER_KEY, KEYS["OPENAI_API_KEY"], "ar-wrong-key-also-secret"):
        assert secret not in output


def test_serve_logs_each_request_unless_told_not_to(monkeypatch, tmp_path):
    import uvicorn

    from ai_router.server import command

    seen: dict = {}
    monkeypatch.setattr(uvicorn, "run", lambda _app, **kw: seen.update(kw))
    monkeypatch.setattr(command, "_freeze_startup_objects", lambda: None)
    monkeypatch.setenv("AI_ROUTER_DB", str(tmp_path / "ledger.db"))
    for flags, logged in (([], True), (["--no-access-log"], False)):
        result = CliRunner().invoke(app, ["serve", "--port", str(free_port()), *flags])
        assert result.exit_code == 0, result.output
        assert seen.pop("access_log") is logged
