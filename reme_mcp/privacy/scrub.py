"""One place where a memory's parts are redacted before they are stored, whichever flow stores it.

Redaction runs before the id is computed and before anything is embedded, so the secret
reaches neither the text, the indexes, the vectors nor the id, and the same memory sent
twice (with the same secret) still stores once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel

from reme_mcp.config import PrivacyConfig
from reme_mcp.privacy.redact import redact_value

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class Scrubbed:
    text: str
    keywords: list[str]
    metadata: dict[str, Any]
    count: int  # secrets replaced


def scrub_value(config: PrivacyConfig, value: T) -> tuple[T, int]:
    """Any text or JSON-like value (a working-memory file, a tool-call record) with every secret replaced by
    [REDACTED:kind], and how many were; unchanged when privacy.redact_secrets is off."""
    if not config.redact_secrets:
        return value, 0
    return redact_value(value, tuple(config.redact_patterns))


def scrub(config: PrivacyConfig, text: str, keywords: list[str], metadata: dict[str, Any]) -> Scrubbed:
    """A memory's parts, redacted."""
    (text, keywords, metadata), count = scrub_value(config, (text, keywords, metadata))
    return Scrubbed(text, keywords, metadata, count)


def scrub_all(config: PrivacyConfig, items: list[M]) -> tuple[list[M], int]:
    """Memories or episodes (anything with text, keywords and metadata) redacted, ids and other fields kept,
    and how many secrets were replaced in all."""
    out, total = [], 0
    for item in items:
        clean = scrub(config, item.text, item.keywords, item.metadata)  # type: ignore[attr-defined]
        total += clean.count
        update = {"text": clean.text, "keywords": clean.keywords, "metadata": clean.metadata}
        out.append(item.model_copy(update=update) if clean.count else item)
    return out, total
