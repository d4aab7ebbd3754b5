"""`ai-router serve`: run the OpenAI-compatible server (registered in cli.COMMAND_MODULES)."""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Annotated

import typer

from ..cli import ConfigOpt, app, clean_errors, err, offline_forced
from .security import API_KEY_ENV, DEFAULT_MAX_BODY_BYTES, check_bind

if TYPE_CHECKING:
    from fastapi import FastAPI

    from ..router import Router

WORKER_OPTIONS_ENV = "AI_ROUTER_SERVE_WORKER"  # how `serve --workers N` briefs each worker


@app.command()
@clean_errors
def serve(host: Annotated[str, typer.Option(
              help=f"address to bind; anything but loopback needs {API_KEY_ENV}")] = "127.0.0.1",
          port: Annotated[int, typer.Option(help="port to listen on")] = 8787,
          config: ConfigOpt = None,
          offline: Annotated[bool, typer.Option(help="use local models only")] = False,
          max_body_mb: Annotated[float, typer.Option(help="largest request body, in MB")]
          = DEFAULT_MAX_BODY_BYTES / 2**20,
          access_log: Annotated[bool, typer.Option(
              help="log one line per request (method, path, status)")] = True,
          workers: Annotated[int, typer.Option(
              min=1, help="processes sharing the port and the ledger: one per core for "
              "throughput (each keeps its own provider cooldowns and decision cache)")] = 1,
          ) -> None:
    """Serve POST /v1/chat/completions, GET /v1/models, /v1/budget and /health
    (OpenAI-compatible: point OpenClaw or any OpenAI SDK at http://HOST:PORT/v1)."""
    import uvicorn

    from ..config import Keys

    api_key = Keys.load().get(API_KEY_ENV)  # environment or .env, like the provider keys
    check_bind(host, api_key)
    options = {"config": str(config) if config else None, "offline": offline_forced(offline),
               "max_body_bytes": int(max_body_mb * 2**20)}
    # built here even for workers: a bad config or ledger is one line before anything starts
    router = _router(options)
    err.print(f"ai-router: serving http://{host}:{port}/v1"
              f"{' (bearer key required)' if api_key else ''}"
              f"{' (offline-only)' if router.offline else ''}"
              f"{f' ({workers} workers)' if workers > 1 else ''}", highlight=False)
    settings = {"host": host, "port": port, "log_level": "info", "log_config": _log_config(),
                "access_log": access_log}
    if workers == 1:
        uvicorn.run(_app(router, api_key, options), **settings)
        return
    router.ledger.close()
    os.environ[WORKER_OPTIONS_ENV] = json.dumps(options)  # no key in it: workers load their own
    uvicorn.run(f"{__name__}:worker_app", factory=True, workers=workers, **settings)


def worker_app() -> FastAPI:
    """One process of `serve --workers N` (uvicorn starts each afresh): its own Router on
    the shared ledger, which keeps the money, the outcome log and sticky routing."""
    from ..config import Keys

    options = json.loads(os.environ[WORKER_OPTIONS_ENV])
    return _app(_router(options), Keys.load().get(API_KEY_ENV), options)


def _router(options: dict) -> Router:
    from ..config import load_config
    from ..router import Router

    return Router.from_config(load_config(options["config"]), offline=options["offline"])


def _app(router: Router, api_key: str | None, options: dict) -> FastAPI:
    from .app import create_app

    app_ = create_app(router, api_key=api_key, max_body_bytes=options["max_body_bytes"])
    _freeze_startup_objects()
    return app_


def _freeze_startup_objects() -> None:
    """Keep the ~160k objects built at import (SDK types, pydantic models) out of the
    garbage collector's full passes: each one walked them all, a 40 ms pause that landed
    on whichever request was running (the server's p99). And collect the young generation
    every 10,000 allocations instead of 700: a request allocates thousands of short-lived
    objects, and ~10% more requests/s at c=64 (docs/benchmarks.md, "Server overhead")."""
    import gc

    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 20, 20)


def _log_config() -> dict:
    """uvicorn's logging, plus ai-router's own server log on the same handler. Access
    lines carry the request line and status, never headers (so never the bearer key)."""
    import copy

    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["ai_router"] = {"handlers": ["default"], "level": "INFO",
                                      "propagate": False}
    return config
