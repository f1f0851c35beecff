"""Personal memories: facts and preferences about the user, with the time they were stated.

The LLM sees the user's related facts already stored (with ids) next to the new runs,
and names the ones a new fact contradicts. Those are not deleted: they are kept with
status `superseded`, `valid_to` and `superseded_by`, as Graphiti does, and recall
skips them. A fact already known (same text, or near-identical meaning) is not stored twice.
"""

from __future__ import annotations

from datetime import datetime, timezone

import anyio.to_thread

from reme_mcp.distill.common import Writer, render_trajectory, retrieve_flow, summary_flow
from reme_mcp.distill.schemas import (
    DistillOutput,
    PersonalExtraction,
    Superseded,
    Trajectory,
)
from reme_mcp.episodic import memories
from reme_mcp.episodic.schemas import Hit
from reme_mcp.services import Services
from reme_mcp.store.base import Memory, Scope

DUPLICATE_SIMILARITY = 0.95
KNOWN_FACTS = 20


def _when(value: str | None, fallback: datetime) -> datetime:
    if value:
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
        except ValueError:
            pass
    return fallback


def _stated(trajectory: Trajectory) -> datetime:
    return _when(str(trajectory.metadata.get("time") or ""), datetime.now(timezone.utc))


def _known(services: Services, workspace_id: str, trajectories: list[Trajectory]) -> list[Hit]:
    """The stored facts most related to what the user said in these runs."""
    said = "\n".join(m.text() for t in trajectories for m in t.messages if m.role == "user")[:4_000]
    return memories.search(services, workspace_id, said, KNOWN_FACTS, Scope(types=("personal",))) if said.strip() else []


async def distill(services: Services, workspace_id: str, trajectories: list[Trajectory]) -> DistillOutput:
    purpose = "summary_personal_memory"
    services.llm.require(purpose)
    known = await anyio.to_thread.run_sync(_known, services, workspace_id, trajectories)
    facts = "\n".join(f"- [{m.id}] {m.text} (stated {m.metadata.get('valid_from', '?')})" for m in known) or "(none)"
    runs = "\n\n".join(
        f"{render_trajectory(i, t)}\n(conversation time: {_stated(t).isoformat()})"
        for i, t in enumerate(trajectories, start=1)
    )
    extraction = await services.llm.complete_json(
        [{"role": "system", "content": services.llm.prompt("personal_memory")},
         {"role": "user", "content": f"# Facts already known\n{facts}\n\n# Conversations\n{runs}"}],
        PersonalExtraction, purpose=purpose,
    )
    fallback = _stated(trajectories[-1])
    writer = Writer(services, workspace_id, "personal", DUPLICATE_SIMILARITY)

    def store() -> DistillOutput:
        out = DistillOutput(workspace_id=workspace_id)
        for item in extraction.facts:
            stated = _when(item.stated_at, fallback).isoformat()
            metadata = {"valid_from": stated, "confidence": item.confidence}
            result = writer.store(item.content.strip(), item.tags, metadata)
            out.add(result)
            if not isinstance(result, Memory):
                continue
            for old_id in item.supersedes:
                old = services.store.get(workspace_id, old_id)  # current: an earlier fact may just have retired it
                if old is None or old.memory_type != "personal" or old.status != "active" or old.id == result.id:
                    out.notes.append(f"Ignored supersedes '{old_id}': not an active personal memory here.")
                    continue
                metadata = {**old.metadata, "valid_to": stated, "superseded_by": result.id}
                services.store.set_status(workspace_id, old.id, "superseded", metadata)
                out.superseded.append(Superseded(id=old.id, text=old.text, superseded_by=result.id, valid_to=stated))
        if not extraction.facts:
            out.notes.append("The LLM found no fact about the user in these conversations.")
        return out

    return await anyio.to_thread.run_sync(store)


summary_personal_memory = summary_flow(distill)
retrieve_personal_memory = retrieve_flow("personal")
