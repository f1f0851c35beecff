"""The shared store: PostgreSQL with pgvector, for a team or several machines on one database.

The same `MemoryStore` as the embedded SQLite store (sqlite.py is the reference for every method's
meaning); what differs is how PostgreSQL gets there:

- Writes are transactions that first take a transaction-level advisory lock on their workspace
  (and a shared one on the store's embedding model). Writers of one workspace queue, as they do on
  SQLite's write lock, so the read-check-write steps (merge's "did anything change", add_tags,
  set_status) stay exact under READ COMMITTED, and a duplicate `remember` from two machines at once is
  a no-op on the unique key (workspace_id, id). Writers of different workspaces run side by side.
  Changing the model (`reme reembed`) takes the model lock exclusively.
- Rowids are an identity column: never reused. Every write bumps its workspace's `version` from one
  sequence, so `fingerprint` is one indexed row read, whatever the workspace's size.
- Vectors are `vector(dim)` (the dimension of the first embedding stored, recorded with the model id in
  `meta`), searched by an HNSW index (`vector_cosine_ops`) inside the database: `vector_space` hands
  recall an object that asks it, filters (workspace, type, status, tags and time) applied in the same
  query. pgvector >= 0.8 keeps scanning the index until enough rows pass the filters
  (`hnsw.iterative_scan = relaxed_order`, results re-sorted); `hnsw.ef_search` is at least the number
  of results asked for. A small workspace is answered exactly: the planner sorts its few rows instead.
- Lexical search is PostgreSQL full text search: a `tsvector` column with a GIN index, ranked by a
  BM25-like sum over the query's words (inverse document frequency in the workspace times `ts_rank`
  with length normalisation), so a rare word counts for more than a common one, as with FTS5's BM25.
  The text search configuration is `english`: like the embedded store's porter tokenizer it stems
  English words and matches "deploys" to "deploy"; words of other languages pass through as they are.
  The column is filled from a normalised copy of text and keywords made in Python (lower case,
  diacritics of Latin letters removed, split at every non-word character, as SQLite's unicode61
  tokenizer does) rather than generated in SQL: lower-casing and word characters in SQL depend on the
  server's locale (a C-locale server would neither lower-case "Привет" nor split "ZX-81" like FTS5).
  Queries are built from the same normalisation, one `phraseto_tsquery` per word; no user text is
  ever parsed as tsquery syntax.
- A memory's tsvector also holds its search terms (reme_mcp/retrieval/lexical.py, kept in the
  `search_terms` column as SQLite's FTS5 index keeps them): the CJK character pairs and Russian stems
  of its text and keywords, which the parser keeps as words (北京, 京烤, 烤鸭) as they are what a Chinese
  or Japanese query is turned into, and the texts of the memories just before it in its `thread`.
  Inserting or deleting a memory of a thread re-indexes the memories after it, so a forgotten memory's
  words leave its followers' tsvectors.
- PostgreSQL text cannot hold NUL characters; the rare text, id or tool name that does is stored
  escaped (a U+FFFF mark and the JSON string) and given back exactly. Keywords and metadata are JSON
  text, as in SQLite, so their key order and every character survive.
- `forget` deletes in one transaction, then `checkpoint` VACUUMs the tables, so the forgotten rows'
  entries leave the HNSW, GIN and btree indexes. Encryption at rest and backups are the database
  server's job (an encrypted volume; pg_dump).

psycopg (3) is imported lazily: only a store configured with `vector_store.default.backend=pgvector`
needs `pip install 'reme-mcp[pgvector]'`.
"""

from __future__ import annotations

import json
import logging
import re
import struct
import threading
import time
import unicodedata
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote

import numpy as np

from reme_mcp.errors import ConfigError, StoreMismatch, StoreUnavailable
from reme_mcp.retrieval.lexical import THREAD_CONTEXT, search_terms
from reme_mcp.store.base import MEMORY_TYPES, Embedding, Memory, Scope, memory_from_row, pages, text_checksum

if TYPE_CHECKING:
    import psycopg
    from psycopg_pool import ConnectionPool

log = logging.getLogger(__name__)

# 2: threads (`thread`), and search terms (`search_terms`, in the tsvector); 3: Russian stems in them; 4: the
# pairs and stems of keywords too. An older store is upgraded in place.
SCHEMA_VERSION = 4
MIN_PGVECTOR = (0, 5, 0)  # HNSW
ITERATIVE_SCAN = (0, 8, 0)  # hnsw.iterative_scan
TEXT_SEARCH = "english"  # see the module docstring
EF_SEARCH = 100  # the session's hnsw.ef_search: recall asks for retrieval.candidates (100) results
MAX_EF_SEARCH = 1000  # pgvector's ceiling
LEXICAL_CHARS = 200_000  # a tsvector holds at most 1 MB: longer texts are indexed by their distinct words
LAST_ROWID = 2**63 - 1  # a position after every memory of a thread
MAX_TERMS = 256  # words of one lexical query
POOL_SIZE = 8
CONNECT_SECONDS = 10
LOCK_WAIT = "60s"  # how long a write waits for another writer of its workspace (SQLite's busy timeout)
BOOKKEEPING_WAIT = "200ms"  # recall counts: skipped rather than waited for
# Advisory lock keys (two int4s): (LOCK_NS, 0) the embedding model, (LOCK_NS, 1) schema changes,
# (LOCK_NS + 1, hashtext(workspace)) one workspace's writes.
LOCK_NS = 0x52654D65  # "ReMe"
MODEL_KEY, SCHEMA_KEY = 0, 1

_SCHEMA = (
    "CREATE SEQUENCE IF NOT EXISTS reme_versions",
    "CREATE TABLE IF NOT EXISTS meta (key text PRIMARY KEY, value text NOT NULL)",
    """CREATE TABLE IF NOT EXISTS workspaces (
        id text PRIMARY KEY,
        created_at double precision NOT NULL,
        retention double precision,
        version bigint NOT NULL DEFAULT 0,
        memory_count bigint NOT NULL DEFAULT 0
    )""",
    # `embedding` gets its dimension, and its HNSW index, with the first vector stored.
    """CREATE TABLE IF NOT EXISTS memories (
        rowid bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        workspace_id text NOT NULL,
        id text NOT NULL,
        text text NOT NULL,
        keywords text NOT NULL,
        metadata text NOT NULL,
        created_at double precision NOT NULL,
        embedding_model text NOT NULL,
        embedding_dim integer NOT NULL,
        embedding vector NOT NULL,
        memory_type text NOT NULL DEFAULT 'episode',
        status text NOT NULL DEFAULT 'active',
        text_sha256 text NOT NULL,
        tags text[] NOT NULL DEFAULT '{}',
        expires_at double precision,
        recall_count integer NOT NULL DEFAULT 0,
        last_recalled_at double precision,
        thread text,
        search_terms text NOT NULL DEFAULT '',
        lexemes tsvector NOT NULL,
        UNIQUE (workspace_id, id)
    )""",
    "CREATE INDEX IF NOT EXISTS memories_lexemes ON memories USING gin (lexemes)",
    "CREATE INDEX IF NOT EXISTS memories_expiry ON memories (workspace_id, expires_at)",
    "CREATE INDEX IF NOT EXISTS memories_created ON memories (workspace_id, created_at)",
    """CREATE TABLE IF NOT EXISTS cell_keys (
        memory_rowid bigint PRIMARY KEY REFERENCES memories (rowid) ON DELETE CASCADE,
        workspace_id text NOT NULL,
        embedding_model text NOT NULL,
        count integer NOT NULL,
        dim integer NOT NULL,
        keys bytea NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS cell_keys_by_workspace ON cell_keys (workspace_id)",
    """CREATE TABLE IF NOT EXISTS cell_models (
        workspace_id text PRIMARY KEY,
        state bytea NOT NULL,
        enabled boolean NOT NULL,
        report text NOT NULL,
        trained_at double precision NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS tool_calls (
        rowid bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        workspace_id text NOT NULL,
        tool_name text NOT NULL,
        record text NOT NULL,
        created_at double precision NOT NULL,
        call_key text,
        UNIQUE (workspace_id, call_key)
    )""",
    "CREATE INDEX IF NOT EXISTS tool_calls_by_name ON tool_calls (workspace_id, tool_name)",
    """CREATE TABLE IF NOT EXISTS aliases (
        workspace_id text NOT NULL,
        alias text NOT NULL,
        memory_id text NOT NULL,
        created_at double precision NOT NULL,
        PRIMARY KEY (workspace_id, alias)
    )""",
)
# Columns added after schema 1, for upgrading an older store in place (only then: ALTER TABLE locks the table).
_ADDED_COLUMNS = {
    "thread": "text",
    "search_terms": "text NOT NULL DEFAULT ''",
}
# Indexes made after the upgrade has added the columns they may name.
_INDEXES = (
    # newest_rowid in one probe, not a scan of the workspace's rows (created once, on opening an older store)
    "CREATE INDEX IF NOT EXISTS memories_by_workspace ON memories (workspace_id, rowid)",
    "CREATE INDEX IF NOT EXISTS memories_thread ON memories (workspace_id, thread, created_at) "
    "WHERE thread IS NOT NULL",
)
VECTOR_INDEX = "memories_embedding"
TABLES = ("memories", "cell_keys", "aliases", "tool_calls", "cell_models", "workspaces", "meta")

_COLUMNS = (
    "rowid, workspace_id, id, text, keywords, metadata, created_at, memory_type, status, text_sha256, "
    "tags, expires_at, recall_count, last_recalled_at, thread"
)
# What moves with a memory when it is rewritten under a new rowid.
_CARRIED = (
    "workspace_id, id, text, keywords, created_at, embedding_model, embedding_dim, embedding, memory_type, "
    "text_sha256, tags, expires_at, recall_count, last_recalled_at, thread, search_terms, lexemes"
)
_INSERT = (
    "INSERT INTO memories(workspace_id, id, text, keywords, metadata, created_at, embedding_model, embedding_dim, "
    "embedding, memory_type, status, text_sha256, tags, expires_at, recall_count, last_recalled_at, thread, "
    "search_terms, lexemes) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, "
    f"to_tsvector('{TEXT_SEARCH}', %s)) ON CONFLICT (workspace_id, id) DO NOTHING"
)
_RELEX = f"UPDATE memories SET search_terms = %s, lexemes = to_tsvector('{TEXT_SEARCH}', %s) WHERE rowid = %s"
_ACTIVE_KIND = "CASE WHEN status = 'active' THEN memory_type ELSE '' END"

# -- values PostgreSQL cannot hold as they are ------------------------------------------------------------------

_ESCAPED = "\uffff"  # a noncharacter: marks a stored string that is the JSON of the real one


def _enc(value: str) -> str:
    """A string as a text column can hold it: itself, or (holding NUL, or starting with the mark) escaped."""
    if "\x00" in value or value.startswith(_ESCAPED):
        return _ESCAPED + json.dumps(value)
    return value


def _dec(value: str) -> str:
    return json.loads(value[1:]) if value.startswith(_ESCAPED) else value


# -- lexical normalisation --------------------------------------------------------------------------------------

_WORD = re.compile(r"\w+", re.UNICODE)
_TERM = re.compile(r'"((?:[^"]|"")*)"|([^\s"()]+)')
_OPERATORS = frozenset({"OR", "AND", "NOT", "NEAR"})


def _latin(ch: str) -> bool:
    return ch.isascii() or "\u00c0" <= ch <= "\u024f" or "\u1e00" <= ch <= "\u1eff"


def normalise(text: str) -> str:
    """Words as SQLite's `unicode61 remove_diacritics 2` tokenizer sees them: lower case, Latin letters without
    diacritics, split at every non-word character; joined by spaces for `to_tsvector`."""
    text = text.lower()
    if not text.isascii():
        kept: list[str] = []
        for ch in unicodedata.normalize("NFKD", text):
            if unicodedata.combining(ch) and kept and _latin(kept[-1]):
                continue
            kept.append(ch)
        text = unicodedata.normalize("NFC", "".join(kept))
    return " ".join(_WORD.findall(text))


def lexical_text(text: str, keywords: list[str], terms: str = "") -> str:
    """What the tsvector is made of: text, keywords and search terms (reme_mcp/retrieval/lexical.py), normalised;
    a very long one by its distinct words, its own text's first."""
    words = normalise(f"{text} {' '.join(keywords)} {terms}")
    if len(words) > LEXICAL_CHARS:
        words = " ".join(dict.fromkeys(words.split()))[:LEXICAL_CHARS]
    return words


def match_terms(match: str) -> list[str]:
    """The phrases of an FTS5 match expression (reme_mcp.retrieval.lexical.match_expression), normalised."""
    terms: list[str] = []
    for quoted, bare in _TERM.findall(match):
        if not quoted and bare.upper() in _OPERATORS:
            continue
        term = normalise(quoted.replace('""', '"') if quoted else bare)
        if term and term not in terms:
            terms.append(term)
    return terms[:MAX_TERMS]


# -- connection URLs --------------------------------------------------------------------------------------------


def describe_url(url: str) -> str:
    """Where a URL points, without its password: postgresql://user@host:port/dbname."""
    try:
        from psycopg.conninfo import conninfo_to_dict

        parts = conninfo_to_dict(url)
    except Exception:  # an unparseable URL (or no psycopg): say only what kind it is
        return "postgresql://(unparseable URL)"
    user = f"{quote(str(parts['user']))}@" if parts.get("user") else ""
    port = f":{parts['port']}" if parts.get("port") else ""
    return f"postgresql://{user}{parts.get('host') or 'localhost'}{port}/{parts.get('dbname') or ''}"


def _secrets_of(url: str) -> list[str]:
    found = re.findall(r"://[^:/@]*:([^@/]*)@", url) + re.findall(r"password=([^\s&]+)", url)
    return sorted({s for raw in found for s in (raw, unquote(raw)) if s}, key=len, reverse=True)


def scrub(message: str, url: str) -> str:
    """A message with every form of the URL's password replaced."""
    for secret in _secrets_of(url):
        message = message.replace(secret, "***")
    return message


def _lost(psycopg: Any) -> tuple[type[Exception], ...]:
    """The errors that mean the database is unreachable or kept us waiting (any other one is a bug)."""
    return (psycopg.OperationalError, psycopg.InterfaceError)


def _psycopg() -> Any:
    try:
        import psycopg
        import psycopg_pool  # noqa: F401
    except ImportError:
        raise ConfigError(
            "vector_store.default.backend=pgvector needs the PostgreSQL driver: pip install 'reme-mcp[pgvector]' "
            "(psycopg and psycopg-pool)."
        ) from None
    return psycopg


# -- vectors on the wire ----------------------------------------------------------------------------------------


class _Vec:
    """A numpy vector sent as pgvector's `vector` (only values wrapped in this are)."""

    __slots__ = ("array",)

    def __init__(self, array: np.ndarray):
        self.array = array


def _register_vector(conn: Any, oid: int) -> None:
    """Binary dumper and loaders for pgvector's `vector`: int16 dim, int16 unused, dim big-endian float4."""
    from psycopg.adapt import Dumper, Loader
    from psycopg.pq import Format

    class VecDumper(Dumper):
        format = Format.BINARY

        def dump(self, obj: _Vec) -> bytes:
            array = np.asarray(obj.array, dtype=">f4").ravel()
            return struct.pack(">HH", len(array), 0) + array.tobytes()

    VecDumper.oid = oid

    class VecBinaryLoader(Loader):
        format = Format.BINARY

        def load(self, data: Any) -> np.ndarray:
            return np.frombuffer(bytes(data), dtype=">f4", offset=4).astype(np.float32)

    class VecTextLoader(Loader):
        format = Format.TEXT

        def load(self, data: Any) -> np.ndarray:
            return np.array(json.loads(bytes(data)), dtype=np.float32)

    conn.adapters.register_dumper(_Vec, VecDumper)
    conn.adapters.register_loader(oid, VecBinaryLoader)
    conn.adapters.register_loader(oid, VecTextLoader)


# -- rows -------------------------------------------------------------------------------------------------------


def _row_to_memory(row: Sequence[Any]) -> tuple[int, Memory]:
    row = list(row)
    row[2], row[3] = _dec(row[2]), _dec(row[3])  # id, text: NUL characters are stored escaped
    row[14] = None if row[14] is None else _dec(row[14])  # thread
    return memory_from_row(row, [_dec(t) for t in row[10]], "Restore it from a backup (pg_dump).")


def _memory_params(memory: Memory, vector: np.ndarray, embedding: Embedding, terms: str) -> tuple[Any, ...]:
    """The values of `_INSERT` for a memory whose search terms are `terms`."""
    return (
        memory.workspace_id,
        _enc(memory.id),
        _enc(memory.text),
        json.dumps(memory.keywords, ensure_ascii=False),
        json.dumps(memory.metadata, ensure_ascii=False),
        memory.created_at.timestamp(),
        embedding.model_id,
        embedding.dim,
        _Vec(vector),
        memory.memory_type,
        memory.status,
        text_checksum(memory.text),
        [_enc(t) for t in memory.tags],
        memory.expires_at.timestamp() if memory.expires_at else None,
        memory.recall_count,
        memory.last_recalled_at.timestamp() if memory.last_recalled_at else None,
        None if memory.thread is None else _enc(memory.thread),
        _enc(terms),
        lexical_text(memory.text, memory.keywords, terms),
    )


def _scope_filter(scope: Scope | None, alias: str = "") -> tuple[str, list[Any]]:
    """SQL that keeps the active memories inside `scope` (all active ones when None)."""
    clause, params = f" AND {alias}status = 'active'", []
    if scope is None:
        return clause, params
    if scope.types:
        clause += f" AND {alias}memory_type = ANY(%s::text[])"
        params.append(list(scope.types))
    if scope.tags:
        clause += f" AND {alias}tags {'@>' if scope.all_tags else '&&'} %s::text[]"
        params.append(sorted({_enc(t) for t in scope.tags}))
    if scope.after is not None:
        clause += f" AND {alias}created_at >= %s"
        params.append(scope.after)
    if scope.before is not None:
        clause += f" AND {alias}created_at < %s"
        params.append(scope.before)
    if scope.thread is not None:
        clause += f" AND {alias}thread = %s"
        params.append(_enc(scope.thread))
    return clause, params


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", text)[:3])


class PgVectorStore:
    """`MemoryStore` on a PostgreSQL database with the pgvector extension."""

    def __init__(self, url: str):
        self.url = url
        self.location = describe_url(url)
        self._pool: ConnectionPool | None = None
        self._vector_oid = 0
        self._iterative = False
        self._lock = threading.RLock()
        self._embedding: tuple[str, int] | None = None  # (model, dim) once the vector column has its dimension
        self._unwritten_recalls: dict[int, tuple[int, float]] = {}  # rowid -> (recalls, last time)

    # -- lifecycle -----------------------------------------------------------------

    def open(self, model_id: str | None) -> None:
        """Create or check the schema (and the vector extension); `model_id=None` skips the model check."""
        psycopg = _psycopg()
        from psycopg_pool import ConnectionPool

        conn = self._connect()
        try:
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", (LOCK_NS, SCHEMA_KEY))
                version = self._ensure_extension(conn)
                for statement in _SCHEMA:
                    conn.execute(statement)
                stored = _meta(conn, "schema_version")
                if stored is not None and int(stored) > SCHEMA_VERSION:
                    raise StoreMismatch(
                        f"The store at {self.location} has schema version {stored}, newer than this reme-mcp "
                        f"understands ({SCHEMA_VERSION}). Upgrade reme-mcp (pip install -U reme-mcp)."
                    )
                if stored is not None and int(stored) < 2:
                    for column, definition in _ADDED_COLUMNS.items():
                        conn.execute(f"ALTER TABLE memories ADD COLUMN IF NOT EXISTS {column} {definition}")
                for statement in _INDEXES:
                    conn.execute(statement)
                if stored is not None and int(stored) < SCHEMA_VERSION:  # search terms changed (see above)
                    indexed = self._index_search_terms(conn.cursor())
                    log.info("upgraded the store at %s to schema %s: %d memories got search terms",
                             self.location, SCHEMA_VERSION, indexed)
                if stored is None or int(stored) < SCHEMA_VERSION:
                    _set_meta(conn, "schema_version", str(SCHEMA_VERSION))
            self._vector_oid = conn.execute("SELECT 'vector'::regtype::oid").fetchone()[0]
            self._iterative = version >= ITERATIVE_SCAN
            stored_model, stored_dim = _meta(conn, "embedding_model"), _meta(conn, "embedding_dim")
            shaped = conn.execute(
                "SELECT atttypmod FROM pg_attribute WHERE attrelid = 'memories'::regclass AND attname = 'embedding'"
            ).fetchone()[0]
            if stored_model is not None and stored_dim is not None and shaped == int(stored_dim):
                self._embedding = (stored_model, int(stored_dim))  # the first write needs no schema step
            if model_id is not None and stored_model is not None and stored_model != model_id:
                counts = conn.execute(
                    "SELECT w.id, count(m.rowid) FROM workspaces w LEFT JOIN memories m ON m.workspace_id = w.id "
                    "GROUP BY w.id ORDER BY w.id"
                ).fetchall()
                workspaces = ", ".join(f"{w} ({n})" for w, n in counts) or "none"
                raise StoreMismatch(
                    f"The store at {self.location} holds vectors from the embedding model '{stored_model}' "
                    f"({stored_dim}-d), but '{model_id}' is configured; these workspaces need re-embedding: "
                    f"{workspaces}. Mixing them would give wrong recall. Either configure the original model "
                    "again, or re-embed the store with the new one: `reme reembed` with the same vector_store.* "
                    "settings plus your embedding_model.* keys (texts are kept, so nothing is lost)."
                )
        except psycopg.Error as exc:
            raise self._unavailable(exc) from None
        finally:
            conn.close()
        self._pool = ConnectionPool(
            self.url, min_size=1, max_size=POOL_SIZE, kwargs=self._connect_kwargs(), configure=self._configure,
            check=ConnectionPool.check_connection, open=True, name="reme-pgvector", timeout=60,
        )

    def close(self) -> None:
        with self._lock:
            if self._pool is not None and self._unwritten_recalls:
                self._write_recalls(LOCK_WAIT)
            if self._pool is not None:
                self._pool.close()
                self._pool = None

    def _connect_kwargs(self) -> dict[str, Any]:
        return {"autocommit": True, "prepare_threshold": None, "connect_timeout": CONNECT_SECONDS,
                "application_name": "reme-mcp"}

    def _connect(self) -> psycopg.Connection:
        psycopg = _psycopg()
        try:
            conn = psycopg.connect(self.url, **self._connect_kwargs())
        except psycopg.ProgrammingError:  # the URL does not parse; the driver's message would quote it
            raise ConfigError(
                f"vector_store.default.url (or FLOW_PGVECTOR_URL) is not a PostgreSQL connection URL ({self.location}); "
                "it looks like postgresql://user:password@host:5432/dbname."
            ) from None
        except psycopg.Error as exc:
            raise StoreUnavailable(
                f"Cannot connect to PostgreSQL at {self.location}: {scrub(str(exc), self.url).strip()}. Check "
                "vector_store.default.url (or FLOW_PGVECTOR_URL) and that the server accepts connections."
            ) from None
        conn.execute("SET client_min_messages = warning")
        return conn

    def _configure(self, conn: Any) -> None:
        """Every pooled connection: the vector type, quiet notices, the search settings."""
        _register_vector(conn, self._vector_oid)
        conn.execute("SET client_min_messages = warning")
        conn.execute(f"SET hnsw.ef_search = {EF_SEARCH}")
        if self._iterative:
            conn.execute("SET hnsw.iterative_scan = relaxed_order")

    def _ensure_extension(self, conn: Any) -> tuple[int, ...]:
        """pgvector's version, creating the extension in this database first if it is not there."""
        psycopg = _psycopg()
        row = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'").fetchone()
        if row is None:
            try:
                with conn.transaction():
                    conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
            except psycopg.Error as exc:
                raise ConfigError(
                    f"The database {self.location} does not have the pgvector extension, and this user may not "
                    f"create it ({scrub(str(exc), self.url).strip()}). Install pgvector on the server (for example "
                    "apt install postgresql-16-pgvector, or the pgvector/pgvector container image) and run "
                    "CREATE EXTENSION vector; in this database as its owner or a superuser."
                ) from None
            row = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'").fetchone()
        version = _version(row[0])
        if version < MIN_PGVECTOR:
            raise ConfigError(
                f"The database {self.location} has pgvector {row[0]}; reme-mcp needs 0.5.0 or newer (HNSW indexes). "
                "Upgrade it: ALTER EXTENSION vector UPDATE; after installing a newer pgvector on the server."
            )
        return version

    def _unavailable(self, exc: Exception) -> StoreUnavailable:
        return StoreUnavailable(
            f"The PostgreSQL store at {self.location} failed: {scrub(str(exc), self.url).strip()}"
        )

    # -- transactions ---------------------------------------------------------------

    @property
    def pool(self) -> ConnectionPool:
        if self._pool is None:
            raise RuntimeError("store is not open")
        return self._pool

    @contextmanager
    def _read(self, binary: bool = False) -> Iterator[Any]:
        """A cursor on a pooled connection (autocommit: one statement, one snapshot)."""
        psycopg = _psycopg()
        try:
            with self.pool.connection() as conn:
                yield conn.cursor(binary=binary)
        except _lost(psycopg) as exc:
            raise self._unavailable(exc) from None

    def _pages(self, sql: str, params: tuple[object, ...], batch: int, binary: bool = False) -> Iterator[list[Any]]:
        """The rows of `sql`, whose last two parameters are the rowid to start after and the page size."""

        def read(after: int) -> list[Any]:
            with self._read(binary=binary) as cur:
                return cur.execute(sql, (*params, after, batch)).fetchall()

        return pages(read)

    @contextmanager
    def _write(self, *workspaces: str, model: str = "shared", wait: str = LOCK_WAIT) -> Iterator[Any]:
        """One transaction holding the model lock (`shared`, `exclusive` or `none`) and the write lock of each
        workspace, taken in one order everywhere; commits on success, rolls back on any error."""
        psycopg = _psycopg()
        try:
            with self.pool.connection() as conn:
                with conn.transaction():
                    cur = conn.cursor()
                    cur.execute("SELECT set_config('lock_timeout', %s, true)", (wait,))
                    if model != "none":
                        function = "pg_advisory_xact_lock" + ("_shared" if model == "shared" else "")
                        cur.execute(f"SELECT {function}(%s, %s)", (LOCK_NS, MODEL_KEY))
                    for workspace_id in sorted(set(workspaces)):
                        cur.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (LOCK_NS + 1, workspace_id))
                    yield cur
        except psycopg.errors.LockNotAvailable:
            raise StoreUnavailable(
                f"Another process kept the store at {self.location} busy for over {wait}; try again."
            ) from None
        except _lost(psycopg) as exc:
            raise self._unavailable(exc) from None

    def _touch(self, cur: Any, workspace_id: str, added: int = 0, created_at: float | None = None) -> None:
        """Record a change of the workspace (creating its row): a new version, and `added` more memories."""
        cur.execute(
            "INSERT INTO workspaces(id, created_at, version, memory_count) "
            "VALUES (%s, %s, nextval('reme_versions'), greatest(%s, 0)) "
            "ON CONFLICT (id) DO UPDATE SET version = excluded.version, "
            "memory_count = greatest(workspaces.memory_count + %s, 0)",
            (workspace_id, time.time() if created_at is None else created_at, added, added),
        )

    def _ensure_embedding(self, embedding: Embedding) -> None:
        """The first vector fixes the store's model and the column's dimension (and builds the HNSW index)."""
        if self._embedding == (embedding.model_id, embedding.dim):
            return
        with self._write(model="exclusive") as cur:
            stored_model, stored_dim = _meta(cur, "embedding_model"), _meta(cur, "embedding_dim")
            if stored_model is None:
                _set_meta(cur, "embedding_model", embedding.model_id)
                _set_meta(cur, "embedding_dim", str(embedding.dim))
                self._shape_vectors(cur, embedding.dim)
            elif (stored_model, int(stored_dim or 0)) != (embedding.model_id, embedding.dim):
                raise self._mismatch(stored_model, stored_dim, embedding)
        self._embedding = (embedding.model_id, embedding.dim)

    def _shape_vectors(self, cur: Any, dim: int) -> None:
        """Give the vector column its dimension and its HNSW index (inside the caller's exclusive transaction)."""
        cur.execute(f"ALTER TABLE memories ALTER COLUMN embedding TYPE vector({int(dim)})")
        cur.execute(f"CREATE INDEX IF NOT EXISTS {VECTOR_INDEX} ON memories USING hnsw (embedding vector_cosine_ops)")

    def _check_embedding(self, cur: Any, embedding: Embedding) -> None:
        """Inside a write transaction (model lock held): the store's model is still this one."""
        stored_model, stored_dim = _meta(cur, "embedding_model"), _meta(cur, "embedding_dim")
        if (stored_model, int(stored_dim or 0)) != (embedding.model_id, embedding.dim):
            self._embedding = None
            raise self._mismatch(stored_model, stored_dim, embedding)

    def _mismatch(self, stored_model: str | None, stored_dim: str | None, embedding: Embedding) -> StoreMismatch:
        return StoreMismatch(
            f"The store holds {stored_dim}-d vectors from '{stored_model}', this write has {embedding.dim}-d "
            f"vectors from '{embedding.model_id}'. Run `reme reembed` to move the store to the new model."
        )

    # -- reads --------------------------------------------------------------------

    def workspace_exists(self, workspace_id: str) -> bool:
        with self._read() as cur:
            return cur.execute("SELECT 1 FROM workspaces WHERE id = %s", (workspace_id,)).fetchone() is not None

    def list_workspaces(self) -> list[tuple[str, int]]:
        with self._read() as cur:
            return [tuple(r) for r in cur.execute(
                "SELECT w.id, count(m.rowid) FROM workspaces w LEFT JOIN memories m ON m.workspace_id = w.id "
                "GROUP BY w.id ORDER BY w.id"
            ).fetchall()]

    def list_memories(self, workspace_id: str, limit: int, offset: int = 0) -> list[Memory]:
        with self._read() as cur:
            rows = cur.execute(
                f"SELECT {_COLUMNS} FROM memories WHERE workspace_id = %s ORDER BY rowid DESC LIMIT %s OFFSET %s",
                (workspace_id, limit, offset),
            ).fetchall()
        return [_row_to_memory(row)[1] for row in rows]

    def get(self, workspace_id: str, memory_id: str) -> Memory | None:
        """The memory with this id, or the one it was merged into (consolidate keeps the old id as an alias)."""
        with self._read() as cur:
            row = cur.execute(
                f"SELECT {_COLUMNS} FROM memories WHERE workspace_id = %s AND id = %s", (workspace_id, _enc(memory_id))
            ).fetchone()
            if row is None:
                row = cur.execute(
                    f"SELECT {_COLUMNS} FROM memories WHERE workspace_id = %s AND id = "
                    "(SELECT memory_id FROM aliases WHERE workspace_id = %s AND alias = %s)",
                    (workspace_id, workspace_id, _enc(memory_id)),
                ).fetchone()
        return _row_to_memory(row)[1] if row else None

    def lexical(self, workspace_id: str, match: str, limit: int, scope: Scope | None = None) -> list[tuple[int, float]]:
        """(rowid, score) best first: for each query word, its inverse document frequency among the matching
        memories of the workspace times `ts_rank` (normalised by the memory's length), summed."""
        terms = match_terms(match)
        if not terms:
            return []
        clause, params = _scope_filter(scope)
        with self._read() as cur:
            rows = cur.execute(
                f"""WITH terms AS (
                    SELECT DISTINCT ON (q::text) q FROM (
                        SELECT phraseto_tsquery('{TEXT_SEARCH}', t) AS q FROM unnest(%s::text[]) AS t
                    ) s WHERE numnode(q) > 0
                ), hits AS MATERIALIZED (
                    SELECT rowid, lexemes FROM memories
                    WHERE lexemes @@ (SELECT string_agg('(' || q::text || ')', ' | ')::tsquery FROM terms)
                      AND workspace_id = %s{clause}
                ), df AS (
                    SELECT t.q, count(*)::float8 AS n FROM hits h JOIN terms t ON h.lexemes @@ t.q GROUP BY t.q
                ), total AS (
                    SELECT greatest((SELECT memory_count FROM workspaces WHERE id = %s),
                                    (SELECT count(*) FROM hits))::float8 AS n
                )
                SELECT h.rowid, sum(ln(1 + (total.n - df.n + 0.5) / (df.n + 0.5)) * ts_rank(h.lexemes, df.q, 1))
                       AS score
                FROM hits h JOIN df ON h.lexemes @@ df.q CROSS JOIN total
                GROUP BY h.rowid ORDER BY score DESC, h.rowid LIMIT %s""",
                (terms, workspace_id, *params, workspace_id, limit),
            ).fetchall()
        return [(rowid, float(score)) for rowid, score in rows]

    def fingerprint(self, workspace_id: str) -> tuple[float, ...]:
        """(memory count, version): the version comes from one sequence and changes with every write."""
        with self._read() as cur:
            row = cur.execute("SELECT memory_count, version FROM workspaces WHERE id = %s", (workspace_id,)).fetchone()
        return (float(row[0]), float(row[1])) if row else (0.0, 0.0)

    def last_rowid(self) -> int:
        """The highest rowid ever given to a memory (the identity's sequence: deleting rows never lowers it)."""
        with self._read() as cur:
            row = cur.execute(
                "SELECT pg_sequence_last_value(pg_get_serial_sequence('memories', 'rowid')::regclass)"
            ).fetchone()
        return int(row[0] or 0)

    def newest_rowid(self, workspace_id: str) -> int:
        with self._read() as cur:
            row = cur.execute("SELECT max(rowid) FROM memories WHERE workspace_id = %s", (workspace_id,)).fetchone()
        return int(row[0] or 0)

    def count(self) -> int:
        with self._read() as cur:
            return cur.execute("SELECT count(*) FROM memories").fetchone()[0]

    def scope_rowids(self, workspace_id: str, scope: Scope) -> np.ndarray:
        clause, params = _scope_filter(scope)
        with self._read() as cur:
            rows = cur.execute(
                f"SELECT rowid FROM memories WHERE workspace_id = %s{clause} ORDER BY rowid", (workspace_id, *params)
            ).fetchall()
        return np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))

    def select(self, workspace_id: str, scope: Scope, limit: int) -> list[Memory]:
        clause, params = _scope_filter(scope)
        with self._read() as cur:
            rows = cur.execute(
                f"SELECT {_COLUMNS} FROM memories WHERE workspace_id = %s{clause} ORDER BY rowid DESC LIMIT %s",
                (workspace_id, *params, limit),
            ).fetchall()
        return [_row_to_memory(row)[1] for row in rows]

    def usage(self, rowids: list[int]) -> dict[int, tuple[float, int]]:
        if not rowids:
            return {}
        with self._read() as cur:
            rows = cur.execute(
                "SELECT rowid, created_at, recall_count FROM memories WHERE rowid = ANY(%s::bigint[])",
                ([int(r) for r in rowids],),
            ).fetchall()
        return {r: (created, count) for r, created, count in rows}

    def threads(self, workspace_id: str, rowids: list[int]) -> dict[int, str]:
        if not rowids:
            return {}
        with self._read() as cur:
            rows = cur.execute(
                "SELECT rowid, thread FROM memories WHERE rowid = ANY(%s::bigint[]) AND workspace_id = %s"
                " AND thread IS NOT NULL",
                ([int(r) for r in rowids], workspace_id),
            ).fetchall()
        return dict(rows)

    def answered(self, workspace_id: str, rowids: list[int], scope: Scope | None = None) -> dict[int, int]:
        if not rowids:
            return {}
        clause, params = _scope_filter(scope, "p.")
        with self._read() as cur:
            rows = cur.execute(
                "SELECT r.rowid, p.rowid FROM memories r CROSS JOIN LATERAL ("
                " SELECT q.rowid, q.status, q.memory_type, q.tags, q.created_at, q.thread FROM memories q"
                " WHERE q.workspace_id = r.workspace_id AND q.thread = r.thread"
                " AND (q.created_at, q.rowid) < (r.created_at, r.rowid)"
                " ORDER BY q.created_at DESC, q.rowid DESC LIMIT 1"
                f") p WHERE r.rowid = ANY(%s::bigint[]) AND r.workspace_id = %s AND r.thread IS NOT NULL{clause}",
                ([int(r) for r in rowids], workspace_id, *params),
            ).fetchall()
        return dict(rows)

    def scan(self, workspace_id: str, batch: int = 500) -> Iterator[list[Memory]]:
        sql = f"SELECT {_COLUMNS} FROM memories WHERE workspace_id = %s AND rowid > %s ORDER BY rowid LIMIT %s"
        for rows in self._pages(sql, (workspace_id,), batch):
            yield [_row_to_memory(row)[1] for row in rows]

    def tool_call_records(self, workspace_id: str) -> list[tuple[int, str, str]]:
        with self._read() as cur:
            rows = cur.execute(
                "SELECT rowid, tool_name, record FROM tool_calls WHERE workspace_id = %s ORDER BY rowid",
                (workspace_id,),
            ).fetchall()
        return [(rowid, _dec(name), record) for rowid, name, record in rows]

    def tool_calls(self, workspace_id: str, tool_name: str) -> list[str]:
        with self._read() as cur:
            rows = cur.execute(
                "SELECT record FROM tool_calls WHERE workspace_id = %s AND tool_name = %s ORDER BY rowid",
                (workspace_id, _enc(tool_name)),
            ).fetchall()
        return [row[0] for row in rows]

    def vectors(self, workspace_id: str, after: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        with self._read(binary=True) as cur:
            rows = cur.execute(
                f"SELECT rowid, embedding, {_ACTIVE_KIND} FROM memories WHERE workspace_id = %s AND rowid > %s "
                "ORDER BY rowid",
                (workspace_id, after),
            ).fetchall()
        if not rows:
            return np.zeros(0, dtype=np.int64), np.zeros((0, 0), dtype=np.float32), np.zeros(0, dtype=object)
        rowids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        matrix = np.ascontiguousarray(np.stack([r[1] for r in rows]), dtype=np.float32)
        kinds = np.array([r[2] for r in rows], dtype=object)
        return rowids, matrix, kinds

    def vector_space(self, workspace_id: str) -> PgVectorSpace:
        return PgVectorSpace(self, workspace_id)

    def cell_keys(self, workspace_id: str) -> dict[int, np.ndarray]:
        with self._read() as cur:
            rows = cur.execute(
                "SELECT memory_rowid, count, dim, keys FROM cell_keys WHERE workspace_id = %s", (workspace_id,)
            ).fetchall()
        return {r: np.frombuffer(bytes(blob), dtype=np.float32).reshape(n, d) for r, n, d, blob in rows}

    def without_cell_keys(
        self, workspace_id: str, model_id: str, after: int = 0, limit: int | None = None
    ) -> list[tuple[int, str, list[str]]]:
        with self._read() as cur:
            rows = cur.execute(
                "SELECT m.rowid, m.text, m.keywords FROM memories m LEFT JOIN cell_keys k "
                "ON k.memory_rowid = m.rowid AND k.embedding_model = %s "
                "WHERE m.workspace_id = %s AND m.status = 'active' AND k.memory_rowid IS NULL AND m.rowid > %s "
                "ORDER BY m.rowid LIMIT %s",
                (model_id, workspace_id, after, limit),
            ).fetchall()
        return [(rowid, _dec(text), json.loads(keywords)) for rowid, text, keywords in rows]

    def cell_model(self, workspace_id: str) -> tuple[bytes, bool, str] | None:
        with self._read() as cur:
            row = cur.execute(
                "SELECT state, enabled, report FROM cell_models WHERE workspace_id = %s", (workspace_id,)
            ).fetchone()
        return (bytes(row[0]), bool(row[1]), row[2]) if row else None

    def fetch(self, rowids: list[int]) -> dict[int, Memory]:
        if not rowids:
            return {}
        with self._read() as cur:
            rows = cur.execute(
                f"SELECT {_COLUMNS} FROM memories WHERE rowid = ANY(%s::bigint[])", ([int(r) for r in rowids],)
            ).fetchall()
        return dict(_row_to_memory(row) for row in rows)

    def iter_all(self, batch: int) -> Iterator[list[tuple[int, str, list[str]]]]:
        sql = "SELECT rowid, text, keywords FROM memories WHERE rowid > %s ORDER BY rowid LIMIT %s"
        for rows in self._pages(sql, (), batch):
            yield [(rowid, _dec(text), json.loads(keywords)) for rowid, text, keywords in rows]

    def memories_with_vectors(self, workspace_id: str, batch: int = 500) -> Iterator[list[tuple[Memory, np.ndarray]]]:
        sql = f"SELECT {_COLUMNS}, embedding FROM memories WHERE workspace_id = %s AND rowid > %s ORDER BY rowid LIMIT %s"
        for rows in self._pages(sql, (workspace_id,), batch, binary=True):
            yield [(_row_to_memory(r[:-1])[1], r[-1]) for r in rows]

    # -- writes -------------------------------------------------------------------

    def _before(self, cur: Any, workspace_id: str, thread: str, created_at: float, rowid: int) -> list[str]:
        """The texts of the memories just before a position in a thread (`thread` as stored), oldest first."""
        rows = cur.execute(
            "SELECT text FROM memories WHERE workspace_id = %s AND thread = %s AND (created_at, rowid) < (%s, %s) "
            "ORDER BY created_at DESC, rowid DESC LIMIT %s",
            (workspace_id, thread, created_at, rowid, THREAD_CONTEXT),
        ).fetchall()
        return [_dec(text) for (text,) in reversed(rows)]

    def _rethread(self, cur: Any, workspace_id: str, thread: str | None, created_at: float, rowid: int) -> None:
        """Index the memories after a position in a thread by their new neighbours (after an insert or a
        delete there): a forgotten memory's words must not live on in its followers' search terms."""
        if thread is None:
            return
        followers = cur.execute(
            "SELECT rowid, text, keywords, created_at, search_terms FROM memories WHERE workspace_id = %s "
            "AND thread = %s AND (created_at, rowid) > (%s, %s) ORDER BY created_at, rowid LIMIT %s",
            (workspace_id, thread, created_at, rowid, THREAD_CONTEXT),
        ).fetchall()
        for follower, text, keywords, at, old in followers:
            text, keywords = _dec(text), json.loads(keywords)
            terms = search_terms(text, self._before(cur, workspace_id, thread, at, follower), keywords)
            if terms != _dec(old):
                cur.execute(_RELEX, (_enc(terms), lexical_text(text, keywords, terms), follower))

    def _delete(self, cur: Any, where: str, params: Sequence[Any] | dict[str, Any]) -> int:
        """DELETE FROM memories WHERE `where`, re-indexing the thread followers of what is deleted."""
        threaded = cur.execute(
            f"SELECT workspace_id, thread, created_at, rowid FROM memories WHERE ({where}) AND thread IS NOT NULL",
            params,
        ).fetchall()
        cur.execute(f"DELETE FROM memories WHERE {where}", params)
        count = cur.rowcount
        for position in threaded:
            self._rethread(cur, *position)
        return count

    def _index_search_terms(self, cur: Any, batch: int = 1000) -> int:
        """Give every memory its search terms, and its tsvector with them (upgrading a store from before they
        existed); returns how many changed."""
        changed, after = 0, 0
        while rows := cur.execute(
            "SELECT rowid, workspace_id, thread, created_at, text, keywords, search_terms FROM memories "
            "WHERE rowid > %s ORDER BY rowid LIMIT %s", (after, batch),
        ).fetchall():
            after = rows[-1][0]
            relexed = []
            for rowid, ws, thread, at, text, keywords, old in rows:
                text, keywords = _dec(text), json.loads(keywords)
                before = [] if thread is None else self._before(cur, ws, thread, at, rowid)
                terms = search_terms(text, before, keywords)
                if terms != _dec(old):
                    relexed.append((_enc(terms), lexical_text(text, keywords, terms), rowid))
            if relexed:
                cur.executemany(_RELEX, relexed)
            changed += len(relexed)
        return changed

    def _insert(self, cur: Any, memory: Memory, vector: np.ndarray, embedding: Embedding) -> int:
        """Insert a memory (nothing if its id is taken), indexed by its thread's previous memories and
        re-indexing the ones after it; returns how many rows were written (0 or 1)."""
        thread = None if memory.thread is None else _enc(memory.thread)
        at = memory.created_at.timestamp()
        before = [] if thread is None else self._before(cur, memory.workspace_id, thread, at, LAST_ROWID)
        terms = search_terms(memory.text, before, memory.keywords)
        row = cur.execute(_INSERT + " RETURNING rowid", _memory_params(memory, vector, embedding, terms)).fetchone()
        if row is None:
            return 0
        self._rethread(cur, memory.workspace_id, thread, at, row[0])
        return 1

    def _insert_many(self, cur: Any, items: list[tuple[Memory, np.ndarray]], embedding: Embedding) -> int:
        """Insert memories in order, those of no thread in batches (their search terms are their own); returns
        how many were new."""
        written, plain = 0, []

        def flush() -> int:
            if not plain:
                return 0
            cur.executemany(_INSERT, plain)
            plain.clear()
            return max(cur.rowcount, 0)

        for memory, vector in items:
            if memory.thread is None:
                plain.append(_memory_params(memory, vector, embedding, search_terms(memory.text, [], memory.keywords)))
            else:
                written += flush() + self._insert(cur, memory, vector, embedding)
        return written + flush()

    def add(self, memory: Memory, vector: np.ndarray, embedding: Embedding) -> tuple[Memory, bool]:
        self._ensure_embedding(embedding)
        with self._write(memory.workspace_id) as cur:
            self._check_embedding(cur, embedding)
            created = self._insert(cur, memory, vector, embedding) == 1
            if created:
                self._touch(cur, memory.workspace_id, 1, memory.created_at.timestamp())
        if created:
            return memory, True
        stored = self.get(memory.workspace_id, memory.id)
        assert stored is not None, "ON CONFLICT DO NOTHING skipped a row that is not there"
        return stored, False

    def add_many(self, items: list[tuple[Memory, np.ndarray]], embedding: Embedding) -> int:
        """Store many memories in one transaction (all or none); returns how many were new."""
        if not items:
            return 0
        self._ensure_embedding(embedding)
        workspaces = sorted({memory.workspace_id for memory, _ in items})
        with self._write(*workspaces) as cur:
            self._check_embedding(cur, embedding)
            added = dict.fromkeys(workspaces, 0)
            for workspace_id in workspaces:
                batch = [(m, v) for m, v in items if m.workspace_id == workspace_id]
                added[workspace_id] = self._insert_many(cur, batch, embedding)
                self._touch(cur, workspace_id, added[workspace_id], batch[0][0].created_at.timestamp())
            return sum(added.values())

    def replace(self, memory: Memory, vector: np.ndarray, embedding: Embedding) -> None:
        """Rewrite a memory (same id) under a new rowid, in one transaction."""
        self._ensure_embedding(embedding)
        with self._write(memory.workspace_id) as cur:
            self._check_embedding(cur, embedding)
            removed = self._delete(cur, "workspace_id = %s AND id = %s", (memory.workspace_id, _enc(memory.id)))
            added = self._insert(cur, memory, vector, embedding)
            self._touch(cur, memory.workspace_id, added - removed, memory.created_at.timestamp())

    def set_status(self, workspace_id: str, memory_id: str, status: str, metadata: dict) -> bool:
        """Change a memory's status and metadata, keeping its text and vector, under a new rowid."""
        with self._write(workspace_id) as cur:
            cur.execute(
                f"WITH gone AS (DELETE FROM memories WHERE workspace_id = %s AND id = %s RETURNING {_CARRIED}) "
                f"INSERT INTO memories({_CARRIED}, metadata, status) SELECT {_CARRIED}, %s, %s FROM gone",
                (workspace_id, _enc(memory_id), json.dumps(metadata, ensure_ascii=False), status),
            )
            if cur.rowcount == 0:
                return False
            self._touch(cur, workspace_id)
        return True

    def delete_ids(self, workspace_id: str, memory_ids: list[str]) -> int:
        with self._write(workspace_id, model="none") as cur:
            count = self._delete(cur, "workspace_id = %s AND id = ANY(%s::text[])",
                                 (workspace_id, [_enc(i) for i in memory_ids]))
            if count:
                self._touch(cur, workspace_id, -count)
            return count

    def delete_workspace(self, workspace_id: str) -> int:
        with self._write(workspace_id, model="none") as cur:
            cur.execute("DELETE FROM memories WHERE workspace_id = %s", (workspace_id,))
            count = cur.rowcount
            for table, column in (("tool_calls", "workspace_id"), ("cell_models", "workspace_id"),
                                  ("aliases", "workspace_id"), ("workspaces", "id")):
                cur.execute(f"DELETE FROM {table} WHERE {column} = %s", (workspace_id,))
            return count

    def purge_expired(self, workspace_id: str, now: float) -> int:
        """Delete the workspace's memories past their expiry (own, or the workspace's retention).

        A read decides first, so the usual case (nothing expired) takes no lock."""
        where = (
            "workspace_id = %(ws)s AND (expires_at <= %(now)s OR (expires_at IS NULL AND created_at <= %(now)s - "
            "(SELECT retention FROM workspaces WHERE id = %(ws)s)))"
        )
        values = {"ws": workspace_id, "now": now}
        with self._read() as cur:
            # Two probes, each answered by its own index: one query with the OR read the whole workspace
            # (64 ms a recall at 100k memories, bench/perf.py).
            retention = cur.execute("SELECT retention FROM workspaces WHERE id = %s", (workspace_id,)).fetchone()
            expired = cur.execute(
                "SELECT 1 FROM memories WHERE workspace_id = %(ws)s AND expires_at <= %(now)s LIMIT 1", values
            ).fetchone()
            if expired is None and retention is not None and retention[0] is not None:
                expired = cur.execute(
                    "SELECT 1 FROM memories WHERE workspace_id = %(ws)s AND created_at <= %(cut)s "
                    "AND expires_at IS NULL LIMIT 1", {**values, "cut": now - retention[0]},
                ).fetchone()
            if expired is None:
                return 0
        with self._write(workspace_id, model="none") as cur:
            count = self._delete(cur, where, values)
            _drop_dangling_aliases(cur, workspace_id)
            if count:
                self._touch(cur, workspace_id, -count)
        return count

    def set_retention(self, workspace_id: str, seconds: float | None) -> None:
        with self._write(workspace_id, model="none") as cur:
            cur.execute(
                "INSERT INTO workspaces(id, created_at, retention) VALUES (%s, %s, %s) "
                "ON CONFLICT (id) DO UPDATE SET retention = excluded.retention",
                (workspace_id, time.time(), seconds),
            )

    def mark_recalled(self, rowids: list[int], now: float) -> bool:
        """Count one more recall of each memory and remember when (no new rowid, no new version).

        Bookkeeping, not data: it waits at most BOOKKEEPING_WAIT for a row another transaction holds, so
        a recall never queues behind a long write; counts it could not write wait in this process and go
        with the next one. False when they are waiting."""
        with self._lock:
            for rowid in rowids:
                count, _ = self._unwritten_recalls.get(int(rowid), (0, now))
                self._unwritten_recalls[int(rowid)] = (count + 1, now)
            return self._write_recalls(BOOKKEEPING_WAIT)

    def _write_recalls(self, wait: str) -> bool:
        psycopg = _psycopg()
        pending = sorted(self._unwritten_recalls.items())
        try:
            with self.pool.connection() as conn, conn.transaction():
                conn.execute("SELECT set_config('lock_timeout', %s, true)", (wait,))
                conn.execute(
                    "UPDATE memories m SET recall_count = m.recall_count + v.n, last_recalled_at = v.at "
                    "FROM unnest(%s::bigint[], %s::int[], %s::float8[]) AS v(rowid, n, at) WHERE m.rowid = v.rowid",
                    ([r for r, _ in pending], [n for _, (n, _) in pending], [at for _, (_, at) in pending]),
                )
        except (psycopg.errors.LockNotAvailable, psycopg.errors.DeadlockDetected):
            return False
        except _lost(psycopg) as exc:
            raise self._unavailable(exc) from None
        self._unwritten_recalls.clear()
        return True

    def add_tags(self, workspace_id: str, memory_id: str, tags: list[str]) -> None:
        """Union `tags` into a stored memory's tags."""
        with self._write(workspace_id, model="none") as cur:
            row = cur.execute(
                "SELECT rowid, tags FROM memories WHERE workspace_id = %s AND id = %s FOR UPDATE",
                (workspace_id, _enc(memory_id)),
            ).fetchone()
            if row is not None:
                merged = list(dict.fromkeys([*row[1], *(_enc(t) for t in tags)]))
                cur.execute("UPDATE memories SET tags = %s::text[] WHERE rowid = %s", (merged, row[0]))
                self._touch(cur, workspace_id)

    def merge(self, survivor: Memory, vector: np.ndarray, embedding: Embedding, group: list[Memory]) -> bool:
        """Replace `group` by `survivor` in one transaction; the others' ids become aliases of it. Nothing is
        written (False) if any of `group` was changed, forgotten or superseded since it was read."""
        self._ensure_embedding(embedding)
        ws = survivor.workspace_id
        with self._write(ws) as cur:
            self._check_embedding(cur, embedding)
            for m in group:
                row = cur.execute(
                    "SELECT text_sha256, status, tags, recall_count FROM memories WHERE workspace_id = %s AND id = %s "
                    "FOR UPDATE",
                    (ws, _enc(m.id)),
                ).fetchone()
                if row is None or (row[0], row[1], [_dec(t) for t in row[2]], row[3]) != (
                    text_checksum(m.text), "active", m.tags, m.recall_count
                ):
                    return False
            merged = [m for m in group if m.id != survivor.id]
            gone = [m.id for m in merged]
            removed = self._delete(cur, "workspace_id = %s AND id = ANY(%s::text[])",
                                   (ws, [_enc(i) for i in [survivor.id, *gone]]))
            added = self._insert(cur, survivor, vector, embedding)
            cur.executemany(
                "INSERT INTO aliases(workspace_id, alias, memory_id, created_at) VALUES (%s, %s, %s, %s) "
                "ON CONFLICT (workspace_id, alias) DO UPDATE SET memory_id = excluded.memory_id, "
                "created_at = excluded.created_at",
                [(ws, _enc(m.id), _enc(survivor.id), m.created_at.timestamp()) for m in merged],
            )
            # Aliases that pointed at a merged memory follow it to the survivor.
            cur.execute("UPDATE aliases SET memory_id = %s WHERE workspace_id = %s AND memory_id = ANY(%s::text[])",
                        (_enc(survivor.id), ws, [_enc(i) for i in gone]))
            self._touch(cur, ws, added - removed)
        return True

    def forget(self, workspace_id: str, memory_ids: list[str], tool_call_rowids: list[int]) -> int:
        """Delete memories (with their keys and aliases) and tool-call records in one transaction; `checkpoint`
        then vacuums them out of the indexes."""
        encoded = [_enc(m) for m in memory_ids]
        with self._write(workspace_id, model="none") as cur:
            count = self._delete(cur, "workspace_id = %s AND id = ANY(%s::text[])", (workspace_id, encoded))
            cur.execute(
                "DELETE FROM aliases WHERE workspace_id = %s AND (memory_id = ANY(%s::text[]) OR alias = ANY(%s::text[]))",
                (workspace_id, encoded, encoded),
            )
            cur.execute("DELETE FROM tool_calls WHERE workspace_id = %s AND rowid = ANY(%s::bigint[])",
                        (workspace_id, [int(r) for r in tool_call_rowids]))
            self._touch(cur, workspace_id, -count)
        return count

    def checkpoint(self, seconds: float = 5.0) -> bool:
        """VACUUM the tables, so deleted rows leave the heap and every index (HNSW, GIN, btree); False if another
        vacuum kept a table busy for `seconds` (autovacuum then finishes the job)."""
        psycopg = _psycopg()
        try:
            with self.pool.connection() as conn:
                conn.execute(f"SET lock_timeout = '{int(seconds * 1000)}ms'")
                try:
                    conn.execute("VACUUM memories, cell_keys, aliases, tool_calls")
                finally:
                    conn.execute("RESET lock_timeout")
            return True
        except psycopg.errors.LockNotAvailable:
            return False
        except _lost(psycopg) as exc:
            raise self._unavailable(exc) from None

    def add_tool_calls(self, workspace_id: str, records: list[tuple[str, str, float, str | None]]) -> int:
        """Append (tool_name, record JSON, created_at, call_key) rows; a call_key already stored is skipped."""
        with self._write(workspace_id, model="none") as cur:
            cur.execute(
                "INSERT INTO workspaces(id, created_at) VALUES (%s, %s) ON CONFLICT (id) DO NOTHING",
                (workspace_id, datetime.now(timezone.utc).timestamp()),
            )
            if not records:
                return 0
            cur.executemany(
                "INSERT INTO tool_calls(workspace_id, tool_name, record, created_at, call_key) "
                "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (workspace_id, call_key) DO NOTHING",
                [(workspace_id, _enc(name), record, created, None if key is None else _enc(key))
                 for name, record, created, key in records],
            )
            return max(cur.rowcount, 0)

    def put_cell_keys(self, workspace_id: str, rows: list[tuple[int, np.ndarray]], embedding: Embedding) -> None:
        """Store the keys of memories (by rowid); a memory deleted meanwhile gets none."""
        with self._write(workspace_id, model="none") as cur:
            cur.executemany(
                "INSERT INTO cell_keys(memory_rowid, workspace_id, embedding_model, count, dim, keys) "
                "SELECT %s, %s, %s, %s, %s, %s WHERE EXISTS (SELECT 1 FROM memories WHERE rowid = %s) "
                "ON CONFLICT (memory_rowid) DO UPDATE SET workspace_id = excluded.workspace_id, "
                "embedding_model = excluded.embedding_model, count = excluded.count, dim = excluded.dim, "
                "keys = excluded.keys",
                [
                    (int(rowid), workspace_id, embedding.model_id, len(keys), embedding.dim,
                     np.ascontiguousarray(keys, dtype=np.float32).tobytes(), int(rowid))
                    for rowid, keys in rows
                ],
            )
            self._touch(cur, workspace_id)

    def put_cell_model(self, workspace_id: str, state: bytes, enabled: bool, report: str) -> None:
        with self._write(workspace_id, model="none") as cur:
            cur.execute(
                "INSERT INTO cell_models(workspace_id, state, enabled, report, trained_at) VALUES (%s, %s, %s, %s, %s) "
                "ON CONFLICT (workspace_id) DO UPDATE SET state = excluded.state, enabled = excluded.enabled, "
                "report = excluded.report, trained_at = excluded.trained_at",
                (workspace_id, state, enabled, report, time.time()),
            )
            self._touch(cur, workspace_id)

    def replace_vectors(self, rows: list[tuple[int, np.ndarray]], embedding: Embedding) -> None:
        """Every vector anew (re-embedding), in one transaction holding the model lock: the HNSW index is
        dropped and rebuilt, and the column takes the new model's dimension."""
        with self._write(model="exclusive") as cur:
            cur.execute(f"DROP INDEX IF EXISTS {VECTOR_INDEX}")
            cur.execute("ALTER TABLE memories ALTER COLUMN embedding TYPE vector")
            cur.executemany(
                "UPDATE memories SET embedding = %s, embedding_model = %s, embedding_dim = %s WHERE rowid = %s",
                [(_Vec(v), embedding.model_id, embedding.dim, int(r)) for r, v in rows],
            )
            stale = cur.execute(
                "SELECT count(*) FROM memories WHERE embedding_model != %s OR embedding_dim != %s",
                (embedding.model_id, embedding.dim),
            ).fetchone()[0]
            if stale:
                raise StoreMismatch(
                    f"{stale} memories were stored by another process while re-embedding; nothing was changed. "
                    "Run `reme reembed` again."
                )
            _set_meta(cur, "embedding_model", embedding.model_id)
            _set_meta(cur, "embedding_dim", str(embedding.dim))
            self._shape_vectors(cur, embedding.dim)
            cur.execute("UPDATE workspaces SET version = nextval('reme_versions')")
            # Cell keys and adapters live in the cell encoder's space, which re-embedding does not touch.
        self._embedding = (embedding.model_id, embedding.dim)

    # -- maintenance (reme check) ---------------------------------------------------

    def verify(self) -> tuple[list[str], list[int]]:
        """What `reme check` can do for a database: every text against its checksum (raises on a mismatch),
        the lexical index of every memory, the cell keys' sizes, the workspace counts and the HNSW index;
        rebuilds what disagrees. The database's own integrity (pages, WAL) is the server's business:
        amcheck, pg_checksums. Returns (what was repaired, []): a `vector(dim)` column cannot hold a torn
        vector."""
        repaired: list[str] = []
        relexed = 0
        sql = f"SELECT {_COLUMNS}, search_terms, lexemes::text FROM memories WHERE rowid > %s ORDER BY rowid LIMIT %s"
        for rows in self._pages(sql, (), 500):
            memories = []  # (rowid, memory, what its tsvector is made of, its stored tsvector)
            for row in rows:
                rowid, m = _row_to_memory(row[:-2])  # raises StoreCorrupt on a bad checksum
                memories.append((rowid, m, lexical_text(m.text, m.keywords, _dec(row[-2])), row[-1]))
            with self._read() as cur:
                expected = cur.execute(
                    f"SELECT to_tsvector('{TEXT_SEARCH}', t)::text FROM unnest(%s::text[]) WITH ORDINALITY AS u(t, i) "
                    "ORDER BY i",
                    ([text for _, _, text, _ in memories],),
                ).fetchall()
            wrong = [(text, rowid) for (rowid, _, text, stored), (want,) in zip(memories, expected) if stored != want]
            if wrong:
                with self._write(*{m.workspace_id for _, m, _, _ in memories}, model="none") as cur:
                    cur.executemany(f"UPDATE memories SET lexemes = to_tsvector('{TEXT_SEARCH}', %s) WHERE rowid = %s",
                                    wrong)
                relexed += len(wrong)
        if relexed:
            repaired.append(f"the lexical index of {relexed} memories did not match their text; rebuilt it")
        with self._write(model="exclusive") as cur:
            cur.execute("DELETE FROM cell_keys WHERE length(keys) != 4 * count * dim")
            if cur.rowcount:
                repaired.append(f"dropped {cur.rowcount} trained cell key set(s) with a torn size; their memories "
                                "are still found by their own vectors")
            cur.execute(
                "UPDATE workspaces w SET memory_count = c.n, version = nextval('reme_versions') FROM "
                "(SELECT w2.id, count(m.rowid) AS n FROM workspaces w2 LEFT JOIN memories m ON m.workspace_id = w2.id "
                "GROUP BY w2.id) c WHERE c.id = w.id AND w.memory_count != c.n"
            )
            if cur.rowcount:
                repaired.append(f"recounted the memories of {cur.rowcount} workspace(s)")
            dim = _meta(cur, "embedding_dim")
            present = cur.execute("SELECT 1 FROM pg_indexes WHERE indexname = %s", (VECTOR_INDEX,)).fetchone()
            if dim is not None and present is None:
                self._shape_vectors(cur, int(dim))
                repaired.append("the HNSW vector index was missing; rebuilt it")
        return repaired, []

    def torn_vectors(self) -> list[int]:
        return []


class PgVectorSpace:
    """`VectorSpace` of one workspace, answered by the database (the HNSW index, or an exact sort of a few rows)."""

    def __init__(self, store: PgVectorStore, workspace_id: str):
        self.store = store
        self.workspace_id = workspace_id
        self._ids: tuple[np.ndarray, np.ndarray] | None = None

    def _load(self) -> tuple[np.ndarray, np.ndarray]:
        """Rowids and kinds, read only when asked (trained cells need them; plain recall does not)."""
        if self._ids is None:
            with self.store._read() as cur:
                rows = cur.execute(
                    f"SELECT rowid, {_ACTIVE_KIND} FROM memories WHERE workspace_id = %s ORDER BY rowid",
                    (self.workspace_id,),
                ).fetchall()
            self._ids = (np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows)),
                         np.array([r[1] for r in rows], dtype=object))
        return self._ids

    @property
    def rowids(self) -> np.ndarray:
        return self._load()[0]

    @property
    def kinds(self) -> np.ndarray:
        return self._load()[1]

    def search(
        self, vector: np.ndarray, limit: int, types: Sequence[str] | None = None, allowed: np.ndarray | None = None
    ) -> list[tuple[int, float]]:
        """(rowid, cosine) best first over active memories of `types` (all when None), only rowids in `allowed`
        when given; every filter is part of the query, so the index keeps looking until `limit` pass them."""
        if limit <= 0 or (allowed is not None and len(allowed) == 0):
            return []
        return [(int(r), float(s)) for r, s in self._run("", vector, limit, types, allowed)]

    def explain(
        self, vector: np.ndarray, limit: int, types: Sequence[str] | None = None, allowed: np.ndarray | None = None
    ) -> str:
        """PostgreSQL's plan for `search` with these arguments (is the HNSW index used?)."""
        return "\n".join(row[0] for row in self._run("EXPLAIN ", vector, limit, types, allowed))

    def _run(self, prefix: str, vector: np.ndarray, limit: int, types: Sequence[str] | None,
             allowed: np.ndarray | None) -> list[tuple[Any, ...]]:
        clause, params = "", []
        if allowed is not None:
            clause, params = " AND rowid = ANY(%s::bigint[])", [np.asarray(allowed, dtype=np.int64).tolist()]
        query = _Vec(vector)
        # relaxed_order may hand rows back slightly out of order: the outer query sorts them.
        sql = (
            f"{prefix}WITH hits AS MATERIALIZED (SELECT rowid, embedding <=> %s AS distance FROM memories "
            f"WHERE workspace_id = %s AND status = 'active' AND memory_type = ANY(%s::text[]){clause} "
            "ORDER BY embedding <=> %s LIMIT %s) "
            "SELECT rowid, 1 - distance FROM hits ORDER BY distance, rowid"
        )
        values = (query, self.workspace_id, list(types or MEMORY_TYPES), *params, query, limit)
        psycopg = _psycopg()
        try:
            with self.store.pool.connection() as conn:
                if limit <= EF_SEARCH:
                    return conn.execute(sql, values).fetchall()
                with conn.transaction():
                    conn.execute("SELECT set_config('hnsw.ef_search', %s, true)", (str(min(limit, MAX_EF_SEARCH)),))
                    return conn.execute(sql, values).fetchall()
        except _lost(psycopg) as exc:
            raise self.store._unavailable(exc) from None

    def similarities(self, vector: np.ndarray, rowids: list[int]) -> dict[int, float]:
        if not rowids:
            return {}
        with self.store._read() as cur:
            rows = cur.execute(
                "SELECT rowid, 1 - (embedding <=> %s) FROM memories WHERE workspace_id = %s AND rowid = ANY(%s::bigint[])",
                (_Vec(vector), self.workspace_id, [int(r) for r in rowids]),
            ).fetchall()
        return {int(r): float(s) for r, s in rows}


def _meta(cur: Any, key: str) -> str | None:
    row = cur.execute("SELECT value FROM meta WHERE key = %s", (key,)).fetchone()
    return row[0] if row else None


def _set_meta(cur: Any, key: str, value: str) -> None:
    cur.execute("INSERT INTO meta(key, value) VALUES (%s, %s) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value))


def _drop_dangling_aliases(cur: Any, workspace_id: str) -> None:
    cur.execute(
        "DELETE FROM aliases a WHERE a.workspace_id = %s AND NOT EXISTS "
        "(SELECT 1 FROM memories m WHERE m.workspace_id = a.workspace_id AND m.id = a.memory_id)",
        (workspace_id,),
    )
