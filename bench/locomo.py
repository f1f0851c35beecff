"""LoCoMo turn-level recall@k through the real `recall` flow, next to BM25-only and dense-only.

    python bench/locomo.py ../shared/data/locomo/locomo-dev.json [--split tune|held-out|both] [key=value ...]

Every turn of a conversation becomes one memory (one workspace per conversation, one
thread per session), text `(<session date>) <speaker> said, "<text>"`, stored through
`remember`. Every
question goes through `recall` with top_k=25; recall@k is the share of the question's
evidence dia_ids among the first k, averaged over questions that have evidence. The
same store is queried with retrieval.mode = hybrid, lexical (BM25 over each turn and
its thread context) and dense; a second store, remembered without threads, gives plain
BM25 over the turn texts alone. Every column comes from one run.

The conversations are split in two: the first three ("tune") are the only ones any
default was chosen on; the last two ("held-out") were run once, at the end, to check
that the choices carry over. Both are printed.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import anyio
from harness import percentile

from reme_mcp import ReMeApp

KS = (5, 10, 25)
# (column, retrieval.mode, turns remembered in threads): the default, its two halves, and plain BM25 over
# the turn texts alone (no thread context), the baseline published numbers use.
RUNS = (("hybrid", "hybrid", True), ("bm25+ctx", "lexical", True), ("dense", "dense", True), ("bm25", "lexical", False))
OVERRIDES: list[str] = []  # key=value configuration from the command line
CATEGORIES = {1: "multi-hop", 2: "temporal", 3: "open-domain", 4: "single-hop", 5: "adversarial"}
TUNE = 3  # conversations [0, TUNE) tune; the rest are held out


def turns(sample: dict) -> list[tuple[str, str, str]]:
    """(dia_id, memory text, session) for every turn of one conversation."""
    conversation = sample["conversation"]
    out = []
    for key, session in conversation.items():
        if not re.fullmatch(r"session_\d+", key) or not isinstance(session, list):
            continue
        date = conversation.get(f"{key}_date_time", "")
        for turn in session:
            out.append((turn["dia_id"], f'({date}) {turn["speaker"]} said, "{turn["text"]}"', key))
    return out


def evidence(question: dict) -> set[str]:
    ids: set[str] = set()
    for item in question.get("evidence") or []:
        ids.update(part for part in re.split(r"[;,\s]+", item) if part)
    return ids


async def index(store_dir: Path, data: list[tuple[int, dict]], threads: bool) -> float:
    started = time.perf_counter()
    async with ReMeApp(*OVERRIDES, store_dir=str(store_dir), log_level="WARNING") as app:
        for n, sample in data:
            for dia_id, text, session in turns(sample):
                await app.async_execute(
                    "remember", text=text, workspace_id=f"conv-{n}", thread=session if threads else None,
                    metadata={"dia_id": dia_id},
                )
    return time.perf_counter() - started


Scores = dict[str, dict[int, list[float]]]


async def evaluate(store_dir: Path, data: list[tuple[int, dict]], mode: str) -> tuple[Scores, list[float]]:
    scores: Scores = defaultdict(lambda: defaultdict(list))
    latencies: list[float] = []
    async with ReMeApp(*OVERRIDES, store_dir=str(store_dir), log_level="WARNING", retrieval__mode=mode) as app:
        for n, sample in data:
            for question in sample["qa"]:
                wanted = evidence(question)
                if not wanted:
                    continue
                started = time.perf_counter()
                result = await app.async_execute(
                    "recall", query=question["question"], top_k=max(KS), workspace_id=f"conv-{n}"
                )
                latencies.append(time.perf_counter() - started)
                ranked = [hit["metadata"]["dia_id"] for hit in result.metadata["memories"]]
                category = CATEGORIES.get(question.get("category"), str(question.get("category")))
                for k in KS:
                    share = len(wanted & set(ranked[:k])) / len(wanted)
                    scores[category][k].append(share)
                    scores["all"][k].append(share)
    return scores, latencies


def report(split: str, data: list[tuple[int, dict]]) -> None:
    results: dict[str, tuple[Scores, list[float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for threads in (True, False):
            store_dir = Path(tmp) / ("threads" if threads else "plain")
            seconds = anyio.run(index, store_dir, data, threads)
            n_turns = sum(len(turns(s)) for _, s in data)
            print(f"indexed {n_turns} turns of {len(data)} conversations in {seconds:.1f} s", file=sys.stderr)
            for column, mode, threaded in RUNS:
                if threaded == threads:
                    results[column] = anyio.run(evaluate, store_dir, data, mode)

    names = ", ".join(s.get("sample_id", str(n)) for n, s in data)
    print(f"\n{split} split ({names}): turn recall@k, and the default (hybrid) over plain BM25 and over dense")
    columns = [column for column, _, _ in RUNS]
    print(f"{'category':<12} {'n':>4}  " + "  ".join(f"{c:>8}@{k:<2}" for k in KS for c in columns)
          + "  " + "  ".join(f"{r}@{k}" for k in KS for r in ("x bm25", "x dense")))
    for category in ["all", *(c for c in CATEGORIES.values() if c in results["hybrid"][0])]:
        n = len(results["hybrid"][0][category][KS[0]])
        cells, ratios = [], []
        for k in KS:
            values = {c: sum(results[c][0][category][k]) / n for c in columns}
            cells += [f"{values[c]:>11.3f}" for c in columns]
            ratios += [f"{values['hybrid'] / max(values[base], 1e-9):>{len(r) + 2}.2f}"
                       for base, r in (("bm25", "x bm25"), ("dense", "x dense"))]
        print(f"{category:<12} {n:>4}  " + "  ".join(cells) + "  " + "  ".join(ratios))
    for column in columns:
        lat = results[column][1]
        print(f"recall latency {column:<8} p50 {percentile(lat, 50) * 1000:.1f} ms  "
              f"p95 {percentile(lat, 95) * 1000:.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", type=Path, help="locomo JSON (a list of conversations)")
    parser.add_argument("--split", choices=("tune", "held-out", "both"), default="both")
    parser.add_argument("overrides", nargs="*", help="configuration, e.g. retrieval.dense_weight=0.5")
    args = parser.parse_args()
    OVERRIDES.extend(args.overrides)
    conversations = list(enumerate(json.loads(args.data.read_text())))
    splits = {"tune": conversations[:TUNE], "held-out": conversations[TUNE:]}
    for name in ("tune", "held-out") if args.split == "both" else (args.split,):
        report(name, splits[name])


if __name__ == "__main__":
    main()
