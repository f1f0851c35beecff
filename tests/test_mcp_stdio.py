"""The `reme` command as Claude Desktop runs it: MCP over stdio, through the SDK's real client."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from conftest import REME, mcp_stdio, server_env
from openai_stub import OpenAIStub, Reply
from reme_mcp.flows import CORE_TOOLS
from trajectories import answered, long_trajectory

pytestmark = pytest.mark.anyio


def text_of(result) -> str:
    return result.content[0].text


async def test_tools_advertise_schemas_workspace_and_hints(tmp_path: Path) -> None:
    async with mcp_stdio(tmp_path) as session:
        tools = {tool.name: tool for tool in (await session.list_tools()).tools}
    assert set(tools) == CORE_TOOLS
    for tool in tools.values():
        assert tool.output_schema is not None and tool.description
    for name in ("remember", "recall", "forget"):
        assert "workspace_id" in tools[name].input_schema["properties"]
    assert tools["grep_working_memory"].annotations.read_only_hint is True
    assert tools["remember"].input_schema["required"] == ["text"]
    assert tools["recall"].input_schema["properties"]["top_k"]["maximum"] == 100
    assert tools["recall"].annotations.read_only_hint is True
    assert tools["forget"].annotations.destructive_hint is True


async def test_remember_recall_forget(tmp_path: Path) -> None:
    async with mcp_stdio(tmp_path) as session:
        stored = await session.call_tool(
            "remember",
            {"text": "The staging database password rotates every Monday.", "keywords": "staging, password",
             "metadata": {"source": "ops-chat"}},
        )
        assert not stored.is_error, text_of(stored)
        memory_id = stored.structured_content["memory"]["id"]
        assert memory_id in text_of(stored)

        await session.call_tool("remember", {"text": "Bob's favourite editor is Helix."})
        await session.call_tool("remember", {"text": "The team lunch is on Fridays at the noodle bar."})

        again = await session.call_tool(
            "remember", {"text": "The staging database password rotates every Monday.", "keywords": ["staging", "password"]}
        )
        assert again.structured_content == {**again.structured_content, "created": False}
        assert again.structured_content["memory"]["id"] == memory_id

        found = await session.call_tool("recall", {"query": "when does the staging password change?", "top_k": 2})
        assert not found.is_error
        hits = found.structured_content["memories"]
        assert len(hits) == 2
        assert hits[0]["id"] == memory_id
        assert hits[0]["text"] == "The staging database password rotates every Monday."
        assert hits[0]["keywords"] == ["staging", "password"]
        assert hits[0]["metadata"] == {"source": "ops-chat"}
        assert hits[0]["similarity"] > hits[1]["similarity"]
        assert "created_at" in hits[0]
        answer = text_of(found)
        assert answer.startswith(f"Best match: {memory_id} (similarity ")
        assert "Closest matches:" in answer

        gone = await session.call_tool("forget", {"memory_id": memory_id})
        assert not gone.is_error
        after = await session.call_tool("recall", {"query": "staging password", "top_k": 3})
        assert memory_id not in [hit["id"] for hit in after.structured_content["memories"]]

        twice = await session.call_tool("forget", {"memory_id": memory_id})
        assert twice.is_error and memory_id in text_of(twice)


async def test_workspaces_are_isolated(tmp_path: Path) -> None:
    async with mcp_stdio(tmp_path) as session:
        await session.call_tool("remember", {"text": "Project Falcon ships on March 3.", "workspace_id": "alpha"})
        await session.call_tool("remember", {"text": "Project Falcon was cancelled.", "workspace_id": "beta"})
        alpha = await session.call_tool("recall", {"query": "Project Falcon", "top_k": 10, "workspace_id": "alpha"})
        beta = await session.call_tool("recall", {"query": "Project Falcon", "top_k": 10, "workspace_id": "beta"})
        default = await session.call_tool("recall", {"query": "Project Falcon", "top_k": 10})
    assert [h["text"] for h in alpha.structured_content["memories"]] == ["Project Falcon ships on March 3."]
    assert [h["text"] for h in beta.structured_content["memories"]] == ["Project Falcon was cancelled."]
    assert default.structured_content["memories"] == []
    alpha_id = alpha.structured_content["memories"][0]["id"]
    async with mcp_stdio(tmp_path) as session:
        wrong_space = await session.call_tool("forget", {"memory_id": alpha_id, "workspace_id": "beta"})
        assert wrong_space.is_error
        still = await session.call_tool("recall", {"query": "Falcon", "workspace_id": "alpha"})
        assert still.structured_content["memories"][0]["id"] == alpha_id


async def test_memories_survive_a_restart(tmp_path: Path) -> None:
    async with mcp_stdio(tmp_path) as session:
        stored = await session.call_tool("remember", {"text": "Ilya and I crossed the bridge at night.", "keywords": "Ilya, bridge"})
    async with mcp_stdio(tmp_path) as session:
        found = await session.call_tool("recall", {"query": "walking on a bridge with Ilya", "top_k": 1})
    assert found.structured_content["memories"][0]["id"] == stored.structured_content["memory"]["id"]
    assert found.structured_content["memories"][0]["text"] == "Ilya and I crossed the bridge at night."


BAD_CALLS = [
    ("remember", {}, "'text' is required"),
    ("remember", {"text": ""}, "'text'"),
    ("remember", {"text": 42}, "'text'"),
    ("remember", {"text": "x", "metadata": "not an object"}, "'metadata'"),
    ("remember", {"text": "x", "workspace_id": "../../etc"}, "'workspace_id'"),
    ("remember", {"text": "x", "colour": "blue"}, "'colour' is not an argument"),
    ("recall", {"query": "x", "top_k": 0}, "'top_k'"),
    ("recall", {"query": "x", "top_k": 10000}, "less than or equal to 100"),
    ("recall", {"query": "x", "top_k": "many"}, "'top_k'"),
    ("recall", {"query": "x", "workspace_id": "nobody-here"}, "Workspace 'nobody-here' does not exist"),
    ("recall", {}, "'query' is required"),
    ("forget", {"memory_id": "0000"}, "No memory '0000'"),
    ("forget", {"memory_id": "x", "workspace_id": "nobody-here"}, "does not exist"),
    ("no_such_tool", {}, "No tool named 'no_such_tool'"),
]


async def test_bad_input_is_an_error_that_says_what_to_fix_and_loses_nothing(tmp_path: Path) -> None:
    async with mcp_stdio(tmp_path) as session:
        kept = await session.call_tool("remember", {"text": "kept safe"})
        for tool, arguments, expect in BAD_CALLS:
            result = await session.call_tool(tool, arguments)
            assert result.is_error, (tool, arguments, text_of(result))
            assert expect in text_of(result), (tool, arguments, text_of(result))
        check = await session.call_tool("recall", {"query": "kept safe", "top_k": 100})
    assert [hit["id"] for hit in check.structured_content["memories"]] == [kept.structured_content["memory"]["id"]]


def _rpc(proc: subprocess.Popen, message: dict) -> None:
    assert proc.stdin is not None
    proc.stdin.write((json.dumps(message) + "\n").encode())
    proc.stdin.flush()


def test_stdout_carries_only_json_rpc_and_handshake_beats_model_load(tmp_path: Path) -> None:
    """Every byte on stdout must be a JSON-RPC message; logs belong on stderr."""
    stderr = tmp_path / "stderr.log"
    started = time.monotonic()
    proc = subprocess.Popen(
        [REME, "backend=mcp", "mcp.transport=stdio", f"store_dir={tmp_path}", "log_level=DEBUG"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr.open("w"), env=server_env(),
    )
    assert proc.stdout is not None
    _rpc(proc, {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}}})
    first = json.loads(proc.stdout.readline())
    handshake = time.monotonic() - started
    assert first["id"] == 1 and "result" in first
    # The model loads in the background (seconds); the answer must not have waited for it.
    assert "embedding model sentence-transformers/all-MiniLM-L6-v2 loaded" not in stderr.read_text()
    assert handshake < 10, f"handshake took {handshake:.1f} s"
    _rpc(proc, {"jsonrpc": "2.0", "method": "notifications/initialized"})
    calls = [
        ("remember", {"text": "stdout purity check"}),
        ("recall", {"query": "purity"}),
        ("recall", {"query": "x", "top_k": -1}),
        ("forget", {"memory_id": "missing"}),
    ]
    for n, (name, arguments) in enumerate(calls, start=2):
        _rpc(proc, {"jsonrpc": "2.0", "id": n, "method": "tools/call", "params": {"name": name, "arguments": arguments}})
    _rpc(proc, {"jsonrpc": "2.0", "id": 99, "method": "no/such/method"})
    lines = [first]
    seen: set = set()
    while not {2, 3, 4, 5, 99} <= seen:
        raw = proc.stdout.readline()
        assert raw, "server closed stdout early"
        message = json.loads(raw)  # anything that is not JSON fails here
        lines.append(message)
        seen.add(message.get("id"))
    proc.stdin.close()
    rest = proc.stdout.read()
    proc.wait(timeout=30)
    for line in rest.decode().splitlines():
        lines.append(json.loads(line))
    assert all(message.get("jsonrpc") == "2.0" for message in lines)
    assert "INFO" in stderr.read_text()  # the logs went somewhere: stderr


async def test_working_memory_round_trip_over_mcp(tmp_path: Path) -> None:
    fact = "The rollback tag for the ETL release is etl-2026.11.19-rc4."
    messages = long_trajectory(results=8, lines_per_result=300, planted={2: fact})
    async with mcp_stdio(tmp_path) as session:
        summary = await session.call_tool("summary_working_memory", {"messages": messages, "chat_id": "mcp-run"})
        assert not summary.is_error, text_of(summary)
        result = summary.structured_content
        assert result["tokens_after"] <= 20_000 < result["tokens_before"] and answered(result["messages"])

        found = await session.call_tool("grep_working_memory", {"pattern": "rollback tag", "chat_id": "mcp-run"})
        [match] = found.structured_content["matches"]
        page = await session.call_tool("read_working_memory", {"file": match["file"], "offset": match["line"] - 1, "limit": 1})
        assert page.structured_content["content"] == fact + "\n"
        assert text_of(page).startswith(f"{match['line']:>6}\t{fact}")

        bad = await session.call_tool("grep_working_memory", {"pattern": "(", "regex": True, "chat_id": "mcp-run"})
        assert bad.is_error and "not a valid regular expression" in text_of(bad)
        outside = await session.call_tool("read_working_memory", {"file": "../memory.sqlite3"})
        assert outside.is_error and "'..'" in text_of(outside)
        compress = await session.call_tool(
            "summary_working_memory", {"messages": messages, "working_summary_mode": "compress"}
        )
        assert compress.is_error and "FLOW_LLM_BASE_URL" in text_of(compress)


async def test_summarize_trajectory_over_mcp_with_and_without_an_llm(tmp_path: Path) -> None:
    lesson = {"memories": [{"when_to_use": "Deploying the API service on Fridays",
                            "content": "Run the smoke tests against staging before switching traffic.",
                            "kind": "lesson", "tags": ["deploy"], "confidence": 0.9}]}
    runs = [{"messages": [{"role": "user", "content": "Deploy the API."},
                          {"role": "assistant", "content": "Smoke tests passed on staging; traffic switched."}],
             "score": 1.0}]
    async with mcp_stdio(tmp_path / "bare") as session:
        refused = await session.call_tool("summarize_trajectory", {"trajectories": runs})
        assert refused.is_error and "FLOW_LLM_BASE_URL" in text_of(refused)
        assert not (await session.call_tool("recall", {"query": "anything"})).is_error  # the rest still works
    with OpenAIStub() as stub:
        stub.replies.append(Reply(content=json.dumps(lesson)))
        async with mcp_stdio(tmp_path / "llm", f"llm.default.base_url={stub.url}", "llm.default.api_key=k",
                             "llm.default.model_name=local-model") as session:
            learned = await session.call_tool("summarize_trajectory", {"trajectories": runs, "kind": "task"})
            assert not learned.is_error, text_of(learned)
            [memory] = learned.structured_content["stored"]
            found = await session.call_tool("recall", {"query": "how to deploy the API", "memory_type": "task"})
            assert found.structured_content["memories"][0]["id"] == memory["id"]
    assert stub.chat_requests[0]["model"] == "local-model"
