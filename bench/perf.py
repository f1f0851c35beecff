"""Scale and speed (issue 8): recall latency, vector search next to a brute-force scan, remember throughput,
RSS per million memories and MCP start-up, at several store sizes, in one run on this machine.

    python bench/perf.py [--sizes 10k,100k,1m] [--locomo ../shared/data/locomo/locomo-dev.json | --texts FILE]
                         [--store-dir DIR [--reuse]] [--queries 200] [--pgvector-url postgresql://...]
                         [--json PATH] [key=value ...]

For each size N, a store of N memories in one workspace, then, each size measured in its own fresh process
(so RSS and load times are those of a server that just started on that store):
  (a) recall end to end: `await app.async_execute("recall", query=..., top_k=10)` on a ReMeApp, the whole
      flow (query embedding, BM25, vector search, fusion, fetch, recall counts); and the same over the HTTP
      API (`reme backend=http`, a real server process on the same store, asked each query right after the
      in-process app, so both see the same machine) to show what the transport adds;
  (b) the project's vector search alone: `services.dense.spaces(ws)[0].search(query_vector, 10)`, warmed:
      loading the vectors and loading or building its index are reported apart ("load/build");
  (c) the baseline: a brute-force numpy scan (`matrix @ q` + argpartition) over the same vectors, read
      with `store.vectors(ws)`. Columns: p50, p95, p50 as a multiple of (c)'s, recall@10 of (b) against
      (c)'s exact top 10. (b) and (c) are timed alternately, query by query.
  remember throughput: single = sequential `remember` calls (real embedding) into the N-memory workspace;
      batched = `reme import FILE` (library.import_text, the function the CLI runs: parse a JSONL export,
      embed in batches, one add_many): the documented user path for many memories at once (train_memory
      needs episodes and trains cells, so it measures more than writing). Baseline: the same on an empty
      store, the two stores written in turn (call by call; imports ABBA), as a ratio. What was written is
      deleted afterwards, so the store stays at N memories.
  RSS: the measuring process's VmRSS before the store is opened (embedding model loaded) and after the
      workspace's vectors and index are loaded and searched; the difference per million memories.
  MCP initialize: time from spawning `reme backend=mcp mcp.transport=stdio store_dir=<store>` to the answer
      to `initialize` (the SDK's stdio client), median of --init-runs; baseline: an empty store, in turn.
  pgvector (with --pgvector-url): (a), (b), (c) and recall@10 at --pgvector-size memories with
      `vector_store.default.backend=pgvector vector_store.default.url=URL`, written through the same
      `store.add_many`; skipped with a note when the URL is not given or this reme-mcp has no such backend.

Data: a pool of real sentences (the LoCoMo turns from --locomo: CC BY-NC, evaluation only, read from its
path and never copied; or one text per line from --texts; else a built-in generator) is embedded once with
the configured model. Memory i = normalise(pool[a] + w * pool[b] + sigma * gaussian), w drawn from --blend,
sigma (per dimension) from --noise: clustered like real data (nearest-neighbour cosines as in the pool
itself), since random vectors defeat every ANN index and would measure nothing real. The second sentence
matters at scale: with noise alone (--blend 0) a pool of 2,760 turns makes every sentence an island of N/2,760
near-copies (362 at 1M), which HNSW graphs do not connect well; mixing in another sentence fills the space
between them as a real million of memories would. Its text is sentence a (and b when w >= 0.35) plus a unique
suffix, so BM25 has realistic work. Vectors and texts are a pure function of (pool, seed, i): every size
holds the same first memories. Memories are written with the store's bulk path (`store.add_many`, 10k per
transaction). Queries are real questions held out of the pool (LoCoMo's; or held-out lines), embedded by
the real model: they lie farther from the memories than the memories lie from each other, as a question
does from the statement that answers it, which is the hard case for an ANN index.

Threads: OMP_NUM_THREADS=1 is set before anything imports faiss, numpy or torch. A server answers one
query at a time, and OpenMP's hand-off between threads costs a single faiss query more than it saves
(reme_mcp/retrieval/ann.py asks faiss for one thread per query); numpy's BLAS reads it too, so the brute-force baseline
runs on one core like the index. The throughput measurements get the user's own OMP_NUM_THREADS back
(a write path, as a real server runs it). The machine is shared: every figure is next to its baseline from
the same run, measured in turn with it where that is possible, never compared with another run's.

With --store-dir DIR the stores stay in DIR/n<N>/ (a marker file records how they were made) and
--reuse takes them up again instead of rebuilding (an index the project saved there is loaded rather than
built: the load/build line says whether one was present). Without --store-dir a temporary directory is used.
"""

from __future__ import annotations

import os

USER_OMP = os.environ.get("OMP_NUM_THREADS")  # the throughput worker gets the user's own setting back
os.environ.setdefault("OMP_NUM_THREADS", "1")  # see "Threads" above: before numpy, faiss or torch load
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import argparse  # noqa: E402
import cProfile  # noqa: E402
import hashlib  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import platform  # noqa: E402
import pstats  # noqa: E402
import random  # noqa: E402
import re  # noqa: E402
import shlex  # noqa: E402
import shutil  # noqa: E402
import sqlite3  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from datetime import datetime, timedelta, timezone  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import anyio  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import REME, Server, percentile, server_env  # noqa: E402

BLOCK = 10_000  # memories generated with one seeded RNG and written in one transaction
K = 10
MARKER = "perf-build.json"  # in a size's store dir: how its store was made (for --reuse)
ANN_WAIT = 1800.0  # seconds to wait for the project's index to be built in the background
TARGETS = {  # issue 8
    "vector_p50_ms_at_1m": 5.0,
    "vector_recall10_at_1m": 0.98,
    "e2e_p50_ms_at_100k": 30.0,
    "initialize_s": 1.0,
}


def log(message: str) -> None:
    print(f"[perf {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def parse_size(text: str) -> int:
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kKmM]?)\s*", text)
    if not match:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (e.g. 10k, 100k, 1m, 2500)")
    return int(float(match[1]) * {"": 1, "k": 1_000, "m": 1_000_000}[match[2].lower()])


def label(n: int) -> str:
    if n >= 1_000_000 and n % 1_000_000 == 0:
        return f"{n // 1_000_000}M"
    if n >= 1_000 and n % 1_000 == 0:
        return f"{n // 1_000}k"
    return str(n)


def rss_mb() -> tuple[float, float]:
    """(VmRSS, VmHWM) of this process in MB."""
    values = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(("VmRSS:", "VmHWM:")):
            key, amount = line.split(":", 1)
            values[key] = int(amount.split()[0]) / 1024
    return values.get("VmRSS", float("nan")), values.get("VmHWM", float("nan"))


# -- data: a pool of real sentences and held-out queries ---------------------------------------------------

NAMES = "Alice Bob Priya Tomás Mei Kwame Olga Hiro Fatima Liam Sofia Arjun Chen Nadia Omar Elena Jonas Aisha".split()
ACTIONS = [("moved", "move"), ("cancelled", "cancel"), ("reviewed", "review"), ("booked", "book"), ("fixed", "fix"),
           ("shipped", "ship"), ("postponed", "postpone"), ("approved", "approve"), ("rewrote", "rewrite"),
           ("forgot", "forget"), ("paid for", "pay for"), ("planned", "plan")]
OBJECTS = ["the quarterly budget review", "the dentist appointment", "the flaky login test", "the database migration",
           "the team offsite", "the API rate limiter", "the birthday dinner", "the deploy pipeline",
           "the marketing newsletter", "the Kubernetes upgrade", "the grant proposal", "the piano lesson",
           "the flight to Lisbon", "the garden fence", "the onboarding guide", "the tax return", "the conference talk",
           "the backup script", "the school fundraiser", "the kitchen renovation"]
WHEN = ["on Monday morning", "last Thursday", "after the standup", "before the holidays", "at midnight",
        "during the outage", "in early March", "next week", "over the weekend", "right after lunch"]
WHY = ["because the finance team was travelling", "since the staging server was down", "so the kids could join",
       "after a long discussion with the landlord", "to save money", "because the vendor raised prices",
       "as the doctor suggested", "", "", ""]


def generated(seed: int) -> tuple[list[str], list[str]]:
    """Built-in sentences (3000) and questions about them (400), for when no text source is given."""
    rng = random.Random(seed)
    sentences: dict[str, None] = {}
    while len(sentences) < 3000:
        name, (past, _), obj, when, why = (rng.choice(NAMES), rng.choice(ACTIONS), rng.choice(OBJECTS),
                                           rng.choice(WHEN), rng.choice(WHY))
        sentences[f"{name} {past} {obj} {when}{' ' + why if why else ''}."] = None
    questions: dict[str, None] = {}
    while len(questions) < 400:
        name, (past, base), obj = rng.choice(NAMES), rng.choice(ACTIONS), rng.choice(OBJECTS)
        form = rng.randrange(3)
        questions[(f"When did {name} {base} {obj}?", f"Who {past} {obj}?", f"Why did {name} {base} {obj}?")[form]] = None
    return list(sentences), list(questions)


def text_source(args: argparse.Namespace) -> tuple[str, list[str], list[str]]:
    """(name, pool sentences, queries); queries are never in the pool."""
    if args.locomo is not None:
        if args.locomo.is_file():
            from locomo import turns

            data = json.loads(args.locomo.read_text())
            pool = [text for sample in data for _, text in turns(sample)]
            queries = list(dict.fromkeys(q["question"] for sample in data for q in sample["qa"]))
            return f"LoCoMo ({args.locomo.name}: {len(pool)} turns, {len(queries)} questions)", pool, queries
        log(f"{args.locomo} not found: using the built-in sentence generator")
    if args.texts is not None:
        lines = list(dict.fromkeys(t.strip() for t in args.texts.read_text(encoding="utf-8").splitlines() if t.strip()))
        random.Random(args.seed).shuffle(lines)
        held = max(args.queries, len(lines) // 10)
        if len(lines) < held + 100:
            raise SystemExit(f"{args.texts}: {len(lines)} distinct lines; need at least {held + 100}")
        return f"{args.texts.name} ({len(lines) - held} lines, {held} held out as queries)", lines[held:], lines[:held]
    pool, queries = generated(args.seed)
    return f"built-in generator ({len(pool)} sentences, {len(queries)} questions)", pool, queries


def embed_pool(pool: list[str], overrides: list[str], cache_dir: Path, reuse: bool) -> tuple[np.ndarray, str, float]:
    """(vectors of the pool, model id, seconds to embed; 0 when read from the cache)."""
    from reme_mcp.config import load_config
    from reme_mcp.models.embedding import create_embedder, encode_in_batches

    embedder = create_embedder(load_config(*overrides).embedding_model.default)
    digest = hashlib.sha256(json.dumps([embedder.model_id, pool]).encode()).hexdigest()[:16]
    cache = cache_dir / f"pool-{digest}.npy"
    if reuse and cache.is_file():
        return np.load(cache), embedder.model_id, 0.0
    started = time.perf_counter()
    vectors = encode_in_batches(embedder, pool, size=256).astype(np.float32)
    seconds = time.perf_counter() - started
    cache_dir.mkdir(parents=True, exist_ok=True)
    np.save(cache, vectors)
    return vectors, embedder.model_id, seconds


def synth_block(block: int, pool_vectors: np.ndarray, pool: list[str], seed: int, noise: tuple[float, float],
                blend: tuple[float, float], now: float) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Memories block*BLOCK .. +BLOCK: (texts, unit vectors, created_at seconds).

    Memory i = normalise(pool[a] + w * pool[b] + sigma * gaussian), w in `blend`, sigma in `noise`; its text is
    sentence a (and sentence b when w >= 0.35) plus a unique suffix."""
    rng = np.random.default_rng([seed, block])
    source = rng.integers(len(pool), size=BLOCK)
    sigma = rng.uniform(noise[0], noise[1], size=(BLOCK, 1)).astype(np.float32)
    vectors = pool_vectors[source] + sigma * rng.standard_normal((BLOCK, pool_vectors.shape[1]), dtype=np.float32)
    created = now - rng.uniform(0, 365 * 86_400, size=BLOCK)
    second = rng.integers(len(pool), size=BLOCK)
    weight = rng.uniform(blend[0], blend[1], size=BLOCK).astype(np.float32)
    vectors += weight[:, None] * pool_vectors[second]
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    first = block * BLOCK
    texts = [f"{pool[a]}{' ' + pool[b] if w >= 0.35 else ''} (note #{first + i})"
             for i, (a, b, w) in enumerate(zip(source.tolist(), second.tolist(), weight.tolist()))]
    return texts, vectors, created


# -- building a store through the store's bulk path ----------------------------------------------------------


async def build_store(store_dir: Path, workspace: str, n: int, pool_vectors: np.ndarray, pool: list[str],
                      overrides: list[str], seed: int, noise: tuple[float, float], blend: tuple[float, float],
                      fresh: bool) -> dict[str, Any]:
    """Fill `workspace` up to n memories with `store.add_many`; returns what was done (and how fast)."""
    from reme_mcp import ReMeApp
    from reme_mcp.store.base import Embedding, Memory, content_id

    app = ReMeApp(*overrides, store_dir=str(store_dir), log_level="WARNING")
    try:
        services = await app.services()
        store = services.store
        if fresh and store.workspace_exists(workspace):
            store.delete_workspace(workspace)
        have = dict(store.list_workspaces()).get(workspace, 0)
        if have > n or have % BLOCK and have != n:
            raise SystemExit(f"workspace {workspace} in {store_dir} holds {have} memories, not a prefix of {n}; "
                             "drop --reuse or use another --store-dir")
        embedding = Embedding(model_id=app.embedder.model_id, dim=int(pool_vectors.shape[1]))
        now = time.time()
        started, written = time.perf_counter(), 0
        for block in range(have // BLOCK, -(-n // BLOCK)):
            texts, vectors, created = synth_block(block, pool_vectors, pool, seed, noise, blend, now)
            take = min(BLOCK, n - block * BLOCK)
            items = []
            for text, vector, at in zip(texts[:take], vectors[:take], created[:take].tolist()):
                memory = Memory.model_construct(
                    id=content_id(text, []), workspace_id=workspace, text=text, keywords=[], metadata={},
                    created_at=datetime.fromtimestamp(at, tz=timezone.utc), memory_type="episode", status="active",
                    tags=[], expires_at=None, recall_count=0, last_recalled_at=None,
                )
                items.append((memory, vector))
            written += await anyio.to_thread.run_sync(store.add_many, items, embedding)
            if (block + 1) % 10 == 0 or block * BLOCK + take >= n:
                rate = written / (time.perf_counter() - started)
                log(f"  {workspace}: {block * BLOCK + take:,}/{n:,} ({rate:,.0f} memories/s)")
        seconds = time.perf_counter() - started
        if written and hasattr(store, "checkpoint"):
            store.checkpoint()
        return {"reused": have, "written": written, "seconds": seconds,
                "per_second": written / seconds if written else None}
    finally:
        await app.close()


def prepare_sqlite(root: Path, n: int, workspace: str, params: dict[str, Any], reuse: bool, pool_vectors: np.ndarray,
                   pool: list[str], overrides: list[str], seed: int, noise: tuple[float, float],
                   blend: tuple[float, float]) -> dict[str, Any]:
    """The store for size n under root/n<n>/, built or (with --reuse and the same parameters) taken up again."""
    store_dir = root / f"n{n}"
    marker = store_dir / MARKER
    same = marker.is_file() and json.loads(marker.read_text()) == params
    if store_dir.exists() and not (reuse and same):
        if not marker.is_file():
            raise SystemExit(f"{store_dir} exists and was not made by bench/perf.py: choose another --store-dir")
        shutil.rmtree(store_dir)
    store_dir.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps(params))
    log(f"store of {label(n)}: {'taking up ' if same and reuse else 'building '}{store_dir}")
    built = anyio.run(build_store, store_dir, workspace, n, pool_vectors, pool, overrides, seed, noise, blend,
                      False)
    return {**built, "store_dir": str(store_dir), "file_mb": sum(
        f.stat().st_size for f in store_dir.glob("memory.sqlite3*")) / 2**20}


# -- the measuring process (one per size, fresh, so RSS and load times are a new server's) --------------------


def run_worker(spec: dict[str, Any], root: Path) -> dict[str, Any]:
    """Run this file as a worker on `spec`; its result, or {"error": ...}."""
    spec_path = root / f"worker-{uuid.uuid4().hex[:8]}.json"
    out = spec_path.with_suffix(".out.json")
    spec_path.write_text(json.dumps({**spec, "out": str(out)}))
    started = time.perf_counter()
    env = {**os.environ}
    if spec["mode"] == "throughput":  # writing is not single-query search: the environment a user's server has
        env.pop("OMP_NUM_THREADS", None)
        if USER_OMP is not None:
            env["OMP_NUM_THREADS"] = USER_OMP
    proc = subprocess.run([sys.executable, __file__, "--worker", str(spec_path)], env=env)
    spec_path.unlink(missing_ok=True)
    if proc.returncode != 0 or not out.is_file():
        return {"error": f"worker exited with {proc.returncode} (see its output above)"}
    result = json.loads(out.read_text())
    out.unlink()
    result["worker_seconds"] = time.perf_counter() - started
    return result


def brute_force(matrix: np.ndarray, query: np.ndarray, k: int) -> np.ndarray:
    """Row indices of the k best dot products, best first: the exact answer."""
    scores = matrix @ query
    top = np.argpartition(scores, len(scores) - k)[len(scores) - k:]
    return top[np.argsort(-scores[top], kind="stable")]


def ann_of(space: Any) -> Any:
    """The project's index behind a key space, if it has one (reme_mcp/retrieval/ann.py), else None."""
    return getattr(space, "ann", None)


def wait_ready(space: Any, timeout: float) -> str:
    """Wait until the project's index of this space is ready; what answers searches now."""
    ann = ann_of(space)
    if ann is None:
        return "exact scan" if hasattr(space, "matrix") else type(space).__name__
    deadline = time.monotonic() + timeout
    while getattr(ann, "index", None) is None:
        if not getattr(ann, "busy", True) or time.monotonic() > deadline:
            return "exact scan (the index did not become ready)"
        time.sleep(0.05)
    while getattr(ann, "busy", False) and time.monotonic() < deadline:  # it saves the index after it is ready
        time.sleep(0.05)
    return f"{type(ann.index).__name__} index"


def plan_of(space: Any, vector: np.ndarray) -> str | None:
    """For a space the database searches (pgvector): does its plan for a top-10 search use the vector index?"""
    explain = getattr(space, "explain", None)
    if explain is None:
        return None
    plan = explain(vector, K)
    scan = next((line.strip(" ->") for line in plan.splitlines() if "Scan" in line and "CTE" not in line), "?")
    return ("vector index" if "Index Scan" in scan and "Order By" in plan else "no vector index") + f" ({scan[:80]})"


def ms(values: list[float]) -> dict[str, float]:
    return {"p50": percentile(values, 50) * 1000, "p95": percentile(values, 95) * 1000, "n": len(values)}


# Functions of reme_mcp whose cumulative time per recall the profile reports (those that exist are shown).
PROFILED = {"search", "purge_expired", "spaces", "encode", "lexical", "fuse", "reweigh", "fetch", "mark_recalled",
            "similarities", "fingerprint", "usage", "scope_rowids", "_approximate", "vectors", "_plain", "catch_up",
            "workspace_exists"}


def profile_recall(services: Any, workspace: str, queries: list[str]) -> dict[str, Any]:
    """cProfile of recall's blocking body (episodic.memories.search) over the queries, in this thread."""
    from reme_mcp.episodic import memories

    profiler = cProfile.Profile()
    started = time.perf_counter()
    profiler.enable()
    for query in queries:
        memories.search(services, workspace, query, K, None, track=True)
    profiler.disable()
    per_call = (time.perf_counter() - started) / len(queries) * 1000
    stats = pstats.Stats(profiler)
    parts: dict[str, float] = {}
    for (filename, _, name), (_, _, _, cumulative, _) in stats.stats.items():  # type: ignore[attr-defined]
        if "reme_mcp" in filename and name in PROFILED:
            key = f"{Path(filename).stem}.{name}"
            parts[key] = parts.get(key, 0.0) + cumulative / len(queries) * 1000
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(14)
    lines = [line for line in text.getvalue().splitlines() if line.strip()]
    start = next((i for i, line in enumerate(lines) if "ncalls" in line), 0)
    return {"per_call_ms": per_call, "parts_ms": dict(sorted(parts.items(), key=lambda kv: -kv[1])),
            "top_tottime": lines[start:start + 15]}


async def latency_worker(spec: dict[str, Any]) -> dict[str, Any]:
    from reme_mcp import ReMeApp

    workspace, n = spec["workspace"], spec["size"]
    queries: list[str] = spec["queries"]
    result: dict[str, Any] = {"size": n, "backend": spec["backend"]}
    ann_files = sorted(str(p.name) for p in (Path(spec["store_dir"]) / "ann").glob("*")) \
        if (Path(spec["store_dir"]) / "ann").is_dir() else []
    result["ann_files_before"] = ann_files
    app = ReMeApp(*spec["overrides"], store_dir=spec["store_dir"], log_level="WARNING")
    try:
        app.embedder.load()
        app.embedder.encode(["warm up"])
        embed_times, vectors = [], []
        for query in queries:
            started = time.perf_counter()
            vectors.append(app.embedder.encode([query])[0])
            embed_times.append(time.perf_counter() - started)
        result["query_embedding"] = ms(embed_times)
        rss_before, _ = rss_mb()

        started = time.perf_counter()
        services = await app.services()
        result["open_s"] = time.perf_counter() - started
        started = time.perf_counter()
        space = services.dense.spaces(workspace)[0]
        result["vectors_load_s"] = time.perf_counter() - started
        started = time.perf_counter()
        first = space.search(vectors[0], K)
        result["first_search_s"] = time.perf_counter() - started
        if len(first) != min(K, n):
            raise RuntimeError(f"vector search answered {len(first)} hits in a workspace of {n}")
        started = time.perf_counter()
        result["searched_by"] = wait_ready(space, ANN_WAIT)
        result["plan_before"] = plan_of(space, vectors[0])
        result["index_ready_s"] = time.perf_counter() - started
        result["load_build_s"] = result["vectors_load_s"] + result["first_search_s"] + result["index_ready_s"]
        space = services.dense.spaces(workspace)[0]
        for vector in vectors[:5]:
            space.search(vector, K)
        rss_after, _ = rss_mb()
        result["rss_mb"] = {"before": rss_before, "after": rss_after, "delta": rss_after - rss_before,
                            "per_million": (rss_after - rss_before) / n * 1e6 if n else None}

        started = time.perf_counter()
        rowids, matrix, _ = services.store.vectors(workspace)
        matrix = np.ascontiguousarray(matrix, dtype=np.float32)
        result["baseline_read_s"] = time.perf_counter() - started
        for vector in vectors[:5]:
            brute_force(matrix, vector, K)

        vector_times, brute_times, recalls = [], [], []
        for vector in vectors:
            started = time.perf_counter()
            hits = space.search(vector, K)
            vector_times.append(time.perf_counter() - started)
            started = time.perf_counter()
            exact = brute_force(matrix, vector, K)
            brute_times.append(time.perf_counter() - started)
            recalls.append(len({r for r, _ in hits} & set(rowids[exact].tolist())) / K)
        result["vector_search"] = {**ms(vector_times), "recall10": float(np.mean(recalls)),
                                   "recall10_min": float(np.min(recalls))}
        result["brute_force"] = ms(brute_times)
        del matrix, rowids

        started = time.perf_counter()
        await app.async_execute("recall", query=queries[0], top_k=K, workspace_id=workspace)
        result["first_recall_s"] = time.perf_counter() - started
        server, first = None, 0.0
        if spec["http"]:
            server = HttpRecall(Path(spec["store_dir"]), spec["overrides"], workspace)
        try:
            if server is not None:
                try:
                    first = await server.start(queries[0], "index" in result["searched_by"])
                    for query in queries[:5]:
                        await server.recall(query)
                except Exception as exc:  # noqa: BLE001 - reported; the in-process figures still count
                    result["http_error"] = f"{type(exc).__name__}: {exc}"
            e2e, over_http = [], []
            for query in queries:  # in process and over HTTP in turn, so both see the same machine
                started = time.perf_counter()
                answer = await app.async_execute("recall", query=query, top_k=K, workspace_id=workspace)
                e2e.append(time.perf_counter() - started)
                if len(answer.metadata["memories"]) != min(K, n):
                    raise RuntimeError(f"recall answered {len(answer.metadata['memories'])} memories")
                if server is not None and "http_error" not in result:
                    started = time.perf_counter()
                    try:
                        await server.recall(query)
                    except Exception as exc:  # noqa: BLE001
                        result["http_error"] = f"{type(exc).__name__}: {exc}"
                    over_http.append(time.perf_counter() - started)
        finally:
            if server is not None:
                await server.stop()
        result["e2e"] = ms(e2e)
        result["plan_after"] = plan_of(space, vectors[0])
        if over_http and "http_error" not in result:
            result["http"] = {**ms(over_http), "first_recall_s": first,
                              "added_ms": float(np.median(np.subtract(over_http, e2e))) * 1000}
        if spec["profile"] == "always" or (spec["profile"] == "auto" and result["e2e"]["p50"] > spec["profile_ms"]):
            result["profile"] = await anyio.to_thread.run_sync(
                profile_recall, services, workspace, queries[: spec["profile_queries"]])

        # A recall right after a remember (the cache takes up the new memory), and after a deletion.
        after_write, added = [], []
        nonce = uuid.uuid4().hex[:8]
        for i in range(spec["refresh_rounds"]):
            out = await app.async_execute("remember", text=f"{queries[i]} (perf refresh {nonce}-{i})",
                                          workspace_id=workspace)
            added.append(out.metadata["memory"]["id"])
            started = time.perf_counter()
            await app.async_execute("recall", query=queries[i + 1], top_k=K, workspace_id=workspace)
            after_write.append(time.perf_counter() - started)
        await anyio.to_thread.run_sync(services.store.delete_ids, workspace, added)
        started = time.perf_counter()
        await app.async_execute("recall", query=queries[-1], top_k=K, workspace_id=workspace)
        result["recall_after_remember"] = ms(after_write)
        result["recall_after_delete_ms"] = (time.perf_counter() - started) * 1000
        result["peak_rss_mb"] = rss_mb()[1]
    finally:
        await app.close()
    return result


def export_jsonl(path: Path, workspace: str, model_id: str, texts: list[str]) -> None:
    """A reme-mcp export (library/records.py) of these texts, as `reme export` writes it."""
    now = datetime.now(timezone.utc)
    from reme_mcp.store.base import content_id

    lines = [json.dumps({"format": "reme-mcp-export", "version": 1, "workspace_id": workspace,
                         "embedding_model": model_id, "exported_at": now.isoformat(), "count": len(texts)})]
    for i, text in enumerate(texts):
        created = (now - timedelta(seconds=len(texts) - i)).isoformat()
        lines.append(json.dumps({"memory": {"id": content_id(text, []), "text": text, "created_at": created}},
                                ensure_ascii=False))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


async def throughput_worker(spec: dict[str, Any]) -> dict[str, Any]:
    """remember throughput on the store of N memories and, in turn, on an empty store (the baseline)."""
    from reme_mcp import ReMeApp
    from reme_mcp.library.flow import import_text
    from reme_mcp.store.base import content_id

    workspace, texts = spec["workspace"], spec["texts"]
    nonce = uuid.uuid4().hex[:8]
    stores = {"sized": spec["store_dir"], "empty": spec["empty_dir"]}
    apps = {name: ReMeApp(*spec["overrides"], store_dir=path, log_level="WARNING") for name, path in stores.items()}
    written: dict[str, list[str]] = {name: [] for name in stores}
    services: dict[str, Any] = {}
    result: dict[str, Any] = {"size": spec["size"]}
    try:
        for name, app in apps.items():
            services[name] = await app.services()
            app.embedder.load()
            app.embedder.encode(["warm up"])
        single: dict[str, list[float]] = {name: [] for name in stores}
        for i in range(spec["single"]):  # one call on each store in turn: both see the same machine
            for name in (("sized", "empty") if i % 2 else ("empty", "sized")):
                text = f"{texts[i % len(texts)]} (perf write {nonce}-{name}-{i})"
                started = time.perf_counter()
                out = await apps[name].async_execute("remember", text=text, workspace_id=workspace)
                single[name].append(time.perf_counter() - started)
                if not out.metadata["created"]:
                    raise RuntimeError("remember answered created=false for a new text")
                written[name].append(out.metadata["memory"]["id"])
        result["single"] = {name: {**ms(t), "per_second": len(t) / sum(t)} for name, t in single.items()}

        half = max(1, spec["batched"] // 2)
        imported: dict[str, list[float]] = {name: [0.0, 0] for name in stores}  # seconds, memories
        kind = ""
        with tempfile.TemporaryDirectory() as tmp:
            for round_, name in enumerate(("empty", "sized", "sized", "empty")):  # ABBA: drift cancels
                batch = [f"{texts[(round_ * half + i) % len(texts)]} (perf import {nonce}-{round_}-{i})"
                         for i in range(half)]
                path = Path(tmp) / f"import-{round_}.jsonl"
                export_jsonl(path, workspace, apps[name].embedder.model_id, batch)
                started = time.perf_counter()
                raw = path.read_text(encoding="utf-8-sig")
                kind, added = await anyio.to_thread.run_sync(import_text, services[name], raw, path.name, workspace)
                imported[name][0] += time.perf_counter() - started
                imported[name][1] += added
                written[name] += [content_id(t, []) for t in batch]
                if added != len(batch):
                    raise RuntimeError(f"import added {added} of {len(batch)} memories ({kind})")
        result["batched"] = {name: {"count": count, "seconds": seconds, "per_second": count / seconds, "format": kind}
                             for name, (seconds, count) in imported.items()}
        try:  # the embedding alone, for where the import's time goes
            sample = texts[: min(256, len(texts))]
            started = time.perf_counter()
            services["sized"].embedder.encode(sample)
            result["embed_per_second"] = len(sample) / (time.perf_counter() - started)
        except Exception:  # noqa: BLE001 - a diagnostic only
            pass
        result["embedder_threads"] = getattr(apps["sized"].embedder, "_threads", None)
    finally:
        for name, ids in written.items():
            if ids and name in services:
                await anyio.to_thread.run_sync(services[name].store.delete_ids, workspace, ids)
        for app in apps.values():
            await app.close()
    return result


def worker_main(spec_path: Path) -> None:
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    spec = json.loads(spec_path.read_text())
    runner = latency_worker if spec["mode"] == "latency" else throughput_worker
    result = anyio.run(runner, spec)
    Path(spec["out"]).write_text(json.dumps(result))


# -- servers: MCP initialize and recall over HTTP -------------------------------------------------------------


async def time_initialize(store_dir: Path, overrides: list[str]) -> float:
    """Seconds from spawning `reme backend=mcp mcp.transport=stdio` to the answer to initialize."""
    from mcp import ClientSession, StdioServerParameters
    from mcp.client.stdio import stdio_client

    params = StdioServerParameters(
        command=REME, args=["backend=mcp", "mcp.transport=stdio", f"store_dir={store_dir}", *overrides],
        env=server_env(),
    )
    with open(os.devnull, "w") as errlog:
        started = time.perf_counter()
        async with stdio_client(params, errlog=errlog) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                seconds = time.perf_counter() - started
    return seconds


def initialize_times(stores: dict[str, Path], overrides: list[str], runs: int) -> dict[str, Any]:
    """Median seconds to `initialize` on each store, the stores taking turns."""
    times: dict[str, list[float]] = {name: [] for name in stores}
    for _ in range(runs):
        for name, store_dir in stores.items():
            times[name].append(anyio.run(time_initialize, store_dir, overrides))
    return {name: {"median_s": float(np.median(t)), "max_s": max(t), "runs": t} for name, t in times.items()}


class HttpRecall:
    """A real `reme backend=http` process on the same store, asked the same recalls as the in-process app."""

    def __init__(self, store_dir: Path, overrides: list[str], workspace: str):
        self.server = Server(store_dir, "http", store_dir.parent, f"http-{store_dir.name}", *overrides)
        self.workspace = workspace
        self.http: Any = None

    async def start(self, query: str, wait_for_index: bool) -> float:
        """Wait until it answers a recall (its model loaded) and its index is ready; seconds of the first recall."""
        import httpx

        await anyio.to_thread.run_sync(self.server.wait_listening)
        self.http = httpx.AsyncClient(timeout=ANN_WAIT)
        started = time.perf_counter()
        await self.recall(query)
        first = time.perf_counter() - started
        if wait_for_index:  # the index loads (or builds) in the background; the server logs when it is ready
            deadline = time.monotonic() + ANN_WAIT
            while "ANN index of" not in self.server.log() and time.monotonic() < deadline:
                await anyio.sleep(0.2)
        return first

    async def recall(self, query: str) -> None:
        response = await self.http.post(f"{self.server.url}/recall",
                                        json={"query": query, "top_k": K, "workspace_id": self.workspace})
        if response.status_code != 200:
            raise RuntimeError(f"HTTP {response.status_code}: {response.text[:300]}")

    async def stop(self) -> None:
        if self.http is not None:
            await self.http.aclose()
        await anyio.to_thread.run_sync(self.server.stop)


# -- the report -----------------------------------------------------------------------------------------------


def fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None or value != value else f"{value:.{digits}f}"


def size_report(n: int, backend: str, latency: dict[str, Any], build: dict[str, Any] | None) -> list[str]:
    lines = [f"== {n:,} memories ({backend}) =="]
    if "error" in latency:
        return lines + [f"  FAILED: {latency['error']}"]
    http = latency.get("http")
    brute = latency["brute_force"]["p50"]
    rows = [("recall end to end (in process)", latency["e2e"], None)]
    if http is not None:
        rows.append(("recall end to end (HTTP API)", http, None))
    rows += [("vector search (project)", latency["vector_search"], latency["vector_search"]["recall10"]),
             ("brute-force numpy (baseline)", latency["brute_force"], 1.0),
             ("query embedding alone", latency["query_embedding"], None)]
    lines.append(f"  {'':<32}{'p50 ms':>9}{'p95 ms':>9}{'p50 / brute':>13}{'recall@10':>11}")
    for name, row, recall in rows:
        lines.append(f"  {name:<32}{fmt(row['p50'], 3):>9}{fmt(row['p95'], 3):>9}"
                     f"{fmt(row['p50'] / brute if brute else None, 3):>13}{fmt(recall, 4):>11}")
    vs = latency["vector_search"]
    lines.append(f"  vector search answered by: {latency['searched_by']}; recall@10 worst query {fmt(vs['recall10_min'])}"
                 f" over {vs['n']} queries")
    if latency.get("plan_before"):
        lines.append(f"  database plan of a top-10 search: before the timed searches {latency['plan_before']}; after "
                     f"the recalls {latency['plan_after']}")
    ann_before = "saved index present" if latency["ann_files_before"] else "no saved index"
    if latency["backend"] == "sqlite":
        lines.append(f"  load/build (first spaces() + first search + index ready): {fmt(latency['load_build_s'])} s = "
                     f"read vectors {fmt(latency['vectors_load_s'])} s + first search "
                     f"{fmt(latency['first_search_s'], 3)} s + index ready {fmt(latency['index_ready_s'])} s "
                     f"({ann_before} at start); store open {fmt(latency['open_s'], 3)} s")
    else:
        lines.append(f"  load (first spaces() + first search): {fmt(latency['load_build_s'], 3)} s; store open "
                     f"{fmt(latency['open_s'], 3)} s")
    lines.append(f"  first recall after that {fmt(latency['first_recall_s'] * 1000, 1)} ms; recall right after a "
                 f"remember p50 {fmt(latency['recall_after_remember']['p50'], 1)} ms; after a deletion "
                 f"{fmt(latency['recall_after_delete_ms'], 1)} ms; baseline read of the vectors "
                 f"{fmt(latency['baseline_read_s'])} s")
    rss = latency["rss_mb"]
    per_m = f"{fmt(rss['per_million'] / 1024)} GB per million memories" if rss["per_million"] else "-"
    lines.append(f"  RSS: {rss['before']:.0f} MB before the store opened (model loaded), {rss['after']:.0f} MB after "
                 f"its vectors and index were loaded and searched: +{rss['delta']:.0f} MB = {per_m}; "
                 f"peak {latency['peak_rss_mb']:.0f} MB (with the baseline's copy)")
    if build is not None:
        if build.get("written"):
            lines.append(f"  store built with store.add_many: {build['written']:,} memories in {build['seconds']:.1f} s "
                         f"({build['per_second']:,.0f}/s)" + (f"; file {build['file_mb']:.0f} MB" if "file_mb" in build
                                                              else ""))
        else:
            lines.append("  store taken up from an earlier run (--reuse)"
                         + (f"; file {build['file_mb']:.0f} MB" if "file_mb" in build else ""))
    if "http_error" in latency:
        lines.append(f"  recall over the HTTP API FAILED: {latency['http_error']}")
    if http is not None:
        lines.append(f"  the HTTP API adds {fmt(http['added_ms'], 2)} ms per recall (median of per-query differences, "
                     f"the two asked in turn); a fresh server's first recall took {fmt(http['first_recall_s'])} s")
    profile = latency.get("profile")
    if profile:
        lines.append(f"  where e2e recall's time goes (cProfile of recall's body, {fmt(profile['per_call_ms'], 1)} ms "
                     "per call under the profiler; parts overlap: cumulative):")
        for name, value in profile["parts_ms"].items():
            lines.append(f"    {value:8.2f} ms  {name}")
        lines.append("    top functions by own time:")
        lines += [f"      {line}" for line in profile["top_tottime"]]
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--sizes", default="10k,100k,1m", help="comma-separated store sizes (default 10k,100k,1m)")
    parser.add_argument("--locomo", type=Path, default=None, help="LoCoMo JSON: turns are the pool, questions queries")
    parser.add_argument("--texts", type=Path, default=None, help="one text per line (10%% held out as queries)")
    parser.add_argument("--store-dir", type=Path, default=None, help="keep the stores here (default: a temp dir)")
    parser.add_argument("--reuse", action="store_true", help="take up stores built earlier in --store-dir")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--noise", default="0.02,0.04", help="per-dimension noise sigma range (default 0.02,0.04)")
    parser.add_argument("--blend", default="0,0.7",
                        help="weight range of a second sentence mixed into each memory (default 0,0.7; 0: none)")
    parser.add_argument("--remember-calls", type=int, default=200, help="sequential remember calls per store")
    parser.add_argument("--import-size", type=int, default=1000,
                        help="memories imported per store (as two JSONL files)")
    parser.add_argument("--init-runs", type=int, default=5)
    parser.add_argument("--no-http", action="store_true", help="skip recall over the HTTP API")
    parser.add_argument("--profile", choices=("auto", "always", "never"), default="auto",
                        help="cProfile e2e recall (auto: when its p50 is over the 30 ms target)")
    parser.add_argument("--pgvector-url", default=None, help="postgresql://... to measure the pgvector backend too")
    parser.add_argument("--pgvector-size", type=parse_size, default=100_000)
    parser.add_argument("--json", type=Path, default=None, help="also write every figure to this JSON file")
    parser.add_argument("--worker", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("overrides", nargs="*", help="configuration key=value, e.g. retrieval.ann_threshold=50000")
    args = parser.parse_args()
    if args.worker is not None:
        worker_main(args.worker)
        return 0

    total_started = time.perf_counter()
    sizes = [parse_size(s) for s in args.sizes.split(",") if s.strip()]
    noise = range_arg(args.noise)
    blend = range_arg(args.blend)
    command = mask_url("python " + shlex.join(sys.argv))
    print(f"$ {command}")
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())} (the machine is shared)")
    print(f"machine: {os.cpu_count()} cores, {_memory_gb():.0f} GB RAM, {_cpu_model()}; Python "
          f"{platform.python_version()}, numpy {np.__version__}, SQLite {sqlite3.sqlite_version}, "
          f"faiss {_version('faiss')}; OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}")

    tmp = None
    root = args.store_dir
    if root is None:
        tmp = tempfile.TemporaryDirectory(prefix="reme-perf-")
        root = Path(tmp.name)
    root.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {"command": command, "sizes": sizes, "noise": noise, "blend": blend, "seed": args.seed,
                              "overrides": args.overrides, "started": datetime.now(timezone.utc).isoformat()}
    try:
        source, pool, all_queries = text_source(args)
        queries = random.Random(args.seed).sample(all_queries, min(args.queries, len(all_queries)))
        log(f"embedding the pool: {source}")
        pool_vectors, model_id, pool_seconds = embed_pool(pool, args.overrides, root, args.reuse)
        print(f"data: {source}; pool embedded by {model_id} in {fmt(pool_seconds, 1)} s "
              f"({'cached' if not pool_seconds else f'{len(pool) / pool_seconds:.0f} texts/s'}); memory = normalise(pool "
              f"vector + w * another + N(0, sigma^2) per dimension), w in [{blend[0]}, {blend[1]}], sigma in "
              f"[{noise[0]}, {noise[1]}]; {len(queries)} queries")
        report.update(source=source, model_id=model_id, pool=len(pool), queries=len(queries))
        params = {"pool": hashlib.sha256(pool_vectors.tobytes()).hexdigest()[:16], "seed": args.seed,
                  "noise": list(noise), "blend": list(blend), "model_id": model_id, "block": BLOCK}
        workspace = "perf"
        results: dict[str, Any] = {}

        empty = root / "empty"  # the baseline store: remember throughput and MCP initialize are paired with it
        for n in sizes:
            entry: dict[str, Any] = {}
            results[str(n)] = entry
            entry["build"] = prepare_sqlite(root, n, workspace, {**params, "n": n}, args.reuse, pool_vectors, pool,
                                            args.overrides, args.seed, noise, blend)
            store_dir = Path(entry["build"]["store_dir"])
            log(f"{label(n)}: latency (fresh process)")
            entry["latency"] = run_worker({"mode": "latency", "backend": "sqlite", "size": n, "store_dir": str(store_dir),
                                           "workspace": workspace, "overrides": args.overrides, "queries": queries,
                                           "profile": args.profile, "profile_ms": TARGETS["e2e_p50_ms_at_100k"],
                                           "profile_queries": min(100, len(queries)), "refresh_rounds": 3,
                                           "http": not args.no_http}, root)
            log(f"{label(n)}: remember throughput, next to an empty store")
            shutil.rmtree(empty, ignore_errors=True)
            entry["throughput"] = run_worker({"mode": "throughput", "size": n, "store_dir": str(store_dir),
                                              "empty_dir": str(empty), "workspace": workspace,
                                              "overrides": args.overrides, "texts": pool[:2000],
                                              "single": args.remember_calls, "batched": args.import_size}, root)
            log(f"{label(n)}: MCP initialize, next to an empty store")
            shutil.rmtree(empty, ignore_errors=True)
            empty.mkdir()
            entry["initialize"] = initialize_times({"sized": store_dir, "empty": empty}, args.overrides, args.init_runs)
        report["sizes_results"] = results

        pg = None
        if args.pgvector_url:
            pg = measure_pgvector(args, root, pool_vectors, pool, queries, params, noise, blend)
            report["pgvector"] = pg

        lines = []
        for n in sizes:
            entry = results[str(n)]
            lines += size_report(n, "embedded SQLite store", entry["latency"], entry["build"])
            lines.append("")
        if pg is not None and "note" not in pg:
            lines += size_report(pg["size"], "pgvector", pg["latency"], pg.get("build"))
            lines.append("")
        if sizes:
            lines += throughput_report(sizes, results)
            lines.append("")
            lines += initialize_report(sizes, results)
        if pg is None:
            lines.append("pgvector: skipped (no --pgvector-url given)")
        elif "note" in pg:
            lines.append(f"pgvector: skipped ({pg['note']})")
        lines.append("")
        lines += targets_report(sizes, results)
        report["seconds"] = time.perf_counter() - total_started
        lines.append(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        lines.append(f"total run time: {report['seconds']:.0f} s; stores in {root}"
                     + (" (temporary, removed)" if tmp is not None else ""))
        print("\n".join(lines))
        if args.json is not None:
            args.json.write_text(json.dumps(report, indent=1, default=str))
    finally:
        if tmp is not None:
            tmp.cleanup()
    return 0


def mask_url(text: str) -> str:
    """A database URL's password as ***, wherever it appears in `text`."""
    return re.sub(r"(postgres(?:ql)?://[^:/@\s]*:)[^@\s]+@", r"\1***@", text)


def range_arg(text: str) -> tuple[float, float]:
    values = [float(x) for x in text.split(",")]
    return values[0], values[-1]


def ann_of_result(latency: dict[str, Any]) -> bool:
    return "index" in latency.get("searched_by", "") and "exact" not in latency.get("searched_by", "")


def throughput_report(sizes: list[int], results: dict[str, Any]) -> list[str]:
    lines = ["== remember throughput (baseline: an empty store, the two written in turn) =="]
    lines.append(f"  {'store':<8}{'single /s':>11}{'p50 ms':>9}{'p95 ms':>9}{'empty /s':>10}{'x empty':>9}"
                 f"{'import /s':>11}{'empty /s':>10}{'x empty':>9}")
    last = None
    for n in sizes:
        row = results[str(n)]["throughput"]
        if "error" in row:
            lines.append(f"  {label(n):<8}FAILED: {row['error']}")
            continue
        last = row
        single, empty = row["single"]["sized"], row["single"]["empty"]
        batched, bempty = row["batched"]["sized"], row["batched"]["empty"]
        lines.append(f"  {label(n):<8}{single['per_second']:>11.1f}{single['p50']:>9.1f}{single['p95']:>9.1f}"
                     f"{empty['per_second']:>10.1f}{single['per_second'] / empty['per_second']:>9.2f}"
                     f"{batched['per_second']:>11.1f}{bempty['per_second']:>10.1f}"
                     f"{batched['per_second'] / bempty['per_second']:>9.2f}")
    if last is not None:
        b = last["batched"]["sized"]
        lines.append(f"  single: sequential `remember` calls in process; import: `reme import FILE` (library.import_text) "
                     f"of {b['count']} memories per store ({b['format']} JSONL, two files each); the embedding "
                     f"alone runs {fmt(last.get('embed_per_second'), 0)} texts/s here, on "
                     f"{last.get('embedder_threads')} torch thread(s)")
    return lines


def initialize_report(sizes: list[int], results: dict[str, Any]) -> list[str]:
    lines = ["== MCP initialize over stdio: spawn `reme` -> initialize answered (median; baseline: an empty store, "
             "in turn) =="]
    for n in sizes:
        row = results[str(n)]["initialize"]
        sized, empty = row["sized"], row["empty"]
        lines.append(f"  {label(n):<8}{sized['median_s']:.3f} s (max {sized['max_s']:.3f} s); empty store "
                     f"{empty['median_s']:.3f} s; x empty {sized['median_s'] / empty['median_s']:.2f}")
    return lines


def targets_report(sizes: list[int], results: dict[str, Any]) -> list[str]:
    lines = ["== targets (issue 8) =="]

    def verdict(ok: bool) -> str:
        return "met" if ok else "MISSED"

    t = TARGETS
    latency = {n: results[str(n)]["latency"] for n in sizes if "error" not in results[str(n)]["latency"]}
    if 1_000_000 in latency:
        vs = latency[1_000_000]["vector_search"]
        lines.append(f"  vector search at 1M p50 < {t['vector_p50_ms_at_1m']:g} ms: {vs['p50']:.3f} ms, "
                     f"{verdict(vs['p50'] < t['vector_p50_ms_at_1m'])}; recall@10 >= {t['vector_recall10_at_1m']:g}: "
                     f"{vs['recall10']:.4f}, {verdict(vs['recall10'] >= t['vector_recall10_at_1m'])}")
    else:
        lines.append("  vector search at 1M: not measured in this run (--sizes has no 1m)")
    if 100_000 in latency:
        e2e = latency[100_000]["e2e"]["p50"]
        lines.append(f"  end-to-end recall at 100k p50 < {t['e2e_p50_ms_at_100k']:g} ms: {e2e:.1f} ms, "
                     f"{verdict(e2e < t['e2e_p50_ms_at_100k'])}")
    else:
        lines.append("  end-to-end recall at 100k: not measured in this run")
    if sizes:
        worst = max(results[str(n)]["initialize"]["sized"]["median_s"] for n in sizes)
        lines.append(f"  MCP initialize < {t['initialize_s']:g} s: worst median {worst:.3f} s, "
                     f"{verdict(worst < t['initialize_s'])}")
    return lines


def measure_pgvector(args: argparse.Namespace, root: Path, pool_vectors: np.ndarray, pool: list[str],
                     queries: list[str], params: dict[str, Any], noise: tuple[float, float],
                     blend: tuple[float, float]) -> dict[str, Any]:
    """(a), (b), (c) and recall@10 against the pgvector backend, at --pgvector-size memories."""
    from reme_mcp.config import load_config
    from reme_mcp.errors import ConfigError

    overrides = [*args.overrides, "vector_store.default.backend=pgvector", f"vector_store.default.url={args.pgvector_url}"]
    try:
        load_config(*overrides)
    except ConfigError as exc:
        return {"note": f"this reme-mcp does not take the pgvector configuration: {exc}"}
    n = args.pgvector_size
    tag = hashlib.sha256(json.dumps({**params, "n": n}, sort_keys=True).encode()).hexdigest()[:8]
    workspace = f"perf-{label(n).lower()}-{tag}"  # the parameters are in the name: --reuse takes up only the same
    scratch = root / "pgvector"
    scratch.mkdir(exist_ok=True)
    log(f"pgvector: {'taking up or ' if args.reuse else ''}building workspace {workspace}")
    try:
        build = anyio.run(build_store, scratch, workspace, n, pool_vectors, pool, overrides, args.seed, noise,
                          blend, not args.reuse)
    except Exception as exc:  # noqa: BLE001 - an unreachable server is a note, not a crash of the whole run
        return {"note": mask_url(f"could not write to {args.pgvector_url}: {type(exc).__name__}: {exc}")}
    log(f"pgvector {label(n)}: latency (fresh process)")
    latency = run_worker({"mode": "latency", "backend": "pgvector", "size": n, "store_dir": str(scratch),
                          "workspace": workspace, "overrides": overrides, "queries": queries, "profile": args.profile,
                          "profile_ms": TARGETS["e2e_p50_ms_at_100k"], "profile_queries": min(100, len(queries)),
                          "refresh_rounds": 3, "http": not args.no_http}, root)
    return {"size": n, "workspace": workspace, "build": build, "latency": latency}


def _memory_gb() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) / 2**20
    return float("nan")


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.machine()


def _version(module: str) -> str:
    try:
        return __import__(module).__version__
    except Exception:  # noqa: BLE001
        return "absent"


if __name__ == "__main__":
    sys.exit(main())
