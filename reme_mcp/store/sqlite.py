"""The embedded store: one SQLite file in WAL mode, shared safely by several processes.

Why these choices:
- WAL lets readers run while one process writes; `BEGIN IMMEDIATE` takes the write
  lock up front, so two writers queue on the busy timeout instead of failing with
  "database is locked" when a read transaction tries to upgrade.
- `synchronous=FULL`: `remember` promises the write survives a crash once it answers.
- `AUTOINCREMENT` means a rowid is never reused, so (count, max rowid) of a workspace
  changes on every add or delete and in-process caches can tell they are stale even
  when another process did the writing.
- FTS5 (external content, kept in step by triggers) gives BM25 without a second store.
- `secure_delete`: a forgotten memory's pages are zeroed, not left readable in the file.
- With an encryption key the file is opened through SQLCipher (reme_mcp/privacy/encryption.py):
  every page, the indexes and the WAL included, is AES-256 encrypted on disk.
- Every index lives in the same file as the rows and changes in the same transaction, so a
  crash cannot tear one from the other. A file that was changed or copied behind SQLite's
  back still can be: `open` checks the cheap signs (row counts of the lexical index, cell
  keys without a memory) and rebuilds what disagrees, with a warning in the log; `verify`
  (`reme check`) does the full check.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from reme_mcp.errors import StoreCorrupt, StoreMismatch
from reme_mcp.privacy import encryption
from reme_mcp.retrieval.lexical import THREAD_CONTEXT, search_terms
from reme_mcp.store.base import Embedding, Memory, Scope, memory_from_row, pages, text_checksum

log = logging.getLogger(__name__)

# 2: memory_type and status columns, tool_calls table; 3: text checksums, trained cells;
# 4: tags, expiry, use counts, aliases of merged memories, workspace retention;
# 5: per-workspace counters kept by triggers, so telling a cache it is stale costs one row, not a scan;
# 6: search terms (CJK pairs, thread context) in the lexical index; 7: Russian stems in the search terms;
# 8: the pairs and stems of keywords too. An older store is upgraded in place.
SCHEMA_VERSION = 8

STORE_FILE = "memory.sqlite3"  # the embedded store's file under store_dir
LOCK_WAIT_MS = 60_000  # how long a write waits for another process's write to finish
LOCK_WAIT_BOOKKEEPING_MS = 200  # recall counts: skipped rather than waited for

# One statement per string: executescript() would commit the open transaction first.
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS workspaces (id TEXT PRIMARY KEY, created_at REAL NOT NULL)",
    """CREATE TABLE IF NOT EXISTS memories (
        rowid INTEGER PRIMARY KEY AUTOINCREMENT,
        workspace_id TEXT NOT NULL,
        id TEXT NOT NULL,
        text TEXT NOT NULL,
        keywords TEXT NOT NULL,
        metadata TEXT NOT NULL,
        created_at REAL NOT NULL,
        embedding_model TEXT NOT NULL,
        embedding_dim INTEGER NOT NULL,
        embedding BLOB NOT NULL,
        memory_type TEXT NOT NULL DEFAULT 'episode',
        status TEXT NOT NULL DEFAULT 'active',
        text_sha256 TEXT NOT NULL DEFAULT '',
        UNIQUE (workspace_id, id)
    )""",
    # Trained cells (reme_mcp/cells): the extra keys of a memory, and one model per workspace.
    """CREATE TABLE IF NOT EXISTS cell_keys (
        memory_rowid INTEGER PRIMARY KEY,
        workspace_id TEXT NOT NULL,
        embedding_model TEXT NOT NULL,
        count INTEGER NOT NULL,
        dim INTEGER NOT NULL,
        keys BLOB NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS cell_keys_by_workspace ON cell_keys (workspace_id)",
    """CREATE TABLE IF NOT EXISTS cell_models (
        workspace_id TEXT PRIMARY KEY,
        state BLOB NOT NULL,
        enabled INTEGER NOT NULL,
        report TEXT NOT NULL,
        trained_at REAL NOT NULL
    )""",
    """CREATE TRIGGER IF NOT EXISTS memories_cells_ad AFTER DELETE ON memories BEGIN
        DELETE FROM cell_keys WHERE memory_rowid = old.rowid;
    END""",
    """CREATE TABLE IF NOT EXISTS tool_calls (
        rowid INTEGER PRIMARY KEY AUTOINCREMENT,
        workspace_id TEXT NOT NULL,
        tool_name TEXT NOT NULL,
        record TEXT NOT NULL,
        created_at REAL NOT NULL,
        call_key TEXT,
        UNIQUE (workspace_id, call_key)
    )""",
    "CREATE INDEX IF NOT EXISTS tool_calls_by_name ON tool_calls (workspace_id, tool_name)",
    # The ids of memories merged into another by consolidate: remember, recall and forget still know them.
    """CREATE TABLE IF NOT EXISTS aliases (
        workspace_id TEXT NOT NULL,
        alias TEXT NOT NULL,
        memory_id TEXT NOT NULL,
        created_at REAL NOT NULL,
        PRIMARY KEY (workspace_id, alias)
    )""",
)
# The lexical index, created after the columns it reads exist. Keywords are indexed as their JSON list: the
# tokenizer drops the brackets, quotes and commas and keeps the words. `search_terms` is what else a memory
# is found by (reme_mcp/retrieval/lexical.py: CJK character pairs, Russian stems, its thread's previous memories).
_LEXICAL = (
    """CREATE VIRTUAL TABLE IF NOT EXISTS memories_fts USING fts5(
        text, keywords, search_terms, content='memories', content_rowid='rowid',
        tokenize='porter unicode61 remove_diacritics 2'
    )""",
    """CREATE TRIGGER IF NOT EXISTS memories_ai AFTER INSERT ON memories BEGIN
        INSERT INTO memories_fts(rowid, text, keywords, search_terms)
        VALUES (new.rowid, new.text, new.keywords, new.search_terms);
    END""",
    """CREATE TRIGGER IF NOT EXISTS memories_ad AFTER DELETE ON memories BEGIN
        INSERT INTO memories_fts(memories_fts, rowid, text, keywords, search_terms)
        VALUES ('delete', old.rowid, old.text, old.keywords, old.search_terms);
    END""",
    """CREATE TRIGGER IF NOT EXISTS memories_au AFTER UPDATE OF search_terms ON memories BEGIN
        INSERT INTO memories_fts(memories_fts, rowid, text, keywords, search_terms)
        VALUES ('delete', old.rowid, old.text, old.keywords, old.search_terms);
        INSERT INTO memories_fts(rowid, text, keywords, search_terms)
        VALUES (new.rowid, new.text, new.keywords, new.search_terms);
    END""",
)
# Schema 5 indexed text and keywords only: its lexical index is made again.
_OLD_LEXICAL = ("DROP TRIGGER IF EXISTS memories_ai", "DROP TRIGGER IF EXISTS memories_ad",
                "DROP TRIGGER IF EXISTS memories_au", "DROP TABLE IF EXISTS memories_fts")

# Columns added after version 1, with their definitions, for upgrading an older store in place.
_ADDED_COLUMNS = {
    "memories": {
        "memory_type": "TEXT NOT NULL DEFAULT 'episode'",
        "status": "TEXT NOT NULL DEFAULT 'active'",
        "text_sha256": "TEXT NOT NULL DEFAULT ''",
        "tags": "TEXT NOT NULL DEFAULT '[]'",
        "expires_at": "REAL",
        "recall_count": "INTEGER NOT NULL DEFAULT 0",
        "last_recalled_at": "REAL",
        "thread": "TEXT",
        "search_terms": "TEXT NOT NULL DEFAULT ''",
    },
    "workspaces": {
        "retention": "REAL",  # seconds a memory lives when it has no expires_at of its own
        # Kept by the triggers below: how many memories, the last rowid given to one, and a counter of
        # changes to the trained cells. Together with the cell model's time they are the fingerprint.
        "memory_count": "INTEGER NOT NULL DEFAULT 0",
        "last_rowid": "INTEGER NOT NULL DEFAULT 0",
        "cells_version": "INTEGER NOT NULL DEFAULT 0",
    },
}
# Created after the columns they use exist.
_INDEXES = (
    "CREATE INDEX IF NOT EXISTS memories_expiry ON memories (workspace_id, expires_at)",
    "CREATE INDEX IF NOT EXISTS memories_created ON memories (workspace_id, created_at)",
    "CREATE INDEX IF NOT EXISTS memories_thread ON memories (workspace_id, thread, created_at) "
    "WHERE thread IS NOT NULL",
    """CREATE TRIGGER IF NOT EXISTS memories_count_ai AFTER INSERT ON memories BEGIN
        INSERT OR IGNORE INTO workspaces(id, created_at) VALUES (new.workspace_id, new.created_at);
        UPDATE workspaces SET memory_count = memory_count + 1, last_rowid = max(last_rowid, new.rowid)
        WHERE id = new.workspace_id;
    END""",
    """CREATE TRIGGER IF NOT EXISTS memories_count_ad AFTER DELETE ON memories BEGIN
        UPDATE workspaces SET memory_count = memory_count - 1 WHERE id = old.workspace_id;
    END""",
    """CREATE TRIGGER IF NOT EXISTS cell_keys_version_ai AFTER INSERT ON cell_keys BEGIN
        UPDATE workspaces SET cells_version = cells_version + 1 WHERE id = new.workspace_id;
    END""",
    """CREATE TRIGGER IF NOT EXISTS cell_keys_version_ad AFTER DELETE ON cell_keys BEGIN
        UPDATE workspaces SET cells_version = cells_version + 1 WHERE id = old.workspace_id;
    END""",
)
# The counters recomputed from the rows: on upgrade, and when the open-time check finds them off.
_RECOUNT = (
    "INSERT OR IGNORE INTO workspaces(id, created_at) "
    "SELECT workspace_id, min(created_at) FROM memories GROUP BY workspace_id",
    "UPDATE workspaces SET memory_count = (SELECT count(*) FROM memories m WHERE m.workspace_id = workspaces.id), "
    "last_rowid = max(last_rowid, (SELECT coalesce(max(rowid), 0) FROM memories m WHERE m.workspace_id = workspaces.id)), "
    "cells_version = cells_version + 1",
)

_COLUMNS = (
    "rowid, workspace_id, id, text, keywords, metadata, created_at, memory_type, status, text_sha256, "
    "tags, expires_at, recall_count, last_recalled_at, thread"
)
# What moves with a memory when it is rewritten under a new rowid.
_CARRIED = (
    "workspace_id, id, text, keywords, created_at, embedding_model, embedding_dim, embedding, memory_type, "
    "text_sha256, tags, expires_at, recall_count, last_recalled_at, thread, search_terms"
)


def _row_to_memory(row: tuple) -> tuple[int, Memory]:
    return memory_from_row(row, json.loads(row[10]), "Restore it from a backup (reme backup).")


def _scope_filter(scope: Scope | None, alias: str = "") -> tuple[str, list[object]]:
    """SQL that keeps the active memories inside `scope` (all active ones when None)."""
    clause, params = f" AND {alias}status = 'active'", []
    if scope is None:
        return clause, params
    if scope.types:
        clause += f" AND {alias}memory_type IN ({','.join('?' * len(scope.types))})"
        params += scope.types
    if scope.tags:
        matched = f"(SELECT count(DISTINCT t.value) FROM json_each({alias}tags) t WHERE t.value IN " \
                  f"({','.join('?' * len(scope.tags))}))"
        clause += f" AND {matched} {'= ?' if scope.all_tags else '> 0'}"
        params += [*scope.tags, *([len(set(scope.tags))] if scope.all_tags else [])]
    if scope.after is not None:
        clause += f" AND {alias}created_at >= ?"
        params.append(scope.after)
    if scope.before is not None:
        clause += f" AND {alias}created_at < ?"
        params.append(scope.before)
    if scope.thread is not None:
        clause += f" AND {alias}thread = ?"
        params.append(scope.thread)
    return clause, params


def _retry_while_locked(step: Callable[[], object], seconds: float = 60.0) -> None:
    """Switching a new file to WAL needs an exclusive lock for which SQLite does not call the
    busy handler, so two processes creating one store at once would see "database is locked"."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            step()
            return
        except encryption.OperationalErrors as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


class SQLiteStore:
    """`MemoryStore` on one SQLite database (a file, or `:memory:` for the RAM backend)."""

    def __init__(self, path: Path | str, key: str | None = None):
        self.path = str(path)
        self.key = key
        self._lock = threading.RLock()
        self._db: sqlite3.Connection | None = None
        self._unwritten_recalls: dict[int, tuple[int, float]] = {}  # rowid -> (recalls, last time)

    # -- lifecycle -----------------------------------------------------------------

    def open(self, model_id: str | None) -> None:
        """Open (creating if needed); `model_id=None` skips the model check, for re-embedding."""
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        db = encryption.connect(self.path, self.key)
        db.execute(f"PRAGMA busy_timeout = {LOCK_WAIT_MS}")
        _retry_while_locked(lambda: db.execute("PRAGMA journal_mode = WAL"))
        db.execute("PRAGMA synchronous = FULL")
        db.execute("PRAGMA secure_delete = ON")
        self._db = db
        with self._write():
            for statement in _SCHEMA:
                db.execute(statement)
            for table, columns in _ADDED_COLUMNS.items():
                present = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
                for column, definition in columns.items():
                    if column not in present:
                        db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {definition}")
            for statement in _INDEXES:
                db.execute(statement)
            version = self._meta("schema_version")
            upgrading_lexical = version is not None and int(version) < 6
            if upgrading_lexical:  # terms first, with no index or trigger to keep in step, then one rebuild
                for statement in _OLD_LEXICAL:
                    db.execute(statement)
                self._index_search_terms()
            for statement in _LEXICAL:
                db.execute(statement)
            if upgrading_lexical:
                db.execute("INSERT INTO memories_fts(memories_fts) VALUES ('rebuild')")
            elif version is not None and int(version) < 8:  # Russian stems, then keywords, joined the search terms
                self._index_search_terms()
            if version is not None and int(version) < 3:  # texts stored before checksums get theirs now
                unsummed = db.execute("SELECT rowid, text FROM memories WHERE text_sha256 = ''").fetchall()
                db.executemany(
                    "UPDATE memories SET text_sha256 = ? WHERE rowid = ?", [(text_checksum(t), r) for r, t in unsummed]
                )
            if version is not None and int(version) < 5:
                for statement in _RECOUNT:
                    db.execute(statement)
            if version is None or int(version) < SCHEMA_VERSION:
                self._set_meta("schema_version", str(SCHEMA_VERSION))
            elif int(version) > SCHEMA_VERSION:
                raise StoreMismatch(
                    f"The store at {self.path} has schema version {version}, newer than this reme-mcp "
                    f"understands ({SCHEMA_VERSION}). Upgrade reme-mcp (pip install -U reme-mcp)."
                )
            for repaired in self._repair_indexes(thorough=False):
                log.warning("store %s: %s", self.path, repaired)
        stored = self._meta("embedding_model")
        if model_id is not None and stored is not None and stored != model_id:
            workspaces = ", ".join(f"{w} ({n})" for w, n in self.list_workspaces()) or "none"
            raise StoreMismatch(
                f"The store at {self.path} holds vectors from the embedding model '{stored}' "
                f"({self._meta('embedding_dim')}-d), but '{model_id}' is configured; these workspaces need "
                f"re-embedding: {workspaces}. Mixing them would give "
                f"wrong recall. Either configure the original model again, or re-embed the store with the new "
                f"one: `reme reembed store_dir={Path(self.path).parent}` plus your embedding_model.* keys "
                f"(texts are kept, so nothing is lost)."
            )

    def verify(self) -> tuple[list[str], list[int]]:
        """The full check behind `reme check`: SQLite's own integrity check, FTS5's check of the lexical
        index against the rows, and every vector and cell key's size. Rebuilds what disagrees and returns
        (what was repaired, rowids whose vector is torn: the caller re-embeds them from their text)."""
        with self._lock:
            problems = [row[0] for row in self.db.execute("PRAGMA integrity_check").fetchall()]
        if problems != ["ok"]:
            raise StoreCorrupt(
                f"The store file {self.path} is damaged ({'; '.join(problems[:3])}). Restore it from a copy made "
                "with `reme backup`."
            )
        with self._write():
            repaired = self._repair_indexes(thorough=True)
        return repaired, self.torn_vectors()

    def _repair_indexes(self, thorough: bool) -> list[str]:
        """Rebuild what disagrees with the rows, inside the caller's write transaction; returns what it did."""
        repaired = []
        if not self._lexical_index_agrees(thorough):
            self.db.execute("INSERT INTO memories_fts(memories_fts) VALUES ('rebuild')")
            repaired.append("the lexical (FTS5) index did not match the memories; rebuilt it from them")
        if not self._counters_agree():
            for statement in _RECOUNT:
                self.db.execute(statement)
            repaired.append("the per-workspace memory counters did not match the memories; recounted them")
        dropped = self.db.execute(
            "DELETE FROM cell_keys WHERE memory_rowid NOT IN (SELECT rowid FROM memories) "
            "OR length(keys) != 4 * count * dim"
        ).rowcount
        if dropped:
            repaired.append(f"dropped {dropped} trained cell key set(s) with no memory or a torn size; "
                            "their memories are still found by their own vectors")
        return repaired

    def _lexical_index_agrees(self, thorough: bool) -> bool:
        if thorough:
            try:
                self.db.execute("INSERT INTO memories_fts(memories_fts, rank) VALUES ('integrity-check', 1)")
                return True
            except encryption.DatabaseErrors:
                return False
        # Every memory has one row in the index's docsize table, under the same rowid.
        rows = self.db.execute("SELECT count(*), coalesce(sum(rowid), 0) FROM memories").fetchone()
        indexed = self.db.execute("SELECT count(*), coalesce(sum(id), 0) FROM memories_fts_docsize").fetchone()
        return rows == indexed

    def _counters_agree(self) -> bool:
        off = self.db.execute(
            "SELECT count(*) FROM (SELECT workspace_id, count(*) AS n, max(rowid) AS last FROM memories "
            "GROUP BY workspace_id) c LEFT JOIN workspaces w ON w.id = c.workspace_id "
            "WHERE w.id IS NULL OR w.memory_count != c.n OR w.last_rowid < c.last"
        ).fetchone()[0]
        emptied = self.db.execute(
            "SELECT count(*) FROM workspaces w WHERE memory_count != 0 "
            "AND NOT EXISTS (SELECT 1 FROM memories m WHERE m.workspace_id = w.id)"
        ).fetchone()[0]
        return off == 0 and emptied == 0

    def torn_vectors(self) -> list[int]:
        """Rowids whose stored vector is not `embedding_dim` floats (never served: `vectors` skips them)."""
        with self._lock:
            return [r[0] for r in self.db.execute(
                "SELECT rowid FROM memories WHERE length(embedding) != 4 * embedding_dim ORDER BY rowid"
            )]

    def close(self) -> None:
        with self._lock:
            if self._db is not None and self._unwritten_recalls:
                self._write_recalls(LOCK_WAIT_MS)
            if self._db is not None:
                self._db.close()
                self._db = None

    # -- helpers ------------------------------------------------------------------

    @property
    def db(self) -> sqlite3.Connection:
        if self._db is None:
            raise RuntimeError("store is not open")
        return self._db

    def _write(self) -> "_WriteTx":
        return _WriteTx(self)

    def _pages(self, sql: str, params: tuple[object, ...], batch: int) -> Iterator[list[tuple]]:
        """The rows of `sql`, whose last two parameters are the rowid to start after and the page size."""

        def read(after: int) -> list[tuple]:
            with self._lock:
                return self.db.execute(sql, (*params, after, batch)).fetchall()

        return pages(read)

    def _meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def _set_meta(self, key: str, value: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))

    def _check_embedding(self, embedding: Embedding) -> None:
        stored_model, stored_dim = self._meta("embedding_model"), self._meta("embedding_dim")
        if stored_model is None:
            self._set_meta("embedding_model", embedding.model_id)
            self._set_meta("embedding_dim", str(embedding.dim))
        elif stored_model != embedding.model_id or int(stored_dim or 0) != embedding.dim:
            raise StoreMismatch(
                f"The store holds {stored_dim}-d vectors from '{stored_model}', this write has {embedding.dim}-d "
                f"vectors from '{embedding.model_id}'. Run `reme reembed` to move the store to the new model."
            )

    # -- reads --------------------------------------------------------------------

    def workspace_exists(self, workspace_id: str) -> bool:
        with self._lock:
            return self.db.execute("SELECT 1 FROM workspaces WHERE id = ?", (workspace_id,)).fetchone() is not None

    def list_workspaces(self) -> list[tuple[str, int]]:
        with self._lock:
            return self.db.execute(
                "SELECT w.id, count(m.rowid) FROM workspaces w LEFT JOIN memories m ON m.workspace_id = w.id "
                "GROUP BY w.id ORDER BY w.id"
            ).fetchall()

    def list_memories(self, workspace_id: str, limit: int, offset: int = 0) -> list[Memory]:
        with self._lock:
            rows = self.db.execute(
                f"SELECT {_COLUMNS} FROM memories WHERE workspace_id = ? ORDER BY rowid DESC LIMIT ? OFFSET ?",
                (workspace_id, limit, offset),
            ).fetchall()
        return [_row_to_memory(row)[1] for row in rows]

    def get(self, workspace_id: str, memory_id: str) -> Memory | None:
        """The memory with this id, or the one it was merged into (consolidate keeps the old id as an alias)."""
        with self._lock:
            row = self.db.execute(
                f"SELECT {_COLUMNS} FROM memories WHERE workspace_id = ? AND id = ?", (workspace_id, memory_id)
            ).fetchone()
            if row is None:
                row = self.db.execute(
                    f"SELECT {_COLUMNS} FROM memories WHERE workspace_id = ? AND id = "
                    "(SELECT memory_id FROM aliases WHERE workspace_id = ? AND alias = ?)",
                    (workspace_id, workspace_id, memory_id),
                ).fetchone()
        return _row_to_memory(row)[1] if row else None

    def lexical(self, workspace_id: str, match: str, limit: int, scope: Scope | None = None) -> list[tuple[int, float]]:
        """BM25 over the whole lexical index first, then the workspace and scope filter on its best rows.

        Joining every match to its row before ranking cost a B-tree lookup per match: at 100k memories
        a question's common words match most of them (33 ms against 16 ms). The filter keeps the ranking
        exact: when fewer than `limit` of the rows fetched pass it, the joined query ranks instead.
        """
        if not match:
            return []
        clause, params = _scope_filter(scope, "m.")
        fetch = 2 * limit + 16
        with self._lock:
            ranked = self.db.execute(
                "SELECT rowid, bm25(memories_fts) AS score FROM memories_fts WHERE memories_fts MATCH ? "
                "ORDER BY score LIMIT ?",
                (match, fetch),
            ).fetchall()
            passing = {
                row[0] for row in self.db.execute(
                    "SELECT m.rowid FROM memories m WHERE m.rowid IN (SELECT value FROM json_each(?)) "
                    f"AND m.workspace_id = ?{clause}",
                    (json.dumps([r for r, _ in ranked]), workspace_id, *params),
                )
            }
            if len(passing) >= limit or len(ranked) < fetch:
                return [(rowid, -score) for rowid, score in ranked if rowid in passing][:limit]
            rows = self.db.execute(
                "SELECT m.rowid, bm25(memories_fts) AS score FROM memories_fts "
                "JOIN memories m ON m.rowid = memories_fts.rowid "
                f"WHERE memories_fts MATCH ? AND m.workspace_id = ?{clause} ORDER BY score LIMIT ?",
                (match, workspace_id, *params, limit),
            ).fetchall()
        return [(rowid, -score) for rowid, score in rows]

    def fingerprint(self, workspace_id: str) -> tuple[float, ...]:
        """(memories, last rowid, cell changes, cell model time): one row, whatever the workspace's size."""
        with self._lock:
            row = self.db.execute(
                "SELECT memory_count, last_rowid, cells_version, "
                "(SELECT coalesce(max(trained_at), 0) FROM cell_models WHERE workspace_id = ?1) "
                "FROM workspaces WHERE id = ?1",
                (workspace_id,),
            ).fetchone()
        return tuple(row) if row else (0, 0, 0, 0)

    def last_rowid(self) -> int:
        """The highest rowid ever given to a memory (AUTOINCREMENT's counter: deleting rows never lowers it)."""
        with self._lock:
            row = self.db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'memories'").fetchone()
        return int(row[0]) if row else 0

    def newest_rowid(self, workspace_id: str) -> int:
        with self._lock:
            row = self.db.execute("SELECT last_rowid FROM workspaces WHERE id = ?", (workspace_id,)).fetchone()
        return int(row[0]) if row else 0

    def count(self) -> int:
        with self._lock:
            return self.db.execute("SELECT count(*) FROM memories").fetchone()[0]

    def scope_rowids(self, workspace_id: str, scope: Scope) -> np.ndarray:
        """Rowids of the workspace's active memories inside `scope`, ascending."""
        clause, params = _scope_filter(scope)
        with self._lock:
            rows = self.db.execute(
                f"SELECT rowid FROM memories WHERE workspace_id = ?{clause} ORDER BY rowid", (workspace_id, *params)
            ).fetchall()
        return np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))

    def select(self, workspace_id: str, scope: Scope, limit: int) -> list[Memory]:
        """The workspace's active memories inside `scope`, newest first."""
        clause, params = _scope_filter(scope)
        with self._lock:
            rows = self.db.execute(
                f"SELECT {_COLUMNS} FROM memories WHERE workspace_id = ?{clause} ORDER BY rowid DESC LIMIT ?",
                (workspace_id, *params, limit),
            ).fetchall()
        return [_row_to_memory(row)[1] for row in rows]

    def usage(self, rowids: list[int]) -> dict[int, tuple[float, int]]:
        """rowid -> (created_at, recall_count), for weighting recent and often-recalled memories."""
        if not rowids:
            return {}
        with self._lock:
            rows = self.db.execute(
                "SELECT rowid, created_at, recall_count FROM memories WHERE rowid IN (SELECT value FROM json_each(?))",
                (json.dumps(rowids),),
            ).fetchall()
        return {r: (created, count) for r, created, count in rows}

    def threads(self, workspace_id: str, rowids: list[int]) -> dict[int, str]:
        if not rowids:
            return {}
        with self._lock:
            rows = self.db.execute(
                "SELECT m.rowid, m.thread FROM json_each(?) ids CROSS JOIN memories m ON m.rowid = ids.value"
                " WHERE m.workspace_id = ? AND m.thread IS NOT NULL",
                (json.dumps(rowids), workspace_id),
            ).fetchall()
        return dict(rows)

    def answered(self, workspace_id: str, rowids: list[int], scope: Scope | None = None) -> dict[int, int]:
        if not rowids:
            return {}
        clause, params = _scope_filter(scope, "p.")
        with self._lock:
            rows = self.db.execute(
                # CROSS JOIN: look the few rowids up, rather than walk the workspace's thread index for them.
                "SELECT r.rowid, p.rowid FROM json_each(?) ids CROSS JOIN memories r ON r.rowid = ids.value"
                " JOIN memories p ON p.rowid = (SELECT q.rowid FROM memories q WHERE q.workspace_id = r.workspace_id"
                " AND q.thread = r.thread AND (q.created_at, q.rowid) < (r.created_at, r.rowid)"
                " ORDER BY q.created_at DESC, q.rowid DESC LIMIT 1)"
                f" WHERE r.workspace_id = ? AND r.thread IS NOT NULL{clause}",
                (json.dumps(rowids), workspace_id, *params),
            ).fetchall()
        return dict(rows)

    def scan(self, workspace_id: str, batch: int = 500) -> Iterator[list[Memory]]:
        """Every memory of the workspace (any status), oldest first, in batches."""
        sql = f"SELECT {_COLUMNS} FROM memories WHERE workspace_id = ? AND rowid > ? ORDER BY rowid LIMIT ?"
        for rows in self._pages(sql, (workspace_id,), batch):
            yield [_row_to_memory(row)[1] for row in rows]

    def tool_call_records(self, workspace_id: str) -> list[tuple[int, str, str]]:
        """(rowid, tool name, record JSON) of every recorded tool call of the workspace."""
        with self._lock:
            return self.db.execute(
                "SELECT rowid, tool_name, record FROM tool_calls WHERE workspace_id = ? ORDER BY rowid", (workspace_id,)
            ).fetchall()

    def vectors(self, workspace_id: str, after: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        with self._lock:
            rows = self.db.execute(
                "SELECT rowid, embedding_dim, embedding, CASE WHEN status = 'active' THEN memory_type ELSE '' END "
                "FROM memories WHERE workspace_id = ? AND rowid > ? ORDER BY rowid",
                (workspace_id, after),
            ).fetchall()
        torn = [r[0] for r in rows if len(r[2]) != 4 * r[1]]
        if torn:  # never read a torn vector as if it were one; `reme check` re-embeds it from the text
            log.warning("workspace %s: %d memories have a torn vector (rowids %s...); run `reme check`",
                        workspace_id, len(torn), torn[:5])
            rows = [r for r in rows if len(r[2]) == 4 * r[1]]
        if not rows:
            return np.zeros(0, dtype=np.int64), np.zeros((0, 0), dtype=np.float32), np.zeros(0, dtype=object)
        rowids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        matrix = np.frombuffer(b"".join(r[2] for r in rows), dtype=np.float32).reshape(len(rows), rows[0][1])
        kinds = np.array([r[3] for r in rows], dtype=object)
        return rowids, matrix, kinds

    def cell_keys(self, workspace_id: str) -> dict[int, np.ndarray]:
        """The trained keys of each memory of the workspace (rowid -> count x dim)."""
        with self._lock:
            rows = self.db.execute(
                "SELECT memory_rowid, count, dim, keys FROM cell_keys WHERE workspace_id = ?", (workspace_id,)
            ).fetchall()
        return {r: np.frombuffer(blob, dtype=np.float32).reshape(n, d) for r, n, d, blob in rows}

    def without_cell_keys(
        self, workspace_id: str, model_id: str, after: int = 0, limit: int | None = None
    ) -> list[tuple[int, str, list[str]]]:
        """(rowid, text, keywords) of active memories that have no keys from `model_id` yet."""
        with self._lock:
            rows = self.db.execute(
                "SELECT m.rowid, m.text, m.keywords FROM memories m LEFT JOIN cell_keys k "
                "ON k.memory_rowid = m.rowid AND k.embedding_model = ? "
                "WHERE m.workspace_id = ? AND m.status = 'active' AND k.memory_rowid IS NULL AND m.rowid > ? "
                "ORDER BY m.rowid LIMIT ?",
                (model_id, workspace_id, after, -1 if limit is None else limit),
            ).fetchall()
        return [(rowid, text, json.loads(keywords)) for rowid, text, keywords in rows]

    def cell_model(self, workspace_id: str) -> tuple[bytes, bool, str] | None:
        """(state, enabled, report JSON) of the workspace's trained model, if it has one."""
        with self._lock:
            row = self.db.execute(
                "SELECT state, enabled, report FROM cell_models WHERE workspace_id = ?", (workspace_id,)
            ).fetchone()
        return (row[0], bool(row[1]), row[2]) if row else None

    def fetch(self, rowids: list[int]) -> dict[int, Memory]:
        if not rowids:
            return {}
        marks = ",".join("?" * len(rowids))
        with self._lock:
            rows = self.db.execute(f"SELECT {_COLUMNS} FROM memories WHERE rowid IN ({marks})", rowids).fetchall()
        return dict(_row_to_memory(row) for row in rows)

    def iter_all(self, batch: int) -> Iterator[list[tuple[int, str, list[str]]]]:
        sql = "SELECT rowid, text, keywords FROM memories WHERE rowid > ? ORDER BY rowid LIMIT ?"
        for rows in self._pages(sql, (), batch):
            yield [(rowid, text, json.loads(keywords)) for rowid, text, keywords in rows]

    # -- writes -------------------------------------------------------------------

    def _before(self, workspace_id: str, thread: str, created_at: float, rowid: int) -> list[str]:
        """The texts of the memories just before a position in a thread, oldest first."""
        rows = self.db.execute(
            "SELECT text FROM memories WHERE workspace_id = ? AND thread = ? AND (created_at, rowid) < (?, ?) "
            "ORDER BY created_at DESC, rowid DESC LIMIT ?",
            (workspace_id, thread, created_at, rowid, THREAD_CONTEXT),
        ).fetchall()
        return [text for (text,) in reversed(rows)]

    def _rethread(self, workspace_id: str, thread: str | None, created_at: float, rowid: int) -> None:
        """Index the memories after a position in a thread by their new neighbours (after an insert or a
        delete there): a forgotten memory's words must not live on in its followers' search terms."""
        if thread is None:
            return
        followers = self.db.execute(
            "SELECT rowid, text, keywords, created_at, search_terms FROM memories WHERE workspace_id = ? "
            "AND thread = ? AND (created_at, rowid) > (?, ?) ORDER BY created_at, rowid LIMIT ?",
            (workspace_id, thread, created_at, rowid, THREAD_CONTEXT),
        ).fetchall()
        for follower, text, keywords, at, old in followers:
            terms = search_terms(text, self._before(workspace_id, thread, at, follower), json.loads(keywords))
            if terms != old:
                self.db.execute("UPDATE memories SET search_terms = ? WHERE rowid = ?", (terms, follower))

    def _delete(self, where: str, params: tuple[object, ...]) -> int:
        """DELETE FROM memories WHERE `where`, re-indexing the thread followers of what is deleted."""
        threaded = self.db.execute(
            f"SELECT workspace_id, thread, created_at, rowid FROM memories WHERE ({where}) AND thread IS NOT NULL",
            params,
        ).fetchall()
        count = self.db.execute(f"DELETE FROM memories WHERE {where}", params).rowcount
        for position in threaded:
            self._rethread(*position)
        return count

    def _index_search_terms(self) -> None:
        """Give every memory the search terms this version makes (upgrading a store from before them); only
        the memories whose terms change are written."""
        rows = self.db.execute(
            "SELECT rowid, workspace_id, thread, created_at, text, keywords, search_terms FROM memories"
        ).fetchall()
        changed = []
        for rowid, ws, thread, at, text, keywords, stored in rows:
            before = self._before(ws, thread, at, rowid) if thread is not None else []
            terms = search_terms(text, before, json.loads(keywords))
            if terms != stored:
                changed.append((terms, rowid))
        self.db.executemany("UPDATE memories SET search_terms = ? WHERE rowid = ?", changed)

    def _insert(self, memory: Memory, vector: np.ndarray, embedding: Embedding) -> sqlite3.Cursor:
        at = memory.created_at.timestamp()
        before = [] if memory.thread is None else self._before(memory.workspace_id, memory.thread, at, 2**63 - 1)
        cursor = self.db.execute(
            "INSERT OR IGNORE INTO memories(workspace_id, id, text, keywords, metadata, created_at, "
            "embedding_model, embedding_dim, embedding, memory_type, status, text_sha256, "
            "tags, expires_at, recall_count, last_recalled_at, thread, search_terms) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                memory.workspace_id,
                memory.id,
                memory.text,
                json.dumps(memory.keywords, ensure_ascii=False),
                json.dumps(memory.metadata, ensure_ascii=False),
                memory.created_at.timestamp(),
                embedding.model_id,
                embedding.dim,
                np.ascontiguousarray(vector, dtype=np.float32).tobytes(),
                memory.memory_type,
                memory.status,
                text_checksum(memory.text),
                json.dumps(memory.tags, ensure_ascii=False),
                memory.expires_at.timestamp() if memory.expires_at else None,
                memory.recall_count,
                memory.last_recalled_at.timestamp() if memory.last_recalled_at else None,
                memory.thread,
                search_terms(memory.text, before, memory.keywords),
            ),
        )
        if cursor.rowcount == 1:
            self._rethread(memory.workspace_id, memory.thread, at, cursor.lastrowid or 0)
        return cursor

    def add(self, memory: Memory, vector: np.ndarray, embedding: Embedding) -> tuple[Memory, bool]:
        with self._write():
            self._check_embedding(embedding)
            self.db.execute(
                "INSERT OR IGNORE INTO workspaces(id, created_at) VALUES (?, ?)",
                (memory.workspace_id, memory.created_at.timestamp()),
            )
            cursor = self._insert(memory, vector, embedding)
            created = cursor.rowcount == 1
        if created:
            return memory, True
        stored = self.get(memory.workspace_id, memory.id)
        assert stored is not None, "INSERT OR IGNORE skipped a row that is not there"
        return stored, False

    def replace(self, memory: Memory, vector: np.ndarray, embedding: Embedding) -> None:
        """Rewrite a memory (same id) in one transaction.

        The row is deleted and inserted again, so it gets a new rowid and every
        process's dense cache sees the change through the fingerprint.
        """
        with self._write():
            self._check_embedding(embedding)
            self._delete("workspace_id = ? AND id = ?", (memory.workspace_id, memory.id))
            self.db.execute(
                "INSERT OR IGNORE INTO workspaces(id, created_at) VALUES (?, ?)",
                (memory.workspace_id, memory.created_at.timestamp()),
            )
            self._insert(memory, vector, embedding)

    def set_status(self, workspace_id: str, memory_id: str, status: str, metadata: dict) -> bool:
        """Change a memory's status and metadata, keeping its text and vector; False if it is gone.

        Like `replace`, the row moves to a new rowid so dense caches notice the change.
        """
        with self._write():
            row = self.db.execute(
                f"SELECT rowid, {_CARRIED} FROM memories WHERE workspace_id = ? AND id = ?", (workspace_id, memory_id)
            ).fetchone()
            if row is None:
                return False
            self.db.execute("DELETE FROM memories WHERE rowid = ?", (row[0],))
            marks = ", ".join("?" * (len(row) + 1))
            self.db.execute(
                f"INSERT INTO memories({_CARRIED}, metadata, status) VALUES ({marks})",
                (*row[1:], json.dumps(metadata, ensure_ascii=False), status),
            )
        return True

    # -- lifecycle (reme_mcp/lifecycle) ---------------------------------------------

    def purge_expired(self, workspace_id: str, now: float) -> int:
        """Delete the workspace's memories past their expiry (own, or the workspace's retention); returns how many.

        A read decides first, so the usual case (nothing expired) takes no write lock."""
        where = (
            "workspace_id = ?1 AND (expires_at <= ?2 OR (expires_at IS NULL AND created_at <= ?2 - "
            "(SELECT retention FROM workspaces WHERE id = ?1)))"
        )
        with self._lock:
            if self.db.execute(f"SELECT 1 FROM memories WHERE {where} LIMIT 1", (workspace_id, now)).fetchone() is None:
                return 0
        with self._write():
            count = self._delete(where, (workspace_id, now))
            self._drop_dangling_aliases(workspace_id)
            self.db.execute("INSERT INTO memories_fts(memories_fts) VALUES ('optimize')")  # no words left behind
        return count

    def _drop_dangling_aliases(self, workspace_id: str) -> None:
        self.db.execute(
            "DELETE FROM aliases WHERE workspace_id = ?1 AND memory_id NOT IN "
            "(SELECT id FROM memories WHERE workspace_id = ?1)", (workspace_id,)
        )

    def set_retention(self, workspace_id: str, seconds: float | None) -> None:
        with self._write():
            self.db.execute(
                "INSERT OR IGNORE INTO workspaces(id, created_at) VALUES (?, ?)", (workspace_id, time.time())
            )
            self.db.execute("UPDATE workspaces SET retention = ? WHERE id = ?", (seconds, workspace_id))

    def mark_recalled(self, rowids: list[int], now: float) -> bool:
        """Count one more recall of each memory and remember when (no new rowid: caches stay valid).

        Bookkeeping, not data: while another process holds the write lock it waits at most
        LOCK_WAIT_BOOKKEEPING_MS, so a recall never queues behind a long import or training. Counts it
        could not write wait in this process and go with the next one; False when they are waiting."""
        with self._lock:
            for rowid in rowids:
                count, _ = self._unwritten_recalls.get(rowid, (0, now))
                self._unwritten_recalls[rowid] = (count + 1, now)
            return self._write_recalls(LOCK_WAIT_BOOKKEEPING_MS)

    def _write_recalls(self, wait_ms: int) -> bool:
        self.db.execute(f"PRAGMA busy_timeout = {wait_ms}")
        try:
            with self._write():
                self.db.executemany(
                    "UPDATE memories SET recall_count = recall_count + ?, last_recalled_at = ? WHERE rowid = ?",
                    [(count, at, rowid) for rowid, (count, at) in self._unwritten_recalls.items()],
                )
            self._unwritten_recalls.clear()
            return True
        except encryption.OperationalErrors as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
            return False
        finally:
            self.db.execute(f"PRAGMA busy_timeout = {LOCK_WAIT_MS}")

    def add_tags(self, workspace_id: str, memory_id: str, tags: list[str]) -> None:
        """Union `tags` into a stored memory's tags."""
        with self._write():
            row = self.db.execute(
                "SELECT rowid, tags FROM memories WHERE workspace_id = ? AND id = ?", (workspace_id, memory_id)
            ).fetchone()
            if row is not None:
                merged = list(dict.fromkeys([*json.loads(row[1]), *tags]))
                self.db.execute("UPDATE memories SET tags = ? WHERE rowid = ?", (json.dumps(merged), row[0]))

    def merge(self, survivor: Memory, vector: np.ndarray, embedding: Embedding, group: list[Memory]) -> bool:
        """Replace the `group` of memories by `survivor` (one of them, rewritten, or a new one) in one
        transaction; the others' ids become aliases of it.

        `group` is as it was read: if any of it was changed, forgotten or superseded since (by another call
        or process), nothing is written and False is returned."""
        with self._write():
            self._check_embedding(embedding)
            ws = survivor.workspace_id
            for m in group:
                row = self.db.execute(
                    "SELECT text_sha256, status, tags, recall_count FROM memories WHERE workspace_id = ? AND id = ?",
                    (ws, m.id),
                ).fetchone()
                if row != (text_checksum(m.text), "active", json.dumps(m.tags, ensure_ascii=False), m.recall_count):
                    return False
            merged = [m for m in group if m.id != survivor.id]
            gone = [m.id for m in merged]
            for memory_id in [survivor.id, *gone]:
                self._delete("workspace_id = ? AND id = ?", (ws, memory_id))
            self._insert(survivor, vector, embedding)
            self.db.executemany(
                "INSERT OR REPLACE INTO aliases(workspace_id, alias, memory_id, created_at) VALUES (?, ?, ?, ?)",
                [(ws, m.id, survivor.id, m.created_at.timestamp()) for m in merged],
            )
            # Aliases that pointed at a merged memory follow it to the survivor.
            self.db.executemany(
                "UPDATE aliases SET memory_id = ? WHERE workspace_id = ? AND memory_id = ?",
                [(survivor.id, ws, memory_id) for memory_id in gone],
            )
        return True

    def forget(self, workspace_id: str, memory_ids: list[str], tool_call_rowids: list[int]) -> int:
        """Delete memories (with their keys and aliases) and tool-call records in one transaction, leaving no
        trace in the file once `checkpoint` has run: FTS5 segments are merged (a deleted row's words live on in
        old segments until then) and freed pages are zeroed (secure_delete)."""
        with self._write():
            count = 0
            for memory_id in memory_ids:
                count += self._delete("workspace_id = ? AND id = ?", (workspace_id, memory_id))
            self.db.executemany(
                "DELETE FROM aliases WHERE workspace_id = ? AND (memory_id = ? OR alias = ?)",
                [(workspace_id, m, m) for m in memory_ids],
            )
            self.db.executemany("DELETE FROM tool_calls WHERE rowid = ? AND workspace_id = ?",
                                [(r, workspace_id) for r in tool_call_rowids])
            self.db.execute("INSERT INTO memories_fts(memories_fts) VALUES ('optimize')")
        return count

    def checkpoint(self, seconds: float = 5.0) -> bool:
        """Copy the write-ahead log into the file and empty it; False if a reader elsewhere kept it busy."""
        deadline = time.monotonic() + seconds
        while True:
            with self._lock:
                busy = self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
            if not busy or time.monotonic() > deadline:
                return not busy
            time.sleep(0.05)

    def add_tool_calls(self, workspace_id: str, records: list[tuple[str, str, float, str | None]]) -> int:
        """Append (tool_name, record JSON, created_at, call_key) rows; a call_key already stored is skipped.

        Returns how many were written."""
        with self._write():
            self.db.execute(
                "INSERT OR IGNORE INTO workspaces(id, created_at) VALUES (?, ?)",
                (workspace_id, datetime.now(timezone.utc).timestamp()),
            )
            before = self.db.total_changes
            self.db.executemany(
                "INSERT OR IGNORE INTO tool_calls(workspace_id, tool_name, record, created_at, call_key) "
                "VALUES (?, ?, ?, ?, ?)",
                [(workspace_id, name, record, created, key) for name, record, created, key in records],
            )
            return self.db.total_changes - before

    def tool_calls(self, workspace_id: str, tool_name: str) -> list[str]:
        """Every stored call record (JSON) of one tool, oldest first."""
        with self._lock:
            rows = self.db.execute(
                "SELECT record FROM tool_calls WHERE workspace_id = ? AND tool_name = ? ORDER BY rowid",
                (workspace_id, tool_name),
            ).fetchall()
        return [row[0] for row in rows]

    def add_many(self, items: list[tuple[Memory, np.ndarray]], embedding: Embedding) -> int:
        """Store many memories in one transaction (all or none); returns how many were new."""
        if not items:
            return 0
        with self._write():
            self._check_embedding(embedding)
            self.db.execute(
                "INSERT OR IGNORE INTO workspaces(id, created_at) VALUES (?, ?)",
                (items[0][0].workspace_id, items[0][0].created_at.timestamp()),
            )
            return sum(self._insert(memory, vector, embedding).rowcount for memory, vector in items)

    def put_cell_keys(self, workspace_id: str, rows: list[tuple[int, np.ndarray]], embedding: Embedding) -> None:
        """Store the keys of memories (by rowid); a memory deleted meanwhile gets none."""
        with self._write():
            self.db.executemany(
                "INSERT OR REPLACE INTO cell_keys(memory_rowid, workspace_id, embedding_model, count, dim, keys) "
                "SELECT ?, ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM memories WHERE rowid = ?)",
                [
                    (rowid, workspace_id, embedding.model_id, len(keys), embedding.dim,
                     np.ascontiguousarray(keys, dtype=np.float32).tobytes(), rowid)
                    for rowid, keys in rows
                ],
            )

    def put_cell_model(self, workspace_id: str, state: bytes, enabled: bool, report: str) -> None:
        with self._write():
            self.db.execute(
                "INSERT OR REPLACE INTO cell_models(workspace_id, state, enabled, report, trained_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (workspace_id, state, int(enabled), report, time.time()),
            )

    def delete_ids(self, workspace_id: str, memory_ids: list[str]) -> int:
        """Delete these memories of the workspace in one transaction; returns how many existed."""
        with self._write():
            return sum(
                self._delete("workspace_id = ? AND id = ?", (workspace_id, i))
                for i in memory_ids
            )

    def delete_workspace(self, workspace_id: str) -> int:
        """Delete a workspace and everything in it (memories, keys, cells, tool calls); returns the memory count."""
        with self._write():
            count = self.db.execute("DELETE FROM memories WHERE workspace_id = ?", (workspace_id,)).rowcount
            for table, column in (("tool_calls", "workspace_id"), ("cell_models", "workspace_id"),
                                  ("aliases", "workspace_id"), ("workspaces", "id")):
                self.db.execute(f"DELETE FROM {table} WHERE {column} = ?", (workspace_id,))
            return count

    def memories_with_vectors(self, workspace_id: str, batch: int = 500) -> Iterator[list[tuple[Memory, np.ndarray]]]:
        """Every memory of the workspace with its vector, oldest first, in batches."""
        sql = (f"SELECT {_COLUMNS}, embedding_dim, embedding FROM memories WHERE workspace_id = ? AND rowid > ? "
               "ORDER BY rowid LIMIT ?")
        for rows in self._pages(sql, (workspace_id,), batch):
            yield [(_row_to_memory(r[:-2])[1], np.frombuffer(r[-1], dtype=np.float32, count=r[-2])) for r in rows]

    def replace_vectors(self, rows: list[tuple[int, np.ndarray]], embedding: Embedding) -> None:
        with self._write():
            self.db.executemany(
                "UPDATE memories SET embedding = ?, embedding_model = ?, embedding_dim = ? WHERE rowid = ?",
                [(np.asarray(v, dtype=np.float32).tobytes(), embedding.model_id, embedding.dim, r) for r, v in rows],
            )
            self._set_meta("embedding_model", embedding.model_id)
            self._set_meta("embedding_dim", str(embedding.dim))
            # Cell keys and adapters live in the cell encoder's space, which re-embedding does not touch.


class _WriteTx:
    """`BEGIN IMMEDIATE` ... `COMMIT` under the in-process lock; rolls back on any error."""

    def __init__(self, store: SQLiteStore):
        self.store = store

    def __enter__(self) -> None:
        self.store._lock.acquire()
        try:
            self.store.db.execute("BEGIN IMMEDIATE")
        except BaseException:
            self.store._lock.release()
            raise

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            self.store.db.execute("ROLLBACK" if exc_type else "COMMIT")
        finally:
            self.store._lock.release()
