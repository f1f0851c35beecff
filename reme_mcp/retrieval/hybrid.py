"""Hybrid retrieval: BM25 and dense cosine, fused by rank.

Dense search alone misses exact names, ids and rare words; BM25 alone misses
paraphrases. Fusing the two beats either on conversational memory (bench/locomo.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from reme_mcp.config import RetrievalConfig
from reme_mcp.retrieval.dense import DenseIndex
from reme_mcp.retrieval.fusion import rrf
from reme_mcp.retrieval.lexical import match_expression
from reme_mcp.store.base import MemoryStore


@dataclass(frozen=True)
class Ranked:
    rowid: int
    score: float
    similarity: float


def search(
    store: MemoryStore,
    dense: DenseIndex,
    workspace_id: str,
    query: str,
    query_vector: np.ndarray | None,
    top_k: int,
    config: RetrievalConfig,
    types: list[str] | None = None,
) -> list[Ranked]:
    """The best `top_k` active memories of a workspace (of `types`), best first, with fused score and cosine."""
    depth = max(config.candidates, top_k)
    lexical: list[tuple[int, float]] = []
    semantic: list[tuple[int, float]] = []
    if config.mode != "dense":
        lexical = store.lexical(workspace_id, match_expression(query), depth, types)
    if config.mode != "lexical" and query_vector is not None:
        semantic = dense.search(workspace_id, query_vector, depth, types)
    if config.mode == "hybrid":
        rankings = [([r for r, _ in lexical], 1.0), ([r for r, _ in semantic], config.dense_weight)]
        fused = rrf(rankings, k=config.rrf_k)
    else:
        fused = lexical or semantic
    fused = fused[:top_k]
    cosine = dict(semantic)
    missing = [r for r, _ in fused if r not in cosine]
    if missing and query_vector is not None:
        cosine.update(dense.similarities(workspace_id, query_vector, missing))
    return [Ranked(rowid=r, score=s, similarity=cosine.get(r, 0.0)) for r, s in fused]
