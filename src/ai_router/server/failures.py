"""Every failure becomes an OpenAI error body with the right status; never a traceback.

4xx: the request itself cannot be served (retrying the same request will not help,
and OpenClaw falls back at once). 503 + Retry-After: a provider or the ledger is
down for now. 500: only genuine bugs, logged here with secrets scrubbed.
"""

from __future__ import annotations

import json
import logging
import math
import traceback
from collections.abc import Callable, Iterable
from typing import TypeVar

from pydantic import BaseModel, ValidationError
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..errors import LedgerError, NoRoute, ProviderError, RouterError, UnknownModel
from ..router import PROVIDER_COOLDOWN_S, Router
from .openai_format import error_body
from .security import MAX_JSON_DEPTH, too_deep

Body = TypeVar("Body", bound=BaseModel)

log = logging.getLogger("ai_router.server")
LEDGER_RETRY_S = 2


class ApiError(Exception):
    """An HTTP error to send as OpenAI's `{"error": {...}}`."""

    def __init__(self, status: int, message: str, type: str = "invalid_request_error", *,
                 param: str | None = None, code: str | None = None,
                 retry_after_s: float | None = None):
        super().__init__(message)
        self.status, self.message, self.type = status, message, type
        self.param, self.code, self.retry_after_s = param, code, retry_after_s

    def response(self) -> JSONResponse:
        headers = ({"retry-after": str(max(1, math.ceil(self.retry_after_s)))}
                   if self.retry_after_s is not None else None)
        return JSONResponse(error_body(self.message, self.type, param=self.param,
                                       code=self.code), status_code=self.status,
                            headers=headers)


def unknown_model(name: str, valid: list[str]) -> ApiError:
    return ApiError(404, f"the model {name!r} does not exist; valid models: "
                    f"{', '.join(valid)} (an 'ai-router/' prefix is also accepted)",
                    param="model", code="model_not_found")


def from_router_error(e: RouterError, router: Router) -> ApiError:
    """Map the router's error tree to HTTP, by type (never by message text)."""
    if isinstance(e, UnknownModel):
        return unknown_model(e.name, e.valid)
    if isinstance(e, ProviderError):
        if e.retryable:
            return ApiError(503, str(e), "server_error", code="provider_unavailable",
                            retry_after_s=getattr(e, "retry_after_s", None) or 1)
        return ApiError(400, str(e), code="upstream_rejected")
    if isinstance(e, LedgerError):
        return ApiError(503, str(e), "server_error", code="ledger_unavailable",
                        retry_after_s=LEDGER_RETRY_S)
    if isinstance(e, NoRoute) and (e.attempts or cooling_providers(router)):
        # every candidate was tried and failed (local ones too), or the ones that could
        # serve are cooling down after failures: the same request may work again soon
        cooling = cooling_providers(router)
        note = f" (cooling down after failures: {', '.join(cooling)})" if cooling else ""
        return ApiError(503, f"{e}{note}", "server_error", code="provider_unavailable",
                        retry_after_s=PROVIDER_COOLDOWN_S if cooling else 1)
    return ApiError(400, str(e), code="no_route" if isinstance(e, NoRoute) else None)


def cooling_providers(router: Router) -> list[str]:
    """Providers with a key that the router is skipping because they just failed."""
    up = router.available_providers()
    return [name for name, p in router.config.providers.items()
            if router.keys.has(p.key_env) and name not in up]


def scrub(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


class CatchAll:
    """ASGI middleware: an unexpected exception is logged (secrets scrubbed) and answered
    with a clean 500 JSON body, instead of Starlette's traceback path."""

    def __init__(self, app: ASGIApp, secrets: Callable[[], Iterable[str]]):
        self.app, self.secrets = app, secrets

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except Exception as e:  # noqa: BLE001 - the last line of defence
            trace = scrub("".join(traceback.format_exception(e)), self.secrets())
            log.error("internal error on %s %s:\n%s", scope.get("method"), scope.get("path"),
                      trace)
            if not started:
                await JSONResponse(error_body(
                    f"internal error in ai-router ({type(e).__name__}); see the server log",
                    "server_error"), status_code=500)(scope, receive, send)


def parse_body(raw: bytes, model: type[Body]) -> Body:
    """The body as `model`, or a 400 naming the first bad field."""
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        raise ApiError(400, f"the request body is not valid JSON: {e}") from None
    except RecursionError:
        raise ApiError(400, "the request body is nested too deeply") from None
    if too_deep(data):
        raise ApiError(400, f"the request body nests deeper than {MAX_JSON_DEPTH} levels")
    if not isinstance(data, dict):
        raise ApiError(400, "the request body must be a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ApiError(400, f"invalid request: {where}: {first['msg']}",
                       param=where or None) from None
