"""Fusion: a paraphrase found by meaning alone is not buried under memories that share one common word with the
query (reme_mcp/retrieval/fusion.py). Through the public API on the configured backend, with the real model."""

from __future__ import annotations

from pathlib import Path

import pytest

from reme_mcp import ReMeApp
from reme_mcp.retrieval import fusion
from reme_mcp.retrieval.fusion import standout

pytestmark = pytest.mark.anyio

ALLERGY = "I'm allergic to shellfish: no shrimp, crab or lobster for me."
OTHERS = (  # each shares "seafood" or "avoid" with the question, or nothing at all
    "We should avoid the motorway at rush hour.",
    "I avoid caffeine after lunch, it keeps me up.",
    "The seafood festival parking is on Elm Street.",
    "The dentist appointment moved to Friday.",
    "My sister's wedding is in Porto in June.",
    "Grandma's seafood paella recipe needs saffron.",
)
QUESTION = "What seafood should I avoid?"


async def first(app: ReMeApp) -> str:
    found = await app.async_execute("recall", query=QUESTION, top_k=3)
    return found.metadata["memories"][0]["text"]


async def test_a_paraphrase_that_stands_out_by_meaning_outranks_memories_sharing_a_word(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with ReMeApp(store_dir=str(tmp_path)) as app:
        await app.async_execute("remember", text=ALLERGY)
        for text in OTHERS:
            await app.async_execute("remember", text=text)
        assert await first(app) == ALLERGY  # no word in common with the question: found by meaning
        monkeypatch.setattr(fusion, "STANDOUT_WEIGHT", 0.0)
        assert await first(app) != ALLERGY  # by rank alone, a memory matching "seafood" both ways wins


def test_standout_raises_the_dense_top_by_its_lead_over_the_last_of_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fusion, "STANDOUT_TOP", 3)
    fused = [(1, 0.20), (2, 0.15), (3, 0.10), (4, 0.05)]
    dense = [(3, 0.80), (4, 0.50), (2, 0.40), (1, 0.39)]  # 1 is fourth: outside the top 3
    raised = dict(standout(fused, dense))
    assert raised[3] == pytest.approx(0.10 + 0.3 * 0.40)  # 0.3 x (0.80 - 0.40)
    assert raised[4] == pytest.approx(0.05 + 0.3 * 0.10)
    assert raised[2] == pytest.approx(0.15)  # the last of the top: no lead
    assert raised[1] == pytest.approx(0.20)
    assert [item for item, _ in standout(fused, dense)] == [3, 1, 2, 4]
    assert standout(fused, dense, share=0.0) == fused  # a dense list that has no part in the fusion
    assert standout(fused, dense[:2]) == fused  # fewer than STANDOUT_TOP: no third to lead
    assert standout(fused, []) == fused
