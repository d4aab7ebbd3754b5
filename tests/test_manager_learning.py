"""The manager learns from outcomes: rated answers become examples, usage calibrates caps.

Requests go through the real router (loopback upstreams, a real SQLite ledger); the
feedback goes in the way `/good`, `/bad`, `/retry stronger` and POST /v1/feedback put it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import ai_router.evaluate  # noqa: F401 - registers `eval` on the app
from ai_router.guard import Facts, Intent
from ai_router.guard import plan as guard_plan
from ai_router.ledger import Snapshot
from ai_router.manager.learning import MIN_SAMPLES, calibrate, learn
from ai_router.schema import ChatRequest, RoutingDecision
from routing_setup import ANTHROPIC, DEEPSEEK, invoke_cli, make_router, standard_models
from upstreams import anthropic_wire as aw
from upstreams import openai_wire as oa

# made-up words: nothing in the seed bank is near them, so only a learned example is
ASKED = "Please frobnicate the zorblax quarterly widget ledger"
SIMILAR = "frobnicate this zorblax widget ledger again"
CAPABILITIES = ("chat", "knowledge", "writing", "coding", "math", "reasoning", "extraction")


@pytest.fixture
async def router(up, tmp_path, monkeypatch):
    up.reset()
    models = standard_models()
    models[ANTHROPIC] = {**models[ANTHROPIC], "tier": "strong"}
    router, _ = make_router(tmp_path, monkeypatch, up.urls, models=models,
                            chains={c: ["strong", "cheap", "local"] for c in CAPABILITIES})
    yield router
    await router.aclose()


def deepseek_answers(up, output_tokens: int = 300) -> None:
    up.deepseek.push(oa.json_reply(oa.completion_body(
        "done", usage=oa.usage_body(50, output_tokens))))


async def decision(router, text: str) -> RoutingDecision:
    return (await router.manager.decide(router_digest(router, text))).decision


def router_digest(router, text: str):
    from ai_router import tokens
    from ai_router.digest import make_digest

    request = ChatRequest.from_prompt(text)
    return make_digest(request, tokens.count_request(request).tokens,
                       router.config.routing.long_context_tokens)


async def test_a_good_answer_becomes_an_example_that_decides_a_similar_request(router, up):
    before = await decision(router, SIMILAR)
    assert before.capability != "math"
    deepseek_answers(up, output_tokens=777)
    routed = await router.ask(ChatRequest.from_prompt(ASKED), capability="math")
    assert routed.model.ref == DEEPSEEK

    assert router.ledger.set_feedback(routed.request_id, "good")
    learned = await router.manager.relearn()

    assert learned.learned == 1
    after = await decision(router, SIMILAR)
    assert (after.capability, after.tier) == ("math", "cheap")
    assert after.output_tokens == 777  # the real answer's length, not a guess


async def test_a_bad_rating_removes_what_an_earlier_good_one_taught(router, up):
    deepseek_answers(up)
    first = await router.ask(ChatRequest.from_prompt(ASKED), capability="math")
    router.ledger.set_feedback(first.request_id, "good")
    await router.manager.relearn()
    assert (await decision(router, SIMILAR)).capability == "math"

    deepseek_answers(up)
    again = await router.ask(ChatRequest.from_prompt(ASKED), capability="math")
    router.ledger.set_feedback(again.request_id, "bad")  # the same question, now rated bad
    learned = await router.manager.relearn()

    assert learned.learned == 0
    assert (await decision(router, SIMILAR)).capability != "math"


async def test_an_escalation_teaches_the_stronger_tier_that_was_needed(router, up):
    assert (await decision(router, SIMILAR)).tier != "strong"
    deepseek_answers(up)
    first = await router.ask(ChatRequest.from_prompt(ASKED), capability="math")
    assert first.model.tier == "cheap"
    up.anthropic.reply(aw.message([aw.text_block("better")], usage=aw.usage(50, 400)))
    # /retry stronger: the same question with the virtual model "strong", then the first
    # answer is marked escalated
    stronger = await router.ask(ChatRequest.from_prompt(ASKED, model="strong"))
    assert stronger.model.ref == ANTHROPIC
    router.ledger.set_feedback(first.request_id, "escalated")
    await router.manager.relearn()

    after = await decision(router, SIMILAR)
    assert after.tier == "strong"


async def test_feedback_reaches_the_manager_without_an_explicit_reload(router, up):
    deepseek_answers(up)
    routed = await router.ask(ChatRequest.from_prompt(ASKED), capability="math")
    router.ledger.set_feedback(routed.request_id, "good")

    # the next request notices the new rating and starts a reload beside itself
    await router.manager.decide(router_digest(router, "an unrelated question"))
    if router.manager._relearning:
        await router.manager._relearning
    assert (await decision(router, SIMILAR)).capability == "math"


def test_the_rules_for_bad_escalated_and_plain_outcomes():
    def row(prompt, tier, feedback=None, status="ok", capability="coding", tokens=200):
        return {"prompt": prompt, "capability": capability, "tier": tier, "status": status,
                "feedback": feedback, "output_tokens": tokens}

    examples = learn([
        row("plain success", "cheap"),  # no feedback: not an example
        row("a failure rated good", "cheap", "good", status="error"),
        row("bad then good higher", "cheap", "bad"),
        row("bad then good higher", "strong", "good"),
        row("good then bad", "cheap", "good"),
        row("good then bad", "cheap", "bad"),
        row("escalated, follow-up failed", "local", "escalated"),
        row("escalated, follow-up failed", "strong", status="error"),
        row("escalated, follow-up rated bad", "cheap", "escalated"),
        row("escalated, follow-up rated bad", "strong", "bad"),
        row("Escalated  then ok", "local", "escalated"),
        row("escalated then ok", "cheap"),
    ])
    assert sorted((e.prompt, e.tier) for e in examples) == [
        ("bad then good higher", "strong"), ("escalated then ok", "cheap")]


async def test_calibration_raises_caps_after_enough_answers_and_never_lowers_a_reservation(
        router, up):
    request = ChatRequest.from_prompt(ASKED)
    _, before, plan_before = await router.prepare(request, capability="math")
    first = plan_before.candidates[0]
    assert first.model.ref == DEEPSEEK
    estimate = before.decision.output_tokens
    for _ in range(MIN_SAMPLES):  # answers three times as long as estimated
        deepseek_answers(up, output_tokens=3 * estimate)
        await router.ask(request, capability="math")
    await router.manager.relearn()

    assert router.manager.calibration == {("math", DEEPSEEK): 3.0}
    _, _, plan_after = await router.prepare(request, capability="math")
    after = plan_after.candidates[0]
    assert after.expected_output_tokens == 3 * estimate
    assert after.max_tokens >= first.max_tokens and after.reserve_micro >= first.reserve_micro
    assert after.max_tokens == max(4 * 3 * estimate, router.config.routing.default_output_tokens)


def test_answers_shorter_than_estimated_lower_the_estimate_but_not_the_reservation():
    rows = [{"capability": "math", "model": DEEPSEEK, "output_tokens": 100,
             "estimate": 1000}] * MIN_SAMPLES
    calibration = calibrate(rows)
    assert calibration == {("math", DEEPSEEK): 0.25}  # 0.1, clamped
    assert calibrate(rows[:-1]) == {}  # too few answers to believe

    from ai_router.config import Price, load_config

    config = load_config(Path(__file__).parents[1] / "models.toml")
    prices = {ref: Price(input=1.0, output=4.0) for ref in config.models}
    decision = RoutingDecision(capability="math", output_tokens=1000, tier="cheap")
    args = (decision, Facts(input_tokens=500), Intent(),
            Snapshot("2026-11-26", 2_000_000, 0, 0, 0.5), config, frozenset(config.providers),
            prices)
    plain = guard_plan(*args)
    ref = plain.candidates[0].model.ref
    calibrated = guard_plan(*args, calibration={("math", ref): 0.25})
    assert calibrated.candidates[0].expected_output_tokens == 250
    assert [(c.max_tokens, c.reserve_micro) for c in calibrated.candidates] == [
        (c.max_tokens, c.reserve_micro) for c in plain.candidates]


def test_eval_learn_from_scores_without_and_with_what_the_replay_taught(tmp_path):
    def write(name, rows):
        path = tmp_path / name
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        return path

    # the manager calls these small talk at the local tier; the labels say strong
    train = write("train.jsonl", [
        {"prompt": "hey there! zorblax frobnicator checking in", "label_capability": "chat",
         "label_tier": "strong", "ref_output_tokens": 40},
        {"prompt": "hi there, quux blorvian says hey", "label_capability": "chat",
         "label_tier": "strong", "ref_output_tokens": 40},
        {"prompt": "Write a Python function that reverses a string",
         "label_capability": "math", "label_tier": "cheap"},  # wrong capability: bad
    ])
    test = write("test.jsonl", [
        {"prompt": "hello again, zorblax frobnicator", "label_capability": "chat",
         "label_tier": "strong"},
        {"prompt": "hey, quux blorvian is back", "label_capability": "chat",
         "label_tier": "strong"},
        {"prompt": "hi there, quux blorvian says hey", "label_capability": "chat",
         "label_tier": "strong"},  # also in TRAIN: never scored
    ])
    result = invoke_cli("eval", str(test), "--arms", "evidence", "--learn-from", str(train),
                        "--json", "--config", str(Path(__file__).parents[1] / "models.toml"))
    assert result.exit_code == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    learning = report["learning"]
    assert (learning["train"], learning["escalated"], learning["bad"]) == (3, 2, 1)
    assert learning["examples_learned"] == 2 and learning["not_scored_overlap"] == 1
    without = report["without_learning"]["evidence"]
    assert without["n"] == report["n"] == 2
    assert without["tier_agreement"] == 0.0 and report["tier_agreement"] == 1.0


def test_plain_outcomes_reload_at_most_every_few_seconds_and_keep_the_same_index(
        tmp_path, monkeypatch):
    from zoneinfo import ZoneInfo

    from ai_router.ledger import Ledger
    from ai_router.manager import learning
    from ai_router.manager.retrieval import Example

    now = [1000.0]
    monkeypatch.setattr(learning.time, "monotonic", lambda: now[0])
    ledger = Ledger(tmp_path / "ledger.db", ZoneInfo("UTC"))
    learner = learning.Learner(ledger, [Example("a seed question", "chat", "cheap", 50)])
    first = learner.load()

    def outcome(i: int) -> dict:
        return {"id": f"o{i}", "prompt": f"question {i}", "capability": "coding",
                "tier": "cheap", "status": "ok", "output_tokens": 80}

    for i in range(learning.RELOAD_EVERY_OUTCOMES):
        ledger.record_outcome(outcome(i))
    assert not learner.stale()  # enough new outcomes, but too soon after the last load
    now[0] += learning.RELOAD_GAP_S
    assert learner.stale()
    again = learner.load()
    assert again.bank is first.bank  # nothing new was learned: the index is not rebuilt

    assert ledger.set_feedback("o3", "good")
    assert learner.stale()  # a rating is looked at on the next request, however soon
    rated = learner.load()
    assert rated.bank is not first.bank and rated.learned == 1
    assert [e.prompt for e in rated.bank.examples] == ["a seed question", "question 3"]
    ledger.close()


def test_what_the_learner_and_sticky_routing_read_is_found_by_index_not_by_a_scan(tmp_path):
    from zoneinfo import ZoneInfo

    from ai_router.ledger import Ledger

    ledger = Ledger(tmp_path / "ledger.db", ZoneInfo("UTC"))
    traced: list[str] = []
    ledger.db.conn.set_trace_callback(traced.append)
    ledger.rated_outcomes(10)
    ledger.recent_usage(10)
    ledger.conversation_model("0123abcd")
    ledger.db.conn.set_trace_callback(None)
    assert len(traced) == 3
    for sql in traced:
        steps = [row[-1] for row in ledger.db.conn.execute("EXPLAIN QUERY PLAN " + sql)]
        assert any("USING INDEX" in step for step in steps), (sql, steps)
        # a full scan reads every outcome ever logged; a scan along an index stops at LIMIT
        assert not [s for s in steps if s.startswith("SCAN") and "INDEX" not in s], (sql, steps)
    ledger.close()
