"""fastjson: orjson where it can, the standard library for what orjson refuses, so the
server sends what it did with json alone."""

from __future__ import annotations

import json

import pytest

from ai_router import fastjson


@pytest.mark.parametrize("value", [
    {"model": "m", "messages": [{"role": "user", "content": "héllo ✓ 日本"}], "t": 0.7},
    {"tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}]},
])
def test_dumps_matches_compact_json(value: object) -> None:
    assert fastjson.dumps(value) == json.dumps(
        value, ensure_ascii=False, separators=(",", ":")).encode()


@pytest.mark.parametrize("value", [{"s": "\ud800"}, {"n": 10**30}, {"n": -(2**63) - 1}])
def test_dumps_falls_back_for_what_orjson_refuses(value: object) -> None:
    raw = fastjson.dumps(value)
    assert json.loads(raw) == value


def test_nan_is_written_as_null() -> None:
    assert fastjson.dumps({"t": json.loads("NaN")}) == b'{"t":null}'
