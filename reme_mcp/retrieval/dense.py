"""Cosine search over a workspace's keys, cached per process.

Every memory is reached by its own vector (the configured embedding model). In a
workspace whose trained cells are on (reme_mcp/cells) there is a second key space:
each memory's cell keys in the multilingual cell encoder's space, searched with the
query passed through the trained adapter, a memory scoring the best of its keys. An
untrained workspace has the same second space for just its memories in a script the
English model cannot read, searched with the query as it is; once a query in such a
script has come, the other memories have keys too, in a wider space for those queries.

The key spaces of a workspace are read from the store once and kept until the store's
fingerprint of that workspace changes (memories, keys or model), which also catches
writes made by another process on the same file; then only the memories added since are
read, unless some were removed. Search is an exact scan (a 10k x 384 scan takes well under
a millisecond) until a workspace has `retrieval.ann_threshold` memories; above that an HNSW
index answers (reme_mcp/retrieval/ann.py), the scan standing in while it is built.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from reme_mcp.retrieval.adapter import Adapter
from reme_mcp.retrieval.ann import Ann, Rows, index_path
from reme_mcp.retrieval.scripts import Scripts
from reme_mcp.store.base import MEMORY_TYPES, MemoryStore, SearchesVectors, VectorSpace

EXACT_BELOW = 20_000  # a filter that leaves fewer memories than this is scanned exactly
APPROXIMATE_MAX_K = 4_096  # the most answers asked of the index before a filtered search scans instead
KIND = f"U{max(map(len, MEMORY_TYPES))}"  # memory types as fixed-width strings: filtering 1M takes a millisecond


@dataclass(frozen=True)
class KeySpace:
    """The keys of one workspace: each memory's keys are contiguous rows starting at `starts[i]`."""

    rowids: np.ndarray  # one per memory, ascending
    kinds: np.ndarray  # memory type per memory, '' when not active
    matrix: np.ndarray  # keys x dim
    starts: np.ndarray  # first key row of each memory
    adapter: Adapter | None = None
    ann: Ann | None = None  # the workspace's HNSW index, for memory vectors past retrieval.ann_threshold
    # Untrained keys: the same encoder's keys of every keyed memory, Latin ones too, for a query the English
    # model cannot read (this space holds only the memories that model cannot read); None when they are the same.
    wider: "KeySpace | None" = None
    _masks: dict[tuple[str, ...], np.ndarray] = field(default_factory=dict, compare=False, repr=False)

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

    def locate(self, rowids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(slot of each of `rowids` in this space, whether it is there at all); a slot is only meaningful where
        it is there."""
        if len(self.rowids) == 0:
            return np.zeros(len(rowids), dtype=np.int64), np.zeros(len(rowids), dtype=bool)
        slots = np.minimum(np.searchsorted(self.rowids, rowids), len(self.rowids) - 1)
        return slots, self.rowids[slots] == rowids

    def query(self, vector: np.ndarray) -> np.ndarray:
        return self.adapter.apply(vector) if self.adapter is not None else vector.astype(np.float32)

    def scores(self, vector: np.ndarray, slots: np.ndarray | None = None) -> np.ndarray:
        """Best key cosine of each memory (of the memories at `slots`, when given)."""
        query = self.query(vector)
        one_key = len(self.starts) == len(self.matrix)
        if slots is not None and one_key:
            return self.matrix[slots] @ query
        sims = self.matrix @ query
        best = sims if one_key else np.maximum.reduceat(sims, self.starts)
        return best if slots is None else best[slots]

    def search(
        self, vector: np.ndarray, limit: int, types: Sequence[str] | None = None, allowed: np.ndarray | None = None
    ) -> list[tuple[int, float]]:
        """(rowid, score) best first over active memories of `types` (all when None), only rowids in `allowed`
        when given (a recall filter: tags, time)."""
        if len(self.rowids) == 0 or limit <= 0:
            return []
        keep = self._keep(types)
        slots = None
        if allowed is not None:
            slots, present = self.locate(allowed)
            slots = slots[present & keep[slots]]
        if self.ann is not None and (slots is None or len(slots) > EXACT_BELOW):
            hits = self._approximate(vector, limit, keep, slots)
            if hits is not None:
                return hits
        if slots is not None:  # score only the allowed memories
            scores = self.scores(vector, slots)
            chosen = slots
        else:
            scores = np.where(keep, self.scores(vector), -np.inf)
            chosen = np.arange(len(self.rowids))
            slots = np.flatnonzero(keep)
        limit = min(limit, len(slots))
        if limit == 0:
            return []
        top = np.argpartition(-scores, limit - 1)[:limit]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [(int(self.rowids[chosen[i]]), float(scores[i])) for i in top]

    def _keep(self, types: Sequence[str] | None) -> np.ndarray:
        """Which memories are active and of `types`: computed once per key space and kind of search."""
        wanted = tuple(sorted(types or MEMORY_TYPES))
        mask = self._masks.get(wanted)
        if mask is None:
            mask = self._masks[wanted] = np.isin(self.kinds, list(wanted))
        return mask

    def _approximate(
        self, vector: np.ndarray, limit: int, keep: np.ndarray, slots: np.ndarray | None
    ) -> list[tuple[int, float]] | None:
        """The index's nearest memories that pass the filters, asking it for more while too many do not;
        None (scan instead) when it is not ready, or the filters pass too few of its answers."""
        self.ann.catch_up(self.rowids, self.matrix)
        query = self.query(vector)
        k = limit + 16
        while True:
            ids = self.ann.search(query, k)
            if ids is None:
                return None
            at, ok = self.locate(ids)
            ok &= keep[at]  # gone from the store, superseded or another type
            if slots is not None:
                ok &= np.isin(at, slots)
            if ok.sum() >= limit or len(ids) < k:
                at = at[ok]
                sims = self.matrix[at] @ query  # exact cosines, exact order
                best = np.argsort(-sims, kind="stable")[:limit]
                return [(int(self.rowids[at[i]]), float(sims[i])) for i in best]
            if k >= APPROXIMATE_MAX_K:
                return None
            k *= 4

    def similarities(self, vector: np.ndarray, rowids: list[int]) -> dict[int, float]:
        if len(self.rowids) == 0 or not rowids:
            return {}
        wanted = np.asarray(rowids, dtype=np.int64)
        slots, present = self.locate(wanted)
        scores = self.scores(vector, slots[present])
        return {int(r): float(s) for r, s in zip(wanted[present], scores)}


def load_cells(
    store: MemoryStore,
    plain: VectorSpace,
    workspace_id: str,
    model_id: str,
    force: bool = False,
    scripts: Scripts | None = None,
) -> KeySpace | None:
    """The workspace's trained cells when they are switched on (or, with `force`, whenever they exist);
    `plain` is its memory-vector space, for the rowids and kinds. Otherwise what `untrained_keys` gives."""
    model = store.cell_model(workspace_id)
    on = model is not None and (model[1] or force)
    if not on and scripts is None:
        return None
    keys = store.cell_keys(workspace_id)
    if on:
        return KeySpace.from_keys(plain.rowids, plain.kinds, keys, Adapter.from_bytes(model[0], model_id))
    return untrained_keys(store, plain.rowids, plain.kinds, keys, scripts)


def untrained_keys(
    store: MemoryStore, rowids: np.ndarray, kinds: np.ndarray, keys: dict[int, np.ndarray], scripts: Scripts | None
) -> KeySpace | None:
    """The multilingual keys of the memories the English model cannot read (Chinese, Russian...; see
    episodic/keying.py), as a key space without an adapter: what recall searches besides the memory
    vectors while a workspace's cells are off. Memories in Latin script have keys too once trained, or once
    a query the English model cannot read came (episodic/keying.py): those are in the `wider` space, and
    `scripts` tells which are which. None without `scripts` (the embedding model is the multilingual encoder
    itself) or when no memory has keys."""
    if scripts is None or not keys:
        return None
    foreign = scripts.foreign(store, keys)
    space = KeySpace.from_keys(rowids, kinds, {r: k for r, k in keys.items() if r in foreign}, None)
    if len(foreign) == len(keys):
        return space
    return replace(space, wider=KeySpace.from_keys(rowids, kinds, keys, None))


class DenseIndex:
    """Per-process cache of each workspace's key spaces, refreshed when the store's fingerprint changes.

    `ann_dir` is where HNSW indexes are saved (None: kept in memory only, as for a RAM store);
    `ann_threshold` is the workspace size from which one is used.
    """

    def __init__(self, store: MemoryStore, cells_model_id: str, ann_dir: Path | None = None,
                 ann_threshold: int = 50_000, model_id: str = ""):
        self.store = store
        self.cells_model_id = cells_model_id
        self.ann_dir = ann_dir
        self.ann_threshold = ann_threshold
        self.model_id = model_id
        self._cache: dict[str, tuple[tuple[float, ...], VectorSpace, KeySpace | None]] = {}
        self._buffers: dict[str, _Buffer] = {}
        self._anns: dict[str, Ann] = {}
        self._lock = threading.Lock()
        self._refreshing = threading.Lock()  # one reader of the store's vectors at a time
        # Which memories the English model cannot read; none when the embedding model is the cell encoder.
        self.scripts = Scripts() if model_id != cells_model_id else None

    def spaces(self, workspace_id: str) -> tuple[VectorSpace, KeySpace | None]:
        """(memory vectors, trained cells or the untrained multilingual keys or None) of a workspace."""
        fingerprint = self.store.fingerprint(workspace_id)
        with self._lock:
            cached = self._cache.get(workspace_id)
            if cached is not None and cached[0] == fingerprint:
                return cached[1], cached[2]
        plain: VectorSpace
        if isinstance(self.store, SearchesVectors):  # the database searches its own vectors
            plain = self.store.vector_space(workspace_id)
        else:
            with self._refreshing:
                plain = self._plain(workspace_id, int(fingerprint[0]))
        cells = load_cells(self.store, plain, workspace_id, self.cells_model_id, scripts=self.scripts)
        with self._lock:
            self._cache[workspace_id] = (fingerprint, plain, cells)
        return plain, cells

    def _plain(self, workspace_id: str, count: int) -> KeySpace:
        """The workspace's memory vectors: what was added since the last read is appended to it; after a
        removal (or the first time) all are read again. Big workspaces get their HNSW index."""
        with self._lock:
            buffer = self._buffers.get(workspace_id)
        rowids, matrix, kinds = self.store.vectors(workspace_id, after=buffer.last if buffer else 0)
        if buffer is None or buffer.size + len(rowids) != count:  # first read, or memories were removed
            if buffer is not None:
                rowids, matrix, kinds = self.store.vectors(workspace_id)
            buffer = _Buffer.of(rowids, matrix, kinds)
        else:
            buffer = buffer.extended(rowids, matrix, kinds)
        with self._lock:
            self._buffers[workspace_id] = buffer
        space = KeySpace.plain(*buffer.view())
        if len(space.rowids) < self.ann_threshold:
            return space
        with self._lock:
            ann = self._anns.get(workspace_id)
            if ann is None:
                path = index_path(self.ann_dir, workspace_id) if self.ann_dir is not None else None
                ann = self._anns[workspace_id] = Ann(path, self.model_id)
        if ann.index is None:
            ann.prepare(Rows(space.rowids, space.matrix, self.store.last_rowid()))
        else:
            ann.sync(space.rowids, space.matrix)
        return replace(space, ann=ann)

    def ann(self, workspace_id: str) -> Ann | None:
        """The workspace's HNSW index, once it has reached `ann_threshold` (ready or under way)."""
        with self._lock:
            return self._anns.get(workspace_id)

    def search(
        self, workspace_id: str, query: np.ndarray, limit: int, types: list[str] | None = None
    ) -> list[tuple[int, float]]:
        """(rowid, cosine) best first by memory vectors, over active memories of `types` (all when None)."""
        return self.spaces(workspace_id)[0].search(query, limit, types)

    def close(self) -> None:
        """Save the HNSW indexes that grew since they were saved (a crash before costs only a re-add)."""
        with self._lock:
            anns = list(self._anns.values())
        for ann in anns:
            ann.close()


@dataclass(frozen=True)
class _Buffer:
    """A workspace's vectors in arrays with room to grow: appending copies only the new rows.

    A key space is a view of the first `size` rows; rows appended later lie past it, so a view
    handed out before never changes.
    """

    rowids: np.ndarray
    matrix: np.ndarray
    kinds: np.ndarray
    size: int

    @classmethod
    def of(cls, rowids: np.ndarray, matrix: np.ndarray, kinds: np.ndarray) -> "_Buffer":
        return cls(rowids, matrix, kinds.astype(KIND), len(rowids))

    @property
    def last(self) -> int:
        return int(self.rowids[self.size - 1]) if self.size else 0

    def view(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self.rowids[: self.size], self.matrix[: self.size], self.kinds[: self.size]

    def extended(self, rowids: np.ndarray, matrix: np.ndarray, kinds: np.ndarray) -> "_Buffer":
        added = len(rowids)
        if added == 0:
            return self
        if self.size == 0 or matrix.shape[1] != self.matrix.shape[1]:
            return _Buffer.of(rowids, matrix, kinds)
        total = self.size + added
        own, mine, sorts = self.rowids, self.matrix, self.kinds
        if total > len(own) or not mine.flags.writeable:  # grow by half again: amortised O(new rows)
            capacity = max(total, self.size * 3 // 2, 1024)
            own = _grown(own, capacity, self.size)
            mine = _grown(mine, capacity, self.size)
            sorts = _grown(sorts, capacity, self.size)
        own[self.size : total] = rowids
        mine[self.size : total] = matrix
        sorts[self.size : total] = kinds
        return _Buffer(own, mine, sorts, total)


def _grown(array: np.ndarray, capacity: int, size: int) -> np.ndarray:
    grown = np.empty((capacity, *array.shape[1:]), dtype=array.dtype)
    grown[:size] = array[:size]
    return grown
