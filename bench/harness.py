"""What bench/load.py and bench/crash.py share: real `reme` servers on loopback, their clients, and a check of
the store file written independently of reme_mcp/store (raw SQLite, so a bug there cannot hide itself).

Not a benchmark by itself; tests/test_load.py and tests/test_crash.py import it through the bench modules.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from reme_mcp.store.base import embedding_text

REME = str(Path(sys.executable).with_name("reme"))
STORE_FILE = "memory.sqlite3"
FACES = ("http", "mcp")


def server_env() -> dict[str, str]:
    """This environment minus anything that would point a server at a real endpoint or another store."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLOW_", "REME_"))}
    env["HF_HUB_OFFLINE"] = "1"
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


class FlowError(Exception):
    """A flow answered with success false / isError, or the request itself failed."""


class Server:
    """One `reme` process serving `store_dir` on a free loopback port, over the HTTP API or MCP streamable HTTP."""

    def __init__(self, store_dir: Path, face: str, log_dir: Path, name: str, *extra: str):
        if face not in FACES:
            raise ValueError(f"face must be one of {FACES}")
        self.face, self.name, self.port = face, name, free_port()
        self.log_path = log_dir / f"{name}.log"
        args = (["backend=http", f"http.port={self.port}"] if face == "http"
                else ["backend=mcp", "mcp.transport=streamable-http", f"mcp.port={self.port}"])
        self.started = time.monotonic()
        with self.log_path.open("w") as log:
            self.proc = subprocess.Popen(
                [REME, *args, f"store_dir={store_dir}", *extra],
                stdout=subprocess.DEVNULL, stderr=log, env=server_env(), start_new_session=True,
            )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}" + ("/mcp" if self.face == "mcp" else "")

    def wait_listening(self, timeout: float = 120.0) -> float:
        """Seconds from start until the port accepts connections."""
        deadline = time.monotonic() + timeout
        while True:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return time.monotonic() - self.started
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self.log()[-3000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} did not listen within {timeout:.0f} s:\n{self.log()[-3000:]}")
            time.sleep(0.05)

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM and wait; SIGKILL if it does not go. Returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def kill(self) -> None:
        """kill -9, now."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


class HttpClient:
    """`POST /<flow>` with httpx; returns the envelope's `metadata` (the flow output)."""

    def __init__(self, http: httpx.AsyncClient, base: str):
        self.http, self.base = http, base

    async def call(self, flow: str, arguments: dict[str, Any]) -> dict[str, Any]:
        try:
            response = await self.http.post(f"{self.base}/{flow}", json=arguments)
            body = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise FlowError(f"{type(exc).__name__}: {exc}") from exc
        if response.status_code != 200 or not body.get("success"):
            raise FlowError(f"HTTP {response.status_code}: {body.get('answer')}")
        return body["metadata"]


class McpClient:
    """The MCP SDK's ClientSession over streamable HTTP; returns a tool's `structuredContent`."""

    def __init__(self, session: Any):
        self.session = session

    async def call(self, flow: str, arguments: dict[str, Any]) -> dict[str, Any]:
        try:
            result = await self.session.call_tool(flow, arguments)
        except Exception as exc:  # transport failures and MCP errors alike are the client's error
            raise FlowError(f"{type(exc).__name__}: {exc}") from exc
        if result.is_error:
            raise FlowError(" ".join(getattr(c, "text", "") for c in result.content))
        return result.structured_content or {}


@asynccontextmanager
async def client_for(server: Server, timeout: float = 300.0) -> AsyncIterator[HttpClient | McpClient]:
    """A client of the server's own face (one connection / one MCP session per client)."""
    if server.face == "http":
        async with httpx.AsyncClient(timeout=timeout) as http:
            yield HttpClient(http, server.url)
        return
    import httpx2
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    async with httpx2.AsyncClient(timeout=timeout) as http:
        async with streamable_http_client(server.url, http_client=http) as streams:
            async with ClientSession(streams[0], streams[1]) as session:
                await session.initialize()
                yield McpClient(session)


# -- the store file, checked raw -------------------------------------------------------------------------


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass
class StoreCheck:
    """What the raw file says; `problems` is empty when every check passed."""

    rows: int = 0
    cell_keys: int = 0
    ann_vectors: int = 0
    problems: list[str] = field(default_factory=list)
    texts: dict[tuple[str, str], str] = field(default_factory=dict)  # (workspace, id) -> text
    seconds: float = 0.0

    def fail(self, message: str) -> None:
        self.problems.append(message)


def fts_token_query(token: str) -> str:
    return '"' + token.replace('"', '""') + '"'


def check_store(
    path: Path,
    present: dict[tuple[str, str], str],
    absent: Iterable[tuple[str, str]] = (),
    tokens: dict[tuple[str, str], str] | None = None,
    workspaces: Iterable[str] | None = None,
    allowed_extra: set[str] | None = None,
) -> StoreCheck:
    """Check the SQLite file at `path` against what clients were told.

    - the file: `PRAGMA integrity_check`;
    - lexical index: FTS5 'integrity-check' with rank=1 (the index against the content rows), and each
      memory's unique `tokens` entry matches its row and only it (none for an absent memory);
    - vectors: every blob is 4 * embedding_dim bytes, model and dim as the store's meta says;
    - cells: no keys of a deleted memory, each blob 4 * count * dim bytes, same workspace as the memory;
    - rows: every checksum (text_sha256) is the text's; every `present` memory is there with exactly that
      text; no `absent` one is; with `workspaces`, nothing else is in them except texts in `allowed_extra`
      (writes in flight when a server died, which may or may not have landed).
    - counters: each workspace's memory_count and last_rowid (schema 5) agree with its rows;
    - ANN indexes (`<store_dir>/ann/*.faiss`): each loads, its ids ascending, none above the last rowid the
      store issued, its size as its sidecar says, and every vector of a memory still present equals the
      store's (the index is a cache: a missing memory is fine, a wrong one is not).
    """
    started = time.monotonic()
    check = StoreCheck()
    db = sqlite3.connect(path, timeout=60)
    try:
        result = [r[0] for r in db.execute("PRAGMA integrity_check")]
        if result != ["ok"]:
            check.fail(f"PRAGMA integrity_check: {result[:5]}")
        try:
            db.execute("INSERT INTO memories_fts(memories_fts, rank) VALUES('integrity-check', 1)")
        except sqlite3.DatabaseError as exc:
            check.fail(f"FTS5 integrity-check: {exc}")
        db.rollback()
        meta = dict(db.execute("SELECT key, value FROM meta"))
        model, dim = meta.get("embedding_model"), int(meta.get("embedding_dim") or 0)
        rows = db.execute(
            "SELECT rowid, workspace_id, id, text, text_sha256, embedding_model, embedding_dim, length(embedding) "
            "FROM memories"
        ).fetchall()
        check.rows = len(rows)
        rowid_of: dict[tuple[str, str], int] = {}
        for rowid, ws, mid, text, digest, emodel, edim, blob in rows:
            check.texts[(ws, mid)] = text
            rowid_of[(ws, mid)] = rowid
            if digest != sha256(text):
                check.fail(f"checksum: row {rowid} ({ws}/{mid}) has text_sha256 {digest[:12]}.. != sha256(text)")
            if blob != 4 * edim:
                check.fail(f"vector: row {rowid} blob is {blob} bytes for dim {edim}")
            if (emodel, edim) != (model, dim):
                check.fail(f"vector: row {rowid} is {emodel}/{edim}-d, the store says {model}/{dim}-d")
        for (ws, mid), text in present.items():
            stored = check.texts.get((ws, mid))
            if stored is None:
                check.fail(f"lost: acknowledged {ws}/{mid} is not in the store ({text[:60]!r})")
            elif stored != text:
                check.fail(f"changed: {ws}/{mid} holds {stored[:60]!r}, acknowledged {text[:60]!r}")
        for key in absent:
            if key in check.texts:
                check.fail(f"resurrected: acknowledged-forgotten {key[0]}/{key[1]} is still in the store")
        if workspaces is not None:
            extra_ok = allowed_extra or set()
            for (ws, mid), text in check.texts.items():
                if ws in set(workspaces) and (ws, mid) not in present and text not in extra_ok:
                    check.fail(f"phantom: {ws}/{mid} is in the store but was never acknowledged ({text[:60]!r})")
        for key, token in (tokens or {}).items():
            hits = [r[0] for r in db.execute(
                "SELECT rowid FROM memories_fts WHERE memories_fts MATCH ?", (fts_token_query(token),))]
            want = [rowid_of[key]] if key in rowid_of else []
            if hits != want:
                check.fail(f"lexical: token {token!r} of {key[0]}/{key[1]} matches rowids {hits}, rows say {want}")
        orphans = db.execute(
            "SELECT count(*) FROM cell_keys k LEFT JOIN memories m ON m.rowid = k.memory_rowid WHERE m.rowid IS NULL"
        ).fetchone()[0]
        if orphans:
            check.fail(f"cells: {orphans} cell_keys rows belong to no memory")
        bad = db.execute(
            "SELECT k.memory_rowid, k.count, k.dim, length(k.keys) FROM cell_keys k "
            "WHERE length(k.keys) != 4 * k.count * k.dim OR k.count < 1"
        ).fetchall()
        for rowid, count, kdim, size in bad[:10]:
            check.fail(f"cells: keys of row {rowid} are {size} bytes for {count} x {kdim}")
        mismatched = db.execute(
            "SELECT count(*) FROM cell_keys k JOIN memories m ON m.rowid = k.memory_rowid "
            "WHERE m.workspace_id != k.workspace_id"
        ).fetchone()[0]
        if mismatched:
            check.fail(f"cells: {mismatched} cell_keys rows name another workspace than their memory")
        off = db.execute(
            "SELECT w.id, w.memory_count, count(m.rowid), w.last_rowid, coalesce(max(m.rowid), 0) FROM workspaces w "
            "LEFT JOIN memories m ON m.workspace_id = w.id GROUP BY w.id "
            "HAVING w.memory_count != count(m.rowid) OR w.last_rowid < coalesce(max(m.rowid), 0)"
        ).fetchall()
        for ws, counted, actual, last, top in off[:10]:
            check.fail(f"counters: workspace {ws} says {counted} memories / last rowid {last}, rows say {actual} / {top}")
        check_ann(db, path.parent / "ann", check)
        check.cell_keys = db.execute("SELECT count(*) FROM cell_keys").fetchone()[0]
        dims = db.execute("SELECT DISTINCT dim FROM cell_keys").fetchall()
        if len(dims) > 1:
            check.fail(f"cells: keys of several dims {dims}")
    finally:
        db.close()
    check.seconds = time.monotonic() - started
    return check


def check_ann(db: sqlite3.Connection, directory: Path, check: StoreCheck) -> None:
    """Every saved HNSW index against the rows (see check_store)."""
    if not directory.is_dir():
        return
    import faiss

    issued = (db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'memories'").fetchone() or (0,))[0]
    for path in sorted(directory.glob("*.faiss")):
        try:
            index = faiss.read_index(str(path))
            meta = json.loads(path.with_suffix(".json").read_text())
        except (OSError, RuntimeError, ValueError) as exc:
            check.fail(f"ann: {path.name} does not load: {exc}")
            continue
        ids = faiss.vector_to_array(index.id_map)
        check.ann_vectors += len(ids)
        if meta.get("size") != len(ids):
            check.fail(f"ann: {path.name} holds {len(ids)} vectors, its sidecar says {meta.get('size')}")
        if len(ids) and (np.any(np.diff(ids) <= 0) or ids[-1] > issued):
            check.fail(f"ann: {path.name} ids are not ascending or pass the last rowid issued ({issued})")
        for rowid in ids[:: max(1, len(ids) // 200)]:
            row = db.execute("SELECT embedding FROM memories WHERE rowid = ?", (int(rowid),)).fetchone()
            # the index keeps 8-bit vectors (re-scored exactly at query time): the same vector has a cosine of
            # 0.99+ with the store's, another memory's far lower
            if row is not None and float(np.frombuffer(row[0], dtype=np.float32) @ index.reconstruct(int(rowid))) < 0.95:
                check.fail(f"ann: {path.name} vector of rowid {rowid} is not the store's")


def vectors_match(path: Path, keys: list[tuple[str, str]], embedder: Any, minimum: float = 0.999) -> list[str]:
    """Embed the stored text of each memory again with the real model and compare with its stored vector."""
    problems = []
    db = sqlite3.connect(path, timeout=60)
    try:
        rows = []
        for ws, mid in keys:
            row = db.execute(
                "SELECT text, keywords, embedding_dim, embedding FROM memories WHERE workspace_id = ? AND id = ?",
                (ws, mid),
            ).fetchone()
            if row is not None:
                rows.append(((ws, mid), row))
    finally:
        db.close()
    if not rows:
        return problems
    fresh = embedder.encode([embedding_text(text, json.loads(kw)) for _, (text, kw, _, _) in rows])
    for ((ws, mid), (_, _, dim, blob)), again in zip(rows, fresh):
        stored = np.frombuffer(blob, dtype=np.float32, count=dim)
        cosine = float(stored @ again / (np.linalg.norm(stored) * np.linalg.norm(again) or 1.0))
        if cosine < minimum:
            problems.append(f"vector: {ws}/{mid} stored vector has cosine {cosine:.4f} with its text's embedding")
    return problems


def log_lines(text: str, *needles: str) -> list[str]:
    """Lines of a server log that contain any of the needles (case-insensitive)."""
    lowered = [n.lower() for n in needles]
    return [line for line in text.splitlines() if any(n in line.lower() for n in lowered)]


@dataclass
class LogFindings:
    problems: list[str] = field(default_factory=list)  # "locked", ERROR, Traceback
    warnings: list[str] = field(default_factory=list)  # every other WARNING line


def read_log(name: str, text: str) -> LogFindings:
    found = LogFindings()
    for line in text.splitlines():
        lowered = line.lower()
        if "locked" in lowered or " error " in lowered or "traceback" in lowered:
            found.problems.append(f"{name} log: {line}")
        elif " warning " in lowered:
            found.warnings.append(f"{name}: {line}")
    return found


def verdict(problems: list[str], passed: str) -> list[str]:
    """The last lines of a bench report: every problem (the first 50), or what passed."""
    if not problems:
        return [f"OK: {passed}"]
    return [f"FAILED: {len(problems)} problems", *[f"  {p}" for p in problems[:50]]]
