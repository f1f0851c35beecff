"""Exact cosine search over a workspace's vectors, cached per process.

The matrix of a workspace is read from the store once and kept until the store's
fingerprint (count, max rowid) of that workspace changes, which also catches writes
made by another process on the same file. A brute-force scan is exact and, at the
sizes one workspace has today, fast (a 10k x 384 scan is well under a millisecond).
"""

from __future__ import annotations

import threading

import numpy as np

from reme_mcp.store.base import MEMORY_TYPES, MemoryStore


class DenseIndex:
    def __init__(self, store: MemoryStore):
        self.store = store
        self._cache: dict[str, tuple[tuple[int, int], np.ndarray, np.ndarray, np.ndarray]] = {}
        self._lock = threading.Lock()

    def _matrix(self, workspace_id: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        fingerprint = self.store.fingerprint(workspace_id)
        with self._lock:
            cached = self._cache.get(workspace_id)
            if cached is not None and cached[0] == fingerprint:
                return cached[1], cached[2], cached[3]
        rowids, matrix, kinds = self.store.vectors(workspace_id)
        with self._lock:
            self._cache[workspace_id] = (fingerprint, rowids, matrix, kinds)
        return rowids, matrix, kinds

    def search(
        self, workspace_id: str, query: np.ndarray, limit: int, types: list[str] | None = None
    ) -> list[tuple[int, float]]:
        """(rowid, cosine) best first, over active memories of `types` (all types when None)."""
        rowids, matrix, kinds = self._matrix(workspace_id)
        keep = np.isin(kinds, types or list(MEMORY_TYPES))
        if not keep.any():
            return []
        rowids, matrix = rowids[keep], matrix[keep]
        scores = matrix @ query.astype(np.float32)
        limit = min(limit, len(scores))
        top = np.argpartition(-scores, limit - 1)[:limit]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [(int(rowids[i]), float(scores[i])) for i in top]

    def similarities(self, workspace_id: str, query: np.ndarray, rowids: list[int]) -> dict[int, float]:
        """Cosine of the query with each given memory (for hits that came from BM25 only)."""
        all_rowids, matrix, _ = self._matrix(workspace_id)  # sorted by rowid, so a binary search finds each
        if len(all_rowids) == 0 or not rowids:
            return {}
        wanted = np.asarray(rowids, dtype=np.int64)
        slots = np.minimum(np.searchsorted(all_rowids, wanted), len(all_rowids) - 1)
        present = all_rowids[slots] == wanted
        scores = matrix[slots[present]] @ query.astype(np.float32)
        return {int(r): float(s) for r, s in zip(wanted[present], scores)}
