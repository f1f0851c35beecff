"""Inputs and outputs of `train_memory`."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from reme_mcp.episodic.schemas import Keywords, MemoryText, WorkspaceId, _Input
from reme_mcp.lifecycle.when import Instant


class Episode(_Input):
    """One episode as a ReMemory JSON file holds it; `keywords` and the rest are optional."""

    text: MemoryText
    keywords: Keywords
    id: str | None = Field(
        None, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$",
        description="Your id for the episode (recall shows it); omitted: a digest of text and keywords.",
    )
    time: Instant | None = Field(None, description="When it happened (ISO 8601); omitted: now.")
    metadata: dict[str, Any] = Field(default_factory=dict)


class TrainInput(_Input):
    episodes: list[Episode] = Field(
        default_factory=list,
        description="Episodes to store before training (none: retrain the cells of what is stored).",
    )
    workspace_id: WorkspaceId = None


class Scores(BaseModel):
    recall_at_1: float
    recall_at_5: float
    mrr: float


class TrainOutput(BaseModel):
    workspace_id: str
    added: int = Field(description="Episodes stored by this call.")
    already_stored: int = Field(description="Episodes that were stored before (same id and text).")
    redacted: int = Field(0, description="Secrets (API keys, tokens, passwords) replaced before storing.")
    cells: int = Field(description="Active memories of the workspace, each now a cell.")
    keys: int = Field(description="Keys of all cells together.")
    held_out_cues: int = Field(description="Cues training never saw, on which the gate compared.")
    plain: Scores = Field(
        description="Hybrid search with the cells off, on the held-out cues: what recall does untrained (memory "
        "vectors and BM25; non-Latin memories also by their multilingual keys)."
    )
    keys_only: Scores = Field(description="Hybrid search with the cells' keys, query not adapted.")
    adapted: Scores = Field(description="Hybrid search with the cells' keys and the trained query adapter.")
    adapter_on: bool = Field(description="True when the adapter beat the keys alone and is kept.")
    enabled: bool = Field(description="True when the cells beat plain search and recall now uses them.")
    seconds: float

    def render(self) -> str:
        lines = [
            f"Trained {self.cells} cells ({self.keys} keys) in workspace '{self.workspace_id}': "
            f"{self.added} new episodes stored, {self.already_stored} already there"
            f"{f', {self.redacted} secret(s) redacted' if self.redacted else ''}. {self.seconds:.1f} s.",
            "",
            f"{self.held_out_cues} held-out cues          recall@1  recall@5    MRR",
        ]
        for label, s in (("plain search", self.plain), ("cells: keys", self.keys_only),
                         ("cells: keys + adapter", self.adapted)):
            lines.append(f"{label:<28} {s.recall_at_1:8.3f}  {s.recall_at_5:8.3f}  {s.mrr:5.3f}")
        lines.append("")
        adapter = "with the adapter" if self.adapter_on else "without the adapter: it did not beat the keys alone"
        if self.enabled:
            lines.append(f"The cells beat plain search on cues training never saw: recall now uses them ({adapter}).")
        else:
            lines.append(
                "The cells did not beat plain search on cues training never saw, so they stay off "
                "and recall keeps plain search."
            )
        return "\n".join(lines)
