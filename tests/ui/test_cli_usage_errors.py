"""Usage errors from the CLI are one line with a hint and exit 2 (issue 19): an unknown agent, a
missing file, a bad option value, an unknown option or command, a missing option."""

from __future__ import annotations

from pathlib import Path

import pytest

from sovra.ui.cli import main

CASES = {
    "unknown agent": (
        ["ask", "What is the hotel limit?", "--as", "alice", "--agent", "nosuch"],
        "unknown agent 'nosuch'",
    ),
    "missing file": (["ingest", "{tmp}/no-such-folder"], "no-such-folder does not exist"),
    "bad option value": (["serve", "--port", "eighty"], "Invalid value for '--port'"),
    "bad choice": (["audit", "export", "RUN", "--format", "pdf"], "unknown format 'pdf'"),
    "unknown option": (["ask", "q", "--as", "alice", "--colour", "red"], "No such option: --colour"),
    "unknown command": (["asx", "q"], "No such command 'asx'"),
    "missing option": (["ask", "q"], "Missing option '--as'"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_usage_error_is_one_line_with_a_hint(
    case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    args, text = CASES[case]
    monkeypatch.setenv("SOVRA_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("SOVRA_DEBUG", raising=False)
    with pytest.raises(SystemExit) as exc:
        main([a.replace("{tmp}", str(tmp_path)) for a in args])
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert exc.value.code == 2, captured
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("error: ") and text in lines[0] and "(hint: " in lines[0], lines[0]
    assert "Traceback" not in captured.err + captured.out
