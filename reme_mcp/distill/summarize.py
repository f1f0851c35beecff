"""summarize_trajectory: the one MCP tool that learns from agent runs, in any of the three ways.

auto runs task and personal distillation, and tool distillation when the runs called
tools. If one kind fails (the LLM errs or answers nonsense after its retries) while
another stored something, the answer says which failed; if a kind failed and nothing
was stored, the call fails: never a success that stored nothing.
"""

from __future__ import annotations

from reme_mcp.distill import personal, task, tool
from reme_mcp.distill.schemas import SummarizeTrajectoryInput, SummarizeTrajectoryOutput
from reme_mcp.errors import LLMFailed
from reme_mcp.services import Services


async def summarize_trajectory(services: Services, args: SummarizeTrajectoryInput) -> SummarizeTrajectoryOutput:
    workspace_id = services.workspace(args.workspace_id)
    services.llm.require("summarize_trajectory")
    calls = [result for t in args.trajectories for result in tool.from_trajectory(t)]
    kinds = [args.kind] if args.kind != "auto" else ["task", "personal", *(["tool"] if calls else [])]
    out = SummarizeTrajectoryOutput(workspace_id=workspace_id)
    failures: list[LLMFailed] = []
    for kind in kinds:
        try:
            if kind == "tool":
                if not calls:
                    out.notes.append("These runs contain no tool calls with results; no tool memory to make.")
                    continue
                await tool.record(services, workspace_id, calls)
                out.tools += await tool.summarize(services, workspace_id, [c.tool_name for c in calls])
                continue
            part = await (task if kind == "task" else personal).distill(services, workspace_id, args.trajectories)
        except LLMFailed as exc:
            if args.kind != "auto":
                raise
            failures.append(exc)
            out.notes.append(f"{kind} memories: {exc}")
            continue
        out.stored += part.stored
        out.duplicates += part.duplicates
        out.superseded += part.superseded
        out.notes += part.notes
    if failures and not (out.stored or out.superseded or out.tools):
        raise LLMFailed(" ".join(str(f) for f in failures))
    return out
