"""Every limit is a configuration key, and a call over it is refused with the key's name in the message."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest
from conftest import reme_server
from openai_stub import OpenAIStub, Reply
from trajectories import long_trajectory

from reme_mcp import InvalidInput, ReMeApp
from reme_mcp.errors import RequestTimeout

pytestmark = pytest.mark.anyio


async def test_results_text_and_working_files_are_bounded_by_their_keys(tmp_path: Path) -> None:
    async with ReMeApp(store_dir=str(tmp_path), limits__max_results=5, limits__max_text_chars=100,
                       limits__max_working_file_bytes=10_000) as app:
        await app.async_execute("remember", text="Limits keep one call from costing everyone else.")
        with pytest.raises(InvalidInput, match=r"top_k=6 asks for more than limits.max_results \(5\)"):
            await app.async_execute("recall", query="limits", top_k=6)
        assert (await app.async_execute("recall", query="limits", top_k=5)).metadata["memories"]
        with pytest.raises(InvalidInput, match="limits.max_results"):
            await app.async_execute("vector_store", action="list", workspace_id="default", limit=50)
        with pytest.raises(InvalidInput, match="limits.max_results"):
            await app.async_execute("grep_working_memory", pattern="x", limit=6)
        with pytest.raises(InvalidInput, match=r"the limit is 100 \(limits.max_text_chars\)"):
            await app.async_execute("remember", text="x" * 101)
        with pytest.raises(InvalidInput, match="larger than limits.max_working_file_bytes"):
            await app.async_execute("summary_working_memory", messages=long_trajectory(results=2, lines_per_result=400),
                                    working_summary_mode="compact", max_total_tokens=100, chat_id="big")
    assert not (tmp_path / "working" / "default" / "big").exists()  # refused before anything was written


async def test_a_call_past_request_timeout_is_stopped_with_an_error(tmp_path: Path) -> None:
    with OpenAIStub() as stub:
        stub.default = Reply(content="{}", delay=10)
        async with ReMeApp(store_dir=str(tmp_path), limits__request_timeout=1, llm__default__base_url=stub.url,
                           llm__default__api_key="k", llm__default__timeout=30) as app:
            started = time.monotonic()
            with pytest.raises(RequestTimeout, match=r"longer than limits.request_timeout \(1 s\)"):
                await app.async_execute("summary_working_memory", working_summary_mode="compress",
                                        messages=long_trajectory(results=2, lines_per_result=50), max_total_tokens=100)
            assert time.monotonic() - started < 5


def test_request_bodies_are_bounded_before_they_are_read(tmp_path: Path) -> None:
    with reme_server(tmp_path, "backend=http", "limits.max_request_bytes=4096") as port:
        url = f"http://127.0.0.1:{port}/remember"
        big = httpx.post(url, json={"text": "x" * 10_000})
        assert big.status_code == 413
        assert "the limit is 4,096 (limits.max_request_bytes)" in big.json()["answer"]

        def chunks():
            yield json.dumps({"text": "a chunked body"}).encode()

        chunked = httpx.post(url, content=chunks(), headers={"content-type": "application/json"})
        assert chunked.status_code == 411 and "Content-Length" in chunked.json()["answer"]
        small = httpx.post(url, json={"text": "A small body is fine."}, timeout=120)
        assert small.status_code == 200, small.text
