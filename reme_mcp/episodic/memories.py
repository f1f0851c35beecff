"""remember / recall: the episodic memory core (forget lives in reme_mcp/lifecycle).

Blocking work (SQLite, the embedding model) runs in worker threads so the event loop
that serves MCP and HTTP keeps answering while a model loads or a write waits.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

import anyio.to_thread
import numpy as np

from reme_mcp.cells.keys import key_texts
from reme_mcp.cells.schemas import Episode
from reme_mcp.episodic.schemas import (
    Filters,
    Hit,
    RecallInput,
    RecallOutput,
    RememberInput,
    RememberOutput,
    StoredMemory,
)
from reme_mcp.errors import InvalidInput, NotFound
from reme_mcp.lifecycle.when import parse_duration, parse_instant, utc
from reme_mcp.privacy.scrub import scrub
from reme_mcp.retrieval import hybrid
from reme_mcp.retrieval.scripts import foreign
from reme_mcp.services import Services
from reme_mcp.store.base import Memory, Scope, content_id, embedding_text

log = logging.getLogger(__name__)

BRIDGE_BATCH = 2_000  # memories keyed for one query in another script: about ten seconds (see key_rest)


def memory_vector(services: Services, text: str, keywords: list[str]) -> np.ndarray:
    """The vector a memory is stored and found by (blocking: the embedding model runs)."""
    return services.embedder.encode([embedding_text(text, keywords)])[0]


def scope_of(filters: Filters, now: datetime) -> Scope:
    """The store's view of recall's filters, relative times resolved against `now`."""
    after = parse_instant(filters.after, now).timestamp() if filters.after else None
    before = parse_instant(filters.before, now).timestamp() if filters.before else None
    if after is not None and before is not None and after >= before:
        raise InvalidInput(f"after ({filters.after}) is not earlier than before ({filters.before}): nothing can match.")
    return Scope(
        types=tuple(filters.memory_type or ()), tags=tuple(filters.tags or ()), all_tags=filters.tag_mode == "all",
        after=after, before=before, thread=filters.thread,
    )


def search(
    services: Services, workspace_id: str, query: str, top_k: int, scope: Scope | None = None, track: bool = False
) -> list[Hit]:
    """The best active memories of a workspace for `query` inside `scope`, best first (blocking).

    Expired memories are purged first, so none is ever returned. With `track`, each hit's recall
    count and time are updated (recall does this; internal lookups do not)."""
    services.results(top_k, "top_k")
    now = time.time()
    if services.store.purge_expired(workspace_id, now):
        log.info("purged expired memories of workspace '%s'", workspace_id)
    plain, cells = services.dense.spaces(workspace_id)
    trained = cells is not None and cells.adapter is not None
    if trained and np.count_nonzero(cells.kinds != "") < np.count_nonzero(plain.kinds != ""):
        # Whatever was written since training (remember, distilled memories, another process) is keyed
        # here, once, so every active memory is reachable through the cells.
        missing = services.store.without_cell_keys(workspace_id, services.cell_encoder.model_id)
        if missing:
            key_cells(services, workspace_id, missing)
            plain, cells = services.dense.spaces(workspace_id)
    elif not trained:
        keyed = key_foreign(services, workspace_id)
        if foreign(query):
            keyed += key_rest(services, workspace_id)
        if keyed:
            plain, cells = services.dense.spaces(workspace_id)
    vector = services.embedder.encode([query])[0]
    cell_vector = services.cell_encoder.encode([query])[0] if hybrid.key_space(cells, query) is not None else None
    ranked = hybrid.search(
        services.store, plain, cells, workspace_id, hybrid.Query(query, vector, cell_vector), top_k,
        services.config.retrieval, scope, now,
    )
    found = services.store.fetch([r.rowid for r in ranked])
    hits = [
        Hit(**found[r.rowid].model_dump(), similarity=round(r.similarity, 4), score=round(r.score, 6))
        for r in ranked
        if r.rowid in found  # forgotten by another process between search and fetch
    ]
    if track and hits and services.config.retrieval.track_usage:
        try:
            if not services.store.mark_recalled([r.rowid for r in ranked if r.rowid in found], now):
                log.debug("recall counts kept for the next write: another process holds the store's write lock")
        except Exception as exc:  # bookkeeping must never cost the caller an answer
            log.warning("recall counts not updated: %s", exc)
        else:
            at = datetime.fromtimestamp(now, tz=timezone.utc)
            hits = [h.model_copy(update={"recall_count": h.recall_count + 1, "last_recalled_at": at}) for h in hits]
    return hits


def check_limits(services: Services, args: RememberInput | Episode) -> None:
    """Text, keyword and metadata sizes against `limits.*` (for remember and for trained episodes)."""
    limits = services.config.limits
    if len(args.text) > limits.max_text_chars:
        raise InvalidInput(
            f"text is {len(args.text):,} characters; the limit is {limits.max_text_chars:,} "
            "(limits.max_text_chars). Split it into several memories."
        )
    if len(args.keywords) > limits.max_keywords:
        raise InvalidInput(f"{len(args.keywords)} keywords given; the limit is {limits.max_keywords}.")
    try:
        size = len(json.dumps(args.metadata, ensure_ascii=False).encode("utf-8"))
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"metadata must be plain JSON (objects, lists, strings, numbers): {exc}") from None
    if size > limits.max_metadata_bytes:
        raise InvalidInput(
            f"metadata is {size:,} bytes as JSON; the limit is {limits.max_metadata_bytes:,} (limits.max_metadata_bytes)."
        )


def _public(memory: Memory) -> StoredMemory:
    return StoredMemory(**memory.model_dump())


def key_cells(services: Services, workspace_id: str, memories: list[tuple[int, str, list[str]]]) -> int:
    """Compute and store the cell keys of (rowid, text, keywords) memories; returns how many keys (blocking)."""
    texts = [key_texts(text, keywords) for _, text, keywords in memories]
    flat = [t for group in texts for t in group]
    vectors = services.cell_encoder.encode(flat) if flat else np.zeros((0, 0), np.float32)
    rows, at = [], 0
    for (rowid, _, _), group in zip(memories, texts):
        rows.append((rowid, vectors[at : at + len(group)]))
        at += len(group)
    services.store.put_cell_keys(workspace_id, rows, services.cell_encoder.embedding())
    return len(flat)


def key_foreign(services: Services, workspace_id: str) -> int:
    """Give the memories written since the last look whose text is mostly not in Latin script (Chinese,
    Russian...) their multilingual keys; returns how many were keyed (blocking).

    The English embedding model cannot read them, so without these keys recall would find them by their
    words alone (bench/multilingual.py). A recall with nothing written since costs one lookup of the store's
    last rowid; a workspace in English then pays one read of its new memories' texts. Nothing is keyed when
    the embedding model is the multilingual encoder itself.
    """
    scripts = services.dense.scripts
    return 0 if scripts is None else _key_since(services, workspace_id, scripts.read, foreign)


def key_rest(services: Services, workspace_id: str) -> int:
    """Give the memories the English model can read their multilingual keys as well, at most
    `BRIDGE_BATCH` at a time; returns how many were keyed (blocking).

    Called for a query the English model cannot read (a Chinese question about an English note): without
    the keys, such a query finds no English memory by meaning, and BM25 shares no word with it. The
    encoder keys about 200 memories a second here, so a workspace of a thousand pays some five seconds
    once; later memories are keyed at the next such query. Workspaces never asked in another script
    store nothing.
    """
    scripts = services.dense.scripts
    if scripts is None:
        return 0
    count = _key_since(services, workspace_id, scripts.bridged, None, BRIDGE_BATCH)
    if count:
        log.info("gave %d memories of workspace '%s' multilingual keys for a query in another script",
                 count, workspace_id)
    return count


def _key_since(
    services: Services, workspace_id: str, marks: dict[str, int], keep: Callable[[str], bool] | None,
    limit: int | None = None,
) -> int:
    """Key the workspace's memories without keys written after its mark in `marks` (those whose text `keep`
    accepts; all when None), the first `limit` read; the mark moves to the store's last rowid once none is
    left. The limit applies to what the store reads, so a big workspace is not read whole for one batch."""
    last = services.store.last_rowid()
    after = marks.get(workspace_id, 0)
    if after >= last:
        return 0
    fresh = services.store.without_cell_keys(workspace_id, services.cell_encoder.model_id, after, limit)
    batch = [m for m in fresh if keep is None or keep(m[1])]
    if batch:
        key_cells(services, workspace_id, batch)
    if limit is None or len(fresh) < limit:
        marks[workspace_id] = last
    return len(batch)


async def require_workspace(services: Services, workspace_id: str) -> None:
    if workspace_id == services.config.default_workspace:
        return
    if not await anyio.to_thread.run_sync(services.store.workspace_exists, workspace_id):
        raise NotFound(
            f"Workspace '{workspace_id}' does not exist: it is created by its first remember. "
            "Check the workspace_id, or omit it for the default workspace."
        )


def expiry(args: RememberInput, now: datetime) -> datetime | None:
    """When a remembered memory expires: `expires_at`, or now + `ttl` (the workspace's retention otherwise)."""
    if args.ttl is not None and args.expires_at is not None:
        raise InvalidInput("Give ttl or expires_at, not both.")
    if args.ttl is not None:
        return now + timedelta(seconds=parse_duration(args.ttl))
    if args.expires_at is not None:
        if utc(args.expires_at) <= now:
            raise InvalidInput(f"expires_at {args.expires_at.isoformat()} is in the past; nothing would be kept.")
        return utc(args.expires_at)
    return None


async def remember(services: Services, args: RememberInput) -> RememberOutput:
    check_limits(services, args)
    workspace_id = services.workspace(args.workspace_id)
    now = datetime.now(timezone.utc)
    expires_at = expiry(args, now)
    clean = scrub(services.config.privacy, args.text, args.keywords, args.metadata)
    memory_id = content_id(clean.text, clean.keywords, args.thread)
    # An expired copy must not answer "already remembered" and then vanish at the next recall.
    await anyio.to_thread.run_sync(services.store.purge_expired, workspace_id, now.timestamp())
    existing = await anyio.to_thread.run_sync(services.store.get, workspace_id, memory_id)
    if existing is not None:
        if not set(args.tags) <= set(existing.tags):  # the same memory told again with new tags gets them
            await anyio.to_thread.run_sync(services.store.add_tags, workspace_id, existing.id, args.tags)
            existing = existing.model_copy(update={"tags": list(dict.fromkeys([*existing.tags, *args.tags]))})
        return RememberOutput(memory=_public(existing), created=False, redacted=clean.count)

    def embed_and_store() -> tuple[Memory, bool]:
        vector = memory_vector(services, clean.text, clean.keywords)
        memory = Memory(
            id=memory_id,
            workspace_id=workspace_id,
            text=clean.text,
            keywords=clean.keywords,
            metadata=clean.metadata,
            created_at=now,
            tags=args.tags,
            expires_at=expires_at,
            thread=args.thread,
        )
        return services.store.add(memory, vector, services.embedder.embedding())

    stored, created = await anyio.to_thread.run_sync(embed_and_store)
    return RememberOutput(memory=_public(stored), created=created, redacted=clean.count)


async def recall(services: Services, args: RecallInput) -> RecallOutput:
    workspace_id = services.workspace(args.workspace_id)
    await require_workspace(services, workspace_id)
    scope = scope_of(args, datetime.now(timezone.utc))
    hits = await anyio.to_thread.run_sync(
        lambda: search(services, workspace_id, args.query, args.top_k, scope, track=True)
    )
    return RecallOutput(query=args.query, workspace_id=workspace_id, memories=hits)
