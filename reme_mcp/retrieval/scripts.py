"""Which texts the English embedding model can read: the share of Latin letters, and a per-memory cache of it.

The default embedding model (all-MiniLM-L6-v2) reads English and other Latin-script text; Chinese or
Russian come out of it as noise. A memory mostly in another script is reached instead by the multilingual
cell encoder's keys (episodic/keying.py), even in a workspace that was never trained, and a query in
such a script leans on those keys (hybrid.py).
"""

from __future__ import annotations

import re
import threading
import unicodedata
from collections.abc import Iterable

from reme_mcp.store.base import MemoryStore

_LETTER = re.compile(r"[^\W\d_]", re.UNICODE)
# A text with less than this share of Latin letters is one the English embedding model cannot read.
FOREIGN_BELOW = 0.5


def latin_share(text: str) -> float:
    """Share of the letters of `text` that are Latin script (é and ß count; Cyrillic and Han do not)."""
    letters = _LETTER.findall(text)
    if not letters:
        return 1.0
    return sum(ch.isascii() or unicodedata.name(ch, "").startswith("LATIN") for ch in letters) / len(letters)


def foreign(text: str) -> bool:
    """Whether the English embedding model cannot read `text`."""
    return latin_share(text) < FOREIGN_BELOW


class Scripts:
    """Per process: which memories are foreign, read once per memory."""

    def __init__(self) -> None:
        self._foreign: dict[int, bool] = {}
        self._lock = threading.Lock()

    def foreign(self, store: MemoryStore, rowids: Iterable[int]) -> set[int]:
        """The memories among `rowids` whose text is foreign; texts are read only for rowids not seen before."""
        rowids = list(rowids)
        with self._lock:
            unseen = [r for r in rowids if r not in self._foreign]
        found = {r: foreign(m.text) for r, m in store.fetch(unseen).items()} if unseen else {}
        with self._lock:
            self._foreign.update(found)
            return {r for r in rowids if self._foreign.get(r)}
