"""`reme backup PATH`: a consistent copy of a live store, made while servers keep using it.

Why SQLite's online backup and not `cp`: a copy of the file taken while another process
writes can mix pages from before and after a transaction, and misses whatever still sits
in the write-ahead log. The backup API copies the database as one read transaction sees
it, so the copy is exactly the store at one moment, every acknowledged write included;
in WAL mode writers carry on meanwhile.

The copy is a complete store directory: `reme store_dir=PATH` serves it as it is, and
restoring is copying it back over a stopped store. An encrypted store is copied encrypted
with the same key.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from pydantic import BaseModel

from reme_mcp.errors import InvalidInput, NotFound, StoreCorrupt
from reme_mcp.privacy import encryption
from reme_mcp.store.sqlite import LOCK_WAIT_MS, STORE_FILE
from reme_mcp.working.files import DIRECTORY, TEMPORARY

# Folders of plain files beside the database that belong to the store (working memory, dumped packs).
FOLDERS = (DIRECTORY, "library")


class BackupReport(BaseModel):
    path: Path
    memories: int
    workspaces: int
    database_bytes: int
    files: int
    seconds: float

    def render(self) -> str:
        return (
            f"Backed up {self.memories:,} memories in {self.workspaces} workspace(s) to {self.path} "
            f"({self.database_bytes / 1e6:.1f} MB database, {self.files} other file(s)) in {self.seconds:.1f} s; "
            f"the copy passed SQLite's integrity check. Serve it with store_dir={self.path}, or restore it by "
            "copying it over the stopped store."
        )


def _target(store_dir: Path, target: Path) -> Path:
    target = target.expanduser().resolve()
    source = store_dir.expanduser().resolve()
    if target == source or target.is_relative_to(source):
        raise InvalidInput(f"{target} is inside the store {source}; back up to a folder outside it.")
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise InvalidInput(f"{target} exists and is not an empty folder; name a new folder for the backup.")
    return target


def _copy_files(source: Path, target: Path) -> int:
    """Regular files only: a symlink planted in the store is not followed out of it."""
    copied = 0
    for dirpath, dirnames, filenames in os.walk(source):
        relative = Path(dirpath).relative_to(source)
        dirnames[:] = [d for d in dirnames if not os.path.islink(os.path.join(dirpath, d))]
        for name in filenames:
            path = Path(dirpath, name)
            if path.is_symlink() or not path.is_file() or name.startswith(TEMPORARY):
                continue
            (target / relative).mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target / relative / name)
            copied += 1
    return copied


def backup(store_dir: Path, target: Path, key: str | None) -> BackupReport:
    """Copy the store under `store_dir` to the new folder `target`; checks the copy before answering."""
    started = time.monotonic()
    database = store_dir / STORE_FILE
    if not database.is_file():
        raise NotFound(f"No store at {database}; check store_dir.")
    target = _target(store_dir, target)
    target.mkdir(parents=True, exist_ok=True)
    copy_path = target / STORE_FILE
    source = encryption.connect(str(database), key)
    try:
        source.execute(f"PRAGMA busy_timeout = {LOCK_WAIT_MS}")
        source.execute("SELECT count(*) FROM sqlite_master").fetchone()  # a wrong key fails here, clearly
        copy = encryption.connect(str(copy_path), key)
        try:
            source.backup(copy)  # all pages in one step: one consistent snapshot
            problems = [row[0] for row in copy.execute("PRAGMA integrity_check").fetchall()]
            if problems != ["ok"]:
                raise StoreCorrupt(f"The backup at {copy_path} fails SQLite's integrity check: {problems[:3]}.")
            memories = copy.execute("SELECT count(*) FROM memories").fetchone()[0]
            workspaces = copy.execute("SELECT count(*) FROM workspaces").fetchone()[0]
        finally:
            copy.close()
    except encryption.DatabaseErrors as exc:
        raise StoreCorrupt(f"Cannot back up {database}: {exc} (an encrypted store needs REME_ENCRYPTION_KEY).") from None
    finally:
        source.close()
    files = sum(_copy_files(store_dir / folder, target / folder) for folder in FOLDERS if (store_dir / folder).is_dir())
    return BackupReport(
        path=target, memories=memories, workspaces=workspaces, database_bytes=copy_path.stat().st_size,
        files=files, seconds=time.monotonic() - started,
    )
