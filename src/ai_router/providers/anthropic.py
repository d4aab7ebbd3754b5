"""Anthropic (Claude) adapter over the official `anthropic` SDK.

Everything Anthropic-specific lives here: OpenAI-format request → Messages API
kwargs, Message → Completion, raw stream events → Deltas, usage normalisation and
error mapping. The converters are pure functions; only `AnthropicAdapter` does I/O.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

import anthropic
import httpx
import pydantic

from ..errors import BadRequest, MissingKey, Unavailable
from ..schema import ChatRequest, Completion, Delta, ToolCallDelta, Usage
from .base import Adapter, error_for_status, retry_after_seconds, scrub

try:  # the SDK talks through httpx2; a stream cut mid-body surfaces as its raw error
    import httpx2
    _TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (httpx.TransportError,
                                                          httpx2.TransportError)
except ImportError:  # pragma: no cover - older SDKs use plain httpx
    _TRANSPORT_ERRORS = (httpx.TransportError,)

FINISH_REASONS = {"end_turn": "stop", "stop_sequence": "stop", "pause_turn": "stop",
                  "max_tokens": "length", "model_context_window_exceeded": "length",
                  "tool_use": "tool_calls", "refusal": "content_filter"}
JSON_INSTRUCTION = "Reply with a single valid JSON object and nothing else."
# share of the output cap given to extended thinking, per OpenAI reasoning_effort
THINKING_SHARE = {"low": 0.25, "medium": 0.5, "high": 0.75, "xhigh": 0.8, "max": 0.8}
MIN_THINKING_BUDGET = 1024  # the API's floor


# ------------------------------------------------------------------ request


def to_anthropic_kwargs(request: ChatRequest, model: str, max_tokens: int) -> dict[str, Any]:
    """The `messages.create` kwargs for an OpenAI-format request. Raises ValueError
    for content Anthropic cannot take."""
    system, turns = split_system(request.messages)
    kwargs: dict[str, Any] = {"model": model, "max_tokens": max_tokens,
                              "messages": to_anthropic_messages(turns)}
    fmt = request.response_format or {}
    if fmt.get("type") == "json_object":
        system.append(JSON_INSTRUCTION)
    elif fmt.get("type") == "json_schema":
        schema = (fmt.get("json_schema") or {}).get("schema") or {"type": "object"}
        kwargs["output_config"] = {"format": {"type": "json_schema",
                                              "schema": anthropic.transform_schema(schema)}}
    if system:
        kwargs["system"] = "\n\n".join(system)
    if request.tools:
        kwargs["tools"] = [to_anthropic_tool(t) for t in request.tools]
        choice = to_anthropic_tool_choice(request.tool_choice,
                                          (request.model_extra or {}).get("parallel_tool_calls"))
        if choice:
            kwargs["tool_choice"] = choice
    if request.stop:
        kwargs["stop_sequences"] = [request.stop] if isinstance(request.stop, str) else request.stop
    if thinking := thinking_config(request, max_tokens):
        kwargs["thinking"] = thinking
    # temperature/top_p are deliberately not sent: the API version this SDK pins
    # (anthropic-version 2026-10-21) refuses any sampling parameter with a 400.
    return kwargs


def split_system(messages: list[dict[str, Any]]) -> tuple[list[str], list[dict[str, Any]]]:
    """System/developer texts (Anthropic takes them top-level) and the other messages."""
    system, rest = [], []
    for m in messages:
        if m.get("role") in ("system", "developer"):
            text = content_text(m.get("content"))
            if text:
                system.append(text)
        else:
            rest.append(m)
    return system, rest


def to_anthropic_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """User/assistant/tool messages → alternating Anthropic turns of content blocks."""
    turns: list[dict[str, Any]] = []
    for m in messages:
        role = m.get("role")
        if role == "user":
            blocks = content_blocks(m.get("content"))
        elif role == "assistant":
            blocks = [*content_blocks(m.get("content")),
                      *(tool_use_block(c) for c in m.get("tool_calls") or [])]
        elif role == "tool":
            role, blocks = "user", [tool_result_block(m)]
        else:
            raise ValueError(f"unsupported message role {role!r}")
        if not blocks:
            continue  # empty content is rejected by the API and carries nothing
        if turns and turns[-1]["role"] == role:  # the API needs alternating roles
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    return turns


def content_text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "".join(p.get("text", "") for p in content if p.get("type") == "text")


def content_blocks(content: Any) -> list[dict[str, Any]]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    blocks = []
    for part in content:
        kind = part.get("type")
        if kind == "text":
            if part.get("text"):
                blocks.append({"type": "text", "text": part["text"]})
        elif kind == "image_url":
            url = part["image_url"]
            blocks.append(image_block(url["url"] if isinstance(url, dict) else url))
        else:
            raise ValueError(f"unsupported content part type {kind!r}")
    return blocks


def image_block(url: str) -> dict[str, Any]:
    """OpenAI image_url (data URL or http URL) → Anthropic image block."""
    if url.startswith("data:"):
        header, _, data = url.partition(",")
        media_type = header[5:].split(";")[0] or "image/png"
        if ";base64" not in header:
            raise ValueError("image data URLs must be base64-encoded")
        return {"type": "image",
                "source": {"type": "base64", "media_type": media_type, "data": data}}
    return {"type": "image", "source": {"type": "url", "url": url}}


def tool_use_block(call: dict[str, Any]) -> dict[str, Any]:
    fn = call.get("function") or {}
    return {"type": "tool_use", "id": call.get("id"), "name": fn.get("name"),
            "input": parse_arguments(fn.get("arguments"))}


def parse_arguments(arguments: Any) -> dict[str, Any]:
    """OpenAI carries tool arguments as a JSON string; Anthropic wants the object."""
    if isinstance(arguments, dict):
        return arguments
    if not arguments:
        return {}
    try:
        value = json.loads(arguments)
    except json.JSONDecodeError as e:
        raise ValueError(f"tool call arguments are not valid JSON: {e.msg}") from None
    return value if isinstance(value, dict) else {"value": value}


def tool_result_block(message: dict[str, Any]) -> dict[str, Any]:
    return {"type": "tool_result", "tool_use_id": message.get("tool_call_id"),
            "content": content_text(message.get("content"))}


def to_anthropic_tool(tool: dict[str, Any]) -> dict[str, Any]:
    fn = tool.get("function") or {}
    out = {"name": fn["name"],
           "input_schema": fn.get("parameters") or {"type": "object", "properties": {}}}
    if fn.get("description"):
        out["description"] = fn["description"]
    return out


def to_anthropic_tool_choice(choice: Any, parallel: bool | None = None) -> dict[str, Any] | None:
    """OpenAI tool_choice ("auto"/"none"/"required"/named function) → Anthropic's."""
    if choice is None and parallel is not False:
        return None
    if isinstance(choice, dict):
        out: dict[str, Any] = {"type": "tool", "name": (choice.get("function") or {})["name"]}
    else:
        out = {"type": {"none": "none", "required": "any"}.get(choice or "auto", "auto")}
    if parallel is False and out["type"] != "none":
        out["disable_parallel_tool_use"] = True
    return out


def thinking_config(request: ChatRequest, max_tokens: int) -> dict[str, Any] | None:
    """reasoning_effort → an extended-thinking budget, when the cap leaves room for one.

    Skipped where the API would refuse it: forced tool use, and continuing after a
    tool result (that needs the earlier turn's signed thinking block, which the OpenAI
    format cannot carry)."""
    share = THINKING_SHARE.get(request.reasoning_effort or "")
    forced = request.tool_choice == "required" or isinstance(request.tool_choice, dict)
    after_tool = bool(request.messages) and request.messages[-1].get("role") == "tool"
    if share is None or forced or after_tool:
        return None
    budget = max(MIN_THINKING_BUDGET, int(max_tokens * share))
    if budget >= max_tokens:
        return None
    return {"type": "enabled", "budget_tokens": budget}


# ------------------------------------------------------------------ response


def to_usage(usage: Any) -> Usage:
    """Anthropic's input_tokens excludes cache reads and writes; ours includes them."""
    read = getattr(usage, "cache_read_input_tokens", None) or 0
    write = getattr(usage, "cache_creation_input_tokens", None) or 0
    details = getattr(usage, "output_tokens_details", None)
    return Usage(input_tokens=(getattr(usage, "input_tokens", None) or 0) + read + write,
                 cache_read_tokens=read, cache_write_tokens=write,
                 output_tokens=usage.output_tokens or 0,  # already includes thinking
                 reasoning_tokens=getattr(details, "thinking_tokens", None) or 0)


def from_anthropic_message(message: Any) -> Completion:
    text, reasoning, calls = [], [], []
    for block in message.content:
        if block.type == "text":
            text.append(block.text)
        elif block.type == "thinking":
            reasoning.append(block.thinking)
        elif block.type == "tool_use":
            calls.append({"id": block.id, "type": "function",
                          "function": {"name": block.name,
                                       "arguments": json.dumps(block.input)}})
    return Completion(text="".join(text), reasoning="".join(reasoning), tool_calls=calls,
                      finish_reason=FINISH_REASONS.get(message.stop_reason or "", "stop"),
                      usage=to_usage(message.usage), model=message.model)


class StreamTranslator:
    """Raw Anthropic stream events → Deltas. Feed events in order; `finished` tells
    whether the stream reached message_stop."""

    def __init__(self) -> None:
        self.usage: dict[str, Any] = {}
        self.stop_reason: str | None = None
        self.finished = False
        self._tools: dict[int, int] = {}  # content block index → OpenAI tool call index
        self._has_args: set[int] = set()

    def feed(self, event: Any) -> list[Delta]:
        kind = event.type
        if kind == "message_start":
            self.usage = event.message.usage.model_dump()
        elif kind == "content_block_start" and event.content_block.type == "tool_use":
            block = event.content_block
            self._tools[event.index] = n = len(self._tools)
            args = json.dumps(block.input) if block.input else ""
            if args:
                self._has_args.add(event.index)
            return [Delta(tool_calls=[ToolCallDelta(index=n, id=block.id, name=block.name,
                                                    arguments=args)])]
        elif kind == "content_block_delta":
            return self._delta(event.index, event.delta)
        elif kind == "content_block_stop" and event.index in self._tools:
            if event.index not in self._has_args:  # a tool without parameters
                return [Delta(tool_calls=[ToolCallDelta(index=self._tools[event.index],
                                                        arguments="{}")])]
        elif kind == "message_delta":
            self.stop_reason = event.delta.stop_reason or self.stop_reason
            # cumulative counts: later non-null values replace earlier ones
            self.usage.update(event.usage.model_dump(exclude_none=True))
        elif kind == "message_stop":
            self.finished = True
            return [Delta(finish_reason=FINISH_REASONS.get(self.stop_reason or "", "stop"),
                          usage=to_usage(anthropic.types.Usage.model_validate(self.usage)))]
        return []

    def _delta(self, index: int, delta: Any) -> list[Delta]:
        if delta.type == "text_delta":
            return [Delta(text=delta.text)] if delta.text else []
        if delta.type == "thinking_delta":
            return [Delta(reasoning=delta.thinking)] if delta.thinking else []
        if delta.type == "input_json_delta" and index in self._tools and delta.partial_json:
            self._has_args.add(index)
            return [Delta(tool_calls=[ToolCallDelta(index=self._tools[index],
                                                    arguments=delta.partial_json)])]
        return []  # signatures, citations


# ------------------------------------------------------------------ errors


# mid-stream `event: error` arrives with HTTP 200; its body's error type says what it is
_STREAM_ERROR_STATUS = {"rate_limit_error": 429, "authentication_error": 401,
                        "permission_error": 403, "invalid_request_error": 400,
                        "not_found_error": 404, "overloaded_error": 529, "api_error": 500}


@contextmanager
def map_errors(provider: str, api_key: str | None, key_env: str) -> Iterator[None]:
    """Translate SDK and transport exceptions into ai_router.errors, by type and status."""
    try:
        yield
    except anthropic.APIStatusError as e:
        status = e.status_code
        if status < 400:
            status = _STREAM_ERROR_STATUS.get(str(e.type or ""), 500)
        detail = scrub(e.api_message or type(e).__name__, api_key)
        raise error_for_status(provider, status, detail, key_env,
                               retry_after_seconds(e.response.headers)) from e
    except anthropic.APITimeoutError as e:
        raise Unavailable(provider, "timed out; raise timeout_s in models.toml if the "
                          "model needs longer", maybe_billed=True) from e
    except anthropic.APIConnectionError as e:
        raise Unavailable(provider, "cannot connect; check base_url and the network") from e
    except (anthropic.APIResponseValidationError, json.JSONDecodeError,
            pydantic.ValidationError) as e:
        raise Unavailable(provider, "returned a malformed response body",
                          maybe_billed=True) from e
    except _TRANSPORT_ERRORS as e:
        raise Unavailable(provider, f"connection broke mid-response ({type(e).__name__})",
                          maybe_billed=True) from e


# ------------------------------------------------------------------ adapter


class AnthropicAdapter(Adapter):
    kind = "anthropic"

    @property
    def key_env(self) -> str:
        return self.config.key_env or "ANTHROPIC_API_KEY"

    def client(self) -> anthropic.AsyncAnthropic:
        if self._client is None:
            if not self._api_key:
                raise MissingKey(self.name, self.key_env)
            # no SDK retries: the router falls back to the next candidate itself
            self._client = anthropic.AsyncAnthropic(
                api_key=self._api_key, base_url=self.config.base_url,
                timeout=self.config.timeout_s, max_retries=0)
        return self._client

    def _kwargs(self, request: ChatRequest, model: str, max_tokens: int) -> dict[str, Any]:
        try:
            return to_anthropic_kwargs(request, model, max_tokens)
        except (ValueError, KeyError, TypeError) as e:
            raise BadRequest(self.name, f"cannot translate the request: {e}") from e

    def _errors(self):
        return map_errors(self.name, self._api_key, self.key_env)

    async def complete(self, request: ChatRequest, model: str, max_tokens: int) -> Completion:
        kwargs = self._kwargs(request, model, max_tokens)
        with self._errors():
            message = await self.client().messages.create(**kwargs)
            return from_anthropic_message(message)

    async def stream(self, request: ChatRequest, model: str,
                     max_tokens: int) -> AsyncIterator[Delta]:
        kwargs = self._kwargs(request, model, max_tokens)
        translator = StreamTranslator()
        with self._errors():
            events = await self.client().messages.create(**kwargs, stream=True)
            async with events:
                async for event in events:
                    for delta in translator.feed(event):
                        yield delta
        if not translator.finished:
            raise Unavailable(self.name, "the stream ended before message_stop")
