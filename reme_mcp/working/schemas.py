"""Inputs and outputs of the working-memory flows, with ReMe's parameter names and defaults."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from reme_mcp.episodic.schemas import WORKSPACE_PATTERN
from reme_mcp.working.files import split_lines

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"

ChatId = Annotated[
    str | None,
    Field(
        pattern=ID_PATTERN,
        description="Groups one conversation's offloaded files. Letters, digits, '.', '_' and '-'. "
        "Omit to get a new one (returned in the answer); reuse it to add files, never to replace them.",
    ),
]

StoreDir = Annotated[
    str | None,
    Field(
        max_length=256,
        description="A sub-directory of the server's working-memory directory (relative; no '..'). "
        "Omit to use the working-memory directory itself.",
    ),
]


WorkingWorkspace = Annotated[
    str | None,
    Field(
        pattern=WORKSPACE_PATTERN,
        description="Whose working memory: each workspace has its own files, unreachable from any other. "
        "Omit for the default workspace.",
    ),
]


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ToolCallFunction(BaseModel):
    model_config = ConfigDict(extra="allow")
    name: str = ""
    arguments: str | dict[str, Any] | None = None


class ToolCall(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str
    type: str = "function"
    function: ToolCallFunction = ToolCallFunction()


class Message(BaseModel):
    """An OpenAI chat message. Fields this server does not know are kept and returned unchanged."""

    model_config = ConfigDict(extra="allow")
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[dict[str, Any]] | None = None
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = None

    @model_validator(mode="after")
    def _tool_needs_id(self) -> "Message":
        if self.role == "tool" and not self.tool_call_id:
            raise ValueError("a message with role 'tool' needs the 'tool_call_id' it answers")
        return self

    def text(self) -> str:
        """The content as plain text (the text parts of a multi-part content, joined by newlines)."""
        if isinstance(self.content, str):
            return self.content
        if not self.content:
            return ""
        return "\n".join(str(part.get("text", "")) for part in self.content if part.get("type") == "text")

    def dump(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_unset=True)


class SummaryWorkingMemoryInput(_Input):
    messages: list[Message] = Field(description="The conversation so far, as sent to an OpenAI chat endpoint.")
    working_summary_mode: Literal["compact", "compress", "auto"] = Field(
        "auto",
        description="compact: offload large tool results to files. compress: LLM summary of older turns. "
        "auto: compact, then compress if that was not enough.",
    )
    compact_ratio_threshold: float = Field(
        0.75, gt=0, le=1,
        description="auto: compress when compaction kept more than this share of the tokens.",
    )
    max_total_tokens: int = Field(
        20_000, ge=0, description="Nothing is changed while the messages fit in this many tokens."
    )
    max_tool_message_tokens: int = Field(
        2_000, ge=1, description="compact: tool results longer than this are offloaded to a file."
    )
    group_token_threshold: int | None = Field(
        None, ge=100,
        description="compress: summarise the older part in groups of about this many tokens (none: one group).",
    )
    keep_recent_count: int = Field(
        4, ge=0, le=10_000,
        description="The last messages left untouched (extended back so a tool result keeps its call).",
    )
    store_dir: StoreDir = None
    chat_id: ChatId = None
    workspace_id: WorkingWorkspace = None


class OffloadedFile(BaseModel):
    file: str = Field(description="Path for grep_working_memory / read_working_memory.")
    kind: Literal["tool_result", "transcript"]
    tokens: int
    bytes: int
    lines: int
    tool_call_id: str | None = None
    message_range: tuple[int, int] = Field(description="Indexes (first, last) of the messages it holds.")


class SummaryWorkingMemoryOutput(BaseModel):
    chat_id: str
    messages: list[dict[str, Any]]
    tokens_before: int
    tokens_after: int
    max_total_tokens: int
    compacted: bool
    compressed: bool
    files: list[OffloadedFile]
    notes: list[str]

    def render(self) -> str:
        lines = [
            f"Working memory for chat '{self.chat_id}': {self.tokens_before:,} -> {self.tokens_after:,} tokens "
            f"(max_total_tokens {self.max_total_tokens:,}), {len(self.messages)} messages."
        ]
        lines += self.notes
        if self.files:
            lines.append("Files written (read them back with read_working_memory, search with grep_working_memory):")
            lines += [f"- {f.file} ({f.kind}, {f.tokens:,} tokens, {f.lines:,} lines)" for f in self.files]
        lines.append("The new message list is in `messages`.")
        return "\n".join(lines)


class GrepWorkingMemoryInput(_Input):
    pattern: str = Field(min_length=1, max_length=1000, description="Text to find (a regular expression if regex).")
    chat_id: ChatId = None
    file: str | None = Field(
        None, max_length=512, description="One file, as named by summary_working_memory; omit to search a whole chat."
    )
    store_dir: StoreDir = None
    workspace_id: WorkingWorkspace = None
    regex: bool = Field(False, description="Treat pattern as a regular expression instead of plain text.")
    case_sensitive: bool = False
    context_lines: int = Field(0, ge=0, le=50, description="Lines shown before and after each match.")
    limit: int = Field(50, ge=1, le=1000, description="At most this many matching lines.")


class GrepMatch(BaseModel):
    file: str
    line: int = Field(description="1-based; read_working_memory(file, offset=line-1) starts there.")
    text: str
    before: list[str] = []
    after: list[str] = []


class GrepWorkingMemoryOutput(BaseModel):
    pattern: str
    files_searched: int
    matches: list[GrepMatch]
    truncated: bool = Field(description="True when there were more matches than limit.")

    def render(self) -> str:
        if not self.matches:
            return f"No match for {self.pattern!r} in {self.files_searched} file(s)."
        out: list[str] = []
        for match in self.matches:
            if out and (match.before or match.after):
                out.append("--")
            first = match.line - len(match.before)
            out += [f"{match.file}-{first + i}-{text}" for i, text in enumerate(match.before)]
            out.append(f"{match.file}:{match.line}:{match.text}")
            out += [f"{match.file}-{match.line + 1 + i}-{text}" for i, text in enumerate(match.after)]
        more = " (more matches exist: raise limit or narrow the pattern)" if self.truncated else ""
        out.append(f"{len(self.matches)} matching line(s) in {self.files_searched} file(s){more}.")
        return "\n".join(out)


class ReadWorkingMemoryInput(_Input):
    file: str = Field(min_length=1, max_length=512, description="A file named by summary_working_memory or grep.")
    workspace_id: WorkingWorkspace = None
    offset: int = Field(0, ge=0, description="Lines to skip from the start (grep's line number minus one).")
    limit: int = Field(200, ge=1, le=5000, description="Lines to return.")


class ReadWorkingMemoryOutput(BaseModel):
    file: str
    offset: int
    total_lines: int
    content: str = Field(description="The lines read, exactly as offloaded (line endings included).")

    def render(self) -> str:
        lines = [line.rstrip("\n") for line in split_lines(self.content)]
        numbered = [f"{self.offset + 1 + i:>6}\t{line}" for i, line in enumerate(lines)]
        end = self.offset + len(lines)
        if end < self.total_lines:
            numbered.append(
                f"[{self.total_lines - end:,} more line(s): read_working_memory(file={self.file!r}, offset={end})]"
            )
        elif not lines:
            numbered.append(f"[{self.file} has {self.total_lines:,} line(s); offset {self.offset} is past the end]")
        return "\n".join(numbered)
