"""The memory library: packs to load, dump, copy, list and delete; export and import between stores and tools."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import httpx
import pytest
from conftest import REME, mcp_stdio, own_store, server_env

from reme_mcp import ReMeApp
from reme_mcp.errors import InvalidInput, NotFound
from reme_mcp.library import packs

pytestmark = pytest.mark.anyio

FACTS = [
    ("Deploys go out on Tuesdays after the 10:00 standup.", "deploy, tuesday"),
    ("The staging database is reset every night at 02:00 UTC.", "staging, database"),
    ("Maria owns the billing service and reviews its pull requests.", "maria, billing"),
    ("Never run the migration script without a backup of the orders table.", "migration, backup"),
]


def reme(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([REME, *args], capture_output=True, text=True, env=server_env(), timeout=600)


async def fill(app: ReMeApp, workspace_id: str = "team") -> None:
    for text, keywords in FACTS:
        await app.async_execute("remember", text=text, keywords=keywords, workspace_id=workspace_id)


async def top_ids(app: ReMeApp, query: str, workspace_id: str, k: int = 3) -> list[str]:
    found = await app.async_execute("recall", query=query, top_k=k, workspace_id=workspace_id)
    return [m["id"] for m in found.metadata["memories"]]


async def test_dump_then_load_reuses_the_vectors_and_recalls_the_same(tmp_path: Path) -> None:
    async with ReMeApp(store_dir=str(tmp_path)) as app:
        await fill(app)
        dumped = await app.async_execute("vector_store", action="dump", workspace_id="team", path="team-pack")
        assert dumped.metadata["count"] == 4
        folder = tmp_path / "library" / "team-pack"
        manifest = json.loads((folder / "manifest.json").read_text())
        assert manifest["record_count"] == 4 and manifest["checksum"].startswith("sha256:")
        assert manifest["embedding_model"] == "sentence-transformers/all-MiniLM-L6-v2"
        record = json.loads((folder / "memories.jsonl").read_text().splitlines()[0])
        assert set(record) >= {"memory_id", "memory_type", "when_to_use", "content", "score", "time_created",
                               "time_modified", "author", "metadata"}

        listed = await app.async_execute("vector_store", action="list")
        assert "team-pack" in [p["name"] for p in listed.metadata["packs"]]
        loaded = await app.async_execute("vector_store", action="load", pack="team-pack", workspace_id="copy")
        assert loaded.metadata["count"] == 4 and loaded.metadata["reembedded"] is False
        for question in ("when do we deploy?", "who looks after billing?"):
            assert await top_ids(app, question, "copy") == await top_ids(app, question, "team")


async def test_a_pack_from_another_model_is_embedded_again(tmp_path: Path) -> None:
    async with ReMeApp(store_dir=str(tmp_path)) as app:
        await fill(app)
        await app.async_execute("vector_store", action="dump", workspace_id="team", path="other")
        manifest_path = tmp_path / "library" / "other" / "manifest.json"
        manifest = json.loads(manifest_path.read_text())
        manifest_path.write_text(json.dumps({**manifest, "embedding_model": "some/other-model"}))
        loaded = await app.async_execute("vector_store", action="load", path="other", workspace_id="w2")
        assert loaded.metadata["reembedded"] is True and "embedded again" in loaded.answer
        assert (await top_ids(app, "nightly reset of staging", "w2"))[0] == (await top_ids(app, "nightly reset of staging", "team"))[0]


@pytest.mark.parametrize("damage", ["tamper", "bad_line", "short"])
async def test_a_damaged_pack_is_refused_and_nothing_half_loaded_stays(tmp_path: Path, damage: str) -> None:
    async with ReMeApp(store_dir=str(tmp_path)) as app:
        await fill(app)
        await app.async_execute("vector_store", action="dump", workspace_id="team", path="broken")
        folder = tmp_path / "library" / "broken"
        lines = (folder / "memories.jsonl").read_text().splitlines()
        manifest = json.loads((folder / "manifest.json").read_text())
        if damage == "tamper":
            (folder / "memories.jsonl").write_text("\n".join(lines).replace("Tuesdays", "Fridays") + "\n")
            expected = "does not match the checksum"
        else:
            lines[2] = '{"memory_id": "x", "content": ' if damage == "bad_line" else lines[2]
            lines = lines if damage == "bad_line" else lines[:3]
            data = ("\n".join(lines) + "\n").encode()
            (folder / "memories.jsonl").write_bytes(data)
            (folder / "manifest.json").write_text(json.dumps({**manifest, "checksum": packs.checksum(data)}))
            expected = "line 3 is not valid JSON" if damage == "bad_line" else "holds 3 records, its manifest says 4"
        with pytest.raises(InvalidInput, match=expected):
            await app.async_execute("vector_store", action="load", pack="broken", workspace_id="target")
        listed = await app.async_execute("vector_store", action="list")
        assert "target" not in [w["workspace_id"] for w in listed.metadata["workspaces"]]


async def test_copy_list_delete_ids_and_delete(tmp_path: Path) -> None:
    async with ReMeApp(store_dir=str(tmp_path)) as app:
        await fill(app)
        copied = await app.async_execute("vector_store", action="copy", src_workspace_id="team", workspace_id="mirror")
        assert copied.metadata["count"] == 4
        page = await app.async_execute("vector_store", action="list", workspace_id="mirror", limit=3)
        rest = await app.async_execute("vector_store", action="list", workspace_id="mirror", limit=3, offset=3)
        ids = [m["id"] for m in page.metadata["memories"] + rest.metadata["memories"]]
        assert len(page.metadata["memories"]) == 3 and len(set(ids)) == 4
        gone = await app.async_execute("vector_store", action="delete_ids", workspace_id="mirror",
                                       memory_ids=[ids[0], "no-such-id"])
        assert gone.metadata["count"] == 1 and gone.metadata["missing_ids"] == ["no-such-id"]
        deleted = await app.async_execute("vector_store", action="delete", workspace_id="mirror")
        assert deleted.metadata["count"] == 3
        with pytest.raises(NotFound, match="'mirror' does not exist"):
            await app.async_execute("recall", query="deploy", workspace_id="mirror")
        assert len(await top_ids(app, "deploy day", "team")) == 3  # the source is untouched


async def test_failures_say_what_to_fix(tmp_path: Path) -> None:
    async with ReMeApp(store_dir=str(tmp_path)) as app:
        await fill(app)
        with pytest.raises(NotFound, match="No pack named 'nope'"):
            await app.async_execute("vector_store", action="load", pack="nope")
        with pytest.raises(NotFound, match="'ghost' does not exist"):
            await app.async_execute("vector_store", action="dump", workspace_id="ghost", path="x")
        with pytest.raises(NotFound, match="'ghost' does not exist"):
            await app.async_execute("vector_store", action="copy", src_workspace_id="ghost", workspace_id="y")
        for path in ("../outside", "/etc", "a/b", "..", "~root"):
            with pytest.raises(InvalidInput, match="path"):
                await app.async_execute("vector_store", action="dump", workspace_id="team", path=path)
        with pytest.raises(InvalidInput, match="one of them"):
            await app.async_execute("vector_store", action="load")
    assert not (tmp_path.parent / "outside").exists()


async def test_vector_store_over_mcp_and_http(tmp_path: Path, http_server: str) -> None:
    async with mcp_stdio(tmp_path / "mcp", "mcp.tools=all") as session:
        listed = await session.call_tool("vector_store", {"action": "list"})
        assert not listed.is_error and "Packs" in listed.content[0].text
        missing = await session.call_tool("vector_store", {"action": "load", "pack": "nope"})
        assert missing.is_error and "No pack named 'nope'" in missing.content[0].text
    response = httpx.post(f"{http_server}/vector_store", json={"action": "delete", "workspace_id": "ghost"}, timeout=60)
    assert response.status_code == 404 and "does not exist" in response.json()["answer"]
    outside = httpx.post(f"{http_server}/vector_store", json={"action": "dump", "path": "../x"}, timeout=60)
    assert outside.status_code == 400


def test_export_delete_import_round_trip_from_the_shell(tmp_path: Path) -> None:
    store = f"store_dir={tmp_path / 'store'}"
    for text, keywords in FACTS:
        assert reme("remember", text, "--keywords", keywords, "--workspace_id", "team", store).returncode == 0
    before = reme("recall", "who reviews billing changes", "--workspace_id", "team", "--json", store)
    exported = reme("export", "team", str(tmp_path / "team.jsonl"), store)
    assert exported.returncode == 0, exported.stderr
    header = json.loads((tmp_path / "team.jsonl").read_text().splitlines()[0])
    assert header["format"] == "reme-mcp-export" and header["version"] == 1 and header["count"] == 4
    with own_store(tmp_path / "other") as elsewhere:  # a fresh store, as after moving machines
        other = (f"store_dir={tmp_path / 'other'}", *elsewhere)
        imported = reme("import", str(tmp_path / "team.jsonl"), "workspace_id=team", *other)
        assert imported.returncode == 0 and "Imported 4 new memories (export format)" in imported.stdout
        after = reme("recall", "who reviews billing changes", "--workspace_id", "team", "--json", *other)
        assert [m["id"] for m in json.loads(after.stdout)["metadata"]["memories"]] == \
            [m["id"] for m in json.loads(before.stdout)["metadata"]["memories"]]
        again = reme("import", str(tmp_path / "team.jsonl"), "workspace_id=team", *other)
        assert "Imported 0 new memories" in again.stdout  # importing twice adds nothing


def test_import_reme_task_memories_and_the_mcp_memory_graph(tmp_path: Path) -> None:
    store = f"store_dir={tmp_path}"
    reme_file = tmp_path / "task.jsonl"
    reme_file.write_text(json.dumps({
        "memory_id": "t1", "memory_type": "task", "when_to_use": "When a pip install pulls CUDA wheels",
        "content": "Install torch==2.13.0 from the CPU index first.", "score": 0.9,
        "time_created": "2025-01-02 03:04:05", "time_modified": "2025-01-02 03:04:05", "author": "me",
        "metadata": {"tags": ["pip", "torch"]},
    }) + "\n")
    assert "Imported 1 new memories (reme format)" in reme("import", str(reme_file), store).stdout
    graph = tmp_path / "memory.jsonl"
    graph.write_text("\n".join(json.dumps(x) for x in [
        {"type": "entity", "name": "Alice", "entityType": "person", "observations": ["prefers tea", "lives in Oslo"]},
        {"type": "relation", "from": "Alice", "to": "Acme", "relationType": "works at"},
    ]) + "\n")
    assert "Imported 3 new memories (mcp-memory format)" in reme("import", str(graph), store).stdout
    found = json.loads(reme("recall", "where does Alice work", "--json", store).stdout)["metadata"]["memories"]
    assert found[0]["text"] == "Alice works at Acme"
    task = json.loads(reme("recall", "pip is downloading gigabytes of CUDA", "--top_k", "1", "--json", store).stdout)
    assert task["metadata"]["memories"][0]["id"] == "t1"
    assert task["metadata"]["memories"][0]["memory_type"] == "task"
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"type": "entity", "name": "A", "observations": []}\n{"type": "thing"}\n')
    refused = reme("import", str(bad), store)
    assert refused.returncode == 1 and "line 2: type must be 'entity' or 'relation'" in refused.stderr


def test_library_from_the_shell(tmp_path: Path) -> None:
    store = f"store_dir={tmp_path / 'store'}"
    for text, keywords in FACTS:
        reme("remember", text, "--keywords", keywords, "--workspace_id", "team", store)
    dumped = reme("library", "dump", "team", str(tmp_path / "anywhere" / "team"), store)
    assert dumped.returncode == 0 and "Dumped 4 memories" in dumped.stdout
    assert (tmp_path / "anywhere" / "team" / "manifest.json").exists()
    listed = reme("library", "list", store)
    assert listed.returncode == 0 and "team: 4 memories" in listed.stdout
    assert reme("library", "load", "nope", store).returncode == 1


@pytest.mark.parametrize(
    ("pack", "question", "expected"),
    [
        ("coding-agent", "git push was rejected because the remote has new commits", "coding-012"),
        ("coding-agent", "my test passes locally but fails in CI", "coding-024"),
        ("web-research", "the page I fetched is a PDF", "research-017"),
        ("reme-memory-tools", "the user told me their favourite drink", "reme-001"),
        ("reme-memory-tools", "my context is almost full after many tool calls", "reme-025"),
    ],
)
async def test_each_shipped_pack_loads_without_re_embedding_and_answers_a_typical_question(
    tmp_path: Path, pack: str, question: str, expected: str
) -> None:
    manifest = packs.read_manifest(packs.SHIPPED / pack)
    assert manifest.record_count >= 40 and manifest.vectors
    async with ReMeApp(store_dir=str(tmp_path)) as app:
        loaded = await app.async_execute("vector_store", action="load", pack=pack, workspace_id=pack)
        assert loaded.metadata["count"] == manifest.record_count and loaded.metadata["reembedded"] is False
        found = await app.async_execute("recall", query=question, top_k=1, workspace_id=pack, memory_type="task")
    assert found.metadata["memories"][0]["id"] == expected
