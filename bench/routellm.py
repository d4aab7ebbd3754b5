"""Cost/quality of ai-router's manager on RouteLLM's public per-prompt outcomes (issue #5).

    git clone https://github.com/lm-sys/RouteLLM /tmp/RouteLLM
    nice -n 10 uv run python bench/routellm.py --routellm /tmp/RouteLLM
    uv run python bench/routellm.py --routellm /tmp/RouteLLM --write-split /tmp/rl   # train/test
    uv run python bench/routellm.py --records /tmp/rl/test.jsonl --scores learned.jsonl
    nice -n 10 uv run python bench/routellm.py --routellm /tmp/RouteLLM \
        --arms evidence,learned --learn-privacy preview,full --learn-labels all,tier

For GSM8K, MMLU and MT-Bench, RouteLLM recorded how a weak model (Mixtral-8x7B) and a
strong one (GPT-4-1106) did on every prompt (bench/routellm_data.py). Each prompt goes
the way routing sends it (`ai_router.evaluate`: counted, digested, `Manager.decide`), and
the decision becomes a routing score for "send to strong": the tier first (strong >
cheap > local), then a continuous signal that breaks ties (see `score_arm`). Sending the
top x% to strong gives RouteLLM's cost/quality curve (bench/costquality.py); the figure is
the smallest x that keeps 95% of the strong model's quality, beside random routing
(analytic), always-strong (100%) and an oracle that knows the outcomes (the floor).

The `learned` arm learns from outcomes first (`ai_router.evaluate.learned_bank`, the
replay behind `ai-router eval --learn-from`): the TRAIN half of the prompt-hash split is
replayed as the rated outcomes routing would log (with each `--learn-privacy` setting), and
every arm is then scored on the TEST half only, so all arms see exactly the same prompts.
Those outcomes are benchmark test items: the learned bank lives in a throwaway ledger, for
this evaluation only, and is never shipped.

Another scorer plugs in with `--scores FILE.jsonl` (lines `{"prompt": ..., "score": x}`,
higher = more in need of the strong model), scored on exactly the same prompts.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import costquality as cq
import routellm_data as data

from ai_router import evaluate
from ai_router.config import load_config
from ai_router.manager import Manager
from ai_router.manager.core import VOTE_K
from ai_router.manager.learning import prompt_key

REPO = Path(__file__).resolve().parents[1]
TIER_RANK = {"local": 0, "cheap": 1, "strong": 2}
# The anchors quoted in issue #5 (RouteLLM's blog, 2024-07-01): cost reduction against
# always-strong at 95% of GPT-4's quality, i.e. strong calls needed = 100% - reduction.
PUBLISHED_STRONG_SHARE = {"mt-bench": 0.15, "mmlu": 0.55, "gsm8k": 0.65}


async def score_arm(arm: str, records: list[data.Record], config: Any,
                    seeds: Any = None) -> dict[str, Any]:
    """The manager's decisions as routing scores, two ways:

    - `tier`: the tier alone; prompts with the same tier are indistinguishable.
    - `tier+`: ties broken by a signal the decision rests on. With a seed bank (evidence,
      combined), the BM25-weighted share of the 8 nearest seed examples labelled strong:
      the evidence arm sets the tier from those same neighbours, so this is its own
      confidence that the strong tier is needed. Then, and alone for baseline, the
      estimated output tokens: a longer expected answer is more work to get right.

    `seeds` replaces the shipped seed bank (a learned one); the arm is then the evidence arm.
    """
    items = [evaluate.Item(r.prompt) for r in records]
    if arm == "baseline":
        decide, seeds = evaluate.baseline, None
    else:
        mode = "evidence" if seeds is not None else arm
        manager = Manager(config.manager, mode=mode, cache_size=len(items) + 1,
                          **({"seeds": seeds} if seeds is not None else {}))
        if mode != "evidence":
            await manager.warm_up()
        decide, seeds = manager.decide, manager.seeds
    outcomes = await evaluate.run(items, config, decide)
    tiers, keys = [], []
    for o in outcomes:
        decision = o.result.decision
        share = 0.0
        if seeds:
            near = seeds.nearest(evaluate.to_digest(o.item, config).text, VOTE_K)
            total = sum(n.score for n in near)
            share = sum(n.score for n in near if n.example.tier == "strong") / total if total else 0
        tiers.append(decision.tier)
        keys.append((TIER_RANK[decision.tier], share, decision.output_tokens))
    return {"tier": [k[0] for k in keys], "tier+": keys, "decision": tiers,
            "sources": dict(Counter(o.result.source for o in outcomes))}


def figures(records: list[data.Record], scorers: dict[str, dict[str, Any]],
            rounds: int = 0) -> dict[str, Any]:
    """The table for one benchmark. With `rounds`, each scorer's strong-call share also gets
    a paired bootstrap 95% interval of its difference from random's and, for a learned arm,
    from the unlearned evidence arm's (the same way: tier or tier+)."""
    weak = [r.weak for r in records]
    strong = [r.strong for r in records]
    n = len(records)
    weak_q, strong_q = sum(weak) / n, sum(strong) / n
    target = cq.QUALITY_SHARE * strong_q
    rows: dict[str, dict[str, Any]] = {
        "always-strong": {"share_for_95": 1.0},
        "random (expected)": {"share_for_95": cq.random_share(weak_q, strong_q, target),
                              "apgr": 0.5},
    }
    ranked = {"oracle (knows outcomes)": [s - w for w, s in zip(weak, strong, strict=True)]}
    for arm, scored in scorers.items():
        ranked |= {f"{arm} {way}": scores for way, scores in scored.items()
                   if way not in META}
    for name, scores in ranked.items():
        points = cq.curve(scores, weak, strong)
        rows[name] = {"share_for_95": cq.share_needed(points, target), "apgr": cq.apgr(points)}
        arm = name.split()[0]
        if name.endswith(" tier") and "decision" in scorers.get(arm, {}):
            chosen = [t == "strong" for t in scorers[arm]["decision"]]
            rows[name]["own_share"], rows[name]["own_quality"] = cq.at_decision(chosen, weak,
                                                                                strong)
            rows[name]["gain_by_tier"] = gain_by_tier(scorers[arm]["decision"], records)
            rows[name]["sources"] = scorers[arm]["sources"]  # who decided: model, evidence...
    if rounds:
        mine = {name: scores for name, scores in ranked.items() if not name.startswith("oracle")}
        shares = cq.resampled_shares(mine, weak, strong, rounds)
        for name in mine:
            rows[name]["vs_random"] = cq.interval(shares[name], shares["random"])
            unlearned = "evidence " + name.split()[-1]
            if name.startswith("learned") and unlearned in shares:
                rows[name]["vs_unlearned"] = cq.interval(shares[name], shares[unlearned])
    return {"n": n, "weak": weak_q, "strong": strong_q, "target": target,
            "needs_strong": sum(r.needs_strong for r in records) / n,
            "published_share": PUBLISHED_STRONG_SHARE.get(records[0].benchmark), "rows": rows,
            "learning": {arm: s["learning"] for arm, s in scorers.items() if "learning" in s}}


META = ("decision", "sources", "learning")  # what a scorer reports beside its scores


def to_item(r: data.Record, labels: str = "all") -> evaluate.Item:
    """A record as `ai-router eval` reads its --write-split line: labelled, so replayable.
    `labels="tier"` leaves the capability out, so the replayed feedback judges the tier alone
    (the outcomes only say which model was needed; the capability is our subject mapping)."""
    line = data.eval_line(r)
    return evaluate.Item(r.prompt, line["label_capability"] if labels == "all" else None,
                         line["label_tier"], r.ref_tokens)


def halves(records: list[data.Record]) -> tuple[list[data.Record], list[data.Record]]:
    """(TRAIN, TEST) by the fixed prompt-hash split. A TEST prompt the outcome log would key
    like a TRAIN one (`prompt_key`: case and spacing) is dropped: it would find its own answer."""
    train = [r for r in records if not data.in_test(r.prompt)]
    taught = {prompt_key(r.prompt) for r in train}
    return train, [r for r in records if data.in_test(r.prompt)
                   and prompt_key(r.prompt) not in taught]


async def learned_arm(train: list[data.Record], test: list[data.Record], config: Any,
                      privacy: str, labels: str = "all") -> dict[str, Any]:
    """Replay TRAIN as rated outcomes (logged with `privacy`, judged by `labels`), then score
    TEST with the evidence arm over the seed bank plus what was learned."""
    start = time.perf_counter()
    bank, learning = await evaluate.learned_bank(
        [to_item(r, labels) for r in train], config.model_copy(update={"privacy": privacy}),
        "evidence")
    learning["labels"] = labels
    learning["replay_s"] = round(time.perf_counter() - start, 1)
    return {**await score_arm("learned", test, config, seeds=bank), "learning": learning}


def gain_by_tier(tiers: list[str], records: list[data.Record]) -> dict[str, list[float]]:
    """Per decided tier: its share of prompts and the strong model's mean gain there.
    A tier that separates hard from easy has the larger gains under "strong"."""
    gains: dict[str, list[float]] = {}
    for tier, r in zip(tiers, records, strict=True):
        gains.setdefault(tier, []).append(r.strong - r.weak)
    return {t: [len(g) / len(records), sum(g) / len(g)]
            for t, g in sorted(gains.items(), key=lambda x: -TIER_RANK[x[0]])}


def external_scores(path: Path, records: list[data.Record]) -> dict[str, list]:
    by_prompt = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            by_prompt[row["prompt"]] = float(row["score"])
    if missing := [r.prompt for r in records if r.prompt not in by_prompt]:
        raise SystemExit(f"{path}: no score for {len(missing)} prompts, e.g. {missing[0][:60]!r}")
    return {"score": [by_prompt[r.prompt] for r in records]}


def _pct(x: float | None) -> str:
    return "never" if x is None else f"{100 * x:.1f}%"


def print_figures(name: str, f: dict[str, Any]) -> None:
    print(f"\n{name}: n {f['n']}, weak {f['weak']:.3f}, strong {f['strong']:.3f}, "
          f"95% of strong {f['target']:.3f}, strong needed (label) {_pct(f['needs_strong'])}, "
          f"RouteLLM published ~{_pct(f['published_share'])} strong calls")
    for arm, learning in f["learning"].items():
        print(f"  {arm}: {learning}")
    print(f"  {'scorer':26} {'strong calls for 95%':>20} {'APGR':>6}   at its own decision")
    for scorer, row in f["rows"].items():
        own = (f"{_pct(row['own_share'])} strong -> quality {row['own_quality']:.3f} "
               f"(decided by {row['sources']})" if "own_share" in row else "")
        apgr = f"{row['apgr']:.3f}" if "apgr" in row else ""
        print(f"  {scorer:26} {_pct(row['share_for_95']):>20} {apgr:>6}   {own}")
        for versus in ("vs_random", "vs_unlearned"):
            if versus in row:
                low, high = row[versus]
                print(f"  {'':28}{versus}: {100 * low:+.1f} to {100 * high:+.1f} points "
                      "(95% bootstrap)")
        for tier, (share, gain) in row.get("gain_by_tier", {}).items():
            print(f"  {'':28}{tier:>6}: {_pct(share):>6} of prompts, strong - weak {gain:+.3f}")


def sample(records: list[data.Record], limit: int | None) -> list[data.Record]:
    """The first `limit` prompts in hash order: a fixed sample, the same on every run."""
    if not limit:
        return records
    return sorted(records, key=lambda r: hashlib.sha256(r.prompt.encode()).digest())[:limit]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--routellm", type=Path, help="RouteLLM checkout or git directory")
    source.add_argument("--records", type=Path, help="a file --write-split wrote (test.jsonl)")
    p.add_argument("--benchmarks", default=",".join(data.BENCHMARKS))
    p.add_argument("--arms", default="baseline,evidence",
                   help="of baseline, evidence, combined (asks the local model: needs --limit), "
                   "learned (learns from the TRAIN half; every arm is then scored on TEST)")
    p.add_argument("--learn-privacy", default=None,
                   help="the outcome log's privacy during the learned arm's replay, comma-"
                   "separated of preview, full (default: the configured one)")
    p.add_argument("--learn-labels", default="all",
                   help="what the replayed feedback judges, comma-separated of all (capability "
                   "and tier, as `ai-router eval --learn-from`), tier (the tier alone)")
    p.add_argument("--bootstrap", type=int, default=0, metavar="ROUNDS",
                   help="paired bootstrap intervals of the strong-call share differences")
    p.add_argument("--train-limit", type=int,
                   help="replay a fixed sample of N TRAIN prompts per benchmark")
    p.add_argument("--only", choices=("train", "test"), help="only this half of the split")
    p.add_argument("--limit", type=int, help="a fixed sample of N prompts per benchmark")
    p.add_argument("--scores", type=Path, action="append", default=[],
                   help="JSONL of {prompt, score} from another scorer (repeatable)")
    p.add_argument("--write-split", type=Path, metavar="DIR",
                   help="write DIR/train.jsonl and DIR/test.jsonl in ai-router's eval format")
    p.add_argument("--config", help="models.toml (the manager's settings)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    args = p.parse_args()
    arms = [a for a in args.arms.split(",") if a]
    if unknown := set(arms) - {"baseline", "evidence", "combined", "learned"}:
        p.error(f"unknown arm {', '.join(sorted(unknown))}")
    if "combined" in arms and not args.limit:
        p.error("the combined arm asks the local model (seconds per prompt here): add --limit N")
    if "learned" in arms and (args.records or args.only == "train"):
        p.error("the learned arm learns from the TRAIN half and scores TEST: it needs "
                "--routellm, and no --only train")
    if args.write_split and args.write_split.resolve().is_relative_to(REPO):
        p.error("--write-split: name a folder outside this repository (the split is made of "
                "benchmark test items, which nothing here may ship or learn from)")
    config = load_config(args.config)
    privacies = (args.learn_privacy or config.privacy).split(",")
    if bad := set(privacies) - {"preview", "full"}:
        p.error(f"--learn-privacy: {', '.join(sorted(bad))}: nothing is learned without a "
                "prompt; use preview or full")
    labelling = args.learn_labels.split(",")
    if bad := set(labelling) - {"all", "tier"}:
        p.error(f"--learn-labels: unknown {', '.join(sorted(bad))}; use all, tier")
    wanted = args.benchmarks.split(",")
    records = (data.load(args.routellm, wanted) if args.routellm
               else {b: rs for b, rs in data.read_split(args.records).items() if b in wanted})
    if args.write_split:
        counts = data.write_split(records, args.write_split)
        print(f"wrote {args.write_split}/train.jsonl ({counts['train']} prompts) and "
              f"test.jsonl ({counts['test']})", file=sys.stderr)
    if args.only:
        records = {b: [r for r in rs if data.in_test(r.prompt) == (args.only == "test")]
                   for b, rs in records.items()}
    report = {}
    for name, rs in records.items():
        train: list[data.Record] = []
        if "learned" in arms:
            train, rs = halves(rs)
            train = sample(train, args.train_limit)
        rs = sample(rs, args.limit)
        scorers = {}
        for arm in arms:
            if arm != "learned":
                scorers[arm] = asyncio.run(score_arm(arm, rs, config))
                continue
            for privacy in privacies:
                for labels in labelling:
                    suffix = "" if labels == "all" else f"-{labels}"
                    scorers[f"learned-{privacy}{suffix}"] = asyncio.run(
                        learned_arm(train, rs, config, privacy, labels))
        scorers |= {path.stem: external_scores(path, rs) for path in args.scores}
        report[name] = figures(rs, scorers, args.bootstrap)
        if not args.json:
            print_figures(name, report[name])
    if args.json:
        print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
