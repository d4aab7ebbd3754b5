"""A scripted loopback upstream speaking OpenAI's `POST /v1/chat/completions`.

Bodies follow OpenAI's documented `chat.completion` and `chat.completion.chunk`
objects (plus the extras compatible providers add: DeepSeek's `reasoning_content`
and `prompt_cache_hit_tokens`). A test queues replies; each request pops one and
is recorded, so the test can check what the client really sent.

    upstream = OpenAIUpstream()
    upstream.push(json_reply(completion_body("hi", usage=usage_body(10, 2))))
    upstream.push(sse_reply(text_chunks("he", "llo"), usage=usage_body(10, 2)))
    upstream.push(error_reply(429, headers={"retry-after": "3"}))
    with upstream.running() as base_url:       # base_url ends in /v1
        ...                                    # point an SDK client at it
    upstream.requests[0].body["max_tokens"]    # what the client sent

A reply is any callable `(Received) -> Response` (sync or async), so a test can
also script arbitrary behaviour; `OpenAIUpstream(handler=...)` answers every
request whose queue is empty. With neither, the upstream answers 500 and says why.
`reset()` clears the script and the record, so a module-scoped server can be shared
by many tests (starting and stopping a server costs ~0.2 s).
"""

from __future__ import annotations

import asyncio
import inspect
import json
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from .server import serve

CREATED = 1_700_000_000


@dataclass
class Received:
    """One request as the upstream saw it (header names lower-cased)."""

    path: str
    headers: dict[str, str]
    body: dict[str, Any]

    @property
    def streaming(self) -> bool:
        return bool(self.body.get("stream"))

    @property
    def include_usage(self) -> bool:
        return bool((self.body.get("stream_options") or {}).get("include_usage"))


Reply = Callable[[Received], Any]  # returns a Response, or an awaitable of one


@dataclass
class OpenAIUpstream:
    handler: Reply | None = None
    replies: deque[Reply] = field(default_factory=deque)
    requests: list[Received] = field(default_factory=list)
    base_url: str = ""  # set while running()

    def push(self, *replies: Reply) -> None:
        self.replies.extend(replies)

    def reset(self) -> None:
        """Forget the script and the record, so one running server can serve many tests."""
        self.replies.clear()
        self.requests.clear()
        self.handler = None

    @property
    def app(self) -> Starlette:
        return Starlette(routes=[Route("/v1/chat/completions", self._chat, methods=["POST"])])

    @contextmanager
    def running(self) -> Iterator[str]:
        """Serve on 127.0.0.1 and yield the SDK base URL (".../v1")."""
        with serve(self.app) as root:
            self.base_url = f"{root}/v1"
            yield self.base_url

    async def _chat(self, request: Request) -> Response:
        received = Received(request.url.path, {k.lower(): v for k, v in request.headers.items()},
                            json.loads(await request.body()))
        self.requests.append(received)
        reply = self.replies.popleft() if self.replies else self.handler
        if reply is None:
            return error_reply(500, "openai_wire: no scripted reply left")(received)
        response = reply(received)
        return await response if inspect.isawaitable(response) else response


# ---- bodies (pure builders) -------------------------------------------------------------

def usage_body(prompt: int, completion: int, *, cached: int | None = None,
               reasoning: int | None = None, deepseek_cache_hit: int | None = None
               ) -> dict[str, Any]:
    """OpenAI usage. `deepseek_cache_hit` adds DeepSeek's own cache fields instead."""
    body: dict[str, Any] = {"prompt_tokens": prompt, "completion_tokens": completion,
                            "total_tokens": prompt + completion}
    if cached is not None:
        body["prompt_tokens_details"] = {"cached_tokens": cached, "audio_tokens": 0}
    if reasoning is not None:
        body["completion_tokens_details"] = {"reasoning_tokens": reasoning, "audio_tokens": 0,
                                             "accepted_prediction_tokens": 0,
                                             "rejected_prediction_tokens": 0}
    if deepseek_cache_hit is not None:
        body["prompt_cache_hit_tokens"] = deepseek_cache_hit
        body["prompt_cache_miss_tokens"] = prompt - deepseek_cache_hit
    return body


def tool_call_body(call_id: str, name: str, arguments: dict[str, Any] | str) -> dict[str, Any]:
    args = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": args}}


def completion_body(text: str | None = "", *, model: str = "gpt-test",
                    tool_calls: list[dict[str, Any]] | None = None,
                    reasoning_content: str | None = None, finish_reason: str | None = None,
                    usage: dict[str, Any] | None = None) -> dict[str, Any]:
    """A `chat.completion` object; `usage=None` omits usage like some local servers do."""
    message: dict[str, Any] = {"role": "assistant", "content": text, "refusal": None}
    if tool_calls:
        message["tool_calls"] = tool_calls
    if reasoning_content is not None:
        message["reasoning_content"] = reasoning_content
    body: dict[str, Any] = {
        "id": "chatcmpl-test", "object": "chat.completion", "created": CREATED, "model": model,
        "choices": [{"index": 0, "message": message, "logprobs": None,
                     "finish_reason": finish_reason or ("tool_calls" if tool_calls else "stop")}],
        "system_fingerprint": "fp_test"}
    if usage is not None:
        body["usage"] = usage
    return body


def chunk_body(delta: dict[str, Any] | None = None, *, finish_reason: str | None = None,
               model: str = "gpt-test", usage: dict[str, Any] | None = None,
               choices: bool = True) -> dict[str, Any]:
    """A `chat.completion.chunk`. `choices=False` makes the usage-only final chunk."""
    body: dict[str, Any] = {"id": "chatcmpl-test", "object": "chat.completion.chunk",
                            "created": CREATED, "model": model, "system_fingerprint": "fp_test",
                            "choices": []}
    if choices:
        body["choices"] = [{"index": 0, "delta": delta or {}, "logprobs": None,
                            "finish_reason": finish_reason}]
    if usage is not None:
        body["usage"] = usage
    return body


def text_chunks(*pieces: str, finish_reason: str = "stop") -> list[dict[str, Any]]:
    """Role chunk, one chunk per text piece, then the finish chunk."""
    return [chunk_body({"role": "assistant", "content": ""}),
            *(chunk_body({"content": p}) for p in pieces),
            chunk_body({}, finish_reason=finish_reason)]


def tool_call_chunk(index: int, *, call_id: str | None = None, name: str | None = None,
                    arguments: str = "", content: str | None = None) -> dict[str, Any]:
    """A chunk carrying one tool-call fragment (and, optionally, text in the same delta)."""
    function: dict[str, Any] = {"arguments": arguments}
    if name is not None:
        function["name"] = name
    call: dict[str, Any] = {"index": index, "function": function}
    if call_id is not None:
        call.update(id=call_id, type="function")
    delta: dict[str, Any] = {"tool_calls": [call]}
    if content is not None:
        delta["content"] = content
    return chunk_body(delta)


# ---- replies ----------------------------------------------------------------------------

def json_reply(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Reply:
    return lambda _received: JSONResponse(body, status_code=status, headers=headers)


def error_reply(status: int, message: str = "scripted failure",
                headers: dict[str, str] | None = None) -> Reply:
    """OpenAI's error envelope: {"error": {"message", "type", "param", "code"}}."""
    kinds = {400: "invalid_request_error", 401: "invalid_request_error",
             429: "rate_limit_exceeded"}
    body = {"error": {"message": message, "type": kinds.get(status, "server_error"),
                      "param": None, "code": None}}
    return json_reply(body, status, headers)


def malformed_reply(status: int = 200) -> Reply:
    """A body that claims to be JSON and is not."""
    return lambda _received: Response('{"id": "chatcmpl-test", "choices": [', status_code=status,
                                      media_type="application/json")


def slow_reply(seconds: float, then: Reply | None = None) -> Reply:
    """Wait before answering (for client read timeouts)."""
    async def reply(received: Received) -> Response:
        await asyncio.sleep(seconds)
        return (then or error_reply(504, "too late"))(received)
    return reply


class StreamCut(Exception):
    """Raised inside the SSE generator so the server drops the connection mid-body."""


def sse_reply(chunks: list[dict[str, Any]], *, usage: dict[str, Any] | None = None,
              cut_after: int | None = None, done: bool = True) -> Reply:
    """Stream `chunks` as `data: {...}` events, then a usage-only chunk (only when the
    client asked with stream_options.include_usage and `usage` is given), then
    `data: [DONE]`. `cut_after=n` drops the connection after n chunks."""
    def reply(received: Received) -> Response:
        events = list(chunks)
        if usage is not None and received.include_usage:
            events.append(chunk_body(usage=usage, choices=False))

        async def body():
            for i, event in enumerate(events):
                if cut_after is not None and i == cut_after:
                    raise StreamCut("scripted: connection dropped mid-stream")
                yield f"data: {json.dumps(event)}\n\n"
            if done:
                yield "data: [DONE]\n\n"
        return StreamingResponse(body(), media_type="text/event-stream")
    return reply
