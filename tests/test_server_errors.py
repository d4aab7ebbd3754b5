"""Whatever a client sends, the server answers in OpenAI's error format with a status
that tells it whether retrying helps; never a 500 or a traceback."""

from __future__ import annotations

import logging

import httpx
import openai
import pytest

from server_setup import KEYS, served_fixture, start_server_fixture, ups_fixture  # noqa: F401
from upstreams.openai_wire import error_reply, sse_reply, text_chunks

ASK = [{"role": "user", "content": "hello"}]
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk"


def post(served, body: bytes | str, **kw) -> httpx.Response:
    return httpx.post(f"{served.url}/v1/chat/completions", content=body,
                      headers={"content-type": "application/json"}, timeout=20, **kw)


def assert_openai_error(response: httpx.Response, status: int, type: str = "invalid_request_error"):
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == type and error["message"]
    assert "Traceback" not in response.text
    return error


def test_invalid_json_is_a_400(served):
    assert_openai_error(post(served, '{"model": "auto", "messages": ['), 400)
    assert_openai_error(post(served, b"\xff\xfe not utf-8"), 400)
    assert_openai_error(post(served, "[1, 2]"), 400)


@pytest.mark.parametrize("body, param", [
    ('{"model": "auto"}', "messages"),
    ('{"messages": "hello"}', "messages"),
    ('{"messages": []}', "messages"),
    ('{"messages": [{"role": "robot", "content": "x"}]}', "messages.0.role"),
    ('{"messages": [{"role": "user", "content": 42}]}', "messages.0.content"),
    ('{"messages": [{"role": "user", "content": "x"}], "stream": "sometimes"}', "stream"),
    ('{"messages": [{"role": "user", "content": "x"}], "max_tokens": "lots"}', "max_tokens"),
])
def test_a_body_that_does_not_fit_the_schema_is_a_400_naming_the_field(served, body, param):
    assert assert_openai_error(post(served, body), 400)["param"] == param


@pytest.mark.parametrize("name", ["gpt-4o", "router-auto", "ai-router/nope"])
def test_unknown_model_is_a_404_listing_the_valid_names(served, name):
    with pytest.raises(openai.NotFoundError) as caught:
        served.client().chat.completions.create(model=name, messages=ASK)
    error = caught.value.body
    assert (error["code"], error["param"]) == ("model_not_found", "model")
    assert all(n in error["message"] for n in ("auto", "coding", "local", "oai/gpt-test"))


def test_oversized_body_is_a_413_before_anything_is_routed(start_server):
    served = start_server(max_body_bytes=20_000)
    big = [{"role": "user", "content": "x" * 30_000}]
    with pytest.raises(openai.APIStatusError) as caught:
        served.client().chat.completions.create(model="auto", messages=big)
    assert caught.value.status_code == 413
    assert caught.value.body["code"] == "request_too_large"

    def chunked():  # no content-length: the limit still holds
        yield b'{"messages": [{"role": "user", "content": "'
        for _ in range(30):
            yield b"y" * 1000
        yield b'"}]}'
    assert_openai_error(post(served, chunked()), 413)
    assert served.ups.openai.requests == []


def test_provider_outage_is_a_503_with_retry_after_streamed_or_not(start_server):
    served = start_server(models=("oai/gpt-test",))
    served.ups.openai.handler = error_reply(503, "upstream overloaded")
    for stream in (False, True, False):  # the third meets the provider cooling down
        with pytest.raises(openai.APIStatusError) as caught:
            served.client().chat.completions.create(model="oai/gpt-test", messages=ASK,
                                                    stream=stream)
        assert caught.value.status_code == 503
        assert int(caught.value.response.headers["retry-after"]) >= 1
        assert caught.value.body["type"] == "server_error"


def test_a_request_no_model_can_serve_is_a_400_with_the_reason(start_server):
    served = start_server(models=("oai/gpt-test", "olla/llama-test"), daily_usd=0)
    image = [{"role": "user", "content": [
        {"type": "text", "text": "what is this?"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}}]}]
    with pytest.raises(openai.BadRequestError) as caught:
        served.client().chat.completions.create(model="auto", messages=image)
    assert caught.value.body["code"] == "no_route"
    assert "vision" in caught.value.body["message"]


def test_a_stream_cut_mid_way_ends_with_an_sse_error_and_is_settled(served):
    served.ups.openai.push(sse_reply(text_chunks("one ", "two ", "three"), cut_after=2))
    raw = served.client().chat.completions.with_raw_response.create(
        model="oai/gpt-test", messages=ASK, stream=True)
    seen = []
    with pytest.raises(openai.APIError):
        for chunk in raw.parse():
            seen += [c.delta.content for c in chunk.choices]
    assert "one " in seen
    request_id = raw.headers["x-ai-router-request-id"]
    assert served.outcome(request_id)["status"] == "error"
    (call,) = served.calls(request_id)
    assert call["status"] == "settled" and call["cost_micro"] == call["reserved_micro"]


def test_unknown_paths_and_methods_answer_in_openai_shape(served):
    assert_openai_error(httpx.get(f"{served.url}/v1/nothing-here"), 404)
    assert_openai_error(httpx.get(f"{served.url}/v1/chat/completions"), 405)


def test_a_genuine_bug_is_a_clean_500_logged_without_secrets(served, caplog):
    async def broken(*_args, **_kwargs):
        raise RuntimeError(f"bug while holding {KEYS['OPENAI_API_KEY']}")
    served.router.ask = broken
    with caplog.at_level(logging.ERROR, logger="ai_router.server"):
        response = post(served, '{"messages": [{"role": "user", "content": "hi"}]}')
    error = assert_openai_error(response, 500, "server_error")
    assert "RuntimeError" in error["message"] and KEYS["OPENAI_API_KEY"] not in response.text
    assert "bug while holding ***" in caplog.text
    assert KEYS["OPENAI_API_KEY"] not in caplog.text


def nested(levels: int) -> str:
    return "[" * levels + "]" * levels


def test_json_nested_past_the_limit_is_a_400_at_any_depth(served):
    from ai_router.server.security import MAX_JSON_DEPTH, too_deep

    assert not too_deep([[[]]], limit=3) and too_deep([[[[]]]], limit=3)
    assert not too_deep({"a": [{"b": {}}], "c": "leaf"}, limit=4)
    assert too_deep({"a": [{"b": {"d": []}}]}, limit=4)
    at_limit = '{"messages": [{"role": "user", "content": "x", "deep": %s}]}'
    assert post(served, at_limit % nested(MAX_JSON_DEPTH - 3)).status_code != 400
    for levels in (MAX_JSON_DEPTH - 2, 5000):  # past it: ours, then Python's own parser
        error = assert_openai_error(post(served, at_limit % nested(levels)), 400)
        assert "nest" in error["message"]
