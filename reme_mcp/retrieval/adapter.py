"""The query adapter of a workspace's trained cells: a residual linear map of the query vector.

    q' = normalise(q + q W)

W is trained in reme_mcp/cells/fit.py; a zero W changes nothing. The saved state is
safetensors (no pickle) carrying the format version and the encoder id; a state from a
newer format is refused, not guessed at.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from reme_mcp.errors import StoreCorrupt, StoreMismatch

FORMAT_VERSION = 1


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
