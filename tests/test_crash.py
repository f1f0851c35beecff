"""kill -9 a real `reme` server in the middle of a batch of writes, round after round (bench/crash.py).

After every kill the store opens, every acknowledged write is there with its exact text and a valid
checksum, acknowledged forgets are gone, the lexical index, vectors and cell keys agree with the rows,
and the next server recalls what was acknowledged before the kill. Fewer rounds than the bench's 50:
each round starts a server, whose model takes seconds to load on two cores.
"""

from __future__ import annotations

import shutil
import sqlite3
import sys
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest

from reme_mcp.store.base import Embedding, Memory
from reme_mcp.store.sqlite import SQLiteStore

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

import crash  # noqa: E402
from harness import check_store  # noqa: E402

pytestmark = pytest.mark.embedded_only  # kills writers of the SQLite file and checks the file raw


def test_fifteen_kills_during_writes_lose_nothing_acknowledged(tmp_path: Path) -> None:
    result = crash.run(tmp_path, rounds=15, seed=0)

    assert result.ok, "\n".join(result.problems)
    assert len(result.rounds) == 15
    acked = sum((r.acked for r in result.rounds), Counter())
    assert acked["remember"] > 15 and acked["forget"] > 0 and acked["train"] > 0
    assert sum(1 for r in result.rounds if r.inflight) >= 5  # the kills do land among the writes
    assert result.final_rows >= acked["remember"] - acked["forget"]


def test_the_store_check_catches_what_it_claims_to(tmp_path: Path) -> None:
    """The raw check is not vacuous: each kind of damage it looks for, made by hand, is reported."""
    made = tmp_path / "made.sqlite3"
    store = SQLiteStore(made)
    store.open("m")
    now = datetime.now(timezone.utc)
    store.add_many([(Memory(id=f"id{n}", workspace_id="w", text=f"tok{n} note number {n}", created_at=now),
                     np.ones(4, dtype=np.float32)) for n in range(3)], Embedding(model_id="m", dim=4))
    store.close()
    present = {("w", f"id{n}"): f"tok{n} note number {n}" for n in range(3)}
    tokens = {("w", f"id{n}"): f"tok{n}" for n in range(3)}
    assert check_store(made, present, [], tokens, ["w"]).problems == []

    damage = {
        "lost:": "DELETE FROM memories WHERE id = 'id1'",
        "FTS5 integrity-check": "INSERT INTO memories_fts(memories_fts, rowid, text, keywords) "
                                "SELECT 'delete', rowid, text, keywords FROM memories WHERE id = 'id0'",
        "checksum:": "UPDATE memories SET text = 'tok2 note number two', text_sha256 = text_sha256 WHERE id = 'id2'",
        "vector:": "UPDATE memories SET embedding = substr(embedding, 1, 8) WHERE id = 'id0'",
        "cells:": "INSERT INTO cell_keys VALUES (999, 'w', 'c', 1, 4, zeroblob(16))",
        "phantom:": "INSERT INTO memories(workspace_id, id, text, keywords, metadata, created_at, embedding_model, "
                    "embedding_dim, embedding, text_sha256) SELECT 'w', 'id9', text, keywords, metadata, created_at, "
                    "embedding_model, embedding_dim, embedding, text_sha256 FROM memories WHERE id = 'id0'",
    }
    for expected, sql in damage.items():
        copy = tmp_path / f"{expected.strip(':').replace(' ', '-')}.sqlite3"
        shutil.copyfile(made, copy)
        with sqlite3.connect(copy) as db:
            db.execute(sql)
        db.close()
        problems = check_store(copy, present, [], tokens, ["w"]).problems
        assert any(p.startswith(expected) for p in problems), (expected, problems)
    assert any(p.startswith("resurrected:") for p in check_store(made, {}, [("w", "id0")]).problems)
