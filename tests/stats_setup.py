"""A ledger filled through real routed calls on loopback upstreams, with every number the
stats should find worked out by hand below. Shared by the stats, dashboard and browser tests
(built once per module: the tests only read it).

The registry is routing_setup's, with anthropic/claude-haiku-4-5 made the one strong model,
so it is the "always the strongest" reference for savings. The budget day is UTC.

yesterday 2026-03-10
  09:00  Y  pinned anthropic, writing   1000 in / 1000 out          1000×1.0 + 1000×5.0 = 6000
today 2026-03-11
  09:00  A  pinned deepseek, coding     1000 in (600 cached) / 200  400×.27+600×.07+200×1.1 = 370
            on anthropic:                                    400×1.0 + 600×0.1 + 200×5.0 = 1460
  10:00  B  pinned anthropic, coding    400 / 100                   400×1.0 + 100×5.0 = 900
  11:00  C  pinned google, writing      2000 / 400                  2000×.30 + 400×2.5 = 1600
            on anthropic:                                          2000×1.0 + 400×5.0 = 4000
  11:30  D  pinned deepseek, chat: 503, answered by local (fallback)  500 / 100 → 0
            on anthropic:                                           500×1.0 + 100×5.0 = 1000
  11:45  E  pinned deepseek, chat, offline-only: "tier strong → local", local  300 / 50 → 0
            on anthropic:                                            300×1.0 + 50×5.0 = 550
  11:50  F  pinned google, extraction: google 400, local and ollama 500 (an error, nothing
            billed)
now 12:00
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest

from ai_router.config import Config, load_config
from ai_router.errors import NoRoute
from ai_router.router import Router
from ai_router.schema import ChatRequest
from routing_setup import (
    ANTHROPIC,
    DEEPSEEK,
    FAKE_KEYS,
    GOOGLE,
    LOCAL,
    PRICES,
    Loopbacks,
    cost_by_hand,
    make_router,
    standard_models,
)
from upstreams import anthropic_wire as aw
from upstreams import gemini_wire as gw
from upstreams import ollama_wire as ow
from upstreams import openai_wire as oa

DAY = date(2026, 3, 11)  # "today" of the worked example


def at(today: date, days_ago: int, hour: int, minute: int = 0) -> float:
    return datetime.combine(today - timedelta(days=days_ago), time(hour, minute),
                            UTC).timestamp()


DAILY_USD = 0.05
STRONG = {**PRICES[ANTHROPIC]}

# by hand (routing_setup.cost_by_hand does not use ai_router.prices)
Y = cost_by_hand(PRICES[ANTHROPIC], input_tokens=1000, output_tokens=1000)
A = cost_by_hand(PRICES[DEEPSEEK], input_tokens=1000, cache_read=600, output_tokens=200)
A_STRONG = cost_by_hand(STRONG, input_tokens=1000, cache_read=600, output_tokens=200)
B = cost_by_hand(PRICES[ANTHROPIC], input_tokens=400, output_tokens=100)
C = cost_by_hand(PRICES[GOOGLE], input_tokens=2000, output_tokens=400)
C_STRONG = cost_by_hand(STRONG, input_tokens=2000, output_tokens=400)
D_STRONG = cost_by_hand(STRONG, input_tokens=500, output_tokens=100)
E_STRONG = cost_by_hand(STRONG, input_tokens=300, output_tokens=50)
assert (Y, A, A_STRONG, B, C, C_STRONG, D_STRONG, E_STRONG) == (
    6000, 370, 1460, 900, 1600, 4000, 1000, 550)  # the arithmetic in the docstring


def registry() -> dict[str, dict[str, Any]]:
    models = standard_models()
    models[ANTHROPIC] = {**models[ANTHROPIC], "tier": "strong", "quality": 5}
    return models


@dataclass
class Filled:
    folder: Path
    db: Path
    config: Config
    today: date

    @property
    def now(self) -> float:
        return at(self.today, 0, 12)

    def day(self, days_ago: int = 0) -> str:
        return (self.today - timedelta(days=days_ago)).isoformat()

    def router(self, monkeypatch: Any, *, daily_usd: float | None = None) -> Router:
        """A router on this ledger whose clock says 12:00 today, keys planted (as for
        serving); `daily_usd` changes the budget as an edit of models.toml would."""
        for env, value in FAKE_KEYS.items():
            monkeypatch.setenv(env, value)
        monkeypatch.setenv("AI_ROUTER_DB", str(self.db))
        config = self.config
        if daily_usd is not None:
            budget = config.budget.model_copy(update={"daily_usd": daily_usd})
            config = config.model_copy(update={"budget": budget})
        return Router.from_config(config, clock=lambda: self.now)


class Clock:
    def __init__(self, now: float):
        self.now = now

    def __call__(self) -> float:
        return self.now


@contextmanager
def filled_ledger(folder: Path, today: date = DAY) -> Iterator[Filled]:
    """Route the calls in the module docstring into a fresh ledger in `folder`, `today`
    standing for 2026-03-11."""
    with Loopbacks.running() as up, pytest.MonkeyPatch.context() as mp:
        for var in ("HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME"):  # no real .env is read
            mp.setenv(var, str(folder / "home"))
        router, db = make_router(folder, mp, up.urls, clock=Clock(0),
                                 daily_usd=DAILY_USD, models=registry())
        config = load_config(folder / "models.toml")
        asyncio.run(_route_the_day(router, config, up, today))
        yield Filled(folder, db, config, today)


async def _route_the_day(router: Router, config: Config, up: Loopbacks, today: date) -> None:
    clock = router.clock
    assert isinstance(clock, Clock)

    def when(days_ago: int, hour: int, minute: int = 0) -> float:
        return at(today, days_ago, hour, minute)

    async def ask(when: float, model: str, capability: str, *, served_by: str, cost: int,
                  attempts: int = 0, router: Router = router) -> None:
        clock.now = when
        routed = await router.ask(ChatRequest.from_prompt(f"{capability} at {when}",
                                                          model=model),
                                  capability=capability)  # type: ignore[arg-type]
        assert (routed.model.ref, routed.cost_micro, len(routed.attempts)) == (
            served_by, cost, attempts)
        up.reset()  # a wire server repeats its last reply: start each request afresh

    try:
        up.anthropic.reply(aw.message([aw.text_block("y")], usage=aw.usage(1000, 1000)))
        await ask(when(1, 9), ANTHROPIC, "writing", served_by=ANTHROPIC, cost=Y)
        up.deepseek.push(oa.json_reply(oa.completion_body(
            "a", usage=oa.usage_body(1000, 200, cached=600))))
        await ask(when(0, 9), DEEPSEEK, "coding", served_by=DEEPSEEK, cost=A)
        up.anthropic.reply(aw.message([aw.text_block("b")], usage=aw.usage(400, 100)))
        await ask(when(0, 10), ANTHROPIC, "coding", served_by=ANTHROPIC, cost=B)
        up.google.reply(gw.response([gw.text_part("c")], usage=gw.usage(2000, 400)))
        await ask(when(0, 11), GOOGLE, "writing", served_by=GOOGLE, cost=C)
        up.deepseek.push(oa.error_reply(503))
        up.local.push(oa.json_reply(oa.completion_body("d", usage=oa.usage_body(500, 100))))
        await ask(when(0, 11, 30), DEEPSEEK, "chat", served_by=LOCAL, cost=0, attempts=1)
        offline = Router.from_config(config, offline=True, clock=clock)
        try:
            up.local.push(oa.json_reply(oa.completion_body("e", usage=oa.usage_body(300, 50))))
            await ask(when(0, 11, 45), DEEPSEEK, "chat", served_by=LOCAL, cost=0,
                      router=offline)
        finally:
            await offline.aclose()
        up.google.reply_error(400, "bad request")
        up.local.push(oa.error_reply(500))
        up.ollama.push(ow.error_reply(500))
        with pytest.raises(NoRoute):
            await ask(when(0, 11, 50), GOOGLE, "extraction", served_by="", cost=0)
    finally:
        await router.aclose()
