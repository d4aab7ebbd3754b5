"""The cost/quality arithmetic behind bench/routellm.py, on hand-made outcomes."""

import importlib.util
from pathlib import Path

import pytest

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
