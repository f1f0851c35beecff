"""What a memory's thread says about it at recall: the words of its reply, and how much of the thread matches.

A memory in a thread is indexed by the words of the memories before it (lexical.search_terms), so
"Yes, last Tuesday" is found by the question it answers. The other way round cannot be indexed when
the memory is written, as its reply does not exist yet: "I finally went to the Louvre" followed by
"How was it? Did you see the Mona Lisa?" is asked about as "did I see the Mona Lisa?". So at recall,
each memory the ranking found passes REPLY_CREDIT of its fused score to the memory just before it in
its thread, which may enter the ranking that way. It reads the live thread, so a forgotten reply
lends nothing.

A conversation keeps to its topic for a while, so a memory whose thread holds other memories that match
the query is likelier the one asked about than an equal match alone: each memory also gets THREAD_SHARE
of the summed scores of the best THREAD_TOP other candidates in its thread. A memory alone in its
thread, or without one, gets nothing, and a recall whose candidates are all in one thread (narrowed to
it, or a workspace that is one conversation) is left as it was. It costs questions whose answer is
spread over many threads: on LoCoMo's multi-hop questions R@5 fell from 0.351 to 0.310 (tune), while
all questions' rose (below).
"""

from __future__ import annotations

import heapq
from collections import defaultdict

from reme_mcp.store.base import MemoryStore, Scope

# Chosen on LoCoMo's tune conversations (flat from 0.15 to 0.3): hybrid R@5 0.705 -> 0.721 there, and
# 0.651 -> 0.675 on the held-out ones; R@10 0.810 -> 0.808 and 0.749 -> 0.767 (bench/locomo.py). Crediting
# the memory after, instead, lowered R@5: that direction is what the index holds already.
REPLY_CREDIT = 0.2
# Chosen on LoCoMo's tune conversations, offline (flat from 0.1 to 0.3; counting the memory's own score
# among its thread's best, or the thread's best alone, gave less). Through bench/locomo.py: hybrid R@5
# 0.721 -> 0.734 and R@10 0.808 -> 0.808 there, and 0.675 -> 0.692 and 0.767 -> 0.772 on the held-out ones.
THREAD_SHARE = 0.2
THREAD_TOP = 3


def reweigh(
    store: MemoryStore, workspace_id: str, fused: list[tuple[int, float]], scope: Scope | None
) -> list[tuple[int, float]]:
    """`fused` (rowid, score) with replies' credit and threads' share added, best first."""
    return favour_threads(store, workspace_id, credit_replies(store, workspace_id, fused, scope))


def credit_replies(
    store: MemoryStore, workspace_id: str, fused: list[tuple[int, float]], scope: Scope | None
) -> list[tuple[int, float]]:
    """`fused` (rowid, score) with each answered memory credited REPLY_CREDIT of its reply's score, best
    first. A memory has at most one reply here: the memory just after it in its thread."""
    answered = store.answered(workspace_id, [rowid for rowid, _ in fused], scope)
    if not answered:
        return fused
    scores = dict(fused)
    for reply, score in fused:
        if reply in answered:
            memory = answered[reply]
            scores[memory] = scores.get(memory, 0.0) + REPLY_CREDIT * score
    return sorted(scores.items(), key=lambda pair: pair[1], reverse=True)


def favour_threads(store: MemoryStore, workspace_id: str, fused: list[tuple[int, float]]) -> list[tuple[int, float]]:
    """`fused` (rowid, score) with each memory given THREAD_SHARE of the summed scores of the best THREAD_TOP
    other memories of its thread in `fused`, best first; as it was when all of them are in one thread."""
    thread_of = store.threads(workspace_id, [rowid for rowid, _ in fused])
    if not thread_of or (len(thread_of) == len(fused) and len(set(thread_of.values())) == 1):
        return fused  # no thread, or one: the share could not reorder it, only blunt the recency factor after it
    members: dict[str, list[tuple[float, int]]] = defaultdict(list)
    for rowid, score in fused:
        if rowid in thread_of:
            members[thread_of[rowid]].append((score, rowid))
    best = {thread: heapq.nlargest(THREAD_TOP + 1, scored) for thread, scored in members.items()}

    def share(rowid: int) -> float:
        if rowid not in thread_of:
            return 0.0
        others = [score for score, other in best[thread_of[rowid]] if other != rowid][:THREAD_TOP]
        return THREAD_SHARE * sum(others)

    favoured = [(rowid, score + share(rowid)) for rowid, score in fused]
    return sorted(favoured, key=lambda pair: pair[1], reverse=True)
