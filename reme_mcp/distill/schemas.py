"""Inputs and outputs of the distillation flows, with ReMe's request fields, and what the LLM must answer."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from reme_mcp.episodic.schemas import QUERY_CHARS, StoredMemory, WorkspaceId, _split_keywords
from reme_mcp.lifecycle.when import Instant
from reme_mcp.store.base import Memory
from reme_mcp.working.schemas import Message


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Trajectory(BaseModel):
    model_config = ConfigDict(extra="forbid")
    messages: list[Message] = Field(min_length=1, description="The run, in OpenAI chat format.")
    score: float | None = Field(
        None, ge=0, le=1, description="How well the run went, 0..1 (>= 0.5 counts as success); omit if unknown."
    )
    task_id: str | None = Field(None, max_length=200)
    metadata: dict[str, Any] = Field(
        default_factory=dict, description="Kept as the source of what is learned; 'time' (ISO 8601) dates its facts."
    )


Trajectories = Annotated[list[Trajectory], Field(min_length=1, max_length=50)]

Names = Annotated[
    list[Annotated[str, Field(min_length=1, max_length=200)]],
    BeforeValidator(_split_keywords),
    Field(min_length=1, description="Tool names: a list or one comma-separated string."),
]


class SummarizeTrajectoryInput(_Input):
    trajectories: Trajectories
    kind: Literal["task", "personal", "tool", "auto"] = Field(
        "auto",
        description="task: lessons and pitfalls; personal: facts and preferences about the user; tool: per-tool "
        "statistics and a usage guideline; auto: all that apply.",
    )
    workspace_id: WorkspaceId = None


class SummaryInput(_Input):
    """summary_task_memory and summary_personal_memory."""

    workspace_id: WorkspaceId = None
    trajectories: Trajectories


class RetrieveInput(_Input):
    """retrieve_task_memory and retrieve_personal_memory."""

    workspace_id: WorkspaceId = None
    query: str = Field(
        min_length=1, max_length=QUERY_CHARS, description="The new task, or what to know about the user."
    )
    top_k: int = Field(5, ge=1, le=100)


class ToolCallResult(BaseModel):
    """One call of a tool, as ReMe's add_tool_call_result takes it."""

    model_config = ConfigDict(extra="allow")
    tool_name: str = Field(min_length=1, max_length=200)
    input: dict[str, Any] | str | None = None
    output: str = ""
    success: bool = True
    # Bounded: the tool's statistics add them up as floats, and a sum that overflows (10**400 tokens, two
    # calls of 1e308 s) would break every later lookup of the tool.
    time_cost: float | None = Field(None, ge=0, le=10**9, description="Seconds the call took.")
    token_cost: int | None = Field(
        None, ge=0, le=10**15, description="Tokens of input and output; counted when omitted."
    )
    create_time: Instant | None = None


class AddToolCallResultInput(_Input):
    workspace_id: WorkspaceId = None
    tool_call_results: list[ToolCallResult] = Field(min_length=1, max_length=10_000)


class ToolNamesInput(_Input):
    """summary_tool_memory and retrieve_tool_memory."""

    workspace_id: WorkspaceId = None
    tool_names: Names


class Duplicate(BaseModel):
    text: str
    duplicate_of: str
    similarity: float


class Superseded(BaseModel):
    id: str
    text: str
    superseded_by: str
    valid_to: str


class DistillOutput(BaseModel):
    workspace_id: str
    stored: list[StoredMemory] = []
    duplicates: list[Duplicate] = []
    superseded: list[Superseded] = []
    notes: list[str] = []

    def add(self, result: Memory | Duplicate) -> None:
        if isinstance(result, Duplicate):
            self.duplicates.append(result)
        else:
            self.stored.append(StoredMemory(**result.model_dump()))

    def render(self) -> str:
        lines = [f"Stored {len(self.stored)} memory(ies) in workspace '{self.workspace_id}'."]
        lines += [f"- {m.id} [{m.memory_type}] {m.text}" for m in self.stored]
        if self.duplicates:
            lines.append(f"Skipped {len(self.duplicates)} already known:")
            lines += [f"- {d.text} (= {d.duplicate_of}, similarity {d.similarity:.2f})" for d in self.duplicates]
        if self.superseded:
            lines.append("Superseded (kept as history, no longer recalled):")
            lines += [f"- {s.id}: {s.text} -> {s.superseded_by} (valid until {s.valid_to})" for s in self.superseded]
        return "\n".join(lines + self.notes)


class ToolStats(BaseModel):
    tool_name: str
    calls: int
    successes: int
    success_rate: float | None
    avg_time_cost: float | None = Field(description="Seconds, over the calls that reported a time.")
    avg_token_cost: float | None


class ToolMemory(BaseModel):
    tool_name: str
    stats: ToolStats
    guideline: str | None = Field(description="Written by the LLM at the last summary_tool_memory; None before.")
    memory_id: str | None = None

    def render(self) -> str:
        s = self.stats
        parts = [f"{s.calls} calls"]
        if s.success_rate is not None:
            parts.append(f"success {s.success_rate:.0%}")
        if s.avg_time_cost is not None:
            parts.append(f"avg {s.avg_time_cost:.2f} s")
        if s.avg_token_cost is not None:
            parts.append(f"avg {s.avg_token_cost:.0f} tokens")
        guideline = self.guideline or "(no guideline yet: run summary_tool_memory)"
        return f"{self.tool_name} ({', '.join(parts)}): {guideline}"


class ToolMemoryOutput(BaseModel):
    workspace_id: str
    tools: list[ToolMemory]
    added: int = 0
    notes: list[str] = []

    def render(self) -> str:
        head = [f"Recorded {self.added} tool call(s)."] if self.added else []
        return "\n".join(head + [tool.render() for tool in self.tools] + self.notes)


class SummarizeTrajectoryOutput(DistillOutput):
    tools: list[ToolMemory] = []

    def render(self) -> str:
        lines = [super().render()]
        if self.tools:
            lines.append("Tool memories:")
            lines += [f"- {tool.render()}" for tool in self.tools]
        return "\n".join(lines)


# -- what the LLM answers ------------------------------------------------------------

# Bounds keep answers focused, and with llm.default.response_format=json_schema they let a
# constrained decoder (llama.cpp, vLLM) stop instead of repeating itself to max_tokens.
Tags = Annotated[list[Annotated[str, Field(max_length=40)]], BeforeValidator(_split_keywords), Field(max_length=8)]


class TaskItem(BaseModel):
    when_to_use: str = Field(min_length=3, max_length=300)
    content: str = Field(min_length=3, max_length=1000)
    kind: Literal["lesson", "pitfall", "comparison"] = "lesson"
    tags: Tags = []
    confidence: float = Field(0.7, ge=0, le=1)


class TaskExtraction(BaseModel):
    memories: list[TaskItem] = Field(max_length=10)


class PersonalItem(BaseModel):
    content: str = Field(min_length=3, max_length=300)
    stated_at: str | None = Field(None, max_length=40)
    supersedes: list[Annotated[str, Field(max_length=128)]] = Field(default=[], max_length=10)
    tags: Tags = []
    confidence: float = Field(0.8, ge=0, le=1)


class PersonalExtraction(BaseModel):
    facts: list[PersonalItem] = Field(max_length=20)


class ToolGuideline(BaseModel):
    guideline: str = Field(min_length=3, max_length=1500)
