"""Write a shipped pack's manifest and stored vectors from its memories.jsonl.

    .venv/bin/python scripts/build_pack.py library/coding-agent "Lessons for coding agents: shell, git, tests."

Run it after editing a pack's records: the manifest's checksum and count must match them,
or loading the pack is refused.
"""

from __future__ import annotations

import sys
from pathlib import Path

from safetensors.numpy import save_file

from reme_mcp.config import EmbeddingModelConfig
from reme_mcp.library.packs import MANIFEST, RECORDS, VECTORS, Manifest, checksum
from reme_mcp.library.records import read_jsonl, reme_records
from reme_mcp.models.embedding import create_embedder
from reme_mcp.store.base import embedding_text


def main() -> None:
    folder, description = Path(sys.argv[1]), sys.argv[2]
    data = (folder / RECORDS).read_bytes()
    memories = reme_records(read_jsonl(data.decode("utf-8"), str(folder)), str(folder), "pack")
    embedder = create_embedder(EmbeddingModelConfig())
    vectors = embedder.encode([embedding_text(m.text, m.keywords) for m in memories])
    save_file({"vectors": vectors}, str(folder / VECTORS))
    manifest = Manifest(name=folder.name, description=description, record_count=len(memories),
                        checksum=checksum(data), embedding_model=embedder.model_id, vectors=VECTORS)
    (folder / MANIFEST).write_text(manifest.model_dump_json(indent=2) + "\n", encoding="utf-8")
    print(f"{folder.name}: {len(memories)} records, {manifest.checksum[:19]}…")


if __name__ == "__main__":
    main()
