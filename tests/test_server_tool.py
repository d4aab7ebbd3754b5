"""`POST /v1/route_and_ask` and `POST /v1/feedback` on the running server, over httpx:
the delegated answer with its model and money, local answers when the budget says no,
feedback on the ledger, and the same auth, body limit and error format as the rest."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

import upstreams.ollama_wire as o
from ai_router.ledger import usd
from server_setup import (  # noqa: F401 - fixtures
    PRICE,
    Served,
    start_server_fixture,
    ups_fixture,
)
from upstreams.openai_wire import completion_body, error_reply, json_reply, usage_body

PAID_AND_LOCAL = ("oai/gpt-test", "olla/llama-test")  # cheap and local: routing is certain
SERVER_KEY = "ar-test-TOOL-KEY-never-echoed-77"


def ask(served: Served, body: Any, *, key: str | None = None, path: str = "/v1/route_and_ask"
        ) -> httpx.Response:
    headers = {"authorization": f"Bearer {key}"} if key else {}
    content = body if isinstance(body, str | bytes) else json.dumps(body)
    return httpx.post(f"{served.url}{path}", content=content, timeout=20,
                      headers={"content-type": "application/json", **headers})


def assert_openai_error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["message"]
    assert "Traceback" not in response.text
    return error


def spend_the_whole_day(served: Served) -> None:
    ledger, limit = served.router.ledger, served.router.limit_micro
    hold = ledger.reserve(limit, limit, provider="oai", model="oai/gpt-test",
                          request_id="earlier-today")
    ledger.settle(hold, limit, None)


def test_a_question_is_answered_by_the_paid_model_with_its_cost_and_the_budget_left(
        start_server):
    served = start_server(models=PAID_AND_LOCAL, daily_usd=1.0)
    served.ups.openai.push(json_reply(completion_body("Use a dict comprehension.",
                                                      usage=usage_body(1000, 500))))

    r = ask(served, {"prompt": "How do I invert a mapping?", "capability": "coding",
                     "context": "The codebase is Python 3.11."})

    assert r.status_code == 200, r.text
    answer = r.json()
    cost = usd(1000 * int(PRICE["input"]) + 500 * int(PRICE["output"]))  # micro-USD by hand
    assert answer == {"answer": "Use a dict comprehension.", "provider": "oai",
                      "model": "oai/gpt-test", "tier": "cheap", "cost_usd": cost,
                      "remaining_usd": pytest.approx(1.0 - cost), "offline": False,
                      "note": None, "request_id": answer["request_id"]}
    [sent] = served.ups.openai.requests
    assert sent.body["messages"][0] == {"role": "system", "content":
                                        "Use this context to answer:\nThe codebase is Python 3.11."}
    assert sent.body["messages"][-1] == {"role": "user", "content": "How do I invert a mapping?"}
    outcome = served.outcome(answer["request_id"])
    assert (outcome["source"], outcome["capability"], outcome["model"]) == (
        "tool", "coding", "oai/gpt-test")
    assert outcome["cost_micro"] == 1000 * 1 + 500 * 2


def test_with_the_days_money_spent_a_local_model_answers_and_the_answer_says_so(start_server):
    served = start_server(models=PAID_AND_LOCAL, daily_usd=0.01)
    spend_the_whole_day(served)
    served.ups.ollama.push(o.json_reply(o.chat_body("A local answer.")))

    r = ask(served, {"prompt": "What is a monad?", "capability": "reasoning"})

    assert r.status_code == 200, r.text
    answer = r.json()
    assert (answer["answer"], answer["model"], answer["tier"]) == (
        "A local answer.", "olla/llama-test", "local")
    assert (answer["offline"], answer["cost_usd"], answer["remaining_usd"]) == (True, 0, 0)
    assert "budget allows no paid model" in answer["note"]
    assert served.ups.openai.requests == []


def test_feedback_is_recorded_on_the_answer_it_names(start_server):
    served = start_server(models=PAID_AND_LOCAL)
    served.ups.openai.push(json_reply(completion_body("42", usage=usage_body(10, 1))))
    request_id = ask(served, {"prompt": "What is six times seven?",
                              "capability": "chat"}).json()["request_id"]
    assert served.outcome(request_id)["feedback"] is None

    r = ask(served, {"request_id": request_id, "feedback": "bad"}, path="/v1/feedback")

    assert r.status_code == 200, r.text
    assert r.json() == {"request_id": request_id, "feedback": "bad"}
    assert served.outcome(request_id)["feedback"] == "bad"
    assert ask(served, {"request_id": request_id, "feedback": "good"},
               path="/v1/feedback").status_code == 200
    assert served.outcome(request_id)["feedback"] == "good"


def test_feedback_for_an_unknown_request_is_a_404_and_a_bad_verdict_a_400(start_server):
    served = start_server(models=PAID_AND_LOCAL)
    error = assert_openai_error(
        ask(served, {"request_id": "no-such-id", "feedback": "good"}, path="/v1/feedback"), 404)
    assert (error["param"], error["code"]) == ("request_id", "request_not_found")
    error = assert_openai_error(
        ask(served, {"request_id": "x", "feedback": "meh"}, path="/v1/feedback"), 400)
    assert error["param"] == "feedback"


@pytest.mark.parametrize("body, param", [
    ('{"prompt": "hi"', None),
    ("[1, 2]", None),
    ("{}", "prompt"),
    ('{"prompt": ""}', "prompt"),
    ('{"prompt": "hi", "capability": "poetry"}', "capability"),
    ('{"prompt": "hi", "max_cost_usd": -1}', "max_cost_usd"),
    ('{"prompt": 7}', "prompt"),
])
def test_a_question_that_does_not_fit_the_schema_is_a_400_naming_the_field(
        start_server, body, param):
    served = start_server(models=PAID_AND_LOCAL)
    assert assert_openai_error(ask(served, body), 400)["param"] == param
    assert served.ups.openai.requests == []


def test_a_failing_provider_is_an_openai_style_error_that_says_whether_to_retry(start_server):
    served = start_server(models=("oai/gpt-test",))
    served.ups.openai.push(error_reply(503, "overloaded"))

    r = ask(served, {"prompt": "Explain TCP slow start.", "capability": "chat"})

    error = assert_openai_error(r, 503)
    assert error["code"] == "provider_unavailable" and int(r.headers["retry-after"]) >= 1


def test_with_a_server_key_both_endpoints_need_the_bearer_token_and_never_echo_it(
        start_server):
    served = start_server(models=PAID_AND_LOCAL, api_key=SERVER_KEY)
    for path, body in (("/v1/route_and_ask", {"prompt": "hi"}),
                       ("/v1/feedback", {"request_id": "x", "feedback": "good"})):
        for key in (None, "ar-wrong-key"):
            r = ask(served, body, key=key, path=path)
            assert assert_openai_error(r, 401)["code"] == "invalid_api_key"
            assert SERVER_KEY not in r.text
    served.ups.openai.push(json_reply(completion_body("Lima.", usage=usage_body(5, 1))))
    r = ask(served, {"prompt": "What is the capital of Peru?"}, key=SERVER_KEY)
    assert r.status_code == 200 and r.json()["answer"] == "Lima."
    assert len(served.ups.openai.requests) == 1  # the refused ones never reached a provider


def test_a_question_past_the_body_limit_is_a_413(start_server):
    served = start_server(models=PAID_AND_LOCAL, max_body_bytes=1024)
    error = assert_openai_error(ask(served, {"prompt": "x" * 2000}), 413)
    assert error["code"] == "request_too_large"
    assert served.ups.openai.requests == []
