"""A memory's life: tags and time filters, expiry and retention, recency and use, consolidation, forgetting."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from conftest import mcp_stdio, store_contents
from openai_stub import OpenAIStub, Reply
from trajectories import long_trajectory

from reme_mcp import ReMeApp
from reme_mcp.errors import InvalidInput, LLMUnavailable, NotFound
from reme_mcp.lifecycle.when import parse_duration, parse_instant
from reme_mcp.store.base import Memory, content_id, embedding_text

pytestmark = pytest.mark.anyio

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=timezone.utc)


async def remember_at(app: ReMeApp, text: str, when: datetime, workspace_id: str = "default", **fields: object) -> str:
    """A memory written at `when` (remember always writes "now"; a store written over months is what we test)."""
    services = await app.services()
    memory = Memory(id=content_id(text, []), workspace_id=workspace_id, text=text, created_at=when, **fields)
    vector = services.embedder.encode([embedding_text(text, [])])[0]
    services.store.add(memory, vector, services.embedder.embedding())
    return memory.id


async def ids(app: ReMeApp, query: str, **arguments: object) -> list[str]:
    found = await app.async_execute("recall", query=query, **arguments)
    return [m["id"] for m in found.metadata["memories"]]


def test_times_and_durations_read_as_people_write_them() -> None:
    assert parse_duration("30d") == 30 * 86_400 and parse_duration("12h") == 43_200 and parse_duration(90) == 90
    assert parse_instant("7d", NOW) == NOW - timedelta(days=7)
    assert parse_instant("12h ago", NOW) == NOW - timedelta(hours=12)
    assert parse_instant("2026-05-01", NOW) == datetime(2026, 5, 1, tzinfo=timezone.utc)
    assert parse_instant("2026-05-01T09:30:00+02:00", NOW) == datetime(2026, 5, 1, 7, 30, tzinfo=timezone.utc)
    assert parse_instant("yesterday", NOW) == datetime(2026, 11, 21, tzinfo=timezone.utc)
    for bad in ("2026", "last tuesday", "7 parsecs", "-3d"):
        with pytest.raises(ValueError):
            parse_instant(bad, NOW)


async def test_a_tag_filter_applies_before_ranking_so_it_never_hides_a_match(tmp_path: Path) -> None:
    async with ReMeApp(store_dir=str(tmp_path), retrieval__candidates=20) as app:
        # 120 memories that match the query better than the tagged ones: a filter applied after each
        # ranking's top 20 candidates would find none of the tagged ones.
        for n in range(120):
            await app.async_execute("remember", text=f"Deploy checklist item {n}: deploy the service after tests.")
        tagged = [
            (await app.async_execute("remember", text=text, tags=tags)).metadata["memory"]["id"]
            for text, tags in [("The rollout of billing waits for Maria.", "ops, billing"),
                               ("Rollback needs the release tag.", ["OPS"]),
                               ("Release notes go to the #releases channel.", "comms")]
        ]
        assert set(await ids(app, "deploy the service", top_k=3, tags="ops")) == set(tagged[:2])
        assert await ids(app, "deploy", top_k=3, tags="ops, billing", tag_mode="all") == [tagged[0]]
        assert set(await ids(app, "deploy", top_k=5, tags=["billing", "comms"])) == {tagged[0], tagged[2]}
        assert await ids(app, "deploy", top_k=3, tags="nobody-uses-this") == []


async def test_time_and_type_filters(tmp_path: Path) -> None:
    now = datetime.now(timezone.utc)
    async with ReMeApp(store_dir=str(tmp_path)) as app:
        old = await remember_at(app, "The team chose PostgreSQL for the ledger.", now - timedelta(days=40))
        mid = await remember_at(app, "The team moved the ledger to CockroachDB.", now - timedelta(days=10))
        lesson = await remember_at(app, "Ledger migrations need a dry run first.", now - timedelta(days=2),
                                   memory_type="task")
        assert set(await ids(app, "ledger database", top_k=5, after="14d")) == {mid, lesson}
        assert await ids(app, "ledger database", top_k=5, before="14d") == [old]
        between = (now - timedelta(days=20)).date().isoformat(), (now - timedelta(days=5)).isoformat()
        assert await ids(app, "ledger", top_k=5, after=between[0], before=between[1]) == [mid]
        assert await ids(app, "ledger", top_k=5, memory_type="task") == [lesson]
        with pytest.raises(InvalidInput, match="'after'.*not a time"):
            await app.async_execute("recall", query="ledger", after="last tuesday")
        with pytest.raises(InvalidInput, match="not earlier than before"):
            await app.async_execute("recall", query="ledger", after="1d", before="2d")


async def test_expiry_ttl_and_workspace_retention(tmp_path: Path) -> None:
    async with ReMeApp(store_dir=str(tmp_path)) as app:
        brief = await app.async_execute("remember", text="The door code this week is 4471.", ttl="2s")
        assert brief.metadata["memory"]["expires_at"] is not None and "expires" in brief.answer
        assert await ids(app, "door code", top_k=1) == [brief.metadata["memory"]["id"]]
        time.sleep(2.2)
        told_again = await app.async_execute("remember", text="Door code memo.", ttl="1s")
        time.sleep(1.2)
        assert (await app.async_execute("remember", text="Door code memo.")).metadata["created"]  # not "already"
        assert await ids(app, "door code", top_k=2) == [told_again.metadata["memory"]["id"]]
        services = await app.services()
        assert services.store.get("default", brief.metadata["memory"]["id"]) is None  # purged, not hidden
        with pytest.raises(InvalidInput, match="in the past"):
            await app.async_execute("remember", text="Too late.", expires_at="2020-01-01T00:00:00Z")
        with pytest.raises(InvalidInput, match="ttl or expires_at"):
            await app.async_execute("remember", text="Both.", ttl="1d", expires_at="2099-01-01T00:00:00Z")
        with pytest.raises(InvalidInput, match="'ttl'.*not a duration"):
            await app.async_execute("remember", text="Bad.", ttl="a while")

        now = datetime.now(timezone.utc)
        await remember_at(app, "Sprint 3 retro notes: too many meetings.", now - timedelta(days=40), "team")
        recent = await remember_at(app, "Sprint 9 retro notes: deploys were smooth.", now - timedelta(days=3), "team")
        kept = await remember_at(app, "The team's charter, kept forever.", now - timedelta(days=400), "team",
                                 expires_at=now + timedelta(days=3650))
        set_ = await app.async_execute("vector_store", action="retention", workspace_id="team", retention="30d")
        assert set_.metadata["count"] == 1 and "30 days" in set_.answer
        assert set(await ids(app, "retro notes charter", top_k=5, workspace_id="team")) == {recent, kept}
        cleared = await app.async_execute("vector_store", action="retention", workspace_id="team", retention="none")
        assert cleared.metadata["retention_seconds"] is None
        with pytest.raises(InvalidInput, match="not a duration"):
            await app.async_execute("vector_store", action="retention", workspace_id="team", retention="soon")


async def test_recall_records_use_and_can_favour_recent_and_used_memories(tmp_path: Path) -> None:
    now = datetime.now(timezone.utc)
    async with ReMeApp(store_dir=str(tmp_path), retrieval__recency_weight=0, retrieval__usage_weight=0) as app:
        old = await remember_at(app, "Project Falcon stores orders in PostgreSQL.", now - timedelta(days=300))
        new = await remember_at(app, "Project Falcon stores orders in MySQL.", now - timedelta(days=1))
        plain = await ids(app, "Project Falcon orders", top_k=2)
        first = await app.async_execute("recall", query="Falcon PostgreSQL", top_k=1)
        assert first.metadata["memories"][0]["recall_count"] >= 1
        assert first.metadata["memories"][0]["last_recalled_at"] is not None
    async with ReMeApp(store_dir=str(tmp_path), retrieval__recency_weight=5.0, retrieval__usage_weight=0) as app:
        assert await ids(app, "Project Falcon orders", top_k=2) == [new, old]
    async with ReMeApp(store_dir=str(tmp_path), retrieval__recency_weight=0, retrieval__usage_weight=5.0,
                       retrieval__track_usage=False) as app:
        services = await app.services()
        used = {m.id: m.recall_count for m in services.store.list_memories("default", 10)}
        assert used[old] > used[new]
        assert await ids(app, "Project Falcon orders", top_k=2) == [old, new]
        assert {m.id: m.recall_count for m in services.store.list_memories("default", 10)} == used  # not tracked
    assert set(plain) == {old, new}


async def test_consolidate_merges_exact_and_near_exact_duplicates_and_keeps_their_ids(tmp_path: Path) -> None:
    async with ReMeApp(store_dir=str(tmp_path)) as app:
        said = [(await app.async_execute("remember", text=text, tags=tags)).metadata["memory"]["id"]
                for text, tags in [("The user prefers dark mode in every editor.", "ui"),
                                   ("the user prefers dark mode in every editor", ""),
                                   ("User prefers “dark mode” in every editor!", "prefs")]]
        distinct = [(await app.async_execute("remember", text=text)).metadata["memory"]["id"]
                    for text in ("The user prefers light mode in every editor.",
                                 "The user's laptop has 32 GB of RAM.", "The user's laptop has 16 GB of RAM.",
                                 "The user does not prefer dark mode in every editor.")]
        preview = await app.async_execute("consolidate")
        [merge] = preview.metadata["merges"]
        assert preview.metadata["dry_run"] and merge["survivor"] == said[2]
        assert sorted(merge["merged"]) == sorted(said[:2]) and "Dry run" in preview.answer
        services = await app.services()
        assert services.store.count() == 7  # a dry run changes nothing

        done = await app.async_execute("consolidate", dry_run=False)
        assert not done.metadata["dry_run"] and services.store.count() == 5
        survivor = services.store.get("default", said[2])
        assert set(survivor.tags) == {"prefs", "ui"}
        assert [m["id"] for m in survivor.metadata["merged_from"]] == said[:2]
        assert services.store.get("default", said[0]).id == said[2]  # an old id still names the memory
        again = await app.async_execute("remember", text="The user prefers dark mode in every editor.", tags="ui")
        assert not again.metadata["created"] and again.metadata["memory"]["id"] == said[2]
        for memory_id in distinct:
            assert services.store.get("default", memory_id) is not None
        assert (await app.async_execute("consolidate")).metadata["merges"] == []
        await app.async_execute("forget", memory_id=said[0])  # forgetting by an old id forgets the memory
        assert services.store.get("default", said[2]) is None


async def test_consolidate_summarize_lets_the_llm_merge_a_cluster(tmp_path: Path) -> None:
    async with ReMeApp(store_dir=str(tmp_path)) as app:
        await app.async_execute("remember", text="Ana lives in Lisbon.")
        with pytest.raises(LLMUnavailable, match="consolidate mode=summarize needs an LLM"):
            await app.async_execute("consolidate", mode="summarize")
    merged = {"text": "Ana lived in Lisbon and moved to Porto in 2025; she works as a nurse.",
              "keywords": ["Ana", "Porto"]}
    with OpenAIStub() as stub:
        stub.replies.append(Reply(content=json.dumps(merged)))
        async with ReMeApp(store_dir=str(tmp_path), llm__default__base_url=stub.url,
                           llm__default__api_key="k", llm__default__timeout=5) as app:
            second = await app.async_execute("remember", text="Ana moved from Lisbon to Porto in 2025.")
            await app.async_execute("remember", text="The staging cluster runs Kubernetes 1.29.")
            result = await app.async_execute("consolidate", mode="summarize", dry_run=False, threshold=0.5)
            [merge] = result.metadata["merges"]
            assert merge["reason"] == "summary" and merge["text"] == merged["text"]
            prompt = stub.chat_requests[0]["messages"][1]["content"]
            assert "Ana lives in Lisbon." in prompt and "Porto in 2025" in prompt and "Kubernetes" not in prompt
            found = await app.async_execute("recall", query="where does Ana live now", top_k=1)
            assert found.metadata["memories"][0]["text"] == merged["text"]
            assert found.metadata["memories"][0]["id"] == merge["survivor"]
            services = await app.services()
            assert services.store.get("default", second.metadata["memory"]["id"]).id == merge["survivor"]


async def test_forget_by_selectors_is_a_dry_run_until_confirmed(tmp_path: Path) -> None:
    async with ReMeApp(store_dir=str(tmp_path)) as app:
        for n in range(3):
            await app.async_execute("remember", text=f"Trip {n} to Oslo was booked.", tags="travel")
        await app.async_execute("remember", text="Quarterly taxes are due in April.", tags="finance")
        preview = await app.async_execute("forget", tags="travel")
        assert preview.metadata["dry_run"] and len(preview.metadata["memories"]) == 3
        assert "Nothing was deleted" in preview.answer
        services = await app.services()
        assert services.store.count() == 4
        with pytest.raises(InvalidInput, match="does not match"):
            await app.async_execute("forget", tags="travel", confirm="000000000000")
        await app.async_execute("remember", text="Trip 9 to Bergen was booked.", tags="travel")
        with pytest.raises(InvalidInput, match="something changed since the dry run"):
            await app.async_execute("forget", tags="travel", confirm=preview.metadata["confirm"])
        preview = await app.async_execute("forget", tags="travel")
        done = await app.async_execute("forget", tags="travel", confirm=preview.metadata["confirm"])
        assert not done.metadata["dry_run"] and len(done.metadata["memories"]) == 4
        assert [m.text for m in services.store.list_memories("default", 10)] == ["Quarterly taxes are due in April."]

        by_query = await app.async_execute("forget", query="taxes", top_k=1)
        assert [m["preview"] for m in by_query.metadata["memories"]] == ["Quarterly taxes are due in April."]
        by_time = await app.async_execute("forget", before="2000-01-01")
        assert by_time.metadata["memories"] == [] and "nothing to forget" in by_time.answer
        with pytest.raises(InvalidInput, match="say what to forget"):
            await app.async_execute("forget")
        with pytest.raises(InvalidInput, match="memory_id alone"):
            await app.async_execute("forget", memory_id="abc", tags="x")
        with pytest.raises(NotFound):
            await app.async_execute("forget", memory_id="0000000000000000")
        for empty in ({"tags": ""}, {"memory_type": []}, {"query": ""}):
            with pytest.raises(InvalidInput):  # an empty selector must never mean "everything"
                await app.async_execute("forget", **empty)


async def test_a_confirm_code_confirms_only_the_dry_run_it_came_from(tmp_path: Path) -> None:
    async with ReMeApp(store_dir=str(tmp_path)) as app:
        for workspace in ("staging", "prod"):
            await app.async_execute("remember", text="Rotate the API gateway certificate.", tags="ops",
                                    workspace_id=workspace)
        staging = await app.async_execute("forget", tags="ops", workspace_id="staging")
        with pytest.raises(InvalidInput, match="does not match"):
            await app.async_execute("forget", tags="ops", workspace_id="prod", confirm=staging.metadata["confirm"])
        with pytest.raises(InvalidInput, match="does not match"):
            await app.async_execute("forget", query="certificate", workspace_id="staging",
                                    confirm=staging.metadata["confirm"])
        services = await app.services()
        assert services.store.count() == 2


async def test_a_merge_computed_from_memories_changed_since_writes_nothing(tmp_path: Path) -> None:
    async with ReMeApp(store_dir=str(tmp_path)) as app:
        a = await app.async_execute("remember", text="Backups run at 02:00.")
        b = await app.async_execute("remember", text="backups run at 02:00")
        services = await app.services()
        read = [services.store.get("default", m.metadata["memory"]["id"]) for m in (a, b)]
        await app.async_execute("forget", memory_id=read[0].id)  # another process, in the meantime
        vector = services.embedder.encode([read[1].text])[0]
        assert not services.store.merge(read[1], vector, services.embedder.embedding(), read)
        assert services.store.get("default", read[0].id) is None  # not written back as an alias
        assert services.store.count() == 1


X = "Zbigniew Kowalczyk"


def store_bytes(store: Path) -> bytes:
    return store_contents(store)


async def test_forget_everything_about_someone_leaves_no_trace(tmp_path: Path) -> None:
    reply = {"facts": [{"content": f"The user's landlord is {X}.", "tags": ["landlord"]}]}
    with OpenAIStub() as stub:
        stub.default = Reply(content=json.dumps(reply))
        async with ReMeApp(store_dir=str(tmp_path), llm__default__base_url=stub.url, llm__default__api_key="k",
                           llm__default__timeout=5) as app:
            episodes = [{"text": f"{X} fixed the boiler on Monday.", "keywords": ["boiler"]},
                        {"text": f"Rent goes to {X.upper()} by the 5th.", "keywords": ["rent"]},
                        {"text": "The boiler is a Vaillant ecoTEC.", "keywords": ["boiler"]},
                        {"text": "Rent is 900 euros a month.", "keywords": ["rent"]}]
            await app.async_execute("train_memory", episodes=episodes)
            await app.async_execute("remember", text="Call the landlord about the leak.",
                                    metadata={"contact": X})
            await app.async_execute("summary_personal_memory", trajectories=[
                {"messages": [{"role": "user", "content": f"My landlord is {X}."}]}])
            messages = long_trajectory(results=3, lines_per_result=300, planted={0: f"owner: {X}"})
            compacted = await app.async_execute("summary_working_memory", messages=messages,
                                                working_summary_mode="compact", keep_recent_count=1)
            assert compacted.metadata["files"]
            await app.async_execute("add_tool_call_result", tool_call_results=[
                {"tool_name": "send_email", "input": {"to": X}, "output": "sent", "success": True}])
            assert X.encode() in store_bytes(tmp_path)

            preview = await app.async_execute("forget", about="zbigniew kowalczyk")
            meta = preview.metadata
            assert len(meta["memories"]) == 4 and meta["tool_calls"] == 1 and len(meta["working_files"]) == 1
            done = await app.async_execute("forget", about="zbigniew kowalczyk", confirm=meta["confirm"])
            assert "gone" in done.answer

            services = await app.services()
            store = services.store
            assert store.lexical("default", '"kowalczyk"', 10) == []
            plain, cells = services.dense.spaces("default")
            survivors = store.fetch([int(r) for r in plain.rowids])
            assert sorted(m.text for m in survivors.values()) == ["Rent is 900 euros a month.",
                                                                  "The boiler is a Vaillant ecoTEC."]
            assert set(store.cell_keys("default")) <= set(survivors)
            assert store.tool_call_records("default") == []
            assert not (tmp_path / "working" / "default" / meta["working_files"][0]).exists()
            raw = store_bytes(tmp_path).lower()
            assert b"kowalczyk" not in raw and b"zbigniew" not in raw
            assert (await ids(app, "who fixed the boiler", top_k=1)) != []  # the rest still works


async def test_lifecycle_over_mcp(tmp_path: Path) -> None:
    async with mcp_stdio(tmp_path) as session:
        tools = {t.name for t in (await session.list_tools()).tools}
        assert {"consolidate", "forget"} <= tools
        for text in ("Standup moved to 09:30.", "standup moved to 09:30", "Retro is on Fridays."):
            await session.call_tool("remember", {"text": text, "tags": "team", "ttl": "30d"})
        found = await session.call_tool("recall", {"query": "standup", "tags": ["team"], "after": "1h"})
        assert not found.is_error and found.structured_content["memories"][0]["tags"] == ["team"]
        bad = await session.call_tool("recall", {"query": "standup", "after": "next blue moon"})
        assert bad.is_error and "not a time" in bad.content[0].text
        merged = await session.call_tool("consolidate", {"dry_run": False})
        assert len(merged.structured_content["merges"]) == 1
        preview = await session.call_tool("forget", {"tags": "team"})
        assert preview.structured_content["dry_run"] and len(preview.structured_content["memories"]) == 2
        done = await session.call_tool("forget", {"tags": "team", "confirm": preview.structured_content["confirm"]})
        assert not done.is_error and not done.structured_content["dry_run"]
