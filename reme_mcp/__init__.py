"""reme-mcp: memory for LLM agents, served over MCP, HTTP and Python.

    from reme_mcp import ReMeApp

    async with ReMeApp("vector_store.default.backend=memory") as app:
        await app.async_execute("remember", text="The deploy key lives in vault/ops.")
        result = await app.async_execute("recall", query="where is the deploy key?")
        print(result.answer)
"""

from reme_mcp.app import ReMeApp
from reme_mcp.errors import ConfigError, InvalidInput, NotFound, ReMeError, StoreMismatch
from reme_mcp.flows import Envelope

__version__ = "0.1.0"
__all__ = ["ReMeApp", "Envelope", "ReMeError", "InvalidInput", "NotFound", "ConfigError", "StoreMismatch"]
