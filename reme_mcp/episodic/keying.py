"""Multilingual keys for memories that have none yet, made at recall rather than at write time.

Beside its memory vectors, a workspace has keys from the multilingual cell encoder for the memories that
need them, so that a workspace only ever asked in English stores none. Two jobs give them:

- FOREIGN, at each recall: the memories the English model cannot read (Chinese, Russian...) written since
  the last look. Without keys recall would find them by their words alone (bench/multilingual.py).
- EVERY, for a query the English model cannot read (a Chinese question about an English note): the other
  memories too. Without keys such a query finds no English memory by meaning, and BM25 shares no word with it.

The encoder keys about 200 memories a second here, so a workspace of 6,000 English memories would hold
the first Chinese query for half a minute, and a bulk import of Chinese memories the next recall. The
`Bridge` keys FIRST_BATCH memories while the recall waits (about 2.5 s) and the rest in a background
thread, a batch at a time; later recalls are answered at once and find each batch as soon as it is
stored. Meanwhile a memory still without keys is missed by meaning (for a query in another script the
keyed memories fill the top), so an import keys what it brings before it returns (`Bridge.finish`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from reme_mcp.cells.keys import key_texts
from reme_mcp.retrieval.scripts import foreign

if TYPE_CHECKING:
    from reme_mcp.services import Services

log = logging.getLogger(__name__)

FIRST_BATCH = 500  # memories keyed while a recall waits: about 2.5 s
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


@dataclass(frozen=True)
class Job:
    """Which memories a keying run gives keys: those whose text `keep` accepts, or all. The store reads up to
    `read_ahead` memories per memory a batch may key: every one EVERY reads gets keys, while an English
    workspace may hold thousands of memories before the one Chinese memory FOREIGN should key at once."""

    name: str
    keep: Callable[[str], bool] | None
    read_ahead: int


FOREIGN = Job("memories in other scripts", foreign, 20)  # at every recall
EVERY = Job("every memory", None, 1)  # for a query in another script


def key_since(
    services: Services, workspace_id: str, marks: dict[str, int], job: Job, limit: int | None = None
) -> tuple[int, bool]:
    """Key the workspace's memories without keys written after its mark in `marks` that `job` gives keys, at
    most `limit` of them; returns (how many were keyed, whether any are left). The store reads at most
    `limit` x job.read_ahead memories, so a big workspace is not read whole for one batch. The mark moves
    past what was looked at; it never passes a memory still being written, as the newest rowid the store
    shows in the workspace is as far as it goes (MemoryStore.newest_rowid)."""
    newest = services.store.newest_rowid(workspace_id)
    after = marks.get(workspace_id, 0)
    if after >= newest:
        return 0, False
    reads = None if limit is None else limit * job.read_ahead
    fresh = services.store.without_cell_keys(workspace_id, services.cell_encoder.model_id, after, reads)
    batch: list[tuple[int, str, list[str]]] = []
    more, seen = reads is not None and len(fresh) == reads, after
    for memory in fresh:
        if job.keep is None or job.keep(memory[1]):
            if limit is not None and len(batch) == limit:
                more = True
                break
            batch.append(memory)
        seen = memory[0]
    if batch:
        key_cells(services, workspace_id, batch)
    marks[workspace_id] = seen if more else newest
    return len(batch), more


class Bridge:
    """Runs the keying jobs of each workspace: the first batch while the recall waits, the rest in one
    background thread per workspace and job. Per process, like the marks it keeps."""

    def __init__(self) -> None:
        # job -> workspace -> the rowid up to which the workspace's memories were read for that job
        self._marks: dict[Job, dict[str, int]] = {FOREIGN: {}, EVERY: {}}
        self._busy: set[tuple[str, Job]] = set()  # (workspace, job) under way, in a recall or in the background
        self._threads: list[threading.Thread] = []
        self._changed = threading.Condition()
        self._closed = threading.Event()

    def key(self, services: Services, workspace_id: str, job: Job) -> int:
        """Key the workspace's memories that `job` gives keys and have none: FIRST_BATCH of them now, the rest
        in the background. Returns how many were keyed now; 0 while the background is still at it, or when
        the embedding model is the multilingual encoder itself (blocking)."""
        if services.dense.scripts is None:
            return 0
        run = (workspace_id, job)
        with self._changed:
            if run in self._busy or self._closed.is_set():
                return 0
            self._busy.add(run)
        try:
            count, more = key_since(services, workspace_id, self._marks[job], job, FIRST_BATCH)
        except BaseException:
            self._release(run)
            raise
        if count:
            log.info("gave %d memories of workspace '%s' multilingual keys (%s)%s",
                     count, workspace_id, job.name, "; the rest follow in the background" if more else "")
        if not more:
            self._release(run)
            return count
        thread = threading.Thread(
            target=self._rest, args=(services, run), name=f"reme-keys-{workspace_id}", daemon=True
        )
        with self._changed:
            self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()
        return count

    def finish(self, services: Services, workspace_id: str, job: Job) -> int:
        """Key every memory of the workspace that `job` gives keys and has none, now, after any run under way
        (blocking; a library import). Returns how many were keyed."""
        if services.dense.scripts is None:
            return 0
        run = (workspace_id, job)
        with self._changed:
            self._changed.wait_for(lambda: run not in self._busy)
            self._busy.add(run)
        try:
            return self._batches(services, run, stop=lambda: False)[0]
        finally:
            self._release(run)

    def _batches(self, services: Services, run: tuple[str, Job], stop: Callable[[], bool]) -> tuple[int, bool]:
        """Key BATCH at a time, so a big workspace is never read whole, until none is left or `stop` says so;
        returns (how many were keyed, whether any are left)."""
        (workspace_id, job), keyed, more = run, 0, True
        while more and not stop():
            count, more = key_since(services, workspace_id, self._marks[job], job, BATCH)
            keyed += count
        return keyed, more

    def _rest(self, services: Services, run: tuple[str, Job]) -> None:
        workspace_id, job = run
        try:
            keyed, more = self._batches(services, run, stop=self._closed.is_set)
            log.info("gave %d more memories of workspace '%s' multilingual keys (%s) in the background%s",
                     keyed, workspace_id, job.name, " before the app closed" if more else "")
        except Exception as exc:  # a store that went away, a full disk: the next recall tries again
            log.warning("stopped giving workspace '%s' multilingual keys in the background: %s", workspace_id, exc)
        finally:
            self._release(run)

    def _release(self, run: tuple[str, Job]) -> None:
        with self._changed:
            self._busy.discard(run)
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
