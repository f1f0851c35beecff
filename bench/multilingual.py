"""Recall in Chinese and Russian through the real `recall` flow, next to BM25-only and dense-only.

    python bench/multilingual.py [bench/data/recall-zh.json bench/data/recall-ru.json] [key=value ...]

Each file is a small hand-written set: Chinese and Russian have 80 memories about one
user and 60 queries that mostly paraphrase them, 6 of them asked in English; English
(`recall-en.json`, not run by default) has 30 memories and 30 queries, 20 of them
asked in Chinese or Russian. Its memories go into one workspace through `remember`;
every query goes through `recall`; recall@k is the share of the query's relevant
memories among the first k. Queries asked in the memories' language and the
cross-lingual ones are reported apart.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import anyio

from reme_mcp import ReMeApp

KS = (1, 5, 10)
MODES = ("hybrid", "lexical", "dense")
DEFAULT_SETS = [Path(__file__).parent / "data" / f"recall-{language}.json" for language in ("zh", "ru")]
OVERRIDES: list[str] = []


async def run(store_dir: Path, data: dict) -> dict[str, dict[str, dict[int, float]]]:
    """{mode: {"native" | "cross-lingual": {k: recall@k}}}"""
    out: dict[str, dict[str, dict[int, float]]] = {}
    async with ReMeApp(*OVERRIDES, store_dir=str(store_dir), log_level="WARNING") as app:
        for memory in data["memories"]:
            await app.async_execute("remember", text=memory["text"], metadata={"id": memory["id"]})
    for mode in MODES:
        scores: dict[str, dict[int, list[float]]] = {g: {k: [] for k in KS} for g in ("native", "cross-lingual")}
        async with ReMeApp(*OVERRIDES, store_dir=str(store_dir), log_level="WARNING", retrieval__mode=mode) as app:
            for q in data["queries"]:
                result = await app.async_execute("recall", query=q["query"], top_k=max(KS))
                ranked = [hit["metadata"]["id"] for hit in result.metadata["memories"]]
                group = scores["cross-lingual" if q.get("cross_lingual") else "native"]
                for k in KS:
                    group[k].append(len(set(q["relevant"]) & set(ranked[:k])) / len(q["relevant"]))
        out[mode] = {g: {k: sum(v) / max(len(v), 1) for k, v in ks.items()} for g, ks in scores.items()}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("items", nargs="*", help="labelled sets (JSON), then configuration key=value")
    args = parser.parse_args()
    sets = [Path(a) for a in args.items if "=" not in a] or DEFAULT_SETS
    OVERRIDES.extend(a for a in args.items if "=" in a)
    print(f"{'set':<6} {'queries':<20} {'mode':<8} " + " ".join(f"{'R@' + str(k):>6}" for k in KS))
    for path in sets:
        data = json.loads(path.read_text(encoding="utf-8"))
        counts = {"native": sum(not q.get("cross_lingual") for q in data["queries"])}
        counts["cross-lingual"] = len(data["queries"]) - counts["native"]
        with tempfile.TemporaryDirectory() as tmp:
            results = anyio.run(run, Path(tmp), data)
        for group in ("native", "cross-lingual"):
            for mode in MODES:
                label = f"{group} ({counts[group]})"
                print(f"{data['language']:<6} {label:<20} {mode:<8} "
                      + " ".join(f"{results[mode][group][k]:>6.3f}" for k in KS))
        print(file=sys.stderr)


if __name__ == "__main__":
    main()
