"""`ai-router eval FILE.jsonl`: how well and how fast the manager decides, on labelled prompts.

Each line: `prompt`, optionally `label_capability`, `label_tier` (local/cheap/strong, or
strong/not_strong), `ref_output_tokens`, `model` (the client's virtual model, default
auto) and `system`. Every prompt goes the way routing sends it: the request is counted,
digested and handed to `Manager.decide`. Latency is that of fresh decisions (the cache
is consulted only in the session pass that follows), so it is what a new question costs.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated, Any

import typer

from . import tokens
from .cli import ConfigOpt, app, clean_errors, out
from .config import Config, load_config
from .digest import Digest, make_digest
from .errors import RouterError
from .manager import Manager, ManagerResult, fallback_decision
from .manager.retrieval import Neighbour, SeedBank
from .schema import CAPABILITIES, TIERS, ChatRequest

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


@dataclass(frozen=True)
class Outcome:
    item: Item
    result: ManagerResult


def load_items(path: Path, limit: int | None = None) -> list[Item]:
    if not path.is_file():
        raise RouterError(f"{path}: no such file")
    items = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            item = Item(str(row["prompt"]), row.get("label_capability"), row.get("label_tier"),
                        row.get("ref_output_tokens"), row.get("model") or "auto",
                        row.get("system"))
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise RouterError(f"{path}:{number}: each line needs a JSON object with a "
                              f"'prompt' ({type(e).__name__})") from None
        if item.capability not in (None, *CAPABILITIES):
            raise RouterError(f"{path}:{number}: unknown capability {item.capability!r}")
        if item.tier not in (None, *TIERS, *NOT_STRONG):
            raise RouterError(f"{path}:{number}: unknown tier {item.tier!r}")
        items.append(item)
    return items[:limit] if limit else items


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
    asked = sources["model"] + sources["fallback"]
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
        "model_share": _share([o.result.source == "model" for o in outcomes]),
        "latency_p50_s": _percentile(fresh, 50),
        "latency_p95_s": _percentile(fresh, 95),
        "confusion": {label: dict(row) for label, row in sorted(confusion.items())},
    }


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


async def evaluate(items: list[Item], config: Config, arms: list[str],
                   leave_one_out: bool = False, followups: int = 0) -> dict[str, Any]:
    report: dict[str, Any] = {}
    for arm in arms:
        if arm == "baseline":
            report[arm] = {**score(await run(items, config, baseline)),
                           "schema_valid_rate": None}  # no model was asked
            continue
        # the cache holds every decision of the run; only repeated prompts hit it, and
        # their latency is left out of the fresh figures
        manager = Manager(config.manager, mode=arm,  # type: ignore[arg-type]
                          cache_size=len(items) + 1)
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
            if name not in ("n", "confusion") and value is not None:
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
        config: ConfigOpt = None) -> None:
    """Score the manager's decisions on labelled prompts: accuracy, agreement, latency."""
    items = load_items(file, limit)
    if not items:
        raise RouterError(f"{file}: no prompts")
    chosen = (arms.split(",") if arms else list(ARMS) if compare
              else ["baseline", "combined"] if baseline_arm else ["combined"])
    if unknown := set(chosen) - set(ARMS):
        raise RouterError(f"unknown arm {', '.join(sorted(unknown))}; use {', '.join(ARMS)}")
    report = asyncio.run(evaluate(items, load_config(config), chosen, leave_one_out, followups))
    if as_json:
        # the configured manager's figures at the top level; the other arms beside them
        print(json.dumps({**report[chosen[-1]], "arms": report}))
    else:
        print_report(report)
