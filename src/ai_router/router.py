"""One request, end to end: digest → manager → guard → ledger → provider → settle → log.

The only module that writes the ledger for calls. Adapters report usage; the
router prices it, settles it and records the outcome.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from typing import Any

from . import prices, tokens
from .clock import Clock, system_clock, zone
from .config import Config, Keys, ModelConfig, Price, load_config
from .digest import Digest, make_digest
from .errors import BadRequest, NoRoute, ProviderError, RateLimited, UnknownModel, Unpriced
from .guard import VIRTUAL_MODELS, Candidate, Facts, Intent, Plan, plan
from .ledger import Ledger, Reservation, to_micro
from .manager import Manager, ManagerResult
from .providers import make_adapter
from .providers.base import Adapter
from .schema import Capability, ChatRequest, Completion, Delta, Usage

PROVIDER_COOLDOWN_S = 30.0  # how long a failing provider is skipped
BALANCE_REFRESH_S = 600.0  # how often prepaid balances are re-read (cap_to_prepaid)

# instructor logs an ERROR line each time the manager's model fails and the fallback
# decides; the reason is already in the outcome log, so on a terminal it is only noise
logging.getLogger("instructor").setLevel(logging.CRITICAL)


@dataclass
class Routed:
    """A served request: the answer and everything a footer or header shows."""

    request_id: str
    completion: Completion
    model: ModelConfig
    capability: Capability
    usage: Usage
    cost_micro: int
    remaining_micro: int
    manager: ManagerResult
    overrides: list[str] = field(default_factory=list)
    attempts: list[str] = field(default_factory=list)  # failures before the one that served
    offline: bool = False


@dataclass
class RoutedStream:
    """A stream committed to one model (its first delta has arrived). Iterate `deltas`;
    when it ends, is cut or is abandoned, the call is settled and `result` filled in."""

    request_id: str
    model: ModelConfig
    capability: Capability
    manager: ManagerResult
    overrides: list[str]
    attempts: list[str]
    offline: bool
    reserved_micro: int  # what the ledger holds for it until it settles
    remaining_micro: int  # the day's money left once that was held
    deltas: AsyncIterator[Delta] = field(init=False)  # set once the relay is built
    result: Routed | None = None


class Router:
    def __init__(self, config: Config, keys: Keys, ledger: Ledger, manager: Manager, *,
                 adapters: dict[str, Adapter] | None = None, clock: Clock = system_clock,
                 offline: bool = False):
        self.config, self.keys, self.ledger, self.manager = config, keys, ledger, manager
        self.clock, self.offline = clock, offline
        self._adapters: dict[str, Adapter] = dict(adapters or {})
        self._down_until: dict[str, float] = {}
        # conversations are known by a hash of their opening, kept in the outcome log so
        # every process (server workers, REPL, tool) keeps one on its model; with
        # privacy "off" the hash is salted with a secret this process never writes down
        self._conversation_salt = os.urandom(16) if config.privacy == "off" else b""
        self.balances_micro: dict[str, int] = {}  # prepaid USD left per provider, when known
        self._balances_at = float("-inf")
        self.prices = _price_table(config)

    @classmethod
    def from_config(cls, config: Config | None = None, *, offline: bool = False,
                    clock: Clock = system_clock) -> Router:
        config = config or load_config()
        ledger = Ledger(config.database_path(), zone(config.budget.timezone),
                        ttl_s=config.budget.reservation_ttl_s, clock=clock)
        manager = Manager(config.manager)
        manager.learn_from(ledger)  # rated outcomes become examples; lengths calibrate caps
        return cls(config, Keys.load(), ledger, manager, clock=clock, offline=offline)

    @property
    def limit_micro(self) -> int:
        return to_micro(self.config.budget.daily_usd)

    def valid_model_names(self) -> list[str]:
        return [*VIRTUAL_MODELS, *self.config.models]

    def available_providers(self) -> frozenset[str]:
        now = self.clock()
        return frozenset(name for name, p in self.config.providers.items()
                         if self.keys.has(p.key_env) and self._down_until.get(name, 0) <= now)

    # -- routing ------------------------------------------------------------------------

    async def prepare(self, request: ChatRequest, *, capability: Capability | None = None,
                      max_cost_usd: float | None = None) -> tuple[Digest, ManagerResult, Plan]:
        """Everything before the call: measure, ask the manager, let the guard decide."""
        intent = self._intent(request, capability, max_cost_usd)
        input_tokens = tokens.count_request(request).tokens  # never low: the estimate has headroom
        digest = make_digest(request, input_tokens, self.config.routing.long_context_tokens,
                             salt=self._conversation_salt)
        if intent.virtual_model:  # a pinned model needs no stickiness
            intent = replace(intent, sticky=await self.ledger.run(
                self.ledger.conversation_model, digest.conversation))
        decision = await self.manager.decide(digest)
        facts = Facts(input_tokens, has_tools=digest.has_tools,
                      tools_required=request.tools_required, has_images=digest.has_images,
                      wants_json=digest.wants_json, long_context=digest.long_context)
        snapshot = await self.ledger.run(self.ledger.peek, self.limit_micro)
        the_plan = plan(decision.decision, facts, intent, snapshot, self.config,
                        self.available_providers(), self.prices, await self._prepaid(),
                        self.manager.calibration)
        return digest, decision, the_plan

    async def ask(self, request: ChatRequest, *, capability: Capability | None = None,
                  max_cost_usd: float | None = None, source: str = "cli") -> Routed:
        """Serve one non-streamed request on the best candidate the budget allows."""
        started = time.monotonic()
        request_id = uuid.uuid4().hex
        digest, decision, the_plan = await self.prepare(
            request, capability=capability, max_cost_usd=max_cost_usd)
        attempts: list[str] = []

        def outcome(model: ModelConfig, usage: Usage, cost: int) -> dict[str, Any]:
            return self._outcome(request_id, source, digest, decision, the_plan, model, usage,
                                 cost, started, attempts, status="ok")

        try:
            for cand in the_plan.candidates:
                served = await self._try(request, cand, request_id, digest, attempts, outcome)
                if served:
                    completion, usage, cost, remaining = served
                    break
            else:
                raise _no_route(the_plan, attempts)
        except Exception as e:
            self._log(request_id, source, digest, decision, the_plan, None, None, 0,
                      started, attempts, status="error", error=str(e))
            raise
        return Routed(request_id, completion, cand.model, the_plan.capability, usage, cost,
                      remaining, decision, the_plan.overrides, attempts,
                      the_plan.offline)

    async def open_stream(self, request: ChatRequest, *, capability: Capability | None = None,
                          max_cost_usd: float | None = None, source: str = "server"
                          ) -> RoutedStream:
        """Start a streamed answer. Candidates fail over until one produces its first delta;
        after that the stream is committed to that model."""
        started = time.monotonic()
        request_id = uuid.uuid4().hex
        digest, decision, the_plan = await self.prepare(
            request, capability=capability, max_cost_usd=max_cost_usd)
        attempts: list[str] = []
        for cand in the_plan.candidates:
            reservation = await self._reserve(cand, request_id, attempts)
            if reservation is None:
                continue
            upstream = aiter(self.adapter(cand.model.provider).stream(
                _for(cand, request), cand.model.name, cand.max_tokens))
            try:
                first = await anext(upstream)
            except StopAsyncIteration:
                first = Delta(finish_reason="stop")
            except ProviderError as e:
                await self._failed(reservation, cand, e, attempts)
                if e.retryable:
                    continue
                self._log(request_id, source, digest, decision, the_plan, None, None, 0,
                          started, attempts, status="error", error=str(e))
                raise
            except BaseException:
                self.ledger.settle(reservation, cand.reserve_micro, None)
                raise
            stream = RoutedStream(request_id, cand.model, the_plan.capability, decision,
                                  the_plan.overrides, attempts, the_plan.offline,
                                  cand.reserve_micro, reservation.remaining_micro)
            stream.deltas = self._relay(stream, first, upstream, cand, reservation, digest,
                                        the_plan, source, started)
            return stream
        no_route = _no_route(the_plan, attempts)
        self._log(request_id, source, digest, decision, the_plan, None, None, 0, started,
                  attempts, status="error", error=str(no_route))
        raise no_route

    async def _relay(self, stream: RoutedStream, first: Delta, upstream: AsyncIterator[Delta],
                     cand: Candidate, reservation: Reservation, digest: Digest, the_plan: Plan,
                     source: str, started: float) -> AsyncIterator[Delta]:
        received = Completion()
        usage: Usage | None = None
        status, error = "cancelled", None
        try:
            delta: Delta | None = first
            while delta is not None:
                received.text += delta.text
                received.reasoning += delta.reasoning
                received.tool_calls += [{"function": {"arguments": c.arguments}}
                                        for c in delta.tool_calls]
                usage = delta.usage or usage
                yield delta
                delta = await anext(upstream, None)
            status = "ok"
        except ProviderError as e:  # cut mid-stream: the provider may have billed it all
            status, error = "error", str(e)
            raise
        finally:
            await _close(upstream)  # a client that went away cancels the upstream call
            if status == "error":
                cost = cand.reserve_micro
                usage = usage or self._estimate_usage(digest, received, cand.max_tokens)
            else:
                usage = usage or self._estimate_usage(digest, received, cand.max_tokens)
                cost = prices.cost_micro(cand.model, self.config.providers[cand.model.provider],
                                         usage)
            # synchronous on purpose: this may run while the task is being cancelled
            outcome = self._outcome(stream.request_id, source, digest, stream.manager,
                                    the_plan, cand.model, usage, cost, started,
                                    stream.attempts, status=status, error=error)
            remaining = self.ledger.settle(reservation, cost, usage, limit_micro=self.limit_micro,
                                           outcome=outcome).remaining_micro
            stream.result = Routed(stream.request_id, received, cand.model, stream.capability,
                                   usage, cost, remaining, stream.manager, stream.overrides,
                                   stream.attempts, stream.offline)

    async def _reserve(self, cand: Candidate, request_id: str,
                       attempts: list[str]) -> Reservation | None:
        model = cand.model
        reservation = await self.ledger.run(
            self.ledger.reserve, cand.reserve_micro, self.limit_micro, provider=model.provider,
            model=model.ref, request_id=request_id)
        if reservation is None:  # another process spent the money since the plan was made
            attempts.append(f"{model.ref}: budget no longer allows ${cand.reserve_micro / 1e6:.4f}")
        return reservation

    async def _try(self, request: ChatRequest, cand: Candidate, request_id: str,
                   digest: Digest, attempts: list[str],
                   outcome: Callable[[ModelConfig, Usage, int], dict[str, Any]]
                   ) -> tuple[Completion, Usage, int, int] | None:
        """One candidate; once it has answered, its settlement and the request's outcome
        row are one transaction."""
        model = cand.model
        reservation = await self._reserve(cand, request_id, attempts)
        if reservation is None:
            return None
        try:
            completion = await self.adapter(model.provider).complete(
                _for(cand, request), model.name, cand.max_tokens)
        except ProviderError as e:
            await self._failed(reservation, cand, e, attempts)
            if e.retryable:
                return None
            raise
        except BaseException:
            # cancelled or crashed mid-call: the provider may have billed, so keep the hold
            # (synchronously: an await here could itself be cancelled)
            self.ledger.settle(reservation, cand.reserve_micro, None)
            raise
        usage = completion.usage or self._estimate_usage(digest, completion, cand.max_tokens)
        cost = prices.cost_micro(model, self.config.providers[model.provider], usage)
        after = await self.ledger.run(self.ledger.settle, reservation, cost, usage,
                                      limit_micro=self.limit_micro,
                                      outcome=outcome(model, usage, cost))
        return completion, usage, cost, after.remaining_micro

    async def _failed(self, reservation: Reservation, cand: Candidate, e: ProviderError,
                      attempts: list[str]) -> None:
        # each adapter masks its own key; an error may quote another one (a shared proxy)
        attempts.append(f"{cand.model.ref}: {self.keys.scrub(str(e))}")
        if e.maybe_billed:  # e.g. a read timeout: the provider may have done the work
            await self.ledger.run(self.ledger.settle, reservation, cand.reserve_micro, None)
        else:
            await self.ledger.run(self.ledger.release, reservation)
        # a rejected request says nothing about the provider's health; anything else does
        if e.retryable and not cand.model.is_local and not isinstance(e, BadRequest):
            wait = e.retry_after_s if isinstance(e, RateLimited) and e.retry_after_s else None
            self._down_until[cand.model.provider] = self.clock() + (wait or PROVIDER_COOLDOWN_S)

    async def _prepaid(self) -> dict[str, int]:
        """Prepaid USD left per provider (`budget.cap_to_prepaid`), re-read every few minutes;
        a provider whose balance cannot be read is not capped (its own 402 still fails over)."""
        if self.config.budget.cap_to_prepaid and (
                self.clock() - self._balances_at > BALANCE_REFRESH_S):
            from .balance import fetch_balances, usd_balances_micro

            found = await fetch_balances(self.config, self.keys, timeout_s=5.0)
            self.balances_micro, self._balances_at = usd_balances_micro(found), self.clock()
        return self.balances_micro

    def adapter(self, provider: str) -> Adapter:
        if provider not in self._adapters:
            pc = self.config.providers[provider]
            self._adapters[provider] = make_adapter(provider, pc, self.keys.get(pc.key_env))
        return self._adapters[provider]

    def _intent(self, request: ChatRequest, capability: Capability | None,
                max_cost_usd: float | None) -> Intent:
        name = request.model or "auto"
        if name not in VIRTUAL_MODELS and name not in self.config.models:
            raise UnknownModel(name, self.valid_model_names())
        pinned = name if name in self.config.models else None
        return Intent(virtual_model="" if pinned else name, pinned=pinned, capability=capability,
                      max_output_tokens=request.requested_max_output,
                      max_cost_micro=None if max_cost_usd is None else to_micro(max_cost_usd),
                      offline=self.offline)

    @staticmethod
    def _estimate_usage(digest: Digest, completion: Completion, max_tokens: int) -> Usage:
        """The provider reported no usage: our own conservative counts, flagged. The
        provider cannot have written more than the cap it was sent, so an estimate above it
        is capped there (else the settled cost could pass the reservation, and the limit)."""
        text = completion.text + completion.reasoning + "".join(
            c["function"].get("arguments", "") for c in completion.tool_calls)
        output = min(tokens.count_text(text).tokens, max_tokens)
        return Usage(input_tokens=digest.input_tokens, output_tokens=output, estimated=True)

    def _log(self, request_id: str, source: str, digest: Digest, decision: ManagerResult,
             the_plan: Plan, model: ModelConfig | None, usage: Usage | None, cost: int,
             started: float, attempts: list[str], *, status: str, error: str | None = None
             ) -> None:
        self.ledger.record_outcome(self._outcome(
            request_id, source, digest, decision, the_plan, model, usage, cost, started,
            attempts, status=status, error=error))

    def _outcome(self, request_id: str, source: str, digest: Digest, decision: ManagerResult,
                 the_plan: Plan, model: ModelConfig | None, usage: Usage | None, cost: int,
                 started: float, attempts: list[str], *, status: str,
                 error: str | None = None) -> dict[str, Any]:
        """The request's row in the outcome log."""
        prompt = {"full": digest.text, "preview": digest.text[:80], "off": None}[
            self.config.privacy]
        outcome: dict[str, Any] = {
            "id": request_id, "source": source, "prompt": prompt,
            "digest": {k: v for k, v in digest.__dict__.items()
                       if k not in ("text", "conversation")},
            "conversation": digest.conversation,
            "decision": decision.decision.model_dump(), "decision_source": decision.source,
            "manager_ms": round(decision.latency_s * 1000, 1), "manager_tokens": decision.tokens,
            "overrides": the_plan.overrides,
            "capability": the_plan.capability, "tier": model.tier if model else the_plan.tier,
            "provider": model.provider if model else None, "model": model.ref if model else None,
            "input_tokens": usage.input_tokens if usage else None,
            "output_tokens": usage.output_tokens if usage else None, "cost_micro": cost,
            "latency_ms": round((time.monotonic() - started) * 1000, 1),
            "attempts": len(attempts), "status": status, "error": error}
        if the_plan.day:  # logged on the day its money was held, also past midnight
            outcome["day"] = the_plan.day
        if decision.fallback_reason:
            outcome["overrides"] = [f"manager fallback: {decision.fallback_reason}",
                                    *the_plan.overrides]
        return outcome

    async def aclose(self) -> None:
        for a in self._adapters.values():
            await a.aclose()
        self.ledger.close()


def _no_route(the_plan: Plan, attempts: list[str]) -> NoRoute:
    if the_plan.refusal:
        return NoRoute(the_plan.refusal, attempts)
    return NoRoute("every candidate failed: " + "; ".join(attempts), attempts)


def _for(cand: Candidate, request: ChatRequest) -> ChatRequest:
    return request.without_tools() if cand.drop_tools else request


async def _close(iterator: AsyncIterator[Delta]) -> None:
    close = getattr(iterator, "aclose", None)
    if close is not None:
        with contextlib.suppress(Exception):  # already broken upstream: nothing to free
            await close()


def _price_table(config: Config) -> dict[str, Price | None]:
    """Prices per model ref, looked up once; None marks a paid model with no known price."""
    table: dict[str, Price | None] = {}
    for ref, m in config.models.items():
        try:
            table[ref] = prices.price_for(m, config.providers[m.provider])
        except Unpriced:
            table[ref] = None
    return table
