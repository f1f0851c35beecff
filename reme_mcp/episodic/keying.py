"""Multilingual keys for memories that have none yet, made at recall rather than at write time.

Beside its memory vectors, a workspace has keys from the multilingual cell encoder for the memories that
need them, so that a workspace only ever asked in English stores none:

- the memories the English model cannot read (Chinese, Russian...), at each recall, for those written
  since the last look: without keys recall would find them by their words alone (bench/multilingual.py);
- the others, for a query the English model cannot read (a Chinese question about an English note):
  without keys it finds no English memory by meaning, and BM25 shares no word with it.

The encoder keys about 200 memories a second here, so a workspace of 6,000 English memories would hold
the first Chinese query for half a minute. The `Bridge` keys the first FIRST_BATCH while that query waits
(about 2.5 s) and the rest in a background thread, a batch at a time; later queries are answered at once
and find each batch as soon as it is stored.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from reme_mcp.cells.keys import key_texts
from reme_mcp.retrieval.scripts import foreign

if TYPE_CHECKING:
    from reme_mcp.services import Services

log = logging.getLogger(__name__)

FIRST_BATCH = 500  # memories keyed while the first query in another script waits: about 2.5 s
BATCH = 250  # memories keyed per step in the background; closing the app waits for at most one step


def key_cells(services: Services, workspace_id: str, memories: list[tuple[int, str, list[str]]]) -> int:
    """Compute and store the cell keys of (rowid, text, keywords) memories; returns how many keys (blocking)."""
    texts = [key_texts(text, keywords) for _, text, keywords in memories]
    flat = [t for group in texts for t in group]
    vectors = services.cell_encoder.encode(flat) if flat else np.zeros((0, 0), np.float32)
    rows, at = [], 0
    for (rowid, _, _), group in zip(memories, texts):
        rows.append((rowid, vectors[at : at + len(group)]))
        at += len(group)
    services.store.put_cell_keys(workspace_id, rows, services.cell_encoder.embedding())
    return len(flat)


def key_foreign(services: Services, workspace_id: str) -> int:
    """Give the memories written since the last look whose text is mostly not in Latin script their
    multilingual keys; returns how many were keyed (blocking).

    A recall with nothing written since costs one lookup of the store's last rowid; a workspace in English
    then pays one read of its new memories' texts. Nothing is keyed when the embedding model is the
    multilingual encoder itself.
    """
    scripts = services.dense.scripts
    return 0 if scripts is None else key_since(services, workspace_id, scripts.read, foreign)[0]


def key_since(
    services: Services, workspace_id: str, marks: dict[str, int], keep: Callable[[str], bool] | None,
    limit: int | None = None,
) -> tuple[int, bool]:
    """Key the workspace's memories without keys written after its mark in `marks` (those whose text `keep`
    accepts; all when None), the first `limit` of them; returns (how many were keyed, whether any are left).
    The mark moves to the newest rowid the store shows in the workspace once none is left, never past a
    memory still being written (MemoryStore.newest_rowid). The limit applies to what the store reads, so a
    big workspace is not read whole for one batch."""
    last = services.store.newest_rowid(workspace_id)
    after = marks.get(workspace_id, 0)
    if after >= last:
        return 0, False
    fresh = services.store.without_cell_keys(workspace_id, services.cell_encoder.model_id, after, limit)
    batch = [m for m in fresh if keep is None or keep(m[1])]
    if batch:
        key_cells(services, workspace_id, batch)
    more = limit is not None and len(fresh) == limit
    if not more:
        marks[workspace_id] = last
    return len(batch), more


class Bridge:
    """Keys every memory of a workspace for queries in other scripts: the first batch while the query
    waits, the rest in one background thread per workspace. Per process, like the marks it keeps."""

    def __init__(self) -> None:
        self._marks: dict[str, int] = {}  # workspace -> the store's last rowid when all its memories had keys
        self._busy: set[str] = set()  # workspaces being keyed, in a query or in the background
        self._threads: list[threading.Thread] = []
        self._changed = threading.Condition()
        self._closed = threading.Event()

    def key(self, services: Services, workspace_id: str) -> int:
        """Key the workspace's memories that have no keys: the first FIRST_BATCH now, the rest in the
        background. Returns how many were keyed now; 0 while the background is still at it (blocking)."""
        if services.dense.scripts is None:
            return 0
        with self._changed:
            if workspace_id in self._busy or self._closed.is_set():
                return 0
            self._busy.add(workspace_id)
        try:
            count, more = key_since(services, workspace_id, self._marks, None, FIRST_BATCH)
        except BaseException:
            self._release(workspace_id)
            raise
        if count:
            log.info("gave %d memories of workspace '%s' multilingual keys for a query in another script%s",
                     count, workspace_id, "; the rest follow in the background" if more else "")
        if not more:
            self._release(workspace_id)
            return count
        thread = threading.Thread(
            target=self._rest, args=(services, workspace_id), name=f"reme-keys-{workspace_id}", daemon=True
        )
        with self._changed:
            self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()
        return count

    def _rest(self, services: Services, workspace_id: str) -> None:
        keyed, more = 0, True
        try:
            while more and not self._closed.is_set():
                count, more = key_since(services, workspace_id, self._marks, None, BATCH)
                keyed += count
            log.info("gave %d more memories of workspace '%s' multilingual keys in the background%s",
                     keyed, workspace_id, " before the app closed" if more else "")
        except Exception as exc:  # a store that went away, a full disk: the next query tries again
            log.warning("stopped giving workspace '%s' multilingual keys in the background: %s", workspace_id, exc)
        finally:
            self._release(workspace_id)

    def _release(self, workspace_id: str) -> None:
        with self._changed:
            self._busy.discard(workspace_id)
            self._changed.notify_all()

    def wait(self, timeout: float | None = None) -> bool:
        """Until no workspace is being keyed (benchmarks and tests); False if `timeout` ran out first."""
        with self._changed:
            return self._changed.wait_for(lambda: not self._busy, timeout)

    def close(self) -> None:
        """Stop the background after the batch under way and wait for it, before the store closes."""
        self._closed.set()
        with self._changed:
            threads = list(self._threads)
        for thread in threads:
            thread.join()
