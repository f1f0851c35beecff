"""grep_working_memory and read_working_memory: get offloaded content back, exactly.

grep is line-oriented like grep -n: plain text unless `regex` is set, case-insensitive
unless told otherwise. Patterns come from an agent, so they run under a deadline (the
`regex` package can stop a runaway match; the stdlib `re` cannot). read pages through a
file by line offset and returns the lines byte-for-byte as they were written.
"""

from __future__ import annotations

import time

import anyio.to_thread
import regex

from reme_mcp.errors import InvalidInput, NotFound
from reme_mcp.services import Services
from reme_mcp.working.files import split_lines
from reme_mcp.working.schemas import (
    GrepMatch,
    GrepWorkingMemoryInput,
    GrepWorkingMemoryOutput,
    ReadWorkingMemoryInput,
    ReadWorkingMemoryOutput,
)

GREP_SECONDS = 5.0
SHOWN_CHARS = 400  # a matching line of a minified file is cut around the match; read gives it whole


def _compile(args: GrepWorkingMemoryInput) -> regex.Pattern[str]:
    flags = 0 if args.case_sensitive else regex.IGNORECASE
    if not args.regex:
        return regex.compile(regex.escape(args.pattern), flags)
    try:
        return regex.compile(args.pattern, flags | regex.VERSION0)
    except (regex.error, ValueError, OverflowError) as exc:
        raise InvalidInput(
            f"pattern {args.pattern!r} is not a valid regular expression ({exc}); fix it, "
            "or pass regex=false to search for the text as it is."
        ) from None


def _shown(line: str, start: int) -> str:
    line = line.rstrip("\n")
    if len(line) <= SHOWN_CHARS:
        return line
    begin = max(0, min(start - SHOWN_CHARS // 4, len(line) - SHOWN_CHARS))
    return ("…" if begin else "") + line[begin : begin + SHOWN_CHARS] + ("…" if begin + SHOWN_CHARS < len(line) else "")


def _grep(services: Services, args: GrepWorkingMemoryInput) -> GrepWorkingMemoryOutput:
    services.results(args.limit, "limit")
    files = services.working_files(args.workspace_id)
    pattern = _compile(args)
    if args.file:
        paths = [files.resolve(args.file)]
    else:
        directory = files.directory(args.store_dir, args.chat_id)
        if not directory.is_dir() and (args.chat_id or args.store_dir):
            where = f"chat {args.chat_id!r}" if args.chat_id else "this store_dir"
            raise NotFound(f"No offloaded files for {where}; use the chat_id summary_working_memory returned.")
        paths = list(files.files(directory))
    deadline = time.monotonic() + GREP_SECONDS
    matches: list[GrepMatch] = []
    truncated = False
    for path in paths:
        lines = split_lines(files.read(path))
        name = files.name(path)
        for number, line in enumerate(lines):
            try:
                found = pattern.search(line, timeout=max(0.001, deadline - time.monotonic()))
            except TimeoutError:
                raise InvalidInput(
                    f"pattern {args.pattern!r} took longer than {GREP_SECONDS:g} s; use a simpler pattern "
                    "(avoid nested repeats such as (a+)+) or search one file."
                ) from None
            if not found:
                continue
            if len(matches) == args.limit:
                truncated = True
                break
            context = args.context_lines
            matches.append(
                GrepMatch(
                    file=name, line=number + 1, text=_shown(line, found.start()),
                    before=[_shown(text, 0) for text in lines[max(0, number - context) : number]],
                    after=[_shown(text, 0) for text in lines[number + 1 : number + 1 + context]],
                )
            )
        if truncated:
            break
    return GrepWorkingMemoryOutput(pattern=args.pattern, files_searched=len(paths), matches=matches, truncated=truncated)


async def grep_working_memory(services: Services, args: GrepWorkingMemoryInput) -> GrepWorkingMemoryOutput:
    return await anyio.to_thread.run_sync(_grep, services, args)


def _read(services: Services, args: ReadWorkingMemoryInput) -> ReadWorkingMemoryOutput:
    files = services.working_files(args.workspace_id)
    path = files.resolve(args.file)
    lines = split_lines(files.read(path))
    return ReadWorkingMemoryOutput(
        file=files.name(path), offset=args.offset, total_lines=len(lines),
        content="".join(lines[args.offset : args.offset + args.limit]),
    )


async def read_working_memory(services: Services, args: ReadWorkingMemoryInput) -> ReadWorkingMemoryOutput:
    return await anyio.to_thread.run_sync(_read, services, args)
