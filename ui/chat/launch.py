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
) -> None:
    """Start the chat in the browser (Streamlit) on http://HOST:PORT.

    Log in with OIDC when .streamlit/secrets.toml has an auth section; otherwise a DEVELOPMENT
    login lets you pick a directory user (SOVRA_UI_DEV_LOGIN=false turns it off). The embedded index
    admits one process at a time: stop the chat before `sovra ask` or `sovra ingest`, or use a
    Qdrant server (SOVRA_QDRANT_URL).
    """
    argv = streamlit_argv(host, port)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.execv(argv[0], argv)  # Streamlit owns the process from here (signals, shutdown)
