"""What a model costs, in integer micro-USD, rounded so it never undercounts.

Prices come from genai-prices' bundled data (offline), a `price` table in models.toml
overrides it, local models cost nothing, and a paid model with no known price raises
`Unpriced` instead of being treated as free.

We read genai-prices' per-million-token prices and do the arithmetic ourselves: its own
`calc_price` silently prices an unknown usage field at $0, and it counts cache tokens
inside `input_tokens` while reasoning tokens are inside output, as our `Usage` does.
"""

from __future__ import annotations

import functools
import math
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import genai_prices
from genai_prices.types import TieredPrices, TimeOfDateConstraint

from .config import ModelConfig, Price, ProviderConfig
from .errors import Unpriced
from .schema import Usage

FREE = Price(input=0, output=0, cache_read=0, cache_write=0)
_FIELDS = {"input": ("input_mtok",), "output": ("output_mtok",),
           "cache_read": ("cache_read_mtok",),
           # Usage does not say which cache lifetime was written: take the dearer one
           "cache_write": ("cache_write_mtok", "cache_write_1h_mtok")}


@functools.cache
def _model_prices(model_ref: str, provider_id: str) -> tuple[Any, ...]:
    """genai-prices' ModelPrice sets that may apply now: the current one, plus every
    time-of-day variant (DeepSeek's peak/off-peak), since we cannot know the call's hour."""
    try:
        info = genai_prices.calc_price(genai_prices.Usage(input_tokens=1, output_tokens=1),
                                       model_ref, provider_id=provider_id).model
    except LookupError:
        return ()
    if not isinstance(info.prices, list):
        return (info.prices,)
    now, chosen = datetime.now(tz=UTC), []
    for conditional in reversed(info.prices):  # later entries take precedence
        chosen.append(conditional.prices)
        if not isinstance(conditional.constraint, TimeOfDateConstraint) and (
                conditional.constraint is None or conditional.constraint.active(now)):
            break
    return tuple(chosen)


def _value(price: Decimal | TieredPrices | None, input_tokens: int) -> Decimal | None:
    """The price that applies when a request has `input_tokens` (tiers switch above start)."""
    if not isinstance(price, TieredPrices):
        return price
    return next((t.price for t in reversed(price.tiers) if input_tokens > t.start), price.base)


def _price_at(sets: tuple[Any, ...], input_tokens: int) -> Price | None:
    fields: dict[str, float | None] = {}
    for name, keys in _FIELDS.items():
        values = [v for s in sets for k in keys
                  if (v := _value(getattr(s, k, None), input_tokens)) is not None]
        fields[name] = float(max(values)) if values else None
    if fields["input"] is None or fields["output"] is None:
        return None
    if fields["input"] == 0 and fields["output"] == 0:
        return None  # a $0 entry for a paid model is a data gap, not a gift
    return Price(**fields)  # type: ignore[arg-type]


def _paid_price(ref: str, name: str, provider_id: str | None, input_tokens: int) -> Price:
    sets = _model_prices(name, provider_id) if provider_id else ()
    price = _price_at(sets, input_tokens) if sets else None
    if price is None:
        raise Unpriced(ref)
    return price


def _price(model: ModelConfig, provider: ProviderConfig, input_tokens: int) -> Price:
    """The price for a request of `input_tokens` (tiered prices depend on it)."""
    if model.is_local:
        return FREE
    if model.price is not None:
        return model.price
    return _paid_price(model.ref, model.price_ref or model.name, provider.price_provider,
                       input_tokens)


@functools.cache
def _worst_paid_price(ref: str, name: str, provider_id: str | None, window: int) -> Price:
    return _paid_price(ref, name, provider_id, window)


def price_for(model: ModelConfig, provider: ProviderConfig) -> Price:
    """USD per million tokens, at the highest tier this model's context window can reach."""
    if model.is_local or model.price is not None:
        return _price(model, provider, 0)
    return _worst_paid_price(model.ref, model.price_ref or model.name, provider.price_provider,
                             model.context_window)


def _micro(tokens: int, usd_per_mtok: float | None) -> Decimal:
    # USD per million tokens × tokens = micro-USD; repr() keeps 0.1 as exactly 0.1
    return tokens * Decimal(repr(usd_per_mtok or 0.0))


def cost_micro(model: ModelConfig, provider: ProviderConfig, usage: Usage) -> int:
    """The actual cost of a finished call in micro-USD, rounded up."""
    p = _price(model, provider, usage.input_tokens)
    cached = usage.cache_read_tokens + usage.cache_write_tokens
    uncached = max(0, usage.input_tokens - cached)
    # output_tokens already includes reasoning; max() only guards an adapter that forgot
    output = max(usage.output_tokens, usage.reasoning_tokens)
    read = p.cache_read if p.cache_read is not None else p.input
    write = p.cache_write if p.cache_write is not None else p.input
    total = (_micro(uncached, p.input) + _micro(usage.cache_read_tokens, read)
             + _micro(usage.cache_write_tokens, write) + _micro(output, p.output))
    return math.ceil(total)


def worst_case_micro(model: ModelConfig, provider: ProviderConfig, input_tokens: int,
                     max_output_tokens: int) -> int:
    """The reservation: every input token at the dearest input rate (a cache write costs
    more than a plain read), every allowed output token at the output rate, rounded up."""
    p = _price(model, provider, input_tokens)
    per_input = max(p.input, p.cache_write or 0.0, p.cache_read or 0.0)
    return math.ceil(_micro(input_tokens, per_input) + _micro(max_output_tokens, p.output))
