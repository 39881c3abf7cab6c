"""`sovra models check`: every configured route's model or LoRA adapter is served, before traffic.

Mounted in ui/cli.py with ``app.add_typer(models_app, name="models")``; ``sovra serve`` runs the
same check at start-up (``--no-check-models`` skips it).
"""

from __future__ import annotations

import logging
from typing import Any

import typer
from rich.console import Console

from sovra.config import Settings

log = logging.getLogger(__name__)

models_app = typer.Typer(no_args_is_help=True)
out = Console(highlight=False, soft_wrap=True)


@models_app.callback()
def models() -> None:
    """Model routes: check that every route's model or adapter exists on its server."""


def check_model_routes(settings: Settings) -> dict[str, dict[str, Any]]:
    """Ask each remote server's /v1/models; raise ConfigError naming every missing model or adapter,
    ModelUnavailableError for a server that does not answer. Routes on the local model are skipped."""
    from sovra.gateway import ModelGateway

    with ModelGateway(settings) as gateway:
        return gateway.check_routes()


@models_app.command("check")
def check() -> None:
    """Check every route against its server's /v1/models (exit 0 when all are served)."""
    from sovra.gateway import ModelGateway

    settings = Settings()
    with ModelGateway(settings) as gateway:
        found = gateway.check_routes()
        routes = gateway.routes.routes
        for name, route in sorted(routes.items()):
            if name not in found:
                out.print(f"{name:<14} {route.model}  (local model, not checked)", markup=False)
                continue
            parent = found[name].get("parent")
            what = f"LoRA adapter of {parent}" if parent else "base model"
            out.print(f"{name:<14} {route.model}  {what}  on {route.base_url}", markup=False)
    out.print(f"ok: {len(found)} remote route(s) served")
