"""`ai-router serve`: run the OpenAI-compatible server (registered in cli.COMMAND_MODULES)."""

from __future__ import annotations

from typing import Annotated

import typer

from ..cli import ConfigOpt, app, clean_errors, err, offline_forced
from .security import API_KEY_ENV, DEFAULT_MAX_BODY_BYTES, check_bind


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
              help="log one line per request (method, path, status)")] = True) -> None:
    """Serve POST /v1/chat/completions, GET /v1/models, /v1/budget and /health
    (OpenAI-compatible: point OpenClaw or any OpenAI SDK at http://HOST:PORT/v1)."""
    import uvicorn

    from ..config import Keys, load_config
    from ..router import Router
    from .app import create_app

    api_key = Keys.load().get(API_KEY_ENV)  # environment or .env, like the provider keys
    check_bind(host, api_key)
    router = Router.from_config(load_config(config), offline=offline_forced(offline))
    err.print(f"ai-router: serving http://{host}:{port}/v1"
              f"{' (bearer key required)' if api_key else ''}"
              f"{' (offline-only)' if router.offline else ''}", highlight=False)
    app_ = create_app(router, api_key=api_key, max_body_bytes=int(max_body_mb * 2**20))
    _freeze_startup_objects()
    uvicorn.run(app_, host=host, port=port, log_level="info", log_config=_log_config(),
                access_log=access_log)


def _freeze_startup_objects() -> None:
    """Keep the ~160k objects built at import (SDK types, pydantic models) out of the
    garbage collector's full passes: each one walked them all, a 40 ms pause that landed
    on whichever request was running (the server's p99)."""
    import gc

    gc.collect()
    gc.freeze()


def _log_config() -> dict:
    """uvicorn's logging, plus ai-router's own server log on the same handler. Access
    lines carry the request line and status, never headers (so never the bearer key)."""
    import copy

    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["ai_router"] = {"handlers": ["default"], "level": "INFO",
                                      "propagate": False}
    return config
