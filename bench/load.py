"""Load: several `reme` servers on ONE store, many concurrent clients each, mixed remember / recall / forget.

    python bench/load.py [DIR] [--servers 4] [--clients 8] [--ops 50] [--face mixed|http|mcp] [--seed 0]

DIR (default: a temporary directory) gets `loaded/` and `baseline/` stores and the server logs.

Servers alternate faces (mixed): even ones serve the HTTP API, odd ones MCP over streamable HTTP. Each
starts, loads its model and answers a warm-up remember + recall before anything is timed. Then every
server gets `--clients` concurrent clients (httpx for HTTP, the MCP SDK's ClientSession for MCP), all
running at once; each does `--ops` operations, a fixed mix drawn from a seeded RNG: 50% remember of a
unique text, 35% recall (exact text as the query; the memory must come back in the top 5) of an
acknowledged memory, half the time one of its own, half the time any client's in its workspace (often
written through another server, so that process's vector cache must have seen it), 15% forget of one of
its own acknowledged memories, in a few workspaces that every server writes to.

Afterwards the servers are stopped and the store file is checked raw (bench/harness.py): every
acknowledged remember not acknowledged-forgotten is there with its exact text, every acknowledged forget
is gone, nothing else is in the workspaces, FTS5 and vector/cell checks pass, a sample of vectors equals
a fresh embedding of their text. No client error may occur (none "locked"); no server log may say
"locked", ERROR or Traceback.

Baseline, same run: the same op mix from ONE client on ONE server per face, nothing else running
(a fresh store). Printed: ops, errors, throughput, p50/p95/p99 per face and op, and loaded/unloaded for
p50 and p95. Exit status 1 if any check failed.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import (  # noqa: E402
    STORE_FILE,
    FlowError,
    Server,
    check_store,
    client_for,
    percentile,
    read_log,
    vectors_match,
    verdict,
)

OPS = ("remember", "recall", "forget")
WEIGHTS = (50, 35, 15)
WORKSPACES = 3
TOP_K = 5
VECTOR_SAMPLE = 100
WORDS = (
    "amber basalt cedar delta ember falcon garnet harbor indigo juniper kestrel lagoon meadow nickel orchard "
    "pepper quartz raven saffron tundra umber velvet willow xenon yarrow zephyr anchor beacon canyon dune "
    "estuary fjord glacier heron island jasper kelp lantern marsh nectar opal prairie quill reef summit "
    "thistle upland vale walnut yonder zinc bramble copper drizzle fennel grove hazel ivy jade"
).split()


@dataclass
class Op:
    face: str
    kind: str
    seconds: float
    error: str | None = None


@dataclass
class Ledger:
    """What clients were told: acknowledged writes, forgets, and each memory's unique token."""

    present: dict[tuple[str, str], str] = field(default_factory=dict)
    forgotten: set[tuple[str, str]] = field(default_factory=set)
    maybe: set[str] = field(default_factory=set)  # texts of writes that errored: may or may not be there
    tokens: dict[tuple[str, str], str] = field(default_factory=dict)
    recall_misses: list[str] = field(default_factory=list)
    by_workspace: dict[str, list[tuple[str, str, str]]] = field(default_factory=dict)  # ws -> (id, text, server)
    forgetting: set[tuple[str, str]] = field(default_factory=set)  # a forget was sent (answered or not)
    peer_recalls: int = 0  # recalls of a memory another server wrote
    unwiped: int = 0  # forgets answered wiped=false: another process kept the WAL from being emptied


@dataclass
class Phase:
    ops: list[Op] = field(default_factory=list)
    seconds: float = 0.0

    def errors(self) -> list[Op]:
        return [op for op in self.ops if op.error is not None]

    def latencies(self, face: str | None = None, kind: str | None = None) -> list[float]:
        return [op.seconds for op in self.ops if op.error is None and (face is None or op.face == face)
                and (kind is None or op.kind == kind)]


@dataclass
class LoadResult:
    servers: int
    clients: int
    ops_per_client: int
    faces: list[str]
    loaded: Phase
    baseline: Phase | None
    ready_seconds: list[float]
    problems: list[str]
    warnings: list[str]
    memories_checked: int
    forgets_checked: int
    unwiped: int
    recalls: int
    peer_recalls: int
    store_check_seconds: float

    @property
    def ok(self) -> bool:
        return not self.problems


def faces_for(face: str, servers: int) -> list[str]:
    return [("http", "mcp")[n % 2] if face == "mixed" else face for n in range(servers)]


def make_text(rng: random.Random, token: str) -> str:
    return f"{token} {' '.join(rng.sample(WORDS, 7))}."


async def client_run(
    server: Server, tag: str, ops: int, seed: int, workspace: str, ledger: Ledger, phase: Phase,
    go: asyncio.Event, connected: list[int],
) -> None:
    """One client: a fixed, seeded sequence of `ops` operations, strictly one after another."""
    rng = random.Random(f"{seed}:{tag}")
    plan = rng.choices(OPS, WEIGHTS, k=ops)
    own: list[tuple[str, str, str]] = []  # (workspace, id, text) acknowledged and not forgotten
    async with client_for(server) as client:
        connected.append(1)
        await go.wait()
        for n, kind in enumerate(plan):
            if kind in ("forget", "recall") and not own:
                kind = "remember"
            started = time.perf_counter()
            error = None
            try:
                if kind == "remember":
                    token = f"tok{tag}n{n}"
                    text = make_text(rng, token)
                    ledger.maybe.add(text)
                    out = await client.call("remember", {"text": text, "keywords": [rng.choice(WORDS)],
                                                         "workspace_id": workspace})
                    ledger.maybe.discard(text)
                    key = (workspace, out["memory"]["id"])
                    if out["memory"]["text"] != text or not out["created"]:
                        error = f"remember answered {out['memory']['text'][:40]!r} created={out['created']}"
                    ledger.present[key] = text
                    ledger.tokens[key] = token
                    own.append((workspace, key[1], text))
                    ledger.by_workspace.setdefault(workspace, []).append((key[1], text, server.name))
                elif kind == "recall":
                    # Half of the recalls look for a memory any client wrote (often through another server,
                    # so another process's dense cache must have seen it), half for one of its own.
                    peers = [m for m in ledger.by_workspace.get(workspace, []) if (workspace, m[0]) not in
                             ledger.forgetting]
                    if rng.random() < 0.5 and peers:
                        mid, text, writer = rng.choice(peers)
                        ws = workspace
                        ledger.peer_recalls += writer != server.name
                    else:
                        ws, mid, text = rng.choice(own)
                    out = await client.call("recall", {"query": text, "top_k": TOP_K, "workspace_id": ws})
                    hits = {(h["id"], h["text"]) for h in out["memories"]}
                    if (mid, text) not in hits and (ws, mid) not in ledger.forgetting:
                        ledger.recall_misses.append(f"{server.name}/{tag}: {ws}/{mid} not in top {TOP_K} of its text")
                else:
                    ws, mid, text = own.pop(rng.randrange(len(own)))
                    ledger.forgetting.add((ws, mid))
                    try:
                        out = await client.call("forget", {"memory_id": mid, "workspace_id": ws})
                    except FlowError:
                        ledger.maybe.add(text)
                        ledger.present.pop((ws, mid), None)
                        raise
                    if out.get("dry_run") or out.get("memory_id") != mid:
                        error = f"forget answered {out}"
                    ledger.unwiped += out.get("wiped") is False
                    ledger.present.pop((ws, mid), None)
                    ledger.forgotten.add((ws, mid))
            except FlowError as exc:
                error = str(exc)
            phase.ops.append(Op(server.face, kind, time.perf_counter() - started, error))


async def warm_up(server: Server, workspaces: list[str], ledger: Ledger) -> float:
    """Until the server answers a real remember and recall in every workspace (its model is loaded)."""
    await asyncio.to_thread(server.wait_listening)
    async with client_for(server) as client:
        for ws in workspaces:
            token = f"tokwarm{server.name.replace('-', '')}{ws.replace('-', '')}"
            text = f"{token} warm-up note of {server.name} in {ws}."
            out = await client.call("remember", {"text": text, "workspace_id": ws})
            ledger.present[(ws, out["memory"]["id"])] = text
            ledger.tokens[(ws, out["memory"]["id"])] = token
            await client.call("recall", {"query": text, "top_k": 1, "workspace_id": ws})
    return time.monotonic() - server.started


async def drive(
    store: Path, faces: list[str], clients: int, ops: int, seed: int, label: str, sequential: bool = False,
) -> tuple[Phase, Ledger, list[Server], list[float], list[str]]:
    """Start the servers on one store, warm them up, then run the clients (all at once, or one by one)."""
    store.mkdir(parents=True, exist_ok=True)
    workspaces = [f"{label}-{n}" for n in range(WORKSPACES)]
    servers = [Server(store, face, store, f"{label}{n}-{face}") for n, face in enumerate(faces)]
    ledger, phase, problems = Ledger(), Phase(), []
    try:
        ready = list(await asyncio.gather(*(warm_up(s, workspaces, ledger) for s in servers)))
        jobs = []
        go, connected = asyncio.Event(), []
        for s, server in enumerate(servers):
            for c in range(clients):
                tag = f"{label}s{s}c{c}"
                jobs.append((server, tag, workspaces[(s * clients + c) % WORKSPACES]))
        if sequential:
            started = time.perf_counter()
            for server, tag, ws in jobs:
                go.set()
                await client_run(server, tag, ops, seed, ws, ledger, phase, go, connected)
            phase.seconds = time.perf_counter() - started
        else:
            tasks = [asyncio.create_task(client_run(server, tag, ops, seed, ws, ledger, phase, go, connected))
                     for server, tag, ws in jobs]
            while len(connected) < len(jobs):  # every session is open before the clock starts
                done = [t for t in tasks if t.done()]
                if done:
                    await asyncio.gather(*done)  # a client that failed to connect raises here
                await asyncio.sleep(0.02)
            started = time.perf_counter()
            go.set()
            await asyncio.gather(*tasks)
            phase.seconds = time.perf_counter() - started
    finally:
        for server in servers:
            code = server.stop()
            if code not in (0, -15):
                problems.append(f"{server.name} exited with {code} on SIGTERM")
    return phase, ledger, servers, ready, problems


def verify(store: Path, ledger: Ledger, label: str, embedder: object | None) -> tuple[list[str], float]:
    workspaces = [f"{label}-{n}" for n in range(WORKSPACES)]
    check = check_store(store / STORE_FILE, ledger.present, ledger.forgotten, ledger.tokens, workspaces,
                        allowed_extra=ledger.maybe)
    problems = list(check.problems)
    if embedder is not None:
        sample = sorted(ledger.present)[:: max(1, len(ledger.present) // VECTOR_SAMPLE)][:VECTOR_SAMPLE]
        problems += vectors_match(store / STORE_FILE, sample, embedder)
    return problems, check.seconds


def load_embedder() -> object:
    from reme_mcp.config import load_config
    from reme_mcp.models.embedding import create_embedder

    embedder = create_embedder(load_config().embedding_model.default)
    embedder.load()
    return embedder


def run(
    directory: Path, servers: int = 4, clients: int = 8, ops: int = 50, face: str = "mixed", seed: int = 0,
    baseline_ops: int | None = None, check_vectors: bool = True,
) -> LoadResult:
    """The whole bench; returns what it measured and every failed check. `baseline_ops=0` skips the baseline."""
    faces = faces_for(face, servers)
    baseline_ops = max(ops, 60) if baseline_ops is None else baseline_ops
    problems: list[str] = []
    warnings: list[str] = []
    baseline = None
    if baseline_ops:
        baseline, _, base_servers, _, stop_problems = asyncio.run(
            drive(directory / "baseline", sorted(set(faces)), 1, baseline_ops, seed, "base", sequential=True))
        problems += [f"baseline: {p}" for p in stop_problems]
        problems += [f"baseline client error ({op.face} {op.kind}): {op.error}" for op in baseline.errors()]
    loaded, ledger, load_servers, ready, stop_problems = asyncio.run(
        drive(directory / "loaded", faces, clients, ops, seed, "load"))
    problems += stop_problems
    for op in loaded.errors():
        problems.append(f"client error ({op.face} {op.kind}): {op.error}")
    problems += [f"recall miss: {m}" for m in ledger.recall_misses]
    for server in load_servers:
        found = read_log(server.name, server.log())
        problems += found.problems
        warnings += found.warnings
    embedder = load_embedder() if check_vectors else None
    store_problems, check_seconds = verify(directory / "loaded", ledger, "load", embedder)
    problems += store_problems
    return LoadResult(
        servers=servers, clients=clients, ops_per_client=ops, faces=faces, loaded=loaded, baseline=baseline,
        ready_seconds=ready, problems=problems, warnings=warnings, memories_checked=len(ledger.present),
        forgets_checked=len(ledger.forgotten), unwiped=ledger.unwiped, store_check_seconds=check_seconds,
        recalls=sum(op.kind == "recall" and op.error is None for op in loaded.ops) + len(load_servers) * WORKSPACES,
        peer_recalls=ledger.peer_recalls,
    )


def report(result: LoadResult) -> str:
    lines = []
    loaded, base = result.loaded, result.baseline
    n_ops = len(loaded.ops)
    lines.append(f"servers: {result.servers} ({', '.join(result.faces)}) on one store; "
                 f"{result.clients} clients each, {result.ops_per_client} ops per client")
    lines.append(f"ready (start -> warm-up answered): {', '.join(f'{s:.1f}' for s in result.ready_seconds)} s")
    lines.append(f"loaded: {n_ops} ops in {loaded.seconds:.1f} s = {n_ops / loaded.seconds:.1f} ops/s; "
                 f"errors: {len(loaded.errors())}")
    if base is not None:
        lines.append(f"baseline (1 client, 1 server per face, one at a time): {len(base.ops)} ops in "
                     f"{base.seconds:.1f} s = {len(base.ops) / base.seconds:.1f} ops/s; errors: {len(base.errors())}")
        lines.append(f"throughput loaded/unloaded: {(n_ops / loaded.seconds) / (len(base.ops) / base.seconds):.2f}")
    kinds = defaultdict(int)
    for op in loaded.ops:
        kinds[op.kind] += 1
    lines.append("op mix (loaded): " + ", ".join(f"{k} {kinds[k]}" for k in OPS))
    lines.append("")
    header = f"{'face':<5} {'op':<9} {'n':>5} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}"
    if base is not None:
        header += f" | {'base p50':>8} {'base p95':>8} | {'p50 x':>6} {'p95 x':>6}"
    lines.append(header)
    for face in sorted(set(result.faces)) + ["all"]:
        for kind in [*OPS, "all"]:
            f, k = (None if face == "all" else face), (None if kind == "all" else kind)
            lat = loaded.latencies(f, k)
            if not lat:
                continue
            p50, p95, p99 = (percentile(lat, q) * 1000 for q in (50, 95, 99))
            line = f"{face:<5} {kind:<9} {len(lat):>5} {p50:>8.1f} {p95:>8.1f} {p99:>8.1f}"
            if base is not None:
                blat = base.latencies(f, k)
                b50, b95 = (percentile(blat, q) * 1000 for q in (50, 95))
                line += f" | {b50:>8.1f} {b95:>8.1f} | {p50 / b50:>6.1f} {p95 / b95:>6.1f}"
            lines.append(line)
    lines.append("")
    lines.append(f"recalls of a memory written through another server: {result.peer_recalls}; recall misses (any): "
                 f"{sum('recall miss' in p for p in result.problems)}")
    lines.append(f"store check: {result.memories_checked} acknowledged memories present with exact text, "
                 f"{result.forgets_checked} acknowledged forgets absent, FTS5/vector/cell checks "
                 f"({result.store_check_seconds:.1f} s)")
    lines.append(f"forgets answered wiped=false (another process kept the WAL busy, so the forgotten text may stay "
                 f"in the files until a later checkpoint): {result.unwiped} of {result.forgets_checked}")
    if result.warnings:
        lines.append(f"other server warnings: {len(result.warnings)}")
        lines += [f"  {w}" for w in result.warnings[:10]]
    lines += verdict(result.problems, "every check passed")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("dir", nargs="?", help="where the stores and logs go (default: a temporary directory)")
    parser.add_argument("--servers", type=int, default=4)
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients per server")
    parser.add_argument("--ops", type=int, default=50, help="operations per client")
    parser.add_argument("--face", choices=("mixed", "http", "mcp"), default="mixed")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--baseline-ops", type=int, default=None, help="ops of the unloaded client (0: skip)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="reme-load-") as tmp:
        directory = Path(args.dir) if args.dir else Path(tmp)
        started = time.monotonic()
        result = run(directory, args.servers, args.clients, args.ops, args.face, args.seed, args.baseline_ops)
        print(report(result))
        print(f"total run time: {time.monotonic() - started:.0f} s")
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
