"""Reading an episodes file (JSON array, {"episodes": [...]}, or JSON Lines) with errors that point at the line."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from reme_mcp.cells.schemas import Episode
from reme_mcp.errors import InvalidInput


def _describe(error: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'episode'}: {e['msg']}" for e in error.errors())


def _json_error(name: str, exc: json.JSONDecodeError) -> InvalidInput:
    return InvalidInput(f"{name}: not valid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}.")


def _records(raw: str, name: str) -> list[tuple[str, Any]]:
    """(where, record) pairs: 'line N' for JSON Lines, 'episode N' for a JSON document."""
    stripped = raw.strip()
    if not stripped:
        raise InvalidInput(f"{name} is empty: give a JSON array of episodes or one episode per line (JSONL).")
    first_line = stripped.splitlines()[0]
    if stripped[0] == "[" or not _parses(first_line):  # one JSON document (an array, or an object over lines)
        try:
            data = json.loads(stripped)
        except json.JSONDecodeError as exc:
            raise _json_error(name, exc) from None
        if isinstance(data, dict) and isinstance(data.get("episodes"), list):
            data = data["episodes"]
        records = data if isinstance(data, list) else [data]
        return [(f"episode {i + 1}", record) for i, record in enumerate(records)]
    out = []
    for number, line in enumerate(raw.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InvalidInput(f"{name}: line {number} is not valid JSON (column {exc.colno}: {exc.msg}).") from None
        if isinstance(record, dict) and isinstance(record.get("episodes"), list):  # {"episodes": [...]} on one line
            out += [(f"episode {i + 1}", r) for i, r in enumerate(record["episodes"])]
        else:
            out.append((f"line {number}", record))
    return out


def _parses(text: str) -> bool:
    try:
        json.loads(text)
    except json.JSONDecodeError:
        return False
    return True


def parse_episodes(raw: str, name: str = "the episodes file") -> list[Episode]:
    """Validate every record; the first bad one is reported with its line or position."""
    episodes = []
    for where, record in _records(raw, name):
        if not isinstance(record, dict):
            raise InvalidInput(f"{name}, {where}: an episode is a JSON object with 'text', got {type(record).__name__}.")
        try:
            episodes.append(Episode.model_validate(record))
        except ValidationError as exc:
            raise InvalidInput(f"{name}, {where}: {_describe(exc)}.") from None
    if not episodes:
        raise InvalidInput(f"{name} holds no episodes.")
    return episodes  # duplicate ids are refused by train_memory itself, for every face


def check_unique_ids(episodes: list[Episode]) -> None:
    counts = Counter(e.id for e in episodes if e.id is not None)
    duplicated = sorted(i for i, n in counts.items() if n > 1)
    if duplicated:
        shown = ", ".join(duplicated[:10]) + (" ..." if len(duplicated) > 10 else "")
        raise InvalidInput(f"{len(duplicated)} episode id(s) occur more than once: {shown}. Ids must be unique.")


def read_episodes(path: Path, max_bytes: int) -> list[Episode]:
    """Read and validate an episodes file (or pipe) of at most `max_bytes`."""
    try:
        with path.open("rb") as f:
            data = f.read(max_bytes + 1)
    except OSError as exc:
        raise InvalidInput(f"Cannot read {path}: {exc.strerror}.") from None
    if len(data) > max_bytes:
        raise InvalidInput(
            f"{path} is larger than {max_bytes / 1e6:.1f} MB (limits.max_episodes_file_bytes). "
            "Split it into several files and train them one after another: training adds to what is stored."
        )
    try:
        raw = data.decode("utf-8-sig")  # a byte-order mark, as some editors write, is not part of the JSON
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"{path} is not UTF-8 text (byte {exc.start}).") from None
    return parse_episodes(raw, str(path))
