"""One place where a memory's parts are redacted before they are stored, whichever flow stores it.

Redaction runs before the id is computed and before anything is embedded, so the secret
reaches neither the text, the indexes, the vectors nor the id, and the same memory sent
twice (with the same secret) still stores once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from reme_mcp.config import PrivacyConfig
from reme_mcp.privacy.redact import redact, redact_value


@dataclass(frozen=True)
class Scrubbed:
    text: str
    keywords: list[str]
    metadata: dict[str, Any]
    count: int  # secrets replaced


def scrub(config: PrivacyConfig, text: str, keywords: list[str], metadata: dict[str, Any]) -> Scrubbed:
    """The memory with every secret replaced by [REDACTED:kind] (unchanged when privacy.redact_secrets is off)."""
    if not config.redact_secrets:
        return Scrubbed(text, keywords, metadata, 0)
    patterns = tuple(config.redact_patterns)
    body = redact(text, patterns)
    words, in_words = redact_value(keywords, patterns)
    extra, in_metadata = redact_value(metadata, patterns)
    return Scrubbed(body.text, words, extra, body.count + in_words + in_metadata)


def scrub_text(config: PrivacyConfig, text: str) -> tuple[str, int]:
    """Text alone (a working-memory file, a tool-call record), redacted as a memory's text is."""
    if not config.redact_secrets:
        return text, 0
    result = redact(text, tuple(config.redact_patterns))
    return result.text, result.count
