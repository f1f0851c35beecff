"""What every store backend keeps, and the operations the capabilities need from it.

The records are pydantic models so a row read from SQLite (or, later, PostgreSQL)
is validated once, at this boundary, and typed everywhere above it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np
from pydantic import BaseModel, Field

from reme_mcp.errors import StoreCorrupt

MemoryType = Literal["episode", "task", "personal", "tool"]
MEMORY_TYPES: tuple[str, ...] = ("episode", "task", "personal", "tool")


class Memory(BaseModel):
    """One stored memory, its text exactly as it was given.

    Episodes come from `remember`; task, personal and tool memories are distilled
    from agent runs, with their structured fields in `metadata`. A personal fact that
    a newer one contradicts is kept with status `superseded`; recall skips it.
    A memory past `expires_at` (or its workspace's retention) is never recalled and is
    purged; `recall_count` and `last_recalled_at` record how it has been used.
    """

    id: str
    workspace_id: str
    text: str
    keywords: list[str] = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime
    memory_type: MemoryType = "episode"
    status: Literal["active", "superseded"] = "active"
    tags: list[str] = Field(default_factory=list)
    expires_at: datetime | None = None
    recall_count: int = 0
    last_recalled_at: datetime | None = None
    thread: str | None = None  # the conversation or session it belongs to (reme_mcp/retrieval/lexical.py)


@dataclass(frozen=True)
class Scope:
    """Which memories a search may return, applied before ranking so a filter never hides a match.

    Times are POSIX seconds; `after` is inclusive, `before` exclusive, both on `created_at`.
    """

    types: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    all_tags: bool = False  # True: a memory needs every tag; False: any one of them
    after: float | None = None
    before: float | None = None
    thread: str | None = None  # only the memories of this conversation or session

    @property
    def narrows(self) -> bool:
        """True when the filter needs more than the memory type (which every key space knows by itself)."""
        return bool(self.tags) or self.after is not None or self.before is not None or self.thread is not None


class Embedding(BaseModel):
    """Which model made a vector, so vectors from two models are never compared."""

    model_id: str
    dim: int


def embedding_text(text: str, keywords: list[str]) -> str:
    """What gets embedded: keywords lead, so a short cue that names them lands close."""
    return f"{', '.join(keywords)}: {text}" if keywords else text


def text_checksum(text: str) -> str:
    """SHA-256 of the UTF-8 text: stored next to it and checked on every read."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _time(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, tz=timezone.utc)


def memory_from_row(row: Sequence[Any], tags: list[str], restore: str) -> tuple[int, Memory]:
    """(rowid, Memory) from a row of the memory columns in the stores' common order (rowid, workspace_id, id,
    text, keywords, metadata, created_at, memory_type, status, text_sha256, tags, expires_at, recall_count,
    last_recalled_at, thread), its text checked against its checksum. `tags` are the row's, decoded by the backend;
    `restore` says how to get a good copy back."""
    (rowid, workspace_id, memory_id, text, keywords, metadata, created_at, memory_type, status, checksum,
     _, expires_at, recall_count, last_recalled_at, thread) = row
    if checksum and checksum != text_checksum(text):  # an empty checksum: stored before checksums existed
        raise StoreCorrupt(
            f"Memory {memory_id} in workspace '{workspace_id}' fails its checksum: the store was changed outside "
            f"reme-mcp. {restore}"
        )
    return rowid, Memory(
        id=memory_id,
        workspace_id=workspace_id,
        text=text,
        keywords=json.loads(keywords),
        metadata=json.loads(metadata),
        created_at=datetime.fromtimestamp(created_at, tz=timezone.utc),
        memory_type=memory_type,
        status=status,
        tags=tags,
        expires_at=_time(expires_at),
        recall_count=recall_count,
        last_recalled_at=_time(last_recalled_at),
        thread=thread,
    )


def pages(read: Callable[[int], list[Any]]) -> Iterator[list[Any]]:
    """Keyset paging by rowid: `read(after)` returns the next rows (rowid first, ascending), empty at the end.

    Each page is its own short read, so a scan of a big workspace never holds writers off for its length.
    """
    last = 0
    while rows := read(last):
        last = rows[-1][0]
        yield rows


def content_id(text: str, keywords: list[str], thread: str | None = None) -> str:
    """The id of an episode is a digest of its content (and thread: "Thanks!" said in two conversations
    is two memories).

    Two clients that retry the same `remember` (or two processes racing) reach the
    same id, so the store's unique key turns the second write into a no-op instead
    of a duplicate.
    """
    content = [text, keywords] if thread is None else [text, keywords, thread]
    digest = hashlib.sha256(json.dumps(content, ensure_ascii=False).encode("utf-8")).hexdigest()
    return digest[:16]


class VectorSpace(Protocol):
    """Nearest-neighbour search over one workspace's memory vectors (cosine; vectors are unit length).

    `KeySpace` (reme_mcp/retrieval/dense.py) is the in-process one; a database that searches its own
    vectors (pgvector) hands out one that asks it.
    """

    @property
    def rowids(self) -> np.ndarray:
        """Rowid of every memory with a vector, ascending (int64)."""

    @property
    def kinds(self) -> np.ndarray:
        """Memory type of each of `rowids`, '' when not active (object array)."""

    def search(
        self, vector: np.ndarray, limit: int, types: Sequence[str] | None = None, allowed: np.ndarray | None = None
    ) -> list[tuple[int, float]]:
        """(rowid, cosine) best first over active memories of `types` (all when None), only rowids in
        `allowed` when given."""

    def similarities(self, vector: np.ndarray, rowids: list[int]) -> dict[int, float]:
        """Cosine of the query with each of `rowids` that has a vector."""


@runtime_checkable
class SearchesVectors(Protocol):
    """A store that searches its own vectors (pgvector): recall asks it rather than loading them into the process."""

    def vector_space(self, workspace_id: str) -> VectorSpace: ...


class MemoryStore(Protocol):
    """The storage operations the memory core uses; sqlite.py is the reference."""

    def open(self, model_id: str | None) -> None:
        """Create or check the schema; refuse a store written by another embedding model."""

    def close(self) -> None: ...

    def workspace_exists(self, workspace_id: str) -> bool: ...

    def list_workspaces(self) -> list[tuple[str, int]]:
        """(workspace id, memory count) for every workspace."""

    def list_memories(self, workspace_id: str, limit: int, offset: int = 0) -> list[Memory]:
        """Newest first."""

    def get(self, workspace_id: str, memory_id: str) -> Memory | None: ...

    def add(self, memory: Memory, vector: np.ndarray, embedding: Embedding) -> tuple[Memory, bool]:
        """Store durably; returns the stored memory and False when it was already there."""

    def delete_ids(self, workspace_id: str, memory_ids: list[str]) -> int: ...

    def delete_workspace(self, workspace_id: str) -> int:
        """Delete a workspace and all it holds; returns how many memories it had."""

    def memories_with_vectors(self, workspace_id: str, batch: int = 500) -> Any:
        """Batches of (memory, vector) of one workspace, oldest first."""

    def lexical(self, workspace_id: str, match: str, limit: int, scope: Scope | None = None) -> list[tuple[int, float]]:
        """(rowid, score) by BM25 for an FTS5 match expression over active memories inside `scope`, best first."""

    def fingerprint(self, workspace_id: str) -> tuple[float, ...]:
        """Changes whenever a memory, a cell key or the trained model of the workspace changes."""

    def count(self) -> int:
        """Memories in the whole store."""

    def vectors(self, workspace_id: str, after: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(rowids, matrix, kinds) of every vector in the workspace with a rowid above `after`, ascending;
        kind is the memory type, '' if superseded."""

    def last_rowid(self) -> int:
        """The highest rowid ever given to a memory; rowids are never reused."""

    def newest_rowid(self, workspace_id: str) -> int:
        """The highest rowid among the workspace's memories that this reader can see. Writers of one workspace
        queue on its lock from before they take a rowid until they commit, so a memory of it that commits
        later always gets a higher one: a mark at this rowid skips none (last_rowid can count a rowid whose
        write is still under way, in PostgreSQL)."""

    def replace(self, memory: Memory, vector: np.ndarray, embedding: Embedding) -> None:
        """Rewrite the memory with this id (status, metadata, text) under a new rowid."""

    def set_status(self, workspace_id: str, memory_id: str, status: str, metadata: dict[str, Any]) -> bool:
        """Change status and metadata, keeping text and vector, under a new rowid; False if it is gone."""

    def add_tool_calls(self, workspace_id: str, records: list[tuple[str, str, float, str | None]]) -> int: ...

    def tool_calls(self, workspace_id: str, tool_name: str) -> list[str]: ...

    def fetch(self, rowids: list[int]) -> dict[int, Memory]: ...

    def add_many(self, items: list[tuple[Memory, np.ndarray]], embedding: Embedding) -> int:
        """Store many memories in one transaction; returns how many were new."""

    def cell_keys(self, workspace_id: str) -> dict[int, np.ndarray]:
        """rowid -> the memory's trained keys (count x dim)."""

    def without_cell_keys(
        self, workspace_id: str, model_id: str, after: int = 0, limit: int | None = None
    ) -> list[tuple[int, str, list[str]]]:
        """(rowid, text, keywords) of active memories with no keys from this model yet (rowid > `after`), by
        rowid, the first `limit` of them (all when None)."""

    def put_cell_keys(self, workspace_id: str, rows: list[tuple[int, np.ndarray]], embedding: Embedding) -> None: ...

    def cell_model(self, workspace_id: str) -> tuple[bytes, bool, str] | None:
        """(state, enabled, report JSON) of the workspace's trained model."""

    def put_cell_model(self, workspace_id: str, state: bytes, enabled: bool, report: str) -> None: ...

    def iter_all(self, batch: int) -> Any:
        """Batches of (rowid, text, keywords) over the whole store, for re-embedding."""

    def replace_vectors(self, rows: list[tuple[int, np.ndarray]], embedding: Embedding) -> None: ...

    # -- lifecycle (reme_mcp/lifecycle) ---------------------------------------------

    def scope_rowids(self, workspace_id: str, scope: Scope) -> np.ndarray:
        """Rowids of the active memories inside `scope`, ascending (a recall filter, before ranking)."""

    def select(self, workspace_id: str, scope: Scope, limit: int) -> list[Memory]:
        """Active memories inside `scope`, newest first."""

    def scan(self, workspace_id: str, batch: int = 500) -> Any:
        """Batches of every memory of the workspace, any status, oldest first."""

    def usage(self, rowids: list[int]) -> dict[int, tuple[float, int]]:
        """rowid -> (created_at, recall_count)."""

    def threads(self, workspace_id: str, rowids: list[int]) -> dict[int, str]:
        """rowid -> its thread as stored (a key to group by, not for display), for those of `rowids` in the
        workspace that are in a thread."""

    def answered(self, workspace_id: str, rowids: list[int], scope: Scope | None = None) -> dict[int, int]:
        """rowid -> the rowid of the memory just before it in its thread, the one it replies to, for those of
        `rowids` in a thread whose memory before it is active and inside `scope`."""

    def mark_recalled(self, rowids: list[int], now: float) -> bool: ...

    def purge_expired(self, workspace_id: str, now: float) -> int:
        """Delete memories past their expiry or the workspace's retention; returns how many."""

    def set_retention(self, workspace_id: str, seconds: float | None) -> None: ...

    def add_tags(self, workspace_id: str, memory_id: str, tags: list[str]) -> None: ...

    def merge(self, survivor: Memory, vector: np.ndarray, embedding: Embedding, group: list[Memory]) -> bool:
        """Replace `group` by `survivor` atomically; the other ids become its aliases (get() resolves them).
        False, writing nothing, when a memory of `group` changed since it was read."""

    def tool_call_records(self, workspace_id: str) -> list[tuple[int, str, str]]: ...

    def forget(self, workspace_id: str, memory_ids: list[str], tool_call_rowids: list[int]) -> int:
        """Delete memories and tool-call records, leaving no trace of their text in the indexes."""

    def checkpoint(self, seconds: float = 5.0) -> bool:
        """Empty the write-ahead log into the file; False if another process kept it busy."""
