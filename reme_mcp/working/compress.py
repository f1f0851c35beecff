"""compress: replace the older part of a conversation by an LLM-written state snapshot.

The originals are written to a transcript file *before* the LLM is asked, and the
snapshot ends with a pointer to that file, so nothing the model leaves out is lost:
the agent can grep and read it back. The snapshot's structure (goal, key knowledge,
recent actions, open items) is what an agent needs to carry on the task.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, Field, model_validator

from reme_mcp.models.llm import LLM
from reme_mcp.models.tokens import MESSAGE_OVERHEAD, count_tokens
from reme_mcp.working.compact import Draft, offload
from reme_mcp.working.files import WorkingFiles
from reme_mcp.working.messages import groups, head_end, recent_start, transcript
from reme_mcp.working.schemas import Message, OffloadedFile


def _as_list(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


Items = Annotated[list[Annotated[str, Field(max_length=600)]], BeforeValidator(_as_list), Field(max_length=30)]


class Snapshot(BaseModel):
    """What the LLM must answer with (bounded: see distill/schemas.py)."""

    goal: str = Field("", max_length=600)
    key_knowledge: Items = []
    recent_actions: Items = []
    open_items: Items = []

    @model_validator(mode="after")
    def _not_empty(self) -> "Snapshot":
        if not (self.goal.strip() or self.key_knowledge or self.recent_actions):
            raise ValueError("the snapshot has no goal, knowledge or actions")
        return self

    def render(self, first: int, last: int, tokens: int, name: str, where: str) -> str:
        lines = [f"[Summary of earlier messages {first}-{last} ({tokens:,} tokens); the originals are in {name}]"]
        if self.goal.strip():
            lines.append(f"Goal: {self.goal.strip()}")
        for title, items in (("Key knowledge", self.key_knowledge), ("Recent actions", self.recent_actions),
                             ("Open items", self.open_items)):
            if items:
                lines.append(f"{title}:")
                lines += [f"- {item}" for item in items]
        lines.append(
            f'Exact details: grep_working_memory(pattern="...", {where}) or read_working_memory({where}).'
        )
        return "\n".join(lines)


async def compress(
    draft: Draft, files: WorkingFiles, directory: Path, llm: LLM, keep_recent: int, group_tokens: int | None
) -> None:
    """Summarise everything between the system messages and the recent part (in place).

    Transcripts are listed in `draft.files` as soon as they are written, so they are
    reported even when the LLM then fails (`LLMFailed` propagates to the caller).
    """
    messages = draft.messages
    spans = groups(messages, draft.counts, head_end(messages), recent_start(messages, keep_recent), group_tokens)
    if not spans:
        draft.notes.append("Compression: nothing older than the recent part to summarise.")
        return
    llm.require("Compressing working memory")
    written: list[tuple[int, int, str, OffloadedFile]] = []
    for first, stop in spans:
        text = transcript(messages, first, stop)
        record = offload(
            draft, files, directory, f"messages-{first}-{stop - 1}", text, "transcript",
            sum(draft.counts[first:stop]), (first, stop - 1),
        )
        written.append((first, stop, text, record))
    system = llm.prompt("compress_working_memory")
    replaced: list[tuple[int, int, str]] = []
    for first, stop, text, record in written:
        snapshot = await llm.complete_json(
            [{"role": "system", "content": system}, {"role": "user", "content": text}],
            Snapshot, purpose="Compressing working memory",
        )
        replaced.append((first, stop, snapshot.render(first, stop - 1, record.tokens, record.file, files.call_arguments(record.file))))
    for first, stop, content in reversed(replaced):
        messages[first:stop] = [Message(role="user", content=content)]
        draft.counts[first:stop] = [count_tokens(content) + MESSAGE_OVERHEAD]
    draft.compressed = True
    draft.notes.append(f"Compression summarised {len(replaced)} group(s) of older messages: now {draft.tokens:,} tokens.")
