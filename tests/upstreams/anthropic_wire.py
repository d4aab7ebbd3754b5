"""A scripted loopback stand-in for Anthropic's Messages API (`POST /v1/messages`).

Bodies follow the documented shapes: a Message object for JSON replies, and for
`"stream": true` the SSE sequence message_start → (content_block_start,
content_block_delta…, content_block_stop)* → message_delta → message_stop, with
pings, as the API sends it. Errors use the documented `{"type": "error",
"error": {"type": …, "message": …}}` envelope.

Usage::

    wire = AnthropicWire()
    wire.reply(message([text_block("Hi")], usage=usage(10, 5, cache_read=100)))
    wire.reply_error(429, retry_after="7")
    with serve(wire.app) as base_url:
        ...                                   # point the SDK at base_url
    wire.requests[0].body, wire.requests[0].headers["x-api-key"]

Replies are consumed in order; when the script runs out, the last one repeats.
`reply()` answers as JSON or as an SSE stream according to the request's "stream"
flag, so one scripted message serves both `complete()` and `stream()`.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error",
               403: "permission_error", 404: "not_found_error", 413: "request_too_large",
               429: "rate_limit_error", 500: "api_error", 529: "overloaded_error"}


# ------------------------------------------------------------------ body builders


def usage(input_tokens: int = 10, output_tokens: int = 5, *, cache_read: int = 0,
          cache_write: int = 0) -> dict[str, Any]:
    """A documented `usage` object. `input_tokens` excludes the cached ones, as upstream."""
    return {"input_tokens": input_tokens, "output_tokens": output_tokens,
            "cache_read_input_tokens": cache_read, "cache_creation_input_tokens": cache_write,
            "cache_creation": {"ephemeral_5m_input_tokens": cache_write,
                               "ephemeral_1h_input_tokens": 0},
            "service_tier": "standard"}


DEFAULT_USAGE = usage()


def text_block(text: str) -> dict[str, Any]:
    return {"type": "text", "text": text}


def thinking_block(thinking: str, signature: str = "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrk") -> dict:
    return {"type": "thinking", "thinking": thinking, "signature": signature}


def tool_use_block(id: str, name: str, input: dict[str, Any]) -> dict[str, Any]:
    return {"type": "tool_use", "id": id, "name": name, "input": input}


def message(content: list[dict[str, Any]], *, stop_reason: str = "end_turn",
            model: str = "claude-haiku-4-5-20251001", usage: dict[str, Any] | None = None,
            id: str = "msg_01XFDUDYJgAACzvnptvVoYEL") -> dict[str, Any]:
    return {"id": id, "type": "message", "role": "assistant", "model": model,
            "content": content, "stop_reason": stop_reason, "stop_sequence": None,
            "usage": usage or DEFAULT_USAGE}


def _pieces(text: str, size: int) -> list[str]:
    return [text[i:i + size] for i in range(0, len(text), size)] or [""]


def stream_events(msg: dict[str, Any], piece: int = 4) -> list[tuple[str, dict[str, Any]]]:
    """The documented SSE event sequence that streams `msg`, text and tool input in
    fragments of `piece` characters. message_start carries the input-side usage;
    message_delta carries the stop reason and the cumulative output usage."""
    start_usage = {**msg["usage"], "output_tokens": 1}
    events: list[tuple[str, dict[str, Any]]] = [
        ("message_start", {"type": "message_start", "message": {
            **msg, "content": [], "stop_reason": None, "usage": start_usage}}),
        ("ping", {"type": "ping"})]
    for i, block in enumerate(msg["content"]):
        if block["type"] == "text":
            start, deltas = {"type": "text", "text": ""}, [
                {"type": "text_delta", "text": p} for p in _pieces(block["text"], piece)]
        elif block["type"] == "thinking":
            start, deltas = {"type": "thinking", "thinking": "", "signature": ""}, [
                *({"type": "thinking_delta", "thinking": p}
                  for p in _pieces(block["thinking"], piece)),
                {"type": "signature_delta", "signature": block["signature"]}]
        else:
            start, deltas = {**block, "input": {}}, [
                {"type": "input_json_delta", "partial_json": p}
                for p in _pieces(json.dumps(block["input"]), piece)]
        events.append(("content_block_start", {"type": "content_block_start", "index": i,
                                               "content_block": start}))
        events += [("content_block_delta", {"type": "content_block_delta", "index": i,
                                            "delta": d}) for d in deltas]
        events.append(("content_block_stop", {"type": "content_block_stop", "index": i}))
    events += [
        ("message_delta", {"type": "message_delta",
                           "delta": {"stop_reason": msg["stop_reason"], "stop_sequence": None},
                           "usage": {"output_tokens": msg["usage"]["output_tokens"]}}),
        ("message_stop", {"type": "message_stop"})]
    return events


def error_body(status: int, message: str = "scripted failure") -> dict[str, Any]:
    return {"type": "error", "error": {"type": ERROR_TYPES.get(status, "api_error"),
                                       "message": message},
            "request_id": "req_011CSHoEeqs5C35K2UUqR7Fy"}


# ------------------------------------------------------------------ the server


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class _Reply:
    status: int = 200
    body: Any = None  # dict → JSON (or SSE when the request streams); str → raw text
    events: list[tuple[str, dict[str, Any]]] | None = None  # explicit SSE script
    headers: dict[str, str] = field(default_factory=dict)
    cut_after: int | None = None  # SSE: stop after this many events…
    abort: bool = True  # …breaking the connection (True) or ending the body cleanly
    delay_s: float = 0.0
    piece: int = 4  # characters per streamed text / tool-input fragment


class AnthropicWire:
    """Scripted replies for POST /v1/messages; records every request in `requests`."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self._script: list[_Reply] = []
        self.app = Starlette(routes=[Route("/v1/messages", self._messages, methods=["POST"])])

    def reset(self) -> None:
        """Forget the script and the recorded requests (to share one server across tests)."""
        self.requests.clear()
        self._script.clear()

    # scripting -------------------------------------------------------
    def reply(self, msg: dict[str, Any], *, cut_after: int | None = None, abort: bool = True,
              delay_s: float = 0.0, piece: int = 4) -> AnthropicWire:
        """Answer with `msg` (a `message(...)`), streamed when the request asks for it.
        `cut_after` ends a stream after that many events (breaking the connection when
        `abort`)."""
        self._script.append(_Reply(body=msg, cut_after=cut_after, abort=abort,
                                   delay_s=delay_s, piece=piece))
        return self

    def reply_events(self, events: list[tuple[str, dict[str, Any]]],
                     cut_after: int | None = None, abort: bool = True) -> AnthropicWire:
        """Answer with exactly these SSE (event name, data) pairs."""
        self._script.append(_Reply(events=events, cut_after=cut_after, abort=abort))
        return self

    def reply_error(self, status: int, message: str = "scripted failure",
                    retry_after: str | None = None) -> AnthropicWire:
        headers = {"retry-after": retry_after} if retry_after is not None else {}
        self._script.append(_Reply(status=status, body=error_body(status, message),
                                   headers=headers))
        return self

    def reply_raw(self, text: str, status: int = 200,
                  content_type: str = "application/json") -> AnthropicWire:
        """Send `text` verbatim (e.g. malformed JSON)."""
        self._script.append(_Reply(status=status, body=text,
                                   headers={"content-type": content_type}))
        return self

    # serving ---------------------------------------------------------
    def _next(self) -> _Reply:
        if not self._script:
            raise AssertionError("AnthropicWire received a request nobody scripted")
        return self._script.pop(0) if len(self._script) > 1 else self._script[0]

    async def _messages(self, request: Request) -> Response:
        raw = await request.body()
        body = json.loads(raw) if raw else {}
        self.requests.append(Received(request.url.path, dict(request.headers), body))
        r = self._next()
        if r.delay_s:
            await asyncio.sleep(r.delay_s)
        if isinstance(r.body, str):
            return Response(r.body, status_code=r.status, headers=r.headers)
        if r.events is None and not (body.get("stream") and r.status == 200):
            return JSONResponse(r.body, status_code=r.status, headers=r.headers)
        events = r.events or stream_events(r.body, r.piece)
        return StreamingResponse(_sse(events, r.cut_after, r.abort),
                                 media_type="text/event-stream",
                                 headers={"request-id": "req_011CSHoEeqs5C35K2UUqR7Fy"})


class StreamCut(Exception):
    """Raised inside the SSE body to break the connection mid-stream."""


async def _sse(events, cut_after: int | None, abort: bool):
    for n, (name, data) in enumerate(events):
        if cut_after is not None and n >= cut_after:
            if abort:
                raise StreamCut("connection cut by the test script")
            return
        yield f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()
        await asyncio.sleep(0)
