"""A scripted loopback stand-in for the Gemini API (v1beta generateContent).

Serves `POST /v1beta/models/{model}:generateContent` (one GenerateContentResponse
as JSON) and `POST /v1beta/models/{model}:streamGenerateContent?alt=sse` (a series
of `data: <GenerateContentResponse>` SSE events; text arrives in pieces, function
calls whole, usageMetadata and finishReason on the last chunk), with bodies in the
documented camelCase shapes. Errors use Google's `{"error": {"code", "message",
"status", "details"}}` envelope.

Usage::

    wire = GeminiWire()
    wire.reply(response([text_part("Hi")], usage=usage(prompt=120, cached=100)))
    wire.reply_error(429, retry_delay="7s")
    with serve(wire.app) as base_url:
        ...                                   # genai.Client(http_options={"base_url": …})
    wire.requests[0].body, wire.requests[0].headers["x-goog-api-key"]

Replies are consumed in order; when the script runs out, the last one repeats.
`reply()` answers as JSON or as SSE according to the method called, so one scripted
response serves both `complete()` and `stream()`.
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

STATUSES = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED",
            404: "NOT_FOUND", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL",
            503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED"}


# ------------------------------------------------------------------ body builders


def usage(prompt: int = 10, candidates: int = 5, *, cached: int = 0,
          thoughts: int = 0) -> dict[str, Any]:
    """A documented usageMetadata. `prompt` already includes `cached`; `candidates`
    excludes `thoughts`, as upstream."""
    meta: dict[str, Any] = {"promptTokenCount": prompt, "candidatesTokenCount": candidates,
                            "totalTokenCount": prompt + candidates + thoughts,
                            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": prompt}]}
    if cached:
        meta["cachedContentTokenCount"] = cached
        meta["cacheTokensDetails"] = [{"modality": "TEXT", "tokenCount": cached}]
    if thoughts:
        meta["thoughtsTokenCount"] = thoughts
    return meta


def text_part(text: str) -> dict[str, Any]:
    return {"text": text}


def thought_part(text: str) -> dict[str, Any]:
    return {"text": text, "thought": True}


def function_call_part(name: str, args: dict[str, Any]) -> dict[str, Any]:
    return {"functionCall": {"name": name, "args": args}}


def response(parts: list[dict[str, Any]], *, finish_reason: str = "STOP",
             usage: dict[str, Any] | None = None,
             model_version: str = "gemini-2.5-flash") -> dict[str, Any]:
    return {"candidates": [{"content": {"role": "model", "parts": parts},
                            "finishReason": finish_reason, "index": 0}],
            "usageMetadata": usage or DEFAULT_USAGE, "modelVersion": model_version,
            "responseId": "mAitaLmkHPPlz7IPvtfUqQ4"}


DEFAULT_USAGE = usage()


def blocked_prompt(reason: str = "SAFETY") -> dict[str, Any]:
    """The reply when the prompt itself is blocked: no candidates, only promptFeedback."""
    return {"promptFeedback": {"blockReason": reason}, "usageMetadata": usage(8, 0),
            "modelVersion": "gemini-2.5-flash"}


def stream_chunks(body: dict[str, Any], piece: int = 4) -> list[dict[str, Any]]:
    """`body` as the stream sends it: one chunk per text fragment or function call, the
    finishReason and usageMetadata only on the last chunk."""
    if not body.get("candidates"):
        return [body]
    candidate = body["candidates"][0]
    chunks: list[dict[str, Any]] = []
    for part in candidate["content"]["parts"]:
        if "text" in part:
            text = part["text"]
            pieces = [text[i:i + piece] for i in range(0, len(text), piece)] or [""]
            chunks += [{**part, "text": p} for p in pieces]
        else:
            chunks.append(part)
    out = [{"candidates": [{"content": {"role": "model", "parts": [p]}, "index": 0}],
            "modelVersion": body["modelVersion"], "responseId": body["responseId"]}
           for p in chunks]
    out[-1]["candidates"][0]["finishReason"] = candidate["finishReason"]
    out[-1]["usageMetadata"] = body["usageMetadata"]
    return out


def error_body(status: int, message: str = "scripted failure",
               details: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"error": {"code": status, "message": message,
                      "status": STATUSES.get(status, "UNKNOWN"), "details": details or []}}


def retry_info(delay: str) -> dict[str, Any]:
    return {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": delay}


def error_info(reason: str) -> dict[str, Any]:
    return {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": reason,
            "domain": "googleapis.com"}


# ------------------------------------------------------------------ the server


@dataclass
class Received:
    path: str
    version: str  # "v1beta" (or "v1")
    model: str
    method: str  # "generateContent" or "streamGenerateContent"
    query: str
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class _Reply:
    status: int = 200
    body: Any = None  # dict → JSON (or SSE when streamed); str → raw text
    chunks: list[dict[str, Any]] | None = None  # explicit SSE script
    headers: dict[str, str] = field(default_factory=dict)
    cut_after: int | None = None  # SSE: stop after this many chunks…
    abort: bool = True  # …breaking the connection (True) or ending the body cleanly
    delay_s: float = 0.0
    piece: int = 4


class GeminiWire:
    """Scripted replies for generateContent / streamGenerateContent; records requests."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self._script: list[_Reply] = []
        self.app = Starlette(routes=[Route("/{version}/models/{target:path}", self._models,
                                           methods=["POST"])])

    def reset(self) -> None:
        """Forget the script and the recorded requests (to share one server across tests)."""
        self.requests.clear()
        self._script.clear()

    # scripting -------------------------------------------------------
    def reply(self, body: dict[str, Any], *, cut_after: int | None = None, abort: bool = True,
              delay_s: float = 0.0, piece: int = 4) -> GeminiWire:
        """Answer with `body` (a `response(...)`), streamed for streamGenerateContent.
        `cut_after` ends a stream after that many chunks (breaking the connection when
        `abort`)."""
        self._script.append(_Reply(body=body, cut_after=cut_after, abort=abort,
                                   delay_s=delay_s, piece=piece))
        return self

    def reply_chunks(self, chunks: list[dict[str, Any]], cut_after: int | None = None,
                     abort: bool = True) -> GeminiWire:
        """Stream exactly these chunks."""
        self._script.append(_Reply(chunks=chunks, cut_after=cut_after, abort=abort))
        return self

    def reply_error(self, status: int, message: str = "scripted failure", *,
                    retry_after: str | None = None, retry_delay: str | None = None,
                    reason: str | None = None) -> GeminiWire:
        """An error status. `retry_after` sets the header; `retry_delay` ("7s") adds a
        RetryInfo detail; `reason` adds an ErrorInfo detail (e.g. API_KEY_INVALID)."""
        details = [*([retry_info(retry_delay)] if retry_delay else []),
                   *([error_info(reason)] if reason else [])]
        headers = {"retry-after": retry_after} if retry_after is not None else {}
        self._script.append(_Reply(status=status, body=error_body(status, message, details),
                                   headers=headers))
        return self

    def reply_raw(self, text: str, status: int = 200,
                  content_type: str = "application/json") -> GeminiWire:
        """Send `text` verbatim (e.g. malformed JSON)."""
        self._script.append(_Reply(status=status, body=text,
                                   headers={"content-type": content_type}))
        return self

    # serving ---------------------------------------------------------
    def _next(self) -> _Reply:
        if not self._script:
            raise AssertionError("GeminiWire received a request nobody scripted")
        return self._script.pop(0) if len(self._script) > 1 else self._script[0]

    async def _models(self, request: Request) -> Response:
        model, _, method = request.path_params["target"].partition(":")
        raw = await request.body()
        self.requests.append(Received(request.url.path, request.path_params["version"],
                                      model, method, request.url.query,
                                      dict(request.headers), json.loads(raw) if raw else {}))
        r = self._next()
        if r.delay_s:
            await asyncio.sleep(r.delay_s)
        if isinstance(r.body, str):
            return Response(r.body, status_code=r.status, headers=r.headers)
        streamed = method == "streamGenerateContent" and r.status == 200
        if not streamed:
            return JSONResponse(r.body, status_code=r.status, headers=r.headers)
        chunks = r.chunks or stream_chunks(r.body, r.piece)
        return StreamingResponse(_sse(chunks, r.cut_after, r.abort),
                                 media_type="text/event-stream")


class StreamCut(Exception):
    """Raised inside the SSE body to break the connection mid-stream."""


async def _sse(chunks, cut_after: int | None, abort: bool):
    for n, chunk in enumerate(chunks):
        if cut_after is not None and n >= cut_after:
            if abort:
                raise StreamCut("connection cut by the test script")
            return
        yield f"data: {json.dumps(chunk)}\r\n\r\n".encode()
        await asyncio.sleep(0)
