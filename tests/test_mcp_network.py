"""The same MCP tools over SSE and streamable HTTP, bound to loopback, through the SDK's clients."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

import pytest
from mcp import ClientSession
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client

from conftest import REME, free_port, server_env

pytestmark = pytest.mark.anyio


def wait_for_port(port: int, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        assert proc.poll() is None, log.read_text()
        time.sleep(0.1)
    raise TimeoutError(log.read_text())


def listen_addresses(port: int) -> set[str]:
    """Local addresses with a listening socket on `port`, read from the kernel's table (Linux)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:
                found.add(address)
    return found


@pytest.mark.parametrize("transport", ["streamable-http", "sse"])
async def test_remember_and_recall_over_network_transports(tmp_path: Path, transport: str) -> None:
    port = free_port()
    log = tmp_path / "server.log"
    proc = subprocess.Popen(
        [REME, "backend=mcp", f"mcp.transport={transport}", f"mcp.port={port}", f"store_dir={tmp_path}"],
        stdout=subprocess.DEVNULL, stderr=log.open("w"), env=server_env(),
    )
    try:
        wait_for_port(port, proc, log)
        if transport == "sse":
            client = sse_client(f"http://127.0.0.1:{port}/sse")
        else:
            client = streamable_http_client(f"http://127.0.0.1:{port}/mcp")
        async with client as streams:
            async with ClientSession(streams[0], streams[1]) as session:
                await session.initialize()
                stored = await session.call_tool("remember", {"text": f"Reached over {transport}."})
                found = await session.call_tool("recall", {"query": f"{transport}", "top_k": 1})
                bad = await session.call_tool("recall", {"query": "x", "top_k": 0})
        assert listen_addresses(port) == {"0100007F"}  # 127.0.0.1 only, not 0.0.0.0
        assert not stored.is_error and bad.is_error
        assert found.structured_content["memories"][0]["text"] == f"Reached over {transport}."
    finally:
        proc.terminate()
        proc.wait(timeout=20)
