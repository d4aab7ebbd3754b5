"""route_and_ask over plain HTTP (for the OpenClaw plugin and any script), and feedback.

    POST /v1/route_and_ask  ToolQuestion JSON → ToolAnswer JSON
    POST /v1/feedback       {"request_id": ..., "feedback": "good" | "bad"} → the same back

The app's middleware already applies: bearer auth, the body limit, the clean 500. Errors
use the same OpenAI error body and status rules as chat completions (`failures.py`).
"""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from ..errors import RouterError
from ..router import Router
from ..tool import ToolAnswer, ToolQuestion, route_and_ask
from .failures import ApiError, from_router_error, parse_body

SOURCE = "tool"  # the ledger's `outcomes.source` for calls delegated by an agent's tool

routes = APIRouter()


class Feedback(BaseModel):
    request_id: str = Field(min_length=1, description="a route_and_ask answer's request_id")
    feedback: Literal["good", "bad"]


def _documented(model: type[BaseModel]) -> dict[str, Any]:
    """The body schema for OpenAPI: bodies are parsed by hand (errors in OpenAI's shape,
    not FastAPI's 422), so FastAPI cannot infer it."""
    return {"requestBody": {"required": True, "content": {
        "application/json": {"schema": model.model_json_schema()}}}}


@routes.post("/v1/route_and_ask", openapi_extra=_documented(ToolQuestion))
async def route_and_ask_endpoint(request: Request) -> ToolAnswer:
    router: Router = request.app.state.router
    question = parse_body(await request.body(), ToolQuestion)
    try:
        return await route_and_ask(router, question, source=SOURCE)
    except RouterError as e:
        raise from_router_error(e, router) from None


@routes.post("/v1/feedback", openapi_extra=_documented(Feedback))
async def feedback_endpoint(request: Request) -> Feedback:
    router: Router = request.app.state.router
    body = parse_body(await request.body(), Feedback)
    found = await asyncio.to_thread(router.ledger.set_feedback, body.request_id, body.feedback)
    if not found:
        raise ApiError(404, f"no answer with request_id {body.request_id!r} in the ledger",
                       param="request_id", code="request_not_found")
    return body
