"""Loading models.toml and API keys.

models.toml declares providers, models, routing chains, budget and manager. Keys
come only from the environment or a .env file (current directory, then the
per-user config directory) and are held in `Keys`, which never prints them.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Literal

from dotenv import dotenv_values
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .errors import ConfigError
from .schema import CAPABILITIES, TIERS, Capability, Feature, Tier

ProviderKind = Literal["openai-compatible", "anthropic", "google", "ollama", "embedded"]
PACKAGE_DIR = Path(__file__).parent


def user_config_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base) / "ai-router"


def user_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "ai-router"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ProviderConfig(_Strict):
    kind: ProviderKind
    base_url: str | None = None
    key_env: str | None = None  # the *name* of the env var holding the key; None = no key
    price_provider: str | None = None  # genai-prices provider id, when prices come from there
    timeout_s: float = 120.0
    # OpenAI's newer models reject max_tokens; most compatible providers only know max_tokens
    max_tokens_field: Literal["max_tokens", "max_completion_tokens"] = "max_tokens"
    balance_api: Literal["deepseek", "moonshot", "openrouter"] | None = None  # prepaid balance


class Price(_Strict):
    """USD per million tokens."""

    input: float = Field(ge=0)
    output: float = Field(ge=0)
    cache_read: float | None = Field(default=None, ge=0)
    cache_write: float | None = Field(default=None, ge=0)


class ModelConfig(_Strict):
    ref: str = ""  # "provider/name", filled from the table key
    provider: str = ""
    name: str = ""  # the provider's own model id
    tier: Tier
    capabilities: list[Capability] = Field(default_factory=lambda: list(CAPABILITIES))
    features: list[Feature] = Field(default_factory=list)
    context_window: int = Field(gt=0)
    max_output: int = Field(gt=0)
    speed: int = Field(default=3, ge=1, le=5)
    quality: int = Field(default=3, ge=1, le=5)
    price: Price | None = None  # overrides genai-prices
    price_ref: str | None = None  # model id in genai-prices, when it differs from `name`

    @property
    def is_local(self) -> bool:
        return self.tier == "local"


class BudgetConfig(_Strict):
    daily_usd: float = Field(ge=0)
    timezone: str = "local"  # IANA name, or "local" for the machine's zone
    downgrade_below: float = Field(default=0.25, ge=0, le=1)  # remaining share: strong → cheap
    pace_margin: float | None = Field(default=0.25, ge=0)  # None disables the pace rule
    reservation_ttl_s: int = Field(default=900, gt=0)  # orphaned reservations expire after this
    cap_to_prepaid: bool = False  # also keep each call within the provider's prepaid balance


class ManagerConfig(_Strict):
    endpoint: str = "http://localhost:11434"  # Ollama; "embedded" forces the embedded model
    model: str = "qwen2.5:0.5b"
    timeout_s: float = Field(default=4.0, gt=0)
    keep_alive: str = "30m"
    embedded_fallback: bool = True


class RoutingConfig(_Strict):
    chains: dict[Capability, list[Tier]]
    long_context_tokens: int = 32_000  # above this, prefer the largest windows
    default_output_tokens: int = 1024


class Config(_Strict):
    path: Path | None = None
    providers: dict[str, ProviderConfig]
    models: dict[str, ModelConfig]
    routing: RoutingConfig
    budget: BudgetConfig
    manager: ManagerConfig = ManagerConfig()
    database: Path | None = None
    privacy: Literal["full", "preview", "off"] = "preview"

    @model_validator(mode="before")
    @classmethod
    def _fill_model_refs(cls, data: dict) -> dict:
        models = {}
        for ref, m in (data.get("models") or {}).items():
            provider, _, name = ref.partition("/")
            if not isinstance(m, dict) or not name:
                raise ValueError(f"model key {ref!r} must be 'provider/name' with a table value")
            models[ref] = {"provider": provider, "name": name, **m, "ref": ref}
        return {**data, "models": models}

    @model_validator(mode="after")
    def _check_references(self) -> Config:
        for ref, m in self.models.items():
            if m.provider not in self.providers:
                raise ValueError(f"models.{ref}: provider {m.provider!r} is not in [providers]")
        for cap in CAPABILITIES:
            if cap not in self.routing.chains:
                raise ValueError(f"routing.chains: missing capability {cap!r}")
        return self

    def database_path(self) -> Path:
        env = os.environ.get("AI_ROUTER_DB")
        return Path(env) if env else self.database or user_data_dir() / "ledger.db"

    def tier_rank(self, tier: Tier) -> int:
        return TIERS.index(tier)


def default_config_path() -> Path:
    """AI_ROUTER_CONFIG, ./models.toml, the user's config dir, then the shipped default."""
    candidates = [os.environ.get("AI_ROUTER_CONFIG"), "models.toml",
                  user_config_dir() / "models.toml", PACKAGE_DIR / "defaults" / "models.toml",
                  PACKAGE_DIR.parents[1] / "models.toml"]
    for c in candidates:
        if c and Path(c).is_file():
            return Path(c)
    raise ConfigError("no models.toml found: set AI_ROUTER_CONFIG or run from the project folder")


def load_config(path: Path | str | None = None) -> Config:
    """Parse and validate models.toml, failing fast with the file, the field and the problem."""
    path = Path(path) if path else default_config_path()
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise ConfigError(f"{path}: cannot read: {e.strerror}") from e
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from e
    try:
        return Config.model_validate({**raw, "path": path})
    except ValidationError as e:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(top level)'}: {err['msg']}"
            for err in e.errors())
        raise ConfigError(f"{path}: {problems}") from None


class Keys:
    """API keys by env-var name, from the environment first, then .env files.

    The values never appear in repr, str or logs; use `mask` to show that a key exists.
    """

    def __init__(self, values: dict[str, str]):
        self._values = {k: v for k, v in values.items() if v}

    @classmethod
    def load(cls, env_files: list[Path] | None = None) -> Keys:
        files = env_files if env_files is not None else [Path(".env"),
                                                          user_config_dir() / ".env"]
        merged: dict[str, str] = {}
        for f in reversed(files):  # earlier files win
            if f.is_file():
                merged.update({k: v for k, v in dotenv_values(f).items() if v})
        merged.update({k: v for k, v in os.environ.items() if k.endswith("_API_KEY") and v})
        return cls(merged)

    def get(self, env_var: str | None) -> str | None:
        return self._values.get(env_var) if env_var else None

    def has(self, env_var: str | None) -> bool:
        return env_var is None or env_var in self._values

    def mask(self, env_var: str) -> str:
        value = self._values.get(env_var)
        return "not set" if not value else f"set ({len(value)} characters)"

    def secrets(self) -> list[str]:
        """For scrubbing: every key value known."""
        return list(self._values.values())

    def scrub(self, text: str) -> str:
        """`text` with every known key masked (a provider may echo any key it was sent)."""
        for secret in self._values.values():
            text = text.replace(secret, "***")
        return text

    def __repr__(self) -> str:
        return f"Keys({sorted(self._values)})"
