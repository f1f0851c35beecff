"""The do-no-harm gate: rank held-out cues with and without the trained cells, by the same hybrid search.

Both sides share one BM25 ranking per cue and differ only in the dense ranking they
fuse it with, so the comparison measures the cells and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from reme_mcp.cells.schemas import Scores
from reme_mcp.retrieval import hybrid
from reme_mcp.retrieval.dense import KeySpace
from reme_mcp.retrieval.lexical import match_expression
from reme_mcp.services import Services


@dataclass(frozen=True)
class Cue:
    text: str
    rowid: int  # the memory it should find


def ranks(
    services: Services,
    workspace_id: str,
    cues: list[Cue],
    vectors: np.ndarray,
    cell_vectors: np.ndarray,
    plain: KeySpace,
    cells: list[KeySpace | None],
) -> list[list[int]]:
    """1-based rank of each cue's memory under hybrid search, once per entry of `cells` (None: plain
    search); 0 when the memory is not among the candidates."""
    config = services.config.retrieval
    out: list[list[int]] = [[] for _ in cells]
    for cue, vector, cell_vector in zip(cues, vectors, cell_vectors):
        lexical = services.store.lexical(workspace_id, match_expression(cue.text), config.candidates)
        query = hybrid.Query(cue.text, vector, cell_vector)
        for column, space in zip(out, cells):
            ranked = [r.rowid for r in hybrid.fuse(lexical, plain, space, query, config.candidates, config)]
            column.append(ranked.index(cue.rowid) + 1 if cue.rowid in ranked else 0)
    return out


def scores(rank_list: list[int]) -> Scores:
    if not rank_list:
        return Scores(recall_at_1=0.0, recall_at_5=0.0, mrr=0.0)
    n = len(rank_list)
    return Scores(
        recall_at_1=round(sum(r == 1 for r in rank_list) / n, 4),
        recall_at_5=round(sum(0 < r <= 5 for r in rank_list) / n, 4),
        mrr=round(sum(1 / r for r in rank_list if r) / n, 4),
    )
