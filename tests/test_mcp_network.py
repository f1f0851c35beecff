"""Every way in: the same scenario over stdio, SSE and streamable HTTP, plus the safety of the network ones."""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import httpx2
import pytest
from mcp import ClientSession
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client

from conftest import REME, free_port, mcp_stdio, reme_server, server_env
from faces import CALL_SECONDS
from reme_mcp.flows import CORE_TOOLS

pytestmark = pytest.mark.anyio


def listen_addresses(port: int) -> set[str]:
    """Local addresses with a listening socket on `port`, read from the kernel's table (Linux)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            address, hex_port = fields[1].split(":")
            if fields[3] == "0A" and int(hex_port, 16) == port:
                found.add(address)
    return found


@asynccontextmanager
async def session_over(transport: str, tmp_path: Path, *overrides: str, token: str | None = None) -> AsyncIterator[ClientSession]:
    if transport == "stdio":
        async with mcp_stdio(tmp_path, *overrides) as session:
            yield session
        return
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with reme_server(tmp_path, "backend=mcp", f"mcp.transport={transport}", *overrides) as port:
        assert listen_addresses(port) <= {"0100007F", "00000000"}
        # The caller owns an http_client it hands to the SDK: closing it here, in this event loop,
        # keeps it from being garbage-collected (and closed) inside a later test's loop. It waits as
        # long for a reply as every other test client: httpx's default of 5 s cut off a first
        # `remember` that waited for the embedding model on a busy CI machine.
        async with httpx2.AsyncClient(headers=headers, timeout=CALL_SECONDS) as http:
            if transport == "sse":
                client = sse_client(f"http://127.0.0.1:{port}/sse", headers=headers)
            else:
                client = streamable_http_client(f"http://127.0.0.1:{port}/mcp", http_client=http)
            async with client as streams, ClientSession(streams[0], streams[1]) as session:
                await session.initialize()
                yield session


@pytest.mark.parametrize("transport", ["stdio", "sse", "streamable-http"])
async def test_one_scenario_on_every_transport(tmp_path: Path, transport: str) -> None:
    async with session_over(transport, tmp_path) as session:
        tools = {tool.name for tool in (await session.list_tools()).tools}
        assert tools == CORE_TOOLS

        stored = await session.call_tool("remember", {"text": f"Reached over {transport}.", "workspace_id": "net"})
        assert not stored.is_error
        found = await session.call_tool("recall", {"query": transport, "top_k": 1, "workspace_id": "net"})
        assert found.structured_content["memories"][0]["text"] == f"Reached over {transport}."
        bad = await session.call_tool("recall", {"query": "x", "top_k": 0})
        assert bad.is_error and "'top_k'" in bad.content[0].text

        prompts = (await session.list_prompts()).prompts
        assert [p.name for p in prompts] == ["memory_system_prompt"]
        prompt = await session.get_prompt("memory_system_prompt", {"query": transport, "top_k": "1", "workspace_id": "net"})
        text = prompt.messages[0].content.text
        assert "`recall`" in text and f"Reached over {transport}." in text

        resources = {str(r.uri) for r in (await session.list_resources()).resources}
        assert {"reme://workspaces", "reme://workspaces/net/memories"} <= resources
        listing = await session.read_resource("reme://workspaces/net/memories")
        assert f"Reached over {transport}." in listing.contents[0].text
        templates = (await session.list_resource_templates()).resource_templates
        assert templates[0].uri_template == "reme://workspaces/{workspace_id}/memories"


async def test_mcp_tools_chooses_the_tool_list(tmp_path: Path) -> None:
    async with mcp_stdio(tmp_path, "mcp.tools=recall") as session:
        assert [tool.name for tool in (await session.list_tools()).tools] == ["recall"]
        refused = await session.call_tool("remember", {"text": "not exposed"})
        assert refused.is_error and "No tool named 'remember'" in refused.content[0].text


def test_unknown_tool_names_and_unsafe_binds_refuse_to_start(tmp_path: Path) -> None:
    def start(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([REME, *args, f"store_dir={tmp_path}"], capture_output=True, text=True,
                              env=server_env(), timeout=120)

    tools = start("mcp.tools=remember,teleport")
    assert tools.returncode == 2 and "teleport" in tools.stderr
    for args in (["backend=mcp", "mcp.transport=streamable-http", "mcp.host=0.0.0.0"],
                 ["backend=http", "http.host=0.0.0.0"]):
        result = start(*args, f"{'mcp' if 'backend=mcp' in args else 'http'}.port={free_port()}")
        assert result.returncode == 2 and "auth_token" in result.stderr, result.stderr


@pytest.mark.parametrize(
    ("args", "path"),
    [
        (("backend=mcp", "mcp.transport=streamable-http", "mcp.host=0.0.0.0", "mcp.auth_token=s3cret"), "/mcp"),
        (("backend=http", "http.host=0.0.0.0", "http.auth_token=s3cret"), "/recall"),
    ],
)
def test_a_token_guards_every_request(tmp_path: Path, args: tuple[str, ...], path: str) -> None:
    with reme_server(tmp_path, *args) as port:
        assert listen_addresses(port) == {"00000000"}
        url = f"http://127.0.0.1:{port}{path}"
        body = {"jsonrpc": "2.0", "id": 1, "method": "ping"} if path == "/mcp" else {"query": "x"}
        accept = {"Accept": "application/json, text/event-stream"}
        assert httpx.post(url, json=body, headers=accept).status_code == 401
        assert httpx.post(url, json=body, headers={**accept, "Authorization": "Bearer wrong"}).status_code == 401
        # Let through, the recall waits for the embedding model: more than httpx's 5 s on a busy machine.
        ok = httpx.post(url, json=body, headers={**accept, "Authorization": "Bearer s3cret"}, timeout=CALL_SECONDS)
        assert ok.status_code != 401


async def test_token_over_streamable_http_with_the_sdk_client(tmp_path: Path) -> None:
    async with session_over("streamable-http", tmp_path, "mcp.auth_token=s3cret", token="s3cret") as session:
        stored = await session.call_tool("remember", {"text": "authorised write"})
    assert not stored.is_error


@pytest.mark.parametrize("args", [("backend=mcp", "mcp.transport=streamable-http"), ("backend=http",)])
def test_foreign_host_and_origin_are_refused_on_loopback(tmp_path: Path, args: tuple[str, ...]) -> None:
    with reme_server(tmp_path, *args) as port:
        path = "/mcp" if "backend=mcp" in args else "/recall"
        url = f"http://127.0.0.1:{port}{path}"
        headers = {"Accept": "application/json, text/event-stream"}
        assert httpx.post(url, json={}, headers={**headers, "Host": "evil.example:80"}).status_code == 421
        assert httpx.post(url, json={}, headers={**headers, "Origin": "http://evil.example"}).status_code == 403
        fine = httpx.post(url, json={}, headers={**headers, "Origin": f"http://localhost:{port}"})
        assert fine.status_code not in (401, 403, 421)
