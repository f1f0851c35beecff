"""Training the query adapter: contrastive, over all cells of a workspace.

A cell's score for a query is the best cosine over its keys; the loss is cross-entropy
over all cells of the workspace (softmax at temperature TAU), so every other cell, the
confusable ones first, is a negative. W starts where the last training left it (zero the
first time), and weight decay keeps it near zero: the adapter can bend the encoder's
space, not replace it.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from reme_mcp.retrieval.adapter import Adapter

TAU = 0.05
WEIGHT_DECAY = 1e-2
LEARNING_RATE = 1e-3
EPOCHS = 30
BATCH = 256
MAX_SECONDS = 300.0


def cell_scores_torch(queries, keys, owners, cells: int):
    """Best key cosine per cell for each query: (batch, cells)."""
    import torch

    sims = queries @ keys.T
    out = torch.full((queries.shape[0], cells), -2.0, dtype=sims.dtype)
    return out.scatter_reduce(1, owners.expand(queries.shape[0], -1), sims, reduce="amax")


def train(
    start: Adapter,
    keys: np.ndarray,
    owners: np.ndarray,
    cues: np.ndarray,
    targets: np.ndarray,
    progress: Callable[[int, int], None] = lambda done, total: None,
    seed: int = 0,
) -> Adapter:
    """Fit W on (cue vector, target cell) pairs, starting from `start` (a previous training, or zero)."""
    import torch

    torch.manual_seed(seed)
    cells = int(owners.max()) + 1
    key_t = torch.from_numpy(np.ascontiguousarray(keys, dtype=np.float32))
    owner_t = torch.from_numpy(owners.astype(np.int64))[None, :]
    cue_t = torch.from_numpy(np.ascontiguousarray(cues, dtype=np.float32))
    target_t = torch.from_numpy(targets.astype(np.int64))
    weight = torch.tensor(start.weight, dtype=torch.float32, requires_grad=True)
    optimiser = torch.optim.AdamW([weight], lr=LEARNING_RATE, weight_decay=WEIGHT_DECAY)
    deadline = time.monotonic() + MAX_SECONDS
    for epoch in range(EPOCHS):
        order = torch.randperm(len(cue_t))
        for begin in range(0, len(order), BATCH):
            batch = order[begin : begin + BATCH]
            q = cue_t[batch]
            q = torch.nn.functional.normalize(q + q @ weight, dim=1)
            scores = cell_scores_torch(q, key_t, owner_t, cells)
            loss = torch.nn.functional.cross_entropy(scores / TAU, target_t[batch])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        progress(epoch + 1, EPOCHS)
        if time.monotonic() > deadline:
            break
    return Adapter(start.model_id, weight.detach().numpy().copy(), start.latin)
