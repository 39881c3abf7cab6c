"""Streamed replies: text pieces as they arrive, the call record once the stream has ended."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sovra.errors import ModelUnavailableError
from sovra.gateway.failures import _brief
from sovra.gateway.records import ModelCall, _Ledger, _Result
from sovra.gateway.structured import _unmask


class TextStream(Iterator[str]):
    """The text pieces of a streamed reply; ``call`` is set once the stream has ended."""

    def __init__(self, result: _Result, ledger: _Ledger, params: dict[str, Any]) -> None:
        self._result = result
        self._ledger = ledger
        self._params = params
        self._chunks = iter(result.response)
        self._pieces: list[str] = []
        self._usage: Any = None
        self._finish: str | None = None
        self._t0 = time.perf_counter()
        self.call: ModelCall | None = None

    def __iter__(self) -> TextStream:
        return self

    def __next__(self) -> str:
        import openai

        while True:
            try:
                chunk = next(self._chunks)
            except StopIteration:
                self._end()
                raise
            except (openai.APIError, OSError, ValueError) as exc:
                got = len(self._pieces)
                raise ModelUnavailableError(
                    f"model server at {self._result.base_url} broke off the stream after {got} "
                    f"piece{'s' if got != 1 else ''}: {_brief(exc)}",
                    hint="the server may have crashed or restarted mid-answer; ask again",
                ) from exc
            usage = getattr(chunk, "usage", None)
            if usage is not None:
                self._usage = usage
            choices = getattr(chunk, "choices", None) or []
            if not choices:
                continue
            if choices[0].finish_reason:
                self._finish = choices[0].finish_reason
            piece = getattr(choices[0].delta, "content", None)
            if piece:
                piece = _unmask(self._result, piece)
                self._pieces.append(piece)
                return piece

    def _end(self) -> None:
        if self.call is not None:
            return
        r = self._result
        r.latency_ms += (time.perf_counter() - self._t0) * 1000.0
        r.response = _StreamSummary(self._usage, self._finish)
        self.call = self._ledger.call(self._params, "".join(self._pieces))


@dataclass
class _StreamSummary:
    usage: Any
    finish_reason: str | None

    @property
    def choices(self) -> list[Any]:
        return [self]
