"""Hybrid retrieval: BM25 and dense cosine (and trained cells, when on), fused by rank.

Dense search alone misses exact names, ids and rare words; BM25 alone misses
paraphrases. Fusing the two beats either on conversational memory (bench/locomo.py), and the dense
top keeps its lead over the rest (fusion.standout), so a paraphrase is not lost to common words.
Trained cells add a third ranking from a multilingual encoder (bench/episodic.py);
with them on, the English embedding model's ranking counts only in proportion to the
Latin letters of the query, since it reads nothing else, and the cells' weight grows
with the letters it cannot read (FOREIGN_QUERY_BOOST). Untrained, the memories mostly in
another script (Chinese, Russian) have the same encoder's keys, and their cosine takes
their place in the dense ranking, whose weight grows the same way (bench/multilingual.py).
A query in such a script ranks every memory by those keys, English ones included: it is
the only way such a query finds an English memory (bench/data/recall-en.json); the English
ones count a little less there (OTHER_SCRIPT_MARGIN), so that in a big English workspace
they do not crowd out the memories in the query's own script. An English query's BM25 cannot
match a memory in another script, so its dense rank also stands in for BM25 (STAND_IN_WEIGHT).
In a thread, a memory also gets part of its reply's score and of its thread's other matches (threads.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from reme_mcp.config import RetrievalConfig
from reme_mcp.retrieval import recency, threads
from reme_mcp.retrieval.dense import KeySpace
from reme_mcp.retrieval.fusion import rrf, standout
from reme_mcp.retrieval.lexical import match_expression, words
from reme_mcp.retrieval.scripts import FOREIGN_BELOW, latin_share
from reme_mcp.store.base import MemoryStore, Scope, VectorSpace

# A long query (a whole dialogue) shares some words with nearly every memory, so BM25's ranking turns to
# noise while the dense one gains context: the dense weight grows with the query's words, from 1x at
# LONG_QUERY_WORDS to at most LONG_QUERY_BOOST x (LoCoMo questions: 1x; MADial dialogues: about 1.7x).
LONG_QUERY_WORDS = 25
LONG_QUERY_BOOST = 1.7
# A query the English model cannot read is matched by BM25 on character pairs or word stems, far weaker than the
# multilingual keys on a paraphrase (bench/multilingual.py: BM25 R@5 0.75, multilingual dense 0.98 in Russian),
# so the dense side's weight grows with the query's non-Latin letters, up to 1 + FOREIGN_QUERY_BOOST times.
FOREIGN_QUERY_BOOST = 3.0
# A query in another script ranks the English memories by their multilingual keys too (the only way it finds
# them), but thousands of English memories would crowd out the few in the query's own script. Their cosine
# counts this much less: among 6,000 memories, Russian R@5 0.61 -> 0.72 and Chinese 0.80 -> 0.83
# (bench/multilingual.py --scale). A larger margin costs the questions across scripts in a workspace that
# holds all three languages (--together: cross-lingual R@5 0.78 at 0 and at 0.05, 0.56 at 0.1).
OTHER_SCRIPT_MARGIN = 0.05
# The other way round, BM25 cannot match an English query to a Chinese or Russian memory at all, so among
# thousands of English memories that BM25 ranks, the one that answers it seldom reached the top 5. Such memories
# are also credited, at this share of BM25's weight, at the rank their keys have in the dense ranking: among
# 6,000 memories, R@5 of English questions 0.00 -> 0.33 for Chinese memories and 0.17 -> 0.50 for Russian ones
# (bench/multilingual.py --scale). More costs English questions their English memories in a workspace of
# all three languages (--together: R@5 1.00 at 0.3, 0.80 at 0.5).
STAND_IN_WEIGHT = 0.3


@dataclass(frozen=True)
class Ranked:
    rowid: int
    score: float
    similarity: float


@dataclass(frozen=True)
class Query:
    """A query as each ranking needs it: words for BM25, one vector per key space."""

    text: str
    vector: np.ndarray | None  # the embedding model's
    cell_vector: np.ndarray | None = None  # the cell encoder's, when the workspace's cells are on


def length_boost(text: str) -> float:
    """How much more the dense ranking counts for a query this long (see LONG_QUERY_WORDS)."""
    return min(LONG_QUERY_BOOST, max(1.0, len(words(text)) / LONG_QUERY_WORDS))


def search(
    store: MemoryStore,
    plain: VectorSpace,
    cells: KeySpace | None,
    workspace_id: str,
    query: Query,
    top_k: int,
    config: RetrievalConfig,
    scope: Scope | None = None,
    now: float | None = None,
) -> list[Ranked]:
    """The best `top_k` active memories of a workspace inside `scope`, best first, with fused score and cosine.

    `plain` and `cells` are the workspace's key spaces (DenseIndex.spaces). The scope is applied by every
    ranking before it ranks, so a filter never leaves out a memory that matches it.
    """
    scope = scope or Scope()
    allowed = store.scope_rowids(workspace_id, scope) if scope.narrows else None
    lexical: list[tuple[int, float]] = []
    if config.mode != "dense":
        lexical = store.lexical(workspace_id, match_expression(query.text), max(config.candidates, top_k), scope)

    def reweigh(fused: list[tuple[int, float]]) -> list[tuple[int, float]]:
        if config.mode == "hybrid":
            fused = threads.reweigh(store, workspace_id, fused, scope)
        return recency.reweigh(store, fused, config, time.time() if now is None else now)

    return fuse(lexical, plain, cells, query, top_k, config, list(scope.types) or None, allowed, reweigh)


def fuse(
    lexical: list[tuple[int, float]],
    plain: VectorSpace,
    cells: KeySpace | None,
    query: Query,
    top_k: int,
    config: RetrievalConfig,
    types: list[str] | None = None,
    allowed: np.ndarray | None = None,
    reweigh: Callable[[list[tuple[int, float]]], list[tuple[int, float]]] | None = None,
) -> list[Ranked]:
    """Fuse a BM25 ranking with the dense rankings (the gate reuses one BM25 ranking for several spaces)."""
    depth = max(config.candidates, top_k)
    semantic: list[tuple[int, float]] = []
    cellular: list[tuple[int, float]] = []
    other_script: set[int] = set()  # memories ranked by their multilingual keys alone, for an English query
    latin = latin_share(query.text)
    own, cells = cells, key_space(cells, query.text)
    if config.mode != "lexical" and query.vector is not None:
        semantic = plain.search(query.vector, depth, types, allowed)
    if config.mode != "lexical" and cells is not None and query.cell_vector is not None:
        cellular = cells.search(query.cell_vector, depth, types, allowed)
        if own is not None and own is not cells:  # the wider space: every memory, for a query in another script
            cellular = _prefer_own_script(own, own.search(query.cell_vector, depth, types, allowed), cellular)
    if cells is not None and cells.adapter is None:
        # Untrained multilingual keys belong to the memories the English model cannot read (its ranking of
        # them is noise): they are ranked by their multilingual cosine in one dense ranking with the rest,
        # whose cosines are on a like scale, and the English model's part drops out for a query it cannot read.
        _, keyed = cells.locate(np.array([r for r, _ in semantic], dtype=np.int64))
        native = [hit for hit, foreign in zip(semantic, keyed) if not foreign]
        other_script = {r for r, _ in cellular} if latin >= FOREIGN_BELOW else set()
        semantic = sorted((native if latin >= FOREIGN_BELOW else []) + cellular, key=lambda hit: -hit[1])[:depth]
        cellular = []
    if config.mode == "hybrid":
        # With trained cells, the English model's ranking fades with the non-Latin letters of the query or
        # of the workspace, and the multilingual cells' weight grows: 0.7 each for English, 0 and 2.8 for
        # Chinese or Russian, whichever language the query is in. Untrained multilingual keys are part of
        # the dense ranking, whose weight grows the same way.
        dense_weight = config.dense_weight * length_boost(query.text)
        rankings = [([r for r, _ in lexical], 1.0)]
        share = 1.0  # how much the dense ranking's cosines count (standout)
        if cells is not None and cells.adapter is None:
            rankings.append(([r for r, _ in semantic], dense_weight * _foreign_boost(latin)))
            if other_script:  # BM25 cannot match them to the query: their dense rank stands in for it
                rankings.append(([r if r in other_script else None for r, _ in semantic], STAND_IN_WEIGHT))
        else:
            latin = share = min(latin, cells.adapter.latin) if cells is not None and cellular else 1.0
            rankings.append(([r for r, _ in semantic], dense_weight * latin))
            if cellular:
                rankings.append(([r for r, _ in cellular], config.cells_weight * _foreign_boost(latin)))
        fused = standout(rrf(rankings, k=config.rrf_k), semantic, share)
    else:
        fused = lexical or semantic
        if not lexical and cellular:
            fused = rrf([([r for r, _ in cellular], 1.0), ([r for r, _ in semantic], 1.0)], k=config.rrf_k)
    if reweigh is not None:
        fused = reweigh(fused)
    fused = fused[:top_k]
    # The similarity shown is the cells' cosine where there is one (it reads every language), else the model's.
    cosine = dict(semantic)
    missing = [r for r, _ in fused if r not in cosine]
    if missing and query.vector is not None:
        cosine.update(plain.similarities(query.vector, missing))
    if cells is not None and query.cell_vector is not None:
        from_cells = dict(cellular)
        cosine.update(from_cells)
        cosine.update(cells.similarities(query.cell_vector, [r for r, _ in fused if r not in from_cells]))
    return [Ranked(rowid=r, score=s, similarity=cosine.get(r, 0.0)) for r, s in fused]


def key_space(cells: KeySpace | None, text: str) -> KeySpace | None:
    """The key space a query searches beside the memory vectors: the wider one, every memory with keys, for
    a query the English model cannot read; None when it holds no memory (an English query in a workspace
    whose only keys are its English memories'), so the query need not be encoded for it."""
    if cells is not None and cells.wider is not None and latin_share(text) < FOREIGN_BELOW:
        return cells.wider
    return cells if cells is not None and len(cells.rowids) else None


def _prefer_own_script(
    own: KeySpace, in_script: list[tuple[int, float]], every: list[tuple[int, float]]
) -> list[tuple[int, float]]:
    """One ranking of a query in another script over every memory's keys: the memories of `own` (those the
    English model cannot read) at their cosine, the English ones OTHER_SCRIPT_MARGIN lower, best first.
    `in_script` is `own`'s own ranking, so none of them falls out below the depth of `every`."""
    _, theirs = own.locate(np.array([r for r, _ in every], dtype=np.int64))
    merged = dict(in_script) | {r: c - OTHER_SCRIPT_MARGIN for (r, c), mine in zip(every, theirs) if not mine}
    return sorted(merged.items(), key=lambda hit: -hit[1])[: len(every)]


def _foreign_boost(latin: float) -> float:
    """How much more the multilingual ranking counts for a query with this share of Latin letters."""
    return 1.0 + FOREIGN_QUERY_BOOST * (1.0 - latin)
