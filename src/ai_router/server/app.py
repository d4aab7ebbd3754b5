"""The FastAPI app: OpenAI's chat-completions and models endpoints, plus health and budget.

One Router per process, handed in by the caller and closed on shutdown; the manager
is warmed up in the background so startup is not blocked by the local model.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from .. import fastjson
from ..errors import RouterError
from ..guard import VIRTUAL_MODELS
from ..ledger import Ledger, usd
from ..router import Router
from ..schema import ChatRequest
from .dashboard import routes as dashboard_routes
from .failures import ApiError, CatchAll, from_router_error, parse_body, unknown_model
from .headers import routing_headers
from .openai_format import chat_request_doc, completion_body, error_body
from .security import DEFAULT_MAX_BODY_BYTES, BearerAuth, BodyLimit
from .streaming import SSEResponse, aclose, sse_events
from .tool_routes import routes as tool_routes

log = logging.getLogger("ai_router.server")
CHAT_PATH = "/v1/chat/completions"
MODEL_PREFIX = "ai-router/"  # OpenClaw-style "provider/model" refs to this server
CHECKPOINT_S = 1.0  # how often the ledger's WAL is copied back (~30 MB of it at 1k req/s)
ROLES = {"system", "developer", "user", "assistant", "tool", "function"}


def create_app(router: Router, *, api_key: str | None = None,
               max_body_bytes: int = DEFAULT_MAX_BODY_BYTES, warm_up: bool = True) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        warming = asyncio.create_task(_warm_up(router)) if warm_up else None
        router.ledger.defer_checkpoints()
        checkpoints = asyncio.create_task(_checkpoint_every(router.ledger, CHECKPOINT_S))
        try:
            yield
        finally:
            for task in filter(None, (warming, checkpoints)):
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
            await router.aclose()

    app = FastAPI(title="ai-router", lifespan=lifespan, docs_url=None, redoc_url=None,
                  openapi_url=None)
    app.state.router = router
    app.add_exception_handler(ApiError, lambda _r, e: e.response())  # type: ignore[arg-type]
    app.add_exception_handler(HTTPException, _http_error)  # type: ignore[arg-type]
    # added last = outermost: CatchAll → BearerAuth → BodyLimit → ChatRoute → routes
    app.add_middleware(ChatRoute, router=router)
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes)
    app.add_middleware(BearerAuth, api_key=api_key)
    app.add_middleware(CatchAll, secrets=lambda: [*router.keys.secrets(), api_key or ""])
    app.include_router(tool_routes)  # POST /v1/route_and_ask, /v1/feedback
    app.include_router(dashboard_routes)  # GET /dashboard, /v1/stats

    # served by ChatRoute; declared here for the OpenAPI document and for a mounted app
    # (a root_path), which ChatRoute leaves to FastAPI's routing
    @app.post(CHAT_PATH, openapi_extra=chat_request_doc(router.valid_model_names()))
    async def chat_completions(request: Request) -> Response:
        return await chat_response(await request.body(), router)

    @app.get("/v1/models")
    async def list_models() -> dict[str, Any]:
        virtual = [{"id": name, "object": "model", "created": 0, "owned_by": "ai-router"}
                   for name in VIRTUAL_MODELS]
        concrete = [{"id": ref, "object": "model", "created": 0, "owned_by": m.provider,
                     "tier": m.tier, "context_window": m.context_window,
                     "max_output": m.max_output}
                    for ref, m in router.config.models.items()]
        return {"object": "list", "data": [*virtual, *concrete]}

    @app.get("/v1/budget")
    async def budget() -> dict[str, Any]:
        snap = await asyncio.to_thread(router.ledger.snapshot, router.limit_micro)
        rows = await asyncio.to_thread(router.ledger.spend_by_model, snap.day)
        return {"day": snap.day, "limit_usd": usd(snap.limit_micro),
                "spent_usd": usd(snap.spent_micro), "reserved_usd": usd(snap.reserved_micro),
                "remaining_usd": usd(snap.remaining_micro), "offline": router.offline,
                "by_model": [{**r, "cost_usd": usd(r.pop("cost_micro"))} for r in rows]}

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "offline": router.offline}

    return app


async def chat_response(raw: bytes, router: Router) -> Response:
    """POST /v1/chat/completions: the routed answer, or an ApiError."""
    chat = parse_chat_request(raw, router)
    try:
        if chat.stream:
            return await _stream(router, chat)
        routed = await router.ask(chat, source="server")
    except RouterError as e:
        raise from_router_error(e, router) from None
    headers = routing_headers(
        request_id=routed.request_id, model=routed.model, capability=routed.capability,
        manager=routed.manager, cost_micro=routed.cost_micro,
        remaining_micro=routed.remaining_micro, offline=routed.offline)
    return Response(fastjson.dumps(completion_body(routed, int(time.time()))),
                    media_type="application/json", headers=headers)


class ChatRoute:
    """ASGI middleware: POST /v1/chat/completions answered right here, inside the same
    middlewares (CatchAll, BearerAuth, BodyLimit) but without FastAPI's per-request
    routing, Request object and dependency solving. Anything else goes on to FastAPI."""

    def __init__(self, app: ASGIApp, router: Router):
        self.app, self.router = app, router

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (scope["type"] != "http" or scope["path"] != CHAT_PATH
                or scope["method"] != "POST" or scope.get("root_path")):
            return await self.app(scope, receive, send)
        body = bytearray()
        while True:  # BodyLimit has read it already and replays it as one message
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        try:
            response = await chat_response(bytes(body), self.router)
        except ApiError as e:
            response = e.response()
        await response(scope, receive, send)


def parse_chat_request(raw: bytes, router: Router) -> ChatRequest:
    """The body as a ChatRequest (unknown fields kept and ignored), or a 400/404."""
    chat = parse_body(raw, ChatRequest)
    if not chat.messages:
        raise ApiError(400, "messages must not be empty", param="messages")
    for i, m in enumerate(chat.messages):
        if m.get("role") not in ROLES:
            raise ApiError(400, f"messages[{i}].role must be one of {', '.join(sorted(ROLES))}",
                           param=f"messages.{i}.role")
        if not isinstance(m.get("content"), str | list | None):
            raise ApiError(400, f"messages[{i}].content must be a string, a list of parts or "
                           "null", param=f"messages.{i}.content")
    name = (chat.model or "auto").removeprefix(MODEL_PREFIX)
    if name not in router.valid_model_names():
        raise unknown_model(chat.model, router.valid_model_names())
    return chat.model_copy(update={"model": name})


async def _stream(router: Router, chat: ChatRequest) -> SSEResponse:
    stream = await router.open_stream(chat, source="server")
    try:
        headers = routing_headers(
            request_id=stream.request_id, model=stream.model, capability=stream.capability,
            manager=stream.manager, cost_micro=stream.reserved_micro,
            remaining_micro=stream.remaining_micro, offline=stream.offline)
    except BaseException:
        await aclose(stream.deltas)  # settles the reservation
        raise
    include_usage = bool((chat.stream_options or {}).get("include_usage"))
    return SSEResponse(sse_events(stream, include_usage=include_usage,
                                  created=int(time.time())), headers)


async def _checkpoint_every(ledger: Ledger, seconds: float) -> None:
    """The ledger's WAL copied back into its file in a thread, not in a request's commit."""
    while True:
        await asyncio.sleep(seconds)
        try:
            await asyncio.to_thread(ledger.checkpoint)
        except sqlite3.Error as e:  # the next round, or the next process, tries again
            log.warning("ledger checkpoint failed: %s", e)


async def _warm_up(router: Router) -> None:
    try:
        result = await router.manager.warm_up()
    except Exception as e:  # noqa: BLE001 - warming is best effort
        log.warning("manager warm-up failed: %s", type(e).__name__)
        return
    log.info("manager ready: %s (%s%s)", result.model, result.source,
             f": {result.fallback_reason}" if result.fallback_reason else "")


async def _http_error(_request: Request, e: HTTPException) -> JSONResponse:
    """Starlette's own 404/405 in OpenAI's error shape."""
    code = {404: "not_found", 405: "method_not_allowed"}.get(e.status_code)
    return JSONResponse(error_body(str(e.detail), code=code), status_code=e.status_code,
                        headers=getattr(e, "headers", None))
