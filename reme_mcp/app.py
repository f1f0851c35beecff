"""ReMeApp: the memory core that every face (MCP, HTTP, CLI, Python) talks to.

It owns the configuration, the store and the models, and runs flows from the table
in flows.py. Nothing heavy happens in the constructor: the store opens on first use
and the embedding model loads in a background thread, so a server built on it
answers its handshake at once.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread

from reme_mcp.config import Config, load_config, secret
from reme_mcp.errors import NotFound, RequestTimeout
from reme_mcp.flows import Envelope, FlowOutput, get_flow
from reme_mcp.models.embedding import Embedder, USEMultilingualEmbedder, create_embedder
from reme_mcp.models.llm import LLM
from reme_mcp.privacy.scrub import scrub_value
from reme_mcp.retrieval import ann
from reme_mcp.retrieval.dense import DenseIndex
from reme_mcp.services import Services
from reme_mcp.store import check_config, create_store, open_store, store_location
from reme_mcp.store.base import MemoryStore, embedding_text
from reme_mcp.store.sqlite import STORE_FILE  # noqa: F401  (cli's `reme encrypt` finds the file name here)
from reme_mcp.working.files import DIRECTORY, WorkingFiles, adopt_legacy

log = logging.getLogger(__name__)


class ReMeApp:
    """Run memory flows from Python.

        async with ReMeApp("vector_store.default.backend=memory") as app:
            result = await app.async_execute("recall", query="deploy key", top_k=3)

    Arguments are the same `key=value` overrides as on the command line; keyword
    arguments use `__` for dots (`ReMeApp(store_dir="/tmp/m", http__port=9000)`).
    A flow that fails raises `ReMeError` with a message that says what to fix.
    """

    def __init__(self, *overrides: str, config: Config | None = None, **values: Any):
        self.config = config if config is not None else load_config(*overrides, **values)
        check_config(self.config)  # a store that cannot work is refused now; nothing connects before first use
        self.embedder: Embedder = create_embedder(self.config.embedding_model.default)
        # Trained cells are keyed in a multilingual space, whatever the main model reads (cells/__init__.py).
        self.cell_encoder: Embedder = USEMultilingualEmbedder(self.config.embedding_model.default)
        self._store: MemoryStore | None = None
        self._services: Services | None = None
        self._open_lock = threading.Lock()

    # -- lifecycle -----------------------------------------------------------------

    @property
    def store_path(self) -> str:
        """Where the store is: its SQLite file, ':memory:', or the PostgreSQL URL without its password."""
        return store_location(self.config)

    @property
    def encryption_key(self) -> str | None:
        """The store file's key (privacy.encryption_key or REME_ENCRYPTION_KEY); a RAM store needs none."""
        if self.config.vector_store.default.backend in ("memory", "pgvector"):
            return None  # pgvector: the database server encrypts at rest; a key set anyway is refused on open
        return secret(self.config.privacy.encryption_key, "REME_ENCRYPTION_KEY")

    def warm_up(self) -> None:
        """Load the embedding model in a background thread; the first call that needs it waits for it."""

        def load() -> None:
            try:
                self.embedder.load()
            except Exception as exc:  # reported again, to the caller, by the first flow that needs the model
                log.warning("embedding model not loaded: %s", exc)

        threading.Thread(target=load, name="reme-warm-up", daemon=True).start()

    def _open(self) -> Services:
        with self._open_lock:
            if self._services is None:
                store = open_store(self.config, self.embedder.model_id)
                adopt_legacy(self.config.store_dir, self.config.default_workspace)
                self._store = store
                self._services = Services(
                    self.config, store, self.embedder, self._dense(store),
                    cell_encoder=self.cell_encoder,
                    llm=LLM(self.config.llm.default),
                    working=WorkingFiles(
                        self.config.store_dir / DIRECTORY, functools.partial(scrub_value, self.config.privacy)
                    ),
                )
                log.info("store open at %s", self.store_path)
            return self._services

    def _dense(self, store: MemoryStore) -> DenseIndex:
        """Vector search; HNSW indexes of big workspaces are saved under store_dir/ann (not for a RAM store)."""
        ann_dir = None if self.store_path == ":memory:" else self.config.store_dir / ann.DIRECTORY
        return DenseIndex(store, self.cell_encoder.model_id, ann_dir, self.config.retrieval.ann_threshold,
                          self.embedder.model_id)

    async def services(self) -> Services:
        if self._services is not None:
            return self._services
        return await anyio.to_thread.run_sync(self._open)

    async def start(self) -> "ReMeApp":
        self.warm_up()
        return self

    async def close(self) -> None:
        services = self._services
        if services is not None:
            await anyio.to_thread.run_sync(services.bridge.close)  # before the store closes under it
            await services.llm.aclose()
            await anyio.to_thread.run_sync(services.dense.close)  # saves HNSW indexes that grew
        with self._open_lock:
            if self._store is not None:
                self._store.close()
            self._store = self._services = None

    async def __aenter__(self) -> "ReMeApp":
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # -- flows -------------------------------------------------------------------

    async def run(self, name: str, arguments: dict[str, Any]) -> FlowOutput:
        """Validate the arguments and run one flow; returns its typed output."""
        flow = get_flow(name)
        args = flow.parse(arguments)
        seconds = self.config.limits.request_timeout
        with anyio.move_on_after(seconds):
            return await flow.handler(await self.services(), args)
        raise RequestTimeout(
            f"{name} took longer than limits.request_timeout ({seconds:g} s) and was stopped. Writes it had "
            "finished are kept (each one whole), the rest never began. Ask for less per call, or raise the limit."
        )

    async def async_execute(self, name: str, **arguments: Any) -> Envelope:
        """Run a flow by name: `{answer, success, metadata}`, as HTTP returns it."""
        output = await self.run(name, arguments)
        return Envelope(answer=output.render(), success=True, metadata=output.model_dump(mode="json"))

    # -- maintenance -------------------------------------------------------------

    def reembed(self, progress: Callable[[int, int], None] = lambda done, total: None) -> int:
        """Recompute every vector with the configured model; returns how many memories were re-embedded.

        Texts are stored verbatim, so switching models loses nothing. All new vectors
        are computed first and written in one transaction: an interrupted re-embed
        leaves the store as it was.
        """
        store = open_store(self.config, None)
        try:
            total = store.count()
            rows: list[tuple[int, Any]] = []
            for batch in store.iter_all(256):
                texts = [embedding_text(text, keywords) for _, text, keywords in batch]
                vectors = self.embedder.encode(texts)
                rows.extend(zip((r for r, _, _ in batch), vectors))
                progress(len(rows), total)
            store.replace_vectors(rows, self.embedder.embedding())
            return len(rows)
        finally:
            store.close()

    def check(self) -> list[str]:
        """`reme check`: SQLite's integrity check, then every index against the rows; rebuilds what disagrees
        and re-embeds torn vectors from their stored text. Returns what was repaired (empty: all was well)."""
        backend = self.config.vector_store.default.backend
        if backend == "local" and not Path(self.store_path).is_file():
            raise NotFound(f"No store at {self.store_path}; check store_dir.")
        store = create_store(self.config)
        store.open(self.embedder.model_id)
        try:
            repaired, torn = store.verify()
            if torn:
                memories = store.fetch(torn)
                texts = [embedding_text(m.text, m.keywords) for m in memories.values()]
                store.replace_vectors(list(zip(memories, self.embedder.encode(texts))), self.embedder.embedding())
                repaired.append(f"re-embedded {len(torn)} memories whose vector was torn, from their stored text")
            return repaired
        finally:
            store.close()

