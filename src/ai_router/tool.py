"""`route_and_ask`: the tool an agent calls to delegate one question to the best model
the budget allows. Shared by the HTTP endpoint, the MCP server and the OpenClaw plugin."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from .ledger import usd
from .schema import Capability, ChatRequest

if TYPE_CHECKING:  # the router pulls in every SDK; callers that only need the shapes don't
    from .router import Router


class ToolQuestion(BaseModel):
    prompt: str = Field(min_length=1, description="the question or task to delegate")
    capability: Capability | None = Field(
        default=None, description="what the task needs; omit to let the router decide")
    max_cost_usd: float | None = Field(default=None, ge=0, le=1_000_000,  # finite in micro-USD
                                       description="the most this one call may cost")
    context: str | None = Field(default=None, description="background the answer needs")


class ToolAnswer(BaseModel):
    answer: str
    provider: str
    model: str
    tier: str
    cost_usd: float
    remaining_usd: float
    offline: bool = Field(description="true when only local models may answer today")
    note: str | None = Field(default=None, description="why a cheaper model answered, if so")
    request_id: str


async def route_and_ask(router: Router, question: ToolQuestion, source: str = "tool"
                        ) -> ToolAnswer:
    system = f"Use this context to answer:\n{question.context}" if question.context else None
    request = ChatRequest.from_prompt(question.prompt, system=system)
    r = await router.ask(request, capability=question.capability,
                         max_cost_usd=question.max_cost_usd, source=source)
    return ToolAnswer(answer=r.completion.text, provider=r.model.provider, model=r.model.ref,
                      tier=r.model.tier, cost_usd=usd(r.cost_micro),
                      remaining_usd=usd(r.remaining_micro), offline=r.offline,
                      note=_note(r.offline, r.overrides), request_id=r.request_id)


def _note(offline: bool, overrides: list[str]) -> str | None:
    if offline:
        return ("the budget allows no paid model right now (or offline mode is on): "
                "answered by a local model")
    downgrades = [o for o in overrides if o.startswith("tier ")]
    return downgrades[-1] if downgrades else None


def tool_schema() -> dict[str, Any]:
    """The tool's JSON schema for agents that register tools by schema."""
    return ToolQuestion.model_json_schema()
