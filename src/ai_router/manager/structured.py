"""What the manager model must answer, and how its answer becomes a RoutingDecision.

`ManagerReply` is the schema instructor sends and validates. It is looser than
`RoutingDecision` on numbers (an out-of-range estimate is clamped, not a failure) and
tighter on the reason (every output token costs latency on a tiny model).
"""

from __future__ import annotations

import json

from pydantic import BaseModel, Field

from ..digest import Digest
from ..schema import CAPABILITIES, TIERS, Capability, RoutingDecision, Tier
from .fallback import clamp_output_tokens

REASON_CHARS = 40
# A character set the reason may use: plain prose, nothing that needs JSON escaping.
_REASON_CLASS = r"[a-zA-Z0-9 ,.;:'()/+-]"


class CapabilityReply(BaseModel):
    """What the model answers when the evidence sets tier and length (combined mode): the
    capability comes out exactly as in a full reply (same prefix, greedy decoding), and
    the fields after it would be ~12 generated tokens thrown away."""

    # Field order is generation order under a schema grammar: the reason first (see below).
    reason: str = Field(default="", description="a few words saying what is asked")
    capability: Capability


class ManagerReply(CapabilityReply):
    output_tokens: int = Field(description="expected answer length in tokens")
    tier: Tier


def decision_grammar(full: bool = True) -> str:
    """A llama.cpp GBNF grammar for ManagerReply (CapabilityReply unless `full`) with no
    free whitespace.

    llama.cpp's own schema-to-grammar allows whitespace between tokens, and a tiny model
    will happily pad with newlines until max_tokens; this grammar leaves it no room.
    """
    def alternatives(values: tuple[str, ...]) -> str:
        return " | ".join(json.dumps(v) for v in values)

    # The reason comes first: naming the task in a few words steers a tiny model's
    # choice of capability (7 of 14 test prompts right instead of 2 of 14).
    head = r'"{\"reason\":\"" reason "\",\"capability\":\"" capability'
    tail = r'"\",\"output_tokens\":" tokens ",\"tier\":\"" tier "\"}"'
    close = r'"\"}"'
    return "\n".join([
        f"root ::= {head} {tail if full else close}",
        f"capability ::= {alternatives(CAPABILITIES)}",
        f"tier ::= {alternatives(TIERS)}",
        "tokens ::= [1-9] [0-9]{0,4}",
        f"reason ::= {_REASON_CLASS}{{0,{REASON_CHARS}}}",
    ]) + "\n"


def to_decision(reply: ManagerReply, digest: Digest) -> RoutingDecision:
    """Sanitize the model's proposal into a valid RoutingDecision."""
    return RoutingDecision(
        capability=reply.capability,
        output_tokens=clamp_output_tokens(reply.output_tokens, digest.requested_max_output),
        tier=reply.tier,
        reason=clean_reason(reply.reason),
    )


def clean_reason(reason: str) -> str:
    return " ".join(reason.split())[:REASON_CHARS]
