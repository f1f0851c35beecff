"""Storage backends behind one protocol (base.MemoryStore), and the one place that picks one.

`vector_store.default.backend`: `local` (SQLite in store_dir, the default), `memory` (SQLite in RAM) or
`pgvector` (PostgreSQL with pgvector at `vector_store.default.url` / FLOW_PGVECTOR_URL). Nothing here
connects or imports a driver until a store is opened.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from reme_mcp.config import Config, secret
from reme_mcp.errors import ConfigError

if TYPE_CHECKING:
    from reme_mcp.store.base import MemoryStore

def pgvector_url(config: Config) -> str:
    """The PostgreSQL URL of a pgvector store; a clear error when none is configured."""
    url = secret(config.vector_store.default.url, "FLOW_PGVECTOR_URL")
    if not url:
        raise ConfigError(
            "vector_store.default.backend=pgvector needs a database: set vector_store.default.url="
            "postgresql://user:password@host:5432/dbname (or the environment variable FLOW_PGVECTOR_URL)."
        )
    return url


def store_location(config: Config) -> str:
    """Where the store is, as logs and messages may show it (never a password)."""
    backend = config.vector_store.default.backend
    if backend == "memory":
        return ":memory:"
    if backend == "pgvector":
        url = secret(config.vector_store.default.url, "FLOW_PGVECTOR_URL")
        if not url:
            return "postgresql (no vector_store.default.url configured)"
        from reme_mcp.store.pgvector import describe_url

        return describe_url(url)
    from reme_mcp.store.sqlite import STORE_FILE

    return str(config.store_dir / STORE_FILE)


def check_config(config: Config) -> None:
    """Refuse a store configuration that cannot work, before anything connects (ReMeApp does it at once)."""
    if config.vector_store.default.backend != "pgvector":
        return
    pgvector_url(config)
    if secret(config.privacy.encryption_key, "REME_ENCRYPTION_KEY"):
        raise ConfigError(
            "privacy.encryption_key (or REME_ENCRYPTION_KEY) encrypts the embedded SQLite store file; with "
            "vector_store.default.backend=pgvector encryption at rest is the database server's job (an "
            "encrypted volume or your provider's storage encryption, and sslmode=verify-full in the URL for "
            "the connection). Unset the key to use PostgreSQL."
        )
    from reme_mcp.store.pgvector import _psycopg

    _psycopg()  # the driver is installed (pip install 'reme-mcp[pgvector]')


def create_store(config: Config) -> MemoryStore:
    """The configured store, not yet opened."""
    check_config(config)
    backend = config.vector_store.default.backend
    if backend == "pgvector":
        from reme_mcp.store.pgvector import PgVectorStore

        return PgVectorStore(pgvector_url(config))
    key = secret(config.privacy.encryption_key, "REME_ENCRYPTION_KEY")
    from reme_mcp.store.sqlite import SQLiteStore

    return SQLiteStore(store_location(config), None if backend == "memory" else key)


def open_store(config: Config, model_id: str | None) -> MemoryStore:
    """The configured store, opened (schema created or checked; `model_id=None` skips the model check)."""
    store = create_store(config)
    store.open(model_id)
    return store
