"""The x-ai-router-* transparency headers sent with every chat response.

For a streamed answer they go out before the first byte, when the cost is not known
yet: x-ai-router-cost-usd then holds the amount reserved for the call (its worst
case). The outcome log row, found by x-ai-router-request-id, holds the full story.
"""

from __future__ import annotations

import re

from ..config import ModelConfig
from ..ledger import usd
from ..manager import ManagerResult

_UNSAFE = re.compile(r"[^\x20-\x7e]")  # header values: printable ASCII only
DECISION_MAX_CHARS = 200


def header_safe(text: str, limit: int = DECISION_MAX_CHARS) -> str:
    """Printable ASCII, one line, bounded: whatever a model wrote in its reason."""
    return _UNSAFE.sub("?", " ".join(text.split()))[:limit]


def decision_summary(capability: str, manager: ManagerResult) -> str:
    reason = manager.decision.reason or manager.fallback_reason or ""
    return header_safe(f"{capability}; {manager.source}; {reason}".rstrip("; "))


def routing_headers(*, request_id: str, model: ModelConfig, capability: str,
                    manager: ManagerResult, cost_micro: int, remaining_micro: int,
                    offline: bool) -> dict[str, str]:
    headers = {
        "x-ai-router-request-id": request_id,
        "x-ai-router-model": header_safe(model.ref),
        "x-ai-router-tier": model.tier,
        "x-ai-router-cost-usd": f"{usd(cost_micro):.6f}",
        "x-ai-router-remaining-usd": f"{usd(remaining_micro):.6f}",
        "x-ai-router-decision": decision_summary(capability, manager),
    }
    if offline:
        headers["x-ai-router-offline"] = "1"
    return headers
