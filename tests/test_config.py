"""models.toml is validated up front and keys come from the environment or .env files."""

from __future__ import annotations

from pathlib import Path

import pytest

from ai_router.config import Keys, load_config
from ai_router.errors import ConfigError

SHIPPED = Path(__file__).parents[1] / "models.toml"


def test_shipped_config_covers_every_provider_family():
    cfg = load_config(SHIPPED)
    assert {"openai", "anthropic", "google", "deepseek", "qwen", "moonshot", "zai",
            "openrouter", "ollama", "lmstudio", "embedded"} <= set(cfg.providers)
    kinds = {p.kind for p in cfg.providers.values()}
    assert {"openai-compatible", "anthropic", "google", "ollama"} <= kinds
    assert {m.tier for m in cfg.models.values()} == {"local", "cheap", "strong"}


def test_every_key_variable_in_the_config_is_listed_in_env_example():
    cfg = load_config(SHIPPED)
    example = (SHIPPED.parent / ".env.example").read_text()
    for p in cfg.providers.values():
        if p.key_env:
            assert f"{p.key_env}=" in example


def write(tmp_path, text: str) -> Path:
    path = tmp_path / "models.toml"
    path.write_text(SHIPPED.read_text() + text)
    return path


def test_malformed_toml_names_the_file(tmp_path):
    path = tmp_path / "models.toml"
    path.write_text("[budget\ndaily_usd = 1")
    with pytest.raises(ConfigError, match=str(path)):
        load_config(path)


def test_a_wrong_field_is_named_with_what_is_wrong(tmp_path):
    path = write(tmp_path, '\n[models."openai/bad"]\ntier = "premium"\ncontext_window = 1\n'
                           'max_output = 1\n')
    with pytest.raises(ConfigError) as e:
        load_config(path)
    assert str(path) in str(e.value) and "models.openai/bad.tier" in str(e.value)


def test_a_model_of_an_unknown_provider_is_rejected(tmp_path):
    path = write(tmp_path, '\n[models."nope/x"]\ntier = "cheap"\ncontext_window = 1\n'
                           'max_output = 1\n')
    with pytest.raises(ConfigError, match="provider 'nope' is not in"):
        load_config(path)


def test_a_negative_budget_is_rejected(tmp_path):
    path = tmp_path / "models.toml"
    path.write_text(SHIPPED.read_text().replace("daily_usd = 2.00", "daily_usd = -1"))
    with pytest.raises(ConfigError, match="budget.daily_usd"):
        load_config(path)


def test_keys_come_from_env_then_local_env_file_then_user_env_file(tmp_path, monkeypatch):
    local, user = tmp_path / "local.env", tmp_path / "user.env"
    local.write_text("OPENAI_API_KEY=from-local\nDEEPSEEK_API_KEY=from-local\n")
    user.write_text("OPENAI_API_KEY=from-user\nZAI_API_KEY=from-user\n")
    monkeypatch.setenv("DEEPSEEK_API_KEY", "from-env")
    keys = Keys.load([local, user])
    assert keys.get("OPENAI_API_KEY") == "from-local"
    assert keys.get("DEEPSEEK_API_KEY") == "from-env"
    assert keys.get("ZAI_API_KEY") == "from-user"
    assert not keys.has("GEMINI_API_KEY") and keys.has(None)


def test_keys_never_show_their_values():
    secret = "fake-planted-0123456789abcdef"
    keys = Keys({"OPENAI_API_KEY": secret})
    shown = " ".join([repr(keys), str(keys), keys.mask("OPENAI_API_KEY")])
    assert secret not in shown and secret[-6:] not in shown
    assert keys.mask("OPENAI_API_KEY").startswith("set")
