"""A question that asks when prefers the memories that say when (reme_mcp/retrieval/when.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from reme_mcp import ReMeApp
from reme_mcp.retrieval import when

pytestmark = pytest.mark.anyio

PACKED = "The Louvre was packed with tourists, and the Mona Lisa is tiny."
TWO_WEEKS_AGO = "We finally went to the Louvre two weeks ago."
OTHERS = ("The Eiffel Tower was closed for repairs.", "We ate crepes near Notre-Dame.")


@pytest.mark.parametrize(
    ("query", "asks"),
    [
        ("When did I see the Mona Lisa?", True),
        ("  when was the last backup", True),
        ("And when did we switch to uv?", True),
        ("What day is the demo?", True),
        ("How long ago did Bob join?", True),
        ("What did I see at the Louvre?", False),
        ("Do you remember when we met?", False),  # asks whether, not when
        ("Whenever the build breaks, what do we do?", False),
        ("When I deploy, what breaks?", False),  # asks what happens then
        ("I met Bob in Rome. When was that?", True),
        ("Since when do we pin numpy?", True),
        ("What's the date of the launch?", True),
        ("What time is the standup?", False),  # a clock time: not what a memory "says when" by
    ],
)
def test_which_queries_ask_when(query: str, asks: bool) -> None:
    assert when.asks_when(query) is asks


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("Yes, last Tuesday, with my sister.", True),
        ("I moved here two years ago.", True),
        ("The release slipped to next week.", True),
        ("We have lived in Porto since 2019.", True),
        ("The lease ends in March.", True),
        ("Went to the gym yesterday", True),
        ("(1:56 pm on 8 May, 2023) Caroline said, \"I love painting.\"", False),  # a stamp, not a time
        ("The Louvre was packed with tourists.", False),
        ("Last login failed with a timeout.", False),
        ("A long time ago, in a galaxy far away.", True),
        ("Black Friday sales start at midnight.", False),  # a weekday in a name
        ("Two commits back the build was green.", False),
        ("Written 2023-05-08 10:04.", False),
        ("The monthly report is due.", False),
    ],
)
def test_which_texts_say_when(text: str, says: bool) -> None:
    assert when.says_when(text) is says


async def ranks(app: ReMeApp, query: str) -> list[int]:
    found = await app.async_execute("recall", query=query, top_k=5)
    texts = [m["text"] for m in found.metadata["memories"]]
    return [texts.index(PACKED), texts.index(TWO_WEEKS_AGO)]


async def test_a_when_question_finds_the_memory_that_says_when_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with ReMeApp(store_dir=str(tmp_path)) as app:
        for text in (PACKED, TWO_WEEKS_AGO, *OTHERS):
            await app.async_execute("remember", text=text)
        question = "When did I see the Mona Lisa at the Louvre?"
        assert await ranks(app, question) == [1, 0]
        what = await ranks(app, "What did I see at the Louvre?")
        monkeypatch.setattr(when, "TIMED_BOOST", 0.0)
        assert await ranks(app, question) == [0, 1]  # by its words and meaning the other is closer
        assert await ranks(app, "What did I see at the Louvre?") == what  # not a when question: as before
