"""The query adapter: a residual linear map, trained contrastively over a workspace's cells.

    q' = normalise(q + q W)

W starts at zero, so an untrained adapter changes nothing, and weight decay keeps it
near zero: the adapter can only bend the embedding space, not replace it. A cell's
score for a query is the best cosine over its keys; the loss is cross-entropy over
all cells of the workspace (softmax at temperature TAU), so every other cell, the
confusable ones first, is a negative.

The saved state is safetensors (no pickle) carrying the format version and the
embedding model id; a state from a newer format is refused, not guessed at.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from reme_mcp.errors import StoreCorrupt, StoreMismatch

FORMAT_VERSION = 1
TAU = 0.05
WEIGHT_DECAY = 1e-2
LEARNING_RATE = 1e-3
EPOCHS = 30
BATCH = 256
MAX_SECONDS = 300.0


@dataclass
class Adapter:
    """The saved state of a workspace's cells: the adapter, and how much of the workspace is Latin script."""

    model_id: str
    weight: np.ndarray  # dim x dim
    latin: float = 1.0  # share of Latin letters in the workspace's texts (hybrid.py weighs the rankings by it)

    @classmethod
    def identity(cls, model_id: str, dim: int, latin: float = 1.0) -> "Adapter":
        return cls(model_id, np.zeros((dim, dim), dtype=np.float32), latin)

    def apply(self, queries: np.ndarray) -> np.ndarray:
        """Adapted, normalised query vectors (one row or a matrix)."""
        q = np.atleast_2d(queries).astype(np.float32)
        out = q + q @ self.weight
        out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return out if queries.ndim == 2 else out[0]

    def to_bytes(self) -> bytes:
        from safetensors.numpy import save

        metadata = {
            "format": "reme-cells", "format_version": str(FORMAT_VERSION), "embedding_model": self.model_id,
            "latin_share": f"{self.latin:.4f}",
        }
        return save({"weight": np.ascontiguousarray(self.weight, dtype=np.float32)}, metadata=metadata)

    @classmethod
    def from_bytes(cls, blob: bytes, model_id: str) -> "Adapter":
        import json
        import struct

        from safetensors.numpy import load

        try:
            (header_len,) = struct.unpack("<Q", blob[:8])
            metadata = json.loads(blob[8 : 8 + header_len]).get("__metadata__", {})
            version = int(metadata["format_version"])
            tensors = load(blob)
        except Exception as exc:
            raise StoreCorrupt(f"The trained cells of this workspace cannot be read ({exc}); run `reme train` again.") from None
        if version > FORMAT_VERSION:
            raise StoreMismatch(
                f"The trained cells were written in format {version}, newer than this reme-mcp understands "
                f"({FORMAT_VERSION}). Upgrade reme-mcp, or run `reme train` again to rebuild them."
            )
        if metadata.get("embedding_model") != model_id:
            raise StoreMismatch(
                f"The trained cells belong to '{metadata.get('embedding_model')}', but '{model_id}' is configured; "
                "run `reme train` again."
            )
        return cls(model_id, tensors["weight"], float(metadata.get("latin_share", 1.0)))


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
