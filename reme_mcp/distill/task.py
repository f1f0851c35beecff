"""Task memories: lessons from runs that worked, pitfalls from runs that failed, and what set them apart.

Each memory has `when_to_use` (the situation; retrieval matches on it) and `content`
(the advice). Its stored text shows both, so `recall` and `retrieve_task_memory` read
naturally; the fields themselves are in metadata.
"""

from __future__ import annotations

import anyio.to_thread

from reme_mcp.distill.common import Writer, outcome, render_trajectory, retrieve_flow, summary_flow
from reme_mcp.distill.schemas import DistillOutput, TaskExtraction, Trajectory
from reme_mcp.services import Services

DUPLICATE_SIMILARITY = 0.9
LABELS = {"lesson": "Do", "pitfall": "Avoid", "comparison": "What made the difference"}


def task_text(when_to_use: str, content: str, kind: str) -> str:
    return f"When to use: {when_to_use.strip()}\n{LABELS.get(kind, 'Do')}: {content.strip()}"


async def distill(services: Services, workspace_id: str, trajectories: list[Trajectory]) -> DistillOutput:
    purpose = "summary_task_memory"
    runs = "\n\n".join(render_trajectory(i, t) for i, t in enumerate(trajectories, start=1))
    extraction = await services.llm.complete_json(
        [{"role": "system", "content": services.llm.prompt("task_memory")}, {"role": "user", "content": runs}],
        TaskExtraction, purpose=purpose,
    )
    source = [{"task_id": t.task_id, "score": t.score, "outcome": outcome(t)} for t in trajectories]
    writer = Writer(services, workspace_id, "task", DUPLICATE_SIMILARITY)

    def store() -> DistillOutput:
        out = DistillOutput(workspace_id=workspace_id)
        for item in extraction.memories:
            metadata = {"when_to_use": item.when_to_use, "content": item.content, "kind": item.kind,
                        "confidence": item.confidence, "source": source}
            out.add(writer.store(task_text(item.when_to_use, item.content, item.kind), item.tags, metadata))
        if not extraction.memories:
            out.notes.append("The LLM found no lesson worth keeping in these runs.")
        return out

    return await anyio.to_thread.run_sync(store)


summary_task_memory = summary_flow(distill)
retrieve_task_memory = retrieve_flow("task")
