"""vector_store: ReMe's store actions (load, dump, copy, delete, delete_ids, list), a workspace's retention,
plus import / export.

Over MCP and HTTP a `path` is a folder name under `<store_dir>/library` (nothing outside
it is read or written); the CLI, run by the user in their own shell, may name any folder.
"""

from __future__ import annotations

import base64
import json
import re
import time
from pathlib import Path
from typing import Any, Literal

import anyio.to_thread
import numpy as np
from pydantic import BaseModel, Field

from reme_mcp.episodic.keying import FOREIGN
from reme_mcp.episodic.memories import require_workspace
from reme_mcp.episodic.schemas import StoredMemory, WorkspaceId, _Input
from reme_mcp.errors import InvalidInput, NotFound
from reme_mcp.library import packs
from reme_mcp.library.records import detect, export_lines, export_records, graph_records, read_jsonl, reme_records
from reme_mcp.lifecycle.when import DURATION_HELP, parse_duration
from reme_mcp.models.embedding import encode_in_batches
from reme_mcp.privacy.scrub import scrub_all
from reme_mcp.services import Services
from reme_mcp.store.base import Memory, embedding_text

LIBRARY = "library"  # under store_dir: where dumps go and user packs live


class VectorStoreInput(_Input):
    action: Literal["load", "dump", "copy", "delete", "delete_ids", "list", "retention"] = Field(
        description="load a pack into a workspace; dump a workspace as a pack; copy src_workspace_id into "
        "workspace_id; delete a workspace; delete_ids from a workspace; list workspaces and packs, or the "
        "memories of workspace_id; retention: how long the workspace keeps memories."
    )
    workspace_id: WorkspaceId = None
    src_workspace_id: WorkspaceId = None
    pack: str | None = Field(None, pattern=packs.PACK_NAME, description="load: a pack name (see list).")
    path: str | None = Field(
        None, pattern=packs.PACK_NAME, description="dump (or load): a folder name under <store_dir>/library."
    )
    memory_ids: list[str] = Field(default_factory=list, max_length=10_000, description="delete_ids: the ids.")
    limit: int = Field(50, ge=1, le=1000, description="list: memories per page.")
    offset: int = Field(0, ge=0, le=10**12, description="list: memories to skip.")
    retention: str | None = Field(
        None, max_length=32, description=f"retention: {DURATION_HELP}; memories older than that (and without an "
        "expiry of their own) are forgotten. 'none' keeps them forever.",
    )


class PackInfo(BaseModel):
    name: str
    version: str
    description: str
    records: int


class WorkspaceInfo(BaseModel):
    workspace_id: str
    memories: int


class VectorStoreOutput(BaseModel):
    action: str
    workspace_id: str | None = None
    count: int = Field(0, description="Memories loaded, copied, deleted or dumped.")
    reembedded: bool = Field(False, description="load: the pack's vectors came from another model.")
    missing_ids: list[str] = Field(default_factory=list)
    workspaces: list[WorkspaceInfo] = Field(default_factory=list)
    packs: list[PackInfo] = Field(default_factory=list)
    memories: list[StoredMemory] = Field(default_factory=list)
    retention_seconds: float | None = None
    redacted: int = Field(0, description="load: secrets redacted from the pack's texts before storing.")

    def render(self) -> str:
        if self.action == "retention":
            if self.retention_seconds is None:
                return f"Workspace '{self.workspace_id}' keeps its memories until they are forgotten."
            return (f"Workspace '{self.workspace_id}' now forgets memories {self.retention_seconds / 86_400:g} days "
                    f"after they were written, unless they carry their own expiry; {self.count} expired already.")
        if self.action == "list" and self.workspace_id is None:
            lines = ["Workspaces:"] + [f"  {w.workspace_id}: {w.memories} memories" for w in self.workspaces]
            lines += ["Packs (vector_store action=load pack=NAME):"]
            lines += [f"  {p.name} {p.version}: {p.records} memories. {p.description}" for p in self.packs]
            return "\n".join(lines)
        if self.action == "list":
            return f"{len(self.memories)} memories of '{self.workspace_id}':\n" + "\n".join(
                f"  {m.id}: {m.text[:120]}" for m in self.memories
            )
        verb = {"load": "Loaded", "dump": "Dumped", "copy": "Copied", "delete": "Deleted", "delete_ids": "Deleted"}
        text = f"{verb[self.action]} {self.count} memories ({self.workspace_id})."
        if self.reembedded:
            text += " The pack's vectors came from another embedding model, so its texts were embedded again."
        if self.missing_ids:
            text += f" Not found: {', '.join(self.missing_ids)}."
        return text


def user_library(services: Services) -> Path:
    return services.config.store_dir / LIBRARY


def load_pack(
    services: Services, folder: Path, workspace_id: str, progress: Any = None
) -> tuple[int, bool, int]:
    """Check, embed if needed, and store a pack in one transaction (blocking); (new, re-embedded, redacted)."""
    manifest, memories, vectors = packs.read_pack(folder, workspace_id)
    memories, redacted = scrub_all(services.config.privacy, memories)
    model = services.embedder.embedding()
    reembed = vectors is None or manifest.embedding_model != model.model_id or vectors.shape[1] != model.dim
    if reembed or redacted:  # a redacted text needs its own vector
        vectors = embed(services, memories, progress)
    return store_all(services, workspace_id, memories, vectors), reembed, redacted


def store_all(services: Services, workspace_id: str, memories: list[Memory], vectors: np.ndarray) -> int:
    """Store many memories of one workspace in one transaction, then give those the English model cannot read
    their multilingual keys (blocking): an import pays for them, as the next recall would otherwise have to,
    and that recall finds them all by meaning (episodic/keying.py). Returns how many were new."""
    added = services.store.add_many(list(zip(memories, vectors)), services.embedder.embedding())
    services.bridge.finish(services, workspace_id, FOREIGN)
    return added


def embed(services: Services, memories: list[Memory], progress: Any = None) -> np.ndarray:
    texts = [embedding_text(m.text, m.keywords) for m in memories]
    return encode_in_batches(services.embedder, texts, progress, size=128)


def workspace_contents(services: Services, workspace_id: str) -> tuple[list[Memory], np.ndarray]:
    memories, vectors = [], []
    for batch in services.store.memories_with_vectors(workspace_id):
        memories += [m for m, _ in batch]
        vectors += [v for _, v in batch]
    dim = services.embedder.embedding().dim
    return memories, np.vstack(vectors) if vectors else np.zeros((0, dim), np.float32)


def dump_pack(services: Services, workspace_id: str, folder: Path) -> int:
    memories, vectors = workspace_contents(services, workspace_id)
    name = folder.name.lower() if re.fullmatch(packs.PACK_NAME, folder.name.lower()) else "pack"
    packs.write_pack(folder, name, f"Dump of workspace '{workspace_id}'.", memories, vectors,
                     services.embedder.embedding().model_id)
    return len(memories)


def export_workspace(services: Services, workspace_id: str, redact: bool = False) -> tuple[list[str], int]:
    """Every memory of a workspace (all types, all fields) and its trained cells, as versioned JSONL lines,
    and how many secrets `redact` replaced (it applies privacy.redact_patterns even where storing did not)."""
    memories, _ = workspace_contents(services, workspace_id)
    redacted = 0
    if redact:
        memories, redacted = scrub_all(services.config.privacy.model_copy(update={"redact_secrets": True}), memories)
    model = services.store.cell_model(workspace_id)
    cells = None
    if model is not None:
        cells = {"state": base64.b64encode(model[0]).decode(), "enabled": model[1], "report": json.loads(model[2])}
    return export_lines(workspace_id, services.embedder.embedding().model_id, memories, cells), redacted


def import_text(services: Services, raw: str, name: str, workspace_id: str, progress: Any = None) -> tuple[str, int]:
    """Import a reme-mcp export, ReMe task-memory JSONL or MCP memory-server JSONL (blocking); (format, new)."""
    lines = read_jsonl(raw, name)
    if not lines:
        raise InvalidInput(f"{name} is empty.")
    kind = detect(lines)
    cells = None
    if kind == "export":
        memories, cells = export_records(lines, name, workspace_id)
    elif kind == "mcp-memory":
        memories = graph_records(lines, name, workspace_id)
    else:
        memories = reme_records(lines, name, workspace_id)
    memories, _ = scrub_all(services.config.privacy, memories)
    added = store_all(services, workspace_id, memories, embed(services, memories, progress))
    if cells is not None:
        services.store.put_cell_model(workspace_id, base64.b64decode(cells["state"]), bool(cells["enabled"]),
                                      json.dumps(cells.get("report", {})))
    return kind, added


def library_packs(services: Services) -> dict[str, Path]:
    """The packs a flow may load by name: the shipped ones and the user library's, less any that a link
    leads out of the library (over MCP and HTTP nothing outside it is read)."""
    roots = (packs.SHIPPED.resolve(), user_library(services).resolve())
    found = packs.pack_dirs(user_library(services))
    return {name: folder for name, folder in found.items() if folder.resolve().parent in roots}


def _sandboxed(services: Services, name: str) -> Path:
    # the schema already limits `name` to [a-z0-9._-]; resolve() guards against a symlinked library
    root = user_library(services).resolve()
    folder = (root / name).resolve()
    if folder.parent != root:
        raise InvalidInput(f"path must be a folder name under {root}.")
    return folder


async def vector_store(services: Services, args: VectorStoreInput) -> VectorStoreOutput:
    action = args.action
    workspace_id = services.workspace(args.workspace_id)

    def run() -> VectorStoreOutput:
        if action == "list":
            if args.workspace_id is None:
                rows = services.store.list_workspaces()
                found = []
                for folder in library_packs(services).values():
                    m = packs.read_manifest(folder)
                    found.append(PackInfo(name=m.name, version=m.version, description=m.description,
                                          records=m.record_count))
                return VectorStoreOutput(action=action, workspaces=[WorkspaceInfo(workspace_id=w, memories=n)
                                                                    for w, n in rows], packs=found)
            memories = services.store.list_memories(workspace_id, services.results(args.limit, "limit"), args.offset)
            return VectorStoreOutput(action=action, workspace_id=workspace_id,
                                     memories=[StoredMemory(**m.model_dump()) for m in memories])
        if action == "load":
            if bool(args.pack) == bool(args.path):
                raise InvalidInput("load takes pack=NAME (see action=list) or path=FOLDER, one of them.")
            if args.pack:
                folder = library_packs(services).get(args.pack)
                if folder is None:
                    known = ", ".join(library_packs(services)) or "none"
                    raise NotFound(f"No pack named '{args.pack}'. Packs: {known}.")
            else:
                folder = _sandboxed(services, args.path or "")
            count, reembedded, redacted = load_pack(services, folder, workspace_id)
            return VectorStoreOutput(action=action, workspace_id=workspace_id, count=count, reembedded=reembedded,
                                     redacted=redacted)
        if action == "retention":
            if args.retention is None:
                raise InvalidInput(f"retention needs retention=DURATION ({DURATION_HELP}) or retention=none.")
            off = args.retention.strip().lower() in ("none", "off", "forever")
            try:
                seconds = None if off else parse_duration(args.retention)
            except ValueError as exc:
                raise InvalidInput(str(exc)) from None
            services.store.set_retention(workspace_id, seconds)
            purged = services.store.purge_expired(workspace_id, time.time())
            return VectorStoreOutput(action=action, workspace_id=workspace_id, retention_seconds=seconds, count=purged)
        if action == "dump":
            if not args.path:
                raise InvalidInput(f"dump needs path=FOLDER (a folder name under {user_library(services)}).")
            count = dump_pack(services, workspace_id, _sandboxed(services, args.path))
            return VectorStoreOutput(action=action, workspace_id=workspace_id, count=count)
        if action == "copy":
            if args.src_workspace_id is None:
                raise InvalidInput("copy needs src_workspace_id (from) and workspace_id (to).")
            memories, vectors = workspace_contents(services, args.src_workspace_id)
            moved = [m.model_copy(update={"workspace_id": workspace_id}) for m in memories]
            count = store_all(services, workspace_id, moved, vectors)
            return VectorStoreOutput(action=action, workspace_id=workspace_id, count=count)
        if action == "delete":
            return VectorStoreOutput(action=action, workspace_id=workspace_id,
                                     count=services.store.delete_workspace(workspace_id))
        if not args.memory_ids:
            raise InvalidInput("delete_ids needs memory_ids (a list of ids from recall or list).")
        present = {i for i in args.memory_ids if services.store.get(workspace_id, i) is not None}
        count = services.store.delete_ids(workspace_id, sorted(present))
        return VectorStoreOutput(action=action, workspace_id=workspace_id, count=count,
                                 missing_ids=[i for i in args.memory_ids if i not in present])

    if action in ("dump", "delete", "delete_ids", "retention") or (action == "list" and args.workspace_id):
        await require_workspace(services, workspace_id)
    if action == "copy" and args.src_workspace_id:
        await require_workspace(services, args.src_workspace_id)
    return await anyio.to_thread.run_sync(run)
