"""consolidate: fold duplicate memories into one, so recall stops returning the same fact three times.

dedup (no LLM) merges memories of the same kind that say the same thing in (nearly) the
same words: equal once case, quotes, punctuation and spaces are ignored, or with a word
sequence at least `threshold` alike (difflib ratio) where every difference is harmless:
a function word added or dropped ("The user prefers" / "User prefers"), or a word
made plural or possessive. A changed or added number, negation or content word is never
harmless. Why not embeddings: on our labelled pairs
(bench/consolidate.py) a fact with one value changed ("Lisbon" / "Porto", "32 GB" /
"16 GB", "does" / "does not") is as close in cosine as a true paraphrase (mean 0.93 vs
0.94), so no cosine threshold merges paraphrases without also merging those.

A group is built around its newest memory and only takes memories alike to that one, so
A~B~C chains do not drag unrelated memories together. The newest text survives verbatim;
the others' ids become its aliases (remember, recall and forget still accept them), and
their texts and times are kept in its metadata under `merged_from`. Keywords and tags
are united.

summarize groups memories by cosine (`lifecycle.cluster_threshold`, 0.75: above every
same-topic-different-fact pair of the labelled set) and lets the configured LLM write one
memory per group, which replaces the group the same way: there a changed value is what
the LLM is for ("moved from Lisbon to Porto").
"""

from __future__ import annotations

import difflib
import time
import unicodedata
from datetime import datetime, timezone

import anyio.to_thread
import numpy as np
from pydantic import BaseModel, Field

from reme_mcp.episodic import memories
from reme_mcp.lifecycle.schemas import ConsolidateInput, ConsolidateOutput, Merge
from reme_mcp.privacy.scrub import scrub
from reme_mcp.services import Services
from reme_mcp.store.base import Memory, content_id

_QUOTES = str.maketrans({"‘": "'", "’": "'", "“": '"', "”": '"', "«": '"', "»": '"'})
# Words whose presence changes no fact. Deliberately few: "is" / "was", "has" / "had" or "not" do change one.
_HARMLESS = frozenset("a an the user user's and who that which also really very just".split())


def normalized(text: str) -> str:
    """The text with case, quotes, punctuation and runs of spaces ignored: equal means the same words."""
    text = unicodedata.normalize("NFKC", text).translate(_QUOTES).casefold()
    text = "".join(ch if ch.isalnum() or ch.isspace() or ch == "'" else " " for ch in text)
    return " ".join(text.replace(" '", " ").replace("' ", " ").split())


def _inflected(a: str, b: str) -> bool:
    """The same word as plural or possessive ("tool" / "tools" / "tool's"). Spelling variants are not
    accepted: "Tuesday" / "Thursday" and "grandmother" / "grandfather" are as close as any typo."""
    short, long = sorted((a, b), key=len)
    return long in (short + "s", short + "es", short + "'s") and not short.isdigit()


def word_similarity(a: str, b: str) -> float:
    """How alike two texts' word sequences are (difflib ratio over normalized words), 0..1."""
    return difflib.SequenceMatcher(None, normalized(a).split(), normalized(b).split(), autojunk=False).ratio()


def harmless_changes(a: str, b: str) -> bool:
    """True when every difference between the texts is a function word or an inflection."""
    wa, wb = normalized(a).split(), normalized(b).split()
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, wa, wb, autojunk=False).get_opcodes():
        if op == "equal":
            continue
        old, new = wa[i1:i2], wb[j1:j2]
        if op == "replace" and len(old) == len(new) and all(_inflected(x, y) for x, y in zip(old, new)):
            continue
        if all(word in _HARMLESS for word in old + new):
            continue
        return False
    return True


def same_fact(a: str, b: str, threshold: float) -> bool:
    """The dedup rule, shared with bench/consolidate.py."""
    if normalized(a) == normalized(b):
        return True
    return word_similarity(a, b) >= threshold and harmless_changes(a, b)


def groups(items: list[tuple[Memory, np.ndarray]], threshold: float, exact_rule: bool) -> list[list[int]]:
    """Indices of `items` grouped around the newest member; singletons left out.

    `exact_rule` True: `same_fact` with `threshold` on word similarity; False (summarize): cosine >= threshold."""
    order = sorted(range(len(items)), key=lambda i: items[i][0].created_at, reverse=True)
    matrix = np.stack([v for _, v in items]).astype(np.float32) if items else np.zeros((0, 0), np.float32)
    taken = np.zeros(len(items), dtype=bool)
    found = []
    for seed in order:
        if taken[seed]:
            continue
        taken[seed] = True
        sims = matrix @ matrix[seed]
        text = items[seed][0].text
        members = [seed]
        for j in np.flatnonzero(~taken):
            if items[j][0].memory_type != items[seed][0].memory_type:
                continue
            similar = same_fact(text, items[j][0].text, threshold) if exact_rule else float(sims[j]) >= threshold
            if similar:
                members.append(int(j))
                taken[j] = True
        if len(members) > 1:
            found.append(members)
    return found


class Summary(BaseModel):
    text: str = Field(min_length=1)
    keywords: list[str] = Field(default_factory=list)


def survivor(kept: Memory, others: list[Memory], text: str | None = None, keywords: list[str] | None = None) -> Memory:
    """`kept` (or a new memory with `text`) carrying the group's keywords, tags, use and history."""
    group = [kept, *others]
    history = [
        {"id": m.id, "created_at": m.created_at.isoformat(), **({"text": m.text} if m.text != (text or kept.text) else {})}
        for m in sorted(others if text is None else group, key=lambda m: m.created_at)
    ]
    earlier = kept.metadata.get("merged_from", [])
    expiries = [m.expires_at for m in group]
    words = keywords if keywords is not None else list(dict.fromkeys(k for m in group for k in m.keywords))
    recalled = [m.last_recalled_at for m in group if m.last_recalled_at]
    update = {
        "keywords": words,
        "tags": list(dict.fromkeys(t for m in group for t in m.tags)),
        "metadata": {**kept.metadata, "merged_from": [*earlier, *history]},
        "recall_count": sum(m.recall_count for m in group),
        "last_recalled_at": max(recalled) if recalled else None,
        "expires_at": None if None in expiries else max(expiries),
        "status": "active",
    }
    if text is not None:
        update |= {"id": content_id(text, words), "text": text, "created_at": datetime.now(timezone.utc)}
    return kept.model_copy(update=update)


async def consolidate(services: Services, args: ConsolidateInput) -> ConsolidateOutput:
    workspace_id = services.workspace(args.workspace_id)
    await memories.require_workspace(services, workspace_id)
    summarize = args.mode == "summarize"
    if summarize:
        services.llm.require("consolidate mode=summarize")
    lifecycle = services.config.lifecycle
    threshold = args.threshold or (lifecycle.cluster_threshold if summarize else lifecycle.duplicate_threshold)

    def load() -> list[tuple[Memory, np.ndarray]]:
        services.store.purge_expired(workspace_id, time.time())  # an expired memory is not folded into a kept one
        return [
            (m, v) for batch in services.store.memories_with_vectors(workspace_id) for m, v in batch
            if m.status == "active" and (args.memory_type is None or m.memory_type == args.memory_type)
        ]

    items = await anyio.to_thread.run_sync(load)
    found = groups(items, threshold, exact_rule=not summarize)
    plans: list[tuple[Memory, list[Memory], str]] = []  # survivor, the group as read, reason
    for members in found:
        seed, *rest = (items[i][0] for i in members)
        if summarize:
            ordered = sorted([seed, *rest], key=lambda m: m.created_at)
            listing = "\n".join(f"{n}. ({m.created_at:%Y-%m-%d}) {m.text}" for n, m in enumerate(ordered, 1))
            answer = await services.llm.complete_json(
                [{"role": "system", "content": services.llm.prompt("consolidate_memory")},
                 {"role": "user", "content": listing}],
                Summary, purpose="consolidate mode=summarize",
            )
            clean = scrub(services.config.privacy, answer.text, answer.keywords, {})
            plans.append((survivor(seed, rest, clean.text, clean.keywords), [seed, *rest], "summary"))
            continue
        alike = min(word_similarity(seed.text, m.text) for m in rest)
        reason = "exact" if alike == 1.0 else f"near-exact (words {alike:.2f} alike)"
        plans.append((survivor(seed, rest), [seed, *rest], reason))

    skipped = 0
    if not args.dry_run:

        def apply() -> list[bool]:
            done = []
            for kept, group, _ in plans:
                vector = memories.memory_vector(services, kept.text, kept.keywords)
                done.append(services.store.merge(kept, vector, services.embedder.embedding(), group))
            return done

        applied = await anyio.to_thread.run_sync(apply)
        skipped = applied.count(False)  # changed meanwhile by another call: left for the next consolidate
        plans = [plan for plan, ok in zip(plans, applied) if ok]
    merges = [Merge(survivor=s.id, text=s.text, merged=[m.id for m in group if m.id != s.id], reason=reason)
              for s, group, reason in plans]
    return ConsolidateOutput(
        workspace_id=workspace_id, dry_run=args.dry_run, mode=args.mode, threshold=threshold, merges=merges,
        before=len(items), skipped=skipped,
    )
