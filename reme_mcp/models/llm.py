"""The LLM client: any OpenAI-compatible chat endpoint (OpenAI, DashScope, vLLM, Ollama, llama.cpp).

Working memory (compress) and distillation (summarize_trajectory) both ask it for one
JSON object and validate it against a pydantic model. What goes wrong with real
endpoints is handled here, once: an HTTP error, a timeout, prose around the JSON,
a ```json fence, JSON of the wrong shape. Each is retried a bounded number of times
and then reported as `LLMFailed`, never as an empty success. With no endpoint
configured the server still starts; only the flows that need an LLM say so.
"""

from __future__ import annotations

import json
import logging
import re
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from reme_mcp import prompts
from reme_mcp.config import LLMConfig, env_or, secret
from reme_mcp.errors import LLMFailed, LLMUnavailable

log = logging.getLogger(__name__)

T = TypeVar("T", bound=BaseModel)

_FENCE = re.compile(r"```(?:json|JSON)?\s*\n(.*?)\n?```", re.DOTALL)


def extract_json(text: str) -> object:
    """The JSON value in a model's answer: bare, fenced, or the first {...} that parses amid prose."""
    for candidate in [text.strip(), *(m.group(1).strip() for m in _FENCE.finditer(text))]:
        try:
            return json.loads(candidate)
        except json.JSONDecodeError:
            continue
    decoder = json.JSONDecoder()
    for start in (i for i, char in enumerate(text) if char == "{"):
        try:
            return decoder.raw_decode(text, start)[0]
        except json.JSONDecodeError:
            continue
    raise ValueError("the answer contains no JSON object")


class LLM:
    """One configured chat model. Cheap to build; the HTTP client is made on first use."""

    def __init__(self, config: LLMConfig):
        self.config = config
        self.base_url = env_or(config.base_url, "FLOW_LLM_BASE_URL")
        self.api_key = secret(config.api_key, "FLOW_LLM_API_KEY")
        self._client = None

    @property
    def configured(self) -> bool:
        return bool(self.base_url or self.api_key)

    def require(self, purpose: str) -> None:
        if not self.configured:
            raise LLMUnavailable(
                f"{purpose} needs an LLM and none is configured. Set FLOW_LLM_BASE_URL (any OpenAI-compatible "
                "endpoint, e.g. http://127.0.0.1:8080/v1) and FLOW_LLM_API_KEY in .env or the environment, and "
                f"llm.default.model_name (now {self.config.model_name!r}); see example.env."
            )

    def prompt(self, name: str) -> str:
        """The system prompt `name` in the configured llm.default.prompt_language (English if none)."""
        return prompts.load(name, self.config.prompt_language)

    def _client_for_use(self):  # noqa: ANN202 - openai.AsyncOpenAI, imported lazily
        if self._client is None:
            from openai import AsyncOpenAI

            self._client = AsyncOpenAI(
                base_url=self.base_url,
                api_key=self.api_key or "not-needed",
                timeout=self.config.timeout,
                max_retries=0,  # retries are counted here, together with unusable answers
            )
        return self._client

    async def aclose(self) -> None:
        """Close the HTTP client in the event loop that used it (left to the garbage collector,
        it would be closed later, inside whatever loop runs then)."""
        if self._client is not None:
            client, self._client = self._client, None
            await client.close()

    async def complete_json(self, messages: list[dict[str, str]], schema: type[T], *, purpose: str) -> T:
        """Ask for one JSON object matching `schema`; retried, then `LLMFailed` naming the last problem."""
        self.require(purpose)
        from openai import APIError, APITimeoutError

        client = self._client_for_use()
        options: dict[str, object] = {"temperature": 0}
        if self.config.max_tokens:
            options["max_tokens"] = self.config.max_tokens
        if self.config.response_format == "json_schema":
            options["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": schema.__name__, "schema": schema.model_json_schema()},
            }
        attempts = self.config.max_retries + 1
        problem = ""
        for attempt in range(1, attempts + 1):
            try:
                response = await client.chat.completions.create(
                    model=self.config.model_name, messages=messages, **options
                )
                if not getattr(response, "choices", None):
                    raise ValueError("the answer had no choices")
                choice = response.choices[0]
                if choice.finish_reason == "length":
                    raise ValueError("the answer was cut off by the token limit")
                return schema.model_validate(extract_json(choice.message.content or ""))
            except APITimeoutError:
                problem = f"no answer within {self.config.timeout:g} s (llm.default.timeout)"
            except APIError as exc:
                status = getattr(exc, "status_code", None)
                problem = f"HTTP {status}: {exc.message}" if status else f"{type(exc).__name__}: {exc.message}"
            except (ValueError, ValidationError) as exc:
                detail = str(exc).splitlines()[0] if not isinstance(exc, ValidationError) else _first_error(exc)
                problem = f"the answer was not the JSON asked for ({detail})"
            except (IndexError, AttributeError, TypeError):
                problem = "the answer had no message"
            log.warning("%s: LLM attempt %d/%d failed: %s", purpose, attempt, attempts, problem)
        raise LLMFailed(
            f"{purpose} failed: the LLM ({self.config.model_name} at {self.base_url or 'api.openai.com'}) "
            f"did not give a usable answer in {attempts} attempt(s); last problem: {problem}."
        )


def _first_error(exc: ValidationError) -> str:
    err = exc.errors(include_url=False)[0]
    where = ".".join(str(p) for p in err["loc"]) or "top level"
    return f"{where}: {err['msg']}"
