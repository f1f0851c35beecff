"""The MCP face: every flow in the table becomes a tool, over stdio, SSE or streamable HTTP.

Built on the SDK's low-level `Server` because the schemas already exist as pydantic
models in flows.py: the tool list is generated from that table, not from function
signatures, so MCP advertises exactly what HTTP and Python accept.

A failed call is `isError: true` with a message that says what to fix; a success
carries the answer text for the model and the typed output in `structuredContent`.
"""

from __future__ import annotations

import logging
from typing import Any

import mcp_types as types
from mcp.server.lowlevel import Server

from reme_mcp import __version__
from reme_mcp.app import ReMeApp
from reme_mcp.errors import ReMeError
from reme_mcp.flows import FLOWS, Flow

log = logging.getLogger(__name__)

INSTRUCTIONS = (
    "Long-term memory for this agent. Use `recall` before answering questions that may depend on earlier "
    "sessions, and `remember` to keep facts, preferences, decisions and lessons worth having later. "
    "Use `workspace_id` to keep projects or users apart."
)


def _tool(flow: Flow) -> types.Tool:
    return types.Tool(
        name=flow.name,
        description=flow.description,
        input_schema=flow.input.model_json_schema(),
        output_schema=flow.output.model_json_schema(mode="serialization"),
        annotations=types.ToolAnnotations(
            read_only_hint=flow.read_only,
            destructive_hint=flow.destructive,
            idempotent_hint=flow.idempotent,
            open_world_hint=False,
        ),
    )


def _error(message: str) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(type="text", text=message)], is_error=True)


def build_server(app: ReMeApp) -> Server[Any]:
    tools = [_tool(flow) for flow in FLOWS.values()]

    async def list_tools(ctx: Any, params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
        return types.ListToolsResult(tools=tools)

    async def call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        try:
            output = await app.run(params.name, params.arguments or {})
        except ReMeError as exc:
            log.info("tool %s refused: %s", params.name, exc)
            return _error(str(exc))
        except Exception:
            log.exception("tool %s failed", params.name)
            return _error(f"Internal error in {params.name}; the server log (stderr) has the details.")
        return types.CallToolResult(
            content=[types.TextContent(type="text", text=output.render())],
            structured_content=output.model_dump(mode="json"),
        )

    return Server(
        "reme-mcp",
        version=__version__,
        instructions=INSTRUCTIONS,
        get_tool_input_schema=lambda name: FLOWS[name].input.model_json_schema() if name in FLOWS else None,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
    )


async def serve(app: ReMeApp) -> None:
    """Run the configured MCP transport until it is closed; the app lives as long as the server."""
    config = app.config.mcp
    server = build_server(app)
    async with app:
        if config.transport == "stdio":
            from mcp.server.stdio import stdio_server

            async with stdio_server() as (read_stream, write_stream):
                await server.run(read_stream, write_stream, server.create_initialization_options())
            return
        await _serve_http(server, config.transport, config.host, config.port)


def _loopback_security(host: str) -> Any:
    """DNS-rebinding protection for a loopback bind, as the SDK applies to streamable HTTP."""
    from mcp.server.transport_security import TransportSecuritySettings

    if host not in ("127.0.0.1", "localhost", "::1"):
        return None
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=["127.0.0.1:*", "localhost:*", "[::1]:*"],
        allowed_origins=["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"],
    )


async def _serve_http(server: Server[Any], transport: str, host: str, port: int) -> None:
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Mount, Route

    if transport == "streamable-http":
        asgi = server.streamable_http_app(host=host)
    else:
        from mcp.server.sse import SseServerTransport

        sse = SseServerTransport("/messages/", security_settings=_loopback_security(host))

        async def handle_sse(request: Request) -> Response:
            async with sse.connect_sse(request.scope, request.receive, request._send) as (read, write):
                await server.run(read, write, server.create_initialization_options())
            return Response()

        asgi = Starlette(
            routes=[Route("/sse", endpoint=handle_sse, methods=["GET"]), Mount("/messages/", app=sse.handle_post_message)]
        )
    log.info("MCP %s on http://%s:%d", transport, host, port)
    await uvicorn.Server(uvicorn.Config(asgi, host=host, port=port, log_level="warning")).serve()
