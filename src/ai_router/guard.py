"""The guard: a pure, deterministic function from a proposal to a plan.

It may override the manager and records every override with a reason. Whatever
the manager says (wrong, down, prompt-injected), the plan only holds models that
can serve the request and reservations that fit what is left of the day.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from .config import Config, ModelConfig, Price
from .ledger import Snapshot
from .schema import TIERS, Capability, RoutingDecision, Tier

VIRTUAL_MODELS = ("auto", "chat", "coding", "reasoning", "long_context", "fast", "cheap",
                  "strong", "local")
_VIRTUAL_CAPABILITY: dict[str, Capability] = {
    "chat": "chat", "coding": "coding", "reasoning": "reasoning"}
_VIRTUAL_TIER: dict[str, Tier] = {"cheap": "cheap", "strong": "strong", "local": "local"}


@dataclass(frozen=True)
class Intent:
    """What the client asked for, beyond the messages."""

    virtual_model: str = "auto"  # one of VIRTUAL_MODELS, or "" when a concrete model is pinned
    pinned: str | None = None  # a concrete "provider/model"
    capability: Capability | None = None  # an explicit capability (CLI --capability, tool arg)
    max_output_tokens: int | None = None  # the client's own max_tokens
    max_cost_micro: int | None = None  # a per-call ceiling (route_and_ask's max_cost_usd)
    offline: bool = False  # forced offline-only mode
    sticky: str | None = None  # the model that served this conversation's earlier turns


@dataclass(frozen=True)
class Facts:
    """What was measured about the request (never guessed by the manager)."""

    input_tokens: int  # conservative count, safety margin included
    has_tools: bool = False
    tools_required: bool = False  # tool_choice "required" or a named tool: text won't do
    has_images: bool = False
    wants_json: bool = False
    long_context: bool = False


@dataclass(frozen=True)
class Candidate:
    model: ModelConfig
    max_tokens: int
    reserve_micro: int
    drop_tools: bool = False  # a local model without tool support answers in plain text
    expected_output_tokens: int = 0  # the estimate, calibrated for this model (0: none made)


@dataclass
class Plan:
    capability: Capability
    tier: Tier
    candidates: list[Candidate] = field(default_factory=list)
    overrides: list[str] = field(default_factory=list)
    offline: bool = False
    day: str | None = None  # the budget day it was made for (a call may end on the next)

    @property
    def refusal(self) -> str | None:
        if self.candidates:
            return None
        return "no configured model can serve this request: " + "; ".join(self.overrides[-3:])


def worst_case_micro(price: Price, input_tokens: int, output_tokens: int) -> int:
    """Reservation for one call: USD per million tokens × tokens = micro-USD, rounded up.
    Every input token at the dearer of the input and cache-write prices."""
    dearest_input = max(price.input, price.cache_write or 0.0)
    return math.ceil(input_tokens * dearest_input + output_tokens * price.output)


def plan(decision: RoutingDecision, facts: Facts, intent: Intent, snapshot: Snapshot,
         config: Config, available: frozenset[str], prices: Mapping[str, Price | None],
         balances: Mapping[str, int] | None = None,
         calibration: Mapping[tuple[str, str], float] | None = None) -> Plan:
    """Turn the manager's proposal into ordered, affordable, capable candidates.

    `available`: providers whose key is present and that are healthy now.
    `prices`: price per model ref; None means unknown (a paid model is then refused).
    `balances`: prepaid micro-USD left per provider, where known; a call must fit it too.
    `calibration`: (capability, model ref) → observed actual/estimated output tokens
    (manager/learning.py). It only ever raises a cap, so a reservation is never lowered.
    """
    overrides: list[str] = []
    capability = decision.capability
    wanted_cap = intent.capability or _VIRTUAL_CAPABILITY.get(intent.virtual_model)
    if wanted_cap and wanted_cap != capability:
        overrides.append(f"capability {capability} → {wanted_cap}: the client asked for it")
        capability = wanted_cap

    chain = config.routing.chains[capability]
    tier = _target_tier(decision.tier, chain, intent, overrides)
    ceiling, why = budget_ceiling(snapshot, config, intent)
    if TIERS.index(tier) > TIERS.index(ceiling):
        overrides.append(f"tier {tier} → {ceiling}: {why}")
        tier = ceiling

    ctx = _Context(decision, facts, intent, snapshot, config, available, prices,
                   balances or {}, overrides, capability, calibration or {})
    skipped: dict[str, list[str]] = {}  # reason → models, so the log stays readable
    pool = _pool(intent, config, capability)

    def candidates_of(tiers: list[Tier]) -> list[Candidate]:
        found = []
        for t in tiers:
            for model in _rank([m for m in pool if m.tier == t], intent, facts):
                c = _candidate(model, ctx)
                if isinstance(c, Candidate):
                    found.append(c)
                else:
                    skipped.setdefault(c, []).append(model.ref)
        return found

    candidates = candidates_of(_tier_order(tier, chain))
    if not any(not c.drop_tools for c in candidates) and intent.virtual_model not in _VIRTUAL_TIER:
        # nothing at or below the proposed tier can fully serve it (tools, images, context):
        # go up, cheapest first, as far as the budget allows
        higher = [t for t in TIERS if TIERS.index(tier) < TIERS.index(t) <= TIERS.index(ceiling)]
        escalated = [c for c in candidates_of(higher) if not c.drop_tools]
        if escalated:
            overrides.append(f"tier {tier} → {escalated[0].model.tier}: no {tier}-tier model "
                             "can fully serve this request")
            tier, candidates = escalated[0].model.tier, escalated + candidates
    candidates.sort(key=lambda c: c.drop_tools)  # real tool support first (a stable sort)
    overrides += [f"skipped {', '.join(refs)}: {why}" for why, refs in skipped.items()]
    if intent.sticky in config.models:
        candidates = _stick(config.models[intent.sticky], ceiling, candidates, ctx)
    if any(c.drop_tools for c in candidates[:1]):
        overrides.append(f"{candidates[0].model.ref} answers without tools: no model with "
                         "tool support can take this request now")
    the_plan = Plan(capability, tier, candidates, overrides, offline=ceiling == "local",
                    day=snapshot.day)
    if not candidates and not overrides:
        overrides.append(f"no {tier}-tier or cheaper model is configured for {capability}")
    return the_plan


@dataclass(frozen=True)
class _Context:
    """Everything a candidate is judged against (one plan's inputs)."""

    decision: RoutingDecision
    facts: Facts
    intent: Intent
    snapshot: Snapshot
    config: Config
    available: frozenset[str]
    prices: Mapping[str, Price | None]
    prepaid: Mapping[str, int]
    overrides: list[str]
    capability: Capability
    calibration: Mapping[tuple[str, str], float]

    def expected_output_tokens(self, model: ModelConfig) -> int:
        ratio = self.calibration.get((self.capability, model.ref), 1.0)
        return max(1, round(self.decision.output_tokens * ratio))


def _stick(model: ModelConfig, ceiling: Tier, candidates: list[Candidate],
           ctx: _Context) -> list[Candidate]:
    """Keep an agent loop on the model of its first turn (provider caches, coherence),
    unless budget, context size, a failure or the client's own tier choice rules it out."""
    wanted = _VIRTUAL_TIER.get(ctx.intent.virtual_model)
    if TIERS.index(model.tier) > TIERS.index(ceiling):
        why: str | Candidate = f"the budget allows at most {ceiling}"
    elif wanted and model.tier != wanted:  # e.g. /retry stronger in the middle of a chat
        why = f"the client asked for {wanted}"
    else:
        why = _candidate(model, ctx)
    if isinstance(why, Candidate):
        return [why] + [x for x in candidates if x.model.ref != model.ref]
    ctx.overrides.append(f"left {model.ref} mid-conversation: {why}")
    return candidates


def _target_tier(proposed: Tier, chain: list[Tier], intent: Intent,
                 overrides: list[str]) -> Tier:
    if intent.virtual_model in _VIRTUAL_TIER:
        wanted = _VIRTUAL_TIER[intent.virtual_model]
        if wanted != proposed:
            overrides.append(f"tier {proposed} → {wanted}: the client asked for {wanted}")
        return wanted
    if intent.pinned:
        return "strong"  # the pinned model's own tier decides; don't cut it here
    top = max(chain, key=TIERS.index)
    if TIERS.index(proposed) > TIERS.index(top):
        overrides.append(f"tier {proposed} → {top}: this capability never needs more")
        return top
    return proposed


def budget_ceiling(snap: Snapshot, config: Config, intent: Intent) -> tuple[Tier, str | None]:
    """The highest tier the day's money allows now, and why it is lower than strong.
    Downgrade as the money runs low or runs ahead of the clock; local only when it is gone."""
    b = config.budget
    if intent.offline:
        return "local", "offline-only mode is on"
    if snap.limit_micro <= 0 or snap.remaining_micro <= 0:
        return "local", "today's budget is spent"
    remaining_share = snap.remaining_micro / snap.limit_micro
    if remaining_share < b.downgrade_below:
        return "cheap", f"only {remaining_share:.0%} of today's budget left"
    spent_share = (snap.spent_micro + snap.reserved_micro) / snap.limit_micro
    if b.pace_margin is not None and spent_share > snap.elapsed_share + b.pace_margin:
        return "cheap", (f"{spent_share:.0%} of the budget spent with {snap.elapsed_share:.0%}"
                         " of the day gone")
    return "strong", None


def _tier_order(tier: Tier, chain: list[Tier]) -> list[Tier]:
    """The target tier, then the chain's cheaper tiers in the chain's order, local last."""
    rank = TIERS.index(tier)
    order = [tier] + [t for t in chain if TIERS.index(t) < rank and t != tier]
    return [*dict.fromkeys([*order, "local"])]


def _pool(intent: Intent, config: Config, capability: Capability) -> list[ModelConfig]:
    models = list(config.models.values())
    if intent.pinned:
        pinned = config.models[intent.pinned]
        return [pinned] + [m for m in models if m.is_local and m is not pinned]
    able = [m for m in models if capability in m.capabilities]
    return able or [m for m in models if m.is_local]


def _rank(models: list[ModelConfig], intent: Intent, facts: Facts) -> list[ModelConfig]:
    if intent.pinned:
        return sorted(models, key=lambda m: m.ref != intent.pinned)
    if intent.virtual_model == "long_context" or facts.long_context:
        return sorted(models, key=lambda m: (-m.context_window, -m.quality))
    if intent.virtual_model == "fast":
        return sorted(models, key=lambda m: (-m.speed, -m.quality))
    return sorted(models, key=lambda m: (-m.quality, -m.speed))


def _candidate(model: ModelConfig, ctx: _Context) -> Candidate | str:
    """A candidate, or the reason this model cannot be one."""
    facts, intent = ctx.facts, ctx.intent
    if model.provider not in ctx.available:
        return "no key, or the provider is failing"
    needs = (("tools", facts.has_tools), ("vision", facts.has_images), ("json", facts.wants_json))
    missing = [f for f, needed in needs if needed and f not in model.features]
    # a local model may still answer in plain text when tools are offered, not demanded
    drop_tools = missing == ["tools"] and model.is_local and not facts.tools_required
    if missing and not drop_tools:
        return f"no {', '.join(missing)} support"
    room = model.context_window - facts.input_tokens
    if room < 1:
        return f"{facts.input_tokens} input tokens do not fit the context window"
    expected = ctx.expected_output_tokens(model)
    sizing = max(expected, ctx.decision.output_tokens)  # calibration may raise, never lower
    cap = min(model.max_output, room, intent.max_output_tokens or max(
        4 * sizing, ctx.config.routing.default_output_tokens))
    if model.is_local:
        return Candidate(model, cap, 0, drop_tools, expected)
    price = ctx.prices.get(model.ref)
    if price is None:
        return "no known price (add one in models.toml)"
    budget = min(ctx.snapshot.remaining_micro,
                 ctx.prepaid.get(model.provider, ctx.snapshot.remaining_micro))
    if intent.max_cost_micro is not None:
        budget = min(budget, intent.max_cost_micro)
    cost = worst_case_micro(price, facts.input_tokens, cap)
    if cost > budget:
        # a smaller cap may still fit, if it leaves room for the expected answer
        input_cost = worst_case_micro(price, facts.input_tokens, 0)
        fitting = int((budget - input_cost) / price.output) if price.output else cap
        if fitting < max(2 * sizing, 256) or fitting >= cap:
            return f"worst case exceeds the ${budget / 1e6:.4f} this call may spend"
        ctx.overrides.append(f"{model.ref}: output cap {cap} → {fitting} to fit the budget")
        cap, cost = fitting, worst_case_micro(price, facts.input_tokens, fitting)
    return Candidate(model, cap, cost, expected_output_tokens=expected)
