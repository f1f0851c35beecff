"""Recall in Chinese and Russian through the real `recall` flow, next to BM25-only and dense-only.

    python bench/multilingual.py [bench/data/recall-zh.json bench/data/recall-ru.json] [key=value ...]
    python bench/multilingual.py bench/data/recall-en.json --scale ../shared/data/locomo/locomo-dev.json [--size 6000]
    python bench/multilingual.py bench/data/episodes/en.json --scale ../shared/data/locomo/locomo-dev.json

Each file is a small hand-written set: Chinese and Russian have 80 memories about one
user and 60 queries that mostly paraphrase them, 6 of them asked in English; English
(`recall-en.json`, not run by default) has 30 memories and 30 queries, 20 of them
asked in Chinese or Russian. An episode set of bench/episodic.py works too: each episode
is a memory (with its keywords), each cue a query, the English questions about Chinese
or Russian episodes the cross-lingual ones. Its memories go into one workspace through `remember`;
every query goes through `recall`; recall@k is the share of the query's relevant
memories among the first k. Queries asked in the memories' language and the
cross-lingual ones are reported apart.

With --scale, the set's memories share their workspace with LoCoMo turns (CC BY-NC,
read from its path, never copied) up to --size memories, and each query is timed:
recall@k among that many distractors, and recall p50 / p95 with the native queries'
p50 as the baseline. The first query in another script keys the workspace's English
memories (the first 500 while it waits, the rest in the background; see
reme_mcp/episodic/keying.py): its time and the background's are printed apart, and the
timed rounds follow them.

With --together, the sets given share one workspace (ids prefixed by language), so a
query is asked among the memories in every language at once; each set's queries are
reported apart.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import anyio
from harness import percentile
from locomo import turns

from reme_mcp import ReMeApp
from reme_mcp.retrieval.scripts import foreign

KS = (1, 5, 10)
MODES = ("hybrid", "lexical", "dense")
DEFAULT_SETS = [Path(__file__).parent / "data" / f"recall-{language}.json" for language in ("zh", "ru")]
OVERRIDES: list[str] = []


def group_of(query: dict) -> str:
    """native or cross-lingual, after the language of the query's set when sets share a workspace."""
    kind = "cross-lingual" if query.get("cross_lingual") else "native"
    return f"{query['set']} {kind}" if "set" in query else kind


def groups_of(data: dict) -> dict[str, int]:
    """{group: number of queries}, in the order the set first asks them."""
    return dict(Counter(group_of(query) for query in data["queries"]))


def recall_at(query: dict, ranked: list, k: int) -> float:
    """The share of the query's relevant memories among the first k of `ranked` (memory ids)."""
    return len(set(query["relevant"]) & set(ranked[:k])) / len(query["relevant"])


def labelled(data: dict) -> dict:
    """A set as memories and queries; an episode set (bench/data/episodes) as its episodes and cues."""
    if "episodes" not in data:
        return data
    keywords = {e["id"]: [k.strip() for k in e.get("keywords", "").split(",") if k.strip()] for e in data["episodes"]}
    return {
        "language": data["language"],
        "memories": [{"id": e["id"], "text": e["text"], "keywords": keywords[e["id"]]} for e in data["episodes"]],
        "queries": [{"query": c["cue"], "relevant": [c["answer"]], "cross_lingual": c["kind"] == "cross-lingual"}
                    for c in data["cues"]],
    }


async def remember_set(app: ReMeApp, data: dict) -> None:
    for memory in data["memories"]:
        await app.async_execute("remember", text=memory["text"], keywords=memory.get("keywords", []),
                                metadata={"id": memory["id"]})


async def run(store_dir: Path, data: dict) -> dict[str, dict[str, dict[int, float]]]:
    """{mode: {group (see group_of): {k: recall@k}}}"""
    out: dict[str, dict[str, dict[int, float]]] = {}
    async with ReMeApp(*OVERRIDES, store_dir=str(store_dir), log_level="WARNING") as app:
        await remember_set(app, data)
    for mode in MODES:
        scores: dict[str, dict[int, list[float]]] = {g: {k: [] for k in KS} for g in groups_of(data)}
        async with ReMeApp(*OVERRIDES, store_dir=str(store_dir), log_level="WARNING", retrieval__mode=mode) as app:
            for q in data["queries"]:
                result = await app.async_execute("recall", query=q["query"], top_k=max(KS))
                ranked = [hit["metadata"]["id"] for hit in result.metadata["memories"]]
                for k in KS:
                    scores[group_of(q)][k].append(recall_at(q, ranked, k))
        out[mode] = {g: {k: sum(v) / max(len(v), 1) for k, v in ks.items()} for g, ks in scores.items()}
    return out


async def at_scale(store_dir: Path, data: dict, filler: list[str], rounds: int = 5) -> None:
    """Recall@k and latency of the set's queries in a workspace padded with `filler` memories."""
    started = time.perf_counter()
    async with ReMeApp(*OVERRIDES, store_dir=str(store_dir), log_level="WARNING") as app:
        await remember_set(app, data)
        for text in filler:
            await app.async_execute("remember", text=text)
    size = len(data["memories"]) + len(filler)
    print(f"{size:,} memories written in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    groups = {g: [q for q in data["queries"] if group_of(q) == g] for g in groups_of(data)}
    async with ReMeApp(*OVERRIDES, store_dir=str(store_dir), log_level="WARNING") as app:
        async def ask(q: dict) -> tuple[float, list]:
            t = time.perf_counter()
            result = await app.async_execute("recall", query=q["query"], top_k=max(KS))
            return time.perf_counter() - t, [hit["metadata"].get("id") for hit in result.metadata["memories"]]

        for q in data["queries"][:1]:  # models loaded and vectors read before anything is timed
            await ask(q)
        other = [q for q in data["queries"] if foreign(q["query"])][:1]
        if other:  # it keys the English memories: a batch while it waits, the rest in the background
            first = (await ask(other[0]))[0]
            started = time.perf_counter()
            await anyio.to_thread.run_sync((await app.services()).bridge.wait)
            print(f"first query in another script: {first:.1f} s; "
                  f"the rest keyed in the background in {time.perf_counter() - started:.0f} s")
        p50: dict[str, float] = {}
        for group, queries in groups.items():
            times, found = [], {k: [] for k in KS}
            for n in range(rounds):
                for q in queries:
                    seconds, ranked = await ask(q)
                    times.append(seconds * 1000)
                    if n == 0:
                        for k in KS:
                            found[k].append(recall_at(q, ranked, k))
            if not times:
                continue
            p50[group] = percentile(times, 50)
            baseline = next(iter(p50))  # the first group asked: the native queries of the first set
            print(f"{data['language']:<6} {group + f' ({len(queries)})':<24} at {size:,}: "
                  + " ".join(f"R@{k} {sum(v) / len(v):.3f}" for k, v in found.items())
                  + f"  p50 {p50[group]:.1f} ms  p95 {percentile(times, 95):.1f} ms"
                  + (f"  x {baseline} p50 {p50[group] / p50[baseline]:.2f}" if group != baseline else ""))


def together(sets: list[dict]) -> dict:
    """The sets as one: every memory in one workspace, ids prefixed by the set's language."""
    def tag(data: dict, ident: str) -> str:
        return f"{data['language']}:{ident}"

    return {
        "language": "+".join(d["language"] for d in sets),
        "memories": [{**m, "id": tag(d, m["id"])} for d in sets for m in d["memories"]],
        "queries": [
            {**q, "relevant": [tag(d, r) for r in q["relevant"]], "set": d["language"]} for d in sets for q in d["queries"]
        ],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("items", nargs="*", help="labelled sets (JSON), then configuration key=value")
    parser.add_argument("--scale", type=Path, help="LoCoMo JSON whose turns pad the workspace (see above)")
    parser.add_argument("--size", type=int, default=6000, help="memories in the padded workspace (default 6000)")
    parser.add_argument("--together", action="store_true", help="one workspace for all the sets (see above)")
    args = parser.parse_args()
    paths = [Path(a) for a in args.items if "=" not in a] or DEFAULT_SETS
    OVERRIDES.extend(a for a in args.items if "=" in a)
    sets = [labelled(json.loads(path.read_text(encoding="utf-8"))) for path in paths]
    if args.together:
        sets = [together(sets)]
    if args.scale:
        pool = [text for conversation in json.loads(args.scale.read_text(encoding="utf-8"))
                for _, text, _ in turns(conversation)]
        for data in sets:
            count = max(0, args.size - len(data["memories"]))  # the pool repeats, each copy told apart by a suffix
            filler = [pool[i % len(pool)] + (f" ({i // len(pool)})" if i >= len(pool) else "") for i in range(count)]
            with tempfile.TemporaryDirectory() as tmp:
                anyio.run(at_scale, Path(tmp), data, filler)
        return
    print(f"{'set':<6} {'queries':<24} {'mode':<8} " + " ".join(f"{'R@' + str(k):>6}" for k in KS))
    for data in sets:
        with tempfile.TemporaryDirectory() as tmp:
            results = anyio.run(run, Path(tmp), data)
        for group, count in groups_of(data).items():
            for mode in MODES:
                label = f"{group} ({count})"
                print(f"{data['language']:<6} {label:<24} {mode:<8} "
                      + " ".join(f"{results[mode][group][k]:>6.3f}" for k in KS))
        print(file=sys.stderr)


if __name__ == "__main__":
    main()
