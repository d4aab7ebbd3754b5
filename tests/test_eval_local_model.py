"""`ai-router eval` against the real embedded model (SmolLM2-135M via llama.cpp)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ai_router.config import ManagerConfig, load_config
from ai_router.evaluate import Item, evaluate

pytestmark = pytest.mark.local_model

REPO = Path(__file__).resolve().parents[1]
ITEMS = [
    Item("hey, how's your day going?", "chat", "local", 40),
    Item("Who wrote Pride and Prejudice?", "knowledge", "cheap", 100),
    Item("Write a limerick about a sleepy cat", "writing", "cheap", 120),
    Item("Write a Python function that returns the n-th Fibonacci number", "coding",
         "strong", 400),
    Item("Translate to Spanish: the library closes at noon", "extraction", "cheap", 30),
]


async def test_the_harness_scores_the_real_embedded_model_and_the_combined_manager():
    config = load_config(REPO / "models.toml")
    # a generous deadline: this checks the wiring and the schema, not the speed of a
    # machine shared with other test runs
    config = config.model_copy(update={"manager": ManagerConfig(endpoint="embedded",
                                                                timeout_s=60.0)})
    report = await evaluate(ITEMS, config, ["model", "combined"])
    model, combined = report["model"], report["combined"]
    assert model["n"] == combined["n"] == 5
    # every answer fits the schema; on a loaded machine one may miss even this deadline
    late = [r for r in model["fallback_reasons"] if "did not answer within" in r]
    assert set(model["fallback_reasons"]) == set(late), model["fallback_reasons"]
    assert model["model_share"] >= 0.8
    assert model["latency_p50_s"] > 0
    assert combined["capability_accuracy"] >= 0.8
    assert all("did not answer within" in r for r in combined["fallback_reasons"]), \
        combined["fallback_reasons"]
