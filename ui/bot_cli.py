"""`sovra slack` and `sovra teams`. The bot modules (slack-bolt, the Microsoft 365 Agents SDK) are
imported only when a bot starts, so the rest of the CLI stays quick."""

from __future__ import annotations

from typing import Annotated

import typer


def slack_command(
    host: Annotated[str, typer.Option(help="Interface to listen on (HTTP mode).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port (HTTP mode).")] = 3000,
    socket_mode: Annotated[
        bool,
        typer.Option("--socket-mode", help="Connect out to Slack over Socket Mode (--port then serves /health only)."),
    ] = False,
) -> None:
    """Run the Slack bot: Events API on POST /slack/events (HTTP mode), or Socket Mode.

    Settings: SOVRA_SLACK_BOT_TOKEN; SOVRA_SLACK_SIGNING_SECRET (HTTP mode) or SOVRA_SLACK_APP_TOKEN
    (Socket Mode); SOVRA_CHAT_IDENTITIES_FILE maps Slack user ids to Sovra users.
    """
    import uvicorn

    from sovra.config import Settings
    from sovra.ui.slack_bot import create_http_app, socket_handler

    settings = Settings()
    if not socket_mode:
        uvicorn.run(create_http_app(settings), host=host, port=port, workers=1, server_header=False)
        return
    # Socket Mode needs no inbound port; --host/--port serve only GET /health for health checks.
    from fastapi import FastAPI

    handler = socket_handler(settings)
    health = FastAPI(openapi_url=None)

    @health.get("/health")
    async def _health() -> dict[str, str]:
        return {"status": "ok"}

    handler.connect()
    try:
        uvicorn.run(health, host=host, port=port, workers=1, server_header=False, log_level="warning")
    finally:
        handler.close()


def teams_command(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 3978,
) -> None:
    """Run the Teams bot: the Bot Connector posts activities to POST /api/messages.

    Settings: SOVRA_TEAMS_APP_ID, SOVRA_TEAMS_APP_PASSWORD, SOVRA_TEAMS_TENANT_ID (single-tenant
    bots); SOVRA_CHAT_IDENTITIES_FILE maps Entra object ids to Sovra users.
    """
    import uvicorn

    from sovra.config import Settings
    from sovra.ui.teams_bot import create_app

    uvicorn.run(create_app(Settings()), host=host, port=port, workers=1, server_header=False)
