"""Streaming a routed answer as SSE, flushing each delta as it arrives.

The router settles a stream in the ledger when its deltas generator ends or is
closed. So a client that hangs up must close it: SSEResponse watches for the
disconnect and cancels the task pumping the stream (one asyncio cancellation, so the
router's cleanup can still await the upstream's close), then closes the generator.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from ..errors import ProviderError
from ..router import RoutedStream
from .openai_format import SSE_DONE, chunk_body, completion_id, delta_body, error_body, sse

log = logging.getLogger("ai_router.server")


async def sse_events(stream: RoutedStream, *, include_usage: bool, created: int
                     ) -> AsyncIterator[bytes]:
    """role chunk → content/reasoning/tool-call chunks → finish chunk → usage chunk (when
    asked) → [DONE]. A provider failure mid-stream becomes an SSE error event."""
    cid, model = completion_id(stream.request_id), stream.model.ref
    finish: str | None = None
    try:
        yield sse(chunk_body(cid, model, created, {"role": "assistant", "content": ""}))
        async for delta in stream.deltas:
            body = delta_body(delta)
            if body:
                yield sse(chunk_body(cid, model, created, body))
            finish = delta.finish_reason or finish
    except ProviderError as e:  # cut mid-stream: the router has settled it already
        yield sse(error_body(str(e), "server_error", code="provider_stream_failed"))
        return
    finally:
        await aclose(stream.deltas)
    yield sse(chunk_body(cid, model, created, {}, finish_reason=finish or "stop"))
    if include_usage and stream.result is not None:
        yield sse(chunk_body(cid, model, created, usage=stream.result.usage))
    yield SSE_DONE


async def aclose(iterator: Any) -> None:
    close = getattr(iterator, "aclose", None)
    if close is not None:
        await close()


class SSEResponse(Response):
    """text/event-stream whose producer is cancelled when the client goes away."""

    media_type = "text/event-stream"

    def __init__(self, events: AsyncIterator[bytes], headers: dict[str, str]):
        self.events, self.status_code, self.background = events, 200, None
        self.init_headers({**headers, "cache-control": "no-cache", "x-accel-buffering": "no"})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        pump = asyncio.create_task(self._pump(send))
        gone = asyncio.create_task(_disconnect(receive))
        try:
            await asyncio.wait({pump, gone}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not pump.done():
                log.info("client disconnected mid-stream: cancelling the upstream call")
            pump.cancel()
            gone.cancel()
            await asyncio.gather(pump, gone, return_exceptions=True)
        if not pump.cancelled() and pump.exception() is not None:
            raise pump.exception()  # type: ignore[misc]  # a bug: let CatchAll log it

    async def _pump(self, send: Send) -> None:
        try:
            await send({"type": "http.response.start", "status": self.status_code,
                        "headers": self.raw_headers})
            async for chunk in self.events:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except OSError:  # the transport is gone; the disconnect watcher will notice too
            pass
        finally:
            await aclose(self.events)


async def _disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
