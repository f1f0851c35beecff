"""The MCP face: flows as tools, a memory prompt, workspaces as resources; stdio, SSE or streamable HTTP.

Built on the SDK's low-level `Server` because the schemas already exist as pydantic
models in flows.py: the tool list is generated from that table, not from function
signatures, so MCP advertises exactly what HTTP and Python accept.

A failed call is `isError: true` with a message that says what to fix; a success
carries the answer text for the model and the typed output in `structuredContent`.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

import anyio.to_thread
import mcp_types as types
from mcp.server.lowlevel import Server
from mcp.shared.exceptions import MCPError

from reme_mcp import __version__
from reme_mcp.app import ReMeApp
from reme_mcp.episodic.prompt import system_prompt
from reme_mcp.episodic.schemas import WORKSPACE_PATTERN, RecallOutput
from reme_mcp.errors import ReMeError
from reme_mcp.faces.security import serve_gated
from reme_mcp.flows import Flow, select

log = logging.getLogger(__name__)

INSTRUCTIONS = (
    "Long-term memory for this agent. Use `recall` before answering questions that may depend on earlier "
    "sessions, and `remember` to keep facts, preferences, decisions and lessons worth having later. "
    "Use `workspace_id` to keep projects or users apart."
)

PROMPT = types.Prompt(
    name="memory_system_prompt",
    description="A system prompt for an agent with episodic memory; with `query`, the memories recalled "
    "for it are injected.",
    arguments=[
        types.PromptArgument(name="query", description="What the conversation is about (optional).", required=False),
        types.PromptArgument(name="top_k", description="How many memories to inject (default 5).", required=False),
        types.PromptArgument(name="workspace_id", description="The workspace to recall from.", required=False),
    ],
)

WORKSPACES_URI = "reme://workspaces"
MEMORIES_TEMPLATE = "reme://workspaces/{workspace_id}/memories"
RESOURCE_PAGE = 200  # newest memories a resource shows; recall or the HTTP API reach the rest


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
    flows = {flow.name: flow for flow in select(app.config.mcp.tools)}
    tools = [_tool(flow) for flow in flows.values()]

    async def list_tools(ctx: Any, params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
        return types.ListToolsResult(tools=tools)

    async def call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        if params.name not in flows:
            return _error(f"No tool named '{params.name}'. Tools: {', '.join(flows)}.")
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

    async def list_prompts(ctx: Any, params: types.PaginatedRequestParams | None) -> types.ListPromptsResult:
        return types.ListPromptsResult(prompts=[PROMPT])

    async def get_prompt(ctx: Any, params: types.GetPromptRequestParams) -> types.GetPromptResult:
        if params.name != PROMPT.name:
            raise MCPError(types.INVALID_PARAMS, f"No prompt named '{params.name}'; there is {PROMPT.name}.")
        arguments = dict(params.arguments or {})
        recalled = None
        if arguments.get("query"):
            try:
                recalled = await app.run(
                    "recall",
                    {"query": arguments["query"], "top_k": arguments.get("top_k") or 5,
                     "workspace_id": arguments.get("workspace_id") or None},
                )
            except ReMeError as exc:
                raise MCPError(types.INVALID_PARAMS, str(exc)) from None
        text = system_prompt(recalled if isinstance(recalled, RecallOutput) else None)
        return types.GetPromptResult(
            description=PROMPT.description,
            messages=[types.PromptMessage(role="user", content=types.TextContent(type="text", text=text))],
        )

    async def list_resources(ctx: Any, params: types.PaginatedRequestParams | None) -> types.ListResourcesResult:
        services = await app.services()
        workspaces = await anyio.to_thread.run_sync(services.store.list_workspaces)
        resources = [types.Resource(uri=WORKSPACES_URI, name="workspaces", mime_type="application/json",
                                    description="Every workspace and how many memories it holds.")]
        resources += [
            types.Resource(uri=MEMORIES_TEMPLATE.format(workspace_id=ws), name=f"memories of {ws}",
                           mime_type="application/json", description=f"The newest {RESOURCE_PAGE} of {count} memories.")
            for ws, count in workspaces
        ]
        return types.ListResourcesResult(resources=resources)

    async def list_templates(ctx: Any, params: types.PaginatedRequestParams | None) -> types.ListResourceTemplatesResult:
        return types.ListResourceTemplatesResult(resource_templates=[
            types.ResourceTemplate(uri_template=MEMORIES_TEMPLATE, name="memories of a workspace",
                                   mime_type="application/json", description="Read-only list, newest first.")
        ])

    async def read_resource(ctx: Any, params: types.ReadResourceRequestParams) -> types.ReadResourceResult:
        services = await app.services()
        uri = str(params.uri)
        if uri == WORKSPACES_URI:
            rows = await anyio.to_thread.run_sync(services.store.list_workspaces)
            data: Any = [{"workspace_id": ws, "memories": count} for ws, count in rows]
        else:
            match = re.fullmatch(r"reme://workspaces/([^/]+)/memories", uri)
            if not match or not re.fullmatch(WORKSPACE_PATTERN, match.group(1)):
                raise MCPError(types.INVALID_PARAMS, f"Unknown resource {uri!r}; see resources/list.")
            memories = await anyio.to_thread.run_sync(services.store.list_memories, match.group(1), RESOURCE_PAGE)
            data = [m.model_dump(mode="json") for m in memories]
        text = json.dumps(data, ensure_ascii=False, indent=1)
        return types.ReadResourceResult(
            contents=[types.TextResourceContents(uri=uri, mime_type="application/json", text=text)]
        )

    async def set_level(ctx: Any, params: types.SetLevelRequestParams) -> types.EmptyResult:
        level = {"debug": "DEBUG", "info": "INFO", "notice": "INFO", "warning": "WARNING"}.get(params.level, "ERROR")
        logging.getLogger("reme_mcp").setLevel(level)
        return types.EmptyResult()

    return Server(
        "reme-mcp",
        version=__version__,
        instructions=INSTRUCTIONS,
        get_tool_input_schema=lambda name: flows[name].input.model_json_schema() if name in flows else None,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
        on_list_prompts=list_prompts,
        on_get_prompt=get_prompt,
        on_list_resources=list_resources,
        on_list_resource_templates=list_templates,
        on_read_resource=read_resource,
        on_set_logging_level=set_level,
    )


async def serve(app: ReMeApp) -> None:
    """Run the configured MCP transport until it is closed; the app lives as long as the server."""
    config = app.config.mcp
    server = build_server(app)
    if config.transport == "stdio":
        async with app:
            from mcp.server.stdio import stdio_server

            async with stdio_server() as (read_stream, write_stream):
                from reme_mcp.faces.stdio import AnswerUnreadable

                answering = AnswerUnreadable(read_stream, write_stream)
                await server.run(answering, write_stream, server.create_initialization_options())
        return
    asgi = _http_app(server, config.transport, app.config.limits.max_request_bytes)
    await serve_gated(app, asgi, config, "mcp", f"MCP {config.transport}")


def _http_app(server: Server[Any], transport: str, max_bytes: int) -> Any:
    from mcp.server.transport_security import TransportSecuritySettings

    # The Gate checks Host, Origin and token for every face alike; the SDK's own check would
    # only know the loopback defaults, not the configured allow-lists.
    security = TransportSecuritySettings(enable_dns_rebinding_protection=False)
    if transport == "streamable-http":
        return server.streamable_http_app(transport_security=security, max_request_body_size=max_bytes)

    from mcp.server.sse import SseServerTransport
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Mount, Route

    sse = SseServerTransport("/messages/", security_settings=security, max_request_body_size=max_bytes)

    async def handle_sse(request: Request) -> Response:
        async with sse.connect_sse(request.scope, request.receive, request._send) as (read, write):
            await server.run(read, write, server.create_initialization_options())
        return Response()

    return Starlette(
        routes=[Route("/sse", endpoint=handle_sse, methods=["GET"]), Mount("/messages/", app=sse.handle_post_message)]
    )
