"""Weighted reciprocal-rank fusion: combine ranked lists whose scores are not comparable.

BM25 scores are unbounded and depend on the corpus; cosine similarities cluster in a
narrow band. Ranks are the one thing the two agree on, so each list adds
weight / (k + rank) for every id it holds. A small k lets the top of each list
dominate. k=10 with the dense list at 0.7 of BM25's weight was best on LoCoMo turns
with all-MiniLM-L6-v2, and flat around it (k 5-10, weight 0.6-0.8); see bench/locomo.py.
"""

from __future__ import annotations

from collections.abc import Sequence


def rrf(rankings: Sequence[tuple[Sequence[int | None], float]], k: float) -> list[tuple[int, float]]:
    """(id, fused score) best first, from (ranking, weight) pairs; ties keep first-seen order. A None holds
    a rank without an id, so a ranking can credit some of another's ids at the ranks they have there."""
    scores: dict[int, float] = {}
    for ranking, weight in rankings:
        for rank, item in enumerate(ranking, start=1):
            if item is not None:
                scores[item] = scores.get(item, 0.0) + weight / (k + rank)
    return sorted(scores.items(), key=lambda pair: pair[1], reverse=True)
