"""An OpenAI-compatible upstream that answers instantly, for measuring the router's own cost.

    python bench/fast_upstream.py --port 9100      # prints "ready <port>" once listening

A raw asyncio protocol (no framework, no JSON parsing of the request): HTTP/1.1 with
keep-alive, Content-Length request bodies. POST …/chat/completions answers with a canned
`chat.completion`, or, when the body has `"stream": true`, a canned SSE stream (chunked
transfer encoding, all events in one write). A request for the model `paced` streams its
content chunks PACE_S apart instead, so a client can see whether a proxy in between
buffers the stream. Anything else is a 404. It runs in its own process so it never
competes with the router for the same event loop.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re

PACE_S = 0.05
PACED_CHUNKS = 5
_STREAM = re.compile(rb'"stream"\s*:\s*true')
_PACED = re.compile(rb'"model"\s*:\s*"paced"')
_USAGE = {"prompt_tokens": 1200, "completion_tokens": 12, "total_tokens": 1212}


def _completion() -> bytes:
    message = {"role": "assistant", "content": "Hello from the fast upstream."}
    return json.dumps({
        "id": "chatcmpl-fast", "object": "chat.completion", "created": 1_700_000_000,
        "model": "fast-model", "usage": _USAGE,
        "choices": [{"index": 0, "finish_reason": "stop", "message": message}]}).encode()


def _event(delta: dict, finish: str | None = None, usage: dict | None = None) -> bytes:
    chunk = {"id": "chatcmpl-fast", "object": "chat.completion.chunk", "created": 1_700_000_000,
             "model": "fast-model",
             "choices": [] if usage else [{"index": 0, "delta": delta, "finish_reason": finish}]}
    if usage:
        chunk["usage"] = usage
    return b"data: " + json.dumps(chunk).encode() + b"\n\n"


def _chunked(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


COMPLETION = _completion()
WORDS = ["Hello", " from", " the", " fast", " upstream."]
HEAD = _event({"role": "assistant", "content": ""})
CONTENT = [_event({"content": w}) for w in WORDS]
TAIL = _event({}, finish="stop") + _event({}, usage=_USAGE) + b"data: [DONE]\n\n"
STREAM_BODY = _chunked(HEAD + b"".join(CONTENT) + TAIL) + b"0\r\n\r\n"
JSON_HEAD = (b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
             b"content-length: %d\r\n\r\n" % len(COMPLETION))
SSE_HEAD = (b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
            b"cache-control: no-cache\r\ntransfer-encoding: chunked\r\n\r\n")
NOT_FOUND = b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n"


class Upstream(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:  # one request at a time; pipelined ones wait in the buffer
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buffer[:end].lower()
            match = re.search(rb"\r\ncontent-length:\s*(\d+)", head)
            size = int(match.group(1)) if match else 0
            if len(self.buffer) < end + 4 + size:
                return
            body = self.buffer[end + 4:end + 4 + size]
            self.buffer = self.buffer[end + 4 + size:]
            self.answer(head.split(b" ", 2), body)

    def answer(self, line: list[bytes], body: bytes) -> None:
        if len(line) < 2 or line[0] != b"post" or not line[1].endswith(b"/chat/completions"):
            self.transport.write(NOT_FOUND)
        elif not _STREAM.search(body):
            self.transport.write(JSON_HEAD + COMPLETION)
        elif _PACED.search(body):
            asyncio.ensure_future(self.paced())
        else:
            self.transport.write(SSE_HEAD + STREAM_BODY)

    async def paced(self) -> None:
        self.transport.write(SSE_HEAD + _chunked(HEAD))
        for event in CONTENT:
            await asyncio.sleep(PACE_S)
            if self.transport.is_closing():
                return
            self.transport.write(_chunked(event))
        self.transport.write(_chunked(TAIL) + b"0\r\n\r\n")


async def main(host: str, port: int) -> None:
    server = await asyncio.get_running_loop().create_server(Upstream, host, port, backlog=1024)
    print(f"ready {server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):  # SIGINT is how the bench stops it
        asyncio.run(main(args.host, args.port))
