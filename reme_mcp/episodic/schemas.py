"""Inputs and outputs of the episodic flows: the one schema MCP, HTTP and Python share.

Field descriptions are written for the agent that reads the tool schema.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from reme_mcp.lifecycle.when import Duration, Instant, When
from reme_mcp.store.base import MemoryType

WORKSPACE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"

WorkspaceId = Annotated[
    str | None,
    Field(
        pattern=WORKSPACE_PATTERN,
        description="Isolates memories (per user, project or agent): recall only sees its own workspace. "
        "Letters, digits, '.', '_' and '-', up to 64 characters. Omit for the default workspace.",
    ),
]


def _split_keywords(value: Any) -> Any:
    """Accept "a, b, c" as well as ["a", "b", "c"], as the ReMemory JSON files do."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(value, list):
        return [part.strip() if isinstance(part, str) else part for part in value]
    return value


Keywords = Annotated[
    list[Annotated[str, Field(min_length=1, max_length=200)]],
    BeforeValidator(_split_keywords),
    Field(
        default_factory=list,
        description='Words that identify the memory (names, places, topics): a list, or one comma-separated string.',
    ),
]


def _split_tags(value: Any) -> Any:
    """Tags are compared case-insensitively, so they are kept lower-case; a tag repeated counts once."""
    value = _split_keywords(value)
    if isinstance(value, list) and all(isinstance(t, str) for t in value):
        return list(dict.fromkeys(t.lower() for t in value))
    return value  # not a list of strings: validation names the bad item


Tags = Annotated[
    list[Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[^,\x00-\x1f]+$")]],
    BeforeValidator(_split_tags),
    Field(
        default_factory=list, max_length=32,
        description="Labels to filter by later (project, person, topic): a list or comma-separated; case-insensitive.",
    ),
]


def _valid_unicode(text: str) -> str:
    """A lone surrogate (JSON "\\ud800") is not text: it cannot be stored as UTF-8 or given back exactly."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(
            f"contains a lone surrogate {text[exc.start]!r} at character {exc.start}: not valid Unicode. "
            "Send the text as UTF-8 (an emoji is one code point, or a surrogate *pair*)."
        ) from None
    return text


MemoryText = Annotated[
    str,
    AfterValidator(_valid_unicode),
    Field(min_length=1, description="The memory, stored verbatim: a fact, an event, a decision, a preference."),
]


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


# A conversation or session id, as remember takes it and recall and forget filter by it.
ThreadId = Annotated[str | None, Field(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f]+$")]


class RememberInput(_Input):
    text: MemoryText
    keywords: Keywords
    thread: ThreadId = Field(
        None, description="The conversation or session this memory is a turn of (any id you choose). A memory is "
        "also found by the words of the two remembered before it in its thread, so a reply like 'yes, last "
        "Tuesday' is found by the question it answers. Omit for a standalone fact.",
    )
    workspace_id: WorkspaceId = None
    metadata: dict[str, Any] = Field(
        default_factory=dict, description="Any JSON object kept with the memory and returned by recall."
    )
    tags: Tags
    ttl: Duration = None
    expires_at: Instant | None = Field(
        None, description="When to forget it (ISO 8601); after that recall never returns it. Or give ttl."
    )


MemoryTypes = Annotated[
    list[MemoryType] | None,
    BeforeValidator(_split_keywords),
    Field(description="Only these kinds (episode, task, personal, tool; a list or comma-separated). Omit for all."),
]


class Filters(_Input):
    """What recall (and forget) can narrow to; every filter applies before ranking."""

    memory_type: MemoryTypes = None
    tags: Annotated[list[str] | None, BeforeValidator(_split_tags)] = Field(
        None, description="Only memories with these tags (see tag_mode)."
    )
    tag_mode: Literal["any", "all"] = Field("any", description="any: at least one of the tags; all: every one.")
    after: When = Field(None, description="Only memories written at or after this time (ISO 8601, or 7d, 12h...).")
    before: When = Field(None, description="Only memories written before this time (ISO 8601, or 7d, 12h...).")
    thread: ThreadId = Field(
        None, description="Only memories of this thread (a conversation or session id given to remember)."
    )


QUERY_CHARS = 10_000  # a question or a passage; a longer one only slows the word index (every word is a term)


class RecallInput(Filters):
    query: str = Field(
        min_length=1, max_length=QUERY_CHARS,
        description="What to look for, in plain words: a question, a phrase, a name.",
    )
    top_k: int = Field(3, ge=1, le=100, description="How many memories to return, best first.")
    workspace_id: WorkspaceId = None


class StoredMemory(BaseModel):
    id: str
    workspace_id: str
    text: str
    keywords: list[str]
    metadata: dict[str, Any]
    created_at: datetime
    memory_type: MemoryType = Field(description="episode (remember), or task / personal / tool (distilled).")
    status: Literal["active", "superseded"] = "active"
    tags: list[str] = Field(default_factory=list)
    expires_at: datetime | None = None
    recall_count: int = Field(0, description="How often recall has returned it.")
    last_recalled_at: datetime | None = None
    thread: str | None = Field(None, description="The conversation or session it was remembered in, if any.")


class RememberOutput(BaseModel):
    memory: StoredMemory
    created: bool = Field(description="False when the same text and keywords were already stored.")
    redacted: int = Field(0, description="Secrets (API keys, tokens, passwords) replaced before storing.")

    def render(self) -> str:
        m = self.memory
        note = f" {self.redacted} secret(s) were redacted before storing." if self.redacted else ""
        if self.created:
            expiry = f", expires {m.expires_at:%Y-%m-%d %H:%M} UTC" if m.expires_at else ""
            return f"Remembered as {m.id} in workspace '{m.workspace_id}'{expiry}.{note}"
        return (
            f"Already remembered as {m.id} in workspace '{m.workspace_id}' "
            f"(stored {m.created_at:%Y-%m-%d %H:%M} UTC); nothing changed."
        )


class Hit(StoredMemory):
    similarity: float = Field(description="Cosine similarity of the query and the memory, -1..1.")
    score: float = Field(description="The fused ranking score (reciprocal rank fusion of BM25 and dense).")


PREVIEW_CHARS = 300


def _preview(text: str) -> str:
    """Runners-up are shown short: the answer stays small, and the full text is one step away."""
    if len(text) <= PREVIEW_CHARS:
        return text
    return f"{text[:PREVIEW_CHARS]}… (+{len(text) - PREVIEW_CHARS} chars; full text in structuredContent)"


def _kind(hit: Hit) -> str:
    return "" if hit.memory_type == "episode" else f"{hit.memory_type} memory, "


class RecallOutput(BaseModel):
    query: str
    workspace_id: str
    memories: list[Hit]

    def render(self) -> str:
        if not self.memories:
            return f"No memories in workspace '{self.workspace_id}' match {self.query!r}."
        best, *rest = self.memories
        lines = [f"Best match: {best.id} ({_kind(best)}similarity {best.similarity:.3f})", best.text]
        if best.keywords:
            lines.append(f"keywords: {', '.join(best.keywords)}")
        if rest:
            lines += ["", "Closest matches:"]
            for rank, hit in enumerate(rest, start=2):
                lines.append(f"{rank}. {hit.id} ({_kind(hit)}similarity {hit.similarity:.3f}): {_preview(hit.text)}")
        return "\n".join(lines)
