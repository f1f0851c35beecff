"""What a cell is keyed by, and the cues training learns from: both cut from the episode's text.

No model is needed here: fragments are runs of whole sentences, cues are keywords,
sentences and sentences with half their words dropped. Chinese and Japanese have no
spaces, so their characters count as words.
"""

from __future__ import annotations

import random
import re

from reme_mcp.store.base import embedding_text

MAX_KEYS = 128  # per cell; a longer text gets wider fragments, not more of them
FRAGMENT_WORDS = 40
MAX_CUE_SENTENCES = 12

_SENTENCE_END = re.compile(r"(?<=[.!?。！？…])\s+|(?<=[。！？])|\n+")
_TOKEN = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uf900-\ufaff]|[^\W_]+", re.UNICODE)
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uf900-\ufaff]")


def sentences(text: str) -> list[str]:
    return [part.strip() for part in _SENTENCE_END.split(text) if part and part.strip()]


def _size(text: str) -> int:
    return len(_TOKEN.findall(text))


def fragments(text: str) -> list[str]:
    """Consecutive sentences grouped to about FRAGMENT_WORDS words; [] when the text is one fragment."""
    parts = sentences(text)
    budget = max(FRAGMENT_WORDS, _size(text) // MAX_KEYS + 1)
    out: list[str] = []
    current: list[str] = []
    size = 0
    for sentence in parts:
        n = _size(sentence)
        if current and size + n > budget:
            out.append(" ".join(current))
            current, size = [], 0
        current.append(sentence)
        size += n
    if current:
        out.append(" ".join(current))
    out = out[: MAX_KEYS - 1]
    return out if len(out) > 1 else []


def key_texts(text: str, keywords: list[str]) -> list[str]:
    """The texts a cell is keyed by: the whole memory, its keywords, and its fragments."""
    keys = [embedding_text(text, keywords)] + ([", ".join(keywords)] if keywords else [])
    return keys + fragments(text)


def _drop_half(sentence: str, rng: random.Random) -> str | None:
    tokens = _TOKEN.findall(sentence)
    if len(tokens) < 6:
        return None
    kept = rng.sample(tokens, k=max(3, len(tokens) // 2))
    joiner = "" if _CJK.search(sentence) else " "
    return joiner.join(kept)


def training_cues(text: str, keywords: list[str], seed: int) -> list[str]:
    """Self-supervised cues for one cell: its keywords, its sentences, and their half-dropped shuffles."""
    rng = random.Random(seed)
    cues = [", ".join(keywords)] if keywords else []
    for sentence in sentences(text)[:MAX_CUE_SENTENCES]:
        cues.append(sentence)
        dropped = _drop_half(sentence, rng)
        if dropped:
            cues.append(dropped)
    return list(dict.fromkeys(cue for cue in cues if cue))
