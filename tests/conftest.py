"""Shared fixtures: the real `reme` command, real servers on loopback, real clients."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import pytest
from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

REME = str(Path(sys.executable).with_name("reme"))


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def no_endpoint_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's own FLOW_* settings must not point tests at a real endpoint."""
    for name in ("FLOW_EMBEDDING_API_KEY", "FLOW_EMBEDDING_BASE_URL", "FLOW_LLM_API_KEY", "FLOW_LLM_BASE_URL"):
        monkeypatch.delenv(name, raising=False)


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


@contextmanager
def reme_server(tmp_path: Path, *args: str) -> Iterator[int]:
    """Start `reme` with the given args on a free loopback port; yields the port once it listens."""
    port = free_port()
    log = tmp_path / f"server-{port}.log"
    port_key = "http.port" if "backend=http" in args else "mcp.port"
    proc = subprocess.Popen(
        [REME, *args, f"{port_key}={port}", f"store_dir={tmp_path}"],
        stdout=subprocess.DEVNULL, stderr=log.open("w"), env=server_env(),
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=20)


@pytest.fixture
def http_server(tmp_path: Path) -> Iterator[str]:
    """`reme backend=http` on a free loopback port; yields its base URL."""
    with reme_server(tmp_path, "backend=http") as port:
        yield f"http://127.0.0.1:{port}"
