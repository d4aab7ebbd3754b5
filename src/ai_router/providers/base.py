"""The adapter contract every provider kind implements.

An adapter owns all knowledge of one API shape: building its SDK client,
translating the router's OpenAI-format request to it and back, normalising usage
and mapping SDK errors (by type and status, never by message text) into
`ai_router.errors`. Adapters never touch the ledger: the router does.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from typing import Any, ClassVar

from ..config import ProviderConfig
from ..schema import ChatRequest, Completion, Delta, ToolCallDelta


class Adapter(ABC):
    kind: ClassVar[str]

    def __init__(self, name: str, config: ProviderConfig, api_key: str | None = None,
                 client: Any = None):
        self.name, self.config, self._api_key = name, config, api_key
        self._client = client  # injected SDK client (tests), else built lazily

    @abstractmethod
    async def complete(self, request: ChatRequest, model: str, max_tokens: int) -> Completion:
        """One non-streamed call. `max_tokens` is the guard's cap and is always sent."""

    async def stream(self, request: ChatRequest, model: str,
                     max_tokens: int) -> AsyncIterator[Delta]:
        """Streamed call. Kinds with native streaming override this; the default replays
        a complete() result as deltas so every adapter can serve a streaming client."""
        done = await self.complete(request, model, max_tokens)
        yield Delta(text=done.text, reasoning=done.reasoning, tool_calls=[
            ToolCallDelta(index=i, id=c.get("id"), name=c["function"]["name"],
                          arguments=c["function"].get("arguments", ""))
            for i, c in enumerate(done.tool_calls)])
        yield Delta(finish_reason=done.finish_reason, usage=done.usage)

    async def aclose(self) -> None:
        close = getattr(self._client, "close", None) or getattr(self._client, "aclose", None)
        if close is not None:
            result = close()
            if hasattr(result, "__await__"):
                await result
