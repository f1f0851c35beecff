"""Every face of the server behind one call, for tests written in plain synchronous code.

`Face.call(flow, arguments)` sends the arguments through that face exactly as a client
would (Python: `ReMeApp.run`; MCP: the SDK's `ClientSession.call_tool` over stdio or
streamable HTTP; HTTP API: a JSON body POSTed to `/<flow>`) and says what came back:
an answer, a clear error, or an internal error (the server's own word for a bug).

`StoreState` reads everything a server keeps under its store directory (and, in the pgvector
pass, in its database), with its own connection, so a test can prove that a refused call changed nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import httpx2
import mcp_types as types
import pytest
from anyio.from_thread import BlockingPortal
from conftest import STORE_ENV, mcp_stdio, own_store, reme_server, store_db, store_exists
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from reme_mcp import ReMeApp
from reme_mcp.errors import ReMeError
from reme_mcp.library import packs
from reme_mcp.working.files import DIRECTORY

CALL_SECONDS = 120  # a client gives up on one call after this: a hang fails the test instead of stalling it
INTERNAL = "Internal error"  # how MCP and HTTP report an exception that is not a ReMeError


@dataclass
class Answer:
    ok: bool
    text: str  # the answer, or the error message
    data: Any = None  # structured output (MCP structuredContent, HTTP metadata, Python model_dump)
    internal: bool = False  # the server reported a bug, not a clear error
    status: int | None = None  # HTTP only


class Face:
    name: str
    store_dir: Path
    outside: Path  # a folder beside the store that no call may read or write

    def call(self, flow: str, arguments: Any) -> Answer:
        raise NotImplementedError


class PythonFace(Face):
    name = "python"

    def __init__(self, portal: BlockingPortal, app: ReMeApp, store_dir: Path):
        self.portal, self.app, self.store_dir = portal, app, store_dir

    def call(self, flow: str, arguments: Any) -> Answer:
        return self.portal.call(self._run, flow, arguments)

    async def _run(self, flow: str, arguments: Any) -> Answer:
        try:
            output = await self.app.run(flow, arguments)
        except ReMeError as exc:
            return Answer(False, str(exc))
        except Exception as exc:
            return Answer(False, f"{type(exc).__name__}: {exc}", internal=True)
        try:  # what Python returns must be sendable by every other face
            data = output.model_dump(mode="json")
            text = output.render()
            json.dumps([text, data], ensure_ascii=False, allow_nan=False).encode("utf-8")
        except Exception as exc:
            return Answer(False, f"the output cannot be sent as JSON: {type(exc).__name__}: {exc}", internal=True)
        return Answer(True, text, data)


class McpFace(Face):
    port: int | None = None  # streamable HTTP only

    def __init__(self, name: str, portal: BlockingPortal, session: ClientSession, store_dir: Path):
        self.name, self.portal, self.session, self.store_dir = name, portal, session, store_dir

    def call(self, flow: str, arguments: Any) -> Answer:
        try:
            result = self.portal.call(self.session.call_tool, flow, arguments, CALL_SECONDS)
        except MCPError as exc:  # a JSON-RPC error instead of a tool result: clear, unless it is a bug or no answer
            return Answer(False, f"JSON-RPC error {exc.code}: {exc.message}",
                          internal=exc.code in (types.INTERNAL_ERROR, types.REQUEST_TIMEOUT))
        text = result.content[0].text if result.content else ""
        return Answer(not result.is_error, text, result.structured_content,
                      internal=bool(result.is_error) and text.startswith(INTERNAL))


class HttpFace(Face):
    name = "http"

    def __init__(self, client: httpx.Client, store_dir: Path):
        self.client, self.store_dir = client, store_dir

    def call(self, flow: str, arguments: Any) -> Answer:
        # json.dumps writes what Python can hold and JSON parsers still read: "\ud800" escapes, NaN, 5,000-digit ints
        return self.post(f"/{flow}", json.dumps(arguments).encode())

    def post(self, path: str, body: bytes) -> Answer:
        response = self.client.post(path, content=body, headers={"Content-Type": "application/json"})
        try:
            envelope = response.json()
            assert set(envelope) == {"answer", "success", "metadata"}
        except (ValueError, AssertionError):
            return Answer(False, f"HTTP {response.status_code} without an envelope: {response.text[:300]}",
                          internal=True, status=response.status_code)
        ok = response.status_code == 200 and envelope["success"] is True
        internal = response.status_code == 500 and envelope["answer"].startswith(INTERNAL)
        return Answer(ok, envelope["answer"], envelope["metadata"], internal=internal, status=response.status_code)


# -- starting the faces ---------------------------------------------------------------------------------------


@contextmanager
def no_llm_and_no_hub() -> Iterator[None]:
    """The in-process app: no LLM endpoint from the developer's environment, no model download."""
    with pytest.MonkeyPatch.context() as patch:
        for name in [n for n in os.environ if n.startswith(("FLOW_", "REME_")) and n not in STORE_ENV]:
            patch.delenv(name)
        patch.setenv("HF_HUB_OFFLINE", "1")
        yield


@contextmanager
def python_face(portal: BlockingPortal, store_dir: Path, *overrides: str) -> Iterator[PythonFace]:
    with no_llm_and_no_hub():
        app = ReMeApp(*overrides, store_dir=str(store_dir), log_level="WARNING")
    with portal.wrap_async_context_manager(app):
        yield PythonFace(portal, app, store_dir)


@contextmanager
def stdio_face(portal: BlockingPortal, store_dir: Path, *overrides: str) -> Iterator[McpFace]:
    with portal.wrap_async_context_manager(mcp_stdio(store_dir, "mcp.tools=all", *overrides)) as session:
        yield McpFace("mcp-stdio", portal, session, store_dir)


@asynccontextmanager
async def _streamable_http_session(port: int) -> AsyncIterator[ClientSession]:
    async with httpx2.AsyncClient(timeout=CALL_SECONDS) as http:
        async with streamable_http_client(f"http://127.0.0.1:{port}/mcp", http_client=http) as streams:
            async with ClientSession(streams[0], streams[1]) as session:
                await session.initialize()
                yield session


@contextmanager
def streamable_http_face(portal: BlockingPortal, store_dir: Path, *overrides: str) -> Iterator[McpFace]:
    with reme_server(store_dir, "backend=mcp", "mcp.transport=streamable-http", "mcp.tools=all", *overrides) as port:
        with portal.wrap_async_context_manager(_streamable_http_session(port)) as session:
            face = McpFace("mcp-http", portal, session, store_dir)
            face.port = port
            yield face


@contextmanager
def http_face(store_dir: Path, *overrides: str) -> Iterator[HttpFace]:
    with reme_server(store_dir, "backend=http", *overrides) as port:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=CALL_SECONDS) as client:
            yield HttpFace(client, store_dir)


# -- what the store holds ---------------------------------------------------------------------------------------

TABLES = ("meta", "workspaces", "memories", "tool_calls", "aliases", "cell_keys", "cell_models")
NOT_STORE = ("memory.sqlite3", "memory.sqlite3-wal", "memory.sqlite3-shm")


@dataclass(frozen=True)
class StoreState:
    """Every row of every table and every file and folder under the store directory, read at one moment."""

    rows: dict[str, list[tuple]]
    columns: dict[str, list[str]]
    retention: dict[str, float | None]
    files: dict[str, str]

    @classmethod
    def read(cls, store_dir: Path) -> "StoreState":
        rows: dict[str, list[tuple]] = {}
        columns: dict[str, list[str]] = {}
        if store_exists(store_dir):
            with store_db(store_dir) as db:
                for table in TABLES:
                    cursor = db.execute(f"SELECT * FROM {table}")
                    columns[table] = [c[0] for c in cursor.description]
                    rows[table] = sorted((tuple(row) for row in cursor.fetchall()), key=repr)
        workspaces = rows.get("workspaces", [])
        retention = {}
        if workspaces:
            at = columns["workspaces"].index
            retention = {row[at("id")]: row[at("retention")] for row in workspaces}
        return cls(rows, columns, retention, tree(store_dir, skip=NOT_STORE))

    def live(self, now: float) -> dict[str, Any]:
        """What callers can see at `now`: memories past their expiry (or their workspace's retention) are
        invisible and any call may purge them, so they, and what hangs on them, are left out."""
        if "memories" not in self.rows:
            return {"files": self.files}
        at = self.columns["memories"].index

        def expired(row: tuple) -> bool:
            expires, retention = row[at("expires_at")], self.retention.get(row[at("workspace_id")])
            if expires is not None:
                return expires <= now
            return retention is not None and row[at("created_at")] <= now - retention

        memories = [row for row in self.rows["memories"] if not expired(row)]
        rowids = {row[at("rowid")] for row in memories}
        ids = {(row[at("workspace_id")], row[at("id")]) for row in memories}
        tables = dict(self.rows, memories=memories)
        cell_at = self.columns["cell_keys"].index("memory_rowid")
        tables["cell_keys"] = [row for row in self.rows["cell_keys"] if row[cell_at] in rowids]
        alias = self.columns["aliases"].index
        tables["aliases"] = [
            row for row in self.rows["aliases"] if (row[alias("workspace_id")], row[alias("memory_id")]) in ids
        ]
        return {"tables": tables, "files": self.files}


def unchanged(before: StoreState, after: StoreState) -> bool:
    now = time.time()
    return before.live(now) == after.live(now)


def tree(root: Path, skip: tuple[str, ...] = ()) -> dict[str, str]:
    """Every file (by content digest), folder and link under `root`, except top-level names in `skip` and logs."""
    found: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            relative = path.relative_to(root).as_posix()
            if relative in skip or (dirpath == str(root) and name.endswith(".log")):
                continue
            if path.is_symlink():
                found[relative] = "-> " + os.readlink(path)
            elif path.is_file():
                found[relative] = hashlib.sha256(path.read_bytes()).hexdigest()
            elif path.is_dir():
                found[relative + "/"] = "folder"
    return found


def short(value: Any, limit: int = 300) -> str:
    """A value as a failure message shows it: cut, and safe to print whatever it holds."""
    try:
        shown = repr(value)
    except (ValueError, RecursionError):  # a 5,000-digit integer, or nesting 10,000 levels deep
        shown = f"<{type(value).__name__} too large to show>"
    return shown if len(shown) <= limit else shown[: limit - 3] + "..."


# -- a store worth attacking ---------------------------------------------------------------------------------

SEED_CHAT = "seed"
LOG_FILE = "seed/0001-call_log.txt"  # 300 log lines, one of them ROLLBACK
AAAA_FILE = "seed/0002-call_aaaa.txt"  # one line of 20,000 a's and a '!': food for catastrophic regexes
ROLLBACK = "The rollback tag for the ETL release is etl-2026.11.19-rc4."
SECRET = "OUTSIDE-THE-STORE-7f3a9c"  # in every file outside the store; no answer may ever contain it


def seed(face: Face) -> None:
    """Memories, tool calls and offloaded files to aim at, plus an outside folder with links to it planted inside."""
    for text, keywords in [("The staging database password rotates every Monday.", ["staging", "password"]),
                           ("Bob's favourite editor is Helix.", ["Bob", "editor"]),
                           ("The team lunch is on Fridays at the noodle bar.", ["lunch"])]:
        expect_ok(face, "remember", {"text": text, "keywords": keywords, "tags": ["seed"], "workspace_id": "fuzz"})
    expect_ok(face, "add_tool_call_result", {"tool_call_results": [
        {"tool_name": "grep", "input": {"pattern": "x"}, "output": "3 matches", "success": True, "time_cost": 0.2}]})
    log = [f"2026-11-20T02:00:{i % 60:02d}Z INFO worker-{i % 7} step {i} done" for i in range(300)]
    log[150] = ROLLBACK
    messages = [
        {"role": "user", "content": "Why did the nightly ETL fail?"},
        {"role": "assistant", "tool_calls": [{"id": "call_log", "function": {"name": "cat", "arguments": "{}"}},
                                             {"id": "call_aaaa", "function": {"name": "cat", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "call_log", "content": "\n".join(log)},
        {"role": "tool", "tool_call_id": "call_aaaa", "content": "a" * 20_000 + "!"},
        {"role": "assistant", "content": "Found it."},
    ]
    summary = expect_ok(face, "summary_working_memory", {
        "messages": messages, "working_summary_mode": "compact", "chat_id": SEED_CHAT, "max_total_tokens": 100,
        "max_tool_message_tokens": 100, "keep_recent_count": 0})
    assert [f["file"] for f in summary.data["files"]] == [LOG_FILE, AAAA_FILE]
    plant(face)


def plant(face: Face) -> None:
    """Links inside the store that lead out of it, as a careless (or hostile) hand might leave them."""
    face.outside.mkdir(exist_ok=True)
    (face.outside / "secret.txt").write_text(f"{SECRET}\n{ROLLBACK}\n")
    (face.outside / "folder").mkdir(exist_ok=True)
    (face.outside / "folder" / "secret.txt").write_text(f"{SECRET}\n")
    working = face.store_dir / DIRECTORY / "default"  # the default workspace's working memory
    (working / "evil-link").symlink_to(face.outside / "folder", target_is_directory=True)
    (working / SEED_CHAT / "9999-leak.txt").symlink_to(face.outside / "secret.txt")
    shutil.copytree(packs.SHIPPED / "coding-agent", face.outside / "pack", dirs_exist_ok=True)
    (face.store_dir / "library").mkdir(exist_ok=True)
    (face.store_dir / "library" / "evil-pack").symlink_to(face.outside / "pack", target_is_directory=True)


def expect_ok(face: Face, flow: str, arguments: dict[str, Any]) -> Answer:
    answer = face.call(flow, arguments)
    assert answer.ok, f"{face.name} {flow}: {answer.text}"
    return answer


def assert_still_serves(face: Face, note: str) -> None:
    """A normal remember and recall still work: the face and its store survived whatever came before."""
    text = f"After the {note} on {face.name} the server still remembers this."
    stored = expect_ok(face, "remember", {"text": text, "workspace_id": "after"})
    query = f"what does the server remember after the {note}"
    found = expect_ok(face, "recall", {"query": query, "workspace_id": "after"})
    assert found.data["memories"][0]["id"] == stored.data["memory"]["id"]
    assert found.data["memories"][0]["text"] == text


@contextmanager
def seeded_face(kind: str, portal: BlockingPortal, root: Path) -> Iterator[Face]:
    """A face of `kind` (python, mcp-stdio, mcp-http, http) on a seeded store in root/store, outside beside it.

    The store outlives the tests that use it (it is the module's), so it has a database of its own."""
    store = root / "store"
    store.mkdir()
    with own_store(store) as overrides:
        start = {
            "python": lambda: python_face(portal, store, *overrides),
            "mcp-stdio": lambda: stdio_face(portal, store, *overrides),
            "mcp-http": lambda: streamable_http_face(portal, store, *overrides),
            "http": lambda: http_face(store, *overrides),
        }[kind]
        with start() as face:
            face.outside = root / "outside"
            seed(face)
            yield face
