"""A scripted loopback upstream speaking Ollama's native API.

`POST /api/chat` answers from a queue of scripted replies (JSON, or NDJSON when the
client streams: partial objects with `done: false`, then a final `done: true`
object carrying `done_reason`, `prompt_eval_count` and `eval_count`). Tool calls
carry their arguments as JSON objects, as Ollama sends them. Model management is
served from state: `GET /api/tags` lists `models`, `POST /api/show` answers for
installed models and 404s otherwise, `POST /api/pull` streams NDJSON progress
for a model in `pullable` (per-layer `digest`/`total`/`completed`, then
`success`) and installs it.

    upstream = OllamaUpstream(models=["qwen2.5:0.5b"], pullable={"llama3.2:1b": [800, 200]})
    upstream.push(json_reply(chat_body("hi", prompt_eval_count=12, eval_count=3)))
    upstream.push(ndjson_reply([part_body("he"), part_body("llo"), done_body(12, 2)]))
    with upstream.running() as host:           # "http://127.0.0.1:PORT"
        ...                                    # ollama.AsyncClient(host=host)
    upstream.requests[0].body["options"]       # what the client sent

Replies are callables `(Received) -> Response` (sync or async), as in openai_wire;
`reset()` clears the script, the record and the model state between tests.
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

CREATED_AT = "2025-01-01T00:00:00.000000Z"
NDJSON = "application/x-ndjson"


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


Reply = Callable[[Received], Any]


def full_name(model: str) -> str:
    """Ollama's default tag: "llama3.2" means "llama3.2:latest"."""
    return model if ":" in model else f"{model}:latest"


@dataclass
class OllamaUpstream:
    models: list[str] = field(default_factory=list)
    pullable: dict[str, list[int]] = field(default_factory=dict)  # model -> layer sizes
    handler: Reply | None = None
    replies: deque[Reply] = field(default_factory=deque)
    requests: list[Received] = field(default_factory=list)
    base_url: str = ""  # the host, set while running()

    def push(self, *replies: Reply) -> None:
        self.replies.extend(replies)

    def reset(self) -> None:
        """Forget the script and the record, so one running server can serve many tests."""
        self.replies.clear()
        self.requests.clear()
        self.handler = None
        self.models, self.pullable = [], {}

    @property
    def app(self) -> Starlette:
        return Starlette(routes=[
            Route("/api/chat", self._chat, methods=["POST"]),
            Route("/api/tags", self._tags, methods=["GET"]),
            Route("/api/show", self._show, methods=["POST"]),
            Route("/api/pull", self._pull, methods=["POST"]),
        ])

    @contextmanager
    def running(self) -> Iterator[str]:
        with serve(self.app) as host:
            self.base_url = host
            yield host

    async def _record(self, request: Request) -> Received:
        raw = await request.body()
        received = Received(request.url.path,
                            {k.lower(): v for k, v in request.headers.items()},
                            json.loads(raw) if raw else {})
        self.requests.append(received)
        return received

    async def _chat(self, request: Request) -> Response:
        received = await self._record(request)
        reply = self.replies.popleft() if self.replies else self.handler
        if reply is None:
            return error_reply(500, "ollama_wire: no scripted reply left")(received)
        response = reply(received)
        return await response if inspect.isawaitable(response) else response

    async def _tags(self, request: Request) -> Response:
        await self._record(request)
        return JSONResponse({"models": [_model_entry(m) for m in self.models]})

    async def _show(self, request: Request) -> Response:
        name = full_name((await self._record(request)).body.get("model", ""))
        if name not in self.models:
            return JSONResponse({"error": f"model '{name}' not found"}, status_code=404)
        return JSONResponse({
            "modelfile": f"FROM {name}", "parameters": "", "template": "{{ .Prompt }}",
            "details": _details(), "model_info": {"general.architecture": "llama"},
            "capabilities": ["completion", "tools"], "modified_at": CREATED_AT})

    async def _pull(self, request: Request) -> Response:
        name = full_name((await self._record(request)).body.get("model", ""))
        layers = self.pullable.get(name)
        if layers is None:  # Ollama reports a failed pull inside the stream
            return ndjson_reply([{"status": "pulling manifest"},
                                 {"error": "pull model manifest: file does not exist"}])(None)
        events: list[dict[str, Any]] = [{"status": "pulling manifest"}]
        for i, size in enumerate(layers):
            digest = f"sha256:{i:064x}"
            for done in (0, size // 2, size):
                events.append({"status": f"pulling {digest[7:19]}", "digest": digest,
                               "total": size, "completed": done})
        events += [{"status": "verifying sha256 digest"}, {"status": "writing manifest"},
                   {"status": "success"}]
        self.models.append(name)
        return ndjson_reply(events)(None)


def _details() -> dict[str, Any]:
    return {"parent_model": "", "format": "gguf", "family": "llama", "families": ["llama"],
            "parameter_size": "1B", "quantization_level": "Q4_K_M"}


def _model_entry(name: str) -> dict[str, Any]:
    return {"name": name, "model": name, "modified_at": CREATED_AT, "size": 1_000_000,
            "digest": "0" * 64, "details": _details()}


# ---- bodies (pure builders) -------------------------------------------------------------

def tool_call_body(name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return {"function": {"name": name, "arguments": arguments}}


def message_body(content: str = "", *, tool_calls: list[dict[str, Any]] | None = None,
                 thinking: str | None = None) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if tool_calls:
        message["tool_calls"] = tool_calls
    if thinking is not None:
        message["thinking"] = thinking
    return message


def part_body(content: str = "", *, model: str = "llama3.2:1b",
              tool_calls: list[dict[str, Any]] | None = None,
              thinking: str | None = None) -> dict[str, Any]:
    """A streamed partial response (`done: false`)."""
    return {"model": model, "created_at": CREATED_AT, "done": False,
            "message": message_body(content, tool_calls=tool_calls, thinking=thinking)}


def done_body(prompt_eval_count: int | None, eval_count: int | None, *,
              done_reason: str = "stop", model: str = "llama3.2:1b", content: str = "",
              tool_calls: list[dict[str, Any]] | None = None,
              thinking: str | None = None) -> dict[str, Any]:
    """The final object (`done: true`) with timings and counts; a None count is omitted."""
    body: dict[str, Any] = {
        "model": model, "created_at": CREATED_AT, "done": True, "done_reason": done_reason,
        "message": message_body(content, tool_calls=tool_calls, thinking=thinking),
        "total_duration": 5_000_000, "load_duration": 1_000_000,
        "prompt_eval_duration": 1_000_000, "eval_duration": 2_000_000}
    if prompt_eval_count is not None:
        body["prompt_eval_count"] = prompt_eval_count
    if eval_count is not None:
        body["eval_count"] = eval_count
    return body


def chat_body(content: str = "", *, prompt_eval_count: int | None = 10,
              eval_count: int | None = 5, **kw: Any) -> dict[str, Any]:
    """A whole non-streamed /api/chat response."""
    return done_body(prompt_eval_count, eval_count, content=content, **kw)


# ---- replies ----------------------------------------------------------------------------

def json_reply(body: Any, status: int = 200) -> Reply:
    return lambda _received: JSONResponse(body, status_code=status)


def error_reply(status: int, message: str = "scripted failure") -> Reply:
    """Ollama's error body: {"error": "..."}."""
    return json_reply({"error": message}, status)


def malformed_reply(status: int = 200) -> Reply:
    return lambda _received: Response('{"model": "llama3.2:1b", "message": {', status_code=status,
                                      media_type="application/json")


def slow_reply(seconds: float, then: Reply | None = None) -> Reply:
    async def reply(received: Received) -> Response:
        await asyncio.sleep(seconds)
        return (then or error_reply(500, "too late"))(received)
    return reply


class StreamCut(Exception):
    """Raised inside the NDJSON generator so the server drops the connection mid-body."""


def ndjson_reply(objects: list[dict[str, Any]], *, cut_after: int | None = None) -> Reply:
    """One JSON object per line; `cut_after=n` drops the connection after n lines."""
    def reply(_received: Received | None) -> Response:
        async def body():
            for i, obj in enumerate(objects):
                if cut_after is not None and i == cut_after:
                    raise StreamCut("scripted: connection dropped mid-stream")
                yield json.dumps(obj) + "\n"
        return StreamingResponse(body(), media_type=NDJSON)
    return reply
