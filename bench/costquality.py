"""Cost/quality arithmetic of routing between a weak and a strong model, as RouteLLM
measures it: rank prompts by a score, send the top k to the strong model, and average
the strong model's score where it was called and the weak model's elsewhere.

Prompts with equal scores are indistinguishable to the router, so they are taken in
random order: each counts as its group's mean gain (the expected value), never in the
order that happens to suit the figure.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Hashable, Sequence

from ai_router.evaluate import at_decision  # noqa: F401 - one place for it, with `ai-router eval`

QUALITY_SHARE = 0.95  # of the strong model's quality


def curve(scores: Sequence[Hashable], weak: Sequence[float],
          strong: Sequence[float]) -> list[float]:
    """Expected mean quality with k = 0..n calls to the strong model, highest score first."""
    n = len(scores)
    if not n or not len(weak) == len(strong) == n:
        raise ValueError("need one weak and one strong score per routing score")
    gains: dict[Hashable, list[float]] = defaultdict(list)
    for score, w, s in zip(scores, weak, strong, strict=True):
        gains[score].append(s - w)
    total = sum(weak)
    points = [total / n]
    for score in sorted(gains, reverse=True):
        mean_gain = sum(gains[score]) / len(gains[score])
        for _ in gains[score]:
            total += mean_gain
            points.append(total / n)
    return points


def share_needed(points: list[float], target: float) -> float | None:
    """The smallest share of strong calls whose quality reaches `target` (None: never)."""
    n = len(points) - 1
    return next((k / n for k, q in enumerate(points) if q >= target - 1e-9), None)


def random_share(weak_quality: float, strong_quality: float, target: float) -> float:
    """Random routing's expected quality is weak + x·(strong − weak): solve for x."""
    if weak_quality >= target:
        return 0.0
    return (target - weak_quality) / (strong_quality - weak_quality)


def apgr(points: list[float]) -> float:
    """Average performance gap recovered (RouteLLM): the area under the curve above the
    weak model's quality, as a share of the gap to the strong model's. Random is 0.5."""
    n = len(points) - 1
    area = sum((a + b) / 2 for a, b in zip(points, points[1:], strict=False)) / n
    return (area - points[0]) / (points[-1] - points[0])


def share_for(scores: Sequence[Hashable], weak: Sequence[float],
              strong: Sequence[float]) -> float:
    """The smallest share of strong calls keeping QUALITY_SHARE of the strong model's quality
    (1.0 when only calling strong every time gets there)."""
    target = QUALITY_SHARE * sum(strong) / len(strong)
    found = share_needed(curve(scores, weak, strong), target)
    return 1.0 if found is None else found


def resampled_shares(scorers: dict[str, Sequence[Hashable]], weak: Sequence[float],
                     strong: Sequence[float], rounds: int,
                     seed: int = 0) -> dict[str, list[float]]:
    """`share_for` of each scorer, and of random routing (analytic), on `rounds` bootstrap
    resamples of the prompts; every scorer sees the same resample, so differences pair up."""
    rng = random.Random(seed)
    n = len(weak)
    shares: dict[str, list[float]] = {name: [] for name in ("random", *scorers)}
    for _ in range(rounds):
        picked = [rng.randrange(n) for _ in range(n)]
        w, s = [weak[i] for i in picked], [strong[i] for i in picked]
        weak_q, strong_q = sum(w) / n, sum(s) / n
        shares["random"].append(min(1.0, random_share(weak_q, strong_q,
                                                      QUALITY_SHARE * strong_q)))
        for name, scores in scorers.items():
            shares[name].append(share_for([scores[i] for i in picked], w, s))
    return shares


def interval(a: Sequence[float], b: Sequence[float], level: float = 0.95) -> tuple[float, float]:
    """The central `level` interval of the paired differences a − b."""
    diffs = sorted(x - y for x, y in zip(a, b, strict=True))
    cut = int(len(diffs) * (1 - level) / 2 + 1e-9)  # rounded down: never narrower
    return diffs[cut], diffs[len(diffs) - 1 - cut]
