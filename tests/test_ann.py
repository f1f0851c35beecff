"""Big workspaces: the HNSW index answers like an exact scan and stays true to the store.

The workspaces here pass `retrieval.ann_threshold` (lowered to 1,000) with vectors of the real
model: mixtures of two sentences' embeddings, so they lie where real memories do (random
vectors defeat every ANN index, and would test nothing a user sees).
"""

from __future__ import annotations

import logging
import os
import shutil
import sqlite3
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest

from reme_mcp import ReMeApp
from reme_mcp.config import load_config
from reme_mcp.models.embedding import create_embedder
from reme_mcp.retrieval import ann
from reme_mcp.retrieval.dense import KeySpace
from reme_mcp.store.base import Memory

pytestmark = [pytest.mark.anyio, pytest.mark.embedded_only]  # the in-process index; pgvector searches its own

N = 3_000
THRESHOLD = "retrieval.ann_threshold=1000"
SUBJECTS = ["Caroline", "Melanie", "the team", "my sister", "the landlord", "our neighbour", "the doctor", "Grandpa"]
ACTIONS = ["painted", "repaired", "sold", "photographed", "cooked", "planted", "borrowed", "wrote about"]
OBJECTS = [
    "a blue canoe", "the garden fence", "a lemon cake", "an old violin", "the kitchen sink", "a mountain bike",
    "twelve tulips", "a chess set", "the attic window", "a wool scarf", "the school bus", "a jar of honey",
]
PLACES = ["in Lisbon", "at the lake", "on Sunday", "after the storm", "for the fair", "last winter"]


@pytest.fixture(scope="module")
def corpus() -> tuple[list[str], np.ndarray]:
    """Sentences and their embeddings by the real model."""
    texts = [f"{s} {a} {o} {p}." for s in SUBJECTS for a in ACTIONS for o in OBJECTS for p in PLACES][::7]
    embedder = create_embedder(load_config().embedding_model.default)
    return texts, np.asarray(embedder.encode(texts), dtype=np.float32)


def fill(app_services, corpus, n: int = N, start: int = 0, memory_type: str = "episode", tags=()) -> list[str]:
    """Store `n` memories straight through the store's bulk path; returns their ids."""
    texts, vectors = corpus
    rng = np.random.default_rng(start)
    i, j = rng.integers(0, len(texts), n), rng.integers(0, len(texts), n)
    share = rng.uniform(0.6, 1.0, (n, 1)).astype(np.float32)
    mixed = share * vectors[i] + (1 - share) * vectors[j]
    mixed /= np.linalg.norm(mixed, axis=1, keepdims=True)
    now = datetime.now(timezone.utc)
    memories = [
        Memory(id=f"{memory_type}-{start + k}", workspace_id="default", text=f"{texts[i[k]]} (note {start + k})",
               created_at=now, memory_type=memory_type, tags=list(tags))
        for k in range(n)
    ]
    app_services.store.add_many(list(zip(memories, mixed)), app_services.embedder.embedding())
    return [m.id for m in memories]


async def ready_index(app: ReMeApp) -> ann.Ann:
    services = await app.services()
    services.dense.spaces("default")
    index = services.dense.ann("default")
    assert index is not None and index.wait(120), "the HNSW index was not built"
    return index


async def test_a_big_workspace_is_searched_through_the_index_and_agrees_with_exact(tmp_path: Path, corpus) -> None:
    async with ReMeApp(f"store_dir={tmp_path}", THRESHOLD) as app:
        services = await app.services()
        fill(services, corpus)
        index = await ready_index(app)
        plain, _ = services.dense.spaces("default")
        assert plain.ann is index and index.index.size == N
        exact = KeySpace.plain(plain.rowids, plain.matrix, plain.kinds)
        overlap = [
            len({r for r, _ in plain.search(q, 10)} & {r for r, _ in exact.search(q, 10)}) / 10
            for q in corpus[1][::11]
        ]
        assert np.mean(overlap) >= 0.97
        # and the user's recall, end to end
        text = corpus[0][42]
        found = await app.async_execute("recall", query=text, top_k=3)
    assert found.metadata["memories"][0]["text"].startswith(text)


async def test_remembered_forgotten_and_filtered_memories_are_honoured(tmp_path: Path, corpus) -> None:
    async with ReMeApp(f"store_dir={tmp_path}", THRESHOLD) as app:
        services = await app.services()
        fill(services, corpus)
        fill(services, corpus, n=200, start=N, memory_type="task", tags=["ops"])
        index = await ready_index(app)

        added = await app.async_execute("remember", text="The zebra ate my homework about quantum pasta.")
        found = await app.async_execute("recall", query="a zebra ate the quantum pasta homework", top_k=3)
        assert found.metadata["memories"][0]["id"] == added.metadata["memory"]["id"]
        assert index.index.size == N + 200 + 1  # added to the index, not only scanned

        query = corpus[0][7]
        top = (await app.async_execute("recall", query=query, top_k=5)).metadata["memories"]
        await app.async_execute("forget", memory_id=top[0]["id"])
        after = (await app.async_execute("recall", query=query, top_k=5)).metadata["memories"]
        assert top[0]["id"] not in [m["id"] for m in after]
        assert [m["id"] for m in after[:4]] == [m["id"] for m in top[1:5]]

        tasks = (await app.async_execute("recall", query=query, top_k=10, memory_type=["task"])).metadata["memories"]
        tagged = (await app.async_execute("recall", query=query, top_k=10, tags=["ops"])).metadata["memories"]
    assert len(tasks) == 10 and {m["memory_type"] for m in tasks} == {"task"}
    assert len(tagged) == 10 and all("ops" in m["tags"] for m in tagged)


async def test_the_index_is_saved_at_close_and_loaded_at_start(tmp_path: Path, corpus, caplog) -> None:
    caplog.set_level(logging.INFO, logger="reme_mcp.retrieval.ann")
    async with ReMeApp(f"store_dir={tmp_path}", THRESHOLD) as app:
        fill(await app.services(), corpus)
        await ready_index(app)
    saved = list((tmp_path / ann.DIRECTORY).glob("*.faiss"))
    assert len(saved) == 1
    # While no server runs, a tool with the index switched off writes and forgets.
    async with ReMeApp(f"store_dir={tmp_path}", "retrieval.ann_threshold=1000000") as other:
        fill(await other.services(), corpus, n=50, start=N)
        new = await other.async_execute("remember", text="The lighthouse keeper collects green bottles.")
        gone = (await other.async_execute("recall", query=corpus[0][3], top_k=1)).metadata["memories"][0]
        await other.async_execute("forget", memory_id=gone["id"])
    caplog.clear()
    async with ReMeApp(f"store_dir={tmp_path}", THRESHOLD) as app:
        index = await ready_index(app)
        assert "loaded" in caplog.text and "built" not in caplog.text
        assert index.index.size == N + 50 + 1
        found = await app.async_execute("recall", query="lighthouse keeper green bottles", top_k=1)
        assert found.metadata["memories"][0]["id"] == new.metadata["memory"]["id"]
        again = await app.async_execute("recall", query=corpus[0][3], top_k=10)
    assert gone["id"] not in [m["id"] for m in again.metadata["memories"]]


async def test_a_damaged_index_file_is_rebuilt(tmp_path: Path, corpus, caplog) -> None:
    async with ReMeApp(f"store_dir={tmp_path}", THRESHOLD) as app:
        fill(await app.services(), corpus)
        await ready_index(app)
    (path,) = (tmp_path / ann.DIRECTORY).glob("*.faiss")
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])  # a torn copy
    dead = path.with_name(f".tmp-{2**22 + 7}-1-{path.name}")  # a save cut short by a kill (no such pid)
    live = path.with_name(f".tmp-{os.getpid()}-1-{path.name}")  # a save under way in a live process
    dead.write_bytes(b"half"), live.write_bytes(b"half")
    caplog.set_level(logging.INFO, logger="reme_mcp.retrieval.ann")
    async with ReMeApp(f"store_dir={tmp_path}", THRESHOLD) as app:
        index = await ready_index(app)
        found = await app.async_execute("recall", query=corpus[0][42], top_k=1)
    assert "unreadable" in caplog.text and "built" in caplog.text and index.index.size == N
    assert not dead.exists() and live.exists()
    assert found.metadata["memories"][0]["text"].startswith(corpus[0][42])


async def test_an_older_copy_of_the_store_restored_under_a_newer_index_gets_a_new_index(
    tmp_path: Path, corpus, caplog
) -> None:
    store = tmp_path / "memory.sqlite3"
    async with ReMeApp(f"store_dir={tmp_path}", THRESHOLD) as app:
        fill(await app.services(), corpus)
        await ready_index(app)
    with sqlite3.connect(store) as source, sqlite3.connect(tmp_path / "older.sqlite3") as copy:
        source.backup(copy)
    async with ReMeApp(f"store_dir={tmp_path}", THRESHOLD) as app:
        await ready_index(app)
        fill(await app.services(), corpus, n=500, start=N)  # rowids the older copy will hand out again
        await app.async_execute("recall", query="anything", top_k=1)  # the index takes them in
    for suffix in ("-wal", "-shm"):
        Path(f"{store}{suffix}").unlink(missing_ok=True)
    shutil.move(tmp_path / "older.sqlite3", store)
    caplog.set_level(logging.INFO, logger="reme_mcp.retrieval.ann")
    async with ReMeApp(f"store_dir={tmp_path}", THRESHOLD) as app:
        index = await ready_index(app)
        assert "never issued" in caplog.text and index.index.size == N
        services = await app.services()
        fill(services, corpus, n=500, start=N + 1000)  # the same rowids as the lost 500, other vectors
        plain, _ = services.dense.spaces("default")
        exact = KeySpace.plain(plain.rowids, plain.matrix, plain.kinds)
        for query in corpus[1][::50]:
            assert [r for r, _ in plain.search(query, 5)] == [r for r, _ in exact.search(query, 5)]
    assert index.index.size == N + 500


async def test_an_index_whose_vectors_differ_from_the_store_is_rebuilt(tmp_path: Path, corpus, caplog) -> None:
    async with ReMeApp(f"store_dir={tmp_path}", THRESHOLD) as app:
        services = await app.services()
        fill(services, corpus)
        await ready_index(app)
        rowid = int(services.dense.spaces("default")[0].rowids[0])
    with sqlite3.connect(tmp_path / "memory.sqlite3") as db:  # as `reme check` re-embedding torn vectors does
        db.executemany("UPDATE memories SET embedding = ? WHERE rowid >= ?",
                       [(np.roll(corpus[1][0], 1).astype(np.float32).tobytes(), rowid)])
    caplog.set_level(logging.INFO, logger="reme_mcp.retrieval.ann")
    async with ReMeApp(f"store_dir={tmp_path}", THRESHOLD) as app:
        await ready_index(app)
    assert "differ from the store's" in caplog.text and "built" in caplog.text


async def test_the_index_is_rebuilt_when_it_outgrows_or_outlives_what_it_was_built_from(
    tmp_path: Path, corpus, caplog
) -> None:
    caplog.set_level(logging.INFO, logger="reme_mcp.retrieval.ann")
    async with ReMeApp(f"store_dir={tmp_path}", THRESHOLD) as app:
        services = await app.services()
        fill(services, corpus, n=1_500)
        first = (await ready_index(app)).index
        fill(services, corpus, n=5_000, start=1_500)  # past four times the size it was built with
        services.dense.spaces("default")
        index = await ready_index(app)
        assert "grew from 1500 to 6500" in caplog.text and index.index is not first and index.index.built == 6_500

        ids = [f"episode-{k}" for k in range(0, 6_500, 2)]  # half of them gone
        services.store.delete_ids("default", ids)
        plain, _ = services.dense.spaces("default")
        answered = plain.search(corpus[1][9], 10)  # the old index answers while the new one is built
        assert index.wait(120) and index.index.built == 3_250 and "are gone; rebuilding" in caplog.text
        exact = KeySpace.plain(plain.rowids, plain.matrix, plain.kinds)
    assert [r for r, _ in answered] == [r for r, _ in exact.search(corpus[1][9], 10)]
