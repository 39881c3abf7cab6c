"""Per-endpoint circuit breakers and concurrency limits, and the retry delay rule.

A model server that is down should cost each caller one fast error, not a timeout each; a server
that is busy should see a bounded number of our calls, not all of them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sovra.errors import ModelUnavailableError

MAX_RETRY_AFTER_S = 30.0  # a server asking for longer is as good as down: fall back instead


@dataclass
class CircuitBreaker:
    """Closed -> open after ``failures`` consecutive failures -> half-open after ``cooldown_s``.

    Half-open lets one trial call through; its success closes the circuit, its failure reopens it.
    """

    endpoint: str
    failures: int = 5
    cooldown_s: float = 30.0
    clock: Callable[[], float] = time.monotonic
    _consecutive: int = 0
    _opened_at: float | None = None
    _trial_running: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def state(self) -> str:
        with self._lock:
            return self._state()

    def _state(self) -> str:
        if self._opened_at is None:
            return "closed"
        return "half-open" if self.clock() - self._opened_at >= self.cooldown_s else "open"

    def before_call(self) -> None:
        """Raise at once when the circuit is open (or its one half-open trial is in flight)."""
        with self._lock:
            state = self._state()
            if state == "closed":
                return
            if state == "half-open" and not self._trial_running:
                self._trial_running = True
                return
            assert self._opened_at is not None
            wait = max(0.0, self.cooldown_s - (self.clock() - self._opened_at))
        raise ModelUnavailableError(
            f"model server at {self.endpoint} is unavailable: {self._consecutive} calls in a row failed, "
            f"so calls are paused for {wait:.0f} s more (circuit open)",
            hint="check the model server's health; a fallback route keeps answers flowing meanwhile",
        )

    def success(self) -> None:
        with self._lock:
            self._consecutive = 0
            self._opened_at = None
            self._trial_running = False

    def failure(self) -> None:
        with self._lock:
            self._consecutive += 1
            if self._trial_running or self._consecutive >= self.failures:
                self._opened_at = self.clock()
            self._trial_running = False


class ConcurrencyLimit:
    """At most ``limit`` calls in flight to one endpoint; a caller waits up to ``wait_s`` for a slot."""

    def __init__(self, endpoint: str, limit: int) -> None:
        self.endpoint = endpoint
        self.limit = limit
        self._sem = threading.BoundedSemaphore(limit)

    def acquire(self, wait_s: float) -> None:
        if not self._sem.acquire(timeout=wait_s):
            raise ModelUnavailableError(
                f"model server at {self.endpoint} is busy: {self.limit} calls already in flight "
                f"and no slot freed within {wait_s:g} s",
                hint="raise max_concurrency for the route if the server has capacity",
            )

    def release(self) -> None:
        self._sem.release()


def retry_delay(attempt: int, backoff_s: float, retry_after: str | None) -> float:
    """Seconds to wait before retry number ``attempt`` (1-based): the server's Retry-After when it
    gives one (capped), else exponential backoff."""
    if retry_after is not None:
        try:
            return min(max(0.0, float(retry_after)), MAX_RETRY_AFTER_S)
        except ValueError:
            pass  # an HTTP date: rare from model servers; use our own backoff
    return backoff_s * (2 ** (attempt - 1))
