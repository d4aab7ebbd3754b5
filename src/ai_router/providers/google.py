"""Google Gemini adapter over the official `google-genai` SDK.

Everything Gemini-specific lives here: OpenAI-format request → generate_content
kwargs, GenerateContentResponse → Completion, stream chunks → Deltas, usage
normalisation and error mapping. Converters are pure; only `GoogleAdapter` does I/O.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import mimetypes
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pydantic
from google import genai
from google.genai import errors as genai_errors
from google.genai import types

from ..errors import BadRequest, MissingKey, Unavailable
from ..schema import ChatRequest, Completion, Delta, ToolCallDelta, Usage
from .base import Adapter, error_for_status, retry_after_seconds, scrub


def _transport_errors() -> tuple[type[BaseException], ...]:
    """The SDK talks through aiohttp when installed, else httpx2/httpx; a refused or
    broken connection surfaces as that library's own exception."""
    found: list[type[BaseException]] = [httpx.TransportError, asyncio.TimeoutError]
    try:
        import aiohttp
        found.append(aiohttp.ClientError)
    except ImportError:  # pragma: no cover
        pass
    try:
        import httpx2
        found.append(httpx2.TransportError)
    except ImportError:  # pragma: no cover
        pass
    return tuple(found)


TRANSPORT_ERRORS = _transport_errors()


def _refused_errors() -> tuple[type[BaseException], ...]:
    """The transport errors raised before the request left this machine: nothing billed.
    Any other one (a timeout, a body cut mid-way) may come after Google did the work."""
    found: list[type[BaseException]] = [httpx.ConnectError]
    for module, name in (("aiohttp", "ClientConnectorError"), ("httpx2", "ConnectError")):
        with contextlib.suppress(ImportError, AttributeError):
            found.append(getattr(__import__(module), name))
    return tuple(found)


REFUSED_ERRORS = _refused_errors()
FILTERED = {"SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY",
            "IMAGE_PROHIBITED_CONTENT", "IMAGE_RECITATION", "MODEL_ARMOR"}
# JSON-schema keywords Gemini's function declarations and response schemas reject
UNSUPPORTED_SCHEMA_KEYS = {"$schema", "$id", "$comment", "additionalProperties", "strict"}
# thinking budget per OpenAI reasoning_effort (Gemini 2.5 budgets, in tokens)
THINKING_BUDGETS = {"low": 1024, "medium": 8192, "high": 24576}


# ------------------------------------------------------------------ request


def to_gemini_kwargs(request: ChatRequest, model: str, max_tokens: int) -> dict[str, Any]:
    """The `generate_content` kwargs (model, contents, config) for an OpenAI-format
    request. Raises ValueError for content Gemini cannot take."""
    system, contents = to_gemini_contents(request.messages)
    config: dict[str, Any] = {
        "max_output_tokens": max_tokens,
        # the router owns retries and tool execution; the SDK must not re-send on its own
        "automatic_function_calling": {"disable": True},
        "automatic_continuation": False,
    }
    if system:
        config["system_instruction"] = system
    if request.temperature is not None:
        config["temperature"] = request.temperature
    if request.top_p is not None:
        config["top_p"] = request.top_p
    if request.stop:
        config["stop_sequences"] = [request.stop] if isinstance(request.stop, str) else request.stop
    if request.tools:
        config["tools"] = [{"function_declarations": [to_function_declaration(t)
                                                      for t in request.tools]}]
        if request.tool_choice is not None:
            config["tool_config"] = {"function_calling_config":
                                     to_function_calling_config(request.tool_choice)}
    fmt = request.response_format or {}
    if fmt.get("type") in ("json_object", "json_schema"):
        config["response_mime_type"] = "application/json"
        schema = (fmt.get("json_schema") or {}).get("schema")
        if schema:
            config["response_json_schema"] = clean_schema(schema)
    if budget := THINKING_BUDGETS.get(request.reasoning_effort or ""):
        # thinking counts against max_output_tokens, so leave room for the answer
        config["thinking_config"] = {"thinking_budget": min(budget, max_tokens // 2),
                                     "include_thoughts": True}
    # validated into SDK types so the SDK serialises every nested field to the wire names
    return {"model": model, "contents": [types.Content.model_validate(c) for c in contents],
            "config": types.GenerateContentConfig.model_validate(config)}


def to_gemini_contents(messages: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    """OpenAI messages → (system instruction, Gemini contents with roles user/model)."""
    system: list[str] = []
    contents: list[dict[str, Any]] = []
    names: dict[str, str] = {}  # tool call id → function name, for the results
    for m in messages:
        role = m.get("role")
        if role in ("system", "developer"):
            if text := content_text(m.get("content")):
                system.append(text)
            continue
        if role == "user":
            parts = user_parts(m.get("content"))
        elif role == "assistant":
            role, parts = "model", [*user_parts(m.get("content")),
                                    *(function_call_part(c, names) for c in
                                      m.get("tool_calls") or [])]
        elif role == "tool":
            role, parts = "user", [function_response_part(m, names)]
        else:
            raise ValueError(f"unsupported message role {role!r}")
        if not parts:
            continue
        if contents and contents[-1]["role"] == role:  # keep turns alternating
            contents[-1]["parts"].extend(parts)
        else:
            contents.append({"role": role, "parts": parts})
    return "\n\n".join(system), contents


def content_text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "".join(p.get("text", "") for p in content if p.get("type") == "text")


def user_parts(content: Any) -> list[dict[str, Any]]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"text": content}] if content else []
    parts = []
    for part in content:
        kind = part.get("type")
        if kind == "text":
            if part.get("text"):
                parts.append({"text": part["text"]})
        elif kind == "image_url":
            url = part["image_url"]
            parts.append(image_part(url["url"] if isinstance(url, dict) else url))
        else:
            raise ValueError(f"unsupported content part type {kind!r}")
    return parts


def image_part(url: str) -> dict[str, Any]:
    """OpenAI image_url → inline_data (data URLs) or file_data (other URLs)."""
    if url.startswith("data:"):
        header, _, data = url.partition(",")
        if ";base64" not in header:
            raise ValueError("image data URLs must be base64-encoded")
        try:
            raw = base64.b64decode(data, validate=True)
        except binascii.Error:
            raise ValueError("image data URL is not valid base64") from None
        return {"inline_data": {"mime_type": header[5:].split(";")[0] or "image/png",
                                "data": raw}}
    mime = mimetypes.guess_type(url.split("?")[0])[0] or "image/jpeg"
    return {"file_data": {"file_uri": url, "mime_type": mime}}


def function_call_part(call: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    fn = call.get("function") or {}
    names[call.get("id") or ""] = fn.get("name")
    arguments = fn.get("arguments") or "{}"
    try:
        args = json.loads(arguments) if isinstance(arguments, str) else arguments
    except json.JSONDecodeError as e:
        raise ValueError(f"tool call arguments are not valid JSON: {e.msg}") from None
    return {"function_call": {"name": fn.get("name"),
                              "args": args if isinstance(args, dict) else {"value": args}}}


def function_response_part(message: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    """A tool result. Gemini names the function (OpenAI only gives the call id) and wants
    an object as the response."""
    call_id = message.get("tool_call_id") or ""
    name = names.get(call_id) or message.get("name")  # legacy clients name the function
    if not name:
        raise ValueError(f"tool result {call_id!r} answers no earlier tool call")
    text = content_text(message.get("content"))
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        value = text
    response = value if isinstance(value, dict) else {"result": value}
    return {"function_response": {"name": name, "response": response}}


def to_function_declaration(tool: dict[str, Any]) -> dict[str, Any]:
    fn = tool.get("function") or {}
    out: dict[str, Any] = {"name": fn["name"], "description": fn.get("description", "")}
    if fn.get("parameters"):
        out["parameters_json_schema"] = clean_schema(fn["parameters"])
    return out


def clean_schema(schema: Any) -> Any:
    """A JSON schema without the keywords Gemini rejects, recursively. Maps of names to
    schemas (properties, $defs) keep every name, even one spelt like a keyword."""
    if isinstance(schema, list):
        return [clean_schema(v) for v in schema]
    if not isinstance(schema, dict):
        return schema
    out = {}
    for key, value in schema.items():
        if key in UNSUPPORTED_SCHEMA_KEYS:
            continue
        if key in ("properties", "$defs", "definitions") and isinstance(value, dict):
            out[key] = {name: clean_schema(sub) for name, sub in value.items()}
        else:
            out[key] = clean_schema(value)
    return out


def to_function_calling_config(choice: Any) -> dict[str, Any]:
    """OpenAI tool_choice → Gemini function_calling_config."""
    if isinstance(choice, dict):
        return {"mode": "ANY", "allowed_function_names": [(choice.get("function") or {})["name"]]}
    return {"mode": {"none": "NONE", "required": "ANY"}.get(choice, "AUTO")}


# ------------------------------------------------------------------ response


def to_usage(meta: Any) -> Usage | None:
    """promptTokenCount already includes cached tokens; candidatesTokenCount excludes
    thoughts, which are billed as output."""
    if meta is None:
        return None
    thoughts = meta.thoughts_token_count or 0
    return Usage(input_tokens=(meta.prompt_token_count or 0)
                 + (meta.tool_use_prompt_token_count or 0),
                 cache_read_tokens=meta.cached_content_token_count or 0,
                 output_tokens=(meta.candidates_token_count or 0) + thoughts,
                 reasoning_tokens=thoughts)


def finish_reason(reason: Any, has_tool_calls: bool) -> str:
    name = getattr(reason, "value", reason) or "STOP"
    if name in FILTERED:
        return "content_filter"
    if name == "MAX_TOKENS":
        return "length"
    return "tool_calls" if has_tool_calls else "stop"


def split_parts(parts: list[Any], first_call: int = 0) -> tuple[str, str, list[dict[str, Any]]]:
    """Parts → (text, reasoning, OpenAI tool calls). Gemini sends no call ids, so they are
    synthesised from the call's position in the reply: call_0, call_1, …"""
    text, reasoning, calls = [], [], []
    for part in parts or []:
        if part.function_call is not None:
            fc = part.function_call
            calls.append({"id": fc.id or f"call_{first_call + len(calls)}", "type": "function",
                          "function": {"name": fc.name, "arguments": json.dumps(fc.args or {})}})
        elif part.text:
            (reasoning if part.thought else text).append(part.text)
    return "".join(text), "".join(reasoning), calls


def from_gemini_response(response: Any) -> Completion:
    candidate = (response.candidates or [None])[0]
    if candidate is None:  # the prompt itself was blocked
        return Completion(finish_reason="content_filter", usage=to_usage(response.usage_metadata),
                          model=response.model_version or "")
    parts = candidate.content.parts if candidate.content else []
    text, reasoning, calls = split_parts(parts)
    return Completion(text=text, reasoning=reasoning, tool_calls=calls,
                      finish_reason=finish_reason(candidate.finish_reason, bool(calls)),
                      usage=to_usage(response.usage_metadata),
                      model=response.model_version or "")


class StreamTranslator:
    """Gemini stream chunks → Deltas. Each chunk is a whole GenerateContentResponse;
    function calls arrive complete, and the last chunk's usageMetadata is the total."""

    def __init__(self) -> None:
        self.calls = 0
        self.reason: Any = None
        self.blocked = False
        self.usage: Any = None

    def feed(self, chunk: Any) -> list[Delta]:
        if chunk.usage_metadata is not None:
            self.usage = chunk.usage_metadata
        if not chunk.candidates:
            self.blocked = self.blocked or bool(chunk.prompt_feedback
                                                and chunk.prompt_feedback.block_reason)
            return []
        candidate = chunk.candidates[0]
        self.reason = candidate.finish_reason or self.reason
        text, reasoning, calls = split_parts(
            candidate.content.parts if candidate.content else [], self.calls)
        tool_deltas = [ToolCallDelta(index=self.calls + i, id=c["id"],
                                     name=c["function"]["name"],
                                     arguments=c["function"]["arguments"])
                       for i, c in enumerate(calls)]
        self.calls += len(calls)
        if not (text or reasoning or tool_deltas):
            return []
        return [Delta(text=text, reasoning=reasoning, tool_calls=tool_deltas)]

    @property
    def finished(self) -> bool:
        return self.reason is not None or self.blocked

    def final(self) -> Delta:
        reason = "content_filter" if self.blocked else finish_reason(self.reason, self.calls > 0)
        return Delta(finish_reason=reason, usage=to_usage(self.usage))


# ------------------------------------------------------------------ errors


def retry_delay(error: genai_errors.APIError) -> float | None:
    """Retry-After, else the google.rpc.RetryInfo detail ("37s") of the error body."""
    from_header = retry_after_seconds(getattr(error.response, "headers", None))
    if from_header is not None:
        return from_header
    for detail in _error_details(error):
        if str(detail.get("@type", "")).endswith("google.rpc.RetryInfo"):
            try:
                return float(str(detail.get("retryDelay", "")).rstrip("s"))
            except ValueError:
                return None
    return None


def _error_details(error: genai_errors.APIError) -> list[dict[str, Any]]:
    body = error.details if isinstance(error.details, dict) else {}
    details = (body.get("error") or body).get("details") or []
    return [d for d in details if isinstance(d, dict)]


def error_reason(error: genai_errors.APIError) -> str | None:
    """The google.rpc.ErrorInfo reason (a stable code such as API_KEY_INVALID)."""
    for detail in _error_details(error):
        if str(detail.get("@type", "")).endswith("google.rpc.ErrorInfo"):
            return detail.get("reason")
    return None


@contextmanager
def map_errors(provider: str, api_key: str | None, key_env: str) -> Iterator[None]:
    """Translate SDK and transport exceptions into ai_router.errors, by type and status."""
    try:
        yield
    except genai_errors.APIError as e:
        status = e.code if isinstance(e.code, int) else 500
        if status == 400 and error_reason(e) == "API_KEY_INVALID":
            status = 401  # Gemini reports a bad key as a 400 with this ErrorInfo reason
        detail = scrub(e.message or e.status or type(e).__name__, api_key)
        raise error_for_status(provider, status, detail, key_env, retry_delay(e)) from e
    except TRANSPORT_ERRORS as e:
        raise Unavailable(provider, f"connection failed or timed out ({type(e).__name__}); "
                          "check base_url, the network and timeout_s",
                          maybe_billed=not isinstance(e, REFUSED_ERRORS)) from e
    except (ValueError, pydantic.ValidationError) as e:  # JSONDecodeError, unparseable reply
        raise Unavailable(provider, "returned a malformed response body",
                          maybe_billed=True) from e


# ------------------------------------------------------------------ adapter


class GoogleAdapter(Adapter):
    kind = "google"

    @property
    def key_env(self) -> str:
        return self.config.key_env or "GEMINI_API_KEY"

    def client(self) -> genai.Client:
        if self._client is None:
            if not self._api_key:
                raise MissingKey(self.name, self.key_env)
            # attempts=1: no SDK retries (the router falls back itself); timeout is in ms;
            # v1beta pinned: the SDK's default moved to v1, which lags on features used
            # here (parametersJsonSchema, responseJsonSchema, thinkingConfig)
            options = types.HttpOptions(base_url=self.config.base_url, api_version="v1beta",
                                        timeout=int(self.config.timeout_s * 1000),
                                        retry_options=types.HttpRetryOptions(attempts=1))
            self._client = genai.Client(api_key=self._api_key, http_options=options)
        return self._client

    def _kwargs(self, request: ChatRequest, model: str, max_tokens: int) -> dict[str, Any]:
        try:
            return to_gemini_kwargs(request, model, max_tokens)
        except (ValueError, KeyError, TypeError) as e:
            raise BadRequest(self.name, f"cannot translate the request: {e}") from e

    def _errors(self):
        return map_errors(self.name, self._api_key, self.key_env)

    async def complete(self, request: ChatRequest, model: str, max_tokens: int) -> Completion:
        kwargs = self._kwargs(request, model, max_tokens)
        with self._errors():
            response = await self.client().aio.models.generate_content(**kwargs)
            return from_gemini_response(response)

    async def stream(self, request: ChatRequest, model: str,
                     max_tokens: int) -> AsyncIterator[Delta]:
        kwargs = self._kwargs(request, model, max_tokens)
        translator = StreamTranslator()
        with self._errors():
            chunks = await self.client().aio.models.generate_content_stream(**kwargs)
            async for chunk in chunks:
                for delta in translator.feed(chunk):
                    yield delta
        if not translator.finished:
            raise Unavailable(self.name, "the stream ended before a finish reason")
        yield translator.final()

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aio.aclose()
