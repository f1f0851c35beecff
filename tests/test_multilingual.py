"""Memories the English model cannot read (Chinese, Russian) are found by meaning without training."""

from __future__ import annotations

import json
import threading
from datetime import datetime, timezone
from pathlib import Path

import anyio
import pytest
from conftest import PGVECTOR, lexical_texts, store_db, store_rows

from reme_mcp import ReMeApp
from reme_mcp.episodic import keying
from reme_mcp.library import flow as library
from reme_mcp.library.records import export_lines
from reme_mcp.store.base import Memory, content_id
from reme_mcp.store.pgvector import SCHEMA_VERSION as PG_SCHEMA
from reme_mcp.store.sqlite import SCHEMA_VERSION as SQLITE_SCHEMA

SCHEMA_VERSION = PG_SCHEMA if PGVECTOR else SQLITE_SCHEMA
pytestmark = pytest.mark.anyio

EPISODES = Path(__file__).parent.parent / "bench" / "data" / "episodes"

ENGLISH = [
    "Standup moved to 9:30 because of the new release schedule.",
    "The staging database password rotates every Monday.",
    "I prefer tabs over spaces in Go code.",
]
CHINESE = [
    "我养了一只橘色的小猫，叫南瓜，它整天睡在窗台上。",  # an orange kitten, Pumpkin, sleeps on the windowsill
    "上个月我去成都出差，吃了很辣的火锅。",  # a business trip to Chengdu, spicy hotpot
    "女儿下周要参加钢琴比赛，每天练习两个小时。",  # a daughter's piano contest next week
]
RUSSIAN = [
    "Вчера мы с братом чинили велосипед во дворе.",  # fixing a bicycle with my brother yesterday
    "Бабушка испекла пирог с вишней на мой день рождения.",  # grandmother baked a cherry pie for my birthday
]


def about_others(*doings: str) -> list[str]:
    """English notes about other people, one for each of them and each thing done (42 for six)."""
    people = ["My neighbour", "My cousin", "My friend Anna", "My boss", "My sister", "My landlord", "Our teacher"]
    return [f"{who} {what}." for who in people for what in doings]


async def remember_all(app: ReMeApp, texts: list[str]) -> None:
    for text in texts:
        await app.async_execute("remember", text=text)


async def top(app: ReMeApp, query: str, **filters: object) -> str:
    found = await app.async_execute("recall", query=query, top_k=3, **filters)
    return found.metadata["memories"][0]["text"]


def keyed(store_dir: Path) -> int:
    return store_rows(store_dir, "SELECT count(*) FROM cell_keys")[0][0]


async def test_chinese_and_russian_memories_are_found_by_meaning_in_their_language_and_in_english(tmp_path: Path) -> None:
    async with ReMeApp(store_dir=str(tmp_path)) as app:
        await remember_all(app, ENGLISH + CHINESE + RUSSIAN)
        # No character pair of these queries is in the memory they should find: only meaning leads there.
        assert await top(app, "我家的猫咪叫什么？") == CHINESE[0]  # what is my cat called?
        assert await top(app, "哪次旅行的菜特别麻？") == CHINESE[1]  # which trip had numbing food?
        assert await top(app, "Кто приготовил десерт к празднику?") == RUSSIAN[1]  # who made dessert for the party?
        # Across languages, and the English memories are still found as before.
        assert await top(app, "What is the name of my pet?") == CHINESE[0]
        assert await top(app, "music competition practice") == CHINESE[2]
        assert await top(app, "What time does standup start now?") == ENGLISH[0]
    # The Chinese and Russian memories got their keys at the first recall; the English ones at the first
    # query the English model cannot read (see the next tests).
    assert keyed(tmp_path) == len(ENGLISH) + len(CHINESE) + len(RUSSIAN)


async def test_a_chinese_or_russian_query_finds_an_english_memory(tmp_path: Path) -> None:
    question = "When does the staging password change?"
    async with ReMeApp(store_dir=str(tmp_path)) as app:
        await remember_all(app, ENGLISH + CHINESE)
        before = (await app.async_execute("recall", query=question, top_k=6)).metadata["memories"]
        assert keyed(tmp_path) == len(CHINESE)
        # BM25 shares no word with these: only the English memories' multilingual keys lead there.
        assert await top(app, "数据库密码什么时候更换？") == ENGLISH[1]  # when is the database password changed?
        assert keyed(tmp_path) == len(CHINESE) + len(ENGLISH)  # that query gave the English memories keys
        assert await top(app, "Во сколько теперь планёрка?") == ENGLISH[0]  # what time is the standup now?
        assert await top(app, "我写Go代码喜欢用什么缩进？") == ENGLISH[2]  # how do I like to indent Go code?
        assert await top(app, "我的猫叫什么名字？") == CHINESE[0]
        after = (await app.async_execute("recall", query=question, top_k=6)).metadata["memories"]
    # An English query ranks as before: the English memories' keys serve only queries in other scripts.
    assert [(m["id"], m["score"], m["similarity"]) for m in after] == [
        (m["id"], m["score"], m["similarity"]) for m in before
    ]


async def test_many_english_memories_on_the_same_topics_do_not_crowd_out_a_chinese_one(tmp_path: Path) -> None:
    notes = about_others(
        "has a grey cat that sleeps on the sofa", "adopted a black kitten called Shadow",
        "named his cat after a footballer", "loves spicy hotpot from Chongqing",
        "is preparing for a violin recital", "practises the piano every evening",
    )
    async with ReMeApp(store_dir=str(tmp_path)) as app:
        await remember_all(app, CHINESE + notes)
        # In one ranking by multilingual cosine, "My neighbour named his cat after a footballer" came first.
        assert await top(app, "我家的猫咪叫什么？") == CHINESE[0]  # what is my cat called?
        assert await top(app, "我的猫喜欢睡在哪里？") == CHINESE[0]  # where does my cat like to sleep?
        assert await top(app, "谁在准备音乐比赛？") == CHINESE[2]  # who is preparing for a music contest?
        # The English memories are still found by a Chinese question about them.
        assert "footballer" in await top(app, "谁给猫起了一个足球运动员的名字？")  # who named a cat after a footballer?


async def test_an_english_question_finds_a_chinese_or_russian_memory_among_english_ones_that_share_its_words(
    tmp_path: Path,
) -> None:
    notes = about_others(
        "won a contest for the best garden", "named the new project after a comet",
        "called the plumber about the leaking sink", "ate at a pricey restaurant near the office",
        "practises yoga every evening", "sleeps badly since the move",
    )
    async with ReMeApp(store_dir=str(tmp_path)) as app:
        await remember_all(app, CHINESE + RUSSIAN + notes)
        # BM25 ranks English memories only: without their dense rank standing in for it, the Chinese and
        # Russian memories came second and sixth, behind memories that share the question's words.
        assert await top(app, "What did I fix with my brother?") == RUSSIAN[0]
        # Fourth: the English model puts three of the seven "ate at a pricey restaurant near the office" notes
        # first by meaning, and the dense top keeps that lead (fusion.standout; second without it).
        found = await app.async_execute("recall", query="Where did I go on a business trip last month?", top_k=5)
        assert CHINESE[1] in [m["text"] for m in found.metadata["memories"]]
        # An English question about an English memory keeps it first.
        assert (await top(app, "Who goes to yoga in the evenings?")).endswith("practises yoga every evening.")


async def test_an_english_query_skips_the_multilingual_encoder_when_only_english_memories_have_keys(
    tmp_path: Path, monkeypatch
) -> None:
    async with ReMeApp(store_dir=str(tmp_path)) as app:
        await remember_all(app, ENGLISH)
        await top(app, "数据库密码什么时候更换？")  # gives the English memories keys
        services = await app.services()
        encode, queries = services.cell_encoder.encode, []
        monkeypatch.setattr(services.cell_encoder, "encode", lambda texts: queries.append(texts) or encode(texts))
        assert await top(app, "When does the staging password change?") == ENGLISH[1]
        assert queries == []  # the keys are only for queries in other scripts: an English one needs no encoding
        assert await top(app, "数据库密码什么时候更换？") == ENGLISH[1]
        assert queries == [["数据库密码什么时候更换？"]]


def small_batches(monkeypatch, first: int = 2) -> list[tuple[str, int]]:
    """Keying in batches of `first` while a recall waits, then of 1 in the background; returns the (thread,
    count) of every batch given keys, once stored, the background's thread named 'background'."""
    monkeypatch.setattr(keying, "FIRST_BATCH", first)
    monkeypatch.setattr(keying, "BATCH", 1)
    batches, key_cells = [], keying.key_cells

    def spy(services, workspace_id: str, memories: list) -> int:
        count = key_cells(services, workspace_id, memories)
        name = threading.current_thread().name
        batches.append(("background" if name.startswith("reme-keys") else "recall", len(memories)))
        return count

    monkeypatch.setattr(keying, "key_cells", spy)
    return batches


def hold_background(services, monkeypatch) -> threading.Event:
    """A gate that the background's batches wait at before they encode anything; set it to let them go."""
    gate, encode = threading.Event(), services.cell_encoder.encode

    def held(texts: list[str]):
        if threading.current_thread().name.startswith("reme-keys"):
            gate.wait(timeout=60)
        return encode(texts)

    monkeypatch.setattr(services.cell_encoder, "encode", held)
    return gate


async def test_a_big_workspace_is_keyed_for_other_scripts_first_a_batch_then_in_the_background(
    tmp_path: Path, monkeypatch
) -> None:
    batches = small_batches(monkeypatch)
    async with ReMeApp(store_dir=str(tmp_path)) as app:
        services = await app.services()
        unkeyed, limits = services.store.without_cell_keys, []

        def read(*args: object) -> list:
            limits.append(args[3] if len(args) > 3 else None)
            return unkeyed(*args)

        monkeypatch.setattr(services.store, "without_cell_keys", read)
        await remember_all(app, ENGLISH)
        await top(app, "数据库密码什么时候更换？")
        assert services.bridge.wait(timeout=60)
        assert keyed(tmp_path) == 3 and batches == [("recall", 2), ("background", 1)]
        await app.async_execute("remember", text="Lunch with Priya on Friday at noon.")
        assert "Priya" in await top(app, "我周五和谁吃午饭？")  # who am I having lunch with on Friday?
    assert keyed(tmp_path) == 4  # what was written since is keyed at the next such query
    assert batches[2:] == [("recall", 1)]
    # Every read of memories without keys was one batch's: 2 or 1 for a query in another script, and 20 times
    # as many for the memories in other scripts, which most of an English workspace's are not.
    assert limits and set(limits) <= {2, 1, 40, 20}


async def test_many_new_memories_in_other_scripts_are_keyed_a_batch_at_a_time_while_recall_answers(
    tmp_path: Path, monkeypatch
) -> None:
    batches = small_batches(monkeypatch)
    async with ReMeApp(store_dir=str(tmp_path)) as app:
        services = await app.services()
        gate = hold_background(services, monkeypatch)
        await remember_all(app, ENGLISH + CHINESE + RUSSIAN)
        assert await top(app, "When does the staging password change?") == ENGLISH[1]
        assert keyed(tmp_path) == 2  # the first two Chinese memories: the recall did not wait for the rest
        assert batches == [("recall", 2)]
        assert await top(app, "Where does my kitten sleep?") == CHINESE[0]  # answered from what has keys so far
        gate.set()
        assert services.bridge.wait(timeout=60)
        assert await top(app, "Кто приготовил десерт к празднику?") == RUSSIAN[1]  # by meaning: a pie is a dessert
        assert await top(app, "When is my daughter's piano contest?") == CHINESE[2]
    assert keyed(tmp_path) == len(ENGLISH + CHINESE + RUSSIAN)  # the Chinese query had the English ones keyed too
    assert {thread for thread, _ in batches[1:]} == {"recall", "background"}


async def test_an_import_keys_what_it_brings_in_other_scripts_so_no_recall_waits_for_it(
    tmp_path: Path, monkeypatch
) -> None:
    batches = small_batches(monkeypatch, first=1)
    now = datetime.now(timezone.utc)
    notes = [Memory(id=content_id(t, []), workspace_id="home", text=t, created_at=now) for t in ENGLISH + CHINESE]
    raw = "\n".join(export_lines("home", "any", notes, None))
    async with ReMeApp(store_dir=str(tmp_path)) as app:
        services = await app.services()
        assert await anyio.to_thread.run_sync(library.import_text, services, raw, "home.jsonl", "default") == (
            "export", len(notes))
        assert keyed(tmp_path) == len(CHINESE) and len(batches) == len(CHINESE)  # by the import, a batch at a time
        assert await top(app, "When is my daughter's piano contest?") == CHINESE[2]
    assert len(batches) == len(CHINESE)  # the recall keyed nothing


async def test_the_first_query_in_another_script_does_not_wait_for_the_background(tmp_path: Path, monkeypatch) -> None:
    small_batches(monkeypatch)
    async with ReMeApp(store_dir=str(tmp_path)) as app:
        services = await app.services()
        gate = hold_background(services, monkeypatch)
        await remember_all(app, ENGLISH + ["Lunch with Priya on Friday at noon.", "The dentist is on Tuesday."])
        await remember_all(app, RUSSIAN)
        assert await top(app, "数据库密码什么时候更换？") == ENGLISH[1]  # among the first batch
        assert keyed(tmp_path) == 2 + len(RUSSIAN)  # the Russian ones are keyed for any query
        assert await top(app, "Кто приготовил десерт к празднику?") == RUSSIAN[1]  # answered meanwhile

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(app.close)  # stops the background after the batch under way
            await anyio.sleep(0.2)
            gate.set()
    assert keyed(tmp_path) == 3 + len(RUSSIAN)  # one more batch, not the rest


async def test_an_english_workspace_gets_no_multilingual_keys(tmp_path: Path) -> None:
    async with ReMeApp(store_dir=str(tmp_path)) as app:
        await remember_all(app, ENGLISH)
        assert await top(app, "database credentials") == ENGLISH[1]
        await app.async_execute("remember", text="我喜欢喝绿茶。")  # one Chinese memory arrives later
        assert await top(app, "What drink do I like?", memory_type="episode") == "我喜欢喝绿茶。"
    assert keyed(tmp_path) == 1


async def test_forgetting_a_chinese_memory_drops_its_keys_and_a_new_process_keys_the_rest(tmp_path: Path) -> None:
    async with ReMeApp(store_dir=str(tmp_path)) as app:
        await remember_all(app, CHINESE)
        assert await top(app, "我家的猫咪叫什么？") == CHINESE[0]
        memories = (await app.async_execute("recall", query="猫", top_k=3)).metadata["memories"]
        cat = next(m for m in memories if m["text"] == CHINESE[0])
        await app.async_execute("forget", memory_id=cat["id"])
    assert keyed(tmp_path) == len(CHINESE) - 1
    async with ReMeApp(store_dir=str(tmp_path)) as app:
        await remember_all(app, RUSSIAN)
        assert await top(app, "Кто приготовил десерт к празднику?") == RUSSIAN[1]
    assert keyed(tmp_path) == len(CHINESE) - 1 + len(RUSSIAN)


async def test_training_is_weighed_against_search_that_already_reads_chinese(tmp_path: Path) -> None:
    episodes = json.loads((EPISODES / "zh.json").read_text(encoding="utf-8"))["episodes"][10:25]
    async with ReMeApp(store_dir=str(tmp_path)) as app:
        result = await app.async_execute("train_memory", episodes=episodes)
    # The gate's baseline is recall with the cells off, which reads Chinese by its multilingual keys; a
    # baseline of the English model and BM25 alone would make any training look like a win.
    assert result.metadata["plain"]["mrr"] > 0.85, result.answer


async def test_a_workspace_trained_with_its_cells_off_still_reads_chinese(tmp_path: Path) -> None:
    episodes = [{"id": f"zh{i}", "text": t} for i, t in enumerate(CHINESE)]
    episodes += [{"id": f"en{i}", "text": t} for i, t in enumerate(ENGLISH)]
    async with ReMeApp(store_dir=str(tmp_path)) as app:
        await app.async_execute("train_memory", episodes=episodes)
        services = await app.services()
        state, _, report = services.store.cell_model("default")
        services.store.put_cell_model("default", state, False, report)  # off, as the gate leaves cells that do not help
        _, cells = services.dense.spaces("default")
        # English queries reach the English memories by the English model, other scripts by their keys
        assert cells.adapter is None and len(cells.rowids) == len(CHINESE)
        assert len(cells.wider.rowids) == len(CHINESE) + len(ENGLISH)
        assert await top(app, "我家的猫咪叫什么？") == CHINESE[0]
        assert await top(app, "站会现在几点开始？") == ENGLISH[0]  # what time does standup start now?
        assert await top(app, "What is the name of my pet?") == CHINESE[0]
        assert await top(app, "What time does standup start now?") == ENGLISH[0]
        await app.async_execute("remember", text=RUSSIAN[1])  # written after training: keyed as if untrained
        assert await top(app, "Кто приготовил десерт к празднику?") == RUSSIAN[1]
    assert keyed(tmp_path) == len(episodes) + 1


async def test_a_russian_word_is_found_in_any_of_its_forms(tmp_path: Path) -> None:
    async with ReMeApp(store_dir=str(tmp_path)) as app:
        await remember_all(app, RUSSIAN)
    # "пирогом" and "бабушки" are not words of the memory ("пирог", "Бабушка"): their stems are.
    assert await lexical_texts(tmp_path, "пирогом бабушки") == [RUSSIAN[1]]
    assert await lexical_texts(tmp_path, "велосипеде") == [RUSSIAN[0]]


KEYWORDED = "Trip notes, day two."  # its keywords say what it is about: Peking duck, and pies


async def remember_keyworded(app: ReMeApp) -> None:
    await app.async_execute("remember", text=KEYWORDED, keywords=["北京烤鸭", "пирожки"])
    await remember_all(app, ENGLISH)


async def test_a_chinese_or_russian_keyword_is_found_by_its_parts_and_forms(tmp_path: Path) -> None:
    async with ReMeApp(store_dir=str(tmp_path)) as app:
        await remember_keyworded(app)
    # Neither is in the text: "烤鸭" is a part of the keyword "北京烤鸭", "пирожков" another form of "пирожки".
    assert await lexical_texts(tmp_path, "烤鸭") == [KEYWORDED]
    assert await lexical_texts(tmp_path, "пирожков") == [KEYWORDED]


async def test_a_store_from_before_keyword_terms_gets_them_when_opened(tmp_path: Path) -> None:
    async with ReMeApp(store_dir=str(tmp_path)) as app:
        await remember_keyworded(app)
    with store_db(tmp_path) as db:  # back to the schema whose search terms left keywords out
        if PGVECTOR:
            from reme_mcp.store.pgvector import lexical_text

            db.execute("UPDATE memories SET search_terms = '', lexemes = to_tsvector('english', ?) WHERE text = ?",
                       (lexical_text(KEYWORDED, ["北京烤鸭", "пирожки"]), KEYWORDED))
            db.execute("UPDATE meta SET value = '3' WHERE key = 'schema_version'")
        else:
            db.execute("UPDATE memories SET search_terms = '' WHERE text = ?", (KEYWORDED,))
            db.execute("UPDATE meta SET value = '7' WHERE key = 'schema_version'")
    assert await lexical_texts(tmp_path, "烤鸭") == [KEYWORDED]  # opening it upgrades it
    assert await lexical_texts(tmp_path, "пирожков") == [KEYWORDED]
    assert store_rows(tmp_path, "SELECT search_terms FROM memories WHERE text = ?", (KEYWORDED,)) == [
        ("北京 京烤 烤鸭 пирожк",)
    ]
    assert store_rows(tmp_path, "SELECT value FROM meta WHERE key = 'schema_version'") == [(str(SCHEMA_VERSION),)]


async def test_a_store_from_before_russian_stems_gets_them_when_opened(tmp_path: Path) -> None:
    async with ReMeApp(store_dir=str(tmp_path)) as app:
        await remember_all(app, [RUSSIAN[1], ENGLISH[0]])
    with store_db(tmp_path) as db:  # back to the schema before stems: search terms of CJK pairs only
        if PGVECTOR:
            from reme_mcp.store.pgvector import lexical_text

            for text in (RUSSIAN[1], ENGLISH[0]):
                db.execute("UPDATE memories SET search_terms = '', lexemes = to_tsvector('english', ?) WHERE text = ?",
                           (lexical_text(text, []), text))
            db.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")
        else:
            db.execute("UPDATE memories SET search_terms = ''")
            db.execute("UPDATE meta SET value = '6' WHERE key = 'schema_version'")
    assert await lexical_texts(tmp_path, "пирогом бабушки") == [RUSSIAN[1]]  # opening it upgrades it
    terms = dict(store_rows(tmp_path, "SELECT text, search_terms FROM memories"))
    assert terms == {RUSSIAN[1]: "бабушк испекл вишн мо ден рожден", ENGLISH[0]: ""}
    version = store_rows(tmp_path, "SELECT value FROM meta WHERE key = 'schema_version'")
    assert version == [(str(SCHEMA_VERSION),)]
