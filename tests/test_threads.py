"""Threads and search terms: a memory is also found by the words of the memories before it in its thread, and
Chinese or Japanese text by its character pairs (reme_mcp/retrieval/lexical.py). Both store backends, through
the public API: the embedded pass on SQLite (FTS5), the pgvector pass on PostgreSQL (tsvector)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import PGVECTOR, lexical_texts, store_db, store_rows

from reme_mcp import ReMeApp
from reme_mcp.retrieval import threads
from reme_mcp.store.pgvector import SCHEMA_VERSION as PG_SCHEMA
from reme_mcp.store.sqlite import SCHEMA_VERSION as SQLITE_SCHEMA

pytestmark = pytest.mark.anyio


async def test_a_reply_is_found_by_the_words_of_the_question_before_it(tmp_path: Path) -> None:
    async with ReMeApp(store_dir=str(tmp_path)) as app:
        await app.async_execute("remember", text="Did you ever get to see the Louvre when you were in Paris?",
                                thread="chat-1")
        reply = await app.async_execute("remember", text="Yes, last Tuesday, with my sister.", thread="chat-1")
        await app.async_execute("remember", text="Yes, last Tuesday, with my sister.")  # no thread: its own words only
        await app.async_execute("remember", text="The dentist appointment moved to Friday.", thread="chat-2")
        assert reply.metadata["memory"]["thread"] == "chat-1"
        found = await app.async_execute("recall", query="when did I see the Louvre?", top_k=5)
    hits = {(m["text"], m["thread"]) for m in found.metadata["memories"]}
    assert ("Yes, last Tuesday, with my sister.", "chat-1") in hits

    lexical = await lexical_texts(tmp_path, "louvre")
    assert sorted(lexical) == ["Did you ever get to see the Louvre when you were in Paris?",
                               "Yes, last Tuesday, with my sister."]  # the threadless copy is not among them
    assert await lexical_texts(tmp_path, "dentist") == ["The dentist appointment moved to Friday."]  # other thread


MUSEUM = "I finally made it to the museum on Saturday."
OTHERS = ("A Mona Lisa postcard is stuck on the fridge.", "On Saturday we cleaned out the garage.",
          "The museum cafe sells good coffee.", "My sister saw the Mona Lisa in 2019.",
          "We might visit the science museum next month.")
MONA_LISA = "Did I see the Mona Lisa at the museum?"


async def remember_the_museum_visit(app: ReMeApp, reply_tags: list[str] | None = None) -> dict:
    await app.async_execute("remember", text=MUSEUM, thread="weekend")
    reply = await app.async_execute("remember", text="Did you see the Mona Lisa there?", thread="weekend",
                                    tags=reply_tags or [])
    for text in OTHERS:
        await app.async_execute("remember", text=text)
    return reply.metadata["memory"]


async def top(app: ReMeApp, k: int = 3, **filters: object) -> list[str]:
    found = await app.async_execute("recall", query=MONA_LISA, top_k=k, **filters)
    return [m["text"] for m in found.metadata["memories"]]


async def test_a_memory_is_found_by_the_words_of_its_reply(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(threads, "THREAD_SHARE", 0.0)  # the reply's credit alone
    async with ReMeApp(store_dir=str(tmp_path)) as app:
        await remember_the_museum_visit(app)
        assert MUSEUM in await top(app)  # the reply names the Mona Lisa; the memory itself does not
        monkeypatch.setattr(threads, "REPLY_CREDIT", 0.0)
        assert MUSEUM not in await top(app)  # by its own words it ranks below three others


async def test_a_forgotten_or_filtered_out_reply_lends_nothing(tmp_path: Path) -> None:
    async with ReMeApp(store_dir=str(tmp_path)) as app:
        reply = await remember_the_museum_visit(app, reply_tags=["paris"])
        assert MUSEUM not in await top(app, tags=["paris"])  # outside the filter, whoever lends to it
        postcard = OTHERS[0]
        ranked = await top(app, k=10)
        assert ranked.index(MUSEUM) < ranked.index(postcard)  # lifted by its reply
        await app.async_execute("forget", memory_id=reply["id"])
        ranked = await top(app, k=10)
        assert ranked.index(MUSEUM) > ranked.index(postcard)


PACKING = "Packed sunscreen and two swimsuits."
TRIP = (PACKING, "Booked our Lisbon flights for May.", "Found a cheap hotel in Lisbon near the river.")
ELSEWHERE = ("Packed a lunch for the school trip.", "The garage sale is on Sunday.")


async def ranks(app: ReMeApp, texts: tuple[str, ...], **filters: object) -> list[int]:
    found = await app.async_execute("recall", query="What did I pack for the Lisbon trip?", top_k=5, **filters)
    ranked = [m["text"] for m in found.metadata["memories"]]
    return [ranked.index(text) for text in texts]


async def test_a_match_among_matches_in_its_thread_ranks_above_one_alone_in_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(threads, "REPLY_CREDIT", 0.0)  # the thread's share alone
    async with ReMeApp(store_dir=str(tmp_path)) as app:
        for text in TRIP:
            await app.async_execute("remember", text=text, thread="lisbon")
        for text in ELSEWHERE:
            await app.async_execute("remember", text=text, thread="family")
        packing, lunch = await ranks(app, (PACKING, ELSEWHERE[0]))
        assert packing < lunch  # its thread is about Lisbon
        in_its_thread = await ranks(app, TRIP, thread="lisbon")
        monkeypatch.setattr(threads, "THREAD_SHARE", 0.0)
        packing, lunch = await ranks(app, (PACKING, ELSEWHERE[0]))
        assert packing > lunch  # by its own words and meaning, the lunch is the closer match
        assert await ranks(app, TRIP, thread="lisbon") == in_its_thread  # one thread: nothing to favour


async def test_memories_without_threads_rank_as_without_the_share(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with ReMeApp(store_dir=str(tmp_path)) as app:
        for text in TRIP + ELSEWHERE:
            await app.async_execute("remember", text=text)
        ranked = await ranks(app, TRIP + ELSEWHERE[:1])
        monkeypatch.setattr(threads, "THREAD_SHARE", 0.0)
        assert await ranks(app, TRIP + ELSEWHERE[:1]) == ranked


class Threads:
    """A store that answers the one question favour_threads asks: which thread each memory is in."""

    def __init__(self, thread_of: dict[int, str]) -> None:
        self.thread_of = thread_of

    def threads(self, workspace_id: str, rowids: list[int]) -> dict[int, str]:
        return {r: self.thread_of[r] for r in rowids if r in self.thread_of}


def test_the_share_comes_from_other_memories_of_the_thread_and_one_thread_is_left_as_it_was() -> None:
    fused = [(1, 0.30), (2, 0.29), (3, 0.10)]
    mixed = threads.favour_threads(Threads({1: "a", 2: "b", 3: "b"}), "w", fused)  # type: ignore[arg-type]
    assert [r for r, _ in mixed] == [2, 1, 3]  # 2 is lifted by 3, its thread's other match; 1 is alone
    assert dict(mixed)[1] == 0.30
    for one in ({1: "a", 2: "a", 3: "a"}, {}):  # one thread, or none: left as it was, not merely in the same order
        assert threads.favour_threads(Threads(one), "w", fused) is fused  # type: ignore[arg-type]


async def test_only_the_two_memories_before_one_are_its_context(tmp_path: Path) -> None:
    async with ReMeApp(store_dir=str(tmp_path)) as app:
        for text in ("We adopted a parrot named Kiwi.", "It talks all day.", "Mostly about crackers.",
                     "And it wakes us at six."):
            await app.async_execute("remember", text=text, thread="pets")
    assert sorted(await lexical_texts(tmp_path, "parrot")) == [
        "It talks all day.", "Mostly about crackers.", "We adopted a parrot named Kiwi."]


async def test_forgetting_a_memory_removes_its_words_from_its_followers(tmp_path: Path) -> None:
    async with ReMeApp(store_dir=str(tmp_path)) as app:
        secret = await app.async_execute("remember", text="The safe code is hidden under the Quetzalcoatl statue.",
                                         thread="s")
        await app.async_execute("remember", text="Got it, thanks.", thread="s")
        middle = await app.async_execute("remember", text="Should I write the Xylophonist down?", thread="s")
        await app.async_execute("remember", text="No, keep it in your head.", thread="s")
        await app.async_execute("remember", text="Understood.", thread="s")
    assert len(await lexical_texts(tmp_path, "quetzalcoatl")) == 3  # itself and the two after it

    async with ReMeApp(store_dir=str(tmp_path)) as app:
        await app.async_execute("forget", memory_id=secret.metadata["memory"]["id"])
    assert await lexical_texts(tmp_path, "quetzalcoatl") == []
    assert not [r for r in store_rows(tmp_path, "SELECT search_terms FROM memories") if "Quetzalcoatl" in r[0]]

    # A memory forgotten in the middle: the ones after it are found by what now comes before them instead.
    async with ReMeApp(store_dir=str(tmp_path)) as app:
        await app.async_execute("forget", memory_id=middle.metadata["memory"]["id"])
    assert await lexical_texts(tmp_path, "xylophonist") == []
    assert sorted(await lexical_texts(tmp_path, "thanks")) == [
        "Got it, thanks.", "No, keep it in your head.", "Understood."]


async def test_recall_and_forget_narrow_to_one_thread(tmp_path: Path) -> None:
    async with ReMeApp(store_dir=str(tmp_path)) as app:
        for thread in ("monday-call", "friday-call"):
            await app.async_execute("remember", text=f"We agreed to ship the parser on the {thread}.", thread=thread)
            await app.async_execute("remember", text="Action item: Dana reviews the parser.", thread=thread)
        await app.async_execute("remember", text="The parser is written in Rust.")  # no thread
        found = await app.async_execute("recall", query="parser", top_k=10, thread="friday-call")
        assert {(m["text"], m["thread"]) for m in found.metadata["memories"]} == {
            ("We agreed to ship the parser on the friday-call.", "friday-call"),
            ("Action item: Dana reviews the parser.", "friday-call"),
        }
        dry = await app.async_execute("forget", thread="monday-call")
        assert dry.metadata["dry_run"] and len(dry.metadata["memories"]) == 2
        await app.async_execute("forget", thread="monday-call", confirm=dry.metadata["confirm"])
        left = await app.async_execute("recall", query="parser", top_k=10)
        assert sorted(m["thread"] or "" for m in left.metadata["memories"]) == ["", "friday-call", "friday-call"]
        missing = await app.async_execute("recall", query="parser", thread="monday-call")
        assert missing.metadata["memories"] == []


async def test_a_chinese_or_japanese_query_finds_a_memory_written_without_spaces(tmp_path: Path) -> None:
    texts = ["我们昨天去吃了北京烤鸭，味道很好。", "明天上海会下雨，记得带伞。", "会议改到下周三下午三点。",
             "東京タワーの展望台は夜がきれいです。", "The Beijing office moved to a new building."]
    async with ReMeApp(store_dir=str(tmp_path)) as app:
        for text in texts:
            await app.async_execute("remember", text=text)
        found = await app.async_execute("recall", query="北京烤鸭好吃吗？", top_k=1)
    assert found.metadata["memories"][0]["text"] == texts[0]
    for query, expected in (("北京烤鸭", 0), ("上海下雨", 1), ("会议几点", 2), ("東京タワー", 3), ("夜景がきれい", 3)):
        assert (await lexical_texts(tmp_path, query))[:1] == [texts[expected]], query
    assert await lexical_texts(tmp_path, "广州") == []  # a pair no memory has


async def test_an_upgraded_store_gets_the_search_terms_of_its_memories(tmp_path: Path) -> None:
    texts = ["我们昨天去吃了北京烤鸭。", "The boiler was serviced in March."]
    async with ReMeApp(store_dir=str(tmp_path)) as app:
        for text in texts:
            await app.async_execute("remember", text=text)
    # Back to a store from before threads and search terms: no such columns, an index of text and keywords only.
    with store_db(tmp_path) as db:
        if PGVECTOR:
            from reme_mcp.store.pgvector import lexical_text

            rows = db.execute("SELECT rowid, text, keywords FROM memories").fetchall()
            db.execute("ALTER TABLE memories DROP COLUMN thread, DROP COLUMN search_terms")
            for rowid, text, keywords in rows:
                db.execute("UPDATE memories SET lexemes = to_tsvector('english', ?) WHERE rowid = ?",
                           (lexical_text(text, json.loads(keywords)), rowid))
            db.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
        else:
            for statement in (
                "DROP TRIGGER memories_ai", "DROP TRIGGER memories_ad", "DROP TRIGGER memories_au",
                "DROP TABLE memories_fts", "DROP INDEX memories_thread",
                "ALTER TABLE memories DROP COLUMN thread", "ALTER TABLE memories DROP COLUMN search_terms",
                "CREATE VIRTUAL TABLE memories_fts USING fts5(text, keywords, content='memories', "
                "content_rowid='rowid', tokenize='porter unicode61 remove_diacritics 2')",
                "CREATE TRIGGER memories_ai AFTER INSERT ON memories BEGIN INSERT INTO memories_fts(rowid, text, "
                "keywords) VALUES (new.rowid, new.text, new.keywords); END",
                "CREATE TRIGGER memories_ad AFTER DELETE ON memories BEGIN INSERT INTO memories_fts(memories_fts, "
                "rowid, text, keywords) VALUES ('delete', old.rowid, old.text, old.keywords); END",
                "INSERT INTO memories_fts(memories_fts) VALUES ('rebuild')",
                "UPDATE meta SET value = '5' WHERE key = 'schema_version'",
            ):
                db.execute(statement)
    assert await lexical_texts(tmp_path, "北京烤鸭") == [texts[0]]  # opening it upgrades it
    assert await lexical_texts(tmp_path, "boiler") == [texts[1]]
    terms = dict(store_rows(tmp_path, "SELECT text, search_terms FROM memories"))
    assert terms == {texts[0]: "我们 们昨 昨天 天去 去吃 吃了 了北 北京 京烤 烤鸭", texts[1]: ""}
    version = store_rows(tmp_path, "SELECT value FROM meta WHERE key = 'schema_version'")
    assert version == [(str(PG_SCHEMA if PGVECTOR else SQLITE_SCHEMA),)]
    async with ReMeApp(store_dir=str(tmp_path)) as app:  # threads work in the upgraded store
        await app.async_execute("remember", text="Which restaurant was it?", thread="t")
        await app.async_execute("remember", text="Quanjude, near Qianmen.", thread="t")
    assert sorted(await lexical_texts(tmp_path, "restaurant")) == ["Quanjude, near Qianmen.",
                                                                   "Which restaurant was it?"]
