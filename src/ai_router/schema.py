"""Data shapes shared by every layer: the request, the manager's decision, usage, results.

The router's internal request format is the OpenAI chat format; adapters translate it.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Capability = Literal["chat", "knowledge", "writing", "coding", "math", "reasoning", "extraction"]
Tier = Literal["local", "cheap", "strong"]
CAPABILITIES: tuple[Capability, ...] = (
    "chat", "knowledge", "writing", "coding", "math", "reasoning", "extraction")
TIERS: tuple[Tier, ...] = ("local", "cheap", "strong")  # cheapest first
Feature = Literal["tools", "vision", "json"]


class RoutingDecision(BaseModel):
    """The manager's proposal. Kept tiny: every output token of the manager costs latency."""

    capability: Capability
    output_tokens: int = Field(ge=1, le=100_000, description="expected answer length in tokens")
    tier: Tier
    reason: str = Field(default="", max_length=120)


class ChatRequest(BaseModel):
    """An OpenAI chat-completions request body. Unknown fields are kept and ignored."""

    model_config = ConfigDict(extra="allow")

    model: str = "auto"
    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]] | None = None
    tool_choice: Any = None
    response_format: dict[str, Any] | None = None
    temperature: float | None = None
    top_p: float | None = None
    stop: str | list[str] | None = None
    max_tokens: int | None = Field(default=None, ge=1)  # OpenAI's own bound; a negative
    max_completion_tokens: int | None = Field(default=None, ge=1)  # cap once became a 500
    reasoning_effort: str | None = None
    stream: bool = False
    stream_options: dict[str, Any] | None = None

    @property
    def requested_max_output(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens

    @property
    def tools_required(self) -> bool:
        """tool_choice "required" or a named function: an answer in plain text won't do."""
        return self.tool_choice == "required" or isinstance(self.tool_choice, dict)

    def without_tools(self) -> ChatRequest:
        """The same conversation for a model with no tool support: earlier tool calls and
        results become plain text, and no tools are offered."""
        messages = []
        for m in self.messages:
            if m.get("role") == "tool":
                messages.append({"role": "user",
                                 "content": f"[tool result]\n{_text(m.get('content'))}"})
            elif m.get("tool_calls"):
                calls = "; ".join(f"{c['function']['name']}({c['function'].get('arguments', '')})"
                                  for c in m["tool_calls"] if c.get("function"))
                text = _text(m.get("content"))
                messages.append({"role": "assistant",
                                 "content": f"{text}\n[called tools: {calls}]".strip()})
            else:
                messages.append(m)
        return self.model_copy(update={"messages": messages, "tools": None, "tool_choice": None})

    @classmethod
    def from_prompt(cls, prompt: str, system: str | None = None, **kw: Any) -> ChatRequest:
        messages = [{"role": "system", "content": system}] if system else []
        return cls(messages=[*messages, {"role": "user", "content": prompt}], **kw)


def _text(content: Any) -> str:
    if isinstance(content, list):
        return "\n".join(p.get("text", "") for p in content if isinstance(p, dict))
    return content or ""


class Usage(BaseModel):
    """Normalised token usage. input_tokens includes cache reads and writes;
    output_tokens includes reasoning tokens (both are subsets, never added twice)."""

    input_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    estimated: bool = False  # the provider reported nothing; these are our own counts

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


class ToolCallDelta(BaseModel):
    """A fragment of a streamed tool call, in OpenAI's shape (index-addressed)."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""


class Delta(BaseModel):
    """One streamed event from an adapter. The final one carries finish_reason and/or usage."""

    text: str = ""
    reasoning: str = ""
    tool_calls: list[ToolCallDelta] = Field(default_factory=list)
    finish_reason: str | None = None
    usage: Usage | None = None


class Completion(BaseModel):
    """A finished (non-streamed) answer from one provider."""

    text: str = ""
    reasoning: str = ""
    tool_calls: list[dict[str, Any]] = Field(default_factory=list)  # OpenAI tool_calls shape
    finish_reason: str = "stop"
    usage: Usage | None = None  # None: the provider reported no usage
    model: str = ""  # the model name the provider reported
