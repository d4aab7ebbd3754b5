"""The `ollama` kind: Ollama's native API (/api/chat), plus what `doctor` needs to
check for a model and pull it with progress.

Ollama differs from OpenAI's dialect in ways the converters below absorb: tool-call
arguments are JSON objects (not strings), tool results name the tool instead of a
call id, images are bare base64 strings on the message, and options such as the
output cap live in `options`.

The SDK's `Tool` model keeps only type/description/enum/items of each parameter, so it
would drop nested object properties (and `anyOf`, `format`, `additionalProperties`…)
before sending, and the local model would guess them (ollama-python #724, fix open as
#725; the Ollama server takes nested schemas). `_keep_whole_tool_schemas` lets those
models keep what they do not declare, once, at import.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import aclosing
from typing import Any

import httpx
import ollama
import pydantic

from ..errors import AuthFailed, BadRequest, ProviderError, RateLimited, Unavailable
from ..schema import ChatRequest, Completion, Delta, ToolCallDelta, Usage
from .base import Adapter, ErrorMap

KEEP_ALIVE = "30m"  # keep the model loaded between requests; reloading costs seconds


def _keep_whole_tool_schemas() -> None:
    """Let the SDK's parameter models keep the JSON-schema keys they do not declare, so a
    tool's schema reaches Ollama whole (see the module docstring). Pydantic serializes
    kept extras as they came."""
    from ollama._types import ChatRequest as OllamaChatRequest  # the body the SDK sends

    tool = ollama.Tool
    for model in (tool.Function.Parameters.Property, tool.Function.Parameters):
        model.model_config["extra"] = "allow"
    for model in (tool.Function.Parameters.Property, tool.Function.Parameters, tool.Function,
                  tool, OllamaChatRequest):
        model.model_rebuild(force=True)


_keep_whole_tool_schemas()


class OllamaAdapter(Adapter):
    kind = "ollama"

    @property
    def client(self) -> ollama.AsyncClient:
        if self._client is None:
            headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else None
            self._client = ollama.AsyncClient(host=self.config.base_url,
                                              timeout=self.config.timeout_s, headers=headers)
        return self._client

    async def complete(self, request: ChatRequest, model: str, max_tokens: int) -> Completion:
        params = self._params(request, model, max_tokens)
        async with self._errors():
            response = await self.client.chat(**params, stream=False)
        return completion_from_ollama(response)

    async def stream(self, request: ChatRequest, model: str,
                     max_tokens: int) -> AsyncIterator[Delta]:
        params = self._params(request, model, max_tokens)
        tool_index, done = 0, False
        async with self._errors():
            parts = await self.client.chat(**params, stream=True)
            async with aclosing(parts):  # release the connection if the caller stops early
                async for part in parts:
                    delta = delta_from_ollama(part, tool_index)
                    tool_index += len(delta.tool_calls)
                    if part.done:
                        done = True
                        delta.finish_reason = finish_reason(part.done_reason, tool_index > 0)
                    if delta.text or delta.reasoning or delta.tool_calls or part.done:
                        yield delta
        if not done:
            raise Unavailable(self.name, "the stream ended before the answer was finished")

    async def has_model(self, model: str) -> bool:
        """Whether the model is installed (Ollama resolves a bare name to ":latest")."""
        try:
            async with self._errors():
                await self.client.show(model)
        except BadRequest as e:
            if e.status == 404:
                return False
            raise
        return True

    async def pull(self, model: str, on_progress: Callable[[int, int], None]) -> None:
        """Download a model, reporting (completed, total) bytes summed over its layers."""
        totals: dict[str, int] = {}
        completed: dict[str, int] = {}
        status = None
        # Ollama reports a failed pull (unknown model) inside the stream, with no status code
        async with self._errors(stream_error=BadRequest):
            progress = await self.client.pull(model, stream=True)
            async with aclosing(progress):
                async for p in progress:
                    status = p.status
                    if p.digest and p.total:
                        totals[p.digest], completed[p.digest] = p.total, p.completed or 0
                        on_progress(sum(completed.values()), sum(totals.values()))
        if status != "success":
            raise Unavailable(self.name, f"pulling {model} stopped before it finished")

    def _params(self, request: ChatRequest, model: str, max_tokens: int) -> dict[str, Any]:
        try:
            return chat_params(request, model, max_tokens)
        except ValueError as e:
            raise BadRequest(self.name, str(e)) from e

    def _errors(self, stream_error: type[ProviderError] = Unavailable) -> OllamaErrorMap:
        return OllamaErrorMap(self.name, self.config.timeout_s, self._api_key, stream_error)


# ---- request converters (pure) ----------------------------------------------------------

def chat_params(request: ChatRequest, model: str, max_tokens: int) -> dict[str, Any]:
    """`AsyncClient.chat` keyword arguments for an OpenAI-format request.
    Raises ValueError for what Ollama cannot take (remote image URLs, bad arguments)."""
    options: dict[str, Any] = {"num_predict": max_tokens, "temperature": request.temperature,
                               "top_p": request.top_p}
    if request.stop is not None:
        options["stop"] = [request.stop] if isinstance(request.stop, str) else request.stop
    params: dict[str, Any] = {
        "model": model, "messages": ollama_messages(request.messages),
        "options": {k: v for k, v in options.items() if v is not None},
        "keep_alive": KEEP_ALIVE}
    if request.tools and request.tool_choice != "none":
        params["tools"] = request.tools
    if (fmt := ollama_format(request.response_format)) is not None:
        params["format"] = fmt
    return params


def ollama_format(response_format: dict[str, Any] | None) -> str | dict[str, Any] | None:
    """json_object → "json"; json_schema → the schema itself; anything else → free text."""
    kind = (response_format or {}).get("type")
    if kind == "json_object":
        return "json"
    if kind == "json_schema":
        return response_format["json_schema"].get("schema") or "json"
    return None


def ollama_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    tool_names: dict[str, str] = {}  # OpenAI tool_call_id -> function name
    out = []
    for m in messages:
        role = "system" if m.get("role") == "developer" else m.get("role", "user")
        text, images = split_content(m.get("content"))
        msg: dict[str, Any] = {"role": role, "content": text}
        if images:
            msg["images"] = images
        if m.get("tool_calls"):
            msg["tool_calls"] = []
            for call in m["tool_calls"]:
                fn = call["function"]
                tool_names[call.get("id", "")] = fn["name"]
                msg["tool_calls"].append({"function": {
                    "name": fn["name"], "arguments": parse_arguments(fn.get("arguments"))}})
        if role == "tool":
            msg["tool_name"] = m.get("name") or tool_names.get(m.get("tool_call_id", ""), "")
        out.append(msg)
    return out


def split_content(content: Any) -> tuple[str, list[str]]:
    """OpenAI content (string or parts) → (text, base64 images)."""
    if content is None or isinstance(content, str):
        return content or "", []
    texts, images = [], []
    for part in content:
        if part.get("type") == "text":
            texts.append(part.get("text", ""))
        elif part.get("type") == "image_url":
            image = part["image_url"]
            images.append(data_url_base64(image["url"] if isinstance(image, dict) else image))
    return "\n".join(texts), images


def data_url_base64(url: str) -> str:
    head, sep, data = url.partition(",")
    if not (sep and head.startswith("data:") and head.endswith(";base64")):
        raise ValueError("Ollama takes images only as base64 data: URLs "
                         "(data:image/png;base64,...), not links")
    return data


def parse_arguments(arguments: Any) -> dict[str, Any]:
    if isinstance(arguments, dict):
        return arguments
    try:
        parsed = json.loads(arguments) if arguments else {}
    except json.JSONDecodeError as e:
        raise ValueError("a tool call's arguments are not valid JSON") from e
    if not isinstance(parsed, dict):
        raise ValueError("a tool call's arguments must be a JSON object")
    return parsed


# ---- response converters (pure) ---------------------------------------------------------

def openai_tool_calls(calls: Any) -> list[dict[str, Any]]:
    """Ollama tool calls (object arguments, no ids) → OpenAI shape with JSON strings."""
    return [{"id": f"call_{uuid.uuid4().hex[:24]}", "type": "function",
             "function": {"name": c.function.name,
                          "arguments": json.dumps(dict(c.function.arguments or {}))}}
            for c in calls or []]


def finish_reason(done_reason: str | None, called_tools: bool) -> str:
    if called_tools:
        return "tool_calls"
    return "length" if done_reason == "length" else "stop"


def usage_from_ollama(response: Any) -> Usage | None:
    prompt, output = response.prompt_eval_count, response.eval_count
    if prompt is None and output is None:
        return None
    return Usage(input_tokens=prompt or 0, output_tokens=output or 0)


def completion_from_ollama(response: Any) -> Completion:
    calls = openai_tool_calls(response.message.tool_calls)
    return Completion(text=response.message.content or "",
                      reasoning=response.message.thinking or "",
                      tool_calls=calls,
                      finish_reason=finish_reason(response.done_reason, bool(calls)),
                      usage=usage_from_ollama(response), model=response.model or "")


def delta_from_ollama(part: Any, first_tool_index: int) -> Delta:
    """One streamed object → Delta. Ollama sends each tool call whole, so its arguments
    travel in a single fragment; `first_tool_index` continues numbering across parts."""
    calls = openai_tool_calls(part.message.tool_calls)
    return Delta(
        text=part.message.content or "", reasoning=part.message.thinking or "",
        tool_calls=[ToolCallDelta(index=first_tool_index + i, id=c["id"],
                                  name=c["function"]["name"],
                                  arguments=c["function"]["arguments"])
                    for i, c in enumerate(calls)],
        usage=usage_from_ollama(part) if part.done else None)


# ---- errors -----------------------------------------------------------------------------

class OllamaErrorMap(ErrorMap):
    """Maps SDK and transport exceptions to `ai_router.errors` by type and status code."""

    def __init__(self, provider: str, timeout_s: float, api_key: str | None,
                 stream_error: type[ProviderError]):
        self.provider, self.timeout_s, self.stream_error = provider, timeout_s, stream_error
        self._api_key = api_key

    def map(self, exc: Exception) -> ProviderError | None:
        p = self.provider
        if isinstance(exc, ollama.ResponseError):
            return self._status_error(exc)
        if isinstance(exc, httpx.TimeoutException):
            return Unavailable(p, f"no answer within {self.timeout_s:g}s", maybe_billed=True)
        if isinstance(exc, ConnectionError | httpx.ConnectError):  # the SDK re-raises as builtin
            return Unavailable(p, "cannot connect to Ollama; start it with `ollama serve` or "
                                  "check the provider's base_url")
        if isinstance(exc, httpx.TransportError):
            return Unavailable(p, "the connection broke while reading the answer",
                               maybe_billed=True)
        if isinstance(exc, json.JSONDecodeError | pydantic.ValidationError):
            return Unavailable(p, "malformed response body", maybe_billed=True)
        return None

    def _status_error(self, exc: ollama.ResponseError) -> ProviderError:
        p, status = self.provider, exc.status_code
        detail = str(exc.error)[:300]
        if self._api_key:
            detail = detail.replace(self._api_key, "***")
        if status < 0:  # an error object inside a 200 stream
            return self.stream_error(p, detail)
        if status == 404:
            return BadRequest(p, f"{detail}; install the model with `ollama pull`", status)
        if status == 429:
            return RateLimited(p, detail, status)
        if status in (401, 403):
            return AuthFailed(p, detail, status)
        if status >= 500:
            return Unavailable(p, detail, status)
        return BadRequest(p, detail, status)
