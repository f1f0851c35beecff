"""Working memory from Python: offload a long agent run, then get every fact back with grep and read."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from openai_stub import OpenAIStub, Reply
from reme_mcp import InvalidInput, NotFound, ReMeApp
from reme_mcp.errors import LLMFailed, LLMUnavailable
from trajectories import answered, long_trajectory

pytestmark = pytest.mark.anyio

FACT = "2026-11-20T02:41:07.113Z ERROR [worker-07] warehouse-db-07 refused the connection: max_connections=240 reached"
SNAPSHOT = json.dumps({
    "goal": "Find why the nightly ETL job failed and propose a fix.",
    "key_knowledge": ["warehouse-db-07 hit max_connections=240 at 02:41"],
    "recent_actions": ["searched the web", "read logs/etl-006.log"],
    "open_items": ["propose a pool size"],
})


def run() -> list[dict]:
    """About 70k tokens: 12 tool results of ~5.6k tokens, the fact hidden in the seventh."""
    return long_trajectory(results=12, lines_per_result=280, planted={6: FACT})


def with_llm(stub: OpenAIStub, store: Path, **values: object) -> ReMeApp:
    return ReMeApp(
        store_dir=str(store), llm__default__base_url=stub.url, llm__default__api_key="test-key",
        llm__default__timeout=1, llm__default__max_retries=1, **values,
    )


async def test_auto_compaction_fits_the_budget_and_grep_read_bring_the_fact_back(tmp_path: Path) -> None:
    messages = run()
    async with ReMeApp(store_dir=str(tmp_path)) as app:
        result = await app.async_execute("summary_working_memory", messages=messages, chat_id="etl-incident")
        meta = result.metadata
        assert meta["tokens_before"] > 60_000
        assert meta["tokens_after"] <= 20_000 and meta["compacted"] and not meta["compressed"]
        assert answered(meta["messages"])
        # only tool contents changed; calls, ids and the recent part are as they were
        assert len(meta["messages"]) == len(messages)
        for old, new in zip(messages, meta["messages"]):
            assert {k: v for k, v in old.items() if k != "content"} == {k: v for k, v in new.items() if k != "content"}
        assert meta["messages"][-4:] == messages[-4:]
        assert all(f["file"].startswith("etl-incident/") for f in meta["files"])

        found = await app.async_execute("grep_working_memory", pattern="max_connections=240", chat_id="etl-incident")
        [match] = found.metadata["matches"]
        assert match["text"] == FACT
        assert f"{match['file']}:{match['line']}:{FACT}" in found.answer

        page = await app.async_execute("read_working_memory", file=match["file"], offset=match["line"] - 1, limit=1)
        assert page.metadata["content"] == FACT + "\n"
        # every offloaded result reads back byte-exact, whole
        originals = {m["tool_call_id"]: m["content"] for m in messages if m["role"] == "tool"}
        for entry in meta["files"]:
            whole = await app.async_execute("read_working_memory", file=entry["file"], limit=5000)
            assert whole.metadata["content"] == originals[entry["tool_call_id"]]
            assert (tmp_path / "working" / "default" / entry["file"]).read_bytes() == originals[entry["tool_call_id"]].encode()


async def test_a_short_list_is_left_alone(tmp_path: Path) -> None:
    messages = run()[:4]
    async with ReMeApp(store_dir=str(tmp_path)) as app:
        result = await app.async_execute("summary_working_memory", messages=messages)
    assert result.metadata["messages"] == messages and result.metadata["files"] == []
    assert "nothing changed" in result.answer and result.metadata["chat_id"].startswith("chat-")


async def test_the_recent_part_keeps_its_tool_call_with_its_results(tmp_path: Path) -> None:
    messages = long_trajectory(results=6, lines_per_result=400)[:-2]  # ends on tool results
    async with ReMeApp(store_dir=str(tmp_path)) as app:
        result = await app.async_execute(
            "summary_working_memory", messages=messages, working_summary_mode="compact", keep_recent_count=1
        )
    new = result.metadata["messages"]
    assert answered(new)
    last_call = max(i for i, m in enumerate(messages) if m.get("tool_calls"))
    assert new[last_call:] == messages[last_call:]  # the whole last unit is recent, untouched
    assert 0 < len(result.metadata["files"]) < 6


async def test_reusing_a_chat_id_adds_files_and_never_replaces_one(tmp_path: Path) -> None:
    async with ReMeApp(store_dir=str(tmp_path)) as app:
        first = await app.async_execute("summary_working_memory", messages=run(), chat_id="same")
        before = {f["file"]: (tmp_path / "working" / "default" / f["file"]).read_bytes() for f in first.metadata["files"]}
        second = await app.async_execute(
            "summary_working_memory", messages=long_trajectory(results=12, lines_per_result=280, seed=99), chat_id="same"
        )
    again = {f["file"] for f in second.metadata["files"]}
    assert again and not again & set(before)
    for name, data in before.items():
        assert (tmp_path / "working" / "default" / name).read_bytes() == data


async def test_grep_plain_regex_case_context_and_limit(tmp_path: Path) -> None:
    async with ReMeApp(store_dir=str(tmp_path)) as app:
        await app.async_execute("summary_working_memory", messages=run(), chat_id="c1")
        plain = await app.async_execute("grep_working_memory", pattern="MAX_CONNECTIONS=240", chat_id="c1")
        assert len(plain.metadata["matches"]) == 1
        strict = await app.async_execute(
            "grep_working_memory", pattern="MAX_CONNECTIONS=240", chat_id="c1", case_sensitive=True
        )
        assert strict.metadata["matches"] == [] and "No match" in strict.answer
        literal = await app.async_execute("grep_working_memory", pattern="max_connections=2.0", chat_id="c1")
        assert literal.metadata["matches"] == []  # plain text: '.' is a dot
        pattern = r"max_connections=\d{3} reached$"
        regex = await app.async_execute("grep_working_memory", pattern=pattern, chat_id="c1", regex=True)
        assert [m["text"] for m in regex.metadata["matches"]] == [FACT]
        context = await app.async_execute(
            "grep_working_memory", pattern="max_connections=240", chat_id="c1", context_lines=2
        )
        [match] = context.metadata["matches"]
        assert len(match["before"]) == 2 and len(match["after"]) == 2
        page = await app.async_execute("read_working_memory", file=match["file"], offset=match["line"] - 3, limit=5)
        assert page.metadata["content"].split("\n")[:5] == [*match["before"], FACT, *match["after"]]
        many = await app.async_execute("grep_working_memory", pattern="ERROR", chat_id="c1", limit=3)
        assert len(many.metadata["matches"]) == 3 and many.metadata["truncated"]
        with pytest.raises(InvalidInput, match="not a valid regular expression"):
            await app.async_execute("grep_working_memory", pattern="max_conn(", chat_id="c1", regex=True)
        with pytest.raises(NotFound, match="No offloaded files for chat 'nope'"):
            await app.async_execute("grep_working_memory", pattern="x", chat_id="nope")


async def test_a_runaway_regex_is_stopped_with_advice(tmp_path: Path) -> None:
    messages = [{"role": "user", "content": "go"},
                {"role": "assistant", "content": "", "tool_calls": [{"id": "c", "type": "function", "function": {"name": "t", "arguments": "{}"}}]},
                {"role": "tool", "tool_call_id": "c", "content": "a" * 30_000 + "!"},
                {"role": "assistant", "content": "done"}]
    async with ReMeApp(store_dir=str(tmp_path)) as app:
        await app.async_execute(
            "summary_working_memory", messages=messages, chat_id="redos", max_total_tokens=100, keep_recent_count=1
        )
        with pytest.raises(InvalidInput, match="took longer than"):
            await app.async_execute("grep_working_memory", pattern="(a|aa)+$", chat_id="redos", regex=True)


async def test_read_pages_by_line_and_says_what_is_left(tmp_path: Path) -> None:
    async with ReMeApp(store_dir=str(tmp_path)) as app:
        result = await app.async_execute("summary_working_memory", messages=run(), chat_id="pages")
        entry = result.metadata["files"][0]
        name, total = entry["file"], entry["lines"]
        page = await app.async_execute("read_working_memory", file=name)
        assert page.metadata["total_lines"] == total > 200
        assert page.answer.splitlines()[0].startswith("     1\t")
        assert page.answer.splitlines()[-1] == (
            f"[{total - 200} more line(s): read_working_memory(file='{name}', offset=200)]"
        )
        rest = await app.async_execute("read_working_memory", file=name, offset=200)
        assert len(rest.metadata["content"].splitlines()) == total - 200 and "more line" not in rest.answer


@pytest.mark.parametrize(
    ("arguments", "error"),
    [
        ({"chat_id": "../outside"}, "chat_id"),
        ({"chat_id": "a/b"}, "chat_id"),
        ({"store_dir": "/etc"}, "is absolute"),
        ({"store_dir": "../.."}, "is not allowed"),
        ({"store_dir": "ok/../../x"}, "is not allowed"),
    ],
)
async def test_paths_outside_the_store_are_refused(tmp_path: Path, arguments: dict, error: str) -> None:
    async with ReMeApp(store_dir=str(tmp_path / "store")) as app:
        with pytest.raises(InvalidInput, match=error):
            await app.async_execute("summary_working_memory", messages=run(), **arguments)
    assert not (tmp_path / "outside").exists() and not (tmp_path / "x").exists()


async def test_files_outside_the_store_cannot_be_read_or_written(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("password=hunter2\n")
    store = tmp_path / "store"
    async with ReMeApp(store_dir=str(store)) as app:
        for file in ("../secret.txt", str(secret), "../../secret.txt", "..\\secret.txt", "../memory.sqlite3"):
            with pytest.raises(InvalidInput):
                await app.async_execute("read_working_memory", file=file)
        # a symlink planted inside the working directory does not lead out of it
        (store / "working" / "default" / "c").mkdir(parents=True)
        os.symlink(secret, store / "working" / "default" / "c" / "0001-link.txt")
        os.symlink(tmp_path, store / "working" / "default" / "escape")
        os.symlink(tmp_path, store / "working" / "elsewhere")  # a workspace's own folder as the way out
        with pytest.raises(InvalidInput, match="leads outside the store"):
            await app.async_execute("read_working_memory", file="secret.txt", workspace_id="elsewhere")
        with pytest.raises(InvalidInput, match="outside the working-memory directory"):
            await app.async_execute("read_working_memory", file="c/0001-link.txt")
        with pytest.raises(InvalidInput, match="outside the working-memory directory"):
            await app.async_execute("summary_working_memory", messages=run(), chat_id="x", store_dir="escape")
        found = await app.async_execute("grep_working_memory", pattern="hunter2")
        assert found.metadata["matches"] == []
        # a tool_call_id that names a path is refused before anything is written
        messages = run()
        messages[2]["tool_calls"][0]["id"] = messages[3]["tool_call_id"] = "../../evil"
        with pytest.raises(InvalidInput, match="tool_call_id '../../evil'"):
            await app.async_execute("summary_working_memory", messages=messages, chat_id="evil")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["secret.txt", "store"]


async def test_invalid_messages_are_refused_by_field(tmp_path: Path) -> None:
    async with ReMeApp(store_dir=str(tmp_path)) as app:
        with pytest.raises(InvalidInput, match="'messages.0.role'"):
            await app.async_execute("summary_working_memory", messages=[{"role": "robot", "content": "hi"}])
        with pytest.raises(InvalidInput, match="tool_call_id"):
            await app.async_execute("summary_working_memory", messages=[{"role": "tool", "content": "hi"}])


async def test_compress_replaces_older_turns_by_a_snapshot_that_points_to_the_originals(tmp_path: Path) -> None:
    messages = run()
    with OpenAIStub() as stub:
        stub.default = Reply(content=SNAPSHOT)
        async with with_llm(stub, tmp_path) as app:
            result = await app.async_execute(
                "summary_working_memory", messages=messages, working_summary_mode="compress", chat_id="cz"
            )
            meta = result.metadata
            [transcript] = meta["files"]
            assert transcript["kind"] == "transcript" and meta["compressed"]
            new = meta["messages"]
            assert new[0] == messages[0] and new[-4:] == messages[-4:] and len(new) == 6 and answered(new)
            assert "Goal: Find why the nightly ETL job failed" in new[1]["content"]
            assert transcript["file"] in new[1]["content"] and meta["tokens_after"] < meta["tokens_before"] / 10
            found = await app.async_execute("grep_working_memory", pattern="max_connections=240", file=transcript["file"])
            assert found.metadata["matches"][0]["text"] == FACT
    [request] = stub.chat_requests
    assert request["messages"][0]["role"] == "system" and FACT in request["messages"][1]["content"]


async def test_compress_in_groups_sends_one_request_per_group(tmp_path: Path) -> None:
    with OpenAIStub() as stub:
        stub.default = Reply(content=SNAPSHOT)
        async with with_llm(stub, tmp_path) as app:
            result = await app.async_execute(
                "summary_working_memory", messages=run(), working_summary_mode="compress", group_token_threshold=20_000
            )
    groups = [f for f in result.metadata["files"] if f["kind"] == "transcript"]
    assert len(groups) == len(stub.chat_requests) >= 3
    assert answered(result.metadata["messages"])


async def test_auto_compresses_what_compaction_left_when_it_was_not_enough(tmp_path: Path) -> None:
    messages = run()
    with OpenAIStub() as stub:
        stub.default = Reply(content=SNAPSHOT)
        async with with_llm(stub, tmp_path) as app:
            result = await app.async_execute("summary_working_memory", messages=messages, max_total_tokens=3_000)
    meta = result.metadata
    assert meta["compacted"] and meta["compressed"] and meta["tokens_after"] <= 3_000
    kinds = [f["kind"] for f in meta["files"]]
    assert kinds.count("transcript") == 1 and kinds.count("tool_result") >= 10
    # the LLM saw the compacted list: pointers, not 70k tokens of logs
    assert "offloaded to working memory" in stub.chat_requests[0]["messages"][1]["content"]


@pytest.mark.parametrize(
    ("replies", "reason"),
    [
        ([Reply(content="Sure! Here is a summary of what happened.")] * 2, "not the JSON asked for"),
        ([Reply(content='{"goal": 3, "key_knowledge": {}}')] * 2, "not the JSON asked for"),
        ([Reply(status=500)] * 2, "HTTP 500"),
        ([Reply(delay=2.5)] * 2, "no answer within 1 s"),
    ],
    ids=["prose", "wrong-shape", "error-500", "timeout"],
)
async def test_auto_keeps_the_compaction_when_the_llm_fails(tmp_path: Path, replies: list[Reply], reason: str) -> None:
    with OpenAIStub() as stub:
        stub.replies.extend(replies)
        async with with_llm(stub, tmp_path) as app:
            result = await app.async_execute("summary_working_memory", messages=run(), max_total_tokens=3_000)
            with pytest.raises(LLMFailed, match=reason):
                stub.replies.extend(replies)
                await app.async_execute(
                    "summary_working_memory", messages=run(), working_summary_mode="compress", max_total_tokens=3_000
                )
    meta = result.metadata
    assert meta["compacted"] and not meta["compressed"] and answered(meta["messages"])
    assert any("Compression did not run" in note and reason in note for note in meta["notes"])
    assert len(stub.chat_requests) == 4  # one retry each time, then it gives up


async def test_fenced_json_is_accepted(tmp_path: Path) -> None:
    with OpenAIStub() as stub:
        stub.replies.append(Reply(content=f"Here you go:\n```json\n{SNAPSHOT}\n```\n"))
        async with with_llm(stub, tmp_path) as app:
            result = await app.async_execute("summary_working_memory", messages=run(), working_summary_mode="compress")
    assert result.metadata["compressed"] and len(stub.chat_requests) == 1


async def test_without_an_llm_compact_works_and_compress_says_what_to_set(tmp_path: Path) -> None:
    async with ReMeApp(store_dir=str(tmp_path)) as app:
        auto = await app.async_execute("summary_working_memory", messages=run(), max_total_tokens=3_000)
        assert auto.metadata["compacted"] and not auto.metadata["compressed"]
        assert "FLOW_LLM_BASE_URL" in auto.answer
        with pytest.raises(LLMUnavailable, match="FLOW_LLM_BASE_URL.*FLOW_LLM_API_KEY"):
            await app.async_execute("summary_working_memory", messages=run(), working_summary_mode="compress")


async def test_odd_but_valid_input_gets_an_answer_or_a_clear_error(tmp_path: Path) -> None:
    call = {"id": "call: 1", "type": "function", "function": {"name": "shot", "arguments": {"url": "x"}}}
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}
    messages = [
        {"role": "user", "content": "look \U0001f600 here"},  # outside the BMP: a surrogate pair in JSON
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call: 1", "content": [{"type": "text", "text": "line\r\n" * 3000}, image]},
        {"role": "tool", "tool_call_id": "call: 1", "content": "small"},
        {"role": "assistant", "content": "done"},
    ]
    async with ReMeApp(store_dir=str(tmp_path)) as app:
        result = await app.async_execute(
            "summary_working_memory", messages=messages, max_total_tokens=10, keep_recent_count=1,
            max_tool_message_tokens=1,
        )
        new = result.metadata["messages"]
        assert new[2]["content"][1] == image and "offloaded" in new[2]["content"][0]["text"]  # the image stays
        assert new[3]["content"] == "small"  # a pointer would be bigger than the result
        [entry] = result.metadata["files"]
        page = await app.async_execute("read_working_memory", file=entry["file"], limit=5000)
        assert page.metadata["content"] == "line\r\n" * 3000
        with pytest.raises(InvalidInput, match="not a valid regular expression"):
            await app.async_execute("grep_working_memory", pattern="(?V1)a", regex=True)
        with pytest.raises(InvalidInput, match="is not allowed"):
            await app.async_execute("summary_working_memory", messages=messages, store_dir="abc\n")
        # A lone surrogate is valid JSON syntax but no text: it could be neither written as UTF-8 nor sent back
        lone = [{**messages[0], "content": "look \ud800 here"}, *messages[1:]]
        with pytest.raises(InvalidInput, match="'messages.0.content' contains a lone surrogate"):
            await app.async_execute("summary_working_memory", messages=lone)


def test_json_is_found_in_the_ways_models_answer() -> None:
    from reme_mcp.models.llm import extract_json

    assert extract_json('Here: {"goal": "x"} Note: use {placeholders} next time.') == {"goal": "x"}
    assert extract_json('```json\n{"a": 1}\n```') == {"a": 1}
    with pytest.raises(ValueError, match="no JSON object"):
        extract_json("I could not do it {sorry}.")


async def test_each_workspace_has_its_own_working_memory(tmp_path: Path) -> None:
    async with ReMeApp(store_dir=str(tmp_path)) as app:
        alice = await app.async_execute(
            "summary_working_memory", messages=run(), chat_id="incident", workspace_id="alice", max_total_tokens=5000
        )
        name = alice.metadata["files"][0]["file"]
        # the pointer left in the message names the workspace, so the agent can follow it
        assert any(f'workspace_id="alice", file="{name}"' in str(m["content"]) for m in alice.metadata["messages"])
        mine = await app.async_execute("grep_working_memory", pattern="max_connections=240", workspace_id="alice")
        assert len(mine.metadata["matches"]) == 1
        for other in ("bob", None):
            found = await app.async_execute("grep_working_memory", pattern="max_connections=240", workspace_id=other)
            assert found.metadata["matches"] == [] and found.metadata["files_searched"] == 0
            with pytest.raises(NotFound):
                await app.async_execute("read_working_memory", file=name, workspace_id=other)
            with pytest.raises(NotFound):
                await app.async_execute("grep_working_memory", pattern="x", chat_id="incident", workspace_id=other)
        await app.async_execute("remember", text="Bob's note", workspace_id="bob")
        dry = await app.async_execute("forget", about="warehouse-db-07", workspace_id="bob")
        assert dry.metadata["working_files"] == []
        assert (await app.async_execute("read_working_memory", file=name, workspace_id="alice")).metadata["content"]


async def test_files_offloaded_before_workspaces_belong_to_the_default_one(tmp_path: Path) -> None:
    legacy = tmp_path / "working_memory" / "old-chat"
    legacy.mkdir(parents=True)
    (legacy / "0001-call_1.txt").write_text("the deploy key is in vault/prod\n")
    async with ReMeApp(store_dir=str(tmp_path)) as app:
        page = await app.async_execute("read_working_memory", file="old-chat/0001-call_1.txt")
        assert page.metadata["content"] == "the deploy key is in vault/prod\n"
    assert not (tmp_path / "working_memory").exists()
