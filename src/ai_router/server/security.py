"""Who may talk to the server, and how much they may send.

Loopback by default. Binding any other address requires AI_ROUTER_API_KEY, and then
every request must carry `Authorization: Bearer <key>` (compared in constant time).
Request bodies are capped. The key itself is never logged or echoed.
"""

from __future__ import annotations

import hmac
import ipaddress

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..errors import ConfigError
from .openai_format import error_body

API_KEY_ENV = "AI_ROUTER_API_KEY"
DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024
# deeper JSON than this is refused: past ~950 levels json.dumps (ours or an SDK's) raises
# RecursionError mid-call; real requests, tool schemas included, stay far below 64
MAX_JSON_DEPTH = 64


def too_deep(value: object, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether parsed JSON (plain dicts and lists) nests deeper than `limit`. Recursive but
    never more than `limit` calls deep; it visits containers only (an agent body has
    thousands of leaves): 27 µs on a 37k-character one, a work list took 90."""
    kind = type(value)
    if kind is not dict and kind is not list:
        return False
    if limit == 0:
        return True
    for item in (value.values() if kind is dict else value):  # type: ignore[attr-defined]
        if (type(item) is dict or type(item) is list) and too_deep(item, limit - 1):
            return True
    return False


class InsecureBind(ConfigError):
    """A non-loopback address without an API key: anyone on the network could spend."""


def is_loopback(host: str) -> bool:
    if host.strip("[]").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a hostname other than localhost may resolve anywhere
        return False


def check_bind(host: str, api_key: str | None) -> None:
    """Refuse to serve a non-loopback address without a key."""
    if not is_loopback(host) and not api_key:
        raise InsecureBind(
            f"refusing to listen on {host}: it is reachable from other machines and "
            f"{API_KEY_ENV} is not set. Set {API_KEY_ENV} (clients then send "
            f"'Authorization: Bearer <key>') or bind 127.0.0.1.")


def bearer_matches(authorization: str | None, api_key: str) -> bool:
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(token.strip().encode(), api_key.encode())


class BearerAuth:
    """ASGI middleware: every HTTP request needs the bearer key (when one is configured)."""

    def __init__(self, app: ASGIApp, api_key: str | None):
        self.app, self.api_key = app, api_key

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.api_key:
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        value = headers.get(b"authorization", b"").decode("latin-1")
        if bearer_matches(value, self.api_key):
            return await self.app(scope, receive, send)
        await JSONResponse(
            error_body(f"missing or wrong API key: send 'Authorization: Bearer <key>' with "
                       f"the value of {API_KEY_ENV}", code="invalid_api_key"),
            status_code=401, headers={"www-authenticate": "Bearer"})(scope, receive, send)


class BodyLimit:
    """ASGI middleware: read the body up front (at most `max_bytes`), answer 413 past it,
    then replay it to the app. Later receive() calls go to the server, so the app can
    still hear the client disconnect."""

    def __init__(self, app: ASGIApp, max_bytes: int = DEFAULT_MAX_BODY_BYTES):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            return await self._too_large(scope, receive, send)
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if len(body) > self.max_bytes:
                return await self._too_large(scope, receive, send)
            if not message.get("more_body"):
                break
        pending: list[Message] = [{"type": "http.request", "body": bytes(body),
                                   "more_body": False}]

        async def replay() -> Message:
            return pending.pop() if pending else await receive()

        await self.app(scope, replay, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        await JSONResponse(
            error_body(f"request body too large: the limit is {self.max_bytes} bytes",
                       code="request_too_large"), status_code=413,
            headers={"connection": "close"})(scope, receive, send)
