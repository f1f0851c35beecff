"""Memory packs: a folder with `manifest.json`, `memories.jsonl` and, optionally, `vectors.safetensors`.

The manifest names the pack and carries the record count and the SHA-256 of
memories.jsonl, so a pack that was cut short or edited is refused before anything is
stored. Stored vectors are used only when they come from the configured embedding model;
otherwise the records are embedded again. Loading is one transaction: all or nothing.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from reme_mcp.errors import InvalidInput, NotFound
from reme_mcp.library.records import ReMeRecord, read_jsonl, reme_records
from reme_mcp.store.base import Memory

SHIPPED = Path(__file__).resolve().parent.parent.parent / "library"  # the repository's library/
MANIFEST, RECORDS, VECTORS = "manifest.json", "memories.jsonl", "vectors.safetensors"
PACK_NAME = r"^[a-z0-9][a-z0-9._-]{0,63}$"


class Manifest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=PACK_NAME)
    version: str = "1.0.0"
    description: str = ""
    record_count: int = Field(ge=0)
    checksum: str = Field(pattern=r"^sha256:[0-9a-f]{64}$")
    embedding_model: str | None = None
    vectors: str | None = Field(None, description="File of stored vectors, in memories.jsonl order.")


def checksum(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def pack_dirs(user_library: Path) -> dict[str, Path]:
    """Every pack by name: the shipped ones, then the user's (which win on a name clash)."""
    found: dict[str, Path] = {}
    for root in (SHIPPED, user_library):
        if root.is_dir():
            for manifest in sorted(root.glob(f"*/{MANIFEST}")):
                found[manifest.parent.name] = manifest.parent
    return found


def read_manifest(folder: Path) -> Manifest:
    try:
        return Manifest.model_validate_json((folder / MANIFEST).read_bytes())
    except FileNotFoundError:
        raise NotFound(f"{folder} has no {MANIFEST}: it is not a memory pack.") from None
    except ValidationError as exc:
        raise InvalidInput(f"{folder / MANIFEST} is not a valid manifest: {exc.errors()[0]['msg']}.") from None


def read_pack(folder: Path, workspace_id: str) -> tuple[Manifest, list[Memory], np.ndarray | None]:
    """Check and read a pack; any fault is an error before anything is stored."""
    manifest = read_manifest(folder)
    data = (folder / RECORDS).read_bytes()
    if checksum(data) != manifest.checksum:
        raise InvalidInput(
            f"Pack '{manifest.name}': {RECORDS} does not match the checksum in its manifest (it was changed or cut "
            "short); nothing was loaded."
        )
    name = f"pack '{manifest.name}' {RECORDS}"
    memories = reme_records(read_jsonl(data.decode("utf-8"), name), name, workspace_id)
    if len(memories) != manifest.record_count:
        raise InvalidInput(f"Pack '{manifest.name}' holds {len(memories)} records, its manifest says {manifest.record_count}.")
    vectors = None
    if manifest.vectors:
        from safetensors.numpy import load_file

        vectors = load_file(str(folder / manifest.vectors))["vectors"]
        if len(vectors) != len(memories):
            raise InvalidInput(f"Pack '{manifest.name}' has {len(vectors)} vectors for {len(memories)} records.")
    return manifest, memories, vectors


def write_pack(
    folder: Path, name: str, description: str, memories: list[Memory], vectors: np.ndarray, model_id: str
) -> Manifest:
    """Write a pack (the records in ReMe's task-memory format, plus their vectors)."""
    from safetensors.numpy import save_file

    folder.mkdir(parents=True, exist_ok=True)
    lines = [ReMeRecord.from_memory(m).model_dump_json() for m in memories]
    data = ("\n".join(lines) + "\n").encode("utf-8") if lines else b""
    (folder / RECORDS).write_bytes(data)
    save_file({"vectors": np.ascontiguousarray(vectors, dtype=np.float32)}, str(folder / VECTORS))
    manifest = Manifest(name=name, description=description, record_count=len(memories), checksum=checksum(data),
                        embedding_model=model_id, vectors=VECTORS)
    (folder / MANIFEST).write_text(manifest.model_dump_json(indent=2) + "\n", encoding="utf-8")
    return manifest
