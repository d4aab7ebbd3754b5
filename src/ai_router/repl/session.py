"""What one chat remembers: the conversation, a pinned model, the last question and answer."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..schema import ChatRequest


@dataclass
class Session:
    messages: list[dict[str, Any]] = field(default_factory=list)
    pinned: str | None = None  # a virtual or concrete model set by /use or --model
    last_question: str | None = None  # what /retry asks again
    last_outcome_id: str | None = None  # what /good and /bad rate
    answered: bool = False  # the last question's answer is in `messages` (/retry replaces it)

    def request(self, question: str, model: str | None = None) -> ChatRequest:
        """The whole conversation so far plus the new question (the router's sticky
        routing keys a conversation on its first turns, so it stays on one model)."""
        return ChatRequest(model=model or self.pinned or "auto",
                           messages=[*self.messages, {"role": "user", "content": question}])

    def asked(self, question: str, outcome_id: str | None, answer: str | None) -> None:
        """Remember a question; its answer joins the conversation only when complete."""
        self.last_question, self.last_outcome_id = question, outcome_id
        self.answered = answer is not None
        if answer is not None:
            self.messages += [{"role": "user", "content": question},
                              {"role": "assistant", "content": answer}]

    def forget_last_answer(self) -> None:
        """Before /retry: the question is asked again, so its first answer leaves the context."""
        if self.answered:
            del self.messages[-2:]
            self.answered = False

    def new(self) -> None:
        self.messages.clear()
        self.last_question = self.last_outcome_id = None
        self.answered = False
