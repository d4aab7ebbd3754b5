"""POST /v1/chat/completions is answered by ChatRoute, in front of FastAPI's routing;
under a root_path (a mounted app) the same request reaches it through FastAPI's route
instead. Both ways must answer alike: status, error body, headers, answer shape."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx
import pytest

from ai_router.server.app import create_app
from server_setup import make_router, ups_fixture  # noqa: F401 - fixture
from upstreams.openai_wire import completion_body, error_reply, json_reply, sse_reply, text_chunks

ASK = [{"role": "user", "content": "hello"}]
ROUTING = ("x-ai-router-request-id", "x-ai-router-model", "x-ai-router-tier",
           "x-ai-router-cost-usd", "x-ai-router-remaining-usd", "x-ai-router-decision")


@pytest.fixture(name="clients")
async def clients_fixture(ups, tmp_path, monkeypatch
                          ) -> AsyncIterator[dict[str, httpx.AsyncClient]]:
    ups.reset()
    router = make_router(ups, tmp_path / "ledger.db", monkeypatch, models=("oai/gpt-test",))
    app = create_app(router, warm_up=False)
    ways = {"ChatRoute": httpx.ASGITransport(app=app),
            "FastAPI": httpx.ASGITransport(app=app, root_path="/mounted")}
    bases = {"ChatRoute": "http://test", "FastAPI": "http://test/mounted"}
    out = {name: httpx.AsyncClient(transport=t, base_url=bases[name], timeout=20)
           for name, t in ways.items()}
    yield out
    for client in out.values():
        await client.aclose()
    await router.aclose()


async def both(clients, body: dict | str, **kw) -> dict[str, httpx.Response]:
    content = body if isinstance(body, str) else json.dumps(body)
    return {name: await c.post("/v1/chat/completions", content=content,
                               headers={"content-type": "application/json"}, **kw)
            for name, c in clients.items()}


async def test_an_answer_has_the_same_shape_and_headers_both_ways(clients, ups):
    ups.openai.handler = lambda r: (sse_reply(text_chunks("Hi ", "there")) if r.body.get("stream")
                                    else json_reply(completion_body("Hi there")))(r)
    for stream in (False, True):
        got = await both(clients, {"model": "oai/gpt-test", "messages": ASK, "stream": stream})
        for name, r in got.items():
            assert r.status_code == 200, (name, r.text)
            assert all(r.headers.get(h) for h in ROUTING), name
            if stream:
                assert r.headers["content-type"].startswith("text/event-stream")
                assert r.text.rstrip().endswith("data: [DONE]") and "Hi " in r.text
            else:
                body = r.json()
                assert (body["object"], body["model"]) == ("chat.completion", "oai/gpt-test")
                assert body["choices"][0]["message"]["content"] == "Hi there"
                assert r.headers["content-type"] == "application/json"


@pytest.mark.parametrize("body, status", [
    ('{"messages": [', 400),  # not JSON
    ('{"messages": []}', 400),
    ('{"model": "nope", "messages": [{"role": "user", "content": "x"}]}', 404),
])
async def test_bad_requests_get_the_same_error_both_ways(clients, body, status):
    got = await both(clients, body)
    assert {r.status_code for r in got.values()} == {status}
    assert got["ChatRoute"].json() == got["FastAPI"].json()
    assert set(got["ChatRoute"].json()["error"]) == {"message", "type", "param", "code"}


async def test_a_provider_outage_is_the_same_503_both_ways(clients, ups):
    ups.openai.handler = error_reply(503, "upstream overloaded")
    got = await both(clients, {"model": "oai/gpt-test", "messages": ASK})
    for name, r in got.items():
        assert r.status_code == 503, name
        assert int(r.headers["retry-after"]) >= 1
        assert r.json()["error"]["code"] == "provider_unavailable"
