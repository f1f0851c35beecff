"""Message lists as the working-memory flows see them: token counts, the recent part, and safe cuts.

A cut may fall only between *units*: an assistant message with `tool_calls` together
with the tool results that answer it, or any other single message. Cutting inside a
unit leaves a tool call without its result (or a result without its call), which an
OpenAI-compatible endpoint rejects.
"""

from __future__ import annotations

import json

from reme_mcp.models.tokens import MESSAGE_OVERHEAD, count_many
from reme_mcp.working.schemas import Message


def counted_text(message: Message) -> str:
    """Everything in a message that costs tokens: content plus tool-call names and arguments."""
    parts = [message.text()]
    for call in message.tool_calls or []:
        arguments = call.function.arguments
        parts.append(call.function.name)
        parts.append(arguments if isinstance(arguments, str) else json.dumps(arguments or {}, ensure_ascii=False))
    return "\n".join(part for part in parts if part)


def token_counts(messages: list[Message]) -> list[int]:
    return [n + MESSAGE_OVERHEAD for n in count_many([counted_text(m) for m in messages])]


def head_end(messages: list[Message]) -> int:
    """Index after the leading system/developer messages, which are never offloaded or summarised."""
    index = 0
    while index < len(messages) and messages[index].role in ("system", "developer"):
        index += 1
    return index


def recent_start(messages: list[Message], keep_recent_count: int) -> int:
    """Where the untouched recent part begins, moved back so it never starts inside a unit."""
    floor = head_end(messages)
    start = max(floor, len(messages) - keep_recent_count)
    while start > floor and _continues(messages, start):
        start -= 1
    return start


def _continues(messages: list[Message], index: int) -> bool:
    """True when messages[index] belongs to the same unit as messages[index - 1]."""
    return index < len(messages) and messages[index].role == "tool"


def units(messages: list[Message], start: int, end: int) -> list[tuple[int, int]]:
    """[start, end) split into units, as (first, stop) index pairs."""
    spans: list[tuple[int, int]] = []
    index = start
    while index < end:
        stop = index + 1
        while stop < end and _continues(messages, stop):
            stop += 1
        spans.append((index, stop))
        index = stop
    return spans


def groups(messages: list[Message], counts: list[int], start: int, end: int, limit: int | None) -> list[tuple[int, int]]:
    """[start, end) in consecutive groups of whole units, each about `limit` tokens (None: one group)."""
    if start >= end:
        return []
    if limit is None:
        return [(start, end)]
    result: list[tuple[int, int]] = []
    first, size = start, 0
    for unit_first, unit_stop in units(messages, start, end):
        unit_size = sum(counts[unit_first:unit_stop])
        if size and size + unit_size > limit:
            result.append((first, unit_first))
            first, size = unit_first, 0
        size += unit_size
    result.append((first, end))
    return result


def transcript(messages: list[Message], start: int, end: int) -> str:
    """Messages [start, end) as readable text for a file that grep and read work on."""
    blocks = []
    for index in range(start, end):
        message = messages[index]
        header = f"### message {index} · {message.role}"
        if message.tool_call_id:
            header += f" · tool_call_id={message.tool_call_id}"
        body = [header, message.text()]
        for call in message.tool_calls or []:
            arguments = call.function.arguments
            shown = arguments if isinstance(arguments, str) else json.dumps(arguments, ensure_ascii=False)
            body.append(f"-> tool call {call.id}: {call.function.name}({shown})")
        blocks.append("\n".join(body))
    return "\n\n".join(blocks) + "\n"
