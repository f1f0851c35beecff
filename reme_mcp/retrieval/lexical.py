"""Turning free text into a safe FTS5 query.

A user's query is never passed to FTS5 as syntax: quotes, `*`, `NEAR`, `-` or an
unbalanced parenthesis would be a syntax error or a different query. Each word is
quoted as a literal and the words are OR-ed, so BM25 ranks by how many rare words
a memory shares with the query.
"""

from __future__ import annotations

import re

# Words that match nearly every memory: they add no ranking signal, only work.
STOPWORDS = frozenset(
    """a an and are as at be been but by can could did do does for from had has have he her him his how i if in
    into is it its me my no not of on or our she so than that the their them then there these they this to us
    was we were what when where which who whom why will with would you your""".split()
)

_WORD = re.compile(r"\w+", re.UNICODE)


def words(text: str) -> list[str]:
    """Lower-cased word tokens, stopwords dropped, order kept, duplicates removed."""
    seen: dict[str, None] = {}
    for word in _WORD.findall(text.lower()):
        if word not in STOPWORDS:
            seen.setdefault(word, None)
    return list(seen)


def match_expression(query: str) -> str:
    """An FTS5 MATCH expression: every word quoted, OR-ed; empty when nothing is left."""
    return " OR ".join(f'"{word}"' for word in words(query))
