"""The manager's prompt: editable templates in `prompts/`, found like models.toml is.

The system prompt is the same for every request, so llama.cpp's prompt cache reuses it;
only the short user message (the digest's facts and text) changes.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from string import Template
from typing import Any

from ..config import PACKAGE_DIR, user_config_dir
from ..digest import Digest
from ..errors import ConfigError
from ..schema import Capability
from .retrieval import Neighbour

SYSTEM_FILE = "manager.md"
EXAMPLE_CHARS = 160  # a neighbour's start says what it asks; its whole text costs latency
# the few-shot answers name the task in the words the system prompt's examples use
EXAMPLE_REASONS: dict[Capability, str] = {
    "chat": "small talk", "knowledge": "fact question", "writing": "writing task",
    "coding": "code task", "math": "math problem", "reasoning": "needs reasoning",
    "extraction": "transform text"}
REQUEST_FILE = "manager_request.md"


def prompt_dirs() -> list[Path]:
    """AI_ROUTER_PROMPTS, the user's config dir, the packaged defaults, then the repo root."""
    env = os.environ.get("AI_ROUTER_PROMPTS")
    dirs = [Path(env)] if env else []
    return [*dirs, user_config_dir() / "prompts", PACKAGE_DIR / "defaults" / "prompts",
            PACKAGE_DIR.parents[1] / "prompts"]


def find_prompt(name: str) -> Path:
    for folder in prompt_dirs():
        if (folder / name).is_file():
            return folder / name
    raise ConfigError(f"prompt {name!r} not found in {', '.join(map(str, prompt_dirs()))}: "
                      "set AI_ROUTER_PROMPTS or run from the project folder")


def _yes_no(flag: bool) -> str:
    return "yes" if flag else "no"


def facts_line(digest: Digest) -> str:
    """The measured facts, naming only what is notable: a tiny model reads a long list of
    "no"s as noise (3 of 14 test prompts classified right, against 8 with this line)."""
    notable = [f"{digest.input_tokens} input tokens"]
    notable += [name for name, flag in (
        ("uses tools", digest.has_tools), ("has images", digest.has_images),
        ("wants JSON", digest.wants_json), ("long context", digest.long_context),
        ("inside an agent tool loop", digest.in_tool_loop)) if flag]
    if digest.turns > 1:
        notable.append(f"{digest.turns} turns")
    if digest.requested_max_output:
        notable.append(f"answer at most {digest.requested_max_output} tokens")
    return ", ".join(notable)


@dataclass(frozen=True)
class ManagerPrompt:
    system: str
    request: Template

    @classmethod
    def load(cls) -> ManagerPrompt:
        system = find_prompt(SYSTEM_FILE).read_text(encoding="utf-8").strip()
        request = find_prompt(REQUEST_FILE).read_text(encoding="utf-8").strip()
        return cls(system=system, request=Template(request))

    def messages(self, digest: Digest, neighbours: list[Neighbour] | tuple[()] = ()
                 ) -> list[dict[str, Any]]:
        facts = {
            "examples": examples_block(neighbours),
            "facts": facts_line(digest),
            "input_tokens": digest.input_tokens,
            "tools": _yes_no(digest.has_tools),
            "images": _yes_no(digest.has_images),
            "json": _yes_no(digest.wants_json),
            "long_context": _yes_no(digest.long_context),
            "turns": digest.turns,
            "tool_loop": _yes_no(digest.in_tool_loop),
            "virtual_model": digest.virtual_model,
            "max_output": digest.requested_max_output or "not set",
            "text": digest.text or "(no text)",
        }
        return [{"role": "system", "content": self.system},
                {"role": "user", "content": self.request.safe_substitute(facts).strip()}]


def examples_block(neighbours: list[Neighbour] | tuple[()]) -> str:
    """The nearest labelled examples as few-shot lines, nearest last (a small model
    follows what it read most recently). They go in the user message: the system prompt
    stays identical across requests, so llama.cpp's prompt cache keeps it."""
    lines = []
    for n in reversed(neighbours):
        e = n.example
        text = " ".join(e.prompt.split())[:EXAMPLE_CHARS]
        answer = json.dumps({"reason": EXAMPLE_REASONS[e.capability], "capability": e.capability,
                             "output_tokens": e.output_tokens, "tier": e.tier},
                            separators=(",", ":"))
        lines += [f"Request: {text}", answer]
    return "\n".join(lines)
