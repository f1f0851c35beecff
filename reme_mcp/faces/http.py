"""The HTTP face: `POST /<flow>` with the flow's arguments as a JSON object.

Every answer is the envelope `{answer, success, metadata}`: 200 with the flow's
output in `metadata`, or 4xx with `success: false` and the message in `answer`.
`GET /health` says the server is up; `GET /openapi.json` describes every flow from
the same pydantic models that MCP and Python use.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from reme_mcp import __version__
from reme_mcp.app import ReMeApp
from reme_mcp.errors import ReMeError
from reme_mcp.faces.security import serve_gated
from reme_mcp.flows import FLOWS, MAX_DEPTH, Envelope

log = logging.getLogger(__name__)


def _envelope(answer: str, success: bool, metadata: dict[str, Any], status: int) -> JSONResponse:
    return JSONResponse(Envelope(answer=answer, success=success, metadata=metadata).model_dump(), status_code=status)


def openapi() -> dict[str, Any]:
    envelope = Envelope.model_json_schema()
    paths: dict[str, Any] = {}
    for flow in FLOWS.values():
        paths[f"/{flow.name}"] = {
            "post": {
                "operationId": flow.name,
                "summary": flow.description.split(". ")[0],
                "description": flow.description,
                "requestBody": {"required": True, "content": {"application/json": {"schema": flow.input.model_json_schema()}}},
                "responses": {
                    "200": {
                        "description": f"{flow.name} succeeded; `metadata` holds the output below.",
                        "content": {"application/json": {"schema": envelope}},
                        "x-output-schema": flow.output.model_json_schema(mode="serialization"),
                    },
                    "400": {"description": "Invalid arguments: `answer` says which and why."},
                    "404": {"description": "Unknown flow, workspace or memory."},
                },
            }
        }
    return {"openapi": "3.1.0", "info": {"title": "reme-mcp", "version": __version__}, "paths": paths}


def build_http_app(app: ReMeApp) -> Starlette:
    async def run_flow(request: Request) -> JSONResponse:
        name = request.path_params["flow"]
        try:
            body = await request.body()
            arguments = json.loads(body) if body.strip() else {}
        except RecursionError:
            return _envelope(f"The request body nests deeper than the server parses; keep arguments within "
                             f"{MAX_DEPTH} levels.", False, {}, 400)
        except ValueError as exc:  # bad JSON, bad UTF-8, or an integer of more than 4,300 digits
            return _envelope(f"The request body is not valid JSON: {exc}", False, {}, 400)
        try:
            output = await app.run(name, arguments)
            return _envelope(output.render(), True, output.model_dump(mode="json"), 200)
        except ReMeError as exc:
            return _envelope(str(exc), False, {}, exc.status)
        except Exception:
            log.exception("flow %s failed", name)
            return _envelope(f"Internal error in {name}; the server log has the details.", False, {}, 500)

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", "version": __version__, "flows": list(FLOWS)})

    async def spec(request: Request) -> JSONResponse:
        return JSONResponse(openapi())

    return Starlette(
        routes=[
            Route("/health", health, methods=["GET"]),
            Route("/openapi.json", spec, methods=["GET"]),
            Route("/{flow}", run_flow, methods=["POST"]),
        ]
    )


async def serve(app: ReMeApp) -> None:
    await serve_gated(app, build_http_app(app), app.config.http, "http",
                      "HTTP API (POST /<flow>, GET /health, GET /openapi.json)")
