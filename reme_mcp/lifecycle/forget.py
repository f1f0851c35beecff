"""forget: one memory by id at once, or many by selectors after a dry run the caller confirms.

Selectors (query, about, tags, time, memory_type, thread) are AND-ed. A first call lists what
matches and returns a confirm code, a digest of exactly that list; the second call
deletes only if the list is still the same, so a memory written in between is never
deleted unseen. `about` reaches everything that mentions its words: memories of every
kind and status (their cells and index entries go with them), recorded tool calls and
working-memory files. The store then merges its FTS5 segments and empties the WAL, and
`secure_delete` has zeroed the freed pages, so the words are gone from the file too.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime, timezone
from pathlib import Path

import anyio.to_thread

from reme_mcp.episodic import memories
from reme_mcp.errors import InvalidInput, NotFound
from reme_mcp.lifecycle.schemas import ForgetInput, ForgetOutput, Forgotten
from reme_mcp.services import Services
from reme_mcp.store.base import Memory

_ALL = 10_000_000  # "every match": the store has no bigger workspace than this


def mentions(phrase: str) -> re.Pattern[str]:
    """`phrase` as whole words, any case: "Ana" finds "ana's" and "ANA", not "banana"."""
    return re.compile(rf"(?<!\w){re.escape(phrase.casefold())}(?!\w)")


def _mentioned(pattern: re.Pattern[str], memory: Memory) -> bool:
    parts = [memory.text, *memory.keywords, *memory.tags, json.dumps(memory.metadata, ensure_ascii=False)]
    return any(pattern.search(part.casefold()) for part in parts)


def _matches(services: Services, workspace_id: str, args: ForgetInput) -> tuple[list[Memory], list[Path], list[int]]:
    """What the selectors reach: memories, working-memory files and tool-call rowids (blocking)."""
    store = services.store
    scope = memories.scope_of(args, datetime.now(timezone.utc))
    if args.query is not None:
        found: list[Memory] = list(memories.search(services, workspace_id, args.query, args.top_k, scope))
    elif args.about is not None and not scope.narrows and not scope.types:
        found = [m for batch in store.scan(workspace_id) for m in batch]  # superseded ones mention it too
    else:
        found = store.select(workspace_id, scope, _ALL)
    files: list[Path] = []
    calls: list[int] = []
    if args.about is not None:
        pattern = mentions(args.about)
        found = [m for m in found if _mentioned(pattern, m)]
        working = services.working_files(workspace_id)
        files = [p for p in working.files(working.root) if pattern.search(working.read(p).casefold())]
        calls = [rowid for rowid, name, record in store.tool_call_records(workspace_id)
                 if pattern.search(f"{name} {record}".casefold())]
    return found, files, calls


def confirm_code(args: ForgetInput, workspace_id: str, ids: list[str], files: list[str], calls: list[int]) -> str:
    """A digest of the request and exactly what it reaches: a code from one workspace's or one selector's
    dry run confirms nothing else."""
    request = args.model_dump(mode="json", exclude={"confirm", "workspace_id"})
    payload = [workspace_id, request, sorted(ids), sorted(files), sorted(calls)]
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:12]


async def forget(services: Services, args: ForgetInput) -> ForgetOutput:
    workspace_id = services.workspace(args.workspace_id)
    await memories.require_workspace(services, workspace_id)
    store = services.store

    if args.memory_id is not None:
        memory = await anyio.to_thread.run_sync(store.get, workspace_id, args.memory_id)
        if memory is None or not await anyio.to_thread.run_sync(store.forget, workspace_id, [memory.id], []):
            raise NotFound(
                f"No memory '{args.memory_id}' in workspace '{workspace_id}'. Use recall to find the id; "
                "ids belong to one workspace."
            )
        wiped = await anyio.to_thread.run_sync(store.checkpoint)
        return ForgetOutput(workspace_id=workspace_id, memory_id=args.memory_id, dry_run=False,
                            memories=[Forgotten.of(memory)], wiped=wiped)

    found, paths, calls = await anyio.to_thread.run_sync(_matches, services, workspace_id, args)
    names = [services.working_files(workspace_id).name(p) for p in paths]
    code = confirm_code(args, workspace_id, [m.id for m in found], names, calls)
    output = ForgetOutput(
        workspace_id=workspace_id, dry_run=True, memories=[Forgotten.of(m) for m in found],
        working_files=names, tool_calls=len(calls), confirm=code,
    )
    if args.confirm is None or output.count == 0:
        return output
    if args.confirm != code:
        raise InvalidInput(
            f"confirm={args.confirm!r} does not match what these selectors reach now ({output.count} items): "
            "something changed since the dry run, or the arguments differ. Call forget without confirm to see "
            "the current list, then confirm that."
        )

    def delete() -> bool:
        for path in paths:
            path.unlink(missing_ok=True)
        store.forget(workspace_id, [m.id for m in found], calls)
        return store.checkpoint()

    wiped = await anyio.to_thread.run_sync(delete)
    return output.model_copy(update={"dry_run": False, "confirm": None, "wiped": wiped})
