"""THE table of flows. MCP tools, HTTP routes, CLI commands and `ReMeApp.async_execute`
are all generated from it, so a flow's name, schema and description exist exactly once.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import BaseModel, ValidationError

from reme_mcp.cells.schemas import TrainInput, TrainOutput
from reme_mcp.cells.train import train_memory
from reme_mcp.distill import personal, summarize, task, tool
from reme_mcp.distill.schemas import (
    AddToolCallResultInput,
    DistillOutput,
    RetrieveInput,
    SummarizeTrajectoryInput,
    SummarizeTrajectoryOutput,
    SummaryInput,
    ToolMemoryOutput,
    ToolNamesInput,
)
from reme_mcp.episodic import memories
from reme_mcp.episodic.schemas import RecallInput, RecallOutput, RememberInput, RememberOutput
from reme_mcp.errors import ConfigError, InvalidInput, NotFound
from reme_mcp.library.flow import VectorStoreInput, VectorStoreOutput, vector_store
from reme_mcp.lifecycle import consolidate, forget
from reme_mcp.lifecycle.schemas import ConsolidateInput, ConsolidateOutput, ForgetInput, ForgetOutput
from reme_mcp.services import Services
from reme_mcp.working import search, summary
from reme_mcp.working.schemas import (
    GrepWorkingMemoryInput,
    GrepWorkingMemoryOutput,
    ReadWorkingMemoryInput,
    ReadWorkingMemoryOutput,
    SummaryWorkingMemoryInput,
    SummaryWorkingMemoryOutput,
)


class FlowOutput(Protocol):
    def render(self) -> str:
        """The answer text: what a person or an agent reads."""

    def model_dump(self, **kwargs: Any) -> dict[str, Any]: ...


class Envelope(BaseModel):
    """What every flow returns on every face."""

    answer: str
    success: bool
    metadata: dict[str, Any]


@dataclass(frozen=True)
class Flow:
    name: str
    description: str
    input: type[BaseModel]
    output: type[BaseModel]
    handler: Callable[[Services, Any], Awaitable[FlowOutput]]
    read_only: bool = False
    destructive: bool = False
    idempotent: bool = False
    core: bool = True  # in the short tool list an MCP client gets by default (mcp.tools=core)
    positional: tuple[str, ...] | None = None  # CLI positional arguments; default: the required fields

    def parse(self, arguments: dict[str, Any]) -> BaseModel:
        """Validate raw arguments; the error names each bad field and what it needs."""
        if not isinstance(arguments, dict):
            raise InvalidInput(f"{self.name} takes a JSON object of arguments, got {type(arguments).__name__}.")
        check_json(arguments)
        try:
            return self.input.model_validate(arguments)
        except ValidationError as exc:
            raise InvalidInput(f"Invalid arguments for {self.name}: {describe(exc)}") from None


MAX_DEPTH = 64  # levels of objects and lists in a call's arguments; far more than any memory needs


def _field(path: tuple[str | int, ...]) -> str:
    shown = ".".join(str(part) for part in path[:8]) + (".…" if len(path) > 8 else "")
    return shown.encode("utf-8", "backslashreplace").decode("utf-8") or "arguments"  # a key may be a bad one


def check_json(arguments: dict[str, Any]) -> None:
    """What no schema says but every face needs: text that is valid Unicode (it is stored as UTF-8 and
    sent back as JSON), numbers that JSON can carry, and nesting that no parser has to recurse through
    10,000 levels of. Walked without recursion, so the check itself cannot overflow the stack."""
    stack: list[tuple[tuple[str | int, ...], Any]] = [((), arguments)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, str):
            _check_text(path, value)
        elif isinstance(value, float) and not math.isfinite(value):
            raise InvalidInput(
                f"'{_field(path)}' is {value}, which is not a JSON number; send a finite number or null."
            )
        elif isinstance(value, (dict, list, tuple)):
            if len(path) >= MAX_DEPTH:
                raise InvalidInput(
                    f"'{_field(path[:1])}' nests objects and lists more than {MAX_DEPTH} levels deep; flatten it."
                )
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for key, item in items:
                if isinstance(key, str):
                    _check_text((*path, key), key)
                stack.append(((*path, key), item))


def _check_text(path: tuple[str | int, ...], text: str) -> None:
    if text.isascii():
        return
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidInput(
            f"'{_field(path)}' contains a lone surrogate {text[exc.start]!r} at character {exc.start}: not valid "
            "Unicode. Send text as UTF-8; a character outside the BMP is a surrogate *pair* in JSON."
        ) from None


def _shown(value: Any) -> str:
    try:
        shown = repr(value)
    except ValueError:  # an integer past Python's 4,300-digit limit for turning it into text
        digits = value.bit_length() * math.log10(2) if isinstance(value, int) else 0
        shown = f"an integer of about {digits:,.0f} digits" if digits else "a value too large to show"
    return shown if len(shown) <= 60 else shown[:57] + "..."


def describe(error: ValidationError) -> str:
    parts = []
    for err in error.errors(include_url=False):
        field = ".".join(str(p) for p in err["loc"]) or "arguments"
        if err["type"] == "missing":
            parts.append(f"'{field}' is required")
        elif err["type"] == "extra_forbidden":
            parts.append(f"'{field}' is not an argument of this flow")
        else:
            parts.append(f"'{field}': {err['msg']} (got {_shown(err.get('input'))})")
    return "; ".join(parts)


FLOWS: dict[str, Flow] = {
    flow.name: flow
    for flow in (
        Flow(
            name="remember",
            description=(
                "Save something worth knowing in a later session: a fact or preference the user states, a decision, "
                "an outcome, a lesson learned. Stores the text verbatim (secrets such as API keys redacted) and "
                "returns its id once it is safely written. Optional tags to filter by later, and ttl or expires_at "
                "for something that should not outlive its use. Calling it again with the same text and keywords "
                "returns the same id and stores nothing twice."
            ),
            input=RememberInput,
            output=RememberOutput,
            handler=memories.remember,
            idempotent=True,
        ),
        Flow(
            name="recall",
            description=(
                "Search long-term memory. Call it before answering anything that may depend on earlier sessions: "
                "the user's preferences, past decisions, names, events, prior results. Matches by meaning and by "
                "exact words; returns the best memories first, each with id, similarity and the exact stored text. "
                "Filters (tags, memory_type, thread, after/before such as 7d or 2026-05-01) apply before ranking."
            ),
            input=RecallInput,
            output=RecallOutput,
            handler=memories.recall,
            read_only=True,
            idempotent=True,
        ),
        Flow(
            name="forget",
            description=(
                "Delete memories when the user asks you to forget something or a memory turned out wrong: one by "
                "memory_id at once; or many by query, tags, time (after/before), memory_type, thread (a whole "
                "conversation), or about=X (everything that mentions X, working-memory files included). Many are "
                "deleted in two steps: the first call lists them with a confirm code, the second passes "
                "confirm=<code>. Cannot be undone."
            ),
            input=ForgetInput,
            output=ForgetOutput,
            handler=forget.forget,
            destructive=True,
            idempotent=True,
            positional=("memory_id",),
        ),
        Flow(
            name="consolidate",
            description=(
                "Merge duplicate memories of a workspace (the same fact stored several times, e.g. by retries or "
                "restatements) into one, keeping the newest text verbatim; old ids keep working. mode=summarize lets "
                "the configured LLM merge clusters of related memories into one summary memory. Dry run by "
                "default: shows what would change; dry_run=false applies it."
            ),
            input=ConsolidateInput, output=ConsolidateOutput, handler=consolidate.consolidate, destructive=True,
        ),
        Flow(
            name="train_memory",
            description=(
                "Store episodes ({text, keywords?, id?, time?, metadata?}) and train the workspace's memory cells, so "
                "recall finds an episode from cues that share few words with it. The trained cells are switched on "
                "only if they beat plain search on held-out cues; the answer shows both. Training again adds to what "
                "is stored."
            ),
            input=TrainInput, output=TrainOutput, handler=train_memory, core=False,
        ),
        Flow(
            name="vector_store",
            description=(
                "Manage the memory library and workspaces: list (workspaces and packs, or the memories of "
                "workspace_id, paged), load a pack (pack=NAME) into a workspace, dump a workspace as a pack "
                "(path=FOLDER under the store's library), copy src_workspace_id into workspace_id, delete a "
                "workspace, or delete_ids (memory_ids)."
            ),
            input=VectorStoreInput, output=VectorStoreOutput, handler=vector_store, destructive=True, core=False,
        ),
        Flow(
            name="summary_working_memory",
            description=(
                "Shrink a long message list (OpenAI format) so it fits the context window: large tool results "
                "outside the recent messages go to files and are replaced by pointers (compact); older turns can "
                "be summarised by the configured LLM into a state snapshot (compress); auto does compact, then "
                "compress if needed. Returns the new list and every file written; nothing is lost, "
                "grep_working_memory and read_working_memory bring it back."
            ),
            input=SummaryWorkingMemoryInput,
            output=SummaryWorkingMemoryOutput,
            handler=summary.summary_working_memory,
        ),
        Flow(
            name="grep_working_memory",
            description=(
                "Search the files that summary_working_memory offloaded, by chat_id or one file: returns file, "
                "line number and the matching line (plus context lines if asked). Plain text by default, "
                "case-insensitive; set regex=true for a regular expression."
            ),
            input=GrepWorkingMemoryInput,
            output=GrepWorkingMemoryOutput,
            handler=search.grep_working_memory,
            read_only=True,
            idempotent=True,
        ),
        Flow(
            name="read_working_memory",
            description=(
                "Read an offloaded file by lines: offset = lines to skip (grep's line number minus one), limit = "
                "lines to return. Returns numbered lines exactly as they were offloaded and says when more remain."
            ),
            input=ReadWorkingMemoryInput,
            output=ReadWorkingMemoryOutput,
            handler=search.read_working_memory,
            read_only=True,
            idempotent=True,
        ),
        Flow(
            name="summarize_trajectory",
            description=(
                "Learn from finished agent runs. Give the runs (OpenAI messages, with a score 0..1 if known); the "
                "configured LLM distils task lessons and pitfalls (kind=task), facts and preferences the user stated "
                "(personal; a contradicted fact is kept as superseded), and per-tool statistics with a usage "
                "guideline (tool). auto does all that apply. New memories are deduplicated, stored and returned "
                "with ids; recall finds them (memory_type filters)."
            ),
            input=SummarizeTrajectoryInput,
            output=SummarizeTrajectoryOutput,
            handler=summarize.summarize_trajectory,
        ),
        # ReMe's flows by name: HTTP and Python always, MCP with mcp.tools=all or by name.
        Flow(
            name="summary_task_memory",
            description="Distil task lessons, pitfalls and comparisons from trajectories (LLM); returns what was stored.",
            input=SummaryInput, output=DistillOutput, handler=task.summary_task_memory, core=False,
        ),
        Flow(
            name="retrieve_task_memory",
            description="Task memories whose when_to_use matches a new task, best first.",
            input=RetrieveInput, output=RecallOutput, handler=task.retrieve_task_memory,
            read_only=True, idempotent=True, core=False,
        ),
        Flow(
            name="summary_personal_memory",
            description="Distil facts and preferences the user stated (LLM); contradicted facts are superseded.",
            input=SummaryInput, output=DistillOutput, handler=personal.summary_personal_memory, core=False,
        ),
        Flow(
            name="retrieve_personal_memory",
            description="Current facts and preferences about the user that match a query, best first.",
            input=RetrieveInput, output=RecallOutput, handler=personal.retrieve_personal_memory,
            read_only=True, idempotent=True, core=False,
        ),
        Flow(
            name="add_tool_call_result",
            description="Record tool call results (tool_name, input, output, success, time_cost, token_cost).",
            input=AddToolCallResultInput, output=ToolMemoryOutput, handler=tool.add_tool_call_result, core=False,
        ),
        Flow(
            name="summary_tool_memory",
            description="Per-tool statistics from the recorded calls plus an LLM-written usage guideline.",
            input=ToolNamesInput, output=ToolMemoryOutput, handler=tool.summary_tool_memory, core=False,
        ),
        Flow(
            name="retrieve_tool_memory",
            description="The memory of each named tool: current statistics and its guideline (exact lookup).",
            input=ToolNamesInput, output=ToolMemoryOutput, handler=tool.retrieve_tool_memory,
            read_only=True, idempotent=True, core=False,
        ),
    )
}


CORE_TOOLS = frozenset(flow.name for flow in FLOWS.values() if flow.core)


def select(spec: str) -> list[Flow]:
    """The flows named by `mcp.tools`: core, all, or comma-separated names."""
    if spec == "all":
        return list(FLOWS.values())
    if spec == "core":
        return [flow for flow in FLOWS.values() if flow.core]
    names = [name.strip() for name in spec.split(",") if name.strip()]
    unknown = [name for name in names if name not in FLOWS] or ([] if names else ["(none given)"])
    if unknown:
        raise ConfigError(
            f"mcp.tools={spec!r} names no flow {', '.join(unknown)}; use core, all, or names from {', '.join(FLOWS)}."
        )
    return [FLOWS[name] for name in names]


def get_flow(name: str) -> Flow:
    try:
        return FLOWS[name]
    except KeyError:
        raise NotFound(f"No flow named '{name}'. Flows: {', '.join(FLOWS)}.") from None
