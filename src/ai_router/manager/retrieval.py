"""The seed bank: labelled example requests, and the ones nearest a new request.

A few hundred examples fit in an in-memory SQLite FTS5 index; BM25 over porter-stemmed
words finds the k nearest in well under a millisecond, with no extra dependency. The
nearest examples go into the manager's prompt as few-shot examples and vote as evidence.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

from ..config import PACKAGE_DIR, user_config_dir
from ..errors import ConfigError
from ..schema import CAPABILITIES, TIERS, Capability, Tier

SEED_FILE = "seed_bank.jsonl"
MAX_QUERY_WORDS = 48  # the start of a request says what is asked; more words add noise
_WORD = re.compile(r"[^\W_]+", re.UNICODE)


@dataclass(frozen=True)
class Example:
    prompt: str
    capability: Capability
    tier: Tier
    output_tokens: int


@dataclass(frozen=True)
class Neighbour:
    example: Example
    score: float  # BM25 relevance, higher is nearer (SQLite reports it negated)


def data_dirs() -> list[Path]:
    """AI_ROUTER_DATA, the user's config dir, the packaged defaults, then the repo root."""
    env = os.environ.get("AI_ROUTER_DATA")
    dirs = [Path(env)] if env else []
    return [*dirs, user_config_dir() / "data", PACKAGE_DIR / "defaults" / "data",
            PACKAGE_DIR.parents[1] / "data"]


def find_seed_file() -> Path | None:
    return next((d / SEED_FILE for d in data_dirs() if (d / SEED_FILE).is_file()), None)


def read_examples(path: Path) -> list[Example]:
    """Labelled lines (`prompt`, `label_capability`, `label_tier`, `ref_output_tokens`)."""
    examples = []
    # JSON lines end at "\n" only: a prompt may hold U+2028 or U+0085 unescaped
    for number, line in enumerate(path.read_text(encoding="utf-8").split("\n"), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            example = Example(row["prompt"], row["label_capability"], row["label_tier"],
                              int(row["ref_output_tokens"]))
        except (ValueError, KeyError, TypeError) as e:
            raise ConfigError(f"{path}:{number}: not a labelled example ({e})") from e
        if example.capability not in CAPABILITIES or example.tier not in TIERS:
            raise ConfigError(f"{path}:{number}: unknown capability or tier")
        examples.append(example)
    return examples


class SeedBank:
    def __init__(self, examples: list[Example]):
        self.examples = examples
        # one connection, used from whichever thread decides; queries take microseconds
        self._db = sqlite3.connect(":memory:", check_same_thread=False)
        self._lock = threading.Lock()
        self._db.execute("CREATE VIRTUAL TABLE seeds USING fts5(prompt, "
                         "tokenize='porter unicode61')")
        self._db.executemany("INSERT INTO seeds(rowid, prompt) VALUES (?, ?)",
                             [(i, e.prompt) for i, e in enumerate(examples)])

    @classmethod
    def load(cls, path: Path | None = None) -> SeedBank | None:
        """The shipped seed bank, or None when there is none (the manager works without)."""
        path = path or find_seed_file()
        return cls(read_examples(path)) if path else None

    def nearest(self, text: str, k: int = 4, exclude: str | None = None) -> list[Neighbour]:
        """The k examples nearest `text`, nearest first; `exclude` skips an identical prompt
        (leave-one-out evaluation of the bank against itself)."""
        query = _match_query(text)
        if not query or k <= 0:
            return []
        with self._lock:
            rows = self._db.execute(
                "SELECT rowid, bm25(seeds) FROM seeds WHERE seeds MATCH ? "
                "ORDER BY bm25(seeds) LIMIT ?", (query, k + 1)).fetchall()
        found = [Neighbour(self.examples[i], -score) for i, score in rows]
        return [n for n in found if n.example.prompt != exclude][:k]


def _match_query(text: str) -> str:
    """Any of the request's words, each quoted so FTS5 never reads them as syntax."""
    # no stop words: "what is", "how do I", "why" say which task it is (dropping the
    # commonest words cost 5-10 points of accuracy on the seed bank, leave-one-out)
    words = list(dict.fromkeys(w.lower() for w in _WORD.findall(text)))[:MAX_QUERY_WORDS]
    return " OR ".join(f'"{w}"' for w in words)
