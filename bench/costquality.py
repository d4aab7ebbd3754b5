"""Cost/quality arithmetic of routing between a weak and a strong model, as RouteLLM
measures it: rank prompts by a score, send the top k to the strong model, and average
the strong model's score where it was called and the weak model's elsewhere.

Prompts with equal scores are indistinguishable to the router, so they are taken in
random order: each counts as its group's mean gain (the expected value), never in the
order that happens to suit the figure.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Sequence

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


def at_decision(chosen: Sequence[bool], weak: Sequence[float],
                strong: Sequence[float]) -> tuple[float, float]:
    """(share sent to strong, mean quality) when exactly the chosen prompts go to strong."""
    quality = [s if c else w for c, w, s in zip(chosen, weak, strong, strict=True)]
    return sum(chosen) / len(chosen), sum(quality) / len(quality)
