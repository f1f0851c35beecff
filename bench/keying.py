"""How long recall waits for the multilingual keys of many new memories in another script, and what an import
pays for them instead.

    python bench/keying.py [bench/data/recall-zh.json bench/data/recall-ru.json] [--count 2000]

A memory the English model cannot read (Chinese, Russian) gets keys from the multilingual encoder before
recall can find it by meaning (reme_mcp/episodic/keying.py). This writes --count such memories through
`remember` (the sets' memories, numbered so each is new) and times the first recall after them, two ways
in one run:

- all at once: FIRST_BATCH set above --count, the way recall keyed new memories before the batches;
- the default: FIRST_BATCH (500) while the recall waits, the rest in a background thread, whose time
  until every memory has keys is printed too.

Then the same memories go into a fresh store through the import (`reme import`, library.import_text), which
keys them itself, so the first recall after it has nothing left to key: the import's time and that recall's.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import anyio
import anyio.to_thread
from harness import percentile

from reme_mcp import ReMeApp
from reme_mcp.episodic import keying
from reme_mcp.library import flow as library
from reme_mcp.library.records import export_lines
from reme_mcp.store.base import Memory, content_id

DATA = Path(__file__).parent / "data"
QUERY = "What did my daughter do last weekend?"  # English: it waits for the new memories' keys, and no more


def texts(sets: list[Path], count: int) -> list[str]:
    """`count` distinct texts: the sets' memories in turn, each with its number."""
    base = [m["text"] for path in sets for m in json.loads(path.read_text(encoding="utf-8"))["memories"]]
    return [f"{base[n % len(base)]} (#{n})" for n in range(count)]


@dataclass
class Waits:
    first: float  # seconds the first recall after the writes took
    rest: float  # seconds until the background had keyed the rest
    meanwhile: list[float]  # seconds of each recall asked while the background was at it
    after: list[float]  # seconds of as many recalls once it was done


async def recall_after_remember(store_dir: Path, notes: list[str], first_batch: int) -> Waits:
    keying.FIRST_BATCH = first_batch
    async with ReMeApp(store_dir=str(store_dir), log_level="WARNING") as app:
        await app.async_execute("recall", query="warm up")  # models loaded before anything is timed
        for text in notes:
            await app.async_execute("remember", text=text)
        bridge = (await app.services()).bridge

        async def timed() -> float:
            started = time.perf_counter()
            await app.async_execute("recall", query=QUERY)
            return time.perf_counter() - started

        started = time.perf_counter()
        first, meanwhile = await timed(), []
        while not bridge.wait(timeout=0):
            meanwhile.append(await timed())
        rest = time.perf_counter() - started - first
        return Waits(first, rest, meanwhile, [await timed() for _ in range(max(len(meanwhile), 20))])


async def recall_after_import(store_dir: Path, notes: list[str]) -> tuple[float, float, float]:
    """(seconds the import took, of them giving keys, and the first recall after it)."""
    now = datetime.now(timezone.utc)
    memories = [Memory(id=content_id(t, []), workspace_id="default", text=t, created_at=now) for t in notes]
    raw = "\n".join(export_lines("default", "any", memories, None))
    async with ReMeApp(store_dir=str(store_dir), log_level="WARNING") as app:
        await app.async_execute("recall", query="warm up")
        services, keys = await app.services(), []
        finish = services.bridge.finish

        def timed_finish(*args: object) -> int:
            started = time.perf_counter()
            try:
                return finish(*args)
            finally:
                keys.append(time.perf_counter() - started)

        services.bridge.finish = timed_finish
        started = time.perf_counter()
        await anyio.to_thread.run_sync(library.import_text, services, raw, "bench.jsonl", "default")
        imported = time.perf_counter() - started
        started = time.perf_counter()
        await app.async_execute("recall", query=QUERY)
        return imported, sum(keys), time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sets", nargs="*", type=Path, default=[DATA / "recall-zh.json", DATA / "recall-ru.json"])
    parser.add_argument("--count", type=int, default=2000, help="new memories in another script")
    args = parser.parse_args()
    notes, default = texts(args.sets, args.count), keying.FIRST_BATCH
    with tempfile.TemporaryDirectory() as tmp:
        at_once = anyio.run(recall_after_remember, Path(tmp) / "at-once", notes, args.count + 1)
        batched = anyio.run(recall_after_remember, Path(tmp) / "batched", notes, default)
        imported, keys, after_import = anyio.run(recall_after_import, Path(tmp) / "import", notes)
    print(f"first recall after {args.count:,} new memories in another script were remembered:")
    print(f"  all keyed at once      {at_once.first:6.2f} s")
    ratio = batched.first / at_once.first
    print(f"  {default} now, the rest later {batched.first:6.2f} s  (x all at once {ratio:.2f});"
          f" the background keyed the other {max(args.count - default, 0):,} in {batched.rest:.1f} s")
    if batched.meanwhile:
        during, after = (percentile(batched.meanwhile, 50) * 1000, percentile(batched.after, 50) * 1000)
        print(f"  recalls meanwhile: {len(batched.meanwhile)}, p50 {during:.0f} ms, p95 "
              f"{percentile(batched.meanwhile, 95) * 1000:.0f} ms; after it: p50 {after:.0f} ms"
              f" (x after {during / after:.1f})")
    print(f"the same {args.count:,} imported: the import took {imported:.1f} s, {keys:.1f} s of it for their keys; "
          f"the first recall after it {after_import:.2f} s (x all at once {after_import / at_once.first:.2f})")


if __name__ == "__main__":
    main()
