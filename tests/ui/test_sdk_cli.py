"""What an SDK user publishes (connector kinds, agents) is served by the `sovra` command in a new
process, mistakes are one line naming the culprit, and what a run did can be read in full (issue 26)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sovra.testing import ScriptedModel, call, say

SOVRA = [sys.executable, "-m", "sovra.ui.cli"]

PLUGIN = '''
import hashlib
import json
from pathlib import Path

from sovra.agents.sdk import define_agent
from sovra.documents import Document, Page
from sovra.tools.base import ToolContext, tool
from sovra.tools.search import SearchArgs, cited_passages, search_documents


class JsonNotes:
    """One JSON note per vendor: {"vendor", "text", "readers"}."""

    def __init__(self, folder: str, name: str = "json-notes") -> None:
        self.folder, self.name = Path(folder), name

    def documents(self):
        for p in sorted(self.folder.glob("*.json")):
            note = json.loads(p.read_text())
            yield Document(
                f"{self.name}:{p.stem}", note["vendor"], self.name, p.resolve().as_uri(),
                hashlib.sha256(p.read_bytes()).hexdigest(), frozenset(note["readers"]),
                lambda t=note["text"]: [Page(1, t)], metadata={"vendor": note["vendor"]}, doc_type="vendor_note",
            )


class Dicts(JsonNotes):
    def documents(self):
        yield {"id": "one", "text": "a dict is not a Document"}


@tool
def notes(question: str, ctx: ToolContext) -> list[str]:
    """Search the vendor notes; returns numbered passages to cite."""
    return cited_passages(search_documents(SearchArgs(query=question, limit=2, doc_types=["vendor_note"]), ctx), ctx)


notes_agent = define_agent("notes_agent", "Answers from the vendor notes.", tools=[notes], needs_index=True)
'''

USERS = {
    "bob": {"name": "Bob", "groups": ["employees", "finance"]},
    "alice": {"name": "Alice", "groups": ["employees"]},
}
NOTE = {
    "vendor": "Nimbus Cloud",
    "text": "Its SOC 2 report is issued by Keller & Partner.",
    "readers": ["group:finance"],
}


@pytest.fixture
def setup(tmp_path: Path, model_cache: Path) -> tuple[Path, dict[str, str]]:
    """A data dir, a folder of JSON notes and a package publishing the json_notes kind, as pip leaves it."""
    site = tmp_path / "site"
    (site / "notes_plugin-1.0.dist-info").mkdir(parents=True)
    (site / "notes_plugin.py").write_text(PLUGIN)
    (site / "notes_plugin-1.0.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: notes-plugin\nVersion: 1.0\n"
    )
    (site / "notes_plugin-1.0.dist-info" / "entry_points.txt").write_text(
        "[sovra.connectors]\njson_notes = notes_plugin:JsonNotes\n"
    )
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "nimbus.json").write_text(json.dumps(NOTE))
    data = tmp_path / "data"
    data.mkdir()
    (data / "users.json").write_text(json.dumps(USERS))
    model_cache.mkdir(parents=True, exist_ok=True)
    (data / "models").symlink_to(model_cache)
    env = {
        **os.environ,
        "PYTHONPATH": str(site),
        "SOVRA_DATA_DIR": str(data),
        "HF_HUB_OFFLINE": "1",
        "SOVRA_SOURCES": json.dumps({"notes": {"kind": "json_notes", "folder": str(notes)}}),
    }
    env.pop("SOVRA_DEBUG", None)
    return notes, env


def sovra(env: dict[str, str], *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*SOVRA, *args], capture_output=True, text=True, env={**env, **extra}, timeout=300)


def assert_one_line_error(p: subprocess.CompletedProcess[str], text: str) -> None:
    assert p.returncode != 0, (p.stdout, p.stderr)
    assert "Traceback" not in p.stdout + p.stderr
    lines = p.stderr.strip().splitlines()
    assert lines and lines[-2 if len(lines) > 1 and "hint" in lines[-1] else -1].startswith("error: ")
    assert text in p.stderr, p.stderr


def test_ingest_of_a_folder_without_a_file_it_can_parse_says_so_and_registers_nothing(setup):
    notes, env = setup
    p = sovra(env, "ingest", str(notes))
    assert_one_line_error(p, "has no file Sovra can parse (1 .json); nothing was ingested or registered")
    assert "write a connector" in p.stderr
    sources = Path(env["SOVRA_DATA_DIR"]) / "sources.json"
    assert not sources.exists() or "notes" not in json.loads(sources.read_text())


def test_sync_runs_a_published_connector_kind_and_refuses_one_that_yields_no_documents(setup):
    notes, env = setup
    p = sovra(env, "sync", "notes")
    assert p.returncode == 0, p.stderr
    assert "notes: 1 added" in p.stdout and "0 failed" in p.stdout
    # The same connector under the settings' [connectors] table, and a clash with a built-in kind.
    table = {"notes2": {"kind": "json_notes_cfg", "folder": str(notes)}}
    p = sovra(
        env,
        "sync",
        "notes2",
        SOVRA_SOURCES=json.dumps(table),
        SOVRA_CONNECTORS='{"json_notes_cfg": "notes_plugin:JsonNotes"}',
    )
    assert p.returncode == 0, p.stderr
    assert "notes2: 1 added" in p.stdout
    p = sovra(env, "sync", "notes", SOVRA_CONNECTORS='{"filesystem": "notes_plugin:JsonNotes"}')
    assert_one_line_error(
        p, "connector kind 'filesystem' of the [connectors] setting (notes_plugin:JsonNotes) is taken"
    )
    p = sovra(env, "sync", "notes3", SOVRA_SOURCES=json.dumps({"notes3": {"kind": "nope", "folder": "x"}}))
    assert_one_line_error(p, "unknown connector kind 'nope'")
    # A connector whose documents() yields a dict: one line naming the connector and what it yielded.
    bad = {"bad": {"kind": "dicts", "folder": str(notes)}}
    p = sovra(env, "sync", "bad", SOVRA_SOURCES=json.dumps(bad), SOVRA_CONNECTORS='{"dicts": "notes_plugin:Dicts"}')
    assert_one_line_error(p, "connector 'bad' (Dicts): documents() yielded a dict, not a sovra.documents.Document")
    assert "yield Document(" in p.stderr and "again to resume" not in p.stderr  # what to fix, not "retry"


def test_a_configured_agent_answers_from_the_synced_notes_and_audit_show_json_has_every_record_in_full(setup):
    _, env = setup
    assert sovra(env, "sync", "notes").returncode == 0
    long_answer = "Keller & Partner issues the SOC 2 report of Nimbus Cloud [1]. " + "It was renewed in March. " * 12
    with ScriptedModel([call("notes", question="Nimbus Cloud SOC 2"), say(long_answer)]) as model:
        agent_env = {
            "SOVRA_AGENTS": '{"notes_agent": "notes_plugin:notes_agent"}',
            "SOVRA_LLM_BASE_URL": model.base_url,
            "SOVRA_LLM_MODEL": "sovra-scripted",
        }
        q = "Who issues the SOC 2 report of Nimbus Cloud?"
        p = sovra(env, "ask", q, "--as", "bob", "--agent", "notes_agent", "--json", **agent_env)
    assert p.returncode == 0, p.stderr
    answer = json.loads(p.stdout)
    assert answer["status"] == "answered" and "Keller & Partner" in answer["answer"]
    assert answer["citations"][0]["title"] == "Nimbus Cloud" and "Keller & Partner" in answer["citations"][0]["quote"]
    shown = sovra(env, "audit", "show", answer["run_id"], "--json")
    assert shown.returncode == 0, shown.stderr
    records = json.loads(shown.stdout)
    assert records[0]["kind"] == "run.start" and records[-1]["kind"] == "run.end"
    assert all(r["run_id"] == answer["run_id"] and len(r["hash"]) == 64 for r in records)
    outputs = [json.dumps(r["data"]) for r in records if r["kind"] == "model.call"]
    assert any(json.dumps(long_answer)[1:-1] in o for o in outputs)  # in full: the text view shortens it
    text = sovra(env, "audit", "show", answer["run_id"])
    assert text.returncode == 0 and long_answer not in text.stdout


@pytest.mark.llm
@pytest.mark.slow
def test_a_configured_agent_answers_on_the_bundled_model(setup):
    # docs/sdk.md, sections 1 and 6: sovra sync notes; sovra ask "..." --as bob --agent NAME (no served model)
    _, env = setup
    assert sovra(env, "sync", "notes").returncode == 0
    agent_env = {"SOVRA_AGENTS": '{"notes_agent": "notes_plugin:notes_agent"}'}
    for name in ("SOVRA_LLM_BASE_URL", "SOVRA_LLM_MODEL"):
        env.pop(name, None)  # the bundled model, as a user who just installed Sovra has it
    q = "Who issues the SOC 2 report of Nimbus Cloud?"
    p = sovra(env, "ask", q, "--as", "bob", "--agent", "notes_agent", "--json", **agent_env)
    assert p.returncode == 0, p.stderr
    answer = json.loads(p.stdout)
    assert answer["status"] in ("answered", "extracted") and "Keller & Partner" in answer["answer"], answer
    assert answer["citations"] and answer["citations"][0]["title"] == "Nimbus Cloud"
    # alice is not in finance: the note is not hers, so nothing is found and nothing is quoted
    p = sovra(env, "ask", q, "--as", "alice", "--agent", "notes_agent", "--json", **agent_env)
    assert p.returncode == 0, p.stderr
    answer = json.loads(p.stdout)
    assert answer["status"] == "not_found" and "Keller" not in p.stdout, answer
