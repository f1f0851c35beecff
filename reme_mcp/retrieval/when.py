"""A question that asks when prefers the memories that say when.

"When did I see the Louvre?" is answered by "Yes, last Tuesday, with my sister", while "The Louvre was
packed" matches its words as well and says nothing of the time. So for a query that asks when, a memory
whose text places something in time ("yesterday", "two weeks ago", "last summer", "on Friday", "in
March", "since 2019") gets TIMED_BOOST more of its fused score. Only the memories that compete already
move: a factor, not a ranking of its own (like recency.py). English only, for now.

A bare date ("8 May, 2023", "10:04 am") does not count: agents stamp memories with the date they were
written, which says when the memory was made rather than when what it tells happened, and a stamp on
every memory would lift them all alike.
"""

from __future__ import annotations

import re

from reme_mcp.store.base import MemoryStore

# Chosen on LoCoMo's tune conversations, offline (flat from 0.5 to 1): the "when" questions' R@10 went
# from 0.907 to 0.942 there. Through bench/locomo.py, R@5 / R@10 of all questions: 0.734 / 0.808 -> 0.742 /
# 0.808 (tune) and 0.692 / 0.772 -> 0.694 / 0.774 (held-out); of the temporal ones, R@5 0.850 -> 0.894 and
# 0.687 -> 0.717.
TIMED_BOOST = 0.5
SCAN_CHARS = 2_000  # of a memory's text: where a long one says when is no matter, and a megabyte takes long

# "When did / was / will ...", "... . When was that?", "since when", "what date / day / year", "how long ago";
# not "When I deploy, what breaks?", which asks what happens then.
_AUXILIARY = r"(?:did|do|does|was|were|is|are|am|will|would|have|has|had|can|could|should|shall)"
ASKS = re.compile(
    rf"(?:^|[.?!]\s+)\W*(?:and |so |but |then )?(?:when(?:\s+{_AUXILIARY}\b|\W*$)|since when\b|"
    r"(?:on |in )?(?:what|which)(?:'s| is| was| were)? (?:the )?(?:dates?|days?|years?|months?)\b|how long ago\b)",
    re.I,
)

_WEEKDAY = r"(?:mon|tues|wednes|thurs|fri|satur|sun)day"
_MONTH = r"(?:january|february|march|april|may|june|july|august|september|october|november|december)"
_SEASON = r"(?:summer|winter|spring|fall|autumn)"
_UNIT = rf"(?:morning|afternoon|evening|night|week|weekend|month|year|{_SEASON}|{_WEEKDAY})"
_SPAN = r"(?:second|minute|hour|day|night|week|fortnight|month|year|decade|while|time)"
_COUNT = r"(?:a|an|one|two|three|four|five|six|seven|eight|nine|ten|twenty|few|couple of|several|many|some|\d+)"
SAYS = re.compile(
    r"\b(?:yesterday|today|tonight|tomorrow|recently|the other day|years ago|long ago|"
    rf"(?:last|next|this|past|coming|previous) (?:few |couple of )?{_UNIT}s?|"
    rf"{_COUNT} (?:\w+ )?{_SPAN}s? (?:ago|back|later|earlier)|"
    rf"(?:on|every|this|last|next|since|until|by) {_WEEKDAY}s?|"
    rf"(?:in|over|during) the {_SEASON}|"
    rf"(?:in|since|until|till|by|from|during|early|late|mid) (?:{_MONTH}|(?:1[89]|20)\d\d(?![-/.]\d)))\b",
    re.I,
)


def asks_when(query: str) -> bool:
    """Whether `query` asks when something happened ("When did ...", "What day ...", "How long ago ...")."""
    return bool(ASKS.search(query))


def says_when(text: str) -> bool:
    """Whether `text` places something in time, not counting a bare date stamp."""
    return bool(SAYS.search(text[:SCAN_CHARS]))


def favour_timed(
    store: MemoryStore, fused: list[tuple[int, float]], query: str, top_k: int, later: float = 1.0
) -> list[tuple[int, float]]:
    """`fused` (rowid, score), best first, with the memories that say when boosted if `query` asks when.

    Only a memory that could still reach the first `top_k` is read: one whose score, boosted and then
    multiplied by up to `later` (the recency factor's ceiling), passes the `top_k`-th score as it is."""
    if not fused or not asks_when(query):
        return fused
    floor = fused[min(top_k, len(fused)) - 1][1] / ((1.0 + TIMED_BOOST) * later)
    texts = store.fetch([rowid for rowid, score in fused if score >= floor])
    boosted = [
        (rowid, score * (1.0 + TIMED_BOOST) if rowid in texts and says_when(texts[rowid].text) else score)
        for rowid, score in fused
    ]
    return sorted(boosted, key=lambda pair: pair[1], reverse=True)
