"""Tool memories: how each tool behaves, counted from its calls, plus an LLM-written guideline.

Statistics (calls, success rate, average time and tokens) are computed from the stored
call records, never by the LLM, and are always current: retrieve_tool_memory counts
them at lookup time. The guideline is written by summary_tool_memory and stored as a
memory with id `tool:<name>`, so a lookup by name is exact and needs no embedding.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone

import anyio.to_thread

from reme_mcp.distill.schemas import (
    AddToolCallResultInput,
    ToolCallResult,
    ToolGuideline,
    ToolMemory,
    ToolMemoryOutput,
    ToolNamesInput,
    ToolStats,
    Trajectory,
)
from reme_mcp.episodic.memories import memory_vector, require_workspace
from reme_mcp.models.tokens import count_tokens
from reme_mcp.privacy.scrub import scrub_value
from reme_mcp.services import Services
from reme_mcp.store.base import Memory

SAMPLE_CALLS = 12  # recent calls shown to the LLM, failures first
FAILURE_WORDS = ("error", "exception", "traceback", "failed", "not found", "denied", "timed out", "invalid")


def tool_memory_id(name: str) -> str:
    return f"tool:{name}"


def _input_text(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def from_trajectory(trajectory: Trajectory) -> list[ToolCallResult]:
    """Pair each tool call with its result. A result counts as failed when the message says
    `success: false` / `is_error: true`, or when its first line reads like an error."""
    calls: dict[str, tuple[str, dict | str | None]] = {}
    results: list[ToolCallResult] = []
    for message in trajectory.messages:
        for call in message.tool_calls or []:
            arguments = call.function.arguments
            if isinstance(arguments, str):
                try:
                    parsed = json.loads(arguments)
                    arguments = parsed if isinstance(parsed, dict) else arguments
                except json.JSONDecodeError:
                    pass
            calls[call.id] = ((call.function.name or "unknown")[:200], arguments)
        if message.role == "tool" and message.tool_call_id in calls:
            name, arguments = calls[message.tool_call_id]
            extra = message.model_extra or {}
            output = message.text()
            head = output.lstrip()[:200].lower()
            failed = extra.get("is_error") is True or extra.get("success") is False or head.startswith(FAILURE_WORDS)
            seconds = extra.get("time_cost")
            results.append(ToolCallResult(
                tool_name=name, input=arguments, output=output, success=not failed,
                time_cost=float(seconds) if isinstance(seconds, (int, float)) and seconds >= 0 else None,
                # the same run sent twice (a client retry) must not count its calls twice
                call_key=f"{trajectory.task_id or ''}/{message.tool_call_id}/{hash_text(output)}",
            ))
    return results


def hash_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def _records(results: list[ToolCallResult]) -> list[tuple[str, str, float, str | None]]:
    rows = []
    for result in results:
        if result.token_cost is None:
            result = result.model_copy(update={"token_cost": count_tokens(_input_text(result.input) + result.output)})
        created = (result.create_time or datetime.now(timezone.utc)).timestamp()
        key = (result.model_extra or {}).get("call_key")
        rows.append((result.tool_name, result.model_dump_json(), created, key if isinstance(key, str) else None))
    return rows


def stats(name: str, records: list[ToolCallResult]) -> ToolStats:
    times = [r.time_cost for r in records if r.time_cost is not None]
    tokens = [r.token_cost for r in records if r.token_cost is not None]
    successes = sum(r.success for r in records)
    return ToolStats(
        tool_name=name, calls=len(records), successes=successes,
        success_rate=round(successes / len(records), 4) if records else None,
        avg_time_cost=round(sum(times) / len(times), 4) if times else None,
        avg_token_cost=round(sum(tokens) / len(tokens), 1) if tokens else None,
    )


def _load(services: Services, workspace_id: str, name: str) -> list[ToolCallResult]:
    return [ToolCallResult.model_validate_json(r) for r in services.store.tool_calls(workspace_id, name)]


def _lookup(services: Services, workspace_id: str, names: list[str]) -> list[ToolMemory]:
    tools = []
    for name in names:
        memory = services.store.get(workspace_id, tool_memory_id(name))
        tools.append(ToolMemory(
            tool_name=name, stats=stats(name, _load(services, workspace_id, name)),
            guideline=memory.metadata.get("guideline") if memory else None, memory_id=memory.id if memory else None,
        ))
    return tools


async def record(services: Services, workspace_id: str, results: list[ToolCallResult]) -> int:
    # A tool's input or output may carry a key; the record keeps it out.
    results = [ToolCallResult.model_validate(scrub_value(services.config.privacy, r.model_dump())[0]) for r in results]
    return await anyio.to_thread.run_sync(services.store.add_tool_calls, workspace_id, _records(results))


async def summarize(services: Services, workspace_id: str, names: list[str]) -> list[ToolMemory]:
    purpose = "summary_tool_memory"
    services.llm.require(purpose)
    tools = []
    for name in dict.fromkeys(names):
        calls = await anyio.to_thread.run_sync(_load, services, workspace_id, name)
        if not calls:
            continue
        numbers = stats(name, calls)
        sample = sorted(calls[-SAMPLE_CALLS * 4 :], key=lambda r: r.success)[:SAMPLE_CALLS]
        shown = "\n".join(
            f"- {'OK ' if r.success else 'ERR'} input={_input_text(r.input)[:300]} output={r.output[:300]!r}"
            for r in sample
        )
        answer = await services.llm.complete_json(
            [{"role": "system", "content": services.llm.prompt("tool_memory")},
             {"role": "user", "content": f"Tool: {name}\nStatistics: {numbers.model_dump_json()}\nCalls:\n{shown}"}],
            ToolGuideline, purpose=purpose,
        )
        tool = ToolMemory(tool_name=name, stats=numbers, guideline=answer.guideline.strip())

        def store(tool: ToolMemory = tool) -> ToolMemory:
            text = tool.render()
            memory = Memory(
                id=tool_memory_id(name), workspace_id=workspace_id, text=text, keywords=[name],
                metadata={"tool_name": name, "guideline": tool.guideline, "stats": tool.stats.model_dump()},
                created_at=datetime.now(timezone.utc), memory_type="tool",
            )
            services.store.replace(memory, memory_vector(services, text, [name]), services.embedder.embedding())
            return tool.model_copy(update={"memory_id": memory.id})

        tools.append(await anyio.to_thread.run_sync(store))
    return tools


async def add_tool_call_result(services: Services, args: AddToolCallResultInput) -> ToolMemoryOutput:
    workspace_id = services.workspace(args.workspace_id)
    added = await record(services, workspace_id, args.tool_call_results)
    names = list(dict.fromkeys(r.tool_name for r in args.tool_call_results))
    tools = await anyio.to_thread.run_sync(_lookup, services, workspace_id, names)
    return ToolMemoryOutput(workspace_id=workspace_id, tools=tools, added=added)


async def summary_tool_memory(services: Services, args: ToolNamesInput) -> ToolMemoryOutput:
    workspace_id = services.workspace(args.workspace_id)
    await require_workspace(services, workspace_id)
    tools = await summarize(services, workspace_id, args.tool_names)
    missing = [n for n in args.tool_names if n not in {t.tool_name for t in tools}]
    notes = [f"No recorded calls of {', '.join(missing)}: add them with add_tool_call_result first."] if missing else []
    return ToolMemoryOutput(workspace_id=workspace_id, tools=tools, notes=notes)


async def retrieve_tool_memory(services: Services, args: ToolNamesInput) -> ToolMemoryOutput:
    workspace_id = services.workspace(args.workspace_id)
    await require_workspace(services, workspace_id)
    tools = await anyio.to_thread.run_sync(_lookup, services, workspace_id, args.tool_names)
    return ToolMemoryOutput(workspace_id=workspace_id, tools=tools)
