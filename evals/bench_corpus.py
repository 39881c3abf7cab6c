"""Seeded synthetic chunks for the retrieval benchmark: banking-ish text, ACLs, clustered vectors.

Sparse vectors are real (the embedder's BM25 over the generated text); dense vectors are random
unit vectors around cluster centres, since embedding 100k chunks with MiniLM on 2 cores takes hours.
A batch depends only on its start offset, so a 10k shard holds the first 10k points of a 100k one.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np

from sovra.documents import Chunk
from sovra.embeddings import Embedder
from sovra.index import DocInfo, IndexPoint, Sparse

DIM = 384  # all-MiniLM-L6-v2
CHUNKS_PER_DOC = 5
N_GROUPS = 20
EVERYONE = "group:everyone"
GROUPS = tuple(f"group:desk-{i:02d}" for i in range(N_GROUPS))


# -- synthetic banking text --------------------------------------------------------------------

_NAMES = ("Acme", "Borealis", "Cobalt", "Dunmore", "Everest", "Fairholm", "Granite", "Harbour", "Ionic",
          "Juniper", "Kestrel", "Lumen", "Meridian", "Northgate", "Orchard", "Pinnacle", "Quarry",
          "Redwood", "Sterling", "Tidewater", "Union", "Vantage", "Westbrook", "Yardley", "Zenith")  # fmt: skip
_SUFFIXES = ("Holdings", "Logistics", "Energy", "Retail", "Shipping", "Foods", "Capital", "Systems",
             "Pharma", "Textiles", "Mining", "Telecom", "Leasing", "Insurance", "Partners", "Foundry")  # fmt: skip
_PRODUCTS = ("term loan", "revolving credit facility", "trade finance line", "letter of credit",
             "mortgage", "bridge loan", "overdraft", "syndicated loan", "bank guarantee",
             "receivables financing", "equipment lease", "interest rate swap", "FX forward",
             "custody mandate", "cash pooling agreement", "supply chain finance programme")  # fmt: skip
_BENCHMARKS = ("SOFR", "SONIA", "EURIBOR", "ESTR", "base rate", "SARON", "TONA")
_CURRENCIES = ("EUR", "USD", "GBP", "CHF", "JPY", "SEK")
_DEPTS = ("credit risk", "treasury", "compliance", "internal audit", "operations", "legal",
          "procurement", "finance", "market risk", "retail banking", "corporate banking", "AML")  # fmt: skip
_TEMPLATES = (
    "{c} shall repay the {p} of {cur} {amt} million in {n} equal instalments ending on {d}.",
    "Interest on the {p} accrues at {b} plus a margin of {bps} basis points, payable quarterly.",
    "The {dep} team reviewed the {p} for {c} and noted {n} exceptions to the covenant package.",
    "{c} must keep its leverage ratio below {r} and its interest cover above {r2} at each test date.",
    "An event of default occurs if {c} fails to pay any amount under the {p} within {n} business days.",
    "Collateral for the {p} consists of receivables and inventory valued at {cur} {amt} million.",
    "The {dep} policy caps single-name exposure to {c} at {pct} percent of eligible capital.",
    "Know-your-customer checks on {c} were refreshed on {d}; the risk rating is {risk}.",
    "Early termination of the {p} by {c} triggers a break fee of {bps} basis points on the amount repaid.",
    "Transactions above {cur} {amt} thousand require approval by two officers of the {dep} function.",
    "The hotel limit for staff travelling to {city} is {cur} {amt} per night, breakfast included.",
    "Suspicious activity involving {c} must be escalated to the {dep} officer within {n} hours.",
    "The {p} was amended on {d} to move the benchmark from LIBOR to {b} with a credit adjustment spread.",
    "Quarterly reporting by {c} includes audited accounts, a compliance certificate and a cash flow forecast.",
    "Fees for the {p} comprise an arrangement fee of {pct} percent and a commitment fee on undrawn amounts.",
    "The {dep} department reconciles the nostro accounts daily and reports breaks above {cur} {amt}.",
)
_CITIES = ("London", "Frankfurt", "Paris", "Zurich", "New York", "Singapore", "Tokyo", "Madrid", "Milan")
_RISKS = ("low", "medium", "high", "enhanced due diligence")
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
           "October", "November", "December")  # fmt: skip


def _sentence(rng: random.Random, company: str) -> str:
    return rng.choice(_TEMPLATES).format(
        c=company, p=rng.choice(_PRODUCTS), b=rng.choice(_BENCHMARKS), cur=rng.choice(_CURRENCIES),
        amt=rng.randint(1, 950), n=rng.randint(2, 40), bps=rng.randint(25, 450), dep=rng.choice(_DEPTS),
        r=f"{rng.uniform(1.5, 5.0):.2f}", r2=f"{rng.uniform(1.5, 6.0):.2f}", pct=rng.randint(1, 25),
        d=f"{rng.randint(1, 28)} {rng.choice(_MONTHS)} {rng.randint(2019, 2031)}",
        risk=rng.choice(_RISKS), city=rng.choice(_CITIES),
    )  # fmt: skip


def banking_text(rng: random.Random, chars: int) -> str:
    """Sentences about one counterparty until ``chars`` characters are reached."""
    company = f"{rng.choice(_NAMES)} {rng.choice(_SUFFIXES)}"
    out: list[str] = []
    while sum(len(s) + 1 for s in out) < chars:
        out.append(_sentence(rng, company))
    return " ".join(out)


def query_words(rng: random.Random, text: str, n: int) -> str:
    """A keyword query drawn from a chunk's own words, as a user quoting a clause would type."""
    words = [w.strip(".,;") for w in text.split() if len(w.strip(".,;")) > 3]
    return " ".join(rng.sample(words, min(n, len(words))))


def doc_acl(doc_no: int, seed: int) -> frozenset[str]:
    r = random.Random(seed * 1_000_003 + doc_no).random()
    return frozenset({EVERYONE}) if r < 0.8 else frozenset({GROUPS[int((r - 0.8) / 0.2 * N_GROUPS)]})


# -- synthetic points --------------------------------------------------------------------------


@dataclass
class Query:
    text: str
    dense: list[float]
    sparse: Sparse


class Corpus:
    """Seeded chunks, generated batch by batch so 100k never sit in Python memory at once."""

    def __init__(self, embedder: Embedder, seed: int, chunk_chars: int = 700, clusters: int = 256) -> None:
        self.embedder = embedder
        self.seed = seed
        self.chunk_chars = chunk_chars
        rng = np.random.default_rng(seed)
        centres = rng.standard_normal((clusters, DIM)).astype(np.float32)
        self.centres = centres / np.linalg.norm(centres, axis=1, keepdims=True)

    def _vectors(self, rng: np.random.Generator, n: int) -> np.ndarray:
        # sigma 0.05 per coordinate puts a point at cosine ~0.7 from its centre, like topic clusters.
        v = self.centres[rng.integers(0, len(self.centres), n)] + rng.normal(0, 0.05, (n, DIM)).astype(np.float32)
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    def batch(self, start: int, n: int) -> tuple[list[IndexPoint], list[str]]:
        """Points ``start .. start+n``; a batch's content depends only on its start, not on the size."""
        rng = random.Random(self.seed * 7919 + start)
        texts = [banking_text(rng, self.chunk_chars) for _ in range(n)]
        dense = self._vectors(np.random.default_rng([self.seed, start]), n)
        sparse = self.embedder.sparse_documents(texts)
        points = []
        for i, (text, vec, sp) in enumerate(zip(texts, dense.tolist(), sparse, strict=True)):
            no = start + i
            doc_no = no // CHUNKS_PER_DOC
            chunk = Chunk(f"bench:doc-{doc_no:06d}", no % CHUNKS_PER_DOC, 1, 0, len(text), text)
            doc = DocInfo(
                doc_id=chunk.doc_id, title=f"Synthetic file {doc_no}", url=f"file:///bench/{doc_no}.txt",
                source="bench", doc_type="file", version="1", acl=doc_acl(doc_no, self.seed),
            )  # fmt: skip
            points.append(IndexPoint(chunk, doc, vec, Sparse(list(sp.indices), list(sp.values))))
        return points, texts

    def queries(self, points_by_no: dict[int, IndexPoint], seed: int) -> list[Query]:
        rng = random.Random(seed)
        nrng = np.random.default_rng(seed)
        out = []
        for no in sorted(points_by_no):
            p = points_by_no[no]
            v = np.asarray(p.dense, dtype=np.float32) + nrng.normal(0, 0.03, DIM).astype(np.float32)
            text = query_words(rng, p.chunk.text, rng.randint(3, 6))
            sp = self.embedder.sparse_query(text)
            out.append(Query(text, (v / np.linalg.norm(v)).tolist(), Sparse(list(sp.indices), list(sp.values))))
        rng.shuffle(out)
        return out
