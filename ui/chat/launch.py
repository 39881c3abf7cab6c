"""`sovra ui`: start the Streamlit chat."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

APP = Path(__file__).with_name("app.py")


def streamlit_argv(host: str, port: int) -> list[str]:
    """The `streamlit run` command line: no usage statistics, no browser, no file watcher and no
    developer toolbar (offline, and a production server must not reload itself when files change)."""
    return [
        sys.executable, "-m", "streamlit", "run", str(APP),
        "--server.address", host,
        "--server.port", str(port),
        "--server.headless", "true",
        "--server.fileWatcherType", "none",
        "--browser.gatherUsageStats", "false",
        "--global.developmentMode", "false",
        "--client.toolbarMode", "viewer",
    ]  # fmt: skip


def ui_command(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8501,
    dev_login: Annotated[
        bool, typer.Option("--dev-login", help="Local use only: let anyone pick any directory user (no OIDC).")
    ] = False,
) -> None:
    """Start the chat in the browser (Streamlit) on http://HOST:PORT.

    Log in with OIDC when .streamlit/secrets.toml has an auth section. On your own machine,
    `--dev-login` (or SOVRA_UI_DEV_LOGIN=true) offers a DEVELOPMENT login that lets you pick a
    directory user; it is refused unless HOST is a loopback address. The embedded index admits one
    process at a time: stop the chat before `sovra ask` or `sovra ingest`, or use a Qdrant server
    (SOVRA_QDRANT_URL).
    """
    from sovra.config import Settings
    from sovra.errors import InputError
    from sovra.ui.chat.identity import dev_login_allowed

    if dev_login:
        os.environ["SOVRA_UI_DEV_LOGIN"] = "true"
    if (dev_login or Settings().ui_dev_login) and not dev_login_allowed(Settings(), host):
        raise InputError(
            f"the development login is for local use only, not on {host}",
            hint="use --host 127.0.0.1, or configure OIDC ([auth] in .streamlit/secrets.toml) and drop --dev-login",
        )
    argv = streamlit_argv(host, port)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.execv(argv[0], argv)  # Streamlit owns the process from here (signals, shutdown)
