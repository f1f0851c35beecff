"""Shared fixtures: the real `reme` command, real servers on loopback, real clients.

Two passes run the same tests (scripts/test.sh). The embedded one uses SQLite in each test's store_dir.
With REME_TEST_BACKEND=pgvector (and REME_TEST_PGVECTOR_URL, an admin URL of a throwaway PostgreSQL with
pgvector: scripts/postgres.sh) every app and server a test starts uses the pgvector backend on a fresh
database of its own, created from a template holding the extension and dropped after the test: the
autouse fixture `store_backend` sets REME_VECTOR_STORE_BACKEND and FLOW_PGVECTOR_URL, which the
configuration reads, and `server_env()` passes them to every server. A test that starts a second store
beside the first (a store "after moving machines") gives it its own database with `own_store`; a test
that looks inside a store uses `store_db` / `store_rows` / `store_contents`, which read either backend.
Tests about SQLite itself are marked `embedded_only` and tests/test_pgvector.py `pgvector_only`; the
other pass deselects them.
"""

from __future__ import annotations

import itertools
import os
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

from reme_mcp import ReMeApp

REME = str(Path(sys.executable).with_name("reme"))

PGVECTOR = os.environ.get("REME_TEST_BACKEND", "local") == "pgvector"
ADMIN_URL = os.environ.get("REME_TEST_PGVECTOR_URL", "")
TEMPLATE = "reme_test_template"  # a database with the vector extension, copied for each test
STORE_ENV = ("REME_VECTOR_STORE_BACKEND", "FLOW_PGVECTOR_URL")  # what picks the store; every server gets them


def pytest_configure(config: pytest.Config) -> None:
    if PGVECTOR and not ADMIN_URL:
        raise pytest.UsageError(
            "REME_TEST_BACKEND=pgvector needs REME_TEST_PGVECTOR_URL: eval \"$(bash scripts/postgres.sh start)\""
        )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect what the other pass runs: `embedded_only` with pgvector, `pgvector_only` without."""
    other = "embedded_only" if PGVECTOR else "pgvector_only"
    deselected = [item for item in items if item.get_closest_marker(other)]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = [item for item in items if not item.get_closest_marker(other)]


# -- PostgreSQL databases for the pgvector pass ---------------------------------------------------------------

_admin: Any = None
_numbers = itertools.count()
_store_urls: dict[Path, str] = {}  # stores given a database of their own (own_store)


def _with_database(url: str, name: str) -> str:
    return urlsplit(url)._replace(path=f"/{name}").geturl()


def _admin_connection() -> Any:
    """An autocommit connection to the server's maintenance database; makes the template on first use."""
    global _admin
    import psycopg

    if _admin is None or _admin.closed:
        _admin = psycopg.connect(ADMIN_URL, autocommit=True)
        if _admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (TEMPLATE,)).fetchone() is None:
            try:
                _admin.execute(f"CREATE DATABASE {TEMPLATE}")
            except psycopg.errors.DuplicateDatabase:  # another test process made it meanwhile
                pass
            with psycopg.connect(_with_database(ADMIN_URL, TEMPLATE), autocommit=True) as template:
                template.execute("CREATE EXTENSION IF NOT EXISTS vector")
    return _admin


@contextmanager
def fresh_database() -> Iterator[str]:
    """A new empty database with the vector extension; yields its URL, drops it afterwards."""
    import psycopg

    admin = _admin_connection()
    name = f"reme_t{os.getpid()}_{next(_numbers)}"
    for attempt in range(50):
        try:
            admin.execute(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE}")
            break
        except psycopg.errors.ObjectInUse:  # another process is still setting the template up
            time.sleep(0.1)
    else:
        raise RuntimeError(f"could not copy {TEMPLATE}: it stayed in use")
    try:
        yield _with_database(ADMIN_URL, name)
    finally:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def store_url(store_dir: Path) -> str:
    """The database a server with this store_dir uses in the pgvector pass."""
    return _store_urls.get(Path(store_dir)) or os.environ["FLOW_PGVECTOR_URL"]


@contextmanager
def own_store(store_dir: Path) -> Iterator[list[str]]:
    """A store at store_dir that shares nothing with the test's other stores: in the pgvector pass a database of
    its own. Yields the overrides that select it (none for the embedded backend, where store_dir is the store);
    pass them to every app and server started on store_dir."""
    if not PGVECTOR:
        yield []
        return
    with fresh_database() as url:
        _store_urls[Path(store_dir)] = url
        try:
            yield ["vector_store.default.backend=pgvector", f"vector_store.default.url={url}"]
        finally:
            _store_urls.pop(Path(store_dir), None)


@pytest.fixture(autouse=True)
def store_backend(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The test's store: SQLite under its store_dir, or (pgvector pass) a fresh PostgreSQL database."""
    if not PGVECTOR:
        for name in STORE_ENV:
            monkeypatch.delenv(name, raising=False)
        yield
        return
    with fresh_database() as url:
        monkeypatch.setenv("REME_VECTOR_STORE_BACKEND", "pgvector")
        monkeypatch.setenv("FLOW_PGVECTOR_URL", url)
        yield


class _Postgres:
    """`sqlite3.Connection`'s execute for a PostgreSQL database: `?` placeholders, rows as tuples, autocommit."""

    def __init__(self, url: str):
        import psycopg

        self.conn = psycopg.connect(url, autocommit=True)

    def execute(self, sql: str, params: tuple | list = ()) -> Any:
        return self.conn.execute(sql.replace("?", "%s"), tuple(params) or None)


@contextmanager
def store_db(store_dir: Path) -> Iterator[Any]:
    """What a server on store_dir keeps, opened behind its back: the SQLite file, or the PostgreSQL database.
    `execute(sql, params)` with `?` placeholders either way; changes are committed on leaving."""
    if PGVECTOR:
        db = _Postgres(store_url(store_dir))
        try:
            yield db
        finally:
            db.conn.close()
        return
    db = sqlite3.connect(Path(store_dir) / "memory.sqlite3")
    try:
        with db:
            yield db
    finally:
        db.close()


def store_rows(store_dir: Path, sql: str, params: tuple | list = ()) -> list[tuple]:
    with store_db(store_dir) as db:
        return [tuple(row) for row in db.execute(sql, params).fetchall()]


async def lexical_texts(store_dir: Path, query: str, top_k: int = 10) -> list[str]:
    """What a lexical-only recall finds, best first."""
    async with ReMeApp(store_dir=str(store_dir), retrieval__mode="lexical") as app:
        found = await app.async_execute("recall", query=query, top_k=top_k)
    return [m["text"] for m in found.metadata["memories"]]


def store_exists(store_dir: Path) -> bool:
    """Whether a server has created the store yet."""
    if PGVECTOR:
        return bool(store_rows(store_dir, "SELECT 1 FROM pg_tables WHERE tablename = 'memories'"))
    return (Path(store_dir) / "memory.sqlite3").exists()


def store_contents(store_dir: Path) -> bytes:
    """Everything the store holds, to search for a text that must (not) be there: the SQLite file's bytes (free
    pages and the write-ahead log included), or every row of every table of the PostgreSQL database as text."""
    if not PGVECTOR:
        return b"".join(p.read_bytes() for p in sorted(Path(store_dir).glob("memory.sqlite3*")))
    with store_db(store_dir) as db:
        tables = [r[0] for r in db.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename").fetchall()]
        return b"\n".join(str(row[0]).encode() for table in tables
                          for row in db.execute(f"SELECT t::text FROM {table} t").fetchall())


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def no_endpoint_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's own FLOW_* settings must not point tests at a real endpoint."""
    for name in ("FLOW_EMBEDDING_API_KEY", "FLOW_EMBEDDING_BASE_URL", "FLOW_LLM_API_KEY", "FLOW_LLM_BASE_URL"):
        monkeypatch.delenv(name, raising=False)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_env() -> dict[str, str]:
    """The test's environment minus anything that would point the server at a real endpoint or store
    (but with the test's own store: STORE_ENV)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLOW_", "REME_")) or k in STORE_ENV}
    env["HF_HUB_OFFLINE"] = "1"
    return env


@asynccontextmanager
async def mcp_stdio(store_dir: Path, *overrides: str) -> AsyncIterator[ClientSession]:
    """A `reme` MCP server over stdio, driven by the SDK's own client."""
    params = StdioServerParameters(
        command=REME,
        args=["backend=mcp", "mcp.transport=stdio", f"store_dir={store_dir}", *overrides],
        env=server_env(),
    )
    with open(os.devnull, "w") as errlog:
        async with stdio_client(params, errlog=errlog) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                yield session


@contextmanager
def reme_server(tmp_path: Path, *args: str) -> Iterator[int]:
    """Start `reme` with the given args on a free loopback port; yields the port once it listens."""
    port = free_port()
    log = tmp_path / f"server-{port}.log"
    port_key = "http.port" if "backend=http" in args else "mcp.port"
    proc = subprocess.Popen(
        [REME, *args, f"{port_key}={port}", f"store_dir={tmp_path}"],
        stdout=subprocess.DEVNULL, stderr=log.open("w"), env=server_env(),
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=20)


@pytest.fixture
def http_server(tmp_path: Path) -> Iterator[str]:
    """`reme backend=http` on a free loopback port; yields its base URL."""
    with reme_server(tmp_path, "backend=http") as port:
        yield f"http://127.0.0.1:{port}"
