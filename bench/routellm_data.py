"""RouteLLM's public per-prompt outcomes, read at run time from the user's copy of
https://github.com/lm-sys/RouteLLM (a checkout, or a git directory with no work tree).
Nothing read here is written into this repository.

Weak model mistralai/Mixtral-8x7B-Instruct-v0.1, strong gpt-4-1106-preview, as in
RouteLLM's `routellm/evals/evaluate.py`. Scores follow `routellm/evals/benchmarks.py`:
GSM8K and MMLU are correct (1) or not (0); MT-Bench is GPT-4's 1-10 judgement averaged
over a question's two turns (routing sees the first turn only). Prompts listed in each
benchmark's `contaminated_prompts.jsonl` (near-copies in RouteLLM's training data) are
dropped, as RouteLLM drops them.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import statistics
import subprocess
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from ai_router import tokens

WEAK = "mistralai/Mixtral-8x7B-Instruct-v0.1"
STRONG = "gpt-4-1106-preview"
BENCHMARKS = ("gsm8k", "mmlu", "mt-bench")
EVALS = "routellm/evals"
# MMLU subjects: the mathematical ones are math, the two about logic are reasoning, the
# rest ask for recalled facts (knowledge), the way a question reaches a gateway.
MMLU_MATH = {"abstract_algebra", "college_mathematics", "elementary_mathematics",
             "high_school_mathematics", "high_school_statistics"}
MMLU_REASONING = {"formal_logic", "logical_fallacies"}
# MT-Bench categories; roleplay ("pretend to be Elon Musk...") is conversation.
MT_BENCH_CAPABILITY = {"writing": "writing", "roleplay": "chat", "reasoning": "reasoning",
                       "math": "math", "coding": "coding", "extraction": "extraction",
                       "stem": "knowledge", "humanities": "knowledge"}
# "The strong model was needed": it scored at least this much above the weak one. On
# 0/1 correctness that is "weak wrong, strong right"; on MT-Bench, one judge point.
STRONG_MARGIN = 1.0
TEST_SHARE = 50  # percent of prompts (by hash) in the TEST split


@dataclass(frozen=True)
class Record:
    benchmark: str
    prompt: str
    weak: float  # the weak model's score on this prompt
    strong: float
    capability: str
    ref_tokens: int | None = None  # the strong model's answer length, where it is known

    @property
    def needs_strong(self) -> bool:
        return self.strong - self.weak >= STRONG_MARGIN


def in_test(prompt: str) -> bool:
    """A fixed split, the same on every machine: by the prompt's hash."""
    return int(hashlib.sha256(prompt.encode()).hexdigest()[:8], 16) % 100 < TEST_SHARE


class Snapshot:
    """Files of a RouteLLM checkout, or of the HEAD commit of a git directory."""

    def __init__(self, path: Path):
        self.path = path
        self.checkout = (path / EVALS).is_dir()
        if not self.checkout and self._git("rev-parse", "--git-dir") is None:
            raise SystemExit(f"{path}: neither a RouteLLM checkout nor a git directory "
                             "(git clone https://github.com/lm-sys/RouteLLM)")

    def _git(self, *args: str) -> str | None:
        done = subprocess.run(["git", "-C", str(self.path), *args], capture_output=True)
        return done.stdout.decode() if done.returncode == 0 else None

    def read(self, name: str) -> str:
        if self.checkout:
            return (self.path / name).read_text(encoding="utf-8")
        text = self._git("show", f"HEAD:{name}")
        if text is None:
            raise SystemExit(f"{self.path}: no {name} at HEAD")
        return text

    def names(self, folder: str) -> list[str]:
        if self.checkout:
            return sorted(str(p.relative_to(self.path)) for p in (self.path / folder).iterdir())
        return sorted((self._git("ls-tree", "--name-only", f"HEAD:{folder}") or "").split())

    def jsonl(self, name: str) -> list[dict]:
        return [json.loads(line) for line in self.read(name).splitlines() if line.strip()]

    def contaminated(self, benchmark: str) -> set[str]:
        return {row["eval_prompt"] for row in self.jsonl(f"{EVALS}/{benchmark}/"
                                                           "contaminated_prompts.jsonl")}


def _answer_tokens(text: str) -> int:
    return tokens.count_text(text, STRONG).tokens


def gsm8k(snap: Snapshot) -> list[Record]:
    dropped = snap.contaminated("gsm8k")
    rows = csv.DictReader(io.StringIO(snap.read(f"{EVALS}/gsm8k/gsm8k_responses.csv")))
    return [Record("gsm8k", r["prompt"], float(r[WEAK] == "True"), float(r[STRONG] == "True"),
                   "math", _answer_tokens(r[f"{STRONG}_response"]))
            for r in rows if r["prompt"] not in dropped]


def mmlu(snap: Snapshot) -> list[Record]:
    dropped = snap.contaminated("mmlu")
    records = []
    for name in snap.names(f"{EVALS}/mmlu/responses"):
        subject = Path(name).stem.removeprefix("mmlu_")
        capability = ("math" if subject in MMLU_MATH
                      else "reasoning" if subject in MMLU_REASONING else "knowledge")
        rows = csv.DictReader(io.StringIO(snap.read(f"{EVALS}/mmlu/responses/{Path(name).name}")))
        records += [Record("mmlu", r["prompt"], float(r[WEAK] == "True"),
                           float(r[STRONG] == "True"), capability)
                    for r in rows if r["prompt"] not in dropped]
    return records


def _first_answer(judge_prompt: str) -> str:
    """The assistant's answer inside a turn-1 judge prompt."""
    start = judge_prompt.split("[The Start of Assistant's Answer]\n", 1)[-1]
    return start.split("\n[The End of Assistant's Answer]", 1)[0]


def mt_bench(snap: Snapshot) -> list[Record]:
    dropped = snap.contaminated("mt_bench")
    scores: dict[tuple[int, str], list[float]] = defaultdict(list)
    answer_tokens: dict[int, int] = {}
    for j in snap.jsonl(f"{EVALS}/mt_bench/judgements.jsonl"):
        scores[j["question_id"], j["model"]].append(float(j["score"]))
        if j["model"] == STRONG and j["turn"] == 1:
            answer_tokens[j["question_id"]] = _answer_tokens(_first_answer(j["user_prompt"]))
    return [Record("mt-bench", q["turns"][0], statistics.mean(scores[q["question_id"], WEAK]),
                   statistics.mean(scores[q["question_id"], STRONG]),
                   MT_BENCH_CAPABILITY[q["category"]], answer_tokens.get(q["question_id"]))
            for q in snap.jsonl(f"{EVALS}/mt_bench/question.jsonl")
            if not set(q["turns"][:2]) & dropped]


LOADERS = {"gsm8k": gsm8k, "mmlu": mmlu, "mt-bench": mt_bench}


def load(path: Path, benchmarks: list[str]) -> dict[str, list[Record]]:
    snap = Snapshot(path)
    return {name: LOADERS[name](snap) for name in benchmarks}


# ------------------------------------------------------ the split, in ai-router's eval format

def eval_line(r: Record) -> dict:
    """One line `ai-router eval` reads, plus the outcomes so the curve can be recomputed."""
    line = {"prompt": r.prompt, "label_capability": r.capability,
            "label_tier": "strong" if r.needs_strong else "not_strong"}
    if r.ref_tokens:
        line["ref_output_tokens"] = r.ref_tokens
    return {**line, "benchmark": r.benchmark, "weak_score": r.weak, "strong_score": r.strong,
            "source": f"RouteLLM/{r.benchmark}"}


def write_split(records: dict[str, list[Record]], folder: Path) -> dict[str, int]:
    folder.mkdir(parents=True, exist_ok=True)
    counts = {}
    for part in ("train", "test"):
        lines = [eval_line(r) for rs in records.values() for r in rs
                 if in_test(r.prompt) == (part == "test")]
        (folder / f"{part}.jsonl").write_text(
            "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines),
            encoding="utf-8")
        counts[part] = len(lines)
    return counts


def read_split(path: Path) -> dict[str, list[Record]]:
    """Records back from a file `write_split` wrote (TEST, say), grouped by benchmark."""
    records: dict[str, list[Record]] = defaultdict(list)
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            records[row["benchmark"]].append(Record(
                row["benchmark"], row["prompt"], row["weak_score"], row["strong_score"],
                row["label_capability"], row.get("ref_output_tokens")))
    return dict(records)

