"""Exact cosine search over a workspace's keys, cached per process.

Every memory is reached by its own vector (the configured embedding model). In a
workspace whose trained cells are on (reme_mcp/cells) there is a second key space:
each memory's cell keys in the multilingual cell encoder's space, searched with the
query passed through the trained adapter, a memory scoring the best of its keys.

The key spaces of a workspace is read from the store once and kept until the store's
fingerprint of that workspace changes (memories, keys or model), which also catches
writes made by another process on the same file. A brute-force scan is exact and, at
the sizes one workspace has today, fast (a 10k x 384 scan is well under a millisecond).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from reme_mcp.retrieval.adapter import Adapter
from reme_mcp.store.base import MEMORY_TYPES, MemoryStore, SearchesVectors, VectorSpace


@dataclass(frozen=True)
class KeySpace:
    """The keys of one workspace: each memory's keys are contiguous rows starting at `starts[i]`."""

    rowids: np.ndarray  # one per memory, ascending
    kinds: np.ndarray  # memory type per memory, '' when not active
    matrix: np.ndarray  # keys x dim
    starts: np.ndarray  # first key row of each memory
    adapter: Adapter | None = None

    @classmethod
    def plain(cls, rowids: np.ndarray, matrix: np.ndarray, kinds: np.ndarray) -> "KeySpace":
        return cls(rowids, kinds, matrix, np.arange(len(rowids)))

    @classmethod
    def from_keys(
        cls, rowids: np.ndarray, kinds: np.ndarray, keys: dict[int, np.ndarray], adapter: Adapter | None
    ) -> "KeySpace":
        """The memories among `rowids` that have keys, each reached by all of its keys."""
        have = [i for i, r in enumerate(rowids.tolist()) if r in keys and len(keys[r])]
        blocks = [keys[int(rowids[i])] for i in have]
        sizes = np.array([len(b) for b in blocks], dtype=np.int64)
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64) if len(blocks) else sizes
        dim = blocks[0].shape[1] if blocks else 0
        matrix = np.ascontiguousarray(np.vstack(blocks) if blocks else np.zeros((0, dim)), dtype=np.float32)
        return cls(rowids[have], kinds[have], matrix, starts, adapter)

    def query(self, vector: np.ndarray) -> np.ndarray:
        return self.adapter.apply(vector) if self.adapter is not None else vector.astype(np.float32)

    def scores(self, vector: np.ndarray) -> np.ndarray:
        """Best key cosine of each memory."""
        sims = self.matrix @ self.query(vector)
        if len(self.starts) == len(sims):  # one key per memory: nothing to reduce
            return sims
        return np.maximum.reduceat(sims, self.starts)

    def search(
        self, vector: np.ndarray, limit: int, types: Sequence[str] | None = None, allowed: np.ndarray | None = None
    ) -> list[tuple[int, float]]:
        """(rowid, score) best first over active memories of `types` (all when None), only rowids in `allowed`
        when given (a recall filter: tags, time)."""
        if len(self.rowids) == 0:
            return []
        keep = np.isin(self.kinds, types or list(MEMORY_TYPES))
        if allowed is not None:
            keep &= np.isin(self.rowids, allowed, assume_unique=True)
        if not keep.any():
            return []
        scores = np.where(keep, self.scores(vector), -np.inf)
        limit = min(limit, int(keep.sum()))
        top = np.argpartition(-scores, limit - 1)[:limit]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [(int(self.rowids[i]), float(scores[i])) for i in top]

    def similarities(self, vector: np.ndarray, rowids: list[int]) -> dict[int, float]:
        if len(self.rowids) == 0 or not rowids:
            return {}
        wanted = np.asarray(rowids, dtype=np.int64)
        slots = np.minimum(np.searchsorted(self.rowids, wanted), len(self.rowids) - 1)
        present = self.rowids[slots] == wanted
        scores = self.scores(vector)
        return {int(r): float(scores[s]) for r, s in zip(wanted[present], slots[present])}


def load_cells(store: MemoryStore, plain: VectorSpace, workspace_id: str, model_id: str, force: bool = False) -> KeySpace | None:
    """The workspace's trained cells when they are switched on (or, with `force`, whenever they exist);
    `plain` is its memory-vector space, for the rowids and kinds."""
    model = store.cell_model(workspace_id)
    if model is None or not (model[1] or force):
        return None
    adapter = Adapter.from_bytes(model[0], model_id)
    return KeySpace.from_keys(plain.rowids, plain.kinds, store.cell_keys(workspace_id), adapter)


class DenseIndex:
    """Per-process cache of each workspace's key spaces, refreshed when the store's fingerprint changes."""

    def __init__(self, store: MemoryStore, cells_model_id: str):
        self.store = store
        self.cells_model_id = cells_model_id
        self._cache: dict[str, tuple[tuple[float, ...], VectorSpace, KeySpace | None]] = {}
        self._lock = threading.Lock()

    def spaces(self, workspace_id: str) -> tuple[VectorSpace, KeySpace | None]:
        """(memory vectors, trained cells or None when they are off) of a workspace."""
        fingerprint = self.store.fingerprint(workspace_id)
        with self._lock:
            cached = self._cache.get(workspace_id)
            if cached is not None and cached[0] == fingerprint:
                return cached[1], cached[2]
        plain: VectorSpace
        if isinstance(self.store, SearchesVectors):  # the database searches its own vectors
            plain = self.store.vector_space(workspace_id)
        else:
            plain = KeySpace.plain(*self.store.vectors(workspace_id))
        cells = load_cells(self.store, plain, workspace_id, self.cells_model_id)
        with self._lock:
            self._cache[workspace_id] = (fingerprint, plain, cells)
        return plain, cells

    def search(
        self, workspace_id: str, query: np.ndarray, limit: int, types: list[str] | None = None
    ) -> list[tuple[int, float]]:
        """(rowid, cosine) best first by memory vectors, over active memories of `types` (all when None)."""
        return self.spaces(workspace_id)[0].search(query, limit, types)
