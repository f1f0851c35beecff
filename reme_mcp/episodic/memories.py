"""remember / recall: the episodic memory core (forget lives in reme_mcp/lifecycle).

Blocking work (SQLite, the embedding model) runs in worker threads so the event loop
that serves MCP and HTTP keeps answering while a model loads or a write waits.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import datetime, timedelta, timezone

import anyio.to_thread
import numpy as np

from reme_mcp.cells.schemas import Episode
from reme_mcp.episodic.keying import EVERY, FOREIGN, key_cells
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
        keyed = services.bridge.key(services, workspace_id, FOREIGN)
        if foreign(query):
            keyed += services.bridge.key(services, workspace_id, EVERY)
        if keyed:
            plain, cells = services.dense.spaces(workspace_id)
    vector = services.embedder.encode([query], query=True)[0]
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
