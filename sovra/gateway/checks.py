"""Server checks: every route's model or LoRA adapter is listed by its server, and ``/health``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sovra.errors import ConfigError, ModelUnavailableError
from sovra.gateway.failures import _brief
from sovra.routes import check_host

if TYPE_CHECKING:
    from sovra.gateway.core import GatewayCore


def check_routes(gw: GatewayCore, *, include_local: bool = False) -> dict[str, dict[str, Any]]:
    """Ask every remote server's ``/v1/models`` and check each route's model is served.

    Returns route -> the server's model card (for a LoRA adapter ``parent`` is its base model).
    Raises ConfigError naming every missing model, ModelUnavailableError for a dead server.
    """
    import httpx

    listed: dict[str, dict[str, dict[str, Any]]] = {}
    found: dict[str, dict[str, Any]] = {}
    missing: list[str] = []
    for name, route in gw.routes.routes.items():
        if route.is_local and not include_local:
            continue
        base_url, api_key = gw._endpoint(route)
        check_host(base_url, gw._allowed)
        if base_url not in listed:
            try:
                resp = gw._http_client().get(
                    f"{base_url}/models",
                    headers={"Authorization": f"Bearer {api_key}"},
                    timeout=min(route.timeout_s, 10.0),
                )
                resp.raise_for_status()
                listed[base_url] = {m["id"]: m for m in resp.json()["data"]}
            except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
                raise ModelUnavailableError(
                    f"model server at {base_url} is unreachable or did not list its models: {_brief(exc)}",
                    hint="check that the server is running and the route's base_url is right",
                ) from exc
        card = listed[base_url].get(route.model)
        if card is None:
            missing.append(
                f"route {name!r} wants {route.model!r}, which {base_url} does not serve "
                f"(it lists {', '.join(sorted(listed[base_url])) or 'nothing'})"
            )
        else:
            found[name] = card
    if missing:
        raise ConfigError(
            "; ".join(missing),
            hint="fix the model ids in the routes file, or start vLLM with the adapter "
            "(--enable-lora --lora-modules NAME=PATH)",
        )
    return found


def health(gw: GatewayCore) -> dict[str, bool]:
    """Each remote server's ``/health`` (vLLM serves it at the root, beside ``/v1``)."""
    import httpx

    status: dict[str, bool] = {}
    for route in gw.routes.routes.values():
        if route.base_url is None or route.base_url in status:
            continue
        base = route.base_url.rstrip("/")
        root = base[: -len("/v1")] if base.endswith("/v1") else base
        check_host(root, gw._allowed)
        try:
            ok = gw._http_client().get(f"{root}/health", timeout=min(route.timeout_s, 5.0)).status_code == 200
        except httpx.HTTPError:
            ok = False
        status[route.base_url] = ok
    return status
