"""The deterministic fallback decision: keyword and feature heuristics."""

from __future__ import annotations

import pytest

from ai_router.digest import make_digest
from ai_router.manager.fallback import (
    MAX_OUTPUT_TOKENS,
    classify,
    explicit_capability,
    fallback_decision,
)
from ai_router.schema import ChatRequest

EXAMPLES = {
    "coding": [
        "Write a Python function that reverses a linked list",
        "```js\nconsole.log(x)\n```\nwhy does this print undefined?",
        "Debug this traceback: KeyError: 'id'",
        "Refactor my SQL query to use a join",
        "Write a bash script that renames all .txt files",
    ],
    "math": [
        "Solve 3x + 7 = 22",
        "What is the integral of \\frac{1}{x}?",
        "A train travels 120 km in 1.5 hours. How many km does it go in 4 hours?",
        "Calculate 17% of 2350",
        "What is 12 * 34?",
    ],
    "extraction": [
        "Summarize this article in three bullet points: ...",
        "Extract all email addresses from the text below",
        "Translate 'where is the station' into German",
        "Convert this list of names and ages to JSON",
        "tl;dr of the meeting notes please",
        "Count how often the word 'river' appears in the paragraph below:\n...",
        "Categorize these expenses:\n- Uber $38\n- rent $1,200\n- cinema 2 x $12",
    ],
    "writing": [
        "Write a poem about the sea",
        "Draft an email to my landlord about the broken heater",
        "Compose a short story about a lost robot",
        "Rephrase this paragraph to sound friendlier",
        "Write a toast for my brother's wedding",
        "Edit the following paragraph to fix its grammar: ...",
        "Write a pep talk for my team, we're down 2-0 at halftime",  # a score, not math
    ],
    "reasoning": [  # MT-Bench's sense: puzzles, logic, counterfactuals, decisions
        "Plan a three-day trip to Kyoto",
        "Think through this step by step: should I change jobs?",
        "Here is a riddle: what has keys but can't open locks?",
        "What if the Moon had never formed?",
        "Which word does not belong: apple, pear, carrot, plum",
        "riddle: the more of me you take, the more you leave behind. 3 guesses?",
        "Which is the odd one out: 4, 9, 16, 20, 25?",
    ],
    "knowledge": [
        "What is the capital of Australia?",
        "Who painted the Mona Lisa?",
        "When did the Berlin Wall fall?",
        "Which planet has the most moons?",
        "Is a tomato a fruit?",
        "Why did the Roman Empire fall?",  # explaining a subject is knowledge
        "Explain how vaccines train the immune system",
        "Compare renting and buying a home: pros and cons",
        "The enzyme that unwinds DNA during replication is\nA. ligase\nB. helicase\n"
        "C. primase\nD. polymerase\nAnswer:",
    ],
    "chat": [
        "hi!",
        "Hello, how are you?",
        "thanks, that's all for today",
        "I had a long day",
        "good morning",
        "Pretend you are a pirate captain and greet your crew",
    ],
}


@pytest.mark.parametrize(("capability", "text"),
                         [(cap, text) for cap, texts in EXAMPLES.items() for text in texts])
def test_keywords_point_to_the_expected_capability(capability, text):
    assert classify(text) == capability


def digest_for(text: str, **kw):
    return make_digest(ChatRequest.from_prompt(text, **kw), input_tokens=50)


@pytest.mark.parametrize(("text", "tier"), [
    ("Write a Python function to parse dates", "strong"),
    ("Solve 2x + 1 = 9", "cheap"),
    ("Two guards, one always lies: which door do you ask about?", "strong"),
    ("Why is the sky blue?", "cheap"),
    ("Write a poem about cats", "cheap"),
    ("Who wrote Hamlet?", "cheap"),
    ("Summarize this: ...", "cheap"),
    ("hey", "cheap"),
])
def test_tier_follows_the_capability(text, tier):
    decision = fallback_decision(digest_for(text))
    assert decision.tier == tier
    assert decision.reason.startswith("heuristic")


def test_a_request_for_brevity_shrinks_the_output_estimate():
    brief = fallback_decision(digest_for("Explain quantum tunnelling in one sentence"))
    full = fallback_decision(digest_for("Explain quantum tunnelling"))
    detailed = fallback_decision(digest_for("Explain quantum tunnelling in a detailed report"))
    assert brief.output_tokens < full.output_tokens < detailed.output_tokens


def test_output_estimate_never_exceeds_the_clients_max_tokens():
    decision = fallback_decision(digest_for("Write a complete essay on trade", max_tokens=200))
    assert decision.output_tokens == 200


def test_translating_a_long_text_expects_a_long_answer():
    text = "Translate into French: " + "The weather is lovely today. " * 400
    decision = fallback_decision(digest_for(text))
    assert decision.capability == "extraction"
    assert decision.output_tokens >= len(text) // 4 - 1
    assert decision.output_tokens <= MAX_OUTPUT_TOKENS


def test_a_virtual_model_naming_a_capability_is_taken_at_its_word():
    decision = fallback_decision(digest_for("hello there", model="coding"))
    assert decision.capability == "coding" and decision.tier == "strong"


def test_fallback_is_deterministic():
    digest = digest_for("Plan my week step by step")
    assert fallback_decision(digest) == fallback_decision(digest)


@pytest.mark.parametrize(("text", "explicit"), [
    ("Here's a riddle about numbers: what 3-digit number...", "reasoning"),
    ('Translate into French: "The museum opens at nine and closes at six on weekdays."',
     "extraction"),
    ("Translate this Python function to Go", None),  # code first
    ("Summarize the history of Rome", None),  # no supplied text: a subject question
    ("Pretend you are a ship's cat and describe your day", "chat"),
    ("What is 12 * 7?", None),
])
def test_only_a_task_named_outright_is_explicit(text, explicit):
    assert explicit_capability(text) == explicit
