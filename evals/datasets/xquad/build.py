"""Rebuild this folder from XQuAD (google-deepmind/xquad) at a pinned commit.

Usage: ``python evals/datasets/xquad/build.py <xquad git dir>`` (a clone or bare mirror of
https://github.com/google-deepmind/xquad). Each language becomes a BEIR folder with the same ids in
every language (paragraph ``xq-p000``... in file order, question = its SQuAD id), so the queries of
one language can be run against the corpus of another with the same qrels.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

COMMIT = "7d30520c717524000f0d9d2f9c10a069acd9d285"
LANGUAGES = ("en", "de", "es", "ro")
HERE = Path(__file__).parent


def main(git_dir: str) -> None:
    for lang in LANGUAGES:
        raw = subprocess.run(
            ["git", f"--git-dir={git_dir}", "show", f"{COMMIT}:xquad.{lang}.json"],
            check=True,
            capture_output=True,
        ).stdout
        data = json.loads(raw)["data"]
        out = HERE / lang
        (out / "qrels").mkdir(parents=True, exist_ok=True)
        corpus, queries, qrels = [], [], ["query-id\tcorpus-id\tscore"]
        n = 0
        for article in data:
            for para in article["paragraphs"]:
                pid = f"xq-p{n:03d}"
                n += 1
                # The article title is English in every language file, so it is left out: it would
                # hand a cross-language query an English hint.
                corpus.append({"_id": pid, "title": "", "text": para["context"]})
                for qa in para["qas"]:
                    queries.append({"_id": qa["id"], "text": qa["question"]})
                    qrels.append(f"{qa['id']}\t{pid}\t1")
        with (out / "corpus.jsonl").open("w", encoding="utf-8") as f:
            f.writelines(json.dumps(d, ensure_ascii=False) + "\n" for d in corpus)
        with (out / "queries.jsonl").open("w", encoding="utf-8") as f:
            f.writelines(json.dumps(q, ensure_ascii=False) + "\n" for q in queries)
        (out / "qrels" / "test.tsv").write_text("\n".join(qrels) + "\n", encoding="utf-8")
        print(f"{lang}: {len(corpus)} paragraphs, {len(queries)} questions")


if __name__ == "__main__":
    main(sys.argv[1])
