"""Four `reme` servers (HTTP API and MCP streamable HTTP) on one store, eight concurrent clients each.

The full shape of bench/load.py with few operations per client; only its correctness checks are asserted
(latency is the bench's business): every acknowledged write is in the store with its exact text, every
acknowledged forget is gone, the indexes agree with the rows, and no client or server saw "locked".
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

import load  # noqa: E402

pytestmark = pytest.mark.embedded_only  # bench/load.py checks the SQLite file raw afterwards


def test_four_servers_with_eight_clients_each_lose_nothing_and_never_lock(tmp_path: Path) -> None:
    result = load.run(tmp_path, servers=4, clients=8, ops=6, face="mixed", baseline_ops=0)

    assert result.ok, "\n".join(result.problems)
    assert result.faces == ["http", "mcp", "http", "mcp"]
    assert len(result.loaded.ops) == 4 * 8 * 6 and not result.loaded.errors()
    kinds = {op.kind for op in result.loaded.ops}
    assert kinds == {"remember", "recall", "forget"}
    assert result.memories_checked > 4 * 8 and result.forgets_checked > 0
