"""The store survives what happens behind its back, and a live copy of it is a working store.

Indexes live in the same SQLite file as the rows, so a crash cannot tear them (tests/test_crash.py
kills writers to prove it). A file edited or half-copied behind SQLite's back can still disagree:
opening it rebuilds what does, with a warning, and `reme check` does the full check. `reme backup`
copies a store while a writer keeps writing; the copy serves the same answers.
"""

from __future__ import annotations

import logging
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import REME, mcp_stdio, server_env
from trajectories import long_trajectory

from reme_mcp import ReMeApp

# SQLite's own file: its FTS5 index, torn blobs, `reme check` and `reme backup` of it. What these commands say
# for a PostgreSQL store is in tests/test_pgvector.py.
pytestmark = [pytest.mark.anyio, pytest.mark.embedded_only]

FACTS = [
    "The staging database password rotates every Monday at 09:00.",
    "Priya owns the billing service and prefers Slack over email.",
    "The nightly ETL job runs on worker-07 and writes to warehouse-db-07.",
]


def reme(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([REME, *args], capture_output=True, text=True, env=server_env(), timeout=600)


async def remember_facts(store: Path) -> list[str]:
    async with ReMeApp(store_dir=str(store)) as app:
        return [(await app.async_execute("remember", text=fact)).metadata["memory"]["id"] for fact in FACTS]


async def test_a_lexical_index_out_of_step_is_rebuilt_on_open_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    await remember_facts(tmp_path)
    with sqlite3.connect(tmp_path / "memory.sqlite3") as db:  # drop one row from the index, add a stale one
        rowid, text, keywords = db.execute("SELECT rowid, text, keywords FROM memories WHERE text LIKE 'Priya%'").fetchone()
        db.execute("INSERT INTO memories_fts(memories_fts, rowid, text, keywords) VALUES ('delete', ?, ?, ?)",
                   (rowid, text, keywords))
        db.execute("INSERT INTO memories_fts(rowid, text, keywords) VALUES (999, 'ghost row', '[]')")
    with caplog.at_level(logging.WARNING, logger="reme_mcp"):
        async with ReMeApp(store_dir=str(tmp_path), retrieval__mode="lexical") as app:
            found = await app.async_execute("recall", query="Priya billing", top_k=1)
            ghost = await app.async_execute("recall", query="ghost", top_k=3)
    assert "lexical (FTS5) index did not match the memories; rebuilt it" in caplog.text
    assert found.metadata["memories"][0]["text"] == FACTS[1]
    assert ghost.metadata["memories"] == []


async def test_workspace_counters_out_of_step_are_recounted_on_open_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The counters behind the one-row staleness check: a file edited behind SQLite's back gets them recounted,
    so a cache can never take a changed workspace for an unchanged one."""
    ids = await remember_facts(tmp_path)
    with sqlite3.connect(tmp_path / "memory.sqlite3") as db:
        db.execute("UPDATE workspaces SET memory_count = 99, last_rowid = 0")
    with caplog.at_level(logging.WARNING, logger="reme_mcp"):
        async with ReMeApp(store_dir=str(tmp_path)) as app:
            services = await app.services()
            count, last = services.store.fingerprint("default")[:2]
            issued = services.store.last_rowid()
    assert "memory counters did not match the memories; recounted them" in caplog.text
    assert count == len(ids) and last == issued > 0


async def test_torn_vectors_are_never_served_and_reme_check_re_embeds_them(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    await remember_facts(tmp_path)
    with sqlite3.connect(tmp_path / "memory.sqlite3") as db:
        db.execute("UPDATE memories SET embedding = substr(embedding, 1, 100) WHERE text LIKE 'The nightly%'")
        db.execute("INSERT INTO cell_keys VALUES (424242, 'default', 'm', 1, 4, zeroblob(16))")  # keys of no memory
    with caplog.at_level(logging.WARNING, logger="reme_mcp"):
        async with ReMeApp(store_dir=str(tmp_path), retrieval__mode="dense") as app:
            found = await app.async_execute("recall", query="which worker runs the ETL job", top_k=3)
    assert FACTS[2] not in [m["text"] for m in found.metadata["memories"]]  # skipped, not read as garbage
    assert "1 memories have a torn vector" in caplog.text
    assert "dropped 1 trained cell key set(s)" in caplog.text

    checked = reme("check", f"store_dir={tmp_path}")
    assert checked.returncode == 0, checked.stderr
    assert "re-embedded 1 memories whose vector was torn" in checked.stdout
    assert "nothing to repair" in reme("check", f"store_dir={tmp_path}").stdout
    async with ReMeApp(store_dir=str(tmp_path), retrieval__mode="dense") as app:
        found = await app.async_execute("recall", query="which worker runs the ETL job", top_k=1)
    assert found.metadata["memories"][0]["text"] == FACTS[2]


def test_check_refuses_a_damaged_file_and_a_missing_store(tmp_path: Path) -> None:
    missing = reme("check", f"store_dir={tmp_path / 'nothing'}")
    assert missing.returncode == 1 and "No store at" in missing.stderr
    assert not (tmp_path / "nothing").exists()


WRITER = textwrap.dedent(
    """
    import sys, anyio
    from reme_mcp import ReMeApp

    async def main():
        async with ReMeApp(store_dir=sys.argv[1], log_level="WARNING") as app:
            for n in range(100_000):
                reply = await app.async_execute("remember", text=f"live note {n} about deploy window {n % 9}")
                print(reply.metadata["memory"]["id"], flush=True)

    anyio.run(main)
    """
)


async def test_backup_of_a_live_store_is_a_store_that_answers_the_same(tmp_path: Path) -> None:
    store, copy = tmp_path / "store", tmp_path / "backup"
    ids = await remember_facts(store)
    async with ReMeApp(store_dir=str(store)) as app:
        offloaded = await app.async_execute("summary_working_memory", messages=long_trajectory(results=3, lines_per_result=200),
                                            working_summary_mode="compact", max_total_tokens=1000, chat_id="c1")
        [file, *_] = [f["file"] for f in offloaded.metadata["files"]]
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(store)], stdout=subprocess.PIPE, text=True,
                              stderr=subprocess.DEVNULL, env=server_env())
    try:
        acknowledged = [writer.stdout.readline().strip() for _ in range(20)]  # writing is well under way
        backed_up = reme("backup", str(copy), f"store_dir={store}")
        acknowledged += [writer.stdout.readline().strip() for _ in range(5)]
    finally:
        writer.kill()
        writer.wait()
    assert backed_up.returncode == 0, backed_up.stderr
    assert "the copy passed SQLite's integrity check" in backed_up.stdout

    with sqlite3.connect(copy / "memory.sqlite3") as db:
        copied = {row[0] for row in db.execute("SELECT id FROM memories")}
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert set(ids) | set(acknowledged[:20]) <= copied  # everything acknowledged before the backup began
    assert len(copied) - len(FACTS) >= 20

    async with mcp_stdio(copy) as session:
        result = await session.call_tool("recall", {"query": "who owns billing?", "top_k": 1})
        assert result.structured_content["memories"][0]["text"] == FACTS[1]
        page = await session.call_tool("read_working_memory", {"file": file, "limit": 2})
        assert not page.is_error and page.structured_content["content"]
    with sqlite3.connect(store / "memory.sqlite3") as db:  # the source lost nothing either
        assert set(acknowledged) <= {row[0] for row in db.execute("SELECT id FROM memories")}


def test_backup_refuses_targets_that_would_overwrite_or_nest(tmp_path: Path) -> None:
    store = tmp_path / "store"
    assert reme("remember", "a fact worth keeping", f"store_dir={store}").returncode == 0
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "notes.txt").write_text("mine")
    for target, message in ((store / "inside", "is inside the store"),
                            (tmp_path / "full", "is not an empty folder"),
                            (tmp_path / "full" / "notes.txt", "is not an empty folder")):
        refused = reme("backup", str(target), f"store_dir={store}")
        assert refused.returncode == 1 and message in refused.stderr, refused.stderr
    assert (tmp_path / "full" / "notes.txt").read_text() == "mine"
    assert not (store / "inside").exists()
    missing = reme("backup", str(tmp_path / "b"), f"store_dir={tmp_path / 'none'}")
    assert missing.returncode == 1 and "No store at" in missing.stderr


def test_an_encrypted_store_is_backed_up_encrypted(tmp_path: Path) -> None:
    store, copy = tmp_path / "store", tmp_path / "copy"
    key = "privacy.encryption_key=correct horse battery staple"
    assert reme("remember", "The vault is in Zurich.", f"store_dir={store}", key).returncode == 0
    without_key = reme("backup", str(tmp_path / "nokey"), f"store_dir={store}")
    assert without_key.returncode == 1 and "REME_ENCRYPTION_KEY" in without_key.stderr
    assert reme("backup", str(copy), f"store_dir={store}", key).returncode == 0
    assert b"Zurich" not in (copy / "memory.sqlite3").read_bytes()
    recalled = reme("recall", "where is the vault?", f"store_dir={copy}", key)
    assert "The vault is in Zurich." in recalled.stdout, recalled.stderr
    assert "encrypt" in reme("recall", "vault", f"store_dir={copy}").stderr  # no key, no data


def test_lexical_ranks_the_whole_index_then_keeps_only_the_workspace_and_scope(tmp_path: Path) -> None:
    """BM25 runs over the whole index first; a workspace whose rows are not among the best still gets
    exactly its own, ranked as the joined query ranks them."""
    from datetime import datetime, timezone

    import numpy as np

    from reme_mcp.retrieval.lexical import match_expression
    from reme_mcp.store.base import Embedding, Memory, Scope
    from reme_mcp.store.sqlite import SQLiteStore

    store = SQLiteStore(tmp_path / "memory.sqlite3")
    store.open("model")
    now = datetime.now(timezone.utc)
    vector = np.ones(4, dtype=np.float32) / 2
    busy = [Memory(id=f"b{n}", workspace_id="busy", text=f"apple apple apple pie {n}", created_at=now)
            for n in range(300)]
    quiet = [Memory(id=f"q{n}", workspace_id="quiet", text=f"an apple {'and a pear ' * n}today", created_at=now,
                    memory_type="task" if n % 2 else "episode") for n in range(6)]
    store.add_many([(m, vector) for m in busy + quiet], Embedding(model_id="model", dim=4))
    rowid = {m.id: r for r, m in store.fetch(list(range(1, 400))).items()}

    found = store.lexical("quiet", match_expression("apple"), 10)
    assert [r for r, _ in found] == [rowid[f"q{n}"] for n in range(6)]  # shorter text, higher BM25
    tasks = store.lexical("quiet", match_expression("apple"), 10, Scope(types=("task",)))
    assert [r for r, _ in tasks] == [rowid[f"q{n}"] for n in (1, 3, 5)]
    top = store.lexical("busy", match_expression("apple pie"), 5)
    assert len(top) == 5 and {r for r, _ in top} <= {rowid[f"b{n}"] for n in range(300)}
    store.close()
