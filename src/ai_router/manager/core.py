"""The manager: a small local model proposes a RoutingDecision, within a hard deadline.

`decide` never raises: a model that is down, slow, or answers nonsense yields the
deterministic fallback decision, with the reason recorded. The guard checks whatever
comes out of here, so a wrong decision costs quality, never money.
"""

from __future__ import annotations

import asyncio
import functools
import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

import pydantic

from .. import local_model
from ..config import ManagerConfig
from ..digest import Digest
from ..schema import RoutingDecision
from . import evidence as ev
from .cache import DEFAULT_SIZE, DecisionCache
from .endpoint import Endpoint, EndpointChooser, NoEndpoint
from .fallback import fallback_decision
from .learning import Calibration, Learned, Learner
from .prompt import ManagerPrompt
from .retrieval import Neighbour, SeedBank
from .structured import (
    CapabilityReply,
    ManagerReply,
    clean_reason,
    decision_grammar,
    to_decision,
)

if TYPE_CHECKING:
    from ..ledger import Ledger

# The whitespace-free JSON takes ~40-60 tokens with a short reason; the cap only
# bounds a model that goes wrong.
DECISION_MAX_TOKENS = 128
FALLBACK_MODEL = "fallback"
# The embedded model's first decision in a process starts its server and fills llama.cpp's
# prompt cache with the stable instructions (~4 s on 2 cores); later ones get the deadline.
COLD_START_TIMEOUT_S = 30.0
VOTE_K = 8  # nearest seed examples that vote (chosen on the seed bank, leave-one-out)
PROMPT_K = 4  # of those, the nearest go into the prompt: each costs ~40 prompt tokens
# A warm model asked to break a tie gets this long; then the evidence decides alone. Its
# vote weighs 0.1, so waiting seconds for it would buy little (fresh p95 target 600 ms).
TIEBREAK_TIMEOUT_S = 0.5
# A model late for this many tie-breaks in a row is not asked again for a while: waiting
# for it only adds the deadline to the request (and a late answer still costs the local
# server CPU). After the pause one tie-break tries it again.
LATE_STREAK = 3
LATE_PAUSE_S = 120.0

# "combined": the evidence decides when it is confident, else the model proposes and the
# evidence weighs its proposal; "model": the model's proposal as it is; "evidence": no model.
DecisionMode = Literal["combined", "model", "evidence"]
# "model_late": the model missed the tie-break deadline and the evidence decided
Source = Literal["model", "evidence", "fallback", "model_late"]
_DEFAULT_SEEDS = object()


@functools.cache
def _sdk() -> tuple[Any, Any]:
    """instructor and openai, imported on the first model call instead of at start-up:
    with the anthropic types instructor loads on its first reply they cost 2–4 s, which
    every CLI command would otherwise pay. Called before a decision's deadline starts."""
    import anthropic.types  # noqa: F401 - instructor loads it lazily on its first reply
    import instructor
    import instructor.core
    import openai

    return instructor, openai


@dataclass(frozen=True)
class ManagerResult:
    decision: RoutingDecision
    source: Source  # "evidence": retrieval and facts were sure enough without a model call
    fallback_reason: str | None
    latency_s: float
    model: str  # which local model decided, e.g. "embedded/SmolLM2-135M-Instruct"
    cached: bool = False  # the same question was decided before in this process
    tokens: int | None = 0  # the local model's prompt + reply tokens; None: asked, unknown


class Manager:
    def __init__(self, config: ManagerConfig, prompt: ManagerPrompt | None = None,
                 endpoint_ttl_s: float = 60.0, *, seeds: SeedBank | None | object = _DEFAULT_SEEDS,
                 mode: DecisionMode = "combined", cache_size: int = DEFAULT_SIZE,
                 k: int = VOTE_K, prompt_k: int = PROMPT_K,
                 tiebreak_s: float = TIEBREAK_TIMEOUT_S):
        self.config = config
        self.prompt = prompt or ManagerPrompt.load()
        self.seeds: SeedBank | None = (SeedBank.load() if seeds is _DEFAULT_SEEDS
                                       else seeds)  # type: ignore[assignment]
        self.mode = mode
        self.k = k
        self.prompt_k = prompt_k
        self.tiebreak_s = tiebreak_s
        self.learner: Learner | None = None
        self.calibration: Calibration = {}  # see learn_from
        self._relearning: asyncio.Task[Any] | None = None
        self.cache: DecisionCache[ManagerResult] = DecisionCache(cache_size)
        self.endpoints = EndpointChooser(config, ttl_s=endpoint_ttl_s)
        self._grammars = {True: decision_grammar(full=True), False: decision_grammar(full=False)}
        self._background: set[asyncio.Task[None]] = set()
        # base_url -> (event loop, client): an SDK client costs ~25 ms to build, and its
        # connection pool belongs to the loop that opened it
        self._clients: dict[str, tuple[asyncio.AbstractEventLoop, Any]] = {}
        self._warm = False
        self._late_streak = 0
        self._late_until = 0.0  # time.monotonic() until which tie-breaks skip the model

    async def warm_up(self) -> ManagerResult:
        """Start the local model and cache the prompt now, so requests meet a warm manager."""
        return await self._fresh(WARM_UP_DIGEST, time.perf_counter(), ask_model=True,
                                 even_if_confident=True)

    def learn_from(self, ledger: Ledger) -> Learned:
        """Learn from the ledger's outcomes (manager/learning.py): rated answers join the
        seed examples, observed lengths calibrate the guard's output caps. Reloaded in the
        background when feedback arrives or outcomes pile up."""
        seeds = list(self.seeds.examples) if isinstance(self.seeds, SeedBank) else []
        self.learner = Learner(ledger, seeds)
        learned = self.learner.load()
        self._apply(learned)
        return learned

    async def relearn(self) -> Learned | None:
        """Reload what was learned now (tests and the eval call it; requests never wait)."""
        if self.learner is None:
            return None
        learned = await asyncio.to_thread(self.learner.load)
        self._apply(learned)
        return learned

    def _apply(self, learned: Learned) -> None:
        self.calibration = learned.calibration
        if _examples(learned.bank) != _examples(self.seeds):
            self.seeds = learned.bank
            self.cache.clear()  # decisions made with the old examples

    def _check_learning(self) -> None:
        """The per-request part of learning: two integer comparisons, rarely a reload task."""
        if self.learner and not self._relearning and self.learner.stale():
            task = asyncio.create_task(self.relearn())
            self._relearning = task
            task.add_done_callback(self._relearned)

    def _relearned(self, task: asyncio.Task[Any]) -> None:
        self._relearning = None
        if not task.cancelled():
            task.exception()  # a failed reload keeps the old examples; retried when stale

    async def decide(self, digest: Digest) -> ManagerResult:
        start = time.perf_counter()
        self._check_learning()
        known = self.cache.get(digest)
        if known is not None:
            return replace(known, latency_s=time.perf_counter() - start, cached=True, tokens=0)
        result = await self._fresh(digest, start, ask_model=self.mode != "evidence")
        if result.source != "fallback":  # a failure is not worth remembering
            self.cache.put(digest, result)
        return result

    async def _fresh(self, digest: Digest, start: float, ask_model: bool,
                     even_if_confident: bool = False) -> ManagerResult:
        weigh = self._weighs()
        neighbours = self.seeds.nearest(digest.text, self.k) if self.seeds else []
        evidence = ev.gather(digest, neighbours)
        confident = weigh and self.mode == "combined" and evidence.confident
        if not ask_model or (confident and not even_if_confident):
            return ManagerResult(decision=ev.decide(digest, evidence), source="evidence",
                                 fallback_reason=None, latency_s=time.perf_counter() - start,
                                 model=FALLBACK_MODEL)
        if not _sdk.cache_info().currsize:  # a one-off import (~2 s), not part of a deadline
            _sdk()
            start = time.perf_counter()
        state: dict[str, Endpoint] = {}
        timeout = self.config.timeout_s if self._warm else max(self.config.timeout_s,
                                                                 COLD_START_TIMEOUT_S)
        tiebreak = weigh and self.mode == "combined" and self._warm and not even_if_confident
        if tiebreak:
            timeout = min(timeout, self.tiebreak_s)
            if time.monotonic() < self._late_until:
                return ManagerResult(
                    decision=ev.decide(digest, evidence), source="model_late",
                    fallback_reason=f"the manager model missed its last {LATE_STREAK} "
                    "tie-breaks; the evidence decides without waiting for a while",
                    latency_s=time.perf_counter() - start, model=FALLBACK_MODEL, tokens=0)
        try:
            reply, used = await asyncio.wait_for(self._ask(digest, neighbours, state, weigh),
                                                 timeout)
        except Exception as e:  # noqa: BLE001 - every failure means "use the fallback"
            endpoint = state.get("endpoint")
            if tiebreak and isinstance(e, TimeoutError):  # slow, not broken: keep the endpoint
                self._late_streak += 1
                if self._late_streak >= LATE_STREAK:
                    self._late_streak = 0
                    self._late_until = time.monotonic() + LATE_PAUSE_S
                return ManagerResult(
                    decision=ev.decide(digest, evidence), source="model_late",
                    fallback_reason=f"{endpoint.label if endpoint else 'the manager model'} "
                    f"did not break the tie within {timeout:g}s; the evidence decided",
                    latency_s=time.perf_counter() - start,
                    model=endpoint.label if endpoint else FALLBACK_MODEL, tokens=None)
            if endpoint and _endpoint_failed(e):
                self.endpoints.forget()
            return ManagerResult(
                decision=ev.decide(digest, evidence) if weigh else fallback_decision(digest),
                source="fallback", fallback_reason=self._describe(e, endpoint),
                latency_s=time.perf_counter() - start,
                model=endpoint.label if endpoint else FALLBACK_MODEL, tokens=None)
        self._warm = True
        self._late_streak = 0
        endpoint = state["endpoint"]
        if endpoint.kind == "ollama":
            self._keep_warm(endpoint)
        decision = (ev.decide(digest, evidence, reply.capability, clean_reason(reply.reason))
                    if weigh else to_decision(reply, digest))  # type: ignore[arg-type]
        return ManagerResult(decision=decision, source="model", fallback_reason=None,
                             latency_s=time.perf_counter() - start, model=endpoint.label,
                             tokens=used)

    def _weighs(self) -> bool:
        """Whether the evidence weighs the model's capability and sets tier and length.
        With no seed bank the evidence is the keyword heuristic alone: the model decides."""
        return self.mode != "model" and self.seeds is not None

    async def _ask(self, digest: Digest, neighbours: list[Neighbour],
                   state: dict[str, Endpoint], weigh: bool) -> tuple[CapabilityReply, int | None]:
        endpoint = state["endpoint"] = await self.endpoints.get()
        return await asyncio.wait_for(self._call(endpoint, digest, neighbours, weigh),
                                      self._deadline(endpoint))

    def _deadline(self, endpoint: Endpoint) -> float:
        """The embedded model's first answer in a process may take the cold-start allowance."""
        if endpoint.kind == "embedded" and not self._warm:
            return max(COLD_START_TIMEOUT_S, self.config.timeout_s)
        return self.config.timeout_s

    async def _call(self, endpoint: Endpoint, digest: Digest, neighbours: list[Neighbour],
                    weigh: bool) -> tuple[CapabilityReply, int | None]:
        """The model's reply and the tokens it took (prompt + reply), as the server counted."""
        reply, completion = await self._client(
            endpoint.base_url).chat.completions.create_with_completion(
            model=endpoint.model,
            response_model=CapabilityReply if weigh else ManagerReply,
            messages=self.prompt.messages(digest, neighbours[:self.prompt_k]),  # type: ignore[arg-type]
            max_retries=0,  # a second try would not fit the latency budget
            max_tokens=DECISION_MAX_TOKENS,
            temperature=0,
            extra_body=self._extra_body(endpoint, full=not weigh),
        )
        usage = getattr(completion, "usage", None)
        return reply, (usage.prompt_tokens + usage.completion_tokens) if usage else None

    def _client(self, base_url: str) -> Any:  # an instructor.AsyncInstructor
        loop = asyncio.get_running_loop()
        cached = self._clients.get(base_url)
        if cached and cached[0] is loop:
            return cached[1]
        # asyncio.wait_for in decide() is the real deadline (cold or warm)
        instructor, openai = _sdk()
        raw = openai.AsyncOpenAI(base_url=base_url, api_key="local", max_retries=0,
                                 timeout=max(COLD_START_TIMEOUT_S, self.config.timeout_s) + 5)
        client = instructor.from_openai(raw, mode=instructor.Mode.JSON_SCHEMA)
        self._clients[base_url] = (loop, client)
        return client

    def _extra_body(self, endpoint: Endpoint, full: bool) -> dict[str, Any] | None:
        if endpoint.kind != "embedded":
            return None
        # llama.cpp prefers response_format over `grammar`, and its schema grammar allows
        # free whitespace that a tiny model pads with. Send the whitespace-free grammar
        # instead; instructor still validates the reply against ManagerReply's schema.
        return {"response_format": _sdk()[1].omit, "grammar": self._grammars[full]}

    def _keep_warm(self, endpoint: Endpoint) -> None:
        if self._background:  # one refresh in flight is enough
            return
        task = asyncio.create_task(local_model.ollama_keep_warm(
            self.config.endpoint.rstrip("/"), endpoint.model, self.config.keep_alive))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _describe(self, error: BaseException, endpoint: Endpoint | None) -> str:
        instructor, openai = _sdk()
        where = endpoint.label if endpoint else "the manager model"
        error = _unwrap(error)
        if isinstance(error, TimeoutError | openai.APITimeoutError):
            deadline = self._deadline(endpoint) if endpoint else self.config.timeout_s
            return f"{where} did not answer within {deadline:g}s"
        if isinstance(error, NoEndpoint):
            return f"no local model: {error}"
        if isinstance(error, openai.APIConnectionError):
            return f"cannot reach {where} at {endpoint.base_url if endpoint else '?'}"
        if isinstance(error, openai.APIStatusError):
            return f"{where} answered HTTP {error.status_code}"
        if isinstance(error, instructor.core.IncompleteOutputException):
            return f"{where} ran out of tokens before finishing its JSON"
        if isinstance(error, (pydantic.ValidationError, ValueError,
                              instructor.core.InstructorError)):
            return f"{where} returned output that does not fit the decision schema"
        return f"{where} failed: {type(error).__name__}"


WARM_UP_DIGEST = Digest(text="Hello!", input_tokens=10, has_tools=False, has_images=False,
                        wants_json=False, turns=1, in_tool_loop=False, virtual_model="auto",
                        long_context=False)


def _examples(bank: object) -> list[object] | None:
    return bank.examples if isinstance(bank, SeedBank) else None


def _unwrap(error: BaseException) -> BaseException:
    """instructor wraps the real failure in InstructorRetryException."""
    retry_error = _sdk()[0].core.InstructorRetryException
    if isinstance(error, retry_error) and error.__cause__ is not None:
        return error.__cause__
    return error


def _endpoint_failed(error: BaseException) -> bool:
    error, openai = _unwrap(error), _sdk()[1]
    return isinstance(error, (openai.APIConnectionError, openai.APIStatusError, TimeoutError))
