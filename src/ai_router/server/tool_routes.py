"""route_and_ask over plain HTTP (for the OpenClaw plugin and any script), and feedback.

    POST /v1/route_and_ask  ToolQuestion JSON → ToolAnswer JSON
    POST /v1/feedback       {"request_id": ..., "feedback": "good" | "bad"} → the same back

The app's middleware already applies: bearer auth, the body limit, the clean 500. Errors
use the same OpenAI error body and status rules as chat completions (`failures.py`).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, Literal, TypeVar

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field, ValidationError

from ..errors import RouterError
from ..router import Router
from ..tool import ToolAnswer, ToolQuestion, route_and_ask
from .failures import ApiError, from_router_error
from .security import MAX_JSON_DEPTH, too_deep

SOURCE = "tool"  # the ledger's `outcomes.source` for calls delegated by an agent's tool

routes = APIRouter()
Body = TypeVar("Body", bound=BaseModel)


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


def parse_body(raw: bytes, model: type[Body]) -> Body:
    """The body as `model`, or a 400 naming the first bad field."""
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        raise ApiError(400, f"the request body is not valid JSON: {e}") from None
    except RecursionError:
        raise ApiError(400, "the request body is nested too deeply") from None
    if too_deep(data):
        raise ApiError(400, f"the request body nests deeper than {MAX_JSON_DEPTH} levels")
    if not isinstance(data, dict):
        raise ApiError(400, "the request body must be a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ApiError(400, f"invalid request: {where}: {first['msg']}",
                       param=where or None) from None
