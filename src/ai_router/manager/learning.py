"""Learning from outcomes: rated answers become retrieval examples; usage calibrates lengths.

What counts (docs/benchmarks.md, "Learning from outcomes"):

- **good** feedback: the request becomes an example at the capability and the tier that
  served it, with the answer's real length.
- **escalated** (the same question asked again with a stronger model): the original was
  not enough, so its tier was too low; the follow-up that succeeded (the next answer to
  the same prompt, unless it was rated bad) becomes the example, at its stronger tier.
- **bad** feedback: the tier that answered was too low, or the capability was wrong.
  Either way no example at that tier or below is kept for that prompt, including one
  learned earlier from good feedback.
- **plain success** without feedback is not an example: it only says the provider
  answered, and learning the manager's own guesses back would let a wrong guess vote
  for itself. It does count for calibration, which only needs the real answer lengths.

A prompt is what the outcome log keeps of it (`privacy` in models.toml: the first 80
characters by default; nothing is learned with `privacy = "off"`).
"""

from __future__ import annotations

import statistics
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..schema import CAPABILITIES, TIERS
from .fallback import MIN_OUTPUT_TOKENS
from .retrieval import Example, SeedBank

if TYPE_CHECKING:
    from ..ledger import Ledger

RELOAD_EVERY_OUTCOMES = 20  # plain outcomes between reloads (calibration moves slowly)
# ...and never more often than this for plain outcomes: at 1k requests/s, every 20th
# request reloading cost a third of a core (docs/benchmarks.md, "Server overhead")
RELOAD_GAP_S = 5.0
RELOAD_AFTER_S = 30.0  # other processes (server workers, the REPL) rate answers too
RECENT_RATED = 5_000  # rated prompts read per reload, the most recent first
# calibration: the median actual/estimated output ratio of the last RECENT_USAGE answers
# of one capability on one model, believed from MIN_SAMPLES answers on, within the clamp
RECENT_USAGE = 200
MIN_SAMPLES = 20
RATIO_RANGE = (0.25, 4.0)

Calibration = Mapping[tuple[str, str], float]  # (capability, model ref) → actual/estimated


def prompt_key(text: str) -> str:
    return " ".join(text.lower().split())


def learn(rows: Iterable[Mapping[str, Any]]) -> list[Example]:
    """Examples from outcome rows (`prompt`, `capability`, `tier`, `output_tokens`,
    `status`, `feedback`, oldest first). Pure, so the rules above are tested directly."""
    by_prompt: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for row in rows:
        if row.get("prompt") and row.get("capability") in CAPABILITIES \
                and row.get("tier") in TIERS:
            by_prompt[prompt_key(row["prompt"])].append(row)
    examples = []
    for history in by_prompt.values():
        example = _learn_one(history)
        if example:
            examples.append(example)
    return examples


def _learn_one(history: list[Mapping[str, Any]]) -> Example | None:
    floor = 0  # the lowest tier index not yet shown too low
    good: list[Mapping[str, Any]] = []
    escalated = False
    for row in history:
        rank, feedback = TIERS.index(row["tier"]), row.get("feedback")
        if feedback in ("bad", "escalated"):
            floor = max(floor, rank + 1)
            escalated = escalated or feedback == "escalated"
        elif row.get("status") == "ok" and (feedback == "good" or escalated):
            good.append(row)
            escalated = False  # one follow-up answers one escalation
    kept = [row for row in good if TIERS.index(row["tier"]) >= floor]
    if not kept:
        return None
    last = kept[-1]
    length = last.get("output_tokens") or 0
    return Example(last["prompt"], last["capability"], last["tier"],
                   max(MIN_OUTPUT_TOKENS, int(length)))


def calibrate(rows: Iterable[Mapping[str, Any]]) -> dict[tuple[str, str], float]:
    """(capability, model) → median actual/estimated output tokens, from rows with the
    served `model`, the real `output_tokens` and the manager's `estimate`, newest first."""
    ratios: dict[tuple[str, str], list[float]] = defaultdict(list)
    for row in rows:
        try:
            estimate = int(row["estimate"])
        except (TypeError, ValueError):
            continue
        key = (row["capability"], row["model"])
        if estimate > 0 and row.get("output_tokens") and len(ratios[key]) < RECENT_USAGE:
            ratios[key].append(row["output_tokens"] / estimate)
    low, high = RATIO_RANGE
    return {key: round(min(high, max(low, statistics.median(found))), 3)
            for key, found in ratios.items() if len(found) >= MIN_SAMPLES}


@dataclass
class Learned:
    bank: SeedBank | None  # the seed examples and the learned ones, in one index
    calibration: dict[tuple[str, str], float] = field(default_factory=dict)
    learned: int = 0  # how many of the bank's examples came from outcomes


class Learner:
    """Reads the outcome log into a Learned; `stale` is the cheap check made per request."""

    def __init__(self, ledger: Ledger, seeds: list[Example]):
        self.ledger, self.seeds = ledger, seeds
        self._seen: tuple[int, int] = (-1, -1)  # the ledger's (rated, written) at the last load
        self._loaded_at = float("-inf")
        self._examples: list[Example] | None = None  # the learned examples of the last load
        self._bank: SeedBank | None = None  # ...and the index built over them and the seeds

    def stale(self) -> bool:
        rated, written = self.ledger.outcome_changes
        since = time.monotonic() - self._loaded_at
        return (rated != self._seen[0] or since > RELOAD_AFTER_S
                or (written - self._seen[1] >= RELOAD_EVERY_OUTCOMES and since >= RELOAD_GAP_S))

    def load(self) -> Learned:
        """A fresh Learned (milliseconds for a few thousand outcomes: run it off the loop).
        The index is rebuilt only when the learned examples changed (7 ms for 1,001 seeds)."""
        self._seen, self._loaded_at = self.ledger.outcome_changes, time.monotonic()
        examples = learn(self.ledger.rated_outcomes(RECENT_RATED))
        calibration = calibrate(self.ledger.recent_usage(RECENT_USAGE * 20))
        if examples != self._examples:
            everything = self.seeds + examples
            self._examples, self._bank = examples, SeedBank(everything) if everything else None
        return Learned(self._bank, calibration, len(examples))
