"""Builds ``sovra/data/e5-language-means.json``: the multilingual model's mean passage vector per
language, which ``E5Embedder.shift`` uses to move a question towards the passages' language when the
two differ (cross-language search; see ``sovra.retrieval.Retriever``).

    python -m sovra.evals.build_language_means [--out sovra/data/e5-language-means.json]

Text: the European Parliament speeches of ``evals/datasets/europarl`` (one sitting, the same speeches
in every language the folder has; provenance in its README), every paragraph of more than 80
characters, embedded as passages. Parliament speeches, not Wikipedia: the retrieval benchmark that
measures the effect (``bench_multilingual``, XQuAD) shares no text with them. The file names the
exact weights; ``load_language_means`` ignores it for any other weights.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

from sovra.embeddings_e5 import LANGUAGE_MEANS, E5Embedder

EUROPARL = Path(__file__).parent / "datasets" / "europarl"
MIN_CHARS = 80


def paragraphs(lang: str) -> list[str]:
    out = []
    for line in (EUROPARL / f"{lang}.jsonl").open(encoding="utf-8"):
        out += [p for p in json.loads(line)["text"].split("\n\n") if len(p) > MIN_CHARS]
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--out", type=Path, default=LANGUAGE_MEANS)
    args = ap.parse_args(argv)
    emb = E5Embedder(Path(tempfile.gettempdir()) / "sovra-models")
    means, counts = {}, {}
    for path in sorted(EUROPARL.glob("*.jsonl")):
        lang = path.stem
        texts = paragraphs(lang)
        vecs = np.asarray(emb.embed_documents(texts), dtype=np.float64)
        means[lang] = [round(float(x), 6) for x in vecs.mean(axis=0)]
        counts[lang] = len(texts)
        print(f"{lang}: {len(texts)} paragraphs", flush=True)
    doc = {
        "model_id": emb.model_id,
        "source": "evals/datasets/europarl (European Parliament, sitting of 12 December 2000), paragraphs > 80 chars",
        "paragraphs": counts,
        "means": means,
    }
    args.out.write_text(json.dumps(doc) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
