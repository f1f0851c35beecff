"""Prompts live as Markdown files next to this module, so a user can read and adapt them.

`load("name")` reads `name.md`; `load("name", "zh")` reads `name.zh.md` when it exists
and falls back to the English file otherwise.
"""

from __future__ import annotations

import functools
from pathlib import Path

HERE = Path(__file__).parent


@functools.cache
def load(name: str, language: str = "en") -> str:
    localized = HERE / f"{name}.{language}.md"
    path = localized if language != "en" and localized.is_file() else HERE / f"{name}.md"
    return path.read_text(encoding="utf-8").strip()
