"""The compact view of a request that the manager model reads.

The manager is tiny; it never sees a raw 30k-token agent request. It sees the latest
*real* user text (agent wrappers and OpenClaw internal-context blocks removed,
truncated) plus facts measured here, never guessed: tokens, tools, images, JSON.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from .schema import ChatRequest

MAX_TEXT_CHARS = 1_000
_HEAD_SHARE = 0.7  # the start of a prompt says what is asked; the end often says how

# OpenClaw: "[Thu 2026-11-26 01:03 UTC] <text>\n\nRuntime: agent=main | …"
_TIMESTAMP = re.compile(r"\A\[[A-Z][a-z]{2} \d{4}-\d{2}-\d{2} \d{2}:\d{2}(?::\d{2})? [A-Z]{1,5}\] ")
_RUNTIME = re.compile(r"\n\nRuntime: [^\n]*\s*\Z")
_INTERNAL = re.compile(
    r"<<<BEGIN_OPENCLAW_INTERNAL_CONTEXT>>>.*?(?:<<<END_OPENCLAW_INTERNAL_CONTEXT>>>|\Z)",
    re.DOTALL)
_IMAGE_PARTS = frozenset({"image_url", "input_image", "image"})
_JSON_FORMATS = frozenset({"json_object", "json_schema"})
_NOT_CONVERSATION = frozenset({"system", "developer"})


@dataclass(frozen=True)
class Digest:
    text: str  # latest real user text, cleaned and truncated
    input_tokens: int
    has_tools: bool
    has_images: bool
    wants_json: bool
    turns: int  # conversation messages, without system prompts and internal context
    in_tool_loop: bool  # tool results arrived after the latest real user text
    virtual_model: str
    long_context: bool
    text_chars: int = 0  # length of the cleaned user text before truncation
    requested_max_output: int | None = None  # the client's max_tokens, if any
    conversation: str = ""  # which conversation: a hash of its opening (conversation_key)


def make_digest(request: ChatRequest, input_tokens: int,
                long_context_tokens: int = 32_000, *, salt: bytes = b"") -> Digest:
    messages = request.messages
    user_index, text = _latest_user_text(messages)
    later = messages[user_index + 1:] if user_index >= 0 else messages
    return Digest(
        text=truncate(text),
        input_tokens=input_tokens,
        has_tools=bool(request.tools) or any(_is_tool_traffic(m) for m in messages),
        has_images=any(_has_image(m.get("content")) for m in messages),
        wants_json=(request.response_format or {}).get("type") in _JSON_FORMATS,
        turns=sum(1 for m in messages if _is_conversation(m)),
        in_tool_loop=any(m.get("role") == "tool" for m in later),
        virtual_model=request.model,
        long_context=input_tokens > long_context_tokens,
        text_chars=len(text),
        requested_max_output=request.requested_max_output,
        conversation=conversation_key(request, salt),
    )


def conversation_key(request: ChatRequest, salt: bytes = b"") -> str:
    """A conversation is known by its system prompt and first user message, which every
    later turn of an agent loop re-sends unchanged. A secret salt makes the key mean
    nothing outside the process that holds the salt."""
    messages = request.messages
    system = next((m.get("content") for m in messages if m.get("role") in _NOT_CONVERSATION),
                  None)
    first_user = next((m.get("content") for m in messages if m.get("role") == "user"), None)
    key = hashlib.blake2b(digest_size=16, key=salt)
    for part in (system, first_user):
        # text is hashed as it is (an agent's system prompt is 26k characters: no JSON
        # round trip); anything else as JSON, tagged so the two can never collide
        tag, text = ((b"s", part) if isinstance(part, str) else
                     (b"j", json.dumps(part, sort_keys=True, default=str)))
        data = text.encode("utf-8", "surrogatepass")
        key.update(b"%s%d:" % (tag, len(data)))
        key.update(data)
    return key.hexdigest()


def clean_user_text(text: str) -> str:
    """Remove OpenClaw's timestamp/runtime wrapper and internal-context blocks."""
    if "<<<BEGIN_OPENCLAW_INTERNAL_CONTEXT>>>" in text:
        text = _INTERNAL.sub("", text)
    text = _TIMESTAMP.sub("", text, count=1)
    return _RUNTIME.sub("", text).strip()


def truncate(text: str, limit: int = MAX_TEXT_CHARS) -> str:
    """Keep the start and the end of long text, marking the cut."""
    if len(text) <= limit:
        return text
    head = int(limit * _HEAD_SHARE)
    tail = limit - head - 3
    return f"{text[:head].rstrip()}\n…\n{text[-tail:].lstrip()}"


def content_text(content: Any) -> str:
    """The text of a message's content: a string, or the text parts of a list."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(p.get("text") or "" for p in content
                         if isinstance(p, dict) and p.get("type") in ("text", "input_text"))
    return ""


def _latest_user_text(messages: list[dict[str, Any]]) -> tuple[int, str]:
    """(index, cleaned text) of the last user message with real text; (-1, "") if none."""
    for i in range(len(messages) - 1, -1, -1):
        if messages[i].get("role") != "user":
            continue
        text = clean_user_text(content_text(messages[i].get("content")))
        if text:
            return i, text
    return -1, ""


def _is_conversation(message: dict[str, Any]) -> bool:
    role = message.get("role")
    if role in _NOT_CONVERSATION:
        return False
    if role == "user":  # OpenClaw's internal-context-only messages are not turns
        raw = content_text(message.get("content"))
        return "<<<BEGIN_OPENCLAW_INTERNAL_CONTEXT>>>" not in raw or bool(clean_user_text(raw))
    return True


def _is_tool_traffic(message: dict[str, Any]) -> bool:
    return message.get("role") == "tool" or bool(message.get("tool_calls"))


def _has_image(content: Any) -> bool:
    return isinstance(content, list) and any(
        isinstance(p, dict) and p.get("type") in _IMAGE_PARTS for p in content)
