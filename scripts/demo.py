"""The main job in one minute: remember a few episodes, then recall them by meaning.

Runs against a throwaway store, through the same ReMeApp that serves MCP and HTTP.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path

import anyio

from reme_mcp import ReMeApp

EPISODES = [
    ("Ilya, bridge, night", "We walked with Ilya across the old bridge when the city lights turned on, talking about his move to Porto."),
    ("Maria, allergy", "Maria is allergic to peanuts; she asked us to check every dessert at the team dinner."),
    ("deploy, vault", "The production deploy key lives in the vault under ops/ci-deploy and rotates every Monday."),
    ("python, tests", "The flaky test in test_sync.py failed because two workers shared one temp directory."),
]
QUERIES = ["walking on a bridge with Ilya", "what can't Maria eat?", "where do we keep the deploy credentials", "why was the sync test flaky"]


async def main(store_dir: str) -> None:
    async with ReMeApp(store_dir=store_dir, log_level="WARNING") as app:
        for keywords, text in EPISODES:
            result = await app.async_execute("remember", text=text, keywords=keywords)
            print(result.answer)
        for query in QUERIES:
            result = await app.async_execute("recall", query=query, top_k=2)
            print(f"\n>>> recall {query!r}\n{result.answer}")


if __name__ == "__main__":
    store = tempfile.mkdtemp(prefix="reme-demo-")
    try:
        anyio.run(main, store)
    finally:
        shutil.rmtree(store, ignore_errors=True)
    reme = Path(sys.executable).with_name("reme")
    config = {"mcpServers": {"reme": {"command": str(reme), "args": ["backend=mcp", "mcp.transport=stdio"]}}}
    print("\nTo give Claude Desktop this memory, add to claude_desktop_config.json:")
    print(json.dumps(config, indent=2))
    print(f"\nOr serve HTTP: {reme} backend=http http.port=8002")
