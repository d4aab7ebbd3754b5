"""The adapter contract every provider kind implements.

An adapter owns all knowledge of one API shape: building its SDK client,
translating the router's OpenAI-format request to it and back, normalising usage
and mapping SDK errors (by type and status, never by message text) into
`ai_router.errors`. Adapters never touch the ledger: the router does.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar

from ..config import ProviderConfig
from ..errors import AuthFailed, BadRequest, ProviderError, RateLimited, Unavailable
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


# ---- HTTP error semantics shared by every kind (each adapter maps its SDK's types) --------

def retry_after_seconds(headers: Any) -> float | None:
    """Retry-After (delta-seconds or an HTTP date), or OpenAI's retry-after-ms, in seconds."""
    if headers is None:
        return None
    try:
        if ms := headers.get("retry-after-ms"):
            return max(0.0, float(ms) / 1000)
    except (TypeError, ValueError):
        pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None


def scrub(text: str, secret: str | None, limit: int = 300) -> str:
    """Provider text made safe to show: the key replaced (before cutting, so no part of
    it survives at the cut), whitespace collapsed, length bounded."""
    text = str(text).replace(secret, "***") if secret else str(text)
    return " ".join(text.split())[:limit]


def error_for_status(provider: str, status: int, detail: str, key_env: str | None,
                     retry_after: float | None = None) -> ProviderError:
    """An HTTP error status as the router's error: retryable unless the request itself
    is at fault (a 4xx other than auth, rate limits and timeouts)."""
    said = f": {detail}" if detail else ""
    if status == 429:
        return RateLimited(provider, f"rate limited or out of quota{said}",
                           retry_after_s=retry_after)
    if status in (401, 403):
        fix = f" (check {key_env})" if key_env else ""
        return AuthFailed(provider, f"the key was refused{fix}{said}", status)
    if status == 402:
        return AuthFailed(provider, f"billing problem on the account{said}", status)
    if status in (408, 409, 425) or status >= 500:  # incl. Anthropic's 529 overloaded
        return Unavailable(provider, f"temporarily unavailable{said}", status)
    return BadRequest(provider, f"request rejected{said}", status)


class ErrorMap:
    """An async context manager that turns an SDK's exceptions into the router's, by the
    subclass's `map` (by type and status code); anything it does not know passes through."""

    async def __aenter__(self) -> ErrorMap:
        return self

    async def __aexit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        if exc is None or isinstance(exc, ProviderError) or not isinstance(exc, Exception):
            return
        mapped = self.map(exc)
        if mapped is not None:
            raise mapped from exc

    def map(self, exc: Exception) -> ProviderError | None:
        raise NotImplementedError
