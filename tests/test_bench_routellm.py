"""The cost/quality arithmetic behind bench/routellm.py, and its learned arm, on hand-made
outcomes."""

import asyncio
import importlib.util
import sys
from pathlib import Path

import pytest

from ai_router.config import load_config

_PATH = Path(__file__).resolve().parents[1] / "bench" / "costquality.py"
_SPEC = importlib.util.spec_from_file_location("costquality", _PATH)
cq = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(cq)

# four prompts: the weak model gets the first two right; the strong one all but the last
WEAK = [1.0, 1.0, 0.0, 0.0]
STRONG = [1.0, 1.0, 1.0, 0.0]


def test_the_highest_scored_prompts_go_to_the_strong_model_first():
    # the third prompt (the only one the strong model rescues) scored highest
    points = cq.curve([0.1, 0.2, 0.9, 0.3], WEAK, STRONG)
    assert points == [0.5, 0.75, 0.75, 0.75, 0.75]
    assert cq.share_needed(points, 0.95 * 0.75) == 0.25


def test_a_badly_ranked_router_needs_more_strong_calls():
    points = cq.curve([0.9, 0.8, 0.1, 0.7], WEAK, STRONG)
    assert points == [0.5, 0.5, 0.5, 0.5, 0.75]
    assert cq.share_needed(points, 0.95 * 0.75) == 1.0
    assert cq.apgr(points) == pytest.approx(0.125)


def test_equal_scores_count_as_random_order_not_the_lucky_one():
    # all tied: each strong call gains the mean gain (1/4 of a point), like random routing
    points = cq.curve([0, 0, 0, 0], WEAK, STRONG)
    assert points == pytest.approx([0.5, 0.5625, 0.625, 0.6875, 0.75])
    assert cq.apgr(points) == pytest.approx(0.5)
    # the analytic random share lands between the two integer counts that bracket it
    x = cq.random_share(0.5, 0.75, 0.95 * 0.75)
    assert x == pytest.approx(0.85)
    assert cq.share_needed(points, 0.95 * 0.75) == 1.0


def test_ties_are_broken_only_within_their_group():
    # two tiers: the tied pair above holds the rescued prompt, so it comes first on average
    points = cq.curve([1, 0, 1, 0], WEAK, STRONG)
    assert points == pytest.approx([0.5, 0.625, 0.75, 0.75, 0.75])


def test_a_router_can_beat_the_strong_model_when_the_weak_one_is_sometimes_better():
    weak, strong = [1.0, 0.0], [0.0, 1.0]
    points = cq.curve([0.0, 1.0], weak, strong)  # the oracle's order
    assert points == [0.5, 1.0, 0.5]
    assert cq.share_needed(points, 0.95 * 0.5) == 0.0


def test_no_strong_calls_needed_when_the_weak_model_already_reaches_the_target():
    assert cq.random_share(0.9, 0.92, 0.95 * 0.92) == 0.0


def test_the_share_is_never_when_the_target_is_out_of_reach():
    assert cq.share_needed([0.1, 0.2], 0.5) is None


def test_routing_exactly_the_chosen_prompts():
    share, quality = cq.at_decision([False, False, True, True], WEAK, STRONG)
    assert (share, quality) == (0.5, 0.75)


def test_scores_and_outcomes_must_pair_up():
    with pytest.raises(ValueError):
        cq.curve([0.1, 0.2], WEAK, STRONG)


def test_share_for_counts_never_as_calling_strong_every_time():
    assert cq.share_for([0.1, 0.2, 0.9, 0.3], WEAK, STRONG) == 0.25
    # the strong model is worse here, yet 95% of its quality is reached with none of it
    assert cq.share_for([0, 0], [1.0, 1.0], [0.0, 1.0]) == 0.0


def test_the_bootstrap_pairs_scorers_on_the_same_resamples():
    weak, strong = WEAK * 25, STRONG * 25
    perfect = [0.9 if (w, s) == (0.0, 1.0) else 0.0 for w, s in zip(weak, strong, strict=True)]
    shares = cq.resampled_shares({"perfect": perfect, "same": list(perfect),
                                  "tied": [0] * len(weak)}, weak, strong, rounds=50)
    assert all(len(v) == 50 for v in shares.values())
    assert cq.interval(shares["perfect"], shares["same"]) == (0.0, 0.0)  # paired: no noise
    low, high = cq.interval(shares["perfect"], shares["random"])
    assert high < 0  # the perfect ranker needs fewer strong calls on every resample
    # tied scores are random order: within a prompt or so of the analytic random share
    tied_low, tied_high = cq.interval(shares["tied"], shares["random"])
    assert -0.02 <= tied_low <= tied_high <= 0.02


def test_the_interval_is_the_central_share_of_the_differences():
    a = [float(i) for i in range(100)]
    assert cq.interval(a, [0.0] * 100) == (2.0, 97.0)
    assert cq.interval(a, [0.0] * 100, level=0.5) == (25.0, 74.0)


# ------------------------------------------- the learned arm (bench/routellm.py), synthetic

def _bench_module(name):
    bench = str(_PATH.parent)
    if bench not in sys.path:
        sys.path.insert(0, bench)  # routellm.py imports its neighbours by name
    return importlib.import_module(name)



def _record(prompt, weak=0.0, strong=1.0):
    return _bench_module("routellm_data").Record("synthetic", prompt, weak, strong, "writing")


def test_the_halves_drop_a_test_prompt_the_outcome_log_would_key_like_a_train_one():
    data, rl = _bench_module("routellm_data"), _bench_module("routellm")
    train_side = next(f"Question {i}?" for i in range(1000) if not data.in_test(f"Question {i}?"))
    # the same question, shouted and spaced differently, that the hash puts in TEST
    twin = next(v for v in (train_side.upper() + " " * n for n in range(1, 200))
                if data.in_test(v))
    fresh = next(f"Other {i}?" for i in range(1000) if data.in_test(f"Other {i}?"))
    train, test = rl.halves([_record(train_side), _record(twin), _record(fresh)])
    assert [r.prompt for r in train] == [train_side]
    assert [r.prompt for r in test] == [fresh]


def test_a_replayed_record_is_judged_by_its_outcomes_and_optionally_the_tier_alone():
    rl = _bench_module("routellm")
    needed = _record("Hard one", weak=0.0, strong=1.0)
    either = _record("Easy one", weak=1.0, strong=1.0)
    assert (rl.to_item(needed).capability, rl.to_item(needed).tier) == ("writing", "strong")
    assert rl.to_item(either).tier == "not_strong"
    assert rl.to_item(needed, "tier").capability is None
    assert rl.to_item(needed, "tier").tier == "strong"


def test_the_learned_arm_sends_strong_what_the_replayed_outcomes_escalated():
    rl = _bench_module("routellm")
    config = load_config(None)
    hello = "Zorblax quux greeting {}: write a friendly one-line hello to the team"
    # only strong got these right; names, not numbers, tell them apart (a number could
    # match a seed example's)
    train = [_record(hello.format(f"from {n}")) for n in ("amber", "birch", "cedar", "dune",
                                                            "elm", "fern")]
    test = [_record(hello.format(f"from {n}")) for n in ("gale", "heath", "iris")]
    before = asyncio.run(rl.score_arm("evidence", test, config))
    after = asyncio.run(rl.learned_arm(train, test, config, "full", "tier"))
    assert "strong" not in before["decision"]  # the seed bank alone calls it cheap work
    assert after["learning"]["escalated"] == 6 and after["learning"]["examples_learned"] == 6
    assert after["decision"] == ["strong"] * 3
    assert after["learning"]["privacy"] == "full"


def test_the_learned_arm_learns_the_prompt_as_the_outcome_log_keeps_it():
    rl = _bench_module("routellm")
    config = load_config(None)
    # six prompts that differ only after the 80 characters `preview` keeps
    train = [_record("Zorblax quux: write a friendly one-line hello to the whole team, "
                     f"and sign it from the release crew, edition {i}") for i in range(6)]
    test = [_record("Zorblax quux greeting: a one-line hello")]
    full = asyncio.run(rl.learned_arm(train, test, config, "full", "tier"))
    preview = asyncio.run(rl.learned_arm(train, test, config, "preview", "tier"))
    assert full["learning"]["examples_learned"] == 6
    assert preview["learning"]["examples_learned"] == 1  # one logged prompt, one example
