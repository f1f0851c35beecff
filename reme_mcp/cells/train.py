"""train_memory: store episodes, key every cell, train the adapter, and switch it on only if it helps.

Training again later starts from what is stored: cells that already have keys keep
them, the adapter starts from its last weights, and only new memories are embedded.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from contextvars import ContextVar
from datetime import datetime, timezone

import anyio.to_thread
import numpy as np

from reme_mcp.cells import fit
from reme_mcp.cells.episodes import check_unique_ids
from reme_mcp.cells.gate import Cue, ranks, scores
from reme_mcp.cells.keys import key_texts, training_cues
from reme_mcp.cells.schemas import Episode, TrainInput, TrainOutput
from reme_mcp.episodic.keying import key_cells
from reme_mcp.episodic.memories import check_limits, require_workspace
from reme_mcp.errors import InvalidInput, StoreCorrupt, StoreMismatch
from reme_mcp.models.embedding import Embedder, encode_in_batches
from reme_mcp.privacy.scrub import scrub_all
from reme_mcp.retrieval.adapter import Adapter
from reme_mcp.retrieval.dense import KeySpace, untrained_keys
from reme_mcp.retrieval.scripts import latin_share
from reme_mcp.services import Services
from reme_mcp.store.base import Memory, content_id, embedding_text

Progress = Callable[[str, int, int], None]  # (stage, done, total)

# Set by the CLI to draw progress bars; flows called over MCP or HTTP report nothing.
PROGRESS: ContextVar[Progress | None] = ContextVar("reme_train_progress", default=None)

MAX_CUES = 60_000  # training cues per run; a larger workspace trains on a sample
MAX_HELD_OUT = 3_000  # held-out cues the gate ranks, twice each


def _silent(stage: str, done: int, total: int) -> None:
    pass


async def train_memory(services: Services, args: TrainInput) -> TrainOutput:
    workspace_id = services.workspace(args.workspace_id)
    if not args.episodes:
        await require_workspace(services, workspace_id)
    progress = PROGRESS.get() or _silent
    return await anyio.to_thread.run_sync(_train, services, workspace_id, args.episodes, progress)


def _encode(encoder: Embedder, texts: list[str], stage: str, progress: Progress) -> np.ndarray:
    return encode_in_batches(encoder, texts, lambda done, total: progress(stage, done, total))


def _store_episodes(
    services: Services, workspace_id: str, episodes: list[Episode], progress: Progress
) -> tuple[int, int, int]:
    """Validate all, then store the new ones in one transaction: a refused file stores nothing.
    Returns (stored, already there, secrets redacted)."""
    check_unique_ids(episodes)
    episodes, redacted = scrub_all(services.config.privacy, episodes)
    new: dict[str, Episode] = {}
    already = 0
    conflicts = []
    for episode in episodes:
        check_limits(services, episode)
        memory_id = episode.id or content_id(episode.text, episode.keywords)
        stored = services.store.get(workspace_id, memory_id)
        if memory_id in new:  # the same text and keywords twice in one file
            already += 1
        elif stored is None:
            new[memory_id] = episode
        elif stored.text == episode.text:
            already += 1
        else:
            conflicts.append(memory_id)
    if conflicts:
        raise InvalidInput(
            f"{len(conflicts)} episode id(s) are already stored with a different text: {', '.join(conflicts[:10])}. "
            "Give those episodes new ids, or forget the stored ones first. Nothing was stored."
        )
    texts = [embedding_text(e.text, e.keywords) for e in new.values()]
    vectors = _encode(services.embedder, texts, "embedding episodes", progress)
    now = datetime.now(timezone.utc)
    items = [
        (
            Memory(id=memory_id, workspace_id=workspace_id, text=e.text, keywords=e.keywords, metadata=e.metadata,
                   created_at=e.time or now),
            vector,
        )
        for (memory_id, e), vector in zip(new.items(), vectors)
    ]
    return services.store.add_many(items, services.embedder.embedding()), already, redacted


def _key_new_cells(services: Services, workspace_id: str, progress: Progress) -> None:
    missing = services.store.without_cell_keys(workspace_id, services.cell_encoder.model_id)
    for begin in range(0, len(missing), 256):
        key_cells(services, workspace_id, missing[begin : begin + 256])
        progress("keying cells", min(begin + 256, len(missing)), len(missing))


def _held_out(cue: str) -> bool:
    return hashlib.sha256(cue.encode("utf-8")).digest()[0] % 4 == 0


def _cues(services: Services, space: KeySpace) -> tuple[list[Cue], list[Cue], float]:
    """Training and held-out cues of every active cell, each with its target memory, and the share of
    Latin letters in the cells' texts."""
    active = [int(r) for r, kind in zip(space.rowids, space.kinds) if kind]
    memories = services.store.fetch(active)
    train, held = [], []
    for rowid in active:
        memory = memories.get(rowid)
        if memory is None:
            continue
        keys = set(key_texts(memory.text, memory.keywords))
        for text in training_cues(memory.text, memory.keywords, seed=rowid):
            # A sentence copied from the text, or a key, is too easy to judge by: only reworked cues are held out.
            reworked = text not in memory.text and text not in keys
            (held if reworked and _held_out(text) else train).append(Cue(text=text, rowid=rowid))
    latin = latin_share(" ".join(m.text[:2000] for m in memories.values()))
    rng = np.random.default_rng(0)
    if len(train) > MAX_CUES:
        train = [train[i] for i in sorted(rng.choice(len(train), MAX_CUES, replace=False))]
    if len(held) > MAX_HELD_OUT:
        held = [held[i] for i in sorted(rng.choice(len(held), MAX_HELD_OUT, replace=False))]
    return train, held, latin


def _start(services: Services, workspace_id: str, dim: int, latin: float) -> Adapter:
    model_id = services.cell_encoder.model_id
    stored = services.store.cell_model(workspace_id)
    if stored is not None:
        try:
            previous = Adapter.from_bytes(stored[0], model_id)
            if previous.weight.shape == (dim, dim):
                return Adapter(model_id, previous.weight, latin)
        except (StoreCorrupt, StoreMismatch):
            pass  # retraining is the fix those errors suggest: start over
    return Adapter.identity(model_id, dim, latin)


def _train(services: Services, workspace_id: str, episodes: list[Episode], progress: Progress) -> TrainOutput:
    started = time.monotonic()
    added, already, redacted = _store_episodes(services, workspace_id, episodes, progress)
    _key_new_cells(services, workspace_id, progress)
    rowids, matrix, kinds = services.store.vectors(workspace_id)
    plain = KeySpace.plain(rowids, matrix, kinds)
    keys = services.store.cell_keys(workspace_id)
    untrained = KeySpace.from_keys(rowids, kinds, keys, None)
    if len(untrained.rowids) == 0:
        raise InvalidInput(
            f"Workspace '{workspace_id}' has no memories to train: give episodes (reme train episodes.json)."
        )
    train_cues, held_cues, latin = _cues(services, untrained)
    cue_texts = [c.text for c in train_cues + held_cues]
    cell_vectors = _encode(services.cell_encoder, cue_texts, "encoding cues", progress)
    held_vectors = _encode(services.embedder, [c.text for c in held_cues], "encoding cues (model)", progress)

    start = _start(services, workspace_id, untrained.matrix.shape[1], latin)
    trained = start
    cells = untrained
    if train_cues:
        slots = {int(r): i for i, r in enumerate(untrained.rowids)}
        owners = np.repeat(np.arange(len(untrained.starts)), np.diff(np.append(untrained.starts, len(untrained.matrix))))
        targets = np.array([slots[c.rowid] for c in train_cues])
        trained = fit.train(
            start, untrained.matrix, owners, cell_vectors[: len(train_cues)], targets,
            progress=lambda done, total: progress("training", done, total),
        )
    # The gate, on the held-out cues: search as it is with the cells off, the cells' keys alone, and the
    # keys with the adapter.
    identity = Adapter.identity(trained.model_id, untrained.matrix.shape[1], latin)
    spaces = [untrained_keys(services.store, rowids, kinds, keys, services.dense.scripts)]
    spaces += [KeySpace(cells.rowids, cells.kinds, cells.matrix, cells.starts, a) for a in (identity, trained)]
    before, keys_only, adapted = [
        scores(column)
        for column in ranks(services, workspace_id, held_cues, held_vectors, cell_vectors[len(train_cues) :], plain, spaces)
    ]
    adapter_on = adapted.mrr > keys_only.mrr
    after = adapted if adapter_on else keys_only
    enabled = bool(held_cues) and after.mrr > before.mrr
    report = {"held_out_cues": len(held_cues), "plain": before.model_dump(), "keys": keys_only.model_dump(),
              "adapted": adapted.model_dump(), "adapter_on": adapter_on}
    kept = trained if adapter_on else identity
    services.store.put_cell_model(workspace_id, kept.to_bytes(), enabled, json.dumps(report))
    _key_new_cells(services, workspace_id, progress)  # memories remembered while training ran
    return TrainOutput(
        workspace_id=workspace_id, added=added, already_stored=already, redacted=redacted, cells=len(untrained.rowids),
        keys=len(untrained.matrix), held_out_cues=len(held_cues), plain=before, keys_only=keys_only,
        adapted=adapted, adapter_on=adapter_on, enabled=enabled, seconds=round(time.monotonic() - started, 2),
    )
