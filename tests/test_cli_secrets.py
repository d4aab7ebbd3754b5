"""Planted fake keys never leave the process: not in any CLI output (even when a provider
echoes the key back in an error), not in the ledger file's bytes."""

from __future__ import annotations

from routing_setup import (
    FAKE_KEYS,
    PLANTED,
    invoke_cli,
    plant_keys,
    run_cli,
    write_models_toml,
)
from upstreams import ollama_wire as ow
from upstreams import openai_wire as oa


def test_planted_keys_appear_in_no_cli_output_and_not_in_the_ledger_file(up, tmp_path,
                                                                          monkeypatch):
    up.reset()
    config = write_models_toml(tmp_path, up.urls)
    db = plant_keys(monkeypatch, tmp_path)
    monkeypatch.setenv("AI_ROUTER_CONFIG", str(config))
    # providers that echo the caller's key back in their error messages
    echo = {env: f"Incorrect API key provided: {key}" for env, key in FAKE_KEYS.items()}
    up.deepseek.handler = oa.error_reply(401, echo["DEEPSEEK_API_KEY"])
    up.anthropic.reply_error(401, echo["ANTHROPIC_API_KEY"])
    up.google.reply_error(400, echo["GEMINI_API_KEY"], reason="API_KEY_INVALID")
    up.local.push(oa.json_reply(oa.completion_body("local answer",
                                                   usage=oa.usage_body(9, 2))))
    up.local.push(oa.error_reply(500))
    up.ollama.handler = ow.error_reply(500)

    answered = run_cli("ask", "--json", "--model", "cheap", "hi", cwd=tmp_path)
    assert answered.returncode == 0, answered.stderr
    assert '"attempts": ["deepseek/deepseek-chat' in answered.stdout  # the errors are shown…
    failed = run_cli("ask", "--model", "cheap", "hello", cwd=tmp_path)  # every candidate fails
    assert failed.returncode == 1 and "every candidate failed" in failed.stderr
    assert "Incorrect API key provided: ***" in failed.stderr  # …with the key scrubbed
    doctor = run_cli("doctor", cwd=tmp_path)
    assert doctor.returncode == 0, doctor.stderr
    others = [invoke_cli(*args) for args in (("budget", "--json"), ("budget",), ("models",))]
    assert all(done.exit_code == 0 for done in others), [d.stderr for d in others]

    for done in (answered, failed, doctor, *others):
        assert PLANTED not in done.stdout + done.stderr
    stored = b"".join(p.read_bytes() for p in tmp_path.glob(f"{db.name}*"))
    assert b"Incorrect API key provided" in stored  # the errors were logged…
    assert PLANTED.encode() not in stored  # …and the keys were not
    assert all(key.encode() not in stored for key in FAKE_KEYS.values())
