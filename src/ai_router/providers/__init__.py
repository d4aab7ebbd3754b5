"""Provider adapters, one module per API kind, chosen by a registry dict (no if/elif)."""

from __future__ import annotations

from ..config import ProviderConfig
from .anthropic import AnthropicAdapter
from .base import Adapter
from .embedded import EmbeddedAdapter
from .google import GoogleAdapter
from .ollama import OllamaAdapter
from .openai_compat import OpenAICompatAdapter

ADAPTERS: dict[str, type[Adapter]] = {
    cls.kind: cls for cls in (OpenAICompatAdapter, AnthropicAdapter, GoogleAdapter,
                              OllamaAdapter, EmbeddedAdapter)}


def make_adapter(name: str, config: ProviderConfig, api_key: str | None) -> Adapter:
    return ADAPTERS[config.kind](name, config, api_key)
