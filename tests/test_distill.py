"""Learning from agent runs, against a scripted OpenAI-compatible server on loopback and the real embedding model."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from conftest import store_rows
from openai_stub import OpenAIStub, Reply

from reme_mcp import ReMeApp
from reme_mcp.errors import InvalidInput, LLMFailed, LLMUnavailable
from reme_mcp.store.sqlite import SCHEMA_VERSION

pytestmark = pytest.mark.anyio


def run(task: str, steps: list[tuple[str, str]], score: float | None, task_id: str = "t1") -> dict:
    """A trajectory: the user's task, then (tool call, tool result) pairs, then a final answer."""
    messages: list[dict] = [{"role": "user", "content": task}]
    for n, (arguments, result) in enumerate(steps):
        call = {"id": f"call_{task_id}_{n}", "type": "function", "function": {"name": "run_sql", "arguments": arguments}}
        messages += [{"role": "assistant", "content": "", "tool_calls": [call]},
                     {"role": "tool", "tool_call_id": call["id"], "content": result}]
    messages.append({"role": "assistant", "content": "Done."})
    return {"messages": messages, "score": score, "task_id": task_id}


GOOD = run("Count last week's orders per region from the warehouse.",
           [('{"sql": "SELECT region, count(*) FROM orders WHERE ts > now() - interval \'7 days\' GROUP BY 1"}',
             "region | count\nEU | 1204\nUS | 2210")], 1.0)
BAD = run("Count last week's orders per region from the warehouse.",
          [('{"sql": "SELECT * FROM orders"}', "Error: query exceeded the 30 s statement timeout")], 0.0, "t2")
LESSONS = {"memories": [
    {"when_to_use": "Aggregating a large warehouse table such as orders by a column",
     "content": "Filter by time and GROUP BY in SQL; never SELECT * a large table and count in Python.",
     "kind": "comparison", "tags": ["sql", "warehouse"], "confidence": 0.9},
    {"when_to_use": "A warehouse query fails with a statement timeout",
     "content": "Add a time filter on ts and aggregate in the database instead of fetching rows.",
     "kind": "pitfall", "tags": "sql, timeout", "confidence": 0.8},
]}


def chat(user_says: str, time: str) -> dict:
    return {"messages": [{"role": "user", "content": user_says}, {"role": "assistant", "content": "Noted."}],
            "metadata": {"time": time}}


@pytest.fixture
async def stub() -> AsyncIterator[OpenAIStub]:
    with OpenAIStub() as server:
        yield server


def app_for(stub: OpenAIStub, store: Path) -> ReMeApp:
    return ReMeApp(
        store_dir=str(store), llm__default__base_url=stub.url, llm__default__api_key="test-key",
        llm__default__timeout=1, llm__default__max_retries=1,
    )


def answer(payload: dict) -> Reply:
    return Reply(content=json.dumps(payload))


async def test_lessons_from_a_good_and_a_bad_run_come_back_for_a_new_task(stub: OpenAIStub, tmp_path: Path) -> None:
    stub.replies.append(answer(LESSONS))
    async with app_for(stub, tmp_path) as app:
        learned = await app.async_execute("summarize_trajectory", trajectories=[GOOD, BAD], kind="task")
        stored = learned.metadata["stored"]
        assert [m["memory_type"] for m in stored] == ["task", "task"]
        assert stored[0]["metadata"]["when_to_use"] == LESSONS["memories"][0]["when_to_use"]
        assert stored[1]["keywords"] == ["sql", "timeout"]
        prompt = stub.chat_requests[0]["messages"][1]["content"]
        assert "succeeded (score 1)" in prompt and "failed (score 0)" in prompt and "statement timeout" in prompt

        found = await app.async_execute(
            "retrieve_task_memory", query="sum monthly revenue by country from the warehouse sales table", top_k=2
        )
        assert found.metadata["memories"][0]["id"] == stored[0]["id"]
        assert "When to use: Aggregating a large warehouse table" in found.answer
        # recall sees distilled memories too, and filters by type
        await app.async_execute("remember", text="We moved the warehouse to a new region last spring.")
        both = await app.async_execute("recall", query="warehouse", top_k=10)
        assert {m["memory_type"] for m in both.metadata["memories"]} == {"task", "episode"}
        episodes = await app.async_execute("recall", query="warehouse", top_k=10, memory_type="episode")
        assert [m["memory_type"] for m in episodes.metadata["memories"]] == ["episode"]


async def test_a_lesson_already_known_is_not_stored_twice(stub: OpenAIStub, tmp_path: Path) -> None:
    again = {"memories": [
        {**LESSONS["memories"][0]},
        {**LESSONS["memories"][0], "content": LESSONS["memories"][0]["content"].replace("never", "do not")},
    ]}
    stub.replies.extend([answer(LESSONS), answer(again)])
    async with app_for(stub, tmp_path) as app:
        first = await app.async_execute("summary_task_memory", trajectories=[GOOD, BAD])
        second = await app.async_execute("summary_task_memory", trajectories=[GOOD])
        everything = await app.async_execute("recall", query="warehouse sql", top_k=20, memory_type="task")
    assert second.metadata["stored"] == []
    assert {d["duplicate_of"] for d in second.metadata["duplicates"]} == {first.metadata["stored"][0]["id"]}
    assert len(everything.metadata["memories"]) == 2


async def test_a_contradicting_fact_supersedes_the_old_one_and_a_repeat_is_skipped(
    stub: OpenAIStub, tmp_path: Path
) -> None:
    async with app_for(stub, tmp_path) as app:
        stub.replies.append(answer({"facts": [
            {"content": "The user lives in Berlin.", "stated_at": "2025-03-01T09:00:00Z", "tags": ["home"]},
            {"content": "The user prefers answers in German.", "tags": ["language"]},
        ]}))
        first = await app.async_execute(
            "summary_personal_memory", trajectories=[chat("I live in Berlin. Answer me in German.", "2025-03-01T09:00:00Z")]
        )
        berlin, german = first.metadata["stored"]
        assert german["metadata"]["valid_from"] == "2025-03-01T09:00:00+00:00"  # from the conversation time

        stub.replies.append(answer({"facts": [
            {"content": "The user lives in Munich.", "stated_at": "2026-10-02T18:30:00Z", "supersedes": [berlin["id"]]},
            {"content": "The user prefers answers in German.", "supersedes": []},
            {"content": "The user has a dog.", "supersedes": ["no-such-id"]},
        ]}))
        second = await app.async_execute(
            "summarize_trajectory", kind="personal",
            trajectories=[chat("We moved to Munich last week. Still German, please. Also, my dog says hi.",
                               "2026-10-02T18:30:00Z")],
        )
        prompt = stub.chat_requests[-1]["messages"][1]["content"]
        assert f"[{berlin['id']}] The user lives in Berlin." in prompt  # the LLM saw what is known, with ids

        meta = second.metadata
        assert [m["text"] for m in meta["stored"]] == ["The user lives in Munich.", "The user has a dog."]
        assert [d["duplicate_of"] for d in meta["duplicates"]] == [german["id"]]
        [retired] = meta["superseded"]
        assert retired["id"] == berlin["id"] and retired["valid_to"] == "2026-10-02T18:30:00+00:00"
        assert any("no-such-id" in note for note in meta["notes"])

        home = await app.async_execute("retrieve_personal_memory", query="where does the user live?", top_k=5)
        texts = [m["text"] for m in home.metadata["memories"]]
        assert "The user lives in Munich." in texts and "The user lives in Berlin." not in texts
    [row] = store_rows(tmp_path, "SELECT status, metadata FROM memories WHERE id = ?", (berlin["id"],))
    assert row[0] == "superseded"  # kept, with its validity, not deleted
    assert json.loads(row[1])["superseded_by"] == meta["stored"][0]["id"]


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        (Reply(content="Here are the lessons: use filters."), "not the JSON asked for"),
        (Reply(content='{"memories": [{"when_to_use": "x"}]}'), "not the JSON asked for"),
        (Reply(status=500), "HTTP 500"),
        (Reply(delay=2.5), "no answer within 1 s"),
    ],
    ids=["prose", "missing-field", "error-500", "timeout"],
)
async def test_an_unusable_llm_answer_is_retried_then_a_failure_that_stores_nothing(
    stub: OpenAIStub, tmp_path: Path, reply: Reply, reason: str
) -> None:
    stub.replies.extend([reply, reply])
    async with app_for(stub, tmp_path) as app:
        with pytest.raises(LLMFailed, match=reason):
            await app.async_execute("summarize_trajectory", trajectories=[GOOD, BAD], kind="task")
        left = await app.async_execute("recall", query="warehouse orders sql", top_k=10)
    assert len(stub.chat_requests) == 2 and left.metadata["memories"] == []


async def test_fenced_json_and_a_retry_after_a_500_succeed(stub: OpenAIStub, tmp_path: Path) -> None:
    stub.replies.extend([Reply(status=500), Reply(content=f"Sure.\n```json\n{json.dumps(LESSONS)}\n```")])
    async with app_for(stub, tmp_path) as app:
        learned = await app.async_execute("summary_task_memory", trajectories=[GOOD])
    assert len(learned.metadata["stored"]) == 2


async def test_tool_statistics_are_counted_and_the_guideline_is_written_by_the_llm(
    stub: OpenAIStub, tmp_path: Path
) -> None:
    calls = [
        {"tool_name": "web_search", "input": {"q": "pgvector hnsw"}, "output": "10 results", "success": True,
         "time_cost": 1.0, "token_cost": 100},
        {"tool_name": "web_search", "input": {"q": ""}, "output": "Error: empty query", "success": False,
         "time_cost": 0.5, "token_cost": 20},
        {"tool_name": "web_search", "input": {"q": "sqlite wal"}, "output": "8 results", "success": True,
         "time_cost": 1.5, "token_cost": 120},
        {"tool_name": "read_file", "input": {"path": "a.txt"}, "output": "hello", "success": True},
    ]
    stub.replies.append(answer({"guideline": "Good for docs lookups; never send an empty q (it errors)."}))
    async with app_for(stub, tmp_path) as app:
        added = await app.async_execute("add_tool_call_result", tool_call_results=calls, workspace_id="agent-1")
        search_stats = added.metadata["tools"][0]["stats"]
        assert added.metadata["added"] == 4
        assert search_stats == {"tool_name": "web_search", "calls": 3, "successes": 2, "success_rate": 0.6667,
                                "avg_time_cost": 1.0, "avg_token_cost": 80.0}
        assert added.metadata["tools"][1]["stats"]["avg_token_cost"] > 0  # counted when not given
        summary = await app.async_execute("summary_tool_memory", tool_names="web_search", workspace_id="agent-1")
        assert "ERR input={\"q\": \"\"}" in stub.chat_requests[0]["messages"][1]["content"]  # failures shown first
        looked_up = await app.async_execute(
            "retrieve_tool_memory", tool_names=["web_search", "read_file"], workspace_id="agent-1"
        )
    [tool] = summary.metadata["tools"]
    assert tool["guideline"].startswith("Good for docs lookups") and tool["memory_id"] == "tool:web_search"
    search, read = looked_up.metadata["tools"]
    assert search["guideline"] == tool["guideline"] and search["stats"]["calls"] == 3
    assert read["guideline"] is None and "no guideline yet" in looked_up.answer
    assert len(stub.chat_requests) == 1  # statistics never needed the LLM


async def test_auto_learns_lessons_facts_and_tool_behaviour_from_runs(stub: OpenAIStub, tmp_path: Path) -> None:
    stub.replies.extend([
        answer(LESSONS),
        answer({"facts": [{"content": "The user works on the warehouse team."}]}),
        answer({"guideline": "Aggregate in SQL with a time filter; unfiltered scans time out."}),
    ])
    good = {**GOOD, "messages": [{"role": "user", "content": "I'm on the warehouse team."}, *GOOD["messages"]]}
    async with app_for(stub, tmp_path) as app:
        learned = await app.async_execute("summarize_trajectory", trajectories=[good, BAD])
    meta = learned.metadata
    assert sorted(m["memory_type"] for m in meta["stored"]) == ["personal", "task", "task"]
    [run_sql] = meta["tools"]
    assert run_sql["stats"]["calls"] == 2 and run_sql["stats"]["success_rate"] == 0.5  # "Error: ..." counted as failed


async def test_auto_reports_a_kind_that_failed_next_to_what_was_stored(stub: OpenAIStub, tmp_path: Path) -> None:
    stub.replies.extend([answer(LESSONS), Reply(status=500), Reply(status=500)])
    async with app_for(stub, tmp_path) as app:
        learned = await app.async_execute("summarize_trajectory", trajectories=[chat("hi", "2026-01-01T00:00:00Z")])
    assert len(learned.metadata["stored"]) == 2
    assert any(note.startswith("personal memories: summary_personal_memory failed") for note in learned.metadata["notes"])


async def test_without_an_llm_these_flows_say_what_to_set_and_the_rest_works(tmp_path: Path) -> None:
    async with ReMeApp(store_dir=str(tmp_path)) as app:
        for name, arguments in [
            ("summarize_trajectory", {"trajectories": [GOOD]}),
            ("summary_task_memory", {"trajectories": [GOOD]}),
            ("summary_personal_memory", {"trajectories": [GOOD]}),
            ("summary_tool_memory", {"tool_names": "run_sql"}),
        ]:
            with pytest.raises(LLMUnavailable, match="FLOW_LLM_BASE_URL.*FLOW_LLM_API_KEY"):
                await app.async_execute(name, **arguments)
        added = await app.async_execute("add_tool_call_result", tool_call_results=[{"tool_name": "run_sql"}])
        assert added.metadata["tools"][0]["stats"]["calls"] == 1
        with pytest.raises(InvalidInput, match="'trajectories.0.score'"):
            await app.async_execute("summarize_trajectory", trajectories=[{**GOOD, "score": 7}])
        with pytest.raises(InvalidInput, match="'trajectories'"):
            await app.async_execute("summarize_trajectory", trajectories=[])


@pytest.mark.embedded_only  # an old SQLite file's schema
async def test_a_version_1_store_is_upgraded_in_place_and_keeps_its_memories(tmp_path: Path) -> None:
    async with ReMeApp(store_dir=str(tmp_path)) as app:
        stored = await app.async_execute("remember", text="Old memories survive upgrades.")
    db = sqlite3.connect(tmp_path / "memory.sqlite3")  # turn it back into a version-1 store
    db.executescript(
        "ALTER TABLE memories DROP COLUMN memory_type; ALTER TABLE memories DROP COLUMN status;"
        "ALTER TABLE memories DROP COLUMN text_sha256; DROP TRIGGER memories_cells_ad; DROP TABLE cell_keys;"
        "DROP TABLE cell_models; DROP TABLE tool_calls; UPDATE meta SET value = '1' WHERE key = 'schema_version';"
    )
    db.close()
    async with ReMeApp(store_dir=str(tmp_path)) as app:
        found = await app.async_execute("recall", query="upgrades", top_k=1)
    assert found.metadata["memories"][0]["id"] == stored.metadata["memory"]["id"]
    assert found.metadata["memories"][0]["memory_type"] == "episode"
    db = sqlite3.connect(tmp_path / "memory.sqlite3")
    assert db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == (str(SCHEMA_VERSION),)
    assert db.execute("SELECT count(*) FROM memories WHERE text_sha256 = ''").fetchone() == (0,)  # checksummed


async def test_prompts_are_files_and_follow_the_configured_language(stub: OpenAIStub, tmp_path: Path) -> None:
    stub.replies.append(answer({"facts": [{"content": "Пользователь живёт в Казани."}]}))
    async with ReMeApp(store_dir=str(tmp_path), llm__default__base_url=stub.url,
                       llm__default__prompt_language="ru") as app:
        learned = await app.async_execute("summary_personal_memory", trajectories=[chat("Я живу в Казани.", "2026-05-01")])
    system = stub.chat_requests[0]["messages"][0]["content"]
    prompt_file = Path(__file__).parents[1] / "reme_mcp" / "prompts" / "personal_memory.ru.md"
    assert system == prompt_file.read_text(encoding="utf-8").strip()
    assert learned.metadata["stored"][0]["metadata"]["valid_from"] == "2026-05-01T00:00:00+00:00"


async def test_json_schema_mode_sends_the_bounded_answer_schema(stub: OpenAIStub, tmp_path: Path) -> None:
    stub.replies.append(answer(LESSONS))
    async with ReMeApp(store_dir=str(tmp_path), llm__default__base_url=stub.url,
                       llm__default__response_format="json_schema", llm__default__max_tokens=900) as app:
        await app.async_execute("summary_task_memory", trajectories=[GOOD])
    [request] = stub.chat_requests
    schema = request["response_format"]["json_schema"]["schema"]
    assert request["response_format"]["type"] == "json_schema" and request["max_tokens"] == 900
    assert schema["properties"]["memories"]["maxItems"] == 10


async def test_a_fact_stated_again_after_it_was_superseded_becomes_current_again(
    stub: OpenAIStub, tmp_path: Path
) -> None:
    async with app_for(stub, tmp_path) as app:
        stub.replies.append(answer({"facts": [{"content": "The user lives in Berlin.", "tags": ["home"]}]}))
        [berlin] = (await app.async_execute("summary_personal_memory", trajectories=[chat("Berlin", "2024-01-01")])).metadata["stored"]
        stub.replies.append(answer({"facts": [{"content": "The user lives in Munich.", "supersedes": [berlin["id"]]}]}))
        [munich] = (await app.async_execute("summary_personal_memory", trajectories=[chat("Munich", "2025-01-01")])).metadata["stored"]
        stub.replies.append(answer({"facts": [
            {"content": "The user lives in Berlin.", "tags": ["city"], "supersedes": [munich["id"]]},
            {"content": "The user lives in Berlin.", "tags": ["other", "tags"]},  # the same fact, other tags
        ]}))
        back = await app.async_execute("summary_personal_memory", trajectories=[chat("Back in Berlin", "2026-01-01")])
        home = await app.async_execute("retrieve_personal_memory", query="where does the user live", top_k=5)
    assert [m["id"] for m in back.metadata["stored"]] == [berlin["id"]]
    assert back.metadata["stored"][0]["metadata"]["valid_from"] == "2026-01-01T00:00:00+00:00"
    assert [s["id"] for s in back.metadata["superseded"]] == [munich["id"]]
    assert [d["duplicate_of"] for d in back.metadata["duplicates"]] == [berlin["id"]]
    assert [m["text"] for m in home.metadata["memories"]] == ["The user lives in Berlin."]


async def test_an_answer_without_choices_is_retried_then_reported(stub: OpenAIStub, tmp_path: Path) -> None:
    broken = Reply(body={"error": {"message": "upstream overloaded"}})
    stub.replies.extend([broken, broken, answer({"memories": []}), Reply(status=500), Reply(status=500)])
    async with app_for(stub, tmp_path) as app:
        with pytest.raises(LLMFailed, match="no choices"):
            await app.async_execute("summary_task_memory", trajectories=[GOOD])
        # auto: personal answered "nothing", task failed -> a failure, not an empty success
        with pytest.raises(LLMFailed, match="HTTP 500"):
            await app.async_execute("summarize_trajectory", trajectories=[chat("hello", "2026-01-01")])


async def test_odd_tool_calls_are_counted_and_a_resent_run_is_not_counted_twice(
    stub: OpenAIStub, tmp_path: Path
) -> None:
    odd = run("List things.", [("[1, 2]", "one two"), ("not json", "Traceback (most recent call last): ...")], None, "odd")
    odd["messages"][2]["time_cost"] = -3  # nonsense timing is dropped, not fatal
    stub.default = answer({"guideline": "Pass a JSON object, not a list."})
    async with app_for(stub, tmp_path) as app:
        for _ in range(2):
            learned = await app.async_execute("summarize_trajectory", trajectories=[odd], kind="tool")
    [tool] = learned.metadata["tools"]
    assert tool["stats"]["calls"] == 2 and tool["stats"]["successes"] == 1 and tool["stats"]["avg_time_cost"] is None


async def test_a_fact_is_superseded_once_even_when_two_new_facts_name_it(stub: OpenAIStub, tmp_path: Path) -> None:
    async with app_for(stub, tmp_path) as app:
        stub.replies.append(answer({"facts": [{"content": "The user lives in Berlin."}]}))
        [berlin] = (await app.async_execute("summary_personal_memory", trajectories=[chat("Berlin", "2024-01-01")])).metadata["stored"]
        stub.replies.append(answer({"facts": [
            {"content": "The user lives in Munich.", "supersedes": [berlin["id"]]},
            {"content": "The user works in Munich.", "supersedes": [berlin["id"]]},
        ]}))
        moved = await app.async_execute("summary_personal_memory", trajectories=[chat("Munich", "2025-01-01")])
    [retired] = moved.metadata["superseded"]
    assert retired["superseded_by"] == moved.metadata["stored"][0]["id"]
    assert any(f"Ignored supersedes '{berlin['id']}'" in note for note in moved.metadata["notes"])
