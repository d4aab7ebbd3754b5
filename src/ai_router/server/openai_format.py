"""Pure converters from the router's results to OpenAI chat-completions bodies.

Non-streamed: one `chat.completion`. Streamed: `chat.completion.chunk` objects framed
as SSE events (`data: {...}\\n\\n`), ending with `data: [DONE]`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .. import fastjson
from ..schema import Delta, ToolCallDelta, Usage

if TYPE_CHECKING:
    from ..router import Routed

SSE_DONE = b"data: [DONE]\n\n"


def completion_id(request_id: str) -> str:
    return f"chatcmpl-{request_id}"


def usage_body(usage: Usage) -> dict[str, Any]:
    """OpenAI usage: prompt_tokens already include cached ones, completion_tokens the
    reasoning ones (the same convention as schema.Usage)."""
    return {"prompt_tokens": usage.input_tokens, "completion_tokens": usage.output_tokens,
            "total_tokens": usage.total_tokens,
            "prompt_tokens_details": {"cached_tokens": usage.cache_read_tokens},
            "completion_tokens_details": {"reasoning_tokens": usage.reasoning_tokens}}


def completion_body(routed: Routed, created: int) -> dict[str, Any]:
    c = routed.completion
    message: dict[str, Any] = {"role": "assistant",
                               "content": c.text if c.text or not c.tool_calls else None}
    if c.tool_calls:
        message["tool_calls"] = [
            {"id": t.get("id"), "type": t.get("type", "function"),
             "function": {"name": t["function"]["name"],
                          "arguments": t["function"].get("arguments") or ""}}
            for t in c.tool_calls]
    if c.reasoning:
        message["reasoning_content"] = c.reasoning
    return {"id": completion_id(routed.request_id), "object": "chat.completion",
            "created": created, "model": routed.model.ref,
            "choices": [{"index": 0, "message": message, "logprobs": None,
                         "finish_reason": c.finish_reason}],
            "usage": usage_body(routed.usage)}


def tool_call_delta(call: ToolCallDelta) -> dict[str, Any]:
    """A tool-call fragment; id, type and name ride on the fragment that opens the call."""
    function: dict[str, Any] = {"arguments": call.arguments}
    out: dict[str, Any] = {"index": call.index, "function": function}
    if call.id is not None or call.name is not None:
        out.update(id=call.id, type="function")
        function["name"] = call.name
    return out


def delta_body(delta: Delta) -> dict[str, Any] | None:
    """The `delta` of one chunk, or None when this Delta carries no content (only a
    finish reason or usage, which go into the closing chunks)."""
    body: dict[str, Any] = {}
    if delta.text:
        body["content"] = delta.text
    if delta.reasoning:
        body["reasoning_content"] = delta.reasoning
    if delta.tool_calls:
        body["tool_calls"] = [tool_call_delta(c) for c in delta.tool_calls]
    return body or None


def chunk_body(chunk_id: str, model: str, created: int, delta: dict[str, Any] | None = None,
               *, finish_reason: str | None = None, usage: Usage | None = None
               ) -> dict[str, Any]:
    """A `chat.completion.chunk`; `delta=None` with usage makes the usage-only final chunk
    (empty choices, as OpenAI sends it for stream_options.include_usage)."""
    body: dict[str, Any] = {"id": chunk_id, "object": "chat.completion.chunk",
                            "created": created, "model": model, "choices": []}
    if delta is not None:
        body["choices"] = [{"index": 0, "delta": delta, "logprobs": None,
                            "finish_reason": finish_reason}]
    if usage is not None:
        body["usage"] = usage_body(usage)
    return body


def sse(obj: dict[str, Any]) -> bytes:
    return b"data: " + fastjson.dumps(obj) + b"\n\n"


def error_body(message: str, type: str = "invalid_request_error", *, param: str | None = None,
               code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


def chat_request_doc(models: list[str]) -> dict[str, Any]:
    """The chat-completions request body for OpenAPI (the route parses it by hand, so
    FastAPI cannot infer it): the fields ai-router reads; any others are accepted and
    ignored. Detailed enough for a schema-driven fuzzer to make useful bodies."""
    text = {"type": "string", "maxLength": 4000}
    part = {"type": "object", "required": ["type", "text"],
            "properties": {"type": {"enum": ["text"]}, "text": text}}
    message = {"type": "object", "required": ["role", "content"], "properties": {
        "role": {"enum": ["system", "developer", "user", "assistant"]},
        "content": {"anyOf": [text, {"type": "array", "items": part, "maxItems": 4},
                              {"type": "null"}]}}}
    tool = {"type": "object", "required": ["type", "function"], "properties": {
        "type": {"enum": ["function"]}, "function": {
            "type": "object", "required": ["name"], "properties": {
                "name": {"type": "string", "pattern": "^[a-zA-Z0-9_-]{1,64}$"},
                "description": text, "parameters": {"type": "object"}}}}}
    schema = {"type": "object", "required": ["messages"], "properties": {
        "model": {"enum": [*models, *(f"ai-router/{m}" for m in models)]},
        "messages": {"type": "array", "items": message, "minItems": 1, "maxItems": 8},
        "max_tokens": {"type": "integer", "minimum": 1},
        "max_completion_tokens": {"type": "integer", "minimum": 1},
        "temperature": {"type": "number", "minimum": 0, "maximum": 2},
        "top_p": {"type": "number", "minimum": 0, "maximum": 1},
        "stop": {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"},
                                                "maxItems": 4}]},
        "stream": {"type": "boolean"},
        "stream_options": {"type": "object", "properties": {
            "include_usage": {"type": "boolean"}}},
        "tools": {"type": "array", "items": tool, "maxItems": 4},
        "tool_choice": {"enum": ["none", "auto", "required"]},
        "response_format": {"type": "object", "required": ["type"], "properties": {
            "type": {"enum": ["text", "json_object"]}}}}}
    return {"requestBody": {"required": True,
                            "content": {"application/json": {"schema": schema}}}}
