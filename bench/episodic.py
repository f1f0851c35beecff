"""Trained cells against plain search, on cues training never saw.

    python bench/episodic.py bench/data/episodes/*.json [--locomo ../shared/data/locomo/locomo-dev.json] [key=value ...]

For each data set, in one run, on one store:
  (a) plain   - the `recall` flow in a workspace holding the episodes, untrained (hybrid BM25 + dense);
  (b) keyword - cosine of the cue with the episode's keywords alone, as the original ReMemory ranks
                (with the multilingual cell encoder; not for LoCoMo, whose only keyword is the speaker);
  (c) cells   - the `recall` flow after `train_memory` (what a user gets: the gate may have kept
                plain search), and (c*) the trained cells forced on, so the table shows what
                training learned even when the gate refused it.
Cues are the data set's paraphrases, questions and cross-lingual questions: written by hand,
never shown to training (training makes its own cues from the episodes). recall@k = share of
cues whose episode is among the first k. The ratio column is (c)/(a) at recall@1.

LoCoMo (CC BY-NC, read from its path, never copied): each session observation is an
episode (text `(<session date>) <observation>`, keyword: the speaker), each question with
evidence is a cue, and a hit is any episode from one of its evidence turns.
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
import numpy as np

from reme_mcp import ReMeApp
from reme_mcp.cells.gate import Cue, ranks
from reme_mcp.retrieval.dense import KeySpace, load_cells

TOP = 10


def hand_written(path: Path) -> tuple[str, list[dict], list[tuple[str, str, set[str]]]]:
    data = json.loads(path.read_text(encoding="utf-8"))
    cues = [(c["kind"], c["cue"], {c["answer"]}) for c in data["cues"]]
    return data.get("language", path.stem), data["episodes"], cues


def locomo(path: Path) -> list[tuple[str, list[dict], list[tuple[str, str, set[str]]]]]:
    sets = []
    for n, sample in enumerate(json.loads(path.read_text())):
        conversation, episodes = sample["conversation"], []
        for key, by_speaker in sample["observation"].items():
            date = conversation.get(key.replace("_observation", "_date_time"), "")
            for speaker, items in by_speaker.items():
                for i, (text, dia_id) in enumerate(items):
                    ids = dia_id if isinstance(dia_id, list) else [dia_id]
                    episodes.append({
                        "id": f"{key}-{speaker}-{i}".replace(" ", "_")[:120], "keywords": speaker,
                        "text": f"({date}) {text}", "metadata": {"dia_ids": ids},
                    })
        by_turn = defaultdict(set)
        for e in episodes:
            for dia_id in e["metadata"]["dia_ids"]:
                by_turn[dia_id].add(e["id"])
        cues = []
        for q in sample["qa"]:
            wanted = set()
            for item in q.get("evidence") or []:
                for dia_id in re.split(r"[;,\s]+", item):
                    wanted |= by_turn.get(dia_id, set())
            if wanted:
                cues.append((f"category-{q.get('category')}", q["question"], wanted))
        sets.append((f"locomo-{n}", episodes, cues))
    return sets


def first_rank(ranked: list[str], wanted: set[str]) -> int:
    return next((i + 1 for i, memory_id in enumerate(ranked) if memory_id in wanted), 0)


async def run_set(app: ReMeApp, name: str, episodes: list[dict], cues: list) -> dict[str, list[int]]:
    plain_ws, cells_ws = f"{name}-plain", f"{name}-cells"
    for e in episodes:
        await app.async_execute("remember", text=e["text"], keywords=e.get("keywords", ""), workspace_id=plain_ws,
                                metadata={"id": e["id"]})
    started = time.perf_counter()
    trained = await app.async_execute("train_memory", episodes=episodes, workspace_id=cells_ws)
    seconds = time.perf_counter() - started
    gate = trained.metadata
    print(f"{name}: {len(episodes)} episodes, {len(cues)} cues; trained in {seconds:.1f} s; gate "
          f"{'ON' if gate['enabled'] else 'off'} (held-out MRR plain {gate['plain']['mrr']:.3f}, adapter {'on' if gate['adapter_on'] else 'off'} "
          f"vs cells {max(gate['keys_only']['mrr'], gate['adapted']['mrr']):.3f})", file=sys.stderr)

    services = await app.services()
    embedder = services.embedder
    cue_vectors = embedder.encode([c[1] for c in cues])
    # ReMemory ranks by keywords alone; we give it the multilingual encoder, so Russian and Chinese are fair.
    keyword_cues = services.cell_encoder.encode([c[1] for c in cues])
    keyword_vectors = services.cell_encoder.encode([e.get("keywords") or e["text"][:60] for e in episodes])
    ids = [e["id"] for e in episodes]
    out: dict[str, list[int]] = defaultdict(list)
    for (kind, cue, wanted), vector in zip(cues, keyword_cues):
        plain = await app.async_execute("recall", query=cue, top_k=TOP, workspace_id=plain_ws)
        out["a"].append(first_rank([m["metadata"]["id"] for m in plain.metadata["memories"]], wanted))
        order = np.argsort(-(keyword_vectors @ vector))[:TOP]
        out["b"].append(first_rank([ids[i] for i in order], wanted))
        cells = await app.async_execute("recall", query=cue, top_k=TOP, workspace_id=cells_ws)
        out["c"].append(first_rank([m["id"] for m in cells.metadata["memories"]], wanted))
        out[f"kind:{kind}"].append(len(out["a"]) - 1)
        if not name.startswith("locomo"):  # cells_weight was chosen on odd-numbered episodes' cues only
            number = int(sorted(wanted)[0].rsplit("-", 1)[1])
            out["split:" + ("odd (tuned on)" if number % 2 else "even (untouched)")].append(len(out["a"]) - 1)
    # (c*): the trained cells forced on, ranked by the same hybrid search the gate uses.
    plain_space = KeySpace.plain(*services.store.vectors(cells_ws))
    forced = load_cells(services.store, plain_space, cells_ws, services.cell_encoder.model_id, force=True)
    by_id = {m.id: r for r, m in services.store.fetch([int(r) for r in forced.rowids]).items()}
    cell_vectors = services.cell_encoder.encode([c[1] for c in cues])
    # A cue with several right answers is ranked once per answer; its rank is the best of them.
    owner, targets = [], []
    for i, (_, cue, wanted) in enumerate(cues):
        for memory_id in sorted(wanted):
            owner.append(i)
            targets.append(Cue(text=cue, rowid=by_id[memory_id]))
    [per_answer] = ranks(services, cells_ws, targets, cue_vectors[owner], cell_vectors[owner], plain_space, [forced])
    best = [0] * len(cues)
    for i, rank in zip(owner, per_answer):
        if rank and (best[i] == 0 or rank < best[i]):
            best[i] = rank
    out["c*"] = best
    return out


def at(ranks_: list[int], k: int) -> float:
    return sum(0 < r <= k for r in ranks_) / max(len(ranks_), 1)


def report(name: str, result: dict[str, list[int]]) -> None:
    rows = [("a", "plain hybrid"), ("b", "keywords only"), ("c", "cells (as served)"), ("c*", "cells (forced on)")]
    if name.startswith("locomo"):  # its only keyword would be the speaker: nothing to rank by
        rows.remove(("b", "keywords only"))
    print(f"\n{name}  ({len(result['a'])} cues)")
    print(f"  {'':<20} {'R@1':>6} {'R@5':>6} {'R@10':>6}")
    for key, label in rows:
        print(f"  {label:<20} {at(result[key], 1):6.3f} {at(result[key], 5):6.3f} {at(result[key], 10):6.3f}")
    base = at(result["a"], 1)
    print(f"  ratio (c)/(a) R@1 {at(result['c'], 1) / base if base else float('nan'):.3f}   "
          f"(c*)/(a) R@1 {at(result['c*'], 1) / base if base else float('nan'):.3f}")
    groups = sorted(k for k in result if k.startswith(("kind:", "split:")))
    for group in groups:
        picks = result[group]
        line = "  ".join(f"{key} {at([result[key][i] for i in picks], 1):.3f}" for key, _ in rows)
        print(f"    R@1 {group.split(':', 1)[1]:<16} n={len(picks):<4} {line}")


async def main_async(args: argparse.Namespace) -> None:
    sets = [hand_written(p) for p in args.data]
    if args.locomo:
        sets += locomo(args.locomo)
    with tempfile.TemporaryDirectory() as tmp:
        async with ReMeApp(*args.overrides, store_dir=tmp, log_level="WARNING") as app:
            merged: dict[str, list[int]] = defaultdict(list)
            for name, episodes, cues in sets:
                result = await run_set(app, name, episodes, cues)
                report(name, result)
                if name.startswith("locomo"):
                    for key in ("a", "c", "c*"):
                        merged[key] += result[key]
            if merged:
                report("locomo (all conversations)", merged)
            print("\n(b) ranks by keywords alone with the multilingual cell encoder, as ReMemory ranks by keywords.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", type=Path, nargs="*", help="hand-written sets (bench/data/episodes/*.json)")
    parser.add_argument("--locomo", type=Path, help="locomo-dev.json; observations become episodes")
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="key=value configuration")
    anyio.run(main_async, parser.parse_args())


if __name__ == "__main__":
    main()
