"""Errors a caller can act on.

Every face turns a `ReMeError` into the same thing: MCP answers `isError` with the
message, HTTP answers a 4xx envelope, the CLI prints it and exits non-zero, Python
raises it. Messages are written for the person (or agent) who has to fix the call,
so they say what was wrong and what to do instead. Anything that is not a
`ReMeError` is a bug in the server and is reported as an internal error.
"""


class ReMeError(Exception):
    """A failure the caller caused or can fix; its message is shown as is."""

    status = 400


class InvalidInput(ReMeError):
    """Arguments that do not fit the flow's schema or limits."""


class NotFound(ReMeError):
    """A memory, workspace or flow that does not exist."""

    status = 404


class ConfigError(ReMeError):
    """A configuration key or value that cannot be used."""


class RequestTimeout(ReMeError):
    """A call ran past limits.request_timeout and was stopped."""

    status = 504


class StoreMismatch(ReMeError):
    """The store was written by another embedding model or a newer schema.

    Mixing vectors from two models gives silently wrong recall, so this is refused
    until the user either configures the original model or re-embeds the store.
    """

    status = 409


class LLMUnavailable(ReMeError):
    """A flow needs the LLM and none is configured; the message names the settings to set."""

    status = 503


class LLMFailed(ReMeError):
    """The configured LLM answered with an error, too slowly, or with output that is not usable."""

    status = 502


class StoreCorrupt(ReMeError):
    """Stored data fails its checksum or carries a format this code does not know.

    Serving it would hand back something other than what was stored, so it is refused.
    """

    status = 500


class StoreUnavailable(ReMeError):
    """The database behind the store (PostgreSQL) cannot be reached or kept the request waiting too long."""

    status = 503
