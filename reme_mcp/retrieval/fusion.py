"""Weighted reciprocal-rank fusion: combine ranked lists whose scores are not comparable.

BM25 scores are unbounded and depend on the corpus; cosine similarities cluster in a
narrow band. Ranks are the one thing the two agree on, so each list adds
weight / (k + rank) for every id it holds. A small k lets the top of each list
dominate. k=10 with the dense list at 0.7 of BM25's weight was best on LoCoMo turns
with all-MiniLM-L6-v2, and flat around it (k 5-10, weight 0.6-0.8); see bench/locomo.py.

Ranks alone forget how far the top of the dense list stands above the rest. A paraphrase
("What seafood should I avoid?" for "allergic to shellfish") shares no word with its query,
so it is only in the dense list, and lost to memories that share one common word with the
query and sit in both. `standout` gives the dense top back what its cosines say: the English
episode cues among 6,000 memories went from R@5 0.46 to 0.83 (bench/multilingual.py --scale),
LoCoMo and MADial R@5 stayed level or rose (README "A paraphrase among many memories").
"""

from __future__ import annotations

from collections.abc import Sequence

# The dense top STANDOUT_TOP each gain STANDOUT_WEIGHT x how far their cosine is above the STANDOUT_TOP-th's
# (in fused-score units, where the top of one list is worth about 1 / (k + 1) = 0.09). Chosen on LoCoMo's and
# MADial's tune splits and the hand-written English sets: 0.3 and 5; weights 0.1-0.5 and tops 3-10 measured.
STANDOUT_WEIGHT = 0.3
STANDOUT_TOP = 5


def rrf(rankings: Sequence[tuple[Sequence[int | None], float]], k: float) -> list[tuple[int, float]]:
    """(id, fused score) best first, from (ranking, weight) pairs; ties keep first-seen order. A None holds
    a rank without an id, so a ranking can credit some of another's ids at the ranks they have there."""
    scores: dict[int, float] = {}
    for ranking, weight in rankings:
        for rank, item in enumerate(ranking, start=1):
            if item is not None:
                scores[item] = scores.get(item, 0.0) + weight / (k + rank)
    return sorted(scores.items(), key=lambda pair: pair[1], reverse=True)


def standout(
    fused: list[tuple[int, float]], dense: Sequence[tuple[int, float]], share: float = 1.0
) -> list[tuple[int, float]]:
    """`fused` (id, score) with the first STANDOUT_TOP of `dense` (id, cosine), best first, each raised by
    share x STANDOUT_WEIGHT x its cosine's lead over the last of them; best first again. `share` is the part
    the dense list has in the fusion (less where the query is in a script its model cannot read). A list
    shorter than STANDOUT_TOP has no lead to keep: over its own last memory, any one of a handful would
    stand out."""
    top = list(dense[:STANDOUT_TOP])
    if len(top) < STANDOUT_TOP or share <= 0:
        return fused
    floor = top[-1][1]
    scores = dict(fused)
    for item, cosine in top:
        scores[item] = scores.get(item, 0.0) + share * STANDOUT_WEIGHT * (cosine - floor)
    return sorted(scores.items(), key=lambda pair: pair[1], reverse=True)
