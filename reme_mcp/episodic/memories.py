"""remember / recall / forget: the episodic memory core.

Blocking work (SQLite, the embedding model) runs in worker threads so the event loop
that serves MCP and HTTP keeps answering while a model loads or a write waits.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone

import anyio.to_thread
import numpy as np

from reme_mcp.cells.keys import key_texts
from reme_mcp.cells.schemas import Episode
from reme_mcp.episodic.schemas import (
    ForgetInput,
    ForgetOutput,
    Hit,
    RecallInput,
    RecallOutput,
    RememberInput,
    RememberOutput,
    StoredMemory,
)
from reme_mcp.errors import InvalidInput, NotFound
from reme_mcp.retrieval import hybrid
from reme_mcp.services import Services
from reme_mcp.store.base import Memory, content_id, embedding_text


def memory_vector(services: Services, text: str, keywords: list[str]) -> np.ndarray:
    """The vector a memory is stored and found by (blocking: the embedding model runs)."""
    return services.embedder.encode([embedding_text(text, keywords)])[0]


def search(services: Services, workspace_id: str, query: str, top_k: int, types: list[str] | None = None) -> list[Hit]:
    """The best active memories of a workspace for `query`, best first (blocking)."""
    plain, cells = services.dense.spaces(workspace_id)
    if cells is not None and np.count_nonzero(cells.kinds != "") < np.count_nonzero(plain.kinds != ""):
        # Whatever was written since training (remember, distilled memories, another process) is keyed
        # here, once, so every active memory is reachable through the cells.
        missing = services.store.without_cell_keys(workspace_id, services.cell_encoder.model_id)
        if missing:
            key_cells(services, workspace_id, missing)
            plain, cells = services.dense.spaces(workspace_id)
    vector = services.embedder.encode([query])[0]
    cell_vector = services.cell_encoder.encode([query])[0] if cells is not None else None
    ranked = hybrid.search(
        services.store, plain, cells, workspace_id, hybrid.Query(query, vector, cell_vector), top_k,
        services.config.retrieval, types,
    )
    found = services.store.fetch([r.rowid for r in ranked])
    return [
        Hit(**found[r.rowid].model_dump(), similarity=round(r.similarity, 4), score=round(r.score, 6))
        for r in ranked
        if r.rowid in found  # forgotten by another process between search and fetch
    ]


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


async def require_workspace(services: Services, workspace_id: str) -> None:
    if workspace_id == services.config.default_workspace:
        return
    if not await anyio.to_thread.run_sync(services.store.workspace_exists, workspace_id):
        raise NotFound(
            f"Workspace '{workspace_id}' does not exist: it is created by its first remember. "
            "Check the workspace_id, or omit it for the default workspace."
        )


async def remember(services: Services, args: RememberInput) -> RememberOutput:
    check_limits(services, args)
    workspace_id = services.workspace(args.workspace_id)
    memory_id = content_id(args.text, args.keywords)
    existing = await anyio.to_thread.run_sync(services.store.get, workspace_id, memory_id)
    if existing is not None:
        return RememberOutput(memory=_public(existing), created=False)

    def embed_and_store() -> tuple[Memory, bool]:
        vector = memory_vector(services, args.text, args.keywords)
        memory = Memory(
            id=memory_id,
            workspace_id=workspace_id,
            text=args.text,
            keywords=args.keywords,
            metadata=args.metadata,
            created_at=datetime.now(timezone.utc),
        )
        return services.store.add(memory, vector, services.embedder.embedding())

    stored, created = await anyio.to_thread.run_sync(embed_and_store)
    return RememberOutput(memory=_public(stored), created=created)


async def recall(services: Services, args: RecallInput) -> RecallOutput:
    workspace_id = services.workspace(args.workspace_id)
    await require_workspace(services, workspace_id)

    hits = await anyio.to_thread.run_sync(search, services, workspace_id, args.query, args.top_k, args.memory_type)
    return RecallOutput(query=args.query, workspace_id=workspace_id, memories=hits)


async def forget(services: Services, args: ForgetInput) -> ForgetOutput:
    workspace_id = services.workspace(args.workspace_id)
    await require_workspace(services, workspace_id)
    if not await anyio.to_thread.run_sync(services.store.delete, workspace_id, args.memory_id):
        raise NotFound(
            f"No memory '{args.memory_id}' in workspace '{workspace_id}'. Use recall to find the id; "
            "ids belong to one workspace."
        )
    return ForgetOutput(memory_id=args.memory_id, workspace_id=workspace_id)
