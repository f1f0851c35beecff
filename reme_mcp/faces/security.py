"""One gate in front of every network face: bearer token, Host and Origin allow-lists, body size.

Why each check:
- A server on a non-loopback address is reachable by anyone on the network, so it
  does not start without a token, and every request must carry it.
- A loopback server is still reachable from a web page through DNS rebinding (an
  attacker's name resolving to 127.0.0.1); checking Host and Origin against the
  loopback names stops that, as the MCP specification asks of local servers.
- A request body is bounded before anything reads it (limits.max_request_bytes), so one
  call cannot make the server buffer gigabytes.
The same gate wraps the HTTP API and both MCP network transports.
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any

from reme_mcp.config import NetworkConfig, secret
from reme_mcp.errors import ConfigError

if TYPE_CHECKING:
    from reme_mcp.app import ReMeApp

log = logging.getLogger(__name__)

LOOPBACK = ("127.0.0.1", "localhost", "::1")
LOOPBACK_HOSTS = ["127.0.0.1:*", "localhost:*", "[::1]:*", "127.0.0.1", "localhost", "[::1]"]
LOOPBACK_ORIGINS = ["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"]

Scope = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]], Awaitable[None]]


def _allowed(value: str, patterns: list[str]) -> bool:
    for pattern in patterns:
        if pattern == "*" or value == pattern:
            return True
        if pattern.endswith(":*") and value.rpartition(":")[0] == pattern[:-2]:
            return True
    return False


class Gate:
    """ASGI middleware: 401 without the token, 421 for a foreign Host, 403 for a foreign Origin."""

    def __init__(self, app: ASGIApp, config: NetworkConfig, face: str, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes
        self.token = secret(config.auth_token, "REME_AUTH_TOKEN")
        loopback = config.host in LOOPBACK
        if not loopback and not self.token:
            raise ConfigError(
                f"{face}.host={config.host} exposes the server beyond this machine; set {face}.auth_token "
                "(or REME_AUTH_TOKEN) so that requests need 'Authorization: Bearer <token>'."
            )
        self.hosts = config.allowed_hosts or (LOOPBACK_HOSTS if loopback else ["*"])
        self.origins = config.allowed_origins or (LOOPBACK_ORIGINS if loopback else ["*"])

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        refusal = self._refusal(headers)
        if refusal is None:
            await self.app(scope, receive, send)
            return
        status, message = refusal
        body = json.dumps({"answer": message, "success": False, "metadata": {}}).encode()
        extra = [(b"www-authenticate", b'Bearer realm="reme-mcp"')] if status == 401 else []
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"), *extra]})
        await send({"type": "http.response.body", "body": body})

    def _refusal(self, headers: dict[str, str]) -> tuple[int, str] | None:
        if not _allowed(headers.get("host", ""), self.hosts):
            return 421, f"Host '{headers.get('host', '')}' is not allowed (allowed_hosts)."
        origin = headers.get("origin")
        if origin is not None and not _allowed(origin, self.origins):
            return 403, f"Origin '{origin}' is not allowed (allowed_origins)."
        if self.token:
            given = headers.get("authorization", "")
            if not hmac.compare_digest(given.encode(), f"Bearer {self.token}".encode()):
                return 401, "Missing or wrong token: send 'Authorization: Bearer <token>'."
        # The server framing (h11) holds a body to its Content-Length, so checking the header bounds it.
        length = headers.get("content-length")
        if length is None and "chunked" in headers.get("transfer-encoding", ""):
            return 411, "Send the request with a Content-Length header (chunked bodies are not accepted)."
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            return 413, (f"The request body is {length} bytes; the limit is {self.max_bytes:,} "
                         "(limits.max_request_bytes). Send less per call.")
        return None


async def serve_gated(app: ReMeApp, asgi: ASGIApp, config: NetworkConfig, face: str, what: str) -> None:
    """Serve `asgi` behind the Gate with uvicorn while `app` is open; an unsafe bind fails before anything starts."""
    import uvicorn

    gated = Gate(asgi, config, face, app.config.limits.max_request_bytes)
    async with app:
        log.info("%s on http://%s:%d", what, config.host, config.port)
        await uvicorn.Server(uvicorn.Config(gated, host=config.host, port=config.port, log_level="warning")).serve()
