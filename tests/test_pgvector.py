"""The PostgreSQL + pgvector store itself: several servers on one database, its indexes, its refusals.

Run only in the pgvector pass (REME_TEST_BACKEND=pgvector with the throwaway server of scripts/postgres.sh);
every other test file runs against pgvector there too. Each test has a fresh database (conftest).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import numpy as np
import pytest
from conftest import REME, fresh_database, mcp_stdio, reme_server, server_env, store_rows
from openai_stub import OpenAIStub

from reme_mcp import ConfigError, ReMeApp, StoreMismatch
from reme_mcp.errors import StoreUnavailable
from reme_mcp.retrieval.lexical import cjk_pairs, match_expression
from reme_mcp.store.base import Embedding, Memory, content_id
from reme_mcp.store.pgvector import PgVectorStore, _dec, match_terms
from reme_mcp.store.sqlite import SQLiteStore

pytestmark = [pytest.mark.pgvector_only, pytest.mark.anyio]

PASSWORD = urlsplit(os.environ.get("REME_TEST_PGVECTOR_URL", "")).password or "no-password"


def url() -> str:
    return os.environ["FLOW_PGVECTOR_URL"]


def sql(query: str) -> list[tuple]:
    """Rows of a query on the test's database."""
    return store_rows(Path(), query)


def reme(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([REME, *args], capture_output=True, text=True, env=env or server_env(), timeout=300)


def memory(n: int, workspace: str = "w", memory_type: str = "episode") -> Memory:
    text = f"note {n} of {workspace}"
    return Memory(id=content_id(text, []), workspace_id=workspace, text=text, created_at=datetime.now(timezone.utc),
                  memory_type=memory_type)


def unit(rng: np.random.Generator, dim: int) -> np.ndarray:
    vector = rng.normal(size=dim).astype(np.float32)
    return vector / np.linalg.norm(vector)


# -- several servers, several machines ---------------------------------------------------------------------------


def test_two_http_servers_on_one_database_see_each_others_writes_and_forgets(tmp_path: Path) -> None:
    # Two store_dirs: two machines, sharing nothing but the database.
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with reme_server(tmp_path / "a", "backend=http") as a, reme_server(tmp_path / "b", "backend=http") as b:
        with httpx.Client(base_url=f"http://127.0.0.1:{a}", timeout=60) as one, \
                httpx.Client(base_url=f"http://127.0.0.1:{b}", timeout=60) as two:
            stored = one.post("/remember", json={"text": "The on-call phone is in the blue drawer.",
                                                 "workspace_id": "team"}).json()
            memory_id = stored["metadata"]["memory"]["id"]
            found = two.post("/recall", json={"query": "where is the on-call phone?", "workspace_id": "team"}).json()
            assert found["metadata"]["memories"][0]["id"] == memory_id

            # Both write at once, the same fact among others: every write lands once, the shared one once.
            def write(client: httpx.Client, name: str) -> None:
                for n in range(15):
                    assert client.post("/remember", json={"text": f"{name} logged incident {n}",
                                                          "workspace_id": "team"}).status_code == 200
                    assert client.post("/remember", json={"text": "Both servers heard this.",
                                                          "workspace_id": "team"}).status_code == 200

            threads = [threading.Thread(target=write, args=(c, name)) for c, name in ((one, "alpha"), (two, "beta"))]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            texts = [r[0] for r in store_rows(tmp_path, "SELECT text FROM memories WHERE workspace_id = 'team'")]
            assert len(texts) == 1 + 30 + 1 and texts.count("Both servers heard this.") == 1

            assert two.post("/forget", json={"memory_id": memory_id, "workspace_id": "team"}).json()["success"]
            after = one.post("/recall", json={"query": "on-call phone drawer", "workspace_id": "team"}).json()
            assert memory_id not in [m["id"] for m in after["metadata"]["memories"]]
            listed = one.post("/vector_store", json={"action": "list"}).json()["metadata"]["workspaces"]
            assert {"workspace_id": "team", "memories": 31} in listed


OPENER = textwrap.dedent(
    """
    import sys, time
    from reme_mcp.store.pgvector import PgVectorStore

    url, start = sys.argv[1], float(sys.argv[2])
    while time.time() < start:
        pass
    store = PgVectorStore(url)
    store.open("test-model")
    store.close()
    """
)


def test_processes_creating_one_store_at_the_same_moment_all_open_it() -> None:
    for _ in range(4):
        with fresh_database() as fresh:
            start = str(time.time() + 1.5)
            procs = [subprocess.Popen([sys.executable, "-c", OPENER, fresh, start], stderr=subprocess.PIPE)
                     for _ in range(3)]
            for proc in procs:
                _, err = proc.communicate(timeout=120)
                assert proc.returncode == 0, err.decode()[-2000:]


async def test_a_recall_does_not_queue_behind_another_transaction_holding_the_rows(tmp_path: Path) -> None:
    import psycopg

    async with ReMeApp(store_dir=str(tmp_path)) as app:
        await app.async_execute("remember", text="The release train leaves on Thursdays.")
        await app.async_execute("recall", query="warm up")
        other = psycopg.connect(url())  # a long write elsewhere: the workspace's lock and every row
        other.execute("SELECT pg_advisory_xact_lock(%s, hashtext('default'))", (0x52654D65 + 1,))
        other.execute("SELECT * FROM memories FOR UPDATE")
        try:
            started = time.monotonic()
            found = await app.async_execute("recall", query="when does the release train leave?", top_k=1)
            waited = time.monotonic() - started
        finally:
            other.rollback()
            other.close()
        await app.async_execute("recall", query="release train", top_k=1)
    assert found.metadata["memories"][0]["text"] == "The release train leaves on Thursdays."
    assert waited < 5  # the recall count waited for the next recall, not 60 s for the lock
    assert sql("SELECT recall_count FROM memories") == [(3,)]  # none was lost


async def test_a_chinese_memory_whose_write_was_under_way_during_a_recall_is_keyed_at_the_next_one(
    tmp_path: Path,
) -> None:
    late = "我养了一只橘色的小猫，叫南瓜，它整天睡在窗台上。"  # an orange kitten, Pumpkin, sleeps on the windowsill
    async with ReMeApp(store_dir=str(tmp_path)) as app:
        await app.async_execute("remember", text="The release train leaves on Thursdays.")
        services = await app.services()
        embedding, vector = services.embedder.embedding(), services.embedder.encode([late])[0]
        writer = PgVectorStore(url())  # another server: it has taken the memory's rowid, and not yet committed
        writer.open(embedding.model_id)
        taken, commit = threading.Event(), threading.Event()

        def write() -> None:
            with writer._write("default") as cur:
                writer._insert(cur, Memory(id=content_id(late, []), workspace_id="default", text=late,
                                           created_at=datetime.now(timezone.utc)), vector, embedding)
                writer._touch(cur, "default", 1)
                taken.set()
                commit.wait(timeout=60)

        thread = threading.Thread(target=write)
        thread.start()
        try:
            assert taken.wait(timeout=60)
            await app.async_execute("recall", query="release train")  # looks for new memories to key meanwhile
        finally:
            commit.set()
            thread.join()
            writer.close()
        found = await app.async_execute("recall", query="Where does my kitten sleep?", top_k=1)
    assert found.metadata["memories"][0]["text"] == late
    assert sql("SELECT count(*) FROM cell_keys") == [(1,)]  # keyed, though its rowid was taken before that recall


# -- retrieval ---------------------------------------------------------------------------------------------------


async def test_hybrid_retrieval_finds_an_exact_rare_token_and_a_paraphrase(tmp_path: Path) -> None:
    texts = [f"Build token for service {n} is stored in the team vault." for n in range(30)]
    texts += ["The incident ticket INC-40417 was about the payment timeout.",
              "Grandma's apple pie needs cinnamon and a little lemon zest.",
              "Der Schlüssel für das Café liegt unter der Fußmatte."]
    async with ReMeApp(store_dir=str(tmp_path)) as app:
        for text in texts:
            await app.async_execute("remember", text=text)
        rare = await app.async_execute("recall", query="INC-40417", top_k=1)
        assert rare.metadata["memories"][0]["text"] == texts[30]
        meaning = await app.async_execute("recall", query="what goes into the dessert my grandmother bakes?", top_k=1)
        assert meaning.metadata["memories"][0]["text"] == texts[31]
        # Each ranking on its own: the lexical one folds case and diacritics (schlussel, cafe) as FTS5 does.
        for query, expected in (("INC-40417", 30), ("schlussel cafe", 32), ("SCHLÜSSEL", 32), ("vaults", 0)):
            async with ReMeApp(store_dir=str(tmp_path), retrieval__mode="lexical") as lexical:
                found = await lexical.async_execute("recall", query=query, top_k=1)
            assert found.metadata["memories"][0]["text"].split()[:2] == texts[expected].split()[:2], query
        async with ReMeApp(store_dir=str(tmp_path), retrieval__mode="dense") as dense:
            found = await dense.async_execute("recall", query="baking with apples and spice", top_k=1)
        assert found.metadata["memories"][0]["text"] == texts[31]


def test_lexical_ranks_a_rare_word_above_a_common_one() -> None:
    store = PgVectorStore(url())
    store.open("m")
    try:
        rows = [(memory(n), np.ones(4, dtype=np.float32)) for n in range(20)]
        rare = Memory(id="rare", workspace_id="w", text="note about the zeppelin", created_at=datetime.now(timezone.utc))
        store.add_many([*rows, (rare, np.ones(4, dtype=np.float32))], Embedding(model_id="m", dim=4))
        ranked = store.lexical("w", '"note" OR "zeppelin"', 5)
        assert store.fetch([ranked[0][0]])[ranked[0][0]].id == "rare"
        assert len(store.lexical("w", '"note"', 100)) == 21
        assert store.lexical("w", '"the" OR "a"', 10) == []  # stopwords only: nothing, no error
        assert store.lexical("w", "\"it's\" OR \"o'brien\" OR \"(\" OR \"&|!\"", 10) == []  # tsquery syntax is data
    finally:
        store.close()


CJK = ["我们昨天去吃了北京烤鸭，味道很好。", "東京タワーの展望台は夜がきれいです。", "새 사무실은 강남에 있어요.",
       "會議改到下週三。", "iPhone手机的电池坏了", "の"]


def test_cjk_pairs_are_kept_as_words_by_the_english_configuration_on_both_sides() -> None:
    store = PgVectorStore(url())
    store.open("m")
    try:
        pairs = list(dict.fromkeys(p for text in CJK for p in cjk_pairs(text)))
        with store._read() as cur:
            # Each pair is one lexeme, unstemmed, and one non-empty query (the lexical query drops empty ones).
            parsed = cur.execute(
                "SELECT to_tsvector('english', t)::text, phraseto_tsquery('english', t)::text "
                "FROM unnest(%s::text[]) WITH ORDINALITY AS u(t, i) ORDER BY i", (pairs,),
            ).fetchall()
        assert parsed == [(f"'{p}':1", f"'{p}'") for p in pairs]
        assert match_terms(match_expression("北京烤鸭好吃吗？")) == ["北京", "京烤", "烤鸭", "鸭好", "好吃", "吃吗"]
        assert match_terms(match_expression("iPhone手机")) == ["手机", "iphone"]

        embedding = Embedding(model_id="m", dim=4)
        now = datetime.now(timezone.utc)
        store.add_many([(Memory(id=f"c{n}", workspace_id="w", text=text, created_at=now), np.ones(4, dtype=np.float32))
                        for n, text in enumerate(CJK)], embedding)
        lexemes = dict(sql("SELECT id, lexemes::text FROM memories"))
        for n, text in enumerate(CJK):
            assert all(f"'{p}':" in lexemes[f"c{n}"] for p in cjk_pairs(text)), (text, lexemes[f"c{n}"])
        found = store.lexical("w", match_expression("北京烤鸭好吃吗？"), 10)
        assert [store.fetch([r])[r].id for r, _ in found] == ["c0"]
        assert [store.fetch([r])[r].id for r, _ in store.lexical("w", match_expression("夜景がきれい"), 10)] == ["c1"]
        assert [store.fetch([r])[r].id for r, _ in store.lexical("w", match_expression("手机电池"), 10)] == ["c4"]
        assert store.verify() == ([], [])
    finally:
        store.close()


def test_threads_give_the_same_search_terms_as_the_embedded_store_through_every_write(tmp_path: Path) -> None:
    """Every write that inserts or deletes memories of a thread, on both backends: the same search terms."""
    embedding, vector, t0 = Embedding(model_id="m", dim=4), np.ones(4, dtype=np.float32), datetime.now(timezone.utc)

    def at(seconds: float, memory_id: str, text: str, thread: str | None = "t", workspace: str = "w",
           **more: object) -> Memory:
        return Memory(id=memory_id, workspace_id=workspace, text=text, created_at=t0 + timedelta(seconds=seconds),
                      thread=thread, **more)

    a, b, c, d = (at(0, "a", "Where did you park the van?"), at(1, "b", "Behind the bakery on Elm Street."),
                  at(2, "c", "The one with the blue awning?"), at(3, "d", "Yes, next to the 北京饭店 sign."))
    e, f = at(4, "e", "Got it\x00 thanks."), at(5, "f", "I will pick it up at noon.")

    def purge(store: SQLiteStore | PgVectorStore) -> None:
        store.add(at(6, "g", "It expires.", expires_at=t0 + timedelta(seconds=7)), vector, embedding)
        store.add(at(8, "h", "After the expired one."), vector, embedding)
        assert store.purge_expired("w", t0.timestamp() + 7.5) == 1

    steps = [
        ("add", lambda s: [s.add(m, vector, embedding) for m in (a, c, d)]),
        ("insert in the middle", lambda s: s.add(b, vector, embedding)),
        ("add_many", lambda s: s.add_many([(at(9, "x", "未分类的笔记", None), vector), (e, vector),
                                            (at(0.5, "z", "Another thread", "t", "v"), vector), (f, vector),
                                            (at(9, "y", "no thread either", None), vector)], embedding)),
        ("forget", lambda s: s.forget("w", ["c"], [])),
        ("replace", lambda s: s.replace(at(1, "b", "Behind the post office."), vector, embedding)),
        ("merge", lambda s: s.merge(at(3, "d", "Next to the 北京饭店 sign; got it."), vector, embedding,
                                    [s.get("w", "d"), s.get("w", "e")])),
        ("set_status", lambda s: s.set_status("w", "f", "superseded", {})),
        ("purge_expired", purge),
        ("delete_ids", lambda s: s.delete_ids("w", ["a"])),
    ]
    embedded = SQLiteStore(tmp_path / "memory.sqlite3")
    shared = PgVectorStore(url())
    embedded.open("m")
    shared.open("m")
    try:
        for name, step in steps:
            step(embedded)
            step(shared)
            want = embedded.db.execute(
                "SELECT workspace_id, id, thread, search_terms FROM memories ORDER BY workspace_id, id").fetchall()
            got = [(w, i, t, _dec(terms)) for w, i, t, terms in
                   sql("SELECT workspace_id, id, thread, search_terms FROM memories ORDER BY workspace_id, id")]
            assert got == want, name
            assert shared.verify() == ([], []), name  # every tsvector is made of text, keywords and search terms
        assert dict((i, t) for _, i, t, _ in got) == {"b": "t", "d": "t", "f": "t", "h": "t", "x": None, "y": None,
                                                       "z": "t"}
        assert {m.id: m.thread for m in shared.list_memories("w", 10)} == {m.id: m.thread
                                                                           for m in embedded.list_memories("w", 10)}
        lexemes = dict(sql("SELECT id, lexemes::text FROM memories"))
        assert "'bakeri'" not in lexemes["d"] and "'post'" in lexemes["d"]  # the replaced text's words left it
        assert "'北京'" in lexemes["h"] and "'饭店'" in lexemes["h"]  # the merged memory before it, with its pairs
        assert "'van'" not in json.dumps(lexemes)  # the deleted first memory's words are nowhere
    finally:
        embedded.close()
        shared.close()


def test_the_hnsw_index_answers_a_recall_sized_query_and_filters_keep_it_filling_the_limit() -> None:
    rng = np.random.default_rng(0)
    store = PgVectorStore(url())
    store.open("m")
    try:
        items = [(memory(n, memory_type="task" if n % 10 == 0 else "episode"), unit(rng, 384)) for n in range(6000)]
        store.add_many(items, Embedding(model_id="m", dim=384))
        store.add_many([(memory(n, "small"), unit(rng, 384)) for n in range(5)], Embedding(model_id="m", dim=384))
        with store._read() as cur:
            cur.execute("ANALYZE memories")
        space = store.vector_space("w")
        query = unit(rng, 384)
        plan = space.explain(query, 100)
        assert "Index Scan using memories_embedding" in plan, plan
        # A filter the index cannot apply (one memory in ten is a task): it keeps scanning until 100 pass.
        tasks = space.search(query, 100, ["task"])
        assert len(tasks) == 100
        fetched = store.fetch([r for r, _ in tasks])
        assert {m.memory_type for m in fetched.values()} == {"task"}
        assert [s for _, s in tasks] == sorted((s for _, s in tasks), reverse=True)
        # A few allowed rowids, or a small workspace: answered exactly.
        allowed = np.array(sorted(r for r, _ in tasks[:7]), dtype=np.int64)
        assert sorted(r for r, _ in space.search(query, 100, None, allowed)) == allowed.tolist()
        assert len(store.vector_space("small").search(query, 100)) == 5
        exact = max(store.vector_space("small").similarities(query, store.vector_space("small").rowids.tolist()).items(),
                    key=lambda item: item[1])
        assert store.vector_space("small").search(query, 1)[0][0] == exact[0]
    finally:
        store.close()


def test_rowids_are_never_reused_and_the_fingerprint_follows_every_change() -> None:
    store = PgVectorStore(url())
    store.open("m")
    try:
        embedding = Embedding(model_id="m", dim=4)
        seen = [store.fingerprint("w")]
        store.add(memory(1), np.ones(4, dtype=np.float32), embedding)
        seen.append(store.fingerprint("w"))
        first = store.last_rowid()
        store.forget("w", [memory(1).id], [])
        seen.append(store.fingerprint("w"))
        store.add(memory(1), np.ones(4, dtype=np.float32), embedding)
        seen.append(store.fingerprint("w"))
        assert store.last_rowid() > first and store.vector_space("w").rowids.tolist() == [store.last_rowid()]
        store.put_cell_keys("w", [(store.last_rowid(), np.ones((2, 4), dtype=np.float32))], embedding)
        seen.append(store.fingerprint("w"))
        store.put_cell_model("w", b"state", True, "{}")
        seen.append(store.fingerprint("w"))
        assert len(set(seen)) == len(seen)
        assert store.fingerprint("w")[0] == 1  # the first number is the workspace's memory count
    finally:
        store.close()


# -- refusals and messages ----------------------------------------------------------------------------------------


def test_a_store_written_by_another_embedding_model_is_refused() -> None:
    store = PgVectorStore(url())
    store.open("model-a")
    store.add(memory(1), np.ones(4, dtype=np.float32), Embedding(model_id="model-a", dim=4))
    with pytest.raises(StoreMismatch, match="Run `reme reembed`"):
        store.add(memory(2), np.ones(8, dtype=np.float32), Embedding(model_id="model-b", dim=8))
    store.close()
    other = PgVectorStore(url())
    with pytest.raises(StoreMismatch, match=r"'model-a' \(4-d\), but 'model-b' is configured.*need re-embedding: w \(1\)"):
        other.open("model-b")


async def test_a_wrong_embedding_model_is_refused_by_the_app_and_reembed_moves_the_store(tmp_path: Path) -> None:
    with OpenAIStub() as stub:
        remote = {"store_dir": str(tmp_path), "embedding_model__default__backend": "openai_compatible",
                  "embedding_model__default__model_name": "text-embed-x",
                  "embedding_model__default__base_url": stub.url, "embedding_model__default__api_key": "k"}
        async with ReMeApp(**remote) as app:
            await app.async_execute("remember", text="The bike lock code is 4-1-7.")
    async with ReMeApp(store_dir=str(tmp_path)) as app:
        with pytest.raises(StoreMismatch, match=r"need re-embedding: default \(1\)"):
            await app.async_execute("recall", query="bike lock")
    assert ReMeApp(store_dir=str(tmp_path)).reembed() == 1
    async with ReMeApp(store_dir=str(tmp_path)) as app:
        found = await app.async_execute("recall", query="what is the code of the bike lock?", top_k=1)
    assert found.metadata["memories"][0]["text"] == "The bike lock code is 4-1-7."
    assert sql("SELECT atttypmod FROM pg_attribute WHERE attrelid = 'memories'::regclass "
               "AND attname = 'embedding'") == [(384,)]


async def test_missing_url_encryption_key_or_driver_give_clear_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = url()
    monkeypatch.delenv("FLOW_PGVECTOR_URL")
    with pytest.raises(ConfigError, match=r"vector_store.default.url=postgresql://.*FLOW_PGVECTOR_URL"):
        ReMeApp(store_dir=str(tmp_path))
    cli = reme("recall", "anything", f"store_dir={tmp_path}")
    assert cli.returncode == 1 and "FLOW_PGVECTOR_URL" in cli.stderr and "Traceback" not in cli.stderr
    server = reme(f"store_dir={tmp_path}", "backend=http")  # refused before serving
    assert server.returncode == 2 and "FLOW_PGVECTOR_URL" in server.stderr and "Traceback" not in server.stderr

    monkeypatch.setenv("FLOW_PGVECTOR_URL", database)
    with pytest.raises(ConfigError, match="database server's job"):
        ReMeApp(store_dir=str(tmp_path), privacy__encryption_key="correct horse")

    without_driver = textwrap.dedent(
        """
        import sys
        sys.modules["psycopg"] = None  # as if `pip install 'reme-mcp[pgvector]'` had not been run
        from reme_mcp import ReMeApp, ConfigError

        try:
            ReMeApp(store_dir=sys.argv[1])
        except ConfigError as exc:
            print(exc)
        """
    )
    run = subprocess.run([sys.executable, "-c", without_driver, str(tmp_path)], capture_output=True, text=True, env=server_env(),
                         timeout=300)
    assert "pip install 'reme-mcp[pgvector]'" in run.stdout, run.stderr[-2000:]


async def test_the_password_never_appears_in_logs_or_errors(tmp_path: Path) -> None:
    assert PASSWORD in url()
    command = reme("remember", "A note written with a debug log.", "log_level=DEBUG", f"store_dir={tmp_path}")
    assert command.returncode == 0 and command.stdout.startswith("Remembered"), command.stderr[-2000:]
    with reme_server(tmp_path, "backend=http", "log_level=DEBUG") as port:
        httpx.post(f"http://127.0.0.1:{port}/remember", json={"text": "Logged at DEBUG."}, timeout=60)
    logs = command.stderr + "".join(p.read_text() for p in tmp_path.glob("server-*.log"))
    database = urlsplit(url()).path.lstrip("/")
    assert f"store open at postgresql://postgres@127.0.0.1:{urlsplit(url()).port}/{database}" in logs
    assert PASSWORD not in logs

    wrong = urlsplit(url())._replace(netloc=f"postgres:Wr0ng-S3cret@127.0.0.1:{urlsplit(url()).port}").geturl()
    closed = urlsplit(url())._replace(netloc="postgres:Cl0sed-S3cret@127.0.0.1:1").geturl()
    for bad, secret in ((wrong, "Wr0ng-S3cret"), (closed, "Cl0sed-S3cret"), ("postgresql://u:Br0ken@[::", "Br0ken")):
        env = {**server_env(), "FLOW_PGVECTOR_URL": bad}
        failed = reme("recall", "anything", "log_level=DEBUG", f"store_dir={tmp_path}", env=env)
        assert failed.returncode == 1 and "Traceback" not in failed.stderr, failed.stderr[-2000:]
        assert secret not in failed.stderr and secret not in failed.stdout, failed.stderr
        assert "postgresql://" in failed.stderr  # it says where it tried
        with pytest.raises((StoreUnavailable, ConfigError)) as raised:
            async with ReMeApp(store_dir=str(tmp_path), vector_store__default__url=bad) as app:
                await app.async_execute("recall", query="anything")  # the first call connects
        assert secret not in str(raised.value)


async def test_an_unreachable_database_does_not_stop_the_mcp_handshake(tmp_path: Path) -> None:
    closed = urlsplit(url())._replace(netloc="postgres:Cl0sed-S3cret@127.0.0.1:1").geturl()
    async with mcp_stdio(tmp_path, f"vector_store.default.url={closed}") as session:
        assert {t.name for t in (await session.list_tools()).tools} >= {"remember", "recall"}
        failed = await session.call_tool("recall", {"query": "anything"})
    assert failed.is_error and "Cannot connect to PostgreSQL at postgresql://postgres@127.0.0.1:1/" in \
        failed.content[0].text
    assert "Cl0sed-S3cret" not in failed.content[0].text


def test_backup_and_encrypt_point_to_the_servers_tools_and_check_checks_what_it_can(tmp_path: Path) -> None:
    assert reme("remember", "The vault is in Zurich.", f"store_dir={tmp_path}").returncode == 0
    backup = reme("backup", str(tmp_path / "copy"), f"store_dir={tmp_path}")
    assert backup.returncode == 1 and "pg_dump" in backup.stderr and not (tmp_path / "copy").exists()
    encrypt = reme("encrypt", f"store_dir={tmp_path}", env={**server_env(), "REME_ENCRYPTION_KEY": "k" * 64})
    assert encrypt.returncode == 1 and "database server's job" in encrypt.stderr

    assert "nothing to repair" in reme("check", f"store_dir={tmp_path}").stdout
    import psycopg

    with psycopg.connect(url(), autocommit=True) as conn:  # damage made behind the store's back
        conn.execute("UPDATE memories SET lexemes = ''::tsvector")
        conn.execute("DROP INDEX memories_embedding")
    checked = reme("check", f"store_dir={tmp_path}")
    assert checked.returncode == 0, checked.stderr
    assert "lexical index of 1 memories" in checked.stdout and "HNSW vector index was missing" in checked.stdout
    assert "nothing to repair" in reme("check", f"store_dir={tmp_path}").stdout
    assert "Zurich" in reme("recall", "zurich", f"store_dir={tmp_path}", "retrieval.mode=lexical").stdout

    with psycopg.connect(url(), autocommit=True) as conn:
        conn.execute("UPDATE memories SET text = 'The vault is in Geneva.'")
    tampered = reme("check", f"store_dir={tmp_path}")
    assert tampered.returncode == 1 and "fails its checksum" in tampered.stderr


async def test_forget_vacuums_the_text_out_of_every_index(tmp_path: Path) -> None:
    async with ReMeApp(store_dir=str(tmp_path)) as app:
        stored = await app.async_execute("remember", text="Zbigniew Kowalczyk fixed the boiler.", keywords="boiler")
        await app.async_execute("remember", text="The boiler is a Vaillant ecoTEC.")
        done = await app.async_execute("forget", memory_id=stored.metadata["memory"]["id"])
        assert done.metadata["wiped"]
        services = await app.services()
        assert services.store.lexical("default", '"kowalczyk"', 10) == []
    assert sql("SELECT last_vacuum IS NOT NULL FROM pg_stat_user_tables WHERE relname = 'memories'") == [(True,)]
    assert sql("SELECT count(*) FROM memories WHERE text LIKE '%Kowalczyk%'") == [(0,)]
    assert "kowalczyk" not in json.dumps(sql("SELECT lexemes::text FROM memories"))
