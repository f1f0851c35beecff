"""One workspace never sees another's data: every flow, asked for Alice, returns nothing of Bob's and
sends nothing of Bob's to the LLM; with a token set, no route of any network face answers without it.

Bob's data all carries the word NARWHAL, and every call made for Alice goes looking for it; it also
carries SECRET, which no call for Alice contains, so finding SECRET in an answer to Alice can only be
a leak (answers echo their query). The table of calls must cover every flow in flows.py, so a new flow
cannot ship without its isolation case.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import mcp_stdio, reme_server, store_exists, store_rows
from openai_stub import OpenAIStub, Reply
from trajectories import long_trajectory

from reme_mcp import NotFound, ReMeApp
from reme_mcp.errors import ReMeError
from reme_mcp.flows import FLOWS

pytestmark = pytest.mark.anyio

NARWHAL = "narwhal"
SECRET = "bobsecret7731"
BOB_FACT = f"Bob's narwhal project ships on Friday; the narwhal deploy key is {SECRET}."


def trajectory(user_says: str, tool_output: str) -> dict[str, Any]:
    call = {"id": "call_1", "type": "function", "function": {"name": "probe", "arguments": json.dumps({"q": user_says})}}
    return {"messages": [
        {"role": "user", "content": user_says},
        {"role": "assistant", "content": "", "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_1", "content": tool_output},
        {"role": "assistant", "content": "Done."},
    ], "score": 1.0}


def answers(stub: OpenAIStub, about: str) -> None:
    """Scripted LLM answers for the distilling flows, each mentioning `about` (which is stored)."""
    stub.default = Reply(content=json.dumps({
        "memories": [{"when_to_use": f"Working on the {about} project", "content": f"Ship {about} on Fridays.",
                      "kind": "lesson", "tags": [about], "confidence": 0.9}],
        "facts": [{"content": f"The user runs the {about} project."}],
        "guideline": f"probe works well for {about} lookups.",
        "text": f"Summary of {about} notes.", "keywords": [about],
    }))


async def fill_bobs_workspace(app: ReMeApp) -> str:
    bob = {"workspace_id": "bob"}
    memory_id = (await app.async_execute("remember", text=BOB_FACT, tags=[NARWHAL], **bob)).metadata["memory"]["id"]
    await app.async_execute("remember", text=BOB_FACT.lower(), **bob)  # a near-duplicate, for consolidate
    await app.async_execute("train_memory", episodes=[{"text": f"Bob fed the {NARWHAL} {SECRET} at the aquarium {n}.",
                                                       "keywords": [NARWHAL]} for n in range(12)], **bob)
    await app.async_execute("add_tool_call_result", tool_call_results=[
        {"tool_name": "probe", "input": {"q": NARWHAL}, "output": f"{NARWHAL} {SECRET} found", "success": True}], **bob)
    run = trajectory(f"I run the {NARWHAL} project ({SECRET}).", f"{NARWHAL} status: green")
    for flow in ("summary_task_memory", "summary_personal_memory"):
        await app.async_execute(flow, trajectories=[run], **bob)
    await app.async_execute("summary_tool_memory", tool_names=["probe"], **bob)
    await app.async_execute("summary_working_memory", chat_id="bob-chat", working_summary_mode="compact",
                            max_total_tokens=500, messages=long_trajectory(results=3, lines_per_result=200,
                                                                           planted={0: f"{NARWHAL} {SECRET} line"}), **bob)
    return memory_id


def alices_calls(bobs_id: str, bobs_file: str) -> dict[str, list[dict[str, Any]]]:
    """Every flow, called for Alice, hunting for Bob's data."""
    alice = {"workspace_id": "alice"}
    run = trajectory("I keep quokkas.", "quokka status: happy")
    return {
        "remember": [{"text": "Alice keeps quokkas.", **alice}],
        "recall": [{"query": NARWHAL, "top_k": 100, **alice}, {"query": "deploy key vault", "tags": [NARWHAL], **alice}],
        "forget": [{"about": NARWHAL, **alice}, {"query": NARWHAL, "top_k": 50, **alice}, {"memory_id": bobs_id, **alice}],
        "consolidate": [{**alice}, {"mode": "summarize", "threshold": 0.1, **alice}],
        "train_memory": [{"episodes": [{"text": f"Alice fed the quokka {n}.", "keywords": ["quokka"]}
                                       for n in range(12)], **alice}, {**alice}],
        "vector_store": [{"action": "list", **alice}, {"action": "delete_ids", "memory_ids": [bobs_id], **alice},
                         {"action": "dump", "path": "alice-pack", **alice}],
        "summary_working_memory": [{"messages": long_trajectory(results=3, lines_per_result=200), "max_total_tokens": 500,
                                    "working_summary_mode": "compact", **alice}],
        "grep_working_memory": [{"pattern": NARWHAL, **alice}, {"pattern": NARWHAL, "chat_id": "bob-chat", **alice}],
        "read_working_memory": [{"file": bobs_file, **alice}],
        "summarize_trajectory": [{"trajectories": [run], **alice}],
        "summary_task_memory": [{"trajectories": [run], **alice}],
        "retrieve_task_memory": [{"query": f"{NARWHAL} project", **alice}],
        "summary_personal_memory": [{"trajectories": [run], **alice}],
        "retrieve_personal_memory": [{"query": f"who runs the {NARWHAL} project", **alice}],
        "add_tool_call_result": [{"tool_call_results": [{"tool_name": "probe", "input": {"q": "quokka"},
                                                          "output": "ok", "success": True}], **alice}],
        "summary_tool_memory": [{"tool_names": ["probe"], **alice}],
        "retrieve_tool_memory": [{"tool_names": ["probe"], **alice}],
    }


async def test_no_flow_returns_or_sends_another_workspaces_data(tmp_path: Path) -> None:
    with OpenAIStub() as stub:
        answers(stub, f"{NARWHAL} {SECRET}")
        async with ReMeApp(store_dir=str(tmp_path), llm__default__base_url=stub.url, llm__default__api_key="k",
                           llm__default__max_retries=0) as app:
            bobs_id = await fill_bobs_workspace(app)
            bob_files = (await app.async_execute("grep_working_memory", pattern=NARWHAL, workspace_id="bob"))
            assert bob_files.metadata["matches"]  # Bob's data is there to be found

            answers(stub, "quokka")
            sent_before = len(stub.requests)
            calls = alices_calls(bobs_id, bob_files.metadata["matches"][0]["file"])
            assert set(calls) == set(FLOWS), "every flow needs an isolation case"
            for name, argument_sets in calls.items():
                for arguments in argument_sets:
                    try:
                        envelope = await app.async_execute(name, **arguments)
                        seen = envelope.answer + json.dumps(envelope.metadata)
                    except ReMeError as exc:
                        seen = str(exc)
                        if "memory_id" in arguments or "file" in arguments:
                            assert isinstance(exc, NotFound), (name, exc)
                    assert SECRET not in seen.lower(), (name, arguments, seen[:500])
            sent = json.dumps([r["body"] for r in stub.requests[sent_before:]])
            assert stub.requests[sent_before:], "the LLM flows ran"
            assert NARWHAL not in sent.lower() and SECRET not in sent, "Bob's data was sent to the LLM for Alice"

            # Bob's exact text, told to Alice, is a new memory of Alice's, not Bob's memory handed back.
            told = await app.async_execute("remember", text=BOB_FACT, tags=[NARWHAL], workspace_id="alice")
            assert told.metadata["created"] and told.metadata["memory"]["workspace_id"] == "alice"

            # Bob lost nothing to Alice's deletes, forgets and consolidations.
            kept = await app.async_execute("recall", query="narwhal deploy key", top_k=5, workspace_id="bob")
            assert BOB_FACT in [m["text"] for m in kept.metadata["memories"]]
            tools = await app.async_execute("retrieve_tool_memory", tool_names=["probe"], workspace_id="bob")
            assert tools.metadata["tools"][0]["stats"]["calls"] == 1


async def test_mcp_resources_and_the_prompt_stay_inside_their_workspace(tmp_path: Path) -> None:
    async with ReMeApp(store_dir=str(tmp_path)) as app:
        await app.async_execute("remember", text=BOB_FACT, workspace_id="bob")
        await app.async_execute("remember", text="Alice keeps quokkas.", workspace_id="alice")
    async with mcp_stdio(tmp_path) as session:
        page = await session.read_resource("reme://workspaces/alice/memories")
        prompt = await session.get_prompt("memory_system_prompt", {"query": NARWHAL, "workspace_id": "alice"})
        listed = await session.read_resource("reme://workspaces")
    assert "quokkas" in page.contents[0].text and SECRET not in page.contents[0].text
    assert SECRET not in prompt.messages[0].content.text
    assert SECRET not in listed.contents[0].text  # names and counts only


ROUTES = [
    *[("POST", f"/{name}") for name in FLOWS],
    ("GET", "/health"), ("GET", "/openapi.json"), ("GET", "/nothing-here"), ("POST", "/nothing-here"),
    ("POST", "/mcp"), ("GET", "/mcp"), ("DELETE", "/mcp"), ("GET", "/sse"), ("POST", "/messages/?session_id=0"),
    ("OPTIONS", "/recall"), ("HEAD", "/health"),
]
WRONG = [None, "Bearer", "Bearer wrong", "bearer s3cret-token", "Bearer s3cret", "Bearer s3cret-token-x",
         "Basic czNjcmV0LXRva2Vu", "s3cret-token"]


@pytest.mark.parametrize("face", [
    ("backend=http", "http.auth_token=s3cret-token"),
    ("backend=mcp", "mcp.transport=streamable-http", "mcp.auth_token=s3cret-token"),
    ("backend=mcp", "mcp.transport=sse", "mcp.auth_token=s3cret-token"),
])
def test_with_a_token_set_no_route_answers_without_it(tmp_path: Path, face: tuple[str, ...]) -> None:
    with reme_server(tmp_path, *face) as port:
        for method, path in ROUTES:
            for authorization in WRONG:
                headers = {"Authorization": authorization} if authorization is not None else {}
                body = json.dumps({"text": "an unauthorised write"}) if method == "POST" else None
                refused = httpx.request(method, f"http://127.0.0.1:{port}{path}", headers=headers, content=body)
                assert refused.status_code == 401, (method, path, authorization, refused.status_code)
                assert SECRET not in refused.text
        allowed = httpx.get(f"http://127.0.0.1:{port}/health", headers={"Authorization": "Bearer s3cret-token"})
        assert allowed.status_code != 401
    assert not store_exists(tmp_path) or store_rows(tmp_path, "SELECT count(*) FROM memories") == [(0,)]
