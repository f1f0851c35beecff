"""compact: offload large tool results to files and leave a pointer in their place.

No LLM is involved, so it always works. The assistant's `tool_calls` and the tool
message's `tool_call_id` stay as they were; only the result's content changes, to a
pointer that says where the original is, how big it is, and how its first lines read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from reme_mcp.models.tokens import MESSAGE_OVERHEAD, count_tokens
from reme_mcp.working.files import WorkingFiles, count_lines, file_stem
from reme_mcp.working.messages import head_end, recent_start
from reme_mcp.working.schemas import Message, OffloadedFile

PREVIEW_LINES = 6
PREVIEW_LINE_CHARS = 120


@dataclass
class Draft:
    """The message list being rewritten, with each message's token count and the files written so far."""

    messages: list[Message]
    counts: list[int]
    files: list[OffloadedFile] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    compressed: bool = False

    @property
    def tokens(self) -> int:
        return sum(self.counts)


def offload(
    draft: Draft, files: WorkingFiles, directory: Path, stem: str, text: str, kind: str, tokens: int,
    message_range: tuple[int, int], tool_call_id: str | None = None,
) -> OffloadedFile:
    """Write `text` to a new file and list it in the draft at once, so it is reported whatever fails next.

    Secrets in it (a `cat .env`, a token in a log) are redacted first: the file outlives the context."""
    text, redacted = files.redact(text)
    if redacted:
        draft.notes.append(f"{redacted} secret(s) redacted from the offloaded {kind.replace('_', ' ')}.")
    path = files.create(directory, stem, text)
    record = OffloadedFile(
        file=files.name(path), kind=kind, tokens=tokens, bytes=path.stat().st_size, lines=count_lines(text),
        tool_call_id=tool_call_id, message_range=message_range,
    )
    draft.files.append(record)
    return record


def preview(text: str) -> str:
    """The first lines of a result, each cut to a readable width (without splitting the whole text)."""
    shown: list[str] = []
    start = 0
    while len(shown) < PREVIEW_LINES and start < len(text):
        end = text.find("\n", start)
        end = len(text) if end < 0 else end
        line = text[start:end]
        shown.append(line if len(line) <= PREVIEW_LINE_CHARS else line[:PREVIEW_LINE_CHARS] + "…")
        start = end + 1
    return "\n".join(shown)


def pointer(files: WorkingFiles, name: str, first_lines: str, tokens: int, lines: int) -> str:
    where = files.call_arguments(name)
    return (
        f"[Tool result offloaded to working memory: {tokens:,} tokens, {lines:,} lines, file {name}. "
        f"Get it back with read_working_memory({where}, offset=0, limit=200), or search it with "
        f'grep_working_memory(pattern="...", {where}). First lines:]\n' + first_lines
    )


def compact(draft: Draft, files: WorkingFiles, directory: Path, max_tool_message_tokens: int, keep_recent: int) -> None:
    """Offload every tool result over `max_tool_message_tokens` outside the recent part (in place)."""
    messages = draft.messages
    for index in range(head_end(messages), recent_start(messages, keep_recent)):
        message = messages[index]
        tokens = draft.counts[index] - MESSAGE_OVERHEAD
        if message.role != "tool" or tokens <= max_tool_message_tokens:
            continue
        text = message.text()
        lines, first_lines = count_lines(text), preview(text)
        stem = file_stem(message.tool_call_id or "result")
        if count_tokens(pointer(files, f"{directory.name}/0000-{stem}.txt", first_lines, tokens, lines)) >= tokens:
            continue  # just over the limit: the pointer would cost more than the result
        record = offload(draft, files, directory, stem, text, "tool_result", tokens, (index, index), message.tool_call_id)
        content = pointer(files, record.file, first_lines, tokens, lines)
        draft.counts[index] = count_tokens(content) + MESSAGE_OVERHEAD
        if isinstance(message.content, list):  # images and other parts stay in the message; only text moves
            others = [part for part in message.content if part.get("type") != "text"]
            messages[index] = message.model_copy(update={"content": [{"type": "text", "text": content}, *others]})
        else:
            messages[index] = message.model_copy(update={"content": content})
