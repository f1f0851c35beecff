"""Inputs and outputs of forget and consolidate (one schema for MCP, HTTP and Python)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field, model_validator

from reme_mcp.episodic.schemas import PREVIEW_CHARS, QUERY_CHARS, Filters, WorkspaceId
from reme_mcp.store.base import Memory, MemoryType

SHOWN = 20  # matches listed in an answer; structuredContent has them all


class ForgetInput(Filters):
    memory_id: str | None = Field(
        None, min_length=1, max_length=128, description="Forget this one memory (the id remember or recall gave)."
    )
    query: str | None = Field(
        None, min_length=1, max_length=QUERY_CHARS, description="Forget what recall returns for this query (top_k)."
    )
    top_k: int = Field(10, ge=1, le=1000, description="How many of the query's best matches to forget.")
    about: str | None = Field(
        None, min_length=2, max_length=200,
        description="Forget everything that mentions this (a person, a project, a secret): memories of every kind, "
        "their cells and indexes, recorded tool calls and working-memory files.",
    )
    workspace_id: WorkspaceId = None
    confirm: str | None = Field(
        None, max_length=64,
        description="Leave out to see what would be deleted (a dry run with a count and a confirm code); then call "
        "again with the same arguments and confirm=<that code> to delete exactly that.",
    )

    @model_validator(mode="after")
    def _one_way(self) -> "ForgetInput":
        # An empty list or string selects nothing, not everything: `tags=""` must never mean "all memories".
        selectors = [self.query, self.about, self.tags, self.after, self.before, self.memory_type, self.thread]
        if any(s is not None and not s for s in selectors):
            raise ValueError("an empty selector (tags, memory_type, ...) selects nothing; leave it out instead")
        if self.memory_id is not None and any(s is not None for s in selectors):
            raise ValueError(
                "give memory_id alone, or selectors (query, about, tags, after, before, memory_type, thread)"
            )
        if self.memory_id is None and all(s is None for s in selectors):
            raise ValueError(
                "say what to forget: memory_id, or query, about, tags, after, before, memory_type or thread"
            )
        return self


class Forgotten(BaseModel):
    id: str
    memory_type: MemoryType
    created_at: datetime
    preview: str

    @classmethod
    def of(cls, memory: Memory) -> "Forgotten":
        text = memory.text if len(memory.text) <= PREVIEW_CHARS else memory.text[:PREVIEW_CHARS] + "…"
        return cls(id=memory.id, memory_type=memory.memory_type, created_at=memory.created_at, preview=text)


class ForgetOutput(BaseModel):
    workspace_id: str
    memory_id: str | None = Field(None, description="The memory forgotten, when one id was given.")
    dry_run: bool = Field(description="True: nothing was deleted, this is what would be.")
    memories: list[Forgotten] = Field(default_factory=list)
    working_files: list[str] = Field(default_factory=list, description="Working-memory files that mention `about`.")
    tool_calls: int = Field(0, description="Recorded tool calls that mention `about`.")
    confirm: str | None = Field(None, description="Pass as confirm= to delete exactly what this dry run lists.")
    wiped: bool = Field(True, description="False if another process kept the write-ahead log open, so the old "
                        "text may stay in the store's files until its next checkpoint.")

    @property
    def count(self) -> int:
        return len(self.memories) + len(self.working_files) + self.tool_calls

    def render(self) -> str:
        if self.memory_id is not None and not self.dry_run:
            return f"Forgot {self.memory_id} in workspace '{self.workspace_id}'."
        parts = [f"{len(self.memories)} memories"]
        if self.working_files:
            parts.append(f"{len(self.working_files)} working-memory files")
        if self.tool_calls:
            parts.append(f"{self.tool_calls} recorded tool calls")
        what = ", ".join(parts)
        if not self.dry_run:
            where = ("and from the store file" if self.wiped else "; another process holds the store open, so the "
                     "file may keep the old text until its next checkpoint")
            return (
                f"Forgot {what} in workspace '{self.workspace_id}'. Their text is gone from the lexical, vector and "
                f"cell indexes {where}."
            )
        if self.count == 0:
            return f"Nothing in workspace '{self.workspace_id}' matches; nothing to forget."
        lines = [f"Dry run: {what} in workspace '{self.workspace_id}' would be deleted:"]
        lines += [f"- {m.id} ({m.memory_type}, {m.created_at:%Y-%m-%d}): {m.preview}" for m in self.memories[:SHOWN]]
        if len(self.memories) > SHOWN:
            lines.append(f"… and {len(self.memories) - SHOWN} more memories (all listed in structuredContent)")
        lines += [f"- file {name}" for name in self.working_files[:SHOWN]]
        lines.append(f"Nothing was deleted. To delete exactly these, call forget again with confirm={self.confirm!r}.")
        return "\n".join(lines)


class ConsolidateInput(BaseModel):
    model_config = {"extra": "forbid"}

    workspace_id: WorkspaceId = None
    mode: Literal["dedup", "summarize"] = Field(
        "dedup", description="dedup: merge exact and near-exact duplicates, keeping one text verbatim (no LLM). "
        "summarize: also let the configured LLM merge each cluster of related memories into one summary memory.",
    )
    threshold: float | None = Field(
        None, gt=0, le=1, description="dedup: how alike the word sequences must be, 0..1 (default "
        "lifecycle.duplicate_threshold); summarize: the cosine that groups memories (lifecycle.cluster_threshold).",
    )
    memory_type: MemoryType | None = Field(None, description="Only this kind; default every kind (never mixed).")
    dry_run: bool = Field(True, description="True (default): show what would be merged; false: merge.")


class Merge(BaseModel):
    survivor: str = Field(description="The id that stays (a summary memory's new id in summarize mode).")
    text: str
    merged: list[str] = Field(description="Ids folded into the survivor; they stay valid as its aliases.")
    reason: str = Field(description="exact, near (with the lowest cosine), or summary.")


class ConsolidateOutput(BaseModel):
    workspace_id: str
    dry_run: bool
    mode: str
    threshold: float
    merges: list[Merge]
    before: int = Field(description="Active memories before.")
    skipped: int = Field(0, description="Merges not made: a memory changed meanwhile (run consolidate again).")

    def render(self) -> str:
        folded = sum(len(m.merged) for m in self.merges)
        if not self.merges and not self.skipped:
            return f"No duplicates among {self.before} memories of workspace '{self.workspace_id}'; nothing to merge."
        head = "Dry run: would merge" if self.dry_run else "Merged"
        lines = [
            f"{head} {folded} memories into {len(self.merges)} in workspace '{self.workspace_id}' "
            f"({self.before} → {self.before - folded} active; threshold {self.threshold:g}):"
        ]
        for merge in self.merges[:SHOWN]:
            text = merge.text if len(merge.text) <= 120 else merge.text[:120] + "…"
            lines.append(f"- {merge.survivor} ← {', '.join(merge.merged)} ({merge.reason}): {text}")
        if len(self.merges) > SHOWN:
            lines.append(f"… and {len(self.merges) - SHOWN} more (all in structuredContent)")
        if self.skipped:
            lines.append(f"{self.skipped} merge(s) skipped: their memories changed meanwhile; run consolidate again.")
        if self.dry_run:
            lines.append("Nothing changed. Call consolidate with dry_run=false to merge; merged ids stay valid.")
        return "\n".join(lines)
