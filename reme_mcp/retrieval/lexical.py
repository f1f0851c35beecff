"""What the word index sees: query words for FTS5, and the extra terms a memory is indexed by.

A user's query is never passed to FTS5 as syntax: quotes, `*`, `NEAR`, `-` or an
unbalanced parenthesis would be a syntax error or a different query. Each word is
quoted as a literal and the words are OR-ed, so BM25 ranks by how many rare words
a memory shares with the query.

Chinese and Japanese are written without spaces, so a word tokenizer sees a whole
sentence as one word and finds nothing. Their runs of characters are also indexed,
and queried, as overlapping pairs (北京烤鸭 -> 北京 京烤 烤鸭), as Lucene's CJK
analyzer does: most words are two characters, and a pair that is not a word is rare
on both sides and costs little. No dictionary to load, and it works for any CJK text.

Russian changes a word's ending with its role (пирог, пирога, пирогом), so a query
rarely repeats the memory's form of a word. Cyrillic words are also indexed by their
Snowball stem, and a query's Cyrillic words are looked up by theirs (пирогом -> пирог),
as Lucene's RussianAnalyzer does (bench/multilingual.py, bench/episodic.py).

A memory in a thread (the turns of one conversation) is also indexed by the words of
the two memories before it: "Yes, last Tuesday" is found by the question it answers.
On LoCoMo this took BM25's recall@10 from 0.64 to 0.79 (bench/locomo.py).
"""

from __future__ import annotations

import re
import threading

import snowballstemmer

# Words that match nearly every memory: they add no ranking signal, only work.
STOPWORDS = frozenset(
    """a an and are as at be been but by can could did do does for from had has have he her him his how i if in
    into is it its me my no not of on or our she so than that the their them then there these they this to us
    was we were what when where which who whom why will with would you your""".split()
)

THREAD_CONTEXT = 2  # memories before this one in its thread whose words it is also found by

_WORD = re.compile(r"\w+", re.UNICODE)
# Han (with extension A and compatibility ideographs), hiragana and katakana: scripts written without spaces.
_CJK_RUN = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
_CYRILLIC = re.compile(r"[\u0400-\u04ff]")
_stemmers = threading.local()  # a Snowball stemmer keeps state while it works: one per thread


def stem(word: str) -> str:
    """The Snowball stem of a lower-case Russian word (пирогом -> пирог); any other word as it is."""
    if not _CYRILLIC.search(word):
        return word
    russian = getattr(_stemmers, "russian", None)
    if russian is None:
        russian = _stemmers.russian = snowballstemmer.stemmer("russian")
    return russian.stemWord(word)


def stems(text: str) -> list[str]:
    """The stems of the Cyrillic words of `text` that differ from the word (the word itself is indexed already)."""
    return [s for w in _WORD.findall(text.lower()) if (s := stem(w)) != w]


def cjk_pairs(text: str) -> list[str]:
    """Every run of CJK characters as overlapping pairs of characters (a lone character stays itself)."""
    out: list[str] = []
    for run in _CJK_RUN.findall(text):
        out += [run] if len(run) == 1 else [run[i : i + 2] for i in range(len(run) - 1)]
    return out


def words(text: str) -> list[str]:
    """Lower-cased word tokens, stopwords dropped, CJK as character pairs, order kept, duplicates removed."""
    seen: dict[str, None] = {}
    for word in _WORD.findall(text.lower()):
        if _CJK_RUN.search(word):
            for pair in cjk_pairs(word):
                seen.setdefault(pair, None)
            word = _CJK_RUN.sub(" ", word).strip()
            if not word:
                continue
            for part in word.split():
                seen.setdefault(part, None)
        elif word not in STOPWORDS:
            seen.setdefault(word, None)
    return list(seen)


def match_expression(query: str) -> str:
    """An FTS5 MATCH expression: every word (a Russian one by its stem) quoted, OR-ed; empty when nothing is left."""
    return " OR ".join(f'"{term}"' for term in dict.fromkeys(stem(word) for word in words(query)))


def search_terms(text: str, before: list[str], keywords: list[str] | tuple[str, ...] = ()) -> str:
    """What a memory is indexed by beside its own text and keywords: the CJK pairs and Russian stems of its
    text and keywords, and the texts (with their pairs and stems) of the memories before it in its thread,
    oldest first. A keyword is indexed as the tokenizer sees it (a Chinese one as one long word), so without
    its pairs and stems a query would reach it only through the text; those the text has already are left
    out, as counting them twice would rank keywords taken from the text above the text's other words."""
    def derived(part: str) -> list[str]:
        return cjk_pairs(part) + stems(part)

    own = derived(text)
    known = set(own)
    extra = dict.fromkeys(term for keyword in keywords for term in derived(keyword) if term not in known)
    return " ".join([*before, *map(" ".join, map(derived, before)), " ".join(own + list(extra))]).strip()
