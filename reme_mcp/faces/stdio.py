"""MCP over stdio: every line the SDK cannot read gets an answer.

The SDK drops a line it cannot parse without a word (streamable HTTP answers 400), so a
client that sent arguments nested deeper than the parser's 200 levels, a lone surrogate
escape or a 5,000-digit number would wait forever. This wrapper of the read stream answers
each such line with a JSON-RPC error carrying the request's id when it can be found.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

import anyio
import mcp_types as types
from mcp.shared.message import SessionMessage
from pydantic import ValidationError

log = logging.getLogger(__name__)


class AnswerUnreadable:
    """The stdio read stream, answering every line the SDK cannot read with a JSON-RPC error for its id."""

    def __init__(self, read: Any, write: Any):
        self._read, self._write = read, write

    @property
    def last_context(self) -> Any:
        return getattr(self._read, "last_context", None)

    async def receive(self) -> Any:
        while True:
            item = await self._read.receive()
            if not isinstance(item, Exception):
                return item
            log.info("unreadable message: %s", item)
            try:
                await self._write.send(SessionMessage(unreadable(item)))
            except (anyio.ClosedResourceError, anyio.BrokenResourceError):
                pass  # the server is shutting down

    def __aiter__(self) -> "AnswerUnreadable":
        return self

    async def __anext__(self) -> Any:
        try:
            return await self.receive()
        except anyio.EndOfStream:
            raise StopAsyncIteration from None

    async def aclose(self) -> None:
        await self._read.aclose()

    async def __aenter__(self) -> "AnswerUnreadable":
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


def unreadable(exc: Exception) -> types.JSONRPCError:
    """The error for a message the SDK could not read: a parse error, or an invalid request if it was JSON."""
    first = exc.errors()[0] if isinstance(exc, ValidationError) and exc.errors() else {}
    raw = first.get("input")
    request_id = top_level_id(raw) if isinstance(raw, str) else raw.get("id") if isinstance(raw, dict) else None
    if not (isinstance(request_id, (int, str)) and not isinstance(request_id, bool) and _utf8(str(request_id))):
        request_id = None
    if first.get("type") == "json_invalid":
        code, message = types.PARSE_ERROR, (
            f"Parse error: the message is not JSON this server can read ({first['msg']}). Nesting deeper than 200 "
            "levels, lone surrogate escapes such as \\ud800 and numbers of over 4,300 digits cannot be read."
        )
    else:
        code, message = types.INVALID_REQUEST, f"Invalid request: not a JSON-RPC 2.0 message ({first.get('msg', exc)})."
    return types.JSONRPCError(jsonrpc="2.0", id=request_id, error=types.ErrorData(code=code, message=message))


_ID_VALUE = re.compile(r'"id"\s*:\s*(-?\d{1,19}(?![\d.eE])|"(?:[^"\\]|\\.){0,256}")')


def top_level_id(line: str) -> Any:
    """The "id" of a JSON-RPC line that no parser could read whole (too deep, or broken further on)."""
    try:
        message = json.loads(line)
    except (ValueError, RecursionError):
        message = None
    if isinstance(message, dict):
        return message.get("id")
    depth, in_string, escaped = 0, False, False
    for at, char in enumerate(line):
        if in_string:
            escaped, in_string = (False, True) if escaped else (char == "\\", char != '"')
        elif char == '"':
            if depth == 1 and (found := _ID_VALUE.match(line, at)):
                try:
                    return json.loads(found.group(1))
                except ValueError:
                    return None
            in_string = True
        elif char in "{[":
            depth += 1
        elif char in "}]":
            depth -= 1
    return None


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
