"""`ai-router mcp`: route_and_ask as an MCP tool (official SDK), over stdio or streamable HTTP.

For OpenClaw's native MCP client and other MCP hosts (Claude Desktop, Cursor). The tool
runs the router in this process, on the same ledger file as every other ai-router.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Annotated

import typer

from .cli import ConfigOpt, app, clean_errors, offline_forced
from .config import load_config
from .errors import RouterError
from .schema import Capability
from .tool import ToolAnswer, ToolQuestion, route_and_ask

if TYPE_CHECKING:
    from mcp.server.mcpserver import MCPServer

    from .router import Router

DESCRIPTION = ("Delegate one question to the best model today's budget allows (a stronger "
               "remote model for hard coding/math/reasoning, a cheap or local one otherwise). "
               "Returns the answer plus which model answered, its tier, the cost and the "
               "budget left.")


def build_server(router: Router) -> MCPServer:
    from mcp.server.mcpserver import MCPServer

    server = MCPServer("ai-router", instructions=DESCRIPTION)

    @server.tool(name="route_and_ask", description=DESCRIPTION)
    async def route_and_ask_tool(prompt: str, capability: Capability | None = None,
                                 max_cost_usd: float | None = None,
                                 context: str | None = None) -> ToolAnswer:
        question = ToolQuestion(prompt=prompt, capability=capability,
                                max_cost_usd=max_cost_usd, context=context)
        try:
            return await route_and_ask(router, question, source="mcp")
        except RouterError as e:  # the host shows a tool error, not a traceback
            raise ValueError(str(e)) from None

    return server


@app.command()
@clean_errors
def mcp(config: ConfigOpt = None,
        http: Annotated[bool, typer.Option(help="serve streamable HTTP instead of stdio")] = False,
        host: Annotated[str, typer.Option(help="HTTP bind address")] = "127.0.0.1",
        port: Annotated[int, typer.Option(help="HTTP port")] = 8788,
        offline: Annotated[bool, typer.Option(help="use local models only")] = False) -> None:
    """Serve route_and_ask as an MCP tool (stdio by default)."""
    import anyio

    from .router import Router

    logging.getLogger("instructor").setLevel(logging.CRITICAL)
    router = Router.from_config(load_config(config), offline=offline_forced(offline))
    server = build_server(router)
    if http:
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise RouterError("the MCP HTTP transport has no authentication: bind it to "
                              "127.0.0.1 (or put it behind a proxy that authenticates)")
        anyio.run(lambda: server.run_streamable_http_async(host=host, port=port))
    else:
        anyio.run(server.run_stdio_async)
