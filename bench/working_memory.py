"""Working-memory compaction on long agent runs: tokens before and after, and what it costs.

    python bench/working_memory.py [--sizes 100000,1000000]

For each size an agent run of about that many tokens is generated (tests/trajectories.py:
web searches, pages, logs and shell output; a fact planted in the middle) and sent through
the real `summary_working_memory` flow in compact mode. Printed next to each other:

- tokens after / tokens before (the budget is the flow's default, 20,000 tokens);
- time to compact / time to count the tokens of the same list once (the baseline: any
  context manager must at least count, so the ratio is what offloading adds on top);
- time to grep the offloaded files for the planted fact and read it back.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from trajectories import long_trajectory  # noqa: E402

from reme_mcp import ReMeApp  # noqa: E402
from reme_mcp.working.messages import token_counts  # noqa: E402
from reme_mcp.working.schemas import Message  # noqa: E402

FACT = "2026-11-20T02:41:07.113Z ERROR [worker-07] warehouse-db-07 refused the connection: max_connections=240 reached"
LINES = 280  # per tool result: about 5,600 tokens


def run_for(tokens: int) -> list[dict]:
    results = max(4, round(tokens / 5_600))
    return long_trajectory(results=results, lines_per_result=LINES, planted={results // 2: FACT})


async def measure(size: int) -> dict[str, float]:
    messages = run_for(size)
    started = time.perf_counter()
    counted = sum(token_counts([Message.model_validate(m) for m in messages]))
    count_seconds = time.perf_counter() - started
    with tempfile.TemporaryDirectory() as store:
        async with ReMeApp(store_dir=store) as app:
            started = time.perf_counter()
            result = await app.async_execute(
                "summary_working_memory", messages=messages, working_summary_mode="compact", chat_id="bench"
            )
            compact_seconds = time.perf_counter() - started
            started = time.perf_counter()
            found = await app.async_execute("grep_working_memory", pattern="max_connections=240", chat_id="bench")
            [match] = found.metadata["matches"]
            page = await app.async_execute("read_working_memory", file=match["file"], offset=match["line"] - 1, limit=1)
            grep_read_seconds = time.perf_counter() - started
            assert page.metadata["content"] == FACT + "\n"
    meta = result.metadata
    return {
        "messages": len(messages), "before": meta["tokens_before"], "after": meta["tokens_after"],
        "files": len(meta["files"]), "counted": counted, "count_s": count_seconds,
        "compact_s": compact_seconds, "grep_read_s": grep_read_seconds,
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100000,1000000", help="approximate tokens per run, comma-separated")
    sizes = [int(s) for s in parser.parse_args().sizes.split(",")]
    print(f"{'run':>10} {'msgs':>5} {'tokens before':>14} {'after':>7} {'after/before':>13} {'files':>6} "
          f"{'count s':>8} {'compact s':>10} {'compact/count':>14} {'grep+read s':>12}")
    for size in sizes:
        r = await measure(size)
        print(f"{size:>10,} {r['messages']:>5} {r['before']:>14,} {r['after']:>7,} {r['after'] / r['before']:>13.3f} "
              f"{r['files']:>6} {r['count_s']:>8.2f} {r['compact_s']:>10.2f} {r['compact_s'] / r['count_s']:>14.2f} "
              f"{r['grep_read_s']:>12.3f}")


if __name__ == "__main__":
    anyio.run(main)
