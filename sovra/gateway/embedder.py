"""Dense embeddings from an ``embedding`` route (a vLLM or TEI server), sparse BM25 in process.

When the routes file configures a route named ``embedding`` (``kind = "embedding"``), ingestion
and search embed through the gateway, so those calls get the same allow-list, retries, breaker,
concurrency limit and spans as chat calls. The sparse side stays fastembed's BM25 on this machine:
it is a tokenizer and a hash, not a model worth a network hop, and Qdrant supplies its IDF.

The model id written into the index is ``openai-compatible/<model>`` (the server's URL is left
out: moving to another replica must not invalidate the index), so an index built with the bundled
MiniLM refuses to be searched with a served model and vice versa.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sovra.embeddings import Bm25Sparse
from sovra.errors import ConfigError, ModelOutputError
from sovra.routes import RoutesConfig

if TYPE_CHECKING:
    from fastembed import SparseTextEmbedding

    from sovra.config import Settings
    from sovra.gateway.client import ModelGateway

EMBEDDING_ROUTE = "embedding"
MODEL_ID_PREFIX = "openai-compatible/"


class GatewayEmbedder(Bm25Sparse):
    """The ``Embeds`` interface of :class:`sovra.embeddings.Embedder`, dense vectors from a server."""

    def __init__(
        self, gateway: ModelGateway, cache_dir: Path, *, route: str = EMBEDDING_ROUTE, batch_size: int = 64
    ) -> None:
        name, cfg = gateway.routes.route(route)
        if name != route or cfg.kind != "embedding":
            raise ConfigError(
                f"the routes file has no embedding route named {route!r}",
                hint=f'add [routes.{route}] with kind = "embedding", model and base_url',
            )
        self._gateway = gateway
        self.route = route
        self.model = cfg.model
        self.batch_size = batch_size
        self.cache_dir = cache_dir
        self._configured_dim = cfg.dimensions
        self._lock = threading.Lock()
        self._sparse: SparseTextEmbedding | None = None

    @property
    def model_id(self) -> str:
        return f"{MODEL_ID_PREFIX}{self.model}"

    @cached_property
    def dim(self) -> int:
        """The route's ``dimensions`` if set, else asked of the server once (one short request)."""
        if self._configured_dim is not None:
            return self._configured_dim
        return len(self._embed(["dimension probe"], check=False)[0])

    # Dense

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        out: list[list[float]] = []
        items = list(texts)
        for i in range(0, len(items), self.batch_size):
            out.extend(self._embed(items[i : i + self.batch_size]))
        return out

    def embed_query(self, text: str) -> list[float]:
        return self._embed([text])[0]

    def _embed(self, texts: list[str], *, check: bool = True) -> list[list[float]]:
        if not texts:
            return []
        vectors, _call = self._gateway.embed(texts, route=self.route)
        if len(vectors) != len(texts):
            raise ModelOutputError(
                f"embedding model {self.model!r} returned {len(vectors)} vectors for {len(texts)} texts",
                hint="check the embedding server; it may be truncating batches",
            )
        if check:
            bad = next((len(v) for v in vectors if len(v) != self.dim), None)
            if bad is not None:
                raise ModelOutputError(
                    f"embedding model {self.model!r} returned {bad}-dimensional vectors; the index expects {self.dim}",
                    hint="set the route's dimensions to what the model produces, and rebuild the index",
                )
        return vectors


def embedding_route(settings: Settings) -> RoutesConfig | None:
    """The routes config when its routes file has an ``embedding`` route, else ``None``."""
    routes_file = getattr(settings, "routes_file", None)
    if not routes_file:
        return None
    routes = RoutesConfig.load(routes_file)
    route = routes.routes.get(EMBEDDING_ROUTE)
    return routes if route is not None and route.kind == "embedding" else None


def gateway_embedder(settings: Settings, gateway: Callable[[], Any]) -> GatewayEmbedder | None:
    """A ``GatewayEmbedder`` on ``gateway()`` when the routes file configures an embedding route."""
    if embedding_route(settings) is None:
        return None
    return GatewayEmbedder(gateway(), settings.paths.models, batch_size=settings.embed_batch_size)
