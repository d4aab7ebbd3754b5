"""The dashboard's chart: today's cumulative spend against the budget, as inline SVG drawn on
the server (no script, no external asset: the page works offline and under a strict CSP)."""

from __future__ import annotations

from html import escape
from typing import Any

from ..stats import dollars

SPEND_COLOUR = "#1f6feb"  # the spend line; the browser test looks for these exact colours
BUDGET_COLOUR = "#d62728"  # the budget limit
PACE_COLOUR = "#9aa0a6"  # even pace: the limit spread over the day
WIDTH, HEIGHT = 920, 300
LEFT, RIGHT, TOP, BOTTOM = 64, 24, 16, 34
PLOT_W, PLOT_H = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM


def spend_chart(series: list[dict[str, Any]], limit_micro: int) -> str:
    """`series`: points {share (0–1 of the local day), spent_micro}, midnight to now."""
    spent = series[-1]["spent_micro"] if series else 0
    top = max(limit_micro, spent, 1) * 1.12

    def x(share: float) -> float:
        return round(LEFT + share * PLOT_W, 1)

    def y(micro: float) -> float:
        return round(TOP + PLOT_H - micro / top * PLOT_H, 1)

    # a step line: spend stays flat between calls and jumps when one is settled
    steps = [f"M{x(0)},{y(0)}"]
    for p in series[1:]:
        steps.append(f"H{x(p['share'])}V{y(p['spent_micro'])}")
    line = "".join(steps)
    now = x(series[-1]["share"]) if series else x(0)
    area = f"{line}V{y(0)}Z"
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="{WIDTH}" height="{HEIGHT}" role="img" id="spend-chart" '
        f'aria-label="spend through today: {dollars(spent)} of a {dollars(limit_micro)} '
        f'budget">', *_grid(top, x, y),
        f'<line x1="{x(0)}" y1="{y(0)}" x2="{x(1)}" y2="{y(limit_micro)}" stroke="{PACE_COLOUR}"'
        ' stroke-width="1.5" stroke-dasharray="6 5"/>',
        f'<line class="budget" x1="{x(0)}" y1="{y(limit_micro)}" x2="{x(1)}" '
        f'y2="{y(limit_micro)}" stroke="{BUDGET_COLOUR}" stroke-width="3"/>',
        f'<text x="{x(1) - 4}" y="{y(limit_micro) - 7}" text-anchor="end" '
        f'fill="{BUDGET_COLOUR}">budget {dollars(limit_micro)}</text>',
        f'<path d="{area}" fill="{SPEND_COLOUR}" fill-opacity="0.10" stroke="none"/>',
        f'<path class="spend" d="{line}" fill="none" stroke="{SPEND_COLOUR}" stroke-width="3"'
        ' stroke-linejoin="round"/>',
        f'<line x1="{now}" y1="{TOP}" x2="{now}" y2="{y(0)}" stroke="#555" '
        'stroke-dasharray="2 3"/>',
        f'<text x="{now}" y="{TOP + 10}" text-anchor="middle" fill="#555">now</text>',
        "</svg>"]
    return "\n".join(parts)


def _grid(top: float, x: Any, y: Any) -> list[str]:
    """Hours every 3 h along the bottom, dollars in four steps up the side."""
    out = [f'<rect x="{LEFT}" y="{TOP}" width="{PLOT_W}" height="{PLOT_H}" fill="#fbfbfd" '
           'stroke="#d0d7de"/>']
    for hour in range(0, 25, 3):
        gx = x(hour / 24)
        out.append(f'<line x1="{gx}" y1="{TOP}" x2="{gx}" y2="{y(0)}" stroke="#eaeef2"/>')
        out.append(f'<text x="{gx}" y="{y(0) + 20}" text-anchor="middle" fill="#57606a">'
                   f'{hour:02d}:00</text>')
    for i in range(0, 5):
        micro = top / 1.12 * i / 4
        gy = y(micro)
        out.append(f'<line x1="{LEFT}" y1="{gy}" x2="{x(1)}" y2="{gy}" stroke="#eaeef2"/>')
        out.append(f'<text x="{LEFT - 6}" y="{gy + 4}" text-anchor="end" fill="#57606a">'
                   f'{escape(_dollars(micro))}</text>')
    return out


def _dollars(micro: float) -> str:
    """An axis label: a round figure, so fewer digits than `dollars`."""
    value = micro / 1e6
    return "$0" if value == 0 else f"${value:.2f}" if value >= 0.1 else f"${value:.4f}"
