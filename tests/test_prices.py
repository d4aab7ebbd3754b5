"""Prices in micro-USD: genai-prices data, models.toml overrides, local = 0, never free."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from ai_router.config import Config, ModelConfig, Price, load_config
from ai_router.errors import Unpriced
from ai_router.prices import cost_micro, price_for, worst_case_micro
from ai_router.schema import Usage

MODELS_TOML = Path(__file__).parents[1] / "models.toml"


@pytest.fixture(scope="module")
def config() -> Config:
    return load_config(MODELS_TOML)


def _pair(config: Config, ref: str):
    model = config.models[ref]
    return model, config.providers[model.provider]


@pytest.mark.parametrize(("ref", "expected"), [
    ("openai/gpt-5.4-mini", Price(input=0.75, output=4.5, cache_read=0.075)),
    ("anthropic/claude-haiku-4-5", Price(input=1, output=5, cache_read=0.1, cache_write=2)),
    ("google/gemini-2.5-flash", Price(input=0.3, output=2.5, cache_read=0.03)),
    ("moonshot/kimi-k2.5", Price(input=0.6, output=3, cache_read=0.1)),
])
def test_models_from_models_toml_get_their_genai_prices_list_price(config, ref, expected):
    # Claude's cache_write is the 1-hour rate: Usage does not say which lifetime was written.
    assert price_for(*_pair(config, ref)) == expected


def test_time_of_day_prices_take_the_dearer_period(config):
    # DeepSeek is cheaper off-peak; we cannot know the hour the call will land in.
    assert price_for(*_pair(config, "deepseek/deepseek-chat")) == Price(
        input=0.27, output=1.1, cache_read=0.07)


def test_a_tiered_price_uses_the_top_tier_for_the_worst_case_and_the_base_for_small_calls(
        config):
    model, provider = _pair(config, "openai/gpt-5.5")
    assert price_for(model, provider).input == 10  # above its long-context threshold
    assert cost_micro(model, provider, Usage(input_tokens=1_000, output_tokens=100)) == (
        1_000 * 5 + 100 * 30)


def test_a_price_override_in_models_toml_wins(config):
    model, provider = _pair(config, "qwen/qwen-plus")
    assert price_for(model, provider) == Price(input=0.40, output=1.20, cache_read=0.08)
    haiku, anthropic = _pair(config, "anthropic/claude-haiku-4-5")
    cheap = haiku.model_copy(update={"price": Price(input=0.5, output=1)})
    assert price_for(cheap, anthropic) == Price(input=0.5, output=1)
    assert cost_micro(cheap, anthropic, Usage(input_tokens=1_000, output_tokens=1_000)) == 1_500


@pytest.mark.parametrize("ref", ["ollama/qwen2.5:3b", "lmstudio/qwen2.5-7b-instruct",
                                 "embedded/smollm2-135m-instruct"])
def test_local_models_cost_nothing(config, ref):
    model, provider = _pair(config, ref)
    assert price_for(model, provider).input == price_for(model, provider).output == 0
    assert cost_micro(model, provider, Usage(input_tokens=50_000, output_tokens=9_000)) == 0
    assert worst_case_micro(model, provider, 50_000, 9_000) == 0


def test_an_unknown_paid_model_is_refused_rather_than_costed_at_zero(config):
    # Regression: a model genai-prices does not know must never cost $0.
    _, openai = _pair(config, "openai/gpt-5.4-mini")
    unknown = ModelConfig(ref="openai/gpt-9-imaginary", provider="openai", name="gpt-9-imaginary",
                          tier="cheap", context_window=100_000, max_output=4_000)
    with pytest.raises(Unpriced) as raised:
        price_for(unknown, openai)
    assert raised.value.model_ref == "openai/gpt-9-imaginary"
    with pytest.raises(Unpriced):
        cost_micro(unknown, openai, Usage(input_tokens=10, output_tokens=10))
    with pytest.raises(Unpriced):
        worst_case_micro(unknown, openai, 10, 10)


def test_a_paid_model_on_a_provider_without_price_data_needs_an_override(config):
    model, provider = _pair(config, "qwen/qwen-plus")
    assert provider.price_provider is None
    with pytest.raises(Unpriced):
        price_for(model.model_copy(update={"price": None}), provider)


def test_price_ref_names_the_model_in_genai_prices_when_the_ids_differ(config):
    _, anthropic = _pair(config, "anthropic/claude-haiku-4-5")
    aliased = ModelConfig(ref="anthropic/my-haiku", provider="anthropic", name="my-haiku",
                          price_ref="claude-haiku-4-5", tier="cheap", context_window=200_000,
                          max_output=64_000)
    assert price_for(aliased, anthropic).input == 1


def test_anthropic_cache_reads_and_writes_are_not_counted_twice(config):
    model, provider = _pair(config, "anthropic/claude-haiku-4-5")
    # input_tokens includes the cached parts: 1,000 fresh + 6,000 read + 3,000 written
    usage = Usage(input_tokens=10_000, cache_read_tokens=6_000, cache_write_tokens=3_000,
                  output_tokens=500)
    by_hand = 1_000 * 1.0 + 6_000 * 0.1 + 3_000 * 2.0 + 500 * 5.0  # micro-USD
    assert cost_micro(model, provider, usage) == by_hand == 10_100


def test_cache_prices_fall_back_to_the_input_price_when_unknown(config):
    model, provider = _pair(config, "openai/gpt-5.4-mini")  # no cache_write price
    usage = Usage(input_tokens=2_000, cache_write_tokens=2_000)
    assert cost_micro(model, provider, usage) == 2_000 * 0.75


def test_reasoning_tokens_are_billed_once_as_part_of_the_output(config):
    model, provider = _pair(config, "deepseek/deepseek-reasoner")
    usage = Usage(input_tokens=1_000, output_tokens=3_000, reasoning_tokens=2_500)
    # 1,000 input × $0.55 + 3,000 output × $2.19 per million tokens
    assert cost_micro(model, provider, usage) == 550 + 6_570


def test_costs_are_rounded_up_to_the_next_micro_dollar(config):
    model, provider = _pair(config, "google/gemini-2.5-flash")
    assert cost_micro(model, provider, Usage(input_tokens=1)) == 1  # 0.3 micro-USD
    assert cost_micro(model, provider, Usage(input_tokens=10)) == 3  # exactly 3, not 4
    assert worst_case_micro(model, provider, 1, 1) == 3  # 0.3 + 2.5


def test_the_reservation_prices_every_input_token_as_a_cache_write(config):
    model, provider = _pair(config, "anthropic/claude-sonnet-4-6")
    assert worst_case_micro(model, provider, 10_000, 1_000) == 10_000 * 6 + 1_000 * 15


def test_the_worst_case_covers_any_usage_within_its_bounds(config):
    rnd = random.Random(11)
    paid = [ref for ref, m in config.models.items() if not m.is_local]
    for _ in range(2_000):
        model, provider = _pair(config, rnd.choice(paid))
        reserved_in = rnd.randint(0, model.context_window)
        reserved_out = rnd.randint(0, model.max_output)
        used_in = rnd.randint(0, reserved_in)
        read = rnd.randint(0, used_in)
        written = rnd.randint(0, used_in - read)
        out = rnd.randint(0, reserved_out)
        usage = Usage(input_tokens=used_in, cache_read_tokens=read, cache_write_tokens=written,
                      output_tokens=out, reasoning_tokens=rnd.randint(0, out))
        actual = cost_micro(model, provider, usage)
        assert 0 <= actual <= worst_case_micro(model, provider, reserved_in, reserved_out)
        if used_in + out:
            assert actual > 0, model.ref  # a paid model never comes out free
