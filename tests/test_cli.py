"""The `reme` command line: flows from the shell, and configuration mistakes named plainly."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from conftest import REME, server_env


def reme(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([REME, *args], capture_output=True, text=True, env=server_env(), timeout=300)


def test_help_explains_backends_and_keys() -> None:
    result = reme("--help")
    assert result.returncode == 0
    for needle in ("backend=mcp", "backend=http", "mcp.transport=stdio", "embedding_model.default.model_name",
                   "vector_store.default.backend", "llm.default.model_name", "http.port=8002"):
        assert needle in result.stdout


def test_unknown_key_or_bad_value_exits_2_naming_it() -> None:
    unknown = reme("mcp.trasport=sse")
    assert unknown.returncode == 2 and "unknown key 'mcp.trasport'" in unknown.stderr
    bad = reme("mcp.port=eighty")
    assert bad.returncode == 2 and "'mcp.port'" in bad.stderr
    wrong = reme("backend=grpc")
    assert wrong.returncode == 2 and "'backend'" in wrong.stderr
    command = reme("teleport")
    assert command.returncode == 2 and "unknown command" in command.stderr


def test_flows_from_the_shell(tmp_path: Path) -> None:
    store = f"store_dir={tmp_path}"
    stored = reme("remember", "Ilya and I walked across the bridge when the lights came on.", "--keywords", "Ilya, bridge", store)
    assert stored.returncode == 0, stored.stderr
    assert stored.stdout.startswith("Remembered as ")
    found = reme("recall", "walking on a bridge with Ilya", "--top_k", "1", "--json", store)
    assert found.returncode == 0, found.stderr
    envelope = json.loads(found.stdout)
    assert envelope["success"] and envelope["metadata"]["memories"][0]["keywords"] == ["Ilya", "bridge"]
    missing = reme("forget", "nope", store)
    assert missing.returncode == 1 and "No memory 'nope'" in missing.stderr
