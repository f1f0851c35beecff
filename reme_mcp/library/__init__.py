"""The memory library: packs (a manifest plus JSONL records) to load, dump, copy, list and
delete, and import / export between stores and from other memory tools."""
