"""Encryption at rest: the whole store file through SQLCipher, with a key from the environment.

Why the whole file and not the text column: BM25 needs its FTS5 index and recall needs
the vectors and cell keys, and each of them reveals the text (an index holds the words,
an embedding can be inverted). SQLCipher encrypts every page with AES-256 (HMAC-SHA512
per page), the indexes and the write-ahead log included, and otherwise behaves as
SQLite: WAL, FTS5, JSON and several processes on one file all work unchanged. The
`sqlcipher3-binary` wheel ships it, so nothing compiles (`pip install 'reme-mcp[encryption]'`).

The key is `privacy.encryption_key` or `REME_ENCRYPTION_KEY`: 64 hex digits are used as
the raw 256-bit key; anything else is a passphrase that SQLCipher stretches with PBKDF2.
Working-memory files are plain files and are not covered.
"""

from __future__ import annotations

import re
import sqlite3
from typing import Any

from reme_mcp.errors import ConfigError, StoreMismatch

try:  # optional: only an encrypted store needs it
    import sqlcipher3
except ImportError:  # pragma: no cover - exercised where the extra is not installed
    sqlcipher3 = None

OperationalErrors: tuple[type[Exception], ...] = (sqlite3.OperationalError,) + (
    (sqlcipher3.dbapi2.OperationalError,) if sqlcipher3 is not None else ()
)
DatabaseErrors: tuple[type[Exception], ...] = (sqlite3.DatabaseError,) + (
    (sqlcipher3.dbapi2.DatabaseError,) if sqlcipher3 is not None else ()
)

_RAW_KEY = re.compile(r"[0-9A-Fa-f]{64}")


def key_pragma(key: str) -> str:
    """The `PRAGMA key` value: a raw key as x'..', a passphrase as a quoted string."""
    if _RAW_KEY.fullmatch(key):
        return f"\"x'{key}'\""
    return "'" + key.replace("'", "''") + "'"


def _driver() -> Any:
    if sqlcipher3 is None:
        raise ConfigError(
            "An encryption key is set (privacy.encryption_key or REME_ENCRYPTION_KEY), but SQLCipher is not "
            "installed: pip install 'reme-mcp[encryption]' (the sqlcipher3-binary wheel)."
        )
    return sqlcipher3


def connect(path: str, key: str | None) -> sqlite3.Connection:
    """A connection to the store file, decrypting with `key` when one is given."""
    if not key:
        db = sqlite3.connect(path, timeout=60, isolation_level=None, check_same_thread=False)
        try:
            db.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.DatabaseError:
            db.close()
            raise StoreMismatch(
                f"The store at {path} cannot be read as SQLite: it is encrypted (set REME_ENCRYPTION_KEY or "
                "privacy.encryption_key) or it is not a reme-mcp store."
            ) from None
        return db
    driver = _driver()
    db = driver.connect(path, timeout=60, isolation_level=None, check_same_thread=False)
    db.execute(f"PRAGMA key = {key_pragma(key)}")
    try:
        db.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except driver.dbapi2.DatabaseError:
        db.close()
        raise StoreMismatch(
            f"The store at {path} does not open with the configured encryption key: the key is wrong, or the "
            "store was written without encryption (`reme encrypt` converts a plain store)."
        ) from None
    return db


def encrypt_copy(source: str, target: str, key: str) -> None:
    """Write an encrypted copy of the plain store `source` to `target` (which must not exist)."""
    driver = _driver()
    db = driver.connect(source, isolation_level=None)  # no key: read as a plain file
    try:
        db.execute(f"ATTACH DATABASE ? AS encrypted KEY {key_pragma(key)}", (target,))
        db.execute("SELECT sqlcipher_export('encrypted')")
        version = db.execute("PRAGMA user_version").fetchone()[0]
        db.execute(f"PRAGMA encrypted.user_version = {int(version)}")
        db.execute("DETACH DATABASE encrypted")
    finally:
        db.close()
