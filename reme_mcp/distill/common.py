"""What every distillation flow shares: showing a run to the LLM, and storing what it learned once."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from typing import Any

import numpy as np

from reme_mcp.distill.schemas import DistillOutput, Duplicate, RetrieveInput, SummaryInput, Trajectory
from reme_mcp.episodic import memories
from reme_mcp.episodic.schemas import RecallInput, RecallOutput
from reme_mcp.privacy.scrub import scrub
from reme_mcp.services import Services
from reme_mcp.store.base import Memory, MemoryType, content_id

MESSAGE_CHARS = 2_000  # per message shown to the LLM: a long tool result is cut, the run stays readable
SUCCESS = 0.5


def outcome(trajectory: Trajectory) -> str:
    if trajectory.score is None:
        return "outcome unknown"
    return f"{'succeeded' if trajectory.score >= SUCCESS else 'failed'} (score {trajectory.score:g})"


def render_trajectory(number: int, trajectory: Trajectory) -> str:
    """One run as text for a prompt: numbered, with its outcome, long messages cut in the middle."""
    title = f"## Run {number}" + (f" (task {trajectory.task_id})" if trajectory.task_id else "")
    lines = [f"{title}: {outcome(trajectory)}"]
    for message in trajectory.messages:
        text = message.text()
        if len(text) > MESSAGE_CHARS:
            half = MESSAGE_CHARS // 2
            text = f"{text[:half]}\n[... {len(text) - MESSAGE_CHARS:,} characters cut ...]\n{text[-half:]}"
        calls = [f"-> {c.function.name}({_arguments(c.function.arguments)})" for c in message.tool_calls or []]
        lines.append(f"[{message.role}] " + "\n".join(part for part in [text, *calls] if part))
    return "\n".join(lines)


def _arguments(arguments: Any) -> str:
    shown = arguments if isinstance(arguments, str) else json.dumps(arguments or {}, ensure_ascii=False)
    return shown if len(shown) <= 500 else shown[:500] + "…"


def memory_id(memory_type: MemoryType, text: str) -> str:
    """A distilled memory's id comes from its type and text only: the same fact with other tags is the same
    memory, and a lesson never collides with an episode of the same text."""
    return content_id(f"{memory_type}\n{text}", [])


class Writer:
    """Stores distilled memories of one workspace, skipping what it already holds.

    A memory is a duplicate when an active memory has its id (the same text) or when an
    active memory of the same type is at least `threshold` cosine-similar to it (the same
    lesson in other words). Memories stored earlier in the same call count too. The same
    text as a *superseded* memory makes that memory current again (the user moved back).
    """

    def __init__(self, services: Services, workspace_id: str, memory_type: MemoryType, threshold: float):
        self.services = services
        self.workspace_id = workspace_id
        self.memory_type = memory_type
        self.threshold = threshold

    def duplicate_of(self, text: str, vector: np.ndarray) -> Duplicate | None:
        hits = self.services.dense.search(self.workspace_id, vector, 1, [self.memory_type])
        if hits and hits[0][1] >= self.threshold:
            [existing] = self.services.store.fetch([hits[0][0]]).values()
            return Duplicate(text=text, duplicate_of=existing.id, similarity=round(hits[0][1], 4))
        return None

    def store(self, text: str, keywords: list[str], metadata: dict[str, Any]) -> Memory | Duplicate:
        # A run can show a key or a password; what the LLM made of it is stored without it.
        clean = scrub(self.services.config.privacy, text, keywords, metadata)
        text, keywords, metadata = clean.text, clean.keywords, clean.metadata
        vector = memories.memory_vector(self.services, text, keywords)
        memory = Memory(
            id=memory_id(self.memory_type, text), workspace_id=self.workspace_id, text=text,
            keywords=keywords, metadata=metadata, created_at=datetime.now(timezone.utc), memory_type=self.memory_type,
        )
        earlier = self.services.store.get(self.workspace_id, memory.id)
        if earlier is not None and earlier.status != "active":
            self.services.store.replace(memory, vector, self.services.embedder.embedding())
            return memory
        duplicate = self.duplicate_of(text, vector)
        if duplicate is not None:
            return duplicate
        stored, created = self.services.store.add(memory, vector, self.services.embedder.embedding())
        if not created:
            return Duplicate(text=text, duplicate_of=stored.id, similarity=1.0)
        return stored


Distill = Callable[[Services, str, list[Trajectory]], Awaitable[DistillOutput]]


def summary_flow(distill: Distill) -> Callable[[Services, SummaryInput], Awaitable[DistillOutput]]:
    """ReMe's summary_<type>_memory: distil the trajectories into the request's workspace."""

    async def handler(services: Services, args: SummaryInput) -> DistillOutput:
        return await distill(services, services.workspace(args.workspace_id), args.trajectories)

    return handler


def retrieve_flow(memory_type: MemoryType) -> Callable[[Services, RetrieveInput], Awaitable[RecallOutput]]:
    """ReMe's retrieve_<type>_memory: recall restricted to one memory type."""

    async def handler(services: Services, args: RetrieveInput) -> RecallOutput:
        query = RecallInput(query=args.query, top_k=args.top_k, workspace_id=args.workspace_id, memory_type=[memory_type])
        return await memories.recall(services, query)

    return handler
