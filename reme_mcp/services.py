"""The shared parts every capability works with, built once by `ReMeApp`."""

from __future__ import annotations

from dataclasses import dataclass, field

from reme_mcp.config import Config
from reme_mcp.episodic.keying import Bridge
from reme_mcp.errors import InvalidInput
from reme_mcp.models.embedding import Embedder
from reme_mcp.models.llm import LLM
from reme_mcp.retrieval.dense import DenseIndex
from reme_mcp.store.base import MemoryStore
from reme_mcp.working.files import WorkingFiles


@dataclass(frozen=True)
class Services:
    config: Config
    store: MemoryStore
    embedder: Embedder
    dense: DenseIndex
    llm: LLM
    working: WorkingFiles
    cell_encoder: Embedder  # the trained cells' multilingual key space (reme_mcp/cells)
    bridge: Bridge = field(default_factory=Bridge)  # multilingual keys, at recall (episodic/keying.py)

    def workspace(self, workspace_id: str | None) -> str:
        return workspace_id or self.config.default_workspace

    def results(self, requested: int, name: str) -> int:
        """`requested` (a top_k or limit), refused above `limits.max_results`: one call cannot make the
        server rank, serialise and send an unbounded answer."""
        ceiling = self.config.limits.max_results
        if requested > ceiling:
            raise InvalidInput(
                f"{name}={requested:,} asks for more than limits.max_results ({ceiling:,}) results; ask for fewer "
                "(or page with offset where the flow has it)."
            )
        return requested

    def working_files(self, workspace_id: str | None) -> WorkingFiles:
        """One workspace's working-memory files: nothing of another workspace is reachable through it."""
        return self.working.workspace(self.workspace(workspace_id))
