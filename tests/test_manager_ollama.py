"""The manager prefers a running Ollama that has its model, keeps it warm, and caches the choice."""

from __future__ import annotations

import asyncio
import json

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from ai_router.config import ManagerConfig
from ai_router.digest import make_digest
from ai_router.manager import Manager
from ai_router.schema import ChatRequest
from upstreams.server import serve

DIGEST = make_digest(ChatRequest.from_prompt("Who wrote Hamlet?"), 12)
DECISION = {"reason": "fact question", "capability": "knowledge", "output_tokens": 80,
            "tier": "cheap"}


class FakeOllama:
    """GET /api/tags, POST /api/generate (load only) and POST /v1/chat/completions."""

    def __init__(self, models: list[str]):
        self.models = models
        self.seen: list[tuple[str, dict]] = []

    async def _tags(self, request: Request) -> JSONResponse:
        self.seen.append((request.url.path, {}))
        return JSONResponse({"models": [{"name": m, "model": m, "size": 1, "digest": "d",
                                         "modified_at": "2025-01-01T00:00:00Z"}
                                        for m in self.models]})

    async def _generate(self, request: Request) -> JSONResponse:
        body = json.loads(await request.body())
        self.seen.append((request.url.path, body))
        return JSONResponse({"model": body["model"], "created_at": "2025-01-01T00:00:00Z",
                             "response": "", "done": True, "done_reason": "load"})

    async def _chat(self, request: Request) -> JSONResponse:
        body = json.loads(await request.body())
        self.seen.append((request.url.path, body))
        return JSONResponse({
            "id": "chatcmpl-1", "object": "chat.completion", "created": 1_700_000_000,
            "model": body["model"], "system_fingerprint": "fp_ollama",
            "choices": [{"index": 0, "finish_reason": "stop", "message": {
                "role": "assistant", "content": json.dumps(DECISION)}}],
            "usage": {"prompt_tokens": 300, "completion_tokens": 30, "total_tokens": 330}})

    @property
    def app(self) -> Starlette:
        return Starlette(routes=[
            Route("/api/tags", self._tags), Route("/api/generate", self._generate,
                                                  methods=["POST"]),
            Route("/v1/chat/completions", self._chat, methods=["POST"])])

    def paths(self) -> list[str]:
        return [path for path, _ in self.seen]


@pytest.fixture
def ollama():
    fake = FakeOllama(["qwen2.5:0.5b"])
    with serve(fake.app) as host:
        fake.host = host
        yield fake


async def test_ollama_with_the_model_decides_through_its_openai_endpoint(ollama):
    manager = Manager(ManagerConfig(endpoint=ollama.host, model="qwen2.5:0.5b",
                                    keep_alive="45m", embedded_fallback=False), seeds=None)
    result = await manager.decide(DIGEST)
    assert result.source == "model", result.fallback_reason
    assert result.model == "ollama/qwen2.5:0.5b"
    assert result.decision.capability == "knowledge" and result.decision.output_tokens == 80
    chat = next(body for path, body in ollama.seen if path == "/v1/chat/completions")
    assert chat["model"] == "qwen2.5:0.5b"
    assert chat["response_format"]["type"] == "json_schema" and "grammar" not in chat
    await asyncio.gather(*manager._background)  # the keep-warm call runs in the background
    warm = [body for path, body in ollama.seen if path == "/api/generate"]
    assert warm and warm[-1]["keep_alive"] == "45m" and warm[-1]["model"] == "qwen2.5:0.5b"


async def test_the_endpoint_choice_is_cached_between_decisions(ollama):
    manager = Manager(ManagerConfig(endpoint=ollama.host, embedded_fallback=False),
                      seeds=None, cache_size=0)
    await manager.decide(DIGEST)
    await manager.decide(DIGEST)
    assert ollama.paths().count("/api/tags") == 1
    assert ollama.paths().count("/v1/chat/completions") == 2


async def test_ollama_without_the_model_and_no_embedded_fallback_says_how_to_fix_it(ollama):
    manager = Manager(ManagerConfig(endpoint=ollama.host, model="llama3.2:1b",
                                    embedded_fallback=False), seeds=None)
    result = await manager.decide(DIGEST)
    assert result.source == "fallback"
    assert "ollama pull llama3.2:1b" in result.fallback_reason
    assert "/v1/chat/completions" not in ollama.paths()
