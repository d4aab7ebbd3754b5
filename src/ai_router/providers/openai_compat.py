"""The `openai-compatible` kind: every API that speaks OpenAI's chat-completions dialect.

OpenAI, DeepSeek, Qwen/DashScope, Moonshot, Z.ai, OpenRouter, LM Studio, Ollama's /v1
and llama.cpp differ only by base URL, plus a few extra fields this module reads
when present (`reasoning_content`, DeepSeek's and Kimi's cache counters).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import suppress
from typing import Any, TypeVar

import aiohttp
import httpx
import openai
import pydantic
from openai._models import FinalRequestOptions

from .. import fastjson
from ..errors import ProviderError, Unavailable
from ..schema import ChatRequest, Completion, Delta, ToolCallDelta, Usage
from .base import Adapter, ErrorMap, error_for_status, retry_after_seconds, scrub

PASSED_THROUGH = ("messages", "tools", "tool_choice", "response_format", "temperature",
                  "top_p", "stop", "reasoning_effort")
MAX_MESSAGE = 300  # characters of a provider's error message worth keeping
# The request is already in OpenAI's shape, so it goes through the SDK client's own
# `request` (its auth, timeouts, error types and SSE decoding) without
# `chat.completions.create`'s per-request walk of every message and tool schema against
# the SDK's types, and the reply stays plain JSON instead of being built into models: 1–3 ms
# less per call. The options `post` would build per call (a pydantic model whose defaults
# are deep-copied, and a relative URL merged with the base URL) are built once per client:
# another ~0.1-0.3 ms (docs/benchmarks.md, "Server overhead").
CHAT_PATH = b"chat/completions"
# The SDK's telemetry headers (OS, CPU, Python and SDK versions, retry count, read timeout):
# nothing a provider needs to answer, and ~0.1 ms of the SDK's 0.7-1 ms per call to build
SDK_TELEMETRY = ("X-Stainless-Lang", "X-Stainless-Package-Version", "X-Stainless-OS",
                 "X-Stainless-Arch", "X-Stainless-Runtime", "X-Stainless-Runtime-Version",
                 "X-Stainless-Async")
AUTH: Any = {"security": {"bearer_auth": True},  # what create() asks of the client
             "headers": {"X-Stainless-Retry-Count": openai.Omit(),
                         "X-Stainless-Read-Timeout": openai.Omit()}}
T = TypeVar("T")


def _transport_errors() -> tuple[type[BaseException], ...]:
    """Errors raised while reading a body, which the SDK does not wrap (mid-stream cuts).
    openai>=3 talks through its own httpx fork, older versions through httpx."""
    errors: list[type[BaseException]] = [httpx.TransportError]
    with suppress(ImportError):
        import httpx2
        errors.append(httpx2.TransportError)
    return tuple(errors)


TRANSPORT_ERRORS = _transport_errors()


class OpenAICompatAdapter(Adapter):
    kind = "openai-compatible"
    _chat_options: FinalRequestOptions | None = None  # built with the client, on first use

    @property
    def client(self) -> openai.AsyncOpenAI:
        if self._client is None:
            # max_retries=0: the router falls back to the next candidate itself. aiohttp
            # under the SDK (its documented option): its default httpx2 pool probes every
            # idle keep-alive connection on each request, +1–2.5 ms per call once a burst
            # has left dozens open (docs/benchmarks.md, "Server overhead")
            self._client = openai.AsyncOpenAI(
                base_url=self.config.base_url, api_key=self._api_key or "not-needed",
                timeout=self.config.timeout_s, max_retries=0,
                http_client=openai.DefaultAioHttpClient(),
                default_headers={name: openai.Omit() for name in SDK_TELEMETRY})
        return self._client

    def _chat(self, params: dict[str, Any]) -> FinalRequestOptions:
        if self._chat_options is None:
            base = self.client.base_url  # absolute: parsed once per call, never merged
            url = str(base.copy_with(raw_path=base.raw_path + CHAT_PATH))
            self._chat_options = FinalRequestOptions.construct(method="post", url=url, **AUTH)
        return self._chat_options.model_copy(update={"content": _encoded(params)})

    async def complete(self, request: ChatRequest, model: str, max_tokens: int) -> Completion:
        params = request_params(request, model, max_tokens, self.config.max_tokens_field)
        async with self._errors():
            response = await self.client.request(object, self._chat(params))
            return self._parse(completion_from_response, response)

    async def stream(self, request: ChatRequest, model: str,
                     max_tokens: int) -> AsyncIterator[Delta]:
        params = request_params(request, model, max_tokens, self.config.max_tokens_field)
        params.update(stream=True, stream_options={"include_usage": True})
        finished = False
        async with self._errors():
            chunks = await self.client.request(object, self._chat(params), stream=True,
                                               stream_cls=openai.AsyncStream[object])
            async with chunks:
                async for chunk in chunks:
                    delta = self._parse(delta_from_chunk, chunk)
                    if delta is not None:
                        finished = finished or delta.finish_reason is not None
                        yield delta
        if not finished:
            raise Unavailable(self.name, "the stream ended before the answer was finished")

    def _parse(self, convert: Callable[[Any], T], value: Any) -> T:
        # The body is plain JSON (see CHAT_PATH), so a body missing required fields only
        # shows up here, as key, index or type errors.
        try:
            return convert(value)
        except (AttributeError, IndexError, KeyError, TypeError, ValueError) as e:
            raise Unavailable(self.name, "malformed response body", maybe_billed=True) from e

    def _errors(self) -> OpenAIErrorMap:
        return OpenAIErrorMap(self.name, self.config.key_env, self._api_key,
                              self.config.timeout_s)


# ---- request / response converters (pure) -----------------------------------------------

def request_params(request: ChatRequest, model: str, max_tokens: int,
                   max_tokens_field: str) -> dict[str, Any]:
    """SDK keyword arguments: the OpenAI fields that are set, and the guard's cap under the
    field name this provider understands."""
    params: dict[str, Any] = {"model": model, max_tokens_field: max_tokens}
    for name in PASSED_THROUGH:
        value = getattr(request, name)
        if value is not None:
            params[name] = value
    return params


def _encoded(params: dict[str, Any]) -> bytes:
    # orjson: 9 µs instead of the standard library's 172 on a 37k-character agent body
    return fastjson.dumps(params)


def _reasoning(message: dict[str, Any]) -> str:
    # DeepSeek/Qwen/Kimi/GLM: reasoning_content; OpenRouter: reasoning
    value = message.get("reasoning_content") or message.get("reasoning")
    return value if isinstance(value, str) else ""


def usage_from_openai(usage: dict[str, Any] | None) -> Usage | None:
    """prompt_tokens already includes cached tokens; completion_tokens includes reasoning."""
    if usage is None:
        return None
    cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens")
    if cached is None:  # DeepSeek: prompt_cache_hit_tokens; Moonshot: top-level cached_tokens
        cached = usage.get("prompt_cache_hit_tokens") or usage.get("cached_tokens")
    reasoning = (usage.get("completion_tokens_details") or {}).get("reasoning_tokens")
    return Usage(input_tokens=usage.get("prompt_tokens") or 0,
                 cache_read_tokens=cached or 0,
                 output_tokens=usage.get("completion_tokens") or 0,
                 reasoning_tokens=reasoning or 0)


def _without_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_none(v) for k, v in value.items() if v is not None}
    return value


def completion_from_response(response: dict[str, Any]) -> Completion:
    choice = response["choices"][0]
    message = choice["message"]
    return Completion(
        text=message.get("content") or "",
        reasoning=_reasoning(message),
        tool_calls=[_without_none(c) for c in message.get("tool_calls") or []],
        finish_reason=choice.get("finish_reason") or "stop",
        usage=usage_from_openai(response.get("usage")),
        model=response.get("model") or "")


def delta_from_chunk(chunk: dict[str, Any]) -> Delta | None:
    """One SSE chunk as one Delta (text and tool-call fragments together, so neither is
    lost when a provider sends both in a single chunk). None when the chunk is empty."""
    delta = Delta(usage=usage_from_openai(chunk.get("usage")))
    for choice in chunk["choices"][:1]:
        d = choice["delta"]
        delta.text = d.get("content") or ""
        delta.reasoning = _reasoning(d)
        delta.tool_calls = [
            ToolCallDelta(index=c["index"], id=c.get("id"),
                          name=(c.get("function") or {}).get("name"),
                          arguments=(c.get("function") or {}).get("arguments") or "")
            for c in d.get("tool_calls") or []]
        delta.finish_reason = choice.get("finish_reason")
    empty = not (delta.text or delta.reasoning or delta.tool_calls or delta.finish_reason
                 or delta.usage)
    return None if empty else delta


# ---- errors -----------------------------------------------------------------------------

def _provider_message(error: openai.APIError) -> str:
    body = error.body
    message = body.get("message") if isinstance(body, dict) else None
    return str(message or "")[:MAX_MESSAGE]


def _never_connected(exc: BaseException) -> bool:
    """No connection was made, so nothing reached the provider (refused, DNS, TLS). The
    SDK's aiohttp transport reports these as a connect *timeout*, which alone would read as
    possibly billed; aiohttp's own error, further down the chain, says what happened."""
    cause = exc.__cause__
    while cause is not None:
        if isinstance(cause, aiohttp.ClientConnectorError):
            return True
        cause = cause.__cause__
    return False


class OpenAIErrorMap(ErrorMap):
    """Maps SDK and transport exceptions to `ai_router.errors` by type and status code.
    The API key is scrubbed from every message, even if a provider echoes it."""

    def __init__(self, provider: str, key_env: str | None, api_key: str | None,
                 timeout_s: float):
        self.provider, self.key_env, self.timeout_s = provider, key_env, timeout_s
        self._api_key = api_key

    def map(self, exc: Exception) -> ProviderError | None:
        p = self.provider
        if isinstance(exc, openai.APIStatusError):
            return self._status_error(exc)
        if isinstance(exc, openai.APIConnectionError) and _never_connected(exc):
            return Unavailable(p, "cannot connect; check the provider's base_url and that "
                                  "it is running")
        if isinstance(exc, openai.APITimeoutError):
            return Unavailable(p, f"no answer within {self.timeout_s:g}s", maybe_billed=True)
        if isinstance(exc, openai.APIConnectionError):
            return Unavailable(p, "cannot connect; check the provider's base_url and that "
                                  "it is running")
        if isinstance(exc, openai.APIError):  # an error event inside a stream, a bad body
            return Unavailable(p, self._scrub(_provider_message(exc) or "provider error"))
        if isinstance(exc, TRANSPORT_ERRORS):
            return Unavailable(p, "the connection broke while reading the answer",
                               maybe_billed=True)
        if isinstance(exc, json.JSONDecodeError | pydantic.ValidationError):
            return Unavailable(p, "malformed response body", maybe_billed=True)
        return None

    def _status_error(self, exc: openai.APIStatusError) -> ProviderError:
        return error_for_status(self.provider, exc.status_code,
                                scrub(_provider_message(exc), self._api_key), self.key_env,
                                retry_after_seconds(exc.response.headers))

    def _scrub(self, text: str) -> str:
        return scrub(text, self._api_key)
