"""A client that hangs up mid-stream cancels the upstream call, and what was used is
settled in the ledger (not left reserved until the reservation expires)."""

from __future__ import annotations

import asyncio
import json
import threading

import httpx
from starlette.responses import StreamingResponse

from server_setup import (  # noqa: F401 - fixtures
    served_fixture,
    start_server_fixture,
    ups_fixture,
    wait_for,
)
from upstreams.openai_wire import chunk_body


def endless_upstream(closed: threading.Event):
    """An upstream that sends two chunks, then thinks forever until its client leaves."""
    def reply(_received):
        async def body():
            try:
                for delta in ({"role": "assistant", "content": ""}, {"content": "partial"}):
                    yield f"data: {json.dumps(chunk_body(delta))}\n\n"
                await asyncio.sleep(60)
            finally:
                closed.set()
        return StreamingResponse(body(), media_type="text/event-stream")
    return reply


def test_client_disconnect_cancels_the_upstream_call_and_settles_the_ledger(served):
    closed = threading.Event()
    served.ups.openai.push(endless_upstream(closed))
    body = {"model": "oai/gpt-test", "stream": True,
            "messages": [{"role": "user", "content": "write a very long story"}]}
    with httpx.Client(timeout=10) as client, client.stream(
            "POST", f"{served.url}/v1/chat/completions", json=body) as r:
        request_id = r.headers["x-ai-router-request-id"]
        for line in r.iter_lines():
            if "partial" in line:
                break  # leave with the answer unfinished: the connection is dropped
    assert closed.wait(5), "the upstream call was not cancelled"
    settled = wait_for(lambda: [c for c in served.calls(request_id) if c["status"] == "settled"])
    assert settled, f"ledger row still {served.calls(request_id)}"
    (call,) = settled
    assert 0 < call["cost_micro"] <= call["reserved_micro"], "charged for what was used"
    assert call["usage_estimated"] == 1 and call["output_tokens"] >= 1
    assert served.outcome(request_id)["status"] == "cancelled"
    assert httpx.get(f"{served.url}/health").status_code == 200
