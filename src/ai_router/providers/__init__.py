"""Provider adapters, one module per API kind, chosen by a registry dict (no if/elif).

Modules are imported on first use: each SDK costs up to a second to import, and most
users configure only some of them.
"""

from __future__ import annotations

from importlib import import_module

from ..config import ProviderConfig
from .base import Adapter

ADAPTERS: dict[str, str] = {  # kind → "module:class"
    "openai-compatible": "openai_compat:OpenAICompatAdapter",
    "anthropic": "anthropic:AnthropicAdapter",
    "google": "google:GoogleAdapter",
    "ollama": "ollama:OllamaAdapter",
    "embedded": "embedded:EmbeddedAdapter",
}


def adapter_class(kind: str) -> type[Adapter]:
    module, cls = ADAPTERS[kind].split(":")
    return getattr(import_module(f"{__name__}.{module}"), cls)


def make_adapter(name: str, config: ProviderConfig, api_key: str | None) -> Adapter:
    return adapter_class(config.kind)(name, config, api_key)
