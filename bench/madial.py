"""MADial-Bench (English) memory recall through the real `recall` flow, next to BM25-only and dense-only.

    python bench/madial.py ../shared/data/madial-bench/en [--split tune|held-out|both] [key=value ...]

As the benchmark's own scripts do: each user's memories (the first 76 of the memory
file are user 1's, the rest user 2's) are one workspace, stored through `remember`
with the event as text; the query for a dialogue is the dialogue before its first
test turn, joined as it is (`<BOD>`, speaker tags and all); recall@k is the share of
the dialogue's `relevant-id` memories among the first k, averaged over dialogues.
The published reference is OpenAI text-embedding-3-large: recall@5 0.694.

Even-numbered dialogues ("tune") are the only ones any default was chosen on; the
odd-numbered ones ("held-out") were run once, at the end. Both are printed.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import anyio
from harness import percentile

from reme_mcp import ReMeApp

KS = (1, 3, 5, 10)
MODES = ("hybrid", "lexical", "dense")
FIRST_USERS_MEMORIES = 76  # how the benchmark's scripts assign memories to users
OVERRIDES: list[str] = []


def read_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def memories(folder: Path) -> list[tuple[int, int, dict]]:
    """(memory id, user id, record) in file order."""
    records = [(int(k), v) for line in read_lines(folder / "MADial-Bench-en-memory.json") for k, v in line.items()]
    return [(mid, 1 if n < FIRST_USERS_MEMORIES else 2, record) for n, (mid, record) in enumerate(records)]


def query(dialogue: dict) -> str:
    return "".join(dialogue["dialogue"][: dialogue["test-turn"][0]])


async def index(store_dir: Path, folder: Path) -> float:
    started = time.perf_counter()
    async with ReMeApp(*OVERRIDES, store_dir=str(store_dir), log_level="WARNING") as app:
        for mid, user, record in memories(folder):
            await app.async_execute(
                "remember", text=record["event"], workspace_id=f"user-{user}", metadata={"id": mid, **record}
            )
    return time.perf_counter() - started


async def evaluate(store_dir: Path, dialogues: list[dict], mode: str) -> tuple[dict[int, list[float]], list[float]]:
    scores: dict[int, list[float]] = {k: [] for k in KS}
    latencies: list[float] = []
    async with ReMeApp(*OVERRIDES, store_dir=str(store_dir), log_level="WARNING", retrieval__mode=mode) as app:
        for dialogue in dialogues:
            started = time.perf_counter()
            result = await app.async_execute(
                "recall", query=query(dialogue), top_k=max(KS), workspace_id=f"user-{dialogue['user-id']}"
            )
            latencies.append(time.perf_counter() - started)
            ranked = [hit["metadata"]["id"] for hit in result.metadata["memories"]]
            relevant = set(dialogue["relevant-id"])
            for k in KS:
                scores[k].append(len(relevant & set(ranked[:k])) / len(relevant))
    return scores, latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", type=Path, help="the folder with MADial-Bench-en-dialogue.json and -memory.json")
    parser.add_argument("--split", choices=("tune", "held-out", "both"), default="both")
    parser.add_argument("overrides", nargs="*", help="configuration, e.g. retrieval.dense_weight=1.0")
    args = parser.parse_args()
    OVERRIDES.extend(args.overrides)
    dialogues = read_lines(args.data / "MADial-Bench-en-dialogue.json")
    splits = {"tune": dialogues[0::2], "held-out": dialogues[1::2]}
    with tempfile.TemporaryDirectory() as tmp:
        seconds = anyio.run(index, Path(tmp), args.data)
        print(f"indexed {len(memories(args.data))} memories in {seconds:.1f} s", file=sys.stderr)
        for split in ("tune", "held-out") if args.split == "both" else (args.split,):
            results = {mode: anyio.run(evaluate, Path(tmp), splits[split], mode) for mode in MODES}
            print(f"\n{split} split ({len(splits[split])} dialogues): recall@k, and hybrid over each baseline")
            print(f"{'mode':<8} " + " ".join(f"{'R@' + str(k):>6}" for k in KS) + "   latency p50")
            mean = {m: {k: sum(results[m][0][k]) / len(results[m][0][k]) for k in KS} for m in MODES}
            for mode in MODES:
                print(f"{mode:<8} " + " ".join(f"{mean[mode][k]:>6.3f}" for k in KS)
                      + f"   {percentile(results[mode][1], 50) * 1000:.1f} ms")
            for base in ("lexical", "dense"):
                print(f"{'x ' + base:<8} " + " ".join(f"{mean['hybrid'][k] / max(mean[base][k], 1e-9):>6.2f}" for k in KS))


if __name__ == "__main__":
    main()
