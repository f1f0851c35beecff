"""The `reme` command: start a server, or run any flow from the shell.

    reme backend=mcp mcp.transport=stdio          # the MCP server (the default)
    reme backend=http http.port=8002              # the HTTP API
    reme remember "Alice prefers tea" --keywords "alice, tea"
    reme recall "what does Alice drink?" --top_k 3
    reme forget 1a2b3c4d5e6f7a8b
    reme train episodes.json [workspace_id=w]      # store and train episodes into memory cells
    reme recall                                    # no phrase: keep asking, like ReMemory's recall_memory.py
    reme reembed embedding_model.default.model_name=...
    reme backup ~/reme-backup-2026-11-22           # a consistent copy of a live store
    reme check                                     # verify every index against the rows, repair

Flow commands come from the same table as the MCP tools: a flow's required fields
are its positional arguments, every field is also `--name value`.
"""

from __future__ import annotations

import json
import logging
import sys
from typing import Any, NoReturn

import anyio

from reme_mcp.config import Config, help_text, is_override, load_config
from reme_mcp.errors import ConfigError, ReMeError
from reme_mcp.flows import FLOWS, Flow

USAGE = """usage: reme [COMMAND] [ARGS] [key=value ...]

Memory for LLM agents over MCP, HTTP and Python.

Commands:
  (none) | serve      run the server chosen by backend= (default: MCP over stdio)
{flows}
  train FILE          store the episodes of FILE (JSON array or JSONL) and train the memory cells
                      (no FILE: retrain what is stored); workspace_id=NAME picks the workspace
  library list|load NAME|dump WORKSPACE FOLDER
                      memory packs: list them (and the workspaces), load one, dump a workspace as one
  export WORKSPACE FILE [--redact] / import FILE
                      move a workspace as versioned JSONL (--redact: secrets replaced by [REDACTED:kind]);
                      import also reads ReMe task-memory JSONL and
                      the MCP memory server's memory.jsonl (workspace_id=NAME picks the target)
  reembed             recompute every stored vector with the configured embedding model
                      (after changing embedding_model.*; texts are kept, nothing is lost)
  backup PATH         copy the store (database, working memory, library) to the new folder PATH while
                      servers keep running; serve the copy with store_dir=PATH (pgvector: use pg_dump)
  check               verify the store file and every index against the rows; rebuild what disagrees
                      (pgvector: every text's checksum, the lexical and HNSW indexes)
  encrypt             encrypt an existing plain store with REME_ENCRYPTION_KEY (privacy.encryption_key);
                      stop every server using the store first

Backends:
  backend=mcp  mcp.transport=stdio|sse|streamable-http  [mcp.host=127.0.0.1 mcp.port=8001]
  backend=http http.port=8002   POST /<flow> with a JSON body, GET /health, GET /openapi.json

Flow options: --json prints the whole {{answer, success, metadata}} envelope.

Configuration keys (key=value; also .env / environment, see example.env):
{keys}

Exit codes: 0 ok, 1 the flow refused (message on stderr), 2 bad command line or configuration.
"""


def usage() -> str:
    flows = "\n".join(
        f"  {flow.name:<18}  {' '.join(f'<{f}>' for f in _positionals(flow))}  {flow.description.split('. ')[0]}."
        for flow in FLOWS.values()
    )
    return USAGE.format(flows=flows, keys=help_text())


def _positionals(flow: Flow) -> list[str]:
    if flow.positional is not None:
        return list(flow.positional)
    return [name for name, field in flow.input.model_fields.items() if field.is_required()]


def fail(message: str, code: int = 2) -> NoReturn:
    print(f"reme: {message}", file=sys.stderr)
    raise SystemExit(code)


def setup_logging(config: Config) -> None:
    # stderr only: in stdio mode stdout belongs to JSON-RPC.
    logging.basicConfig(
        stream=sys.stderr, level=config.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


def _flow_arguments(flow: Flow, tokens: list[str]) -> tuple[dict[str, Any], bool]:
    arguments: dict[str, Any] = {}
    positionals = _positionals(flow)
    as_json = False
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token == "--json":
            as_json = True
        elif token.startswith("--"):
            name, sep, value = token[2:].partition("=")
            if not sep:
                if i + 1 >= len(tokens):
                    fail(f"--{name} needs a value")
                i += 1
                value = tokens[i]
            name = name.replace("-", "_")
            if name not in flow.input.model_fields:
                fail(f"{flow.name} has no option --{name}; options: {', '.join('--' + f for f in flow.input.model_fields)}")
            arguments[name] = json.loads(value) if value[:1] in "[{" else value
        elif positionals:
            arguments[positionals.pop(0)] = token
        else:
            fail(f"unexpected argument {token!r} for {flow.name}")
        i += 1
    return arguments, as_json


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if any(a in ("-h", "--help", "help") for a in argv[:1]) or "--help" in argv:
        print(usage())
        return
    overrides = [a for a in argv if is_override(a)]
    rest = [a for a in argv if not is_override(a)]
    command = rest.pop(0) if rest else "serve"
    try:
        config = load_config(*overrides)
    except ConfigError as exc:
        fail(f"{exc}\nRun `reme --help` for every key.")
    if command != "serve" and not any(o.startswith("log_level=") for o in overrides):
        config.log_level = "WARNING"  # a one-off command prints its answer, not the server's chatter
    if command != "serve":
        config.limits.request_timeout = float("inf")  # the user's own shell: a long `reme train` is theirs to stop
    setup_logging(config)

    if command == "serve":
        if rest:
            fail(f"unexpected argument {rest[0]!r}; run `reme --help`")
        _serve(config)
    elif command == "reembed":
        _reembed(config)
    elif command == "encrypt":
        _encrypt(config)
    elif command == "backup":
        _backup(config, rest)
    elif command == "check":
        _check(config)
    elif command == "train":
        _train(config, rest)
    elif command in ("library", "export", "import"):
        _library(config, command, rest)
    elif command == "recall" and "query" not in _flow_arguments(FLOWS["recall"], rest)[0]:
        _recall_prompt(config, rest)
    elif command in FLOWS:
        _run_flow(config, FLOWS[command], rest)
    else:
        fail(f"unknown command or key {command!r}. Commands: serve, {', '.join(FLOWS)}, train, library, export, import, reembed, backup, check, encrypt. Keys look like mcp.transport=stdio.")


def _serve(config: Config) -> None:
    from reme_mcp.app import ReMeApp

    try:
        app = ReMeApp(config=config)
    except ReMeError as exc:  # a store configuration that cannot work (pgvector without a URL, say)
        fail(str(exc))
    if config.backend == "http":
        from reme_mcp.faces.http import serve
    else:
        from reme_mcp.faces.mcp import serve
    try:
        anyio.run(serve, app)
    except ReMeError as exc:  # an unsafe bind, an unknown mcp.tools name: refused before serving
        fail(str(exc))
    except KeyboardInterrupt:
        pass


def _run_flow(config: Config, flow: Flow, tokens: list[str]) -> None:
    from reme_mcp.app import ReMeApp

    arguments, as_json = _flow_arguments(flow, tokens)

    async def run() -> None:
        async with ReMeApp(config=config) as app:
            envelope = await app.async_execute(flow.name, **arguments)
        print(envelope.model_dump_json(indent=2) if as_json else envelope.answer)

    try:
        anyio.run(run)
    except ReMeError as exc:
        fail(str(exc), code=1)


def _reembed(config: Config) -> None:
    from reme_mcp.app import ReMeApp

    def progress(done: int, total: int) -> None:
        print(f"\rre-embedded {done}/{total}", end="", file=sys.stderr, flush=True)

    try:
        count = ReMeApp(config=config).reembed(progress)
    except ReMeError as exc:
        fail(str(exc), code=1)
    print(f"\nRe-embedded {count} memories with {config.embedding_model.default.model_name}.")


def _backup(config: Config, tokens: list[str]) -> None:
    from pathlib import Path

    from reme_mcp.app import ReMeApp
    from reme_mcp.store.backup import backup

    if config.vector_store.default.backend == "pgvector":
        fail("reme backup copies the embedded SQLite store. With vector_store.default.backend=pgvector back up the "
             "database with PostgreSQL's own tools, e.g. pg_dump --format=custom --file=reme.dump \"$FLOW_PGVECTOR_URL\" "
             "(restore: pg_restore --dbname=URL reme.dump), and copy store_dir (working memory, library) as files.",
             code=1)
    if len(tokens) != 1:
        fail("usage: reme backup PATH  (PATH: a new or empty folder outside the store)")
    try:
        print(backup(config.store_dir, Path(tokens[0]), ReMeApp(config=config).encryption_key).render())
    except ReMeError as exc:
        fail(str(exc), code=1)


def _check(config: Config) -> None:
    from reme_mcp.app import ReMeApp

    try:
        repaired = ReMeApp(config=config).check()
    except ReMeError as exc:
        fail(str(exc), code=1)
    if repaired:
        print("Repaired:\n" + "\n".join(f"- {line}" for line in repaired))
    else:
        print("The store and every index agree with the rows; nothing to repair.")


def _encrypt(config: Config) -> None:
    """Rewrite the plain store file as an encrypted one, in place, after checking the copy opens."""
    import os
    import sqlite3

    from reme_mcp.app import STORE_FILE, ReMeApp
    from reme_mcp.privacy.encryption import connect, encrypt_copy

    if config.vector_store.default.backend == "pgvector":
        fail("reme encrypt encrypts the embedded SQLite store file. With vector_store.default.backend=pgvector "
             "encryption at rest is the database server's job (an encrypted volume or your provider's storage "
             "encryption); use sslmode=verify-full in the URL to encrypt the connection.", code=1)
    app = ReMeApp(config=config)
    key = app.encryption_key
    if not key:
        fail("set REME_ENCRYPTION_KEY (or privacy.encryption_key=...) to the key the store should use")
    path = config.store_dir / STORE_FILE
    if not path.is_file():
        fail(f"no store at {path}; a new store is encrypted from the start when a key is set")
    try:  # fold the WAL into the file; refused while another process has the store open
        db = sqlite3.connect(path, timeout=1)
        db.execute("PRAGMA journal_mode = DELETE").fetchone()
        count = db.execute("SELECT count(*) FROM memories").fetchone()[0]
        db.close()
    except sqlite3.DatabaseError as exc:
        fail(f"{path} cannot be read as a plain store ({exc}): it may be encrypted already, or still in use "
             "by a server (stop it first)", code=1)
    target = path.with_name(STORE_FILE + ".encrypting")
    target.unlink(missing_ok=True)
    encrypt_copy(str(path), str(target), key)
    check = connect(str(target), key)
    copied = check.execute("SELECT count(*) FROM memories").fetchone()[0]
    check.close()
    if copied != count:
        target.unlink()
        fail(f"the encrypted copy holds {copied} memories, not {count}; the store is unchanged", code=1)
    os.replace(target, path)
    print(f"Encrypted {path} ({count} memories). Every process using it now needs the same key.")


def _train(config: Config, tokens: list[str]) -> None:
    from pathlib import Path

    from tqdm import tqdm

    from reme_mcp.app import ReMeApp
    from reme_mcp.cells.episodes import read_episodes
    from reme_mcp.cells.train import PROGRESS

    arguments: dict[str, Any] = {}
    files = []
    for token in tokens:
        name, sep, value = token.lstrip("-").partition("=")
        if sep and name == "workspace_id":
            arguments["workspace_id"] = value
        elif token.startswith("-"):
            fail(f"train takes a file and workspace_id=NAME, not {token!r}")
        else:
            files.append(token)
    if len(files) > 1:
        fail("train takes one file at a time (training again adds to what is stored)")
    bars: dict[str, tqdm] = {}

    def progress(stage: str, done: int, total: int) -> None:
        bar = bars.get(stage)
        if bar is None:
            bar = bars[stage] = tqdm(total=total, desc=f"{stage:<18}", file=sys.stderr, leave=True)
        bar.update(done - bar.n)

    async def run() -> None:
        episodes = read_episodes(Path(files[0]), config.limits.max_episodes_file_bytes) if files else []
        async with ReMeApp(config=config) as app:
            PROGRESS.set(progress)
            envelope = await app.async_execute(
                "train_memory", episodes=[e.model_dump(exclude_none=True) for e in episodes], **arguments
            )
        for bar in bars.values():
            bar.close()
        print(envelope.answer)

    try:
        anyio.run(run)
    except ReMeError as exc:
        fail(str(exc), code=1)


def _recall_prompt(config: Config, tokens: list[str]) -> None:
    """Ask for phrases until an empty line or end of input, answering each from one open store."""
    from reme_mcp.app import ReMeApp

    flow = FLOWS["recall"]
    options, _ = _flow_arguments(flow, tokens)

    async def run() -> None:
        async with ReMeApp(config=config) as app:
            while True:
                try:
                    query = (await anyio.to_thread.run_sync(input, "recall> ")).strip()
                except EOFError:
                    break
                if not query or query in ("exit", "quit"):
                    break
                try:
                    print((await app.async_execute("recall", **options, query=query)).answer, "\n", flush=True)
                except ReMeError as exc:
                    print(f"reme: {exc}", file=sys.stderr, flush=True)

    anyio.run(run)


def _library(config: Config, command: str, tokens: list[str]) -> None:
    """Packs and transfers from the shell; paths here are the user's own, not sandboxed."""
    from pathlib import Path

    from tqdm import tqdm

    from reme_mcp.app import ReMeApp
    from reme_mcp.library import flow as library

    target = [t.split("=", 1)[1] for t in tokens if t.startswith("workspace_id=")]
    redact = "--redact" in tokens
    args = [t for t in tokens if not t.startswith("workspace_id=") and t != "--redact"]
    shapes = {"list": 1, "load": 2, "dump": 3}
    if command == "library" and (not args or args[0] not in shapes or len(args) != shapes[args[0]]):
        fail("usage: reme library list | load NAME [workspace_id=W] | dump WORKSPACE FOLDER")
    if command in ("export", "import") and len(args) != (2 if command == "export" else 1):
        fail("usage: reme export WORKSPACE FILE [--redact] | reme import FILE [workspace_id=W]")
    bar: list[tqdm] = []

    def progress(done: int, total: int) -> None:
        if not bar:
            bar.append(tqdm(total=total, desc="embedding", file=sys.stderr))
        bar[0].update(done - bar[0].n)

    async def run() -> str:
        async with ReMeApp(config=config) as app:
            services = await app.services()
            workspace = services.workspace(target[0] if target else None)
            if command == "library" and args[0] == "list":
                return (await app.async_execute("vector_store", action="list")).answer
            if command == "library" and args[0] == "load":
                folder = library.packs.pack_dirs(library.user_library(services)).get(args[1])
                if folder is None:
                    return (await app.async_execute("vector_store", action="load", pack=args[1])).answer  # the error
                count, reembedded, redacted = await anyio.to_thread.run_sync(
                    library.load_pack, services, folder, workspace, progress
                )
                return f"Loaded {count} memories of '{args[1]}' into '{workspace}'" + (
                    " (embedded again: the pack's vectors are from another model)." if reembedded else "."
                ) + (f" {redacted} secret(s) were redacted." if redacted else "")
            if command == "library":
                await library.require_workspace(services, args[1])
                count = await anyio.to_thread.run_sync(library.dump_pack, services, args[1], Path(args[2]))
                return f"Dumped {count} memories of '{args[1]}' to {args[2]}."
            if command == "export":
                await library.require_workspace(services, args[0])
                lines, redacted = await anyio.to_thread.run_sync(library.export_workspace, services, args[0], redact)
                Path(args[1]).write_text("\n".join(lines) + "\n", encoding="utf-8")
                note = f" {redacted} secret(s) redacted." if redact else ""
                return f"Exported {len(lines) - 1} lines of '{args[0]}' to {args[1]}.{note}"
            raw = Path(args[0]).read_text(encoding="utf-8-sig")
            kind, added = await anyio.to_thread.run_sync(library.import_text, services, raw, args[0], workspace, progress)
            return f"Imported {added} new memories ({kind} format) into '{workspace}'."

    try:
        print(anyio.run(run))
    except ReMeError as exc:
        fail(str(exc), code=1)
    except OSError as exc:
        fail(f"{exc.filename}: {exc.strerror}", code=1)
