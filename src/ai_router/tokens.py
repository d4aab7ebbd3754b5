"""Offline token counts: exact for OpenAI tokenizers, a never-low estimate for the rest.

The ledger reserves money from these counts before a call, so they may overcount but
must never undercount. After the call the provider's reported usage is the truth.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import importlib.util
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tiktoken

from . import fastjson
from .schema import ChatRequest


@dataclass(frozen=True)
class TokenCount:
    tokens: int
    exact: bool


# ----------------------------------------------------------------- exact (tiktoken)

# tiktoken downloads these on first use; bpe_openai ships byte-identical copies.
# The URL only names tiktoken's cache file (sha1 of the URL); the hash is checked on load.
_BLOBS = {
    "o200k_base": ("https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken",
                   "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d"),
    "cl100k_base": ("https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken",
                    "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7"),
}
_FILE_OF = {"o200k_base": "o200k_base", "o200k_harmony": "o200k_base",
            "cl100k_base": "cl100k_base"}
# When tiktoken does not know a model name yet; checked in order (gpt-4o before gpt-4).
_PREFIXES = (("gpt-4o", "o200k_base"), ("chatgpt-4o", "o200k_base"), ("gpt-4.1", "o200k_base"),
             ("gpt-4.5", "o200k_base"), ("gpt-5", "o200k_base"), ("o1", "o200k_base"),
             ("o3", "o200k_base"), ("o4", "o200k_base"), ("gpt-4", "cl100k_base"),
             ("gpt-3.5", "cl100k_base"))


def _cache_file(directory: Path, file: str) -> Path:
    return directory / hashlib.sha1(_BLOBS[file][0].encode()).hexdigest()


def _holds(directory: Path, file: str) -> bool:
    return _cache_file(directory, file).is_file()


def _seed(directory: Path, file: str) -> None:
    """Write the decompressed, hash-checked blob atomically into tiktoken's cache dir."""
    # Located, not imported: importing bpe_openai would load its own tokenizers.
    spec = importlib.util.find_spec("bpe_openai")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the bpe_openai package, which ships tiktoken's files, is missing")
    package = Path(next(iter(spec.submodule_search_locations)))
    data = gzip.decompress((package / "data" / f"{file}.tiktoken.gz").read_bytes())
    if hashlib.sha256(data).hexdigest() != _BLOBS[file][1]:
        raise RuntimeError(f"bpe_openai's {file} does not match tiktoken's expected hash")
    directory.mkdir(parents=True, exist_ok=True)
    tmp = _cache_file(directory, file).with_suffix(f".{os.getpid()}.tmp")
    tmp.write_bytes(data)
    tmp.replace(_cache_file(directory, file))


def _default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "ai-router" / "tiktoken"


def ensure_tiktoken_cache(file: str) -> Path:
    """Make tiktoken find `file` without the network; returns the cache dir it will read.

    A user's own TIKTOKEN_CACHE_DIR is kept (and filled if it lacks the file and is
    writable); otherwise ours is used.
    """
    user = os.environ.get("TIKTOKEN_CACHE_DIR")
    if user:
        directory = Path(user)
        if _holds(directory, file):
            return directory
        try:
            _seed(directory, file)
            return directory
        except OSError:
            pass  # read-only or unusable: fall back to our own dir
    directory = _default_cache_dir()
    if not _holds(directory, file):
        _seed(directory, file)
    os.environ["TIKTOKEN_CACHE_DIR"] = str(directory)
    return directory


def encoding_name(model_name: str | None) -> str | None:
    """The tiktoken encoding for an OpenAI model name (any 'vendor/' prefix dropped)."""
    if not model_name:
        return None
    name = model_name.rsplit("/", 1)[-1].lower()
    try:
        enc = tiktoken.encoding_name_for_model(name)
    except KeyError:
        enc = next((e for prefix, e in _PREFIXES if name.startswith(prefix)), None)
    return enc if enc in _FILE_OF else None  # r50k/p50k are not shipped offline


@functools.cache
def encoding(name: str) -> tiktoken.Encoding:
    ensure_tiktoken_cache(_FILE_OF[name])
    return tiktoken.get_encoding(name)


def _exact(text: str, enc: tiktoken.Encoding) -> int:
    # Special-token text (e.g. "<|endoftext|>") in user content is counted as plain text.
    return len(enc.encode_ordinary(text))


# ----------------------------------------------------------------- estimate (everyone else)

_CJK = ("\u1100-\u11ff\u2e80-\u2fdf\u3000-\u303f\u3040-\u30ff\u3100-\u31ff\u3200-\u9fff"
        "\ua960-\ua97f\uac00-\ud7ff\uf900-\ufaff\uff00-\uffef\U00020000-\U0003ffff")
# Pieces much like the GPT pre-tokenizer's: a BPE token never spans two of them.
_PIECES = re.compile(
    r"(?P<mixed>(?=[A-Za-z]*\d)(?=\d*[A-Za-z])[A-Za-z0-9]{8,})"  # hashes, ids, base64
    r"|(?P<long> ?[A-Z]?[a-z]{8,})"  # rare and compound words split into several tokens
    r"|(?P<word> ?[A-Z]?[a-z]+)"  # camelCase splits here, as o200k does
    r"|(?P<caps> ?[A-Z]+(?![a-z]))"
    r"|(?P<digits>\d{1,3})"  # both tokenizers cut numbers into 1-3 digit groups
    r"|(?P<punct> ?[!-/:-@\[-`{-~]+)"
    r"|(?P<space>\s+)"
    rf"|(?P<cjk>[{_CJK}])"
    r"|(?P<other>[^\x00-\x7f])")
# Tokens = Σ per-piece + per-character (per UTF-8 byte for "other") weights. Fitted as a
# linear program so that the estimate is ≥ 1.1 × max(o200k_base, cl100k_base) on chunks
# (12–1,500 characters) of English, code, JSON, logs, Chinese, Japanese, Korean, emoji,
# numbers, hex/base64/UUIDs, Cyrillic, Arabic, Hindi, Thai, Vietnamese, then rounded up.
# English prose and code come out ~1.5× their real count, Chinese ~1.4×. Known to be
# exceeded only by gibberish (random consonant strings) and rare ideographs, which
# byte-level BPEs split into 2-3 tokens; no byte-level BPE token is shorter than a byte,
# so the UTF-8 length caps the estimate without ever cutting below the truth.
_WEIGHTS = {  # name: (per piece, per character)
    "mixed": (3.6, 0.73), "long": (0.0, 0.27), "word": (0.72, 0.08), "caps": (1.62, 0.05),
    "digits": (1.3, 0.0), "punct": (0.14, 0.71), "space": (1.18, 0.09), "cjk": (0.0, 1.5),
    "other": (0.0, 0.65)}
_BASE = 2.5


@functools.lru_cache(maxsize=1024)  # an agent resends its system prompt and tools every turn
def estimate(text: str) -> int:
    """A conservative token count for an unknown tokenizer."""
    if not text:
        return 0
    total = _BASE
    for m in _PIECES.finditer(text):
        kind = m.lastgroup
        per_piece, per_char = _WEIGHTS[kind]  # type: ignore[index]
        size = len(m.group().encode()) if kind == "other" else m.end() - m.start()
        total += per_piece + per_char * size
    return min(math.ceil(total), len(text.encode()) + 1)


def count_text(text: str, model_name: str | None = None) -> TokenCount:
    """Exact for OpenAI model names (tiktoken, offline); a never-low estimate otherwise."""
    name = encoding_name(model_name)
    if name:
        return TokenCount(_exact(text, encoding(name)), True)
    return TokenCount(estimate(text), False)


# ----------------------------------------------------------------- whole requests

_PER_MESSAGE = 4  # role and separators; OpenAI's cookbook counts 3, we keep a spare token
_REPLY_PRIMING = 3  # every reply is primed with <|start|>assistant<|message|>
_TOOLS_WRAPPER = 12  # OpenAI renders tools inside a "namespace functions { … }" block
# Images are counted before we know their size or the provider's formula, so take the
# largest common figure: Claude bills w·h/750 after scaling to ≤1.15 MP (≤ ~1,600),
# GPT-4o-class high detail is 85 + 170 per 512-px tile with at most 8 tiles (1,445), a
# Gemini tile is 258. OpenAI's small models bill image patches at a multiple instead.
IMAGE_TOKENS = 1_600
_OPENAI_IMAGE_TOKENS = (("gpt-4o-mini", 2_833 + 5_667 * 8), ("nano", 1_536 * 2.46),
                        ("mini", 1_536 * 1.72))
_IMAGE_PARTS = {"image_url", "image", "input_image"}


def image_tokens(model_name: str | None) -> int:
    name = (model_name or "").rsplit("/", 1)[-1].lower()
    if encoding_name(name):
        for marker, tokens in _OPENAI_IMAGE_TOKENS:
            if marker in name:
                return math.ceil(tokens)
    return IMAGE_TOKENS


def _json(value: Any) -> str:
    return fastjson.dumps(value).decode()


def _texts(request: ChatRequest) -> tuple[list[str], int, bool]:
    """Every piece of text the model will read, the number of images, and whether
    anything (audio, files) could only be guessed at."""
    texts: list[str] = []
    images, guessed = 0, False
    for message in request.messages:
        for key, value in message.items():
            if key == "content" and isinstance(value, list):
                for part in value:
                    kind = part.get("type") if isinstance(part, dict) else None
                    if kind == "text":
                        texts.append(str(part.get("text") or ""))
                    elif kind in _IMAGE_PARTS:
                        images += 1
                    else:  # audio, files: their serialized size is a generous stand-in
                        texts.append(_json(part))
                        guessed = True
            elif key == "tool_calls" and isinstance(value, list):
                for call in value:
                    fn = (call.get("function") or {}) if isinstance(call, dict) else {}
                    texts += [str(fn.get("name") or ""), str(fn.get("arguments") or "")]
            elif isinstance(value, str):  # role, content, name, tool_call_id, reasoning
                texts.append(value)
            elif value is not None:
                texts.append(_json(value))
    # Tool schemas as compact JSON: longer than the form OpenAI renders them in.
    texts += [_json(tool) for tool in request.tools or []]
    for extra in (request.response_format, request.tool_choice):
        if isinstance(extra, dict):
            texts.append(_json(extra))
    return texts, images, guessed


def count_request(request: ChatRequest, model_name: str | None = None) -> TokenCount:
    """Input tokens of a whole chat request, never fewer than the model will bill.

    exact means OpenAI's own tokenizer counted every text and there were no images or
    other media; tool schemas are then still an upper bound (see `_texts`).
    """
    name = encoding_name(model_name or request.model)
    texts, images, guessed = _texts(request)
    if name:
        enc = encoding(name)
        tokens = sum(map(len, enc.encode_ordinary_batch(texts))) if texts else 0
    else:
        tokens = sum(map(estimate, texts))
    tokens += _PER_MESSAGE * len(request.messages) + _REPLY_PRIMING
    tokens += _TOOLS_WRAPPER if request.tools else 0
    tokens += images * image_tokens(model_name or request.model)
    return TokenCount(tokens, bool(name) and not images and not guessed)
