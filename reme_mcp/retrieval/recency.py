"""Recent and often-recalled memories rank a little higher.

A multiplier on the fused score, not a ranking of its own: a recency ranking fused by
rank would lift memories that do not match the query at all, while a factor of at most
1 + recency_weight + usage_weight only reorders memories that already compete. Recency
halves every `recency_half_life_days` since the memory was written; use grows with the
log of how often recall returned it, saturating at 20 recalls. Both weights at 0 switch
it off (the ranking is then exactly the fusion's).
"""

from __future__ import annotations

import math

from reme_mcp.config import RetrievalConfig
from reme_mcp.store.base import MemoryStore

_SATURATION = math.log1p(20)


def reweigh(
    store: MemoryStore, fused: list[tuple[int, float]], config: RetrievalConfig, now: float
) -> list[tuple[int, float]]:
    """`fused` (rowid, score) re-sorted by score x (1 + recency + use)."""
    if not fused or (config.recency_weight == 0 and config.usage_weight == 0):
        return fused
    stats = store.usage([rowid for rowid, _ in fused])
    half_life = config.recency_half_life_days * 86_400.0
    weighed = []
    for rowid, score in fused:
        created, count = stats.get(rowid, (now, 0))
        recent = 0.5 ** (max(0.0, now - created) / half_life)
        used = min(1.0, math.log1p(count) / _SATURATION)
        weighed.append((rowid, score * (1.0 + config.recency_weight * recent + config.usage_weight * used)))
    weighed.sort(key=lambda pair: pair[1], reverse=True)
    return weighed
