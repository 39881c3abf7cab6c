"""`sovra mcp`: the command. The server (and the MCP SDK, slow to import) loads only when it runs:
see :mod:`sovra.ui.mcp_server`."""

from __future__ import annotations

import os
from typing import Annotated

import typer


def mcp_command(
    transport: Annotated[
        str, typer.Option(help="stdio (one caller, SOVRA_MCP_TOKEN) or http (streamable HTTP).")
    ] = "stdio",
    host: Annotated[str, typer.Option(help="Interface to listen on (http).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port (http).")] = 8765,
) -> None:
    """Serve Sovra over the Model Context Protocol: search, cited passages, agents, readable documents.

    http: every request carries `Authorization: Bearer <token>` (API tokens of SOVRA_API_TOKENS_FILE or
    OIDC JWTs, as for `sovra serve`); the endpoint is http://HOST:PORT/mcp. stdio: the caller's token in
    SOVRA_MCP_TOKEN. Every call is in the audit log (interface "mcp").
    """
    import anyio

    from sovra.config import Settings
    from sovra.errors import InputError
    from sovra.ui.mcp_server import TOKEN_ENV, build_server, http_app, opened, stdio_user

    settings = Settings()
    if transport not in ("stdio", "http"):
        raise InputError(f"unknown transport {transport!r}", hint="use --transport stdio or --transport http")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    with opened(settings) as state:
        if transport == "http":
            import uvicorn

            uvicorn.run(http_app(state, host=host), host=host, port=port, server_header=False, log_level="warning")
            return

        async def main() -> None:
            state.stdio_user = await stdio_user(state, os.environ.get(TOKEN_ENV))
            await build_server(state).run_stdio_async()

        anyio.run(main)
