"""Settings: derived paths follow the data dir, secrets stay out of reprs."""

from __future__ import annotations

from pathlib import Path

from sovra.config import Settings


def test_a_copy_with_another_data_dir_uses_that_dirs_files(tmp_path: Path) -> None:
    a = Settings(data_dir=tmp_path / "a")
    assert a.paths.qdrant == tmp_path / "a" / "qdrant"  # touched first: a cache would keep it
    b = a.model_copy(update={"data_dir": tmp_path / "b"})
    assert b.paths.qdrant == tmp_path / "b" / "qdrant"
    assert b.paths.audit_db.parent == b.resolved_users_file.parent == tmp_path / "b"
    assert a.paths.root == tmp_path / "a"


def test_secrets_are_masked_in_repr(tmp_path: Path) -> None:
    s = Settings(data_dir=tmp_path, llm_api_key="sk-very-secret")
    assert "sk-very-secret" not in repr(s) and "sk-very-secret" not in str(s)
