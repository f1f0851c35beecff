"""Clients we did not write: the MCP Inspector CLI and the MCP conformance suite (npm, pinned)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from conftest import REME, reme_server, server_env
from reme_mcp.flows import CORE_TOOLS

TOOLS = Path(__file__).resolve().parent.parent / ".npm-tools" / "node_modules" / ".bin"
BASELINE = Path(__file__).resolve().parent / "conformance-baseline.yml"


def npm_tool(name: str) -> str:
    path = TOOLS / name
    assert path.exists(), f"{path} is missing: scripts/test.sh installs the pinned npm tools"
    return str(path)


def inspector(*args: str, target: list[str], tool_args: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    # --tool-arg takes every word after it, so it goes after the server's command line.
    command = [npm_tool("mcp-inspector"), "--cli", *args, *target]
    if tool_args:
        command += ["--tool-arg", *tool_args]
    return subprocess.run(command, capture_output=True, text=True, env=server_env(), timeout=180)


def scenario(target: list[str]) -> None:
    listed = inspector("--method", "tools/list", "--strict", target=target)
    assert listed.returncode == 0, listed.stderr
    assert {t["name"] for t in json.loads(listed.stdout)["tools"]} == CORE_TOOLS
    stored = inspector("--method", "tools/call", "--tool-name", "remember", target=target,
                       tool_args=("text=Inspector was here",))
    assert stored.returncode == 0, stored.stderr
    assert json.loads(stored.stdout)["isError"] is False
    found = inspector("--method", "tools/call", "--tool-name", "recall", target=target, tool_args=("query=who was here",))
    result = json.loads(found.stdout)
    assert result["structuredContent"]["memories"][0]["text"] == "Inspector was here"
    assert result["content"][0]["text"].startswith("Best match: ")


def test_inspector_over_stdio(tmp_path: Path) -> None:
    scenario([REME, "backend=mcp", "mcp.transport=stdio", f"store_dir={tmp_path}"])


def test_inspector_over_streamable_http(tmp_path: Path) -> None:
    with reme_server(tmp_path, "backend=mcp", "mcp.transport=streamable-http") as port:
        scenario([f"http://127.0.0.1:{port}/mcp"])


def test_conformance_suite_passes_all_but_the_fixture_scenarios(tmp_path: Path) -> None:
    with reme_server(tmp_path, "backend=mcp", "mcp.transport=streamable-http") as port:
        run = subprocess.run(
            [npm_tool("conformance"), "server", "--url", f"http://127.0.0.1:{port}/mcp",
             "--expected-failures", str(BASELINE)],
            capture_output=True, text=True, timeout=600,
        )
    summary = run.stdout[run.stdout.find("=== SUMMARY ==="):]
    assert run.returncode == 0, summary
    for required in ("server-initialize", "ping", "tools-list", "tools-call-error", "logging-set-level",
                     "dns-rebinding-protection", "prompts-list", "resources-list"):
        assert f"✓ {required}:" in summary, summary
