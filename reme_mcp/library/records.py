"""The record formats memories travel in, each turned into a `Memory` and back.

- ReMe task memory (`memory_id`, `when_to_use`, `content`, ...): what packs hold and ReMe writes.
- reme-mcp export (a header line, then one stored memory per line): every field, every type.
- The MCP reference `memory` server's knowledge graph (entities with observations, relations).
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from reme_mcp.distill.task import task_text
from reme_mcp.errors import InvalidInput
from reme_mcp.store.base import Memory, MemoryType, content_id

EXPORT_FORMAT = "reme-mcp-export"
EXPORT_VERSION = 1


class ReMeRecord(BaseModel):
    """One task memory as ReMe writes it (and as packs ship it)."""

    model_config = ConfigDict(extra="ignore")

    memory_id: str = Field(min_length=1, max_length=128)
    memory_type: MemoryType = "task"
    when_to_use: str = ""
    content: str = Field(min_length=1)
    score: float = 0.0
    time_created: str | None = None
    time_modified: str | None = None
    author: str = ""
    metadata: dict[str, Any] = Field(default_factory=dict)

    def to_memory(self, workspace_id: str) -> Memory:
        text = task_text(self.when_to_use, self.content, "lesson") if self.when_to_use else self.content
        tags = self.metadata.get("tags") if isinstance(self.metadata.get("tags"), list) else []
        return Memory(
            id=self.memory_id, workspace_id=workspace_id, text=text, keywords=[str(t) for t in tags][:64],
            metadata={**self.metadata, "when_to_use": self.when_to_use, "content": self.content, "score": self.score,
                      "author": self.author, "time_modified": self.time_modified},
            created_at=_parse_time(self.time_created), memory_type=self.memory_type,
        )

    @classmethod
    def from_memory(cls, memory: Memory) -> "ReMeRecord":
        meta = dict(memory.metadata)
        when, content = meta.pop("when_to_use", ""), meta.pop("content", None)
        return cls(
            memory_id=memory.id, memory_type=memory.memory_type, when_to_use=when or "",
            content=content or memory.text, score=float(meta.pop("score", 0.0) or 0.0),
            time_created=memory.created_at.strftime("%Y-%m-%d %H:%M:%S"),
            time_modified=meta.pop("time_modified", None) or memory.created_at.strftime("%Y-%m-%d %H:%M:%S"),
            author=str(meta.pop("author", "") or ""), metadata={**meta, "tags": memory.keywords},
        )


def _parse_time(value: str | None) -> datetime:
    if not value:
        return datetime.now(timezone.utc)
    try:
        parsed = datetime.fromisoformat(value.replace(" ", "T"))
    except ValueError:
        raise InvalidInput(f"time {value!r} is not 'YYYY-MM-DD HH:MM:SS' or ISO 8601.") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def read_jsonl(raw: str, name: str) -> list[tuple[int, dict[str, Any]]]:
    """(line number, object) of every non-empty line; a bad line is an error naming it."""
    out = []
    for number, line in enumerate(raw.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InvalidInput(f"{name}: line {number} is not valid JSON ({exc.msg}); nothing was loaded.") from None
        if not isinstance(value, dict):
            raise InvalidInput(f"{name}: line {number} is not a JSON object; nothing was loaded.")
        out.append((number, value))
    return out


def _validated(model: type[BaseModel], value: dict[str, Any], name: str, number: int) -> Any:
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise InvalidInput(f"{name}: line {number}: {problems}; nothing was loaded.") from None


def reme_records(lines: list[tuple[int, dict[str, Any]]], name: str, workspace_id: str) -> list[Memory]:
    return [_validated(ReMeRecord, value, name, n).to_memory(workspace_id) for n, value in lines]


class _Stored(BaseModel):
    model_config = ConfigDict(extra="forbid")
    memory: Memory


def export_lines(workspace_id: str, model_id: str, memories: list[Memory], cells: dict[str, Any] | None) -> list[str]:
    header = {"format": EXPORT_FORMAT, "version": EXPORT_VERSION, "workspace_id": workspace_id,
              "embedding_model": model_id, "exported_at": datetime.now(timezone.utc).isoformat(), "count": len(memories)}
    lines = [json.dumps(header, ensure_ascii=False)]
    lines += [json.dumps({"memory": m.model_dump(mode="json", exclude={"workspace_id"})}, ensure_ascii=False)
              for m in memories]
    if cells is not None:
        lines.append(json.dumps({"cells": cells}))
    return lines


def export_records(
    lines: list[tuple[int, dict[str, Any]]], name: str, workspace_id: str
) -> tuple[list[Memory], dict[str, Any] | None]:
    header = lines[0][1]
    if int(header.get("version", 0)) > EXPORT_VERSION:
        raise InvalidInput(
            f"{name} is export format version {header['version']}, newer than this reme-mcp reads ({EXPORT_VERSION}); "
            "upgrade reme-mcp."
        )
    memories, cells = [], None
    for number, value in lines[1:]:
        if "cells" in value:
            cells = value["cells"]
            continue
        value = {"memory": {**value.get("memory", {}), "workspace_id": workspace_id}}
        memories.append(_validated(_Stored, value, name, number).memory)
    if header.get("count") is not None and header["count"] != len(memories):
        raise InvalidInput(f"{name} says it holds {header['count']} memories but has {len(memories)}: it is cut short.")
    return memories, cells


def graph_records(lines: list[tuple[int, dict[str, Any]]], name: str, workspace_id: str) -> list[Memory]:
    """Each observation of an entity, and each relation, becomes one memory."""
    now = datetime.now(timezone.utc)
    out: dict[str, Memory] = {}
    for number, value in lines:
        kind = value.get("type")
        if kind == "entity":
            entity, entity_type = str(value.get("name", "")), str(value.get("entityType", ""))
            if not entity:
                raise InvalidInput(f"{name}: line {number}: an entity needs a name; nothing was loaded.")
            texts = [f"{entity} ({entity_type}): {o}" if entity_type else f"{entity}: {o}"
                     for o in value.get("observations") or []]
            keywords = [k for k in (entity, entity_type) if k]
        elif kind == "relation":
            source, target, relation = (str(value.get(k, "")) for k in ("from", "to", "relationType"))
            if not (source and target and relation):
                raise InvalidInput(f"{name}: line {number}: a relation needs from, to and relationType; nothing was loaded.")
            texts, keywords = [f"{source} {relation} {target}"], [source, target]
        else:
            raise InvalidInput(f"{name}: line {number}: type must be 'entity' or 'relation'; nothing was loaded.")
        for text in texts:
            memory_id = content_id(text, keywords)
            out[memory_id] = Memory(id=memory_id, workspace_id=workspace_id, text=text, keywords=keywords,
                                    metadata={"source": "mcp-memory", "kind": kind}, created_at=now)
    return list(out.values())


def detect(lines: list[tuple[int, dict[str, Any]]]) -> str:
    """Which format a JSONL file is in, from its first line."""
    first = lines[0][1]
    if first.get("format") == EXPORT_FORMAT:
        return "export"
    if first.get("type") in ("entity", "relation"):
        return "mcp-memory"
    if "memory_id" in first and "content" in first:
        return "reme"
    raise InvalidInput(
        "Unknown format: expected a reme-mcp export, ReMe task-memory JSONL (memory_id, content, ...) "
        "or the MCP memory server's JSONL (type: entity / relation)."
    )
