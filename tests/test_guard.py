"""The guard turns any manager proposal into a plan that can serve the request and fits the day."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from ai_router.config import Price, load_config
from ai_router.guard import Facts, Intent, plan, worst_case_micro
from ai_router.ledger import Snapshot
from ai_router.schema import CAPABILITIES, TIERS, RoutingDecision

CONFIG = load_config(Path(__file__).parents[1] / "models.toml")
ALL = frozenset(CONFIG.providers)
LOCAL_ONLY = frozenset(n for n, p in CONFIG.providers.items() if p.key_env is None)
PRICES = {ref: (Price(input=0, output=0) if m.is_local else Price(input=1.0, output=4.0))
          for ref, m in CONFIG.models.items()}


def snap(spent=0, reserved=0, limit=2_000_000, elapsed=0.5) -> Snapshot:
    return Snapshot("2026-11-26", limit, spent, reserved, elapsed)


def decide(capability="chat", tier="cheap", tokens=300) -> RoutingDecision:
    return RoutingDecision(capability=capability, output_tokens=tokens, tier=tier)


def run(decision=None, facts=None, intent=None, snapshot=None, available=ALL, prices=PRICES):
    return plan(decision or decide(), facts or Facts(input_tokens=500), intent or Intent(),
                snapshot or snap(), CONFIG, available, prices)


def tiers(p) -> list[str]:
    return [c.model.tier for c in p.candidates]


def test_manager_asking_strong_for_small_talk_is_capped_at_the_chain_top():
    p = run(decide("chat", "strong"))
    assert p.tier == "cheap" and "strong" not in tiers(p)
    assert any("never needs more" in o for o in p.overrides)


def test_coding_goes_strong_then_cheap_then_local():
    p = run(decide("coding", "strong"))
    order = tiers(p)
    assert order[0] == "strong" and order[-1] == "local"
    assert order == sorted(order, key=lambda t: -TIERS.index(t))


def test_prompt_injected_strong_tier_is_downgraded_when_money_runs_low():
    p = run(decide("coding", "strong"), snapshot=snap(spent=1_700_000))  # 15% left
    assert p.tier == "cheap" and "strong" not in tiers(p)
    assert any("budget left" in o for o in p.overrides)


def test_only_local_models_when_the_day_is_spent():
    p = run(decide("coding", "strong"), snapshot=snap(spent=2_000_000))
    assert p.offline and set(tiers(p)) == {"local"}
    assert all(c.reserve_micro == 0 for c in p.candidates)


def test_runaway_spending_early_in_the_day_stops_the_strong_tier():
    p = run(decide("reasoning", "strong"), snapshot=snap(spent=1_000_000, elapsed=0.2))
    assert p.tier == "cheap"
    assert any("of the day gone" in o for o in p.overrides)


def test_providers_without_keys_are_skipped():
    p = run(decide("coding", "strong"), available=LOCAL_ONLY)
    assert set(tiers(p)) == {"local"}
    assert any("no key" in o for o in p.overrides)


def test_tool_requests_only_go_to_models_with_tools():
    p = run(facts=Facts(input_tokens=500, has_tools=True))
    assert p.candidates
    for c in p.candidates:
        assert "tools" in c.model.features or (c.model.is_local and c.drop_tools)
    with_tools = [c for c in p.candidates if not c.drop_tools]
    assert p.candidates[:len(with_tools)] == with_tools  # plain-text answers come last


def test_required_tools_are_never_dropped():
    p = run(facts=Facts(input_tokens=500, has_tools=True, tools_required=True))
    assert p.candidates and all("tools" in c.model.features for c in p.candidates)
    assert not any(c.drop_tools for c in p.candidates)


def test_with_only_local_models_left_an_agent_request_is_answered_in_plain_text():
    # OpenClaw offers tools on every turn; the embedded model has none
    p = run(facts=Facts(input_tokens=500, has_tools=True), snapshot=snap(spent=2_000_000),
            available=frozenset({"embedded"}))
    assert [c.model.ref for c in p.candidates] == ["embedded/smollm2-135m-instruct"]
    assert p.candidates[0].drop_tools
    assert any("without tools" in o for o in p.overrides)


def test_images_with_no_vision_model_available_are_refused_clearly():
    p = run(facts=Facts(input_tokens=500, has_images=True), available=LOCAL_ONLY)
    assert p.candidates == [] and "vision" in (p.refusal or "")


def test_input_that_does_not_fit_a_window_skips_that_model():
    p = run(decide("chat", "cheap"), facts=Facts(input_tokens=150_000))
    assert p.candidates
    for c in p.candidates:
        assert c.model.context_window >= 150_000 + c.max_tokens


def test_paid_model_with_no_price_is_never_planned():
    prices = {**PRICES, "openai/gpt-5.4-mini": None}
    p = run(decide("chat", "cheap"), prices=prices)
    assert "openai/gpt-5.4-mini" not in [c.model.ref for c in p.candidates]
    assert any("no known price" in o for o in p.overrides)


def test_client_capability_overrides_the_manager_and_is_recorded():
    p = run(decide("chat", "cheap"), intent=Intent(virtual_model="coding"))
    assert p.capability == "coding"
    assert any("client asked" in o for o in p.overrides)


def test_pinned_model_comes_first_with_local_fallback():
    p = run(intent=Intent(virtual_model="", pinned="anthropic/claude-haiku-4-5"))
    assert p.candidates[0].model.ref == "anthropic/claude-haiku-4-5"
    assert {c.model.tier for c in p.candidates[1:]} == {"local"}


def test_output_cap_shrinks_to_fit_what_is_left_rather_than_failing():
    price = Price(input=1.0, output=10.0)
    prices = {ref: price if not m.is_local else Price(input=0, output=0)
              for ref, m in CONFIG.models.items()}
    p = run(decide("chat", "cheap", tokens=100), intent=Intent(max_output_tokens=10_000),
            snapshot=snap(spent=1_990_000), prices=prices)  # $0.01 left
    paid = [c for c in p.candidates if not c.model.is_local]
    assert paid and all(c.reserve_micro <= 10_000 for c in paid)
    assert all(256 <= c.max_tokens < 10_000 for c in paid)


def test_per_call_cost_ceiling_is_respected():
    p = run(decide("coding", "strong"), intent=Intent(max_cost_micro=1_000))
    assert all(c.reserve_micro <= 1_000 for c in p.candidates)


def test_worst_case_charges_every_input_token_at_the_dearest_input_price():
    price = Price(input=3.0, output=15.0, cache_read=0.3, cache_write=3.75)
    assert worst_case_micro(price, 1000, 100) == 3750 + 1500


@pytest.mark.parametrize("seed", range(5))
def test_whatever_the_manager_says_the_plan_is_affordable_and_capable(seed):
    rng = random.Random(seed)
    for _ in range(300):
        limit = rng.choice([0, 1, 10_000, 2_000_000])
        s = snap(spent=rng.randint(0, limit), reserved=0, limit=limit, elapsed=rng.random())
        facts = Facts(input_tokens=rng.choice([10, 5_000, 40_000, 300_000]),
                      has_tools=rng.random() < 0.3, has_images=rng.random() < 0.2,
                      wants_json=rng.random() < 0.2)
        intent = Intent(virtual_model=rng.choice(["auto", "cheap", "strong", "local", "fast"]),
                        max_cost_micro=rng.choice([None, 500, 50_000]))
        d = decide(rng.choice(CAPABILITIES), rng.choice(TIERS), rng.randint(1, 100_000))
        p = run(d, facts, intent, s, rng.choice([ALL, LOCAL_ONLY]))
        for c in p.candidates:
            assert c.reserve_micro <= s.remaining_micro
            if intent.max_cost_micro is not None:
                assert c.reserve_micro <= intent.max_cost_micro
            assert facts.input_tokens + c.max_tokens <= c.model.context_window
            assert c.max_tokens <= c.model.max_output
            assert not facts.has_tools or "tools" in c.model.features or (
                c.drop_tools and c.model.is_local and not facts.tools_required)
            assert not facts.has_images or "vision" in c.model.features
            if not c.model.is_local:
                assert c.reserve_micro >= worst_case_micro(PRICES[c.model.ref],
                                                           facts.input_tokens, c.max_tokens)


def test_a_conversation_stays_on_the_model_of_its_first_turn():
    first = run(decide("coding", "strong")).candidates[0].model.ref
    later = run(decide("chat", "cheap"), intent=Intent(sticky=first))
    assert later.candidates[0].model.ref == first


def test_a_sticky_model_is_left_when_the_budget_no_longer_allows_its_tier():
    first = run(decide("coding", "strong")).candidates[0].model
    assert first.tier == "strong"
    later = run(decide("coding", "strong"), intent=Intent(sticky=first.ref),
                snapshot=snap(spent=1_900_000))
    assert later.candidates[0].model.ref != first.ref
    assert any("mid-conversation" in o for o in later.overrides)


def test_a_sticky_model_is_left_when_the_context_outgrows_it():
    small = "deepseek/deepseek-chat"  # 128k window
    later = run(decide("chat", "cheap"), facts=Facts(input_tokens=150_000),
                intent=Intent(sticky=small))
    assert small not in [c.model.ref for c in later.candidates]
    assert any(f"left {small}" in o for o in later.overrides)


def test_a_prepaid_account_with_too_little_left_is_not_planned():
    first = run(decide("chat", "cheap")).candidates[0]
    p = plan(decide("chat", "cheap"), Facts(input_tokens=500), Intent(), snap(), CONFIG, ALL,
             PRICES, balances={first.model.provider: 100})  # less than the input alone
    assert first.model.ref not in [c.model.ref for c in p.candidates]
    p = plan(decide("chat", "cheap"), Facts(input_tokens=500), Intent(), snap(), CONFIG, ALL,
             PRICES, balances={first.model.provider: first.reserve_micro - 1})
    kept = [c for c in p.candidates if c.model.provider == first.model.provider]
    assert all(c.reserve_micro <= first.reserve_micro - 1 for c in kept)


def test_a_missing_tier_is_named_in_the_refusal():
    p = run(decide("chat", "local"), available=frozenset())
    assert p.candidates == [] and p.refusal and "no key" in p.refusal


def test_an_agent_turn_proposed_for_local_goes_up_to_a_tier_that_has_tools():
    # OpenClaw sends tools on every turn; "Say hello." may be proposed for the local tier
    p = run(decide("chat", "local"), facts=Facts(input_tokens=500, has_tools=True),
            available=frozenset({"embedded", "anthropic"}))
    assert p.candidates[0].model.ref == "anthropic/claude-haiku-4-5"
    assert not p.candidates[0].drop_tools and p.candidates[-1].drop_tools
    assert any("can fully serve" in o for o in p.overrides)


def test_an_image_proposed_for_local_goes_up_to_a_vision_model_if_the_budget_allows():
    p = run(decide("chat", "local"), facts=Facts(input_tokens=500, has_images=True))
    assert p.candidates and "vision" in p.candidates[0].model.features
    offline = run(decide("chat", "local"), facts=Facts(input_tokens=500, has_images=True),
                  snapshot=snap(spent=2_000_000))
    assert offline.candidates == []


def test_a_client_asking_for_local_is_never_escalated():
    p = run(decide("chat", "local"), facts=Facts(input_tokens=500, has_tools=True),
            intent=Intent(virtual_model="local"))
    assert {c.model.tier for c in p.candidates} == {"local"}
