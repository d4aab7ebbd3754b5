"""Deterministic evidence about a request, and how it combines with the model's proposal.

Votes per capability come from the nearest labelled seed examples (BM25-weighted shares),
the keyword heuristic, facts that settle the question outright (the client asked for a
capability by virtual model; the text holds a code fence) and, when it answered, the
model. The weights were chosen on the seed bank, leave-one-out, and checked on the
held-out file (docs/benchmarks.md, "Manager"): kNN + keywords beat the keyword
heuristic alone; the model is asked only when the evidence is split.
"""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass

from ..digest import Digest
from ..schema import CAPABILITIES, Capability, RoutingDecision, Tier
from .fallback import (
    CODE_FENCE,
    TIER_BY_CAPABILITY,
    adjust_output_tokens,
    estimate_output_tokens,
    explicit_capability,
    keyword_capability,
)
from .retrieval import Neighbour

KEYWORD_WEIGHT = 0.3  # the nearest examples' shares add up to 1
EXPLICIT_WEIGHT = 0.5  # on top of the keyword vote: the request names its task outright
# A tie-breaker only: on the seed bank's uncertain cases SmolLM2-135M's capability was
# right less often than the evidence's (docs/benchmarks.md). A stronger local model
# earns more weight by beating the "evidence" arm of `ai-router eval --compare`.
MODEL_WEIGHT = 0.1
SETTLED_WEIGHT = 2.0  # more than every other vote together
# The evidence alone decides when its leader is this far ahead: the model could not
# overturn it anyway (its vote weighs less), so asking it would only cost latency.
CONFIDENT_MARGIN = MODEL_WEIGHT


@dataclass(frozen=True)
class Evidence:
    neighbours: list[Neighbour]
    votes: dict[Capability, float]

    @property
    def ranked(self) -> list[tuple[Capability, float]]:
        return Counter(self.votes).most_common()

    @property
    def confident(self) -> bool:
        """Sure enough to skip the model: the nearest examples agree with the rest of the
        evidence by a margin the model's vote could not overturn."""
        if not self.neighbours:  # the keyword heuristic alone is never that sure
            return False
        ranked = self.ranked
        runner_up = ranked[1][1] if len(ranked) > 1 else 0.0
        return bool(ranked) and ranked[0][1] - runner_up > CONFIDENT_MARGIN

    def capability(self, model_vote: Capability | None = None) -> Capability:
        votes = Counter(self.votes)
        if model_vote:
            votes[model_vote] += MODEL_WEIGHT
        # ties go to the earlier capability in CAPABILITIES, so the result is stable
        return max(CAPABILITIES, key=lambda c: (votes[c], -CAPABILITIES.index(c)))


def gather(digest: Digest, neighbours: list[Neighbour]) -> Evidence:
    votes: Counter[Capability] = Counter()
    total = sum(n.score for n in neighbours)
    for n in neighbours if total > 0 else []:
        votes[n.example.capability] += n.score / total
    explicit = explicit_capability(digest.text)
    if explicit:  # the keywords' guess (classify) would name it too
        votes[explicit] += KEYWORD_WEIGHT + EXPLICIT_WEIGHT
    else:
        votes[keyword_capability(digest.text)] += KEYWORD_WEIGHT
    settled = settled_capability(digest)
    if settled:
        votes[settled] += SETTLED_WEIGHT
    return Evidence(neighbours, dict(votes))


def settled_capability(digest: Digest) -> Capability | None:
    """What the request itself says outright, whatever any model thinks."""
    if digest.virtual_model in CAPABILITIES:  # the client asked for it by name
        return digest.virtual_model  # type: ignore[return-value]
    if CODE_FENCE.search(digest.text):
        return "coding"
    return None


def output_tokens(capability: Capability, digest: Digest, neighbours: list[Neighbour]) -> int:
    """The median answer length of the nearest examples of this capability, adjusted by
    what the user asks for; the heuristic's estimate when none is near."""
    same = [n.example.output_tokens for n in neighbours if n.example.capability == capability]
    if not same:
        return estimate_output_tokens(capability, digest)
    return adjust_output_tokens(int(statistics.median(same)), capability, digest)


def tier(capability: Capability, neighbours: list[Neighbour]) -> Tier:
    """The tier the nearest examples of this capability needed, weighted by the square of
    their nearness, so a learned example of the very same request outweighs several
    loosely related ones (with a thousand seeds a plain sum let the crowd win); else the
    capability's."""
    same: Counter[Tier] = Counter()
    for n in neighbours:
        if n.example.capability == capability:
            same[n.example.tier] += n.score ** 2
    return same.most_common(1)[0][0] if same else TIER_BY_CAPABILITY[capability]


def decide(digest: Digest, evidence: Evidence, model_vote: Capability | None = None,
           reason: str = "") -> RoutingDecision:
    capability = evidence.capability(model_vote)
    return RoutingDecision(
        capability=capability,
        output_tokens=output_tokens(capability, digest, evidence.neighbours),
        tier=tier(capability, evidence.neighbours),
        reason=reason or f"evidence: {capability}",
    )
