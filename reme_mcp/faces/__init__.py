"""The ways in: MCP (stdio, SSE, streamable HTTP), a plain HTTP API, and the `reme` command."""
