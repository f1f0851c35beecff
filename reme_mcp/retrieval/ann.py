"""Approximate nearest-neighbour search for big workspaces: a faiss HNSW index, a cache of the store.

Why faiss HNSW: on 384-d sentence vectors it answers at 1M in well under a millisecond with
recall@10 above 0.99 against exact search (bench/perf.py), where a numpy scan takes about
120 ms; hnswlib has no wheel for this Python and usearch measured no better. Below
`retrieval.ann_threshold` memories a workspace is scanned exactly: that is fast there, and exact.

The index is never the truth, only a faster way to it:
- It keeps the rowid of each vector. Rowids are never reused (AUTOINCREMENT), so a rowid in
  the index is either still the same memory or gone.
- Memories added since (by this process or another) are added before the next search; gone
  ones are skipped at query time (faiss HNSW cannot delete), and the index is rebuilt once they
  are a quarter of it.
- It is built and loaded in a background thread; until it is ready, search is exact.
- It is saved under `<store_dir>/ann/` by a write to a temporary name and a rename, so a crash
  leaves the old file or the new one. A file that cannot be read, was made by another model,
  covers rowids the store never issued (an older copy of the store restored), or whose sampled
  vectors differ from the store's is thrown away and rebuilt, with a warning.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)


M = 32  # graph degree
TRAIN_SAMPLE = 50_000  # vectors the 8-bit quantiser learns each dimension's range from
RANGE_MARGIN = 0.25  # ranges widened by this share each side: vectors added later are rarely clipped
GROWTH_REBUILD = 4.0  # rebuild (retrain the quantiser, rebalance the graph) once this many times the built size
EF_CONSTRUCTION = 80
EF_SEARCH = 1024  # questions lie far from the statements that answer them: at 1M, recall@10 against exact is 0.94 with 256, 0.98 with 512, 0.99 with 1024 (1 ms)
DEAD_SHARE_REBUILD = 0.25  # rebuild when this share of the index is memories that are gone
SAVE_EVERY = 0.02  # save again once this share of the index was added since the last save
SAMPLE = 64  # vectors compared with the store's when a saved index is loaded
SAME_VECTOR = 0.95  # cosine of a quantised vector with its original (0.99+); another memory's is far lower
DIRECTORY = "ann"


@dataclass(frozen=True)
class Rows:
    """What the index is built from and checked against: rowids ascending, vectors, the store's last rowid."""

    rowids: np.ndarray
    matrix: np.ndarray
    last_rowid: int


class HNSW:
    """One workspace's faiss index, with the rowid of each vector as its id. Thread-safe.

    The graph keeps its vectors quantised to 8 bits a dimension (a quarter of float32: 0.4 GB
    at 1M instead of 1.5 GB): the process already holds the exact ones, which re-score the
    candidates, so the answer's order and cosines are exact.
    """

    def __init__(self, index: object, model_id: str):
        self.index = index
        self.model_id = model_id
        self.ids = _ids(index)  # rowid of every vector, ascending (they are added in rowid order)
        self.built = len(self.ids)  # how many it was built (or loaded) with
        self._lock = threading.Lock()

    @classmethod
    def build(cls, rows: Rows, model_id: str) -> "HNSW":
        import faiss

        faiss.omp_set_num_threads(os.cpu_count() or 1)  # a build uses every core (this thread's setting)
        try:
            matrix = np.ascontiguousarray(rows.matrix, dtype=np.float32)
            graph = faiss.IndexHNSWSQ(matrix.shape[1], faiss.ScalarQuantizer.QT_8bit, M, faiss.METRIC_INNER_PRODUCT)
            graph.hnsw.efConstruction = EF_CONSTRUCTION
            faiss.downcast_index(graph.storage).sq.rangestat_arg = RANGE_MARGIN
            sample = np.random.default_rng(0).choice(len(matrix), size=min(len(matrix), TRAIN_SAMPLE), replace=False)
            graph.train(matrix[np.sort(sample)])
            index = faiss.IndexIDMap2(graph)
            index.add_with_ids(matrix, rows.rowids.astype(np.int64))
        finally:
            faiss.omp_set_num_threads(1)
        return cls(index, model_id)

    @property
    def size(self) -> int:
        return len(self.ids)

    @property
    def last(self) -> int:
        return int(self.ids[-1]) if len(self.ids) else 0

    def add(self, rowids: np.ndarray, matrix: np.ndarray) -> None:
        """Add those of the vectors (rowids ascending) that are newer than the last one in the index."""
        with self._lock:
            fresh = rowids > self.last
            if fresh.any():
                self.index.add_with_ids(np.ascontiguousarray(matrix[fresh], dtype=np.float32), rowids[fresh])
                self.ids = np.concatenate([self.ids, rowids[fresh].astype(np.int64)])

    def search(self, vector: np.ndarray, k: int) -> np.ndarray:
        """Rowids of about the `k` nearest vectors: candidates the caller re-scores with the exact vectors
        it holds (the index's own cosines are of 8-bit vectors)."""
        import faiss

        k = min(k, self.size)
        params = faiss.SearchParametersHNSW(efSearch=max(EF_SEARCH, k))
        # One query uses one core: OpenMP's hand-off costs more than it saves (2 ms against 0.2 ms per query
        # here). The setting is the calling thread's, so torch's threads and a build elsewhere keep theirs.
        faiss.omp_set_num_threads(1)
        with self._lock:
            _, ids = self.index.search(np.asarray(vector, dtype=np.float32)[None], k, params=params)
        return ids[0][ids[0] >= 0]

    def vectors(self, rowids: np.ndarray) -> np.ndarray:
        with self._lock:
            return np.vstack([self.index.reconstruct(int(r)) for r in rowids])

    def save(self, path: Path) -> None:
        """Write to a temporary name, then rename: a crash leaves the old file or the new one, never half."""
        import faiss

        prefix = f".tmp-{os.getpid()}-{threading.get_ident()}-"
        tmp, tmp_meta = path.with_name(prefix + path.name), path.with_name(prefix + path.stem + ".json")
        with self._lock:
            faiss.write_index(self.index, str(tmp))
            meta = {"model_id": self.model_id, "size": self.size, "last": self.last}
        tmp_meta.write_text(json.dumps(meta))
        # A kill between the two renames pairs a sidecar with another index: load() sees the sizes differ.
        os.replace(tmp_meta, path.with_suffix(".json"))
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path, model_id: str) -> "HNSW | None":
        """The saved index, or None (with a warning) when it is missing, unreadable or another model's."""
        import faiss

        if not path.is_file():
            return None
        try:
            meta = json.loads(path.with_suffix(".json").read_text())
            index = faiss.read_index(str(path))
            hnsw = cls(index, model_id)
        except (OSError, RuntimeError, ValueError) as exc:
            log.warning("ANN index %s unreadable (%s); rebuilding it", path, exc)
            return None
        if meta.get("model_id") != model_id or meta.get("size") != hnsw.size:
            log.warning("ANN index %s is another model's or incomplete; rebuilding it", path)
            return None
        return hnsw


def _ids(index: object) -> np.ndarray:
    import faiss

    return faiss.vector_to_array(index.id_map).astype(np.int64)


class Ann:
    """A workspace's index as it comes and goes: none, loading or building in the background, ready.

    `search` answers None until the index is ready, and the caller scans exactly.
    """

    def __init__(self, path: Path | None, model_id: str):
        self.path = path  # None: never saved (a RAM store)
        self.model_id = model_id
        self.index: HNSW | None = None
        self._saved_size = 0
        self._worker: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def busy(self) -> bool:
        return self._worker is not None and self._worker.is_alive()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for a load or build under way; True when the index is ready."""
        worker = self._worker
        if worker is not None:
            worker.join(timeout)
        return self.index is not None

    def prepare(self, rows: Rows) -> None:
        """Load (or build) the index in the background from `rows`, unless that is under way or done."""
        self._start(rows, rebuild=False)

    def rebuild(self, rows: Rows) -> None:
        """Build a fresh index in the background; the current one answers until it is ready."""
        self._start(rows, rebuild=True)

    def _start(self, rows: Rows, rebuild: bool) -> None:
        with self._lock:
            if self.busy or (self.index is not None and not rebuild):
                return
            self._worker = threading.Thread(target=self._prepare, args=(rows, rebuild), name="reme-ann", daemon=True)
            self._worker.start()

    def _prepare(self, rows: Rows, rebuild: bool) -> None:
        """Build (or load) in the background, then put the index in place and save it."""
        started = time.monotonic()
        try:
            index, how, saved = (HNSW.build(rows, self.model_id), "rebuilt", 0) if rebuild else self._load_or_build(rows)
        except Exception:  # search stays as it was (exact, or the old index); the next refresh tries again
            log.exception("ANN index for %s not built; searching exactly meanwhile", self.path or "a RAM store")
            return
        log.info("ANN index of %d vectors %s in %.1f s", index.size, how, time.monotonic() - started)
        with self._lock:
            self.index, self._saved_size = index, saved
        self.save()

    def _load_or_build(self, rows: Rows) -> tuple[HNSW, str, int]:
        """(index, how it came, how many of its vectors are already in the saved file)."""
        if self.path is not None:
            _sweep(self.path.parent)
        index = HNSW.load(self.path, self.model_id) if self.path is not None else None
        if index is not None and not _agrees(index, rows):
            index = None
        if index is None:
            return HNSW.build(rows, self.model_id), "built", 0
        # memories the saved index misses: written since it was saved, or skipped then
        missing = ~np.isin(rows.rowids, index.ids, assume_unique=True)
        fresh = missing & (rows.rowids > index.last)
        if (missing & ~fresh).any():
            log.warning("ANN index %s misses older memories; rebuilding it", self.path)
            return HNSW.build(rows, self.model_id), "rebuilt", 0
        saved = index.size
        index.add(rows.rowids, rows.matrix)
        return index, "loaded", saved

    def catch_up(self, rowids: np.ndarray, matrix: np.ndarray) -> None:
        """Add the vectors newer than the index's last (cheap when there are none)."""
        index = self.index
        if index is not None and len(rowids) and rowids[-1] > index.last:
            index.add(rowids, matrix)

    def sync(self, rowids: np.ndarray, matrix: np.ndarray) -> None:
        """Bring a ready index up to the workspace's vectors: add what is new, rebuild when too much is gone."""
        self.catch_up(rowids, matrix)
        index = self.index
        if index is not None and index.size > GROWTH_REBUILD * index.built:
            log.info("ANN index grew from %d to %d vectors; rebuilding", index.built, index.size)
            self.rebuild(Rows(rowids, matrix, int(rowids[-1])))
            return
        if index is None or len(rowids) >= index.size:
            return  # nothing can be gone (a rowid is never reused)
        gone = index.size - int(np.isin(index.ids, rowids, assume_unique=True).sum())
        if gone > DEAD_SHARE_REBUILD * index.size:
            log.info("ANN index: %d of %d vectors are gone; rebuilding", gone, index.size)
            self.rebuild(Rows(rowids, matrix, int(rowids[-1]) if len(rowids) else 0))

    def search(self, vector: np.ndarray, k: int) -> np.ndarray | None:
        """Candidate rowids (HNSW.search), or None while the index is not ready."""
        index = self.index
        return None if index is None else index.search(vector, k)

    def save(self) -> None:
        """Save when enough was added since the last save (and at close); a crash only costs a re-add."""
        index = self.index
        if self.path is None or index is None or index.size - self._saved_size <= SAVE_EVERY * max(index.size, 1):
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            index.save(self.path)
            self._saved_size = index.size
        except OSError as exc:  # the index is a cache: losing a save costs a rebuild, not a memory
            log.warning("ANN index not saved to %s: %s", self.path, exc)

    def close(self) -> None:
        if self.busy:
            return  # a build in flight is not waited for: the next start builds or loads again
        self.save()


def _agrees(index: HNSW, rows: Rows) -> bool:
    """A saved index belongs to this store: no rowid the store never issued, and sampled vectors equal."""
    if index.last > rows.last_rowid:
        log.warning("ANN index covers rowids this store never issued (an older copy restored?); rebuilding it")
        return False
    shared = np.intersect1d(index.ids, rows.rowids, assume_unique=True)
    if len(shared):
        sample = np.random.default_rng().choice(shared, size=min(SAMPLE, len(shared)), replace=False)
        slots = np.searchsorted(rows.rowids, sample)
        cosines = np.einsum("ij,ij->i", index.vectors(sample), rows.matrix[slots])
        if np.any(cosines < SAME_VECTOR):
            log.warning("ANN index vectors differ from the store's (re-embedded?); rebuilding it")
            return False
    return True


def _sweep(directory: Path) -> None:
    """Delete half-written saves left by a process that was killed (their names carry its pid)."""
    for tmp in directory.glob(".tmp-*"):
        try:
            pid = int(tmp.name.split("-")[1])
            os.kill(pid, 0)
        except ProcessLookupError:
            tmp.unlink(missing_ok=True)
        except (ValueError, IndexError, PermissionError, OSError):
            continue


def index_path(directory: Path, workspace_id: str) -> Path:
    """One file per workspace, named by a digest: workspace ids may hold any character."""
    return directory / f"{hashlib.sha256(workspace_id.encode('utf-8')).hexdigest()[:32]}.faiss"
