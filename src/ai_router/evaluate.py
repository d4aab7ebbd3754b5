"""`ai-router eval FILE.jsonl`: how well and how fast the manager decides, on labelled prompts.

Each line: `prompt`, optionally `label_capability`, `label_tier` (local/cheap/strong, or
strong/not_strong), `ref_output_tokens`, `model` (the client's virtual model, default
auto) and `system`. Every prompt goes the way routing sends it: the request is counted,
digested and handed to `Manager.decide`. Latency is that of fresh decisions (the cache
is consulted only in the session pass that follows), so it is what a new question costs.

`--learn-from TRAIN.jsonl` first replays TRAIN as outcomes into a throwaway ledger (see
`replay`), then scores FILE twice in the same run: with the seed bank alone and with what
was learned from those outcomes.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated, Any

import typer

from . import tokens
from .cli import ConfigOpt, app, clean_errors, out
from .clock import zone
from .config import Config, Keys, load_config
from .digest import Digest, make_digest
from .errors import RouterError
from .guard import Plan
from .ledger import Ledger
from .manager import Manager, ManagerResult, fallback_decision
from .manager.core import TIEBREAK_TIMEOUT_S
from .manager.learning import RECENT_RATED, prompt_key
from .manager.retrieval import Neighbour, SeedBank
from .router import Router
from .schema import CAPABILITIES, TIERS, ChatRequest, RoutingDecision, Tier, Usage

ARMS = ("baseline", "evidence", "model", "combined")
NOT_STRONG = frozenset({"not_strong", "weak", "local", "cheap"})


@dataclass(frozen=True)
class Item:
    prompt: str
    capability: str | None = None
    tier: str | None = None  # local/cheap/strong, or not_strong
    ref_tokens: int | None = None
    model: str = "auto"
    system: str | None = None
    # measured answer quality of a weak and a strong model (e.g. RouteLLM's outcomes: 0/1
    # correct, or a judge's score): what routing this prompt strong or not is worth
    weak_score: float | None = None
    strong_score: float | None = None


@dataclass(frozen=True)
class Outcome:
    item: Item
    result: ManagerResult


def load_items(path: Path, limit: int | None = None) -> list[Item]:
    if not path.is_file():
        raise RouterError(f"{path}: no such file")
    items = []
    # JSON lines end at "\n" only: a prompt may hold U+2028 or U+0085 unescaped
    for number, line in enumerate(path.read_text(encoding="utf-8").split("\n"), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            item = Item(str(row["prompt"]), row.get("label_capability"), row.get("label_tier"),
                        row.get("ref_output_tokens"), row.get("model") or "auto",
                        row.get("system"), _score(row, "weak_score"),
                        _score(row, "strong_score"))
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise RouterError(f"{path}:{number}: each line needs a JSON object with a "
                              f"'prompt' ({type(e).__name__})") from None
        if item.capability not in (None, *CAPABILITIES):
            raise RouterError(f"{path}:{number}: unknown capability {item.capability!r}")
        if item.tier not in (None, *TIERS, *NOT_STRONG):
            raise RouterError(f"{path}:{number}: unknown tier {item.tier!r}")
        items.append(item)
    return items[:limit] if limit else items


def _score(row: dict[str, Any], key: str) -> float | None:
    return None if row.get(key) is None else float(row[key])


def to_digest(item: Item, config: Config) -> Digest:
    """The digest routing would make of this prompt (see Router.prepare)."""
    request = ChatRequest.from_prompt(item.prompt, system=item.system, model=item.model)
    return make_digest(request, tokens.count_request(request).tokens,
                       config.routing.long_context_tokens)


async def run(items: list[Item], config: Config, decide: Any) -> list[Outcome]:
    return [Outcome(item, await decide(to_digest(item, config))) for item in items]


async def baseline(digest: Digest) -> ManagerResult:
    """The keyword fallback alone, timed like a decision."""
    start = time.perf_counter()
    decision = fallback_decision(digest)
    return ManagerResult(decision, "fallback", "baseline", time.perf_counter() - start,
                         "fallback")


def _share(hits: list[bool]) -> float | None:
    return round(sum(hits) / len(hits), 4) if hits else None


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return round(values[0], 4)
    return round(statistics.quantiles(values, n=100, method="inclusive")[q - 1], 4)


def score(outcomes: list[Outcome]) -> dict[str, Any]:
    labelled = [o for o in outcomes if o.item.capability]
    confusion: dict[str, Counter[str]] = defaultdict(Counter)
    for o in labelled:
        confusion[o.item.capability][o.result.decision.capability] += 1  # type: ignore[index]
    three_way = [o for o in outcomes if o.item.tier in TIERS]
    tiered = [o for o in outcomes if o.item.tier]
    sized = [o for o in outcomes if o.item.ref_tokens]
    sources = Counter(o.result.source for o in outcomes)
    fresh = [o.result.latency_s for o in outcomes if not o.result.cached]
    asked = sources["model"] + sources["fallback"] + sources["model_late"]
    return {
        "n": len(outcomes),
        "capability_accuracy": _share([o.result.decision.capability == o.item.capability
                                       for o in labelled]),
        "tier_agreement": _share([o.result.decision.tier == o.item.tier for o in three_way]),
        "strong_agreement": _share([(o.result.decision.tier == "strong")
                                    == (o.item.tier == "strong") for o in tiered]),
        "tokens_within_2x": _share([
            o.item.ref_tokens / 2 <= o.result.decision.output_tokens <= o.item.ref_tokens * 2
            for o in sized if o.item.ref_tokens]),
        "schema_valid_rate": round(sources["model"] / asked, 4) if asked else None,
        "fallback_share": _share([o.result.source == "fallback" for o in outcomes]),
        "fallback_reasons": dict(Counter(o.result.fallback_reason for o in outcomes
                                         if o.result.source == "fallback")),
        "model_share": _share([o.result.source == "model" for o in outcomes]),
        # the model was asked to break a tie and missed its deadline: the evidence decided
        "model_late_share": _share([o.result.source == "model_late" for o in outcomes]),
        # the estimate's error: median of estimated / reference output tokens (1 is right)
        "tokens_median_ratio": round(statistics.median(
            o.result.decision.output_tokens / o.item.ref_tokens for o in sized), 3)
        if sized else None,
        "latency_p50_s": _percentile(fresh, 50),
        "latency_p95_s": _percentile(fresh, 95),
        "cost_quality": cost_quality(outcomes),
        "confusion": {label: dict(row) for label, row in sorted(confusion.items())},
    }


def cost_quality(outcomes: list[Outcome]) -> dict[str, float] | None:
    """What the decisions buy on prompts with measured weak and strong answers: the share
    sent to the strong tier, the quality that gives, as a share of always-strong's, and
    what random routing with the same share of strong calls would get."""
    rated = [o for o in outcomes if o.item.weak_score is not None
             and o.item.strong_score is not None]
    if not rated:
        return None
    weak = [o.item.weak_score for o in rated]
    strong = [o.item.strong_score for o in rated]
    share, quality = at_decision([o.result.decision.tier == "strong" for o in rated],
                                 weak, strong)  # type: ignore[arg-type]
    weak_q, strong_q = statistics.fmean(weak), statistics.fmean(strong)  # type: ignore[arg-type]
    return {"n": len(rated), "strong_share": round(share, 4), "quality": round(quality, 4),
            "of_always_strong": round(quality / strong_q, 4) if strong_q else 0.0,
            "random_same_share": round(weak_q + share * (strong_q - weak_q), 4),
            "weak_only": round(weak_q, 4), "strong_only": round(strong_q, 4)}


def at_decision(chosen: Sequence[bool], weak: Sequence[float],
                strong: Sequence[float]) -> tuple[float, float]:
    """(share sent to strong, mean quality) when exactly the chosen prompts go to strong."""
    quality = [s if c else w for c, w, s in zip(chosen, weak, strong, strict=True)]
    return sum(chosen) / len(chosen), sum(quality) / len(quality)


async def session_pass(manager: Manager, outcomes: list[Outcome], config: Config,
                       followups: int) -> dict[str, Any]:
    """Replay each prompt as an agent turn: its decision above, then `followups` requests
    of its tool loop (the same question with more tokens), which the cache should answer."""
    every = [o.result.latency_s for o in outcomes]
    repeats: list[float] = []
    for o in outcomes:
        digest = to_digest(o.item, config)
        for i in range(1, followups + 1):
            grown = replace(digest, input_tokens=digest.input_tokens + 800 * i,
                            turns=digest.turns + 2 * i, in_tool_loop=True)
            repeats.append((await manager.decide(grown)).latency_s)
    every += repeats
    return {"followups": followups,
            "cached_latency_p50_s": _percentile(repeats, 50),
            "amortised_latency_s": round(sum(every) / len(every), 4) if every else None}


class LeaveOneOut:
    """A seed bank that never returns the prompt being decided: evaluating the bank on
    itself would otherwise find every answer in its own prompt."""

    def __init__(self, bank: SeedBank):
        self.bank = bank

    def nearest(self, text: str, k: int = 4) -> list[Neighbour]:
        return self.bank.nearest(text, k, exclude=text)


def verdict(item: Item, decision: RoutingDecision) -> str | None:
    """The feedback a user would give a decision, from the item's labels: a wrong capability
    is a bad answer, a tier below the label is asked again stronger, else it was good.
    None when the item has no label to judge by (a plain success)."""
    if item.capability and decision.capability != item.capability:
        return "bad"
    if item.tier == "strong" and decision.tier != "strong":
        return "escalated"
    if item.tier in TIERS and TIERS.index(decision.tier) < TIERS.index(item.tier):
        return "escalated"
    return "good" if item.capability or item.tier else None


async def replay(items: list[Item], config: Config, ledger: Ledger,
                 manager: Manager) -> Counter[str]:
    """Labelled items as the outcomes routing would have logged: the manager decides, the
    router's own `_log` writes the row (with the configured `privacy`), and the feedback
    follows from the label (`verdict`). An escalated item is asked again with the label's
    tier as its virtual model, as `/retry stronger` does, and that answer succeeds."""
    router = Router(config, Keys({}), ledger, manager)  # no provider is called
    counts: Counter[str] = Counter()
    for item in items:
        digest = to_digest(item, config)
        result = await manager.decide(digest)
        rated = verdict(item, result.decision)
        outcome = _record(router, item, digest, result, result.decision.tier)
        if rated:
            ledger.set_feedback(outcome, rated)
        if rated == "escalated":
            again = to_digest(replace(item, model=item.tier or "strong"), config)  # /retry
            stronger: Tier = item.tier if item.tier in TIERS else "strong"  # type: ignore[assignment]
            _record(router, item, again, await manager.decide(again), stronger)
        counts[rated or "unrated"] += 1
    return counts


def _record(router: Router, item: Item, digest: Digest, result: ManagerResult,
            tier: Tier) -> str:
    outcome = uuid.uuid4().hex
    usage = Usage(input_tokens=digest.input_tokens,
                  output_tokens=item.ref_tokens or result.decision.output_tokens)
    router._log(outcome, "eval", digest, result, Plan(result.decision.capability, tier), None,
                usage, 0, time.monotonic(), [], status="ok")
    return outcome


async def learned_bank(train: list[Item], config: Config, mode: str) -> tuple[Any, dict]:
    """The seed bank plus what replaying `train` teaches, from a throwaway ledger."""
    with tempfile.TemporaryDirectory(prefix="ai-router-learn-") as folder:
        ledger = Ledger(Path(folder) / "ledger.db", zone("UTC"))
        try:
            manager = Manager(config.manager, mode=mode,  # type: ignore[arg-type]
                              cache_size=len(train) * 2 + 1)
            if mode != "evidence":
                await manager.warm_up()
            counts = await replay(train, config, ledger, manager)
            learned = manager.learn_from(ledger)  # the shipped seeds + what was replayed
        finally:
            ledger.close()
    capped = {"read_only_the_last_rated": RECENT_RATED} if len(train) > RECENT_RATED else {}
    return learned.bank, {"train": len(train), "replayed_with": mode,
                          "privacy": config.privacy, **dict(sorted(counts.items())),
                          "examples_learned": learned.learned, **capped}


async def evaluate(items: list[Item], config: Config, arms: list[str],
                   leave_one_out: bool = False, followups: int = 0,
                   seeds: Any = None, tiebreak_s: float | None = None) -> dict[str, Any]:
    """Score each arm; `seeds` replaces the shipped seed bank (a learned bank)."""
    report: dict[str, Any] = {}
    for arm in arms:
        if arm == "baseline":
            report[arm] = {**score(await run(items, config, baseline)),
                           "schema_valid_rate": None}  # no model was asked
            continue
        # the cache holds every decision of the run; only repeated prompts hit it, and
        # their latency is left out of the fresh figures
        manager = Manager(config.manager, mode=arm,  # type: ignore[arg-type]
                          cache_size=len(items) + 1, **({"seeds": seeds} if seeds else {}),
                          **({"tiebreak_s": tiebreak_s} if tiebreak_s else {}))
        if leave_one_out and manager.seeds:
            manager.seeds = LeaveOneOut(manager.seeds)  # type: ignore[assignment]
        if arm != "evidence":
            await manager.warm_up()  # the cold start is not what a request meets
        outcomes = await run(items, config, manager.decide)
        report[arm] = score(outcomes)
        if followups:
            report[arm]["session"] = await session_pass(manager, outcomes, config, followups)
    return report


def print_report(report: dict[str, Any]) -> None:
    for arm, figures in report.items():
        out.print(f"[bold]{arm}[/bold] (n={figures['n']})")
        for name, value in figures.items():
            if name not in ("n", "confusion") and value not in (None, {}):
                out.print(f"  {name:22} {value}")
        if figures["confusion"]:
            out.print("  confusion (label: predicted counts)")
            for label, row in figures["confusion"].items():
                cells = ", ".join(f"{p} {c}" for p, c in sorted(row.items(), key=lambda x: -x[1]))
                out.print(f"    {label:11} {cells}")


@app.command("eval")
@clean_errors
def eval_command(
        file: Annotated[Path, typer.Argument(help="JSONL of prompts with optional labels")],
        as_json: Annotated[bool, typer.Option("--json", help="one JSON object")] = False,
        limit: Annotated[int | None, typer.Option(help="only the first N prompts")] = None,
        baseline_arm: Annotated[bool, typer.Option(
            "--baseline", help="also score the keyword fallback alone")] = False,
        compare: Annotated[bool, typer.Option(
            help="score every arm: baseline, evidence, model alone, combined")] = False,
        arms: Annotated[str | None, typer.Option(
            help=f"comma-separated arms to score, of: {', '.join(ARMS)}")] = None,
        leave_one_out: Annotated[bool, typer.Option(
            help="never retrieve the prompt itself (evaluating the seed bank)")] = False,
        followups: Annotated[int, typer.Option(
            help="tool-loop requests replayed per prompt to measure cached latency")] = 0,
        learn_from: Annotated[Path | None, typer.Option(
            "--learn-from", help="labelled JSONL replayed as rated outcomes first; FILE is "
            "then scored without and with what was learned")] = None,
        tiebreak_s: Annotated[float | None, typer.Option(
            "--tiebreak-s", help="the model's tie-break deadline (default "
            f"{TIEBREAK_TIMEOUT_S:g} s); a long one measures what the model would say")] = None,
        config: ConfigOpt = None) -> None:
    """Score the manager's decisions on labelled prompts: accuracy, agreement, latency, and
    cost/quality where lines carry weak_score and strong_score."""
    items = load_items(file, limit)
    if not items:
        raise RouterError(f"{file}: no prompts")
    chosen = (arms.split(",") if arms else list(ARMS) if compare
              else ["baseline", "combined"] if baseline_arm else ["combined"])
    if unknown := set(chosen) - set(ARMS):
        raise RouterError(f"unknown arm {', '.join(sorted(unknown))}; use {', '.join(ARMS)}")
    loaded = load_config(config)
    if tiebreak_s and tiebreak_s > loaded.manager.timeout_s:  # or the call's own deadline cuts
        loaded = loaded.model_copy(update={"manager": loaded.manager.model_copy(
            update={"timeout_s": tiebreak_s})})
    if learn_from is None:
        report = asyncio.run(evaluate(items, loaded, chosen, leave_one_out, followups,
                                      tiebreak_s=tiebreak_s))
        if as_json:
            # the configured manager's figures at the top level; the other arms beside them
            print(json.dumps({**report[chosen[-1]], "arms": report}))
        else:
            print_report(report)
        return
    before, after, learning = asyncio.run(
        learn_and_evaluate(items, load_items(learn_from), loaded, chosen, leave_one_out,
                           followups, tiebreak_s))
    if as_json:
        print(json.dumps({**after[chosen[-1]], "arms": after, "without_learning": before,
                          "learning": learning}))
    else:
        out.print(f"[bold]learning[/bold] {learning}")
        out.print("[bold]-- without learning --[/bold]")
        print_report(before)
        out.print("[bold]-- with learning --[/bold]")
        print_report(after)


async def learn_and_evaluate(items: list[Item], train: list[Item], config: Config,
                             arms: list[str], leave_one_out: bool, followups: int,
                             tiebreak_s: float | None = None
                             ) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Score `items` without and with what replaying `train` teaches. An item whose prompt
    is also in `train` is not scored: it would find its own answer."""
    taught = {prompt_key(t.prompt) for t in train}
    scored = [i for i in items if prompt_key(i.prompt) not in taught]
    if not scored:
        raise RouterError("every prompt to score is also in the --learn-from file")
    managers = [a for a in arms if a != "baseline"]
    bank, learning = await learned_bank(train, config, managers[-1] if managers else "evidence")
    learning["not_scored_overlap"] = len(items) - len(scored)
    before = await evaluate(scored, config, arms, leave_one_out, followups,
                            tiebreak_s=tiebreak_s)
    after = await evaluate(scored, config, arms, leave_one_out, followups, seeds=bank,
                           tiebreak_s=tiebreak_s)
    return before, after, learning
