"""summary_working_memory: shrink a message list to fit, in ReMe's three modes.

auto compacts first; it then compresses when compaction kept more than
`compact_ratio_threshold` of the tokens (ReMe's rule) or when the list still does not
fit in `max_total_tokens` (so the answer fits whenever the LLM can make it fit). If the
LLM is missing or fails, the compaction result is returned with a note saying why.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

import anyio.to_thread

from reme_mcp.errors import InvalidInput, LLMFailed, LLMUnavailable
from reme_mcp.services import Services
from reme_mcp.working.compact import Draft, compact
from reme_mcp.working.compress import compress
from reme_mcp.working.files import file_stem
from reme_mcp.working.messages import token_counts
from reme_mcp.working.schemas import SummaryWorkingMemoryInput, SummaryWorkingMemoryOutput


def new_chat_id() -> str:
    return datetime.now(UTC).strftime("chat-%Y%m%d-%H%M%S-") + secrets.token_hex(3)


async def summary_working_memory(services: Services, args: SummaryWorkingMemoryInput) -> SummaryWorkingMemoryOutput:
    ceiling = services.config.limits.max_working_file_bytes
    largest = max((len(m.text().encode("utf-8", "surrogatepass")) for m in args.messages if m.role == "tool"), default=0)
    if largest > ceiling:
        raise InvalidInput(
            f"A tool result of {largest:,} bytes is larger than limits.max_working_file_bytes ({ceiling:,}); "
            "nothing was written. Cut it down (or raise the limit) before compacting."
        )
    for message in args.messages:  # every file name is checked before the first file is written
        if message.role == "tool":
            file_stem(message.tool_call_id or "result")
    chat_id = args.chat_id or new_chat_id()
    files = services.working_files(args.workspace_id)
    directory = files.directory(args.store_dir, chat_id)
    messages = list(args.messages)
    draft = Draft(messages, await anyio.to_thread.run_sync(token_counts, messages))
    before = draft.tokens
    mode = args.working_summary_mode
    if before <= args.max_total_tokens:
        draft.notes.append(f"Already within max_total_tokens ({args.max_total_tokens:,}); nothing changed.")
    else:
        if mode != "compress":
            await anyio.to_thread.run_sync(
                compact, draft, files, directory, args.max_tool_message_tokens, args.keep_recent_count
            )
            offloaded = sum(1 for f in draft.files if f.kind == "tool_result")
            draft.notes.append(f"Compaction offloaded {offloaded} tool result(s): {before:,} -> {draft.tokens:,} tokens.")
        if mode == "compress" or (mode == "auto" and _needs_compression(draft, before, args)):
            try:
                await compress(draft, files, directory, services.llm, args.keep_recent_count, args.group_token_threshold)
            except (LLMFailed, LLMUnavailable) as exc:
                if mode == "compress":
                    raise
                draft.notes.append(f"Compression did not run: {exc} The compacted list is returned.")
    return SummaryWorkingMemoryOutput(
        chat_id=chat_id,
        messages=[m.dump() for m in draft.messages],
        tokens_before=before,
        tokens_after=draft.tokens,
        max_total_tokens=args.max_total_tokens,
        compacted=any(f.kind == "tool_result" for f in draft.files),
        compressed=draft.compressed,
        files=draft.files,
        notes=draft.notes,
    )


def _needs_compression(draft: Draft, before: int, args: SummaryWorkingMemoryInput) -> bool:
    ratio = draft.tokens / before
    if ratio <= args.compact_ratio_threshold and draft.tokens <= args.max_total_tokens:
        draft.notes.append(f"Compression not needed: compaction kept {ratio:.0%} of the tokens.")
        return False
    return True
