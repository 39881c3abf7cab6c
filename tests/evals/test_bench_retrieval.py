"""The retrieval benchmark at a tiny size: report structure and correctness checks, never timings."""

from __future__ import annotations

import json
import random

from typer.testing import CliRunner

from sovra.evals.bench_corpus import EVERYONE, Corpus, banking_text, doc_acl
from sovra.evals.bench_retrieval import MODES, BenchConfig, run_benchmark
from sovra.ui.bench_cli import bench_app


def test_tiny_run_reports_every_mode_with_no_acl_leak(embedder, tmp_path) -> None:
    cfg = BenchConfig(
        sizes=(300,), queries=20, warmup=3, ingest_chunks=25, ingest_rounds=1, local_client=True, workdir=tmp_path
    )
    result = run_benchmark(cfg, embedder)
    json.dumps(result)  # the --out file must be plain JSON

    edge, local = result["search"]
    assert edge["backend"].startswith("edge") and edge["size"] == 300
    assert "NOT the Qdrant server" in local["backend"]
    assert [st["state"] for st in edge["states"]] == ["upserted", "optimized"]
    for st in edge["states"] + local["states"]:
        assert set(st["latency_ms"]) == set(MODES)
        for stats in st["latency_ms"].values():
            assert stats["n"] == 20 and 0 < stats["p50"] <= stats["p95"] <= stats["p99"]
        # Every hit of every mode was checked against the ACL it was searched with.
        assert st["checks"]["hits_checked"] > 0 and st["checks"]["acl_violations"] == 0
    for st in edge["states"]:
        assert st["points"] == 300 and st["disk_mb"] > 0 and st["rss_mb"] > 0
    assert edge["build"]["upsert_points_per_s"] > 0 and "optimize_s" in edge["build"]

    ing = result["ingestion"]
    assert ing["chunks"] >= 25 and len(ing["raw_embed_s"]) == len(ing["pipeline_s"]) == 1
    raw, pipe = ing["raw_embed_s"][0], ing["pipeline_s"][0]
    # (b - a) / a from the unrounded seconds; the report rounds them to 0.01 s, which moves the ratio
    # by up to 0.005 / a + 0.005 * b / a^2 (a tiny run on a loaded machine: a few hundredths).
    slack = 0.005 / raw + 0.005 * pipe / raw**2 + 1e-4
    assert abs(ing["overhead"] - (pipe - raw) / raw) <= slack
    assert "pipeline_overhead_under_10pct" in result["verdict"]
    edit = ing["one_clause_edit"]
    assert edit["documents_updated"] == 1 and 1 <= edit["chunks_reembedded"] < edit["document_chunks"]
    assert any("synthetic" in n for n in result["notes"])
    assert result["machine"]["load_avg_start"]


def test_corpus_is_seeded_and_acl_mix_is_as_documented(embedder) -> None:
    a, b = Corpus(embedder, seed=7), Corpus(embedder, seed=7)
    pa, ta = a.batch(1000, 20)
    pb, tb = b.batch(1000, 20)
    assert ta == tb and [p.dense for p in pa] == [p.dense for p in pb]
    assert (pa[0].chunk.doc_id, pa[0].chunk.index) == ("bench:doc-000200", 0)  # point 1000: chunk 0 of doc 200
    assert abs(sum(x * x for x in pa[0].dense) - 1.0) < 1e-4  # unit vectors, like MiniLM's
    assert pa[0].sparse.indices  # real BM25 terms
    public = sum(doc_acl(d, 7) == frozenset({EVERYONE}) for d in range(5000)) / 5000
    assert 0.77 < public < 0.83
    assert 500 < len(banking_text(random.Random(1), 500)) < 800


def test_cli_prints_the_table_and_writes_json(tmp_path) -> None:
    out = tmp_path / "r.json"
    args = ["retrieval", "--sizes", "200", "--queries", "5", "--warmup", "1", "--ingest-chunks", "0", "--out", str(out)]
    res = CliRunner().invoke(bench_app, args)
    assert res.exit_code == 0, res.output
    assert "hybrid_acl" in res.output and "synthetic" in res.output
    data = json.loads(out.read_text())
    assert data["ingestion"] is None and data["search"][0]["size"] == 200


def test_sizing_measures_a_tiny_shard_in_a_fresh_process(embedder, tmp_path) -> None:
    from sovra.evals.bench_sizing import bench_size

    (row,) = bench_size(400, tmp_path, embedder, ("sq",))
    assert row["variant"] == "int8 scalar quantization" and row["chunks"] == 400
    assert row["disk_mb"] > 0 and row["raw_dense_mb"] == round(400 * 384 * 4 / 1e6, 1)
    # The child opened the shard and searched it: its resident set grew by the shard's share.
    assert row["rss_open_delta_mb"] > 0 and row["rss_serving_delta_mb"] >= row["rss_open_delta_mb"] - 5
    assert not (tmp_path / "sq-400").exists()  # the shard is removed once measured
