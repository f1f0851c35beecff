"""Crash: kill -9 a `reme` server in the middle of a batch of writes, over and over; nothing acknowledged is lost.

    python bench/crash.py [DIR] [--rounds 50] [--seed 0] [--writers 3] [--batch 24] [--no-prespawn]

DIR (default: a temporary directory) gets the store and one log per server.

Each round a real `reme backend=http` server on the one store takes a batch of writes from `--writers`
concurrent httpx clients: single `remember` calls, in some rounds a `train_memory` of a few episodes (so
cell keys and a cell model are being written) and `forget`s of memories acknowledged earlier. After a
number of acknowledgements drawn from a seeded RNG (plus up to 30 ms), the server gets SIGKILL. Every
request sent and not answered by then is "in flight": it may have landed or not, and both are fine.

After each kill, on a copy of the crashed files (the WAL included, so the next server still opens the
crashed store itself), checked raw by bench/harness.py:
  - PRAGMA integrity_check; FTS5 'integrity-check' (rank=1) of the lexical index against the rows, and
    each memory's unique token finds its row (and no forgotten one);
  - every row's text_sha256 is its text's SHA-256 (nothing half-written is visible);
  - vectors are 4 * embedding_dim bytes and equal a fresh embedding of their text (the real model);
    cell keys belong to a memory of the same workspace and are 4 * count * dim bytes; the per-workspace
    counters agree with the rows; the servers run with `retrieval.ann_threshold` lowered to ANN_THRESHOLD,
    so HNSW indexes are built, saved and reloaded across the kills: each saved one loads, and every vector
    in it of a memory still present is the store's;
  - every acknowledged write (and every in-flight write seen landed after an earlier crash) is there with
    its exact text, every acknowledged forget is absent, nothing else is there, and the episodes of one
    train_memory landed all or none (one transaction).
Then the next round's server opens the crashed store: its first requests are recalls of memories
acknowledged before the kill, which must come back (and an acknowledged-forgotten one must not).
No server log may say "locked", ERROR or Traceback; WARNING lines (an index rebuilt on open) are listed.

With prespawn (default), the next round's server is started while the current one is being written to:
its model loads meanwhile, and it opens the store only at its first request, after the kill and the
check. That halves the round time (model load is seconds per start on 2 cores), and is measured.

Baseline, same run: `SQLiteStore.open` (reme's own open, with its checks) of the crashed copy against a
second open of the same file after a clean close; ratio printed. Exit status 1 if any check failed.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import shutil
import sqlite3
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import STORE_FILE, HttpClient, Server, check_store, percentile, read_log, vectors_match, verdict  # noqa: E402

from reme_mcp.retrieval import ann  # noqa: E402
from reme_mcp.store.sqlite import SQLiteStore  # noqa: E402

WORKSPACES = ("crash-0", "crash-1")
ANN_THRESHOLD = 40  # workspaces pass it within a few rounds, so the kills also land on HNSW builds and saves
CELLS = "crash-cells"
TOP_K = 5
WORDS = (
    "amber basalt cedar delta ember falcon garnet harbor indigo juniper kestrel lagoon meadow nickel orchard "
    "pepper quartz raven saffron tundra umber velvet willow xenon yarrow zephyr anchor beacon canyon dune "
    "estuary fjord glacier heron island jasper kelp lantern marsh nectar opal prairie quill reef summit"
).split()


@dataclass
class Write:
    kind: str  # remember | train | forget
    items: list[tuple[str, str | None, str, str]]  # (workspace, id or None until answered, text, token)
    state: str = "planned"  # planned | sent | acked | failed
    before_kill: bool = False  # the kill waits for its answer (so some train_memory calls are acknowledged)


@dataclass
class RoundResult:
    index: int
    seconds: float
    restart_seconds: float  # from the end of the last kill's check to the next server's answers (round 0: 0)
    acked: Counter = field(default_factory=Counter)  # kind -> acknowledged writes (train: episodes)
    inflight: Counter = field(default_factory=Counter)  # "<kind> landed" / "<kind> not landed"
    open_crashed: float = 0.0
    open_clean: float = 0.0
    check_seconds: float = 0.0
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@dataclass
class CrashResult:
    rounds: list[RoundResult]
    problems: list[str]
    warnings: list[str]
    final_rows: int
    ann_vectors: int
    prespawn: bool

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass
class Ledger:
    present: dict[tuple[str, str], str] = field(default_factory=dict)  # acknowledged, or landed in flight
    tokens: dict[tuple[str, str], str] = field(default_factory=dict)
    forgotten: set[tuple[str, str]] = field(default_factory=set)
    acked_this_round: list[tuple[str, str]] = field(default_factory=list)
    forgotten_this_round: list[tuple[str, str, str]] = field(default_factory=list)  # (workspace, id, text)
    trained: set[tuple[str, str]] = field(default_factory=set)  # episodes of an acknowledged train_memory


def plan_round(rng: random.Random, r: int, batch: int, ledger: Ledger) -> list[Write]:
    writes = []
    for n in range(batch):
        token = f"crash{r}w{n}"
        text = f"{token} {' '.join(rng.sample(WORDS, 6))} in round {r}."
        writes.append(Write("remember", [(WORKSPACES[n % 2], None, text, token)]))
    if rng.random() < 0.35:
        episodes = []
        for k in range(4):
            token = f"crash{r}e{k}"
            episodes.append((CELLS, f"ep-{r}-{k}", f"{token} episode: {' '.join(rng.sample(WORDS, 8))}.", token))
        # Half the time the kill lands after training answered, half the time anywhere (mostly inside it).
        after = rng.random() < 0.5
        writes.insert(0 if after else rng.randrange(len(writes)), Write("train", episodes, before_kill=after))
    candidates = sorted(k for k in ledger.present if k[0] in WORKSPACES)
    for _ in range(min(2, len(candidates))):
        victim = candidates.pop(rng.randrange(len(candidates)))
        writes.insert(rng.randrange(len(writes)), Write("forget", [(victim[0], victim[1], ledger.present[victim], "")]))
    return writes


async def write_batch(server: Server, writes: list[Write], writers: int, kill_after: int, extra: float,
                      ledger: Ledger, result: RoundResult) -> None:
    """Send the writes from `writers` clients; SIGKILL the server after `kill_after` acknowledgements."""
    queue = list(writes)
    acked = 0
    reached = asyncio.Event()
    first = [w for w in writes if w.before_kill]  # answered alone, before any other write starts
    gate = asyncio.Event()
    if not first:
        gate.set()
    killed = False

    async def writer() -> None:
        nonlocal acked
        async with httpx.AsyncClient(timeout=120) as http:
            client = HttpClient(http, server.url)
            while queue and not killed:
                if not gate.is_set():
                    write = next((w for w in queue if w.before_kill), None)
                    if write is None:  # another writer has it: wait for its answer
                        await gate.wait()
                        continue
                    queue.remove(write)
                else:
                    write = queue.pop(0)
                write.state = "sent"
                try:
                    if write.kind == "remember":
                        ws, _, text, token = write.items[0]
                        out = await client.call("remember", {"text": text, "keywords": [token], "workspace_id": ws})
                        if out["memory"]["text"] != text or not out["created"]:
                            result.problems.append(f"remember answered {out['memory']['text'][:50]!r}")
                        write.items[0] = (ws, out["memory"]["id"], text, token)
                    elif write.kind == "train":
                        out = await client.call("train_memory", {"workspace_id": CELLS, "episodes": [
                            {"id": mid, "text": text, "keywords": [token]} for _, mid, text, token in write.items]})
                        if out["added"] != len(write.items):
                            result.problems.append(f"train_memory added {out['added']} of {len(write.items)}")
                    else:
                        ws, mid, _, _ = write.items[0]
                        out = await client.call("forget", {"memory_id": mid, "workspace_id": ws})
                        if out.get("dry_run") or out.get("memory_id") != mid:
                            result.problems.append(f"forget answered {out}")
                except Exception as exc:
                    if killed:
                        return  # in flight at the kill: sorted out against the store
                    write.state = "failed"
                    result.problems.append(f"{write.kind} failed before the kill: {exc}")
                    if all(w.state in ("acked", "failed") for w in first):
                        gate.set()
                    continue
                write.state = "acked"
                if first and all(w.state in ("acked", "failed") for w in first):
                    gate.set()
                if write.kind == "forget":
                    ws, mid, text, _ = write.items[0]
                    ledger.present.pop((ws, mid), None)
                    ledger.forgotten.add((ws, mid))
                    ledger.forgotten_this_round.append((ws, mid, text))
                else:
                    for ws, mid, text, token in write.items:
                        ledger.present[(ws, mid)] = text
                        ledger.tokens[(ws, mid)] = token
                        ledger.acked_this_round.append((ws, mid))
                        if write.kind == "train":
                            ledger.trained.add((ws, mid))
                result.acked[write.kind] += len(write.items) if write.kind == "train" else 1
                acked += 1
                if acked >= kill_after and gate.is_set():
                    reached.set()

    async def killer() -> None:
        nonlocal killed
        await reached.wait()
        await asyncio.sleep(extra)
        killed = True
        await asyncio.to_thread(server.kill)

    kill_task = asyncio.create_task(killer())
    try:  # bounded: a harness bug or a hung server fails the round instead of hanging the run
        await asyncio.wait_for(asyncio.gather(*(writer() for _ in range(writers))), timeout=300)
    except asyncio.TimeoutError:
        result.problems.append("the batch of writes did not finish within 300 s")
    if not reached.is_set():  # every write failed or was answered before the target: kill anyway
        reached.set()
    await kill_task


async def verify_recalls(server: Server, rng: random.Random, ledger: Ledger, result: RoundResult) -> None:
    """The server's first requests: recall memories acknowledged before the last kill, by their exact text."""
    picks = rng.sample(ledger.acked_this_round, min(3, len(ledger.acked_this_round)))
    older = sorted(set(ledger.present) - set(ledger.acked_this_round))
    if older:
        picks.append(rng.choice(older))
    async with httpx.AsyncClient(timeout=120) as http:
        client = HttpClient(http, server.url)
        for ws, mid in picks:
            if (ws, mid) not in ledger.present:  # forgotten in the same round
                continue
            text = ledger.present[(ws, mid)]
            out = await client.call("recall", {"query": text, "top_k": TOP_K, "workspace_id": ws})
            if (mid, text) not in {(h["id"], h["text"]) for h in out["memories"]}:
                result.problems.append(f"recall after restart: {ws}/{mid} not in the top {TOP_K} for its own text")
        for ws, mid, text in ledger.forgotten_this_round[:1]:
            out = await client.call("recall", {"query": text, "top_k": TOP_K, "workspace_id": ws})
            if mid in {h["id"] for h in out["memories"]} or text in {h["text"] for h in out["memories"]}:
                result.problems.append(f"recall after restart returned acknowledged-forgotten {ws}/{mid}")


def copy_store(store: Path, to: Path) -> Path:
    to.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm"):
        source = store / f"{STORE_FILE}{suffix}"
        if source.exists():
            shutil.copyfile(source, to / source.name)
    if (store / ann.DIRECTORY).is_dir():  # the HNSW indexes saved so far (the workspaces pass ANN_THRESHOLD)
        shutil.copytree(store / ann.DIRECTORY, to / ann.DIRECTORY, dirs_exist_ok=True)
    return to / STORE_FILE


def timed_open(path: Path) -> float:
    started = time.perf_counter()
    store = SQLiteStore(path)
    store.open(None)
    seconds = time.perf_counter() - started
    store.close()
    return seconds


def after_kill(store: Path, scratch: Path, writes: list[Write], ledger: Ledger, embedder: object | None,
               result: RoundResult) -> None:
    """Check the crashed files (a copy), then sort the in-flight writes into landed / not landed."""
    shutil.rmtree(scratch, ignore_errors=True)
    raw = copy_store(store, scratch / "raw")
    timing = copy_store(store, scratch / "open")
    inflight = [w for w in writes if w.state == "sent"]
    maybe = {text for w in inflight if w.kind != "forget" for _, _, text, _ in w.items}
    doomed = {w.items[0][:2] for w in inflight if w.kind == "forget"}  # may be there or not
    acknowledged = {k: t for k, t in ledger.present.items() if k not in doomed}
    maybe |= {ledger.present[k] for k in doomed if k in ledger.present}
    check = check_store(raw, acknowledged, ledger.forgotten, ledger.tokens, [*WORKSPACES, CELLS], maybe)
    result.check_seconds = check.seconds
    result.problems += check.problems
    with sqlite3.connect(raw) as db:
        keyed = {(ws, mid) for ws, mid in db.execute(
            "SELECT m.workspace_id, m.id FROM memories m JOIN cell_keys k ON k.memory_rowid = m.rowid")}
    db.close()
    unkeyed = sorted(k for k in ledger.trained if k in ledger.present and k not in keyed)
    if unkeyed:
        result.problems.append(f"cells: {len(unkeyed)} episodes of an acknowledged train_memory have no cell keys "
                               f"({unkeyed[:3]})")
    by_text = {text: key for key, text in check.texts.items()}
    landed_keys = []
    for write in inflight:
        if write.kind == "forget":
            key = write.items[0][:2]
            landed = key not in check.texts
            if landed:
                ledger.present.pop(key, None)
                ledger.forgotten.add(key)
        else:
            found = [by_text.get(text) for _, _, text, _ in write.items]
            landed = all(found)
            if any(found) and not landed:
                result.problems.append(f"torn train_memory: {sum(map(bool, found))} of {len(found)} episodes landed")
            for key, (_, _, text, token) in zip(found, write.items):
                if key is not None:  # seen after a crash: it must stay from now on
                    ledger.present[key] = text
                    ledger.tokens[key] = token
                    landed_keys.append(key)
        result.inflight[f"{write.kind} {'landed' if landed else 'not landed'}"] += 1
    if embedder is not None:
        result.problems += vectors_match(raw, ledger.acked_this_round + landed_keys, embedder)
    result.open_crashed = timed_open(timing)
    result.open_clean = timed_open(timing)


def server_problems(server: Server, result: RoundResult) -> None:
    found = read_log(server.name, server.log())
    result.problems += found.problems
    result.warnings += found.warnings


async def crash_rounds(directory: Path, rounds: int, seed: int, writers: int, batch: int, prespawn: bool,
                       embedder: object | None) -> CrashResult:
    store = directory / "store"
    logs = directory / "logs"
    store.mkdir(parents=True, exist_ok=True)
    logs.mkdir(parents=True, exist_ok=True)
    ledger = Ledger()
    results: list[RoundResult] = []
    problems: list[str] = []
    warnings: list[str] = []
    spawned: list[Server] = []

    def spawn(r: int) -> Server:
        spawned.append(Server(store, "http", logs, f"round-{r}", f"retrieval.ann_threshold={ANN_THRESHOLD}"))
        return spawned[-1]

    server = spawn(0)
    try:
        for r in range(rounds + 1):  # the last pass only verifies the last kill, then stops cleanly
            rng = random.Random(f"{seed}:{r}")
            started = time.monotonic()
            result = RoundResult(index=r, seconds=0.0, restart_seconds=0.0)
            try:
                await asyncio.to_thread(server.wait_listening)
                await verify_recalls(server, rng, ledger, result)  # the store opens here, after the crash
            except Exception as exc:
                problems.append(f"round {r}: the store did not open or recall failed after the kill: {exc}")
                server_problems(server, result)
                problems += [f"round {r}: {p}" for p in result.problems]
                break
            result.restart_seconds = time.monotonic() - started
            ledger.acked_this_round, ledger.forgotten_this_round = [], []
            if r == rounds:
                code = server.stop()
                if code not in (0, -15):
                    result.problems.append(f"{server.name} exited with {code} on SIGTERM")
                server_problems(server, result)
                problems += [f"final: {p}" for p in result.problems]
                warnings += [f"final: {w}" for w in result.warnings]
                break
            writes = plan_round(rng, r, batch, ledger)
            kill_after = rng.randrange(1, max(2, len(writes) - 2))
            extra = rng.uniform(0, 0.03)
            following = spawn(r + 1) if prespawn else None
            await write_batch(server, writes, writers, kill_after, extra, ledger, result)
            server_problems(server, result)
            await asyncio.to_thread(after_kill, store, directory / "check", writes, ledger, embedder, result)
            server = following or spawn(r + 1)
            result.seconds = time.monotonic() - started
            results.append(result)
            problems += [f"round {r}: {p}" for p in result.problems]
            warnings += [f"round {r}: {w}" for w in result.warnings]
    finally:
        for each in spawned:
            each.kill()
    final = check_store(store / STORE_FILE, ledger.present, ledger.forgotten, ledger.tokens, [*WORKSPACES, CELLS])
    problems += [f"final store: {p}" for p in final.problems]
    return CrashResult(rounds=results, problems=problems, warnings=warnings, final_rows=final.rows, ann_vectors=final.ann_vectors,
                       prespawn=prespawn)


def run(directory: Path, rounds: int = 50, seed: int = 0, writers: int = 3, batch: int = 24, prespawn: bool = True,
        check_vectors: bool = True) -> CrashResult:
    embedder = None
    if check_vectors:
        from reme_mcp.config import load_config
        from reme_mcp.models.embedding import create_embedder

        embedder = create_embedder(load_config().embedding_model.default)
        embedder.load()
    return asyncio.run(crash_rounds(directory, rounds, seed, writers, batch, prespawn, embedder))


def report(result: CrashResult) -> str:
    rounds = result.rounds
    acked, inflight = Counter(), Counter()
    for r in rounds:
        acked.update(r.acked)
        inflight.update(r.inflight)
    seconds = [r.seconds for r in rounds]
    restart = [r.restart_seconds for r in rounds[1:]] or [0.0]
    crashed = [r.open_crashed * 1000 for r in rounds]
    clean = [r.open_clean * 1000 for r in rounds]
    lines = [
        f"rounds: {len(rounds)} (kill -9 during writes), prespawn: {result.prespawn}",
        f"acknowledged before the kill: {acked['remember']} remember, {acked['train']} episodes by "
        f"{sum(1 for r in rounds if r.acked['train'])} train_memory calls, {acked['forget']} forget",
        "in flight at the kill: " + (", ".join(f"{k} {v}" for k, v in sorted(inflight.items())) or "none"),
        f"rounds with a write in flight at the kill: {sum(1 for r in rounds if r.inflight)} of {len(rounds)}",
        f"time per round: mean {sum(seconds) / len(seconds):.1f} s, p50 {percentile(seconds, 50):.1f} s, "
        f"max {max(seconds):.1f} s; total {sum(seconds):.0f} s",
        f"after a kill and its check -> the next server answered its recalls (store open after the crash): "
        f"p50 {percentile(restart, 50):.1f} s, max {max(restart):.1f} s",
        f"raw store check per round: p50 {percentile([r.check_seconds * 1000 for r in rounds], 50):.0f} ms",
        f"SQLiteStore.open of the crashed file: p50 {percentile(crashed, 50):.1f} ms, p95 {percentile(crashed, 95):.1f}"
        f" ms | baseline, same file after a clean close: p50 {percentile(clean, 50):.1f} ms, p95 "
        f"{percentile(clean, 95):.1f} ms | ratio p50 {percentile(crashed, 50) / percentile(clean, 50):.2f}",
        f"memories in the store at the end: {result.final_rows}; vectors in saved HNSW indexes: {result.ann_vectors}",
    ]
    if result.warnings:
        lines.append(f"server warnings: {len(result.warnings)}")
        lines += [f"  {w}" for w in result.warnings[:20]]
    else:
        lines.append("server warnings: none (no index was rebuilt on open)")
    lines += verdict(result.problems, "every check passed after every kill")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("dir", nargs="?", help="where the store and logs go (default: a temporary directory)")
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--writers", type=int, default=3, help="concurrent clients writing to the server")
    parser.add_argument("--batch", type=int, default=24, help="remember calls per round")
    parser.add_argument("--no-prespawn", action="store_true", help="start each server only after the last kill")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="reme-crash-") as tmp:
        directory = Path(args.dir) if args.dir else Path(tmp)
        started = time.monotonic()
        result = run(directory, args.rounds, args.seed, args.writers, args.batch, not args.no_prespawn)
        print(report(result))
        print(f"total run time: {time.monotonic() - started:.0f} s")
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
