"""Shared fixtures: the real `reme` command, real servers on loopback, real clients."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

REME = str(Path(sys.executable).with_name("reme"))


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_env() -> dict[str, str]:
    """The test's environment minus anything that would point the server at a real endpoint or store."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLOW_", "REME_"))}
    env["HF_HUB_OFFLINE"] = "1"
    return env


@asynccontextmanager
async def mcp_stdio(store_dir: Path, *overrides: str) -> AsyncIterator[ClientSession]:
    """A `reme` MCP server over stdio, driven by the SDK's own client."""
    params = StdioServerParameters(
        command=REME,
        args=["backend=mcp", "mcp.transport=stdio", f"store_dir={store_dir}", *overrides],
        env=server_env(),
    )
    with open(os.devnull, "w") as errlog:
        async with stdio_client(params, errlog=errlog) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                yield session


@pytest.fixture
def http_server(tmp_path: Path) -> Iterator[str]:
    """`reme backend=http` on a free loopback port; yields its base URL."""
    port = free_port()
    log = tmp_path / "server.log"
    proc = subprocess.Popen(
        [REME, "backend=http", f"http.port={port}", f"store_dir={tmp_path / 'store'}"],
        env=server_env(),
        stdout=subprocess.DEVNULL,
        stderr=log.open("w"),
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"reme backend=http did not start:\n{log.read_text()}")
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=20)
