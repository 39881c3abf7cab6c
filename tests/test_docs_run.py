"""Every `sovra` command in the README and docs/ runs (issue 19): test_docs.py parses them all; this
runs each one for real on a private copy of the demo data dir, with the bundled model, so none goes
stale. Placeholders are filled with what the commands before them made (RUN_ID is the run an `ask`
recorded, `./my-folder` a folder with one note, `<hex-key>` the key the bundle was signed with).

How each documented command runs is declared below, by its command words; a documented command
that none of the tables covers fails `test_every_documented_command_is_run`, so a new command in the
docs needs a way to run here. Servers (`serve`, `ui`, `mcp`, `slack`, `teams`) are started as the
docs say, probed until they answer, and stopped. Benchmarks run at the smallest size their options
allow (the sizes are the only words added); the ones that need the real dev sets (`bench docs`,
`bench contracts`) run when `../shared/eval-data` (or SOVRA_EVAL_DATA) is there."""

from __future__ import annotations

import datetime
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import private_demo_settings
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from fakes.slack_api import FakeSlack
from fakes.vllm_server import FakeVLLM, Reply
from test_docs import DocCommand, all_commands

from sovra.config import Settings

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
SOVRA = str(Path(sys.executable).with_name("sovra"))
EVAL_DATA = Path(os.environ.get("SOVRA_EVAL_DATA") or ROOT.parent / "shared" / "eval-data")

# Long-running faces: started with the documented words, then probed on this path until it answers.
SERVERS: dict[tuple[str, ...], str] = {
    ("serve",): "/ready",
    ("ui",): "/_stcore/health",
    ("mcp",): "/mcp",  # streamable HTTP answers 401 to a caller without a token; stdio: see serve()
    ("slack",): "/health",
    ("teams",): "/health",
}
# Words added to a benchmark so that it runs in seconds, not minutes: sizes only.
SMALL: dict[tuple[str, ...], list[str]] = {
    ("bench", "retrieval"): ["--sizes", "300", "--queries", "3", "--warmup", "1", "--ingest-chunks", "0"],
    ("bench", "parse"): ["--synthetic-pages", "3", "--rounds", "1"],
    ("bench", "gateway"): ["--calls", "10"],
    ("bench", "api"): ["--clients", "1", "--stub-requests", "1", "--model-requests", "0"],
    ("eval", "--suite", "demo"): ["--retrieval-only"],
}
NEEDS_EVAL_DATA = {("bench", "docs"), ("bench", "contracts")}
# Documented for production (their line sets SOVRA_QDRANT_URL): on the embedded default they must
# refuse in one line that says what they need.
REFUSED_EMBEDDED = {("serve", "--host", "0.0.0.0", "--workers", "4"): "--workers 4 needs a Qdrant server"}


def _cuad_subset(src: Path, dest: Path, queries: int = 12) -> None:
    """The contracts the first queries of cuad-dev ask about, whole, with those queries: the same
    BEIR files `sovra bench docs` reads, small enough to ingest in seconds."""
    lines = (src / "queries.jsonl").read_text().splitlines()[:queries]
    kept = [json.loads(line) for line in lines]
    contracts = {q["metadata"]["contract"] for q in kept}
    ids = {q["_id"] for q in kept}
    (dest / "qrels").mkdir(parents=True)
    (dest / "queries.jsonl").write_text("\n".join(lines) + "\n")
    corpus = [
        line
        for line in (src / "corpus.jsonl").read_text().splitlines()
        if json.loads(line)["_id"].split("-")[0] in contracts
    ]
    (dest / "corpus.jsonl").write_text("\n".join(corpus) + "\n")
    qrels = (src / "qrels" / "test.tsv").read_text().splitlines()
    (dest / "qrels" / "test.tsv").write_text(
        "\n".join([qrels[0], *(r for r in qrels[1:] if r.split("\t")[0] in ids)]) + "\n"
    )


def _key(args: tuple[str, ...], table: dict[tuple[str, ...], object] | set[tuple[str, ...]]) -> tuple[str, ...] | None:
    for n in range(len(args), 0, -1):
        if args[:n] in table:
            return args[:n]
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Workspace:
    """One private demo data dir, a working folder, and what earlier commands produced."""

    def __init__(self, settings: Settings, cwd: Path) -> None:
        self.data = settings.data_dir
        self.cwd = cwd
        self.values: dict[str, str] = {}
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("SOVRA_")} | {
            "SOVRA_DATA_DIR": str(self.data),
            "HF_HUB_OFFLINE": "1",
            "PYTHONPATH": str(cwd),
            # `sovra mcp` over stdio takes the caller's token; the file maps it to alice.
            "SOVRA_API_TOKENS_FILE": str(cwd / "tokens.json"),
            "SOVRA_MCP_TOKEN": "docs-test-token-0123456789abcdef",
            # The SDK chapter's package: a connector kind and an agent published by configuration.
            "SOVRA_CONNECTORS": json.dumps({"json_notes": "my_package.notes:JsonNotes"}),
            "SOVRA_SOURCES": json.dumps(
                {
                    "notes": {"kind": "json_notes", "folder": str(cwd / "notes")},
                    # cli.md's `sovra sync policies`: "a source configured in sovra.toml".
                    "policies": {
                        "kind": "filesystem",
                        "root": str(cwd / "policies"),
                        "default_acl": ["group:employees"],
                    },
                }
            ),
            "SOVRA_AGENTS": json.dumps({"supplier_renewals": "my_package.renewals:renewals"}),
        }
        if EVAL_DATA.is_dir():
            self.env["SOVRA_EVAL_DATA"] = str(EVAL_DATA)
            _cuad_subset(EVAL_DATA / "cuad-dev", cwd / "eval-subset" / "cuad-dev")
        # The signing key of `audit export-bundle`; `verify-bundle --public-key <hex-key>` pins its half.
        secret = bytes(range(32))
        self.env["SOVRA_AUDIT_SIGNING_KEY"] = secret.hex()
        public = Ed25519PrivateKey.from_private_bytes(secret).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.values |= {"<hex-key>": public.hex(), "sovra-audit-RUN.zip": str(cwd / "run.zip")}
        # compliance.md exports "November": the runs here are today's, so the example month is today's.
        today = datetime.date.today()
        self.values |= {"2026-11-01": str(today.replace(day=1)), "2026-11-30": str(today + datetime.timedelta(days=1))}
        self._files()
        # `sovra translate` and the translate agent need a served `translation` route (no bundled
        # model translates): the vLLM fake at the HTTP boundary, answering each segment with itself.
        self.translator = FakeVLLM()
        self.translator.responder = lambda body: Reply(content=body["messages"][-1]["content"])
        (cwd / "routes.toml").write_text(
            '[routes.chat]\nmodel = "local"\n'
            f'[routes.translation]\nmodel = "{self.translator.base_model}"\n'
            f'base_url = "{self.translator.base_url}"\nmax_retries = 0\n'
        )
        self.translate_env = {"SOVRA_ROUTES_FILE": str(cwd / "routes.toml")}

    def _files(self) -> None:
        (self.cwd / "tokens.json").write_text(json.dumps({self.env["SOVRA_MCP_TOKEN"]: "alice"}))
        for folder in ("my-folder", "my-contracts", "other/contracts", "policies"):
            (self.cwd / folder).mkdir(parents=True)
            (self.cwd / folder / "note.md").write_text(
                "# Supplier note\n\nThe Nimbus Cloud contract renews on 1 March 2027 for twelve months.\n"
            )
        # translation.md's inputs: a contract, a prospectus and a bank glossary
        from docx import Document as Docx
        from fpdf import FPDF

        pdf = FPDF()
        pdf.set_font("Helvetica", size=11)
        pdf.add_page()
        pdf.multi_cell(0, 6, "The Lender grants the Borrower a loan of EUR 1,000,000.50 at 3.5% per annum.")
        pdf.output(str(self.cwd / "contract.pdf"))
        docx = Docx()
        docx.add_paragraph("The notes bear interest at 4.25% and mature on 15 March 2031.")
        docx.save(str(self.cwd / "prospectus.docx"))
        (self.cwd / "terms.csv").write_text("source,target\nrepo rate,taux de pension\n")
        (self.cwd / "notes").mkdir()
        (self.cwd / "notes" / "nimbus.json").write_text(
            json.dumps({"title": "Nimbus", "text": "Nimbus renews in March."})
        )
        pkg = self.cwd / "my_package"
        pkg.mkdir()
        (pkg / "__init__.py").write_text("")
        (pkg / "notes.py").write_text(
            "import hashlib, json\nfrom pathlib import Path\n"
            "from sovra.documents import Document, Page\n\n"
            "class JsonNotes:\n"
            "    def __init__(self, folder: str, name: str = 'notes') -> None:\n"
            "        self.folder, self.name = Path(folder), name\n\n"
            "    def documents(self):\n"
            "        for p in sorted(self.folder.glob('*.json')):\n"
            "            note = json.loads(p.read_text())\n"
            "            yield Document(f'{self.name}:{p.stem}', note['title'], self.name, p.resolve().as_uri(),\n"
            "                           hashlib.sha256(p.read_bytes()).hexdigest(), frozenset({'group:finance'}),\n"
            "                           lambda t=note['text']: [Page(1, t)])\n"
        )
        (pkg / "renewals.py").write_text(
            "from sovra.agents.sdk import define_agent\n\n"
            "renewals = define_agent('supplier_renewals', 'When supplier contracts renew.',\n"
            "                        tools=['search_documents'], needs_index=True)\n"
        )

    def fill(self, args: tuple[str, ...]) -> list[str]:
        out = []
        for word in args:
            for name, value in self.values.items():
                word = word.replace(name, value)
            out.append(word)
        return out

    def run(self, words: list[str], timeout: float = 600) -> subprocess.CompletedProcess[str]:
        env = self.env | (self.translate_env if "translate" in words else {})
        return subprocess.run([SOVRA, *words], cwd=self.cwd, env=env, capture_output=True, text=True, timeout=timeout)

    def serve(self, words: list[str], probe: str) -> str:
        """Start a face, wait until it answers on its port (or, for stdio, exits on EOF), stop it."""
        if "--transport" not in words and words[:1] == ["mcp"]:
            p = subprocess.run(
                [SOVRA, *words], cwd=self.cwd, env=self.env, input="", capture_output=True, text=True, timeout=120
            )
            assert p.returncode == 0, p.stderr[-2000:]
            return "exited on end of input"
        if "--port" in words:
            words[words.index("--port") + 1] = str(port := _free_port())
        else:
            words += ["--port", str(port := _free_port())]
        proc = subprocess.Popen(
            [SOVRA, *words], cwd=self.cwd, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        try:
            deadline = time.monotonic() + 240
            while time.monotonic() < deadline:
                if proc.poll() is not None:
                    pytest.fail(
                        f"sovra {shlex.join(words)} exited {proc.returncode}: {(proc.stderr.read() or '')[-2000:]}"
                    )
                try:
                    r = httpx.get(f"http://127.0.0.1:{port}{probe}", timeout=2)
                    if r.status_code == 200 or (probe == "/mcp" and r.status_code == 401):
                        return r.text[:200]
                except httpx.HTTPError:
                    pass
                time.sleep(0.5)
            pytest.fail(f"sovra {shlex.join(words)} did not answer on {probe} in 240 s")
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        raise AssertionError("unreachable")


# The order commands run in: what an earlier one records, a later one uses (RUN_ID, the bundle).
def _order(c: DocCommand) -> tuple[int, str]:
    a = c.args
    if a[:1] == ("ask",) and "followup" in a:
        return (1, str(c))  # leaves a run waiting for approval
    if a[:1] in {("ask",), ("ingest",), ("sync",), ("users",), ("doctor",), ("--help",)}:
        return (0, str(c))
    if a[:2] in {("audit", "export-bundle")}:
        return (2, str(c))
    if a[:2] == ("audit", "verify-bundle"):
        return (3, str(c))
    if a[:1] in {("approve",), ("runs",)}:
        return (4 if a[:2] != ("runs", "cancel") else 5, str(c))
    return (6, str(c))


def _unique() -> list[DocCommand]:
    seen: set[tuple[str, ...]] = set()
    out = []
    for c in sorted(all_commands(), key=_order):
        if c.args not in seen:
            seen.add(c.args)
            out.append(c)
    return out


def test_every_documented_command_is_run() -> None:
    # Every command either starts a face (SERVERS) or runs to its end (the rest); the run test
    # below has a case for every one of them, so this only guards the extraction.
    commands = _unique()
    assert len(commands) >= 40
    assert {c.args[:1] for c in commands} >= {("ask",), ("serve",), ("ui",), ("mcp",), ("bench",), ("eval",)}


@pytest.fixture(scope="module")
def ws(demo_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workspace]:
    settings = private_demo_settings(demo_settings, tmp_path_factory.mktemp("docs-run") / "data")
    ws = Workspace(settings, tmp_path_factory.mktemp("docs-cwd"))
    yield ws
    ws.translator.close()


def _record_run_ids(ws: Workspace, out: str) -> None:
    for run_id in re.findall(r"\b(?:run|Run)(?: id)?:?\s+([0-9a-f]{8,}[0-9a-f-]*)", out):
        ws.values.setdefault("RUN_ID", run_id)


def _pending_runs(ws: Workspace) -> list[str]:
    return re.findall(r"^([0-9a-f]{32})\s", ws.run(["runs", "pending"]).stdout, re.M)


@pytest.mark.parametrize("command", _unique(), ids=str)
def test_documented_command_runs(command: DocCommand, ws: Workspace) -> None:
    args = command.args
    if args in REFUSED_EMBEDDED:
        p = ws.run(list(args))
        assert p.returncode == 1 and REFUSED_EMBEDDED[args] in p.stderr and len(p.stderr.splitlines()) == 1, p.stderr
        return
    if (server := _key(args, SERVERS)) is not None:
        if server == ("slack",):
            if "--socket-mode" in args:
                pytest.skip("Socket Mode connects out to Slack's cloud (tests/ui/test_slack_bot.py builds its handler)")
            slack = FakeSlack()  # Slack's Web API at the HTTP boundary: the bot checks its token at start
            ws.env |= {
                "SOVRA_SLACK_BOT_TOKEN": slack.token,
                "SOVRA_SLACK_SIGNING_SECRET": "docs-test-secret",
                "SOVRA_SLACK_API_URL": slack.base_url,
            }
            try:
                ws.serve(ws.fill(args), SERVERS[server])
            finally:
                slack.close()
            return
        if server == ("teams",):
            ws.env |= {"SOVRA_TEAMS_APP_ID": "docs-test-app", "SOVRA_TEAMS_APP_PASSWORD": "docs-test-secret"}
        if server == ("ui",) and "--dev-login" not in args:
            ws.env |= {"SOVRA_UI_DEV_LOGIN": "false"}
        ws.serve(ws.fill(args), SERVERS[server])
        return
    if (need := _key(args, NEEDS_EVAL_DATA)) is not None and not EVAL_DATA.is_dir():
        pytest.skip(f"sovra {' '.join(need)} reads the dev sets in {EVAL_DATA}, not on this machine")
    if any("RUN_ID" in a or a.startswith("OUT_") for a in args):
        _fill_late(ws, args)
    words = ws.fill(args)
    small = _key(args, SMALL)
    words += SMALL.get(small, []) if small else []
    if args[:2] == ("bench", "docs"):  # the real cuad-dev files, a dozen contracts of them
        words += ["--data", str(ws.cwd / "eval-subset"), "--sets", "cuad-dev"]
    if args[:2] == ("bench", "api"):
        words += ["--out", str(ws.cwd / "bench-api.json")]
    p = ws.run(words)
    assert p.returncode == 0, f"{command} exited {p.returncode}:\n{p.stdout[-2000:]}\n{p.stderr[-2000:]}"
    _record_run_ids(ws, p.stdout + p.stderr)


def _fill_late(ws: Workspace, args: tuple[str, ...]) -> None:
    """RUN_ID for approve/cancel is a run waiting for approval; for the rest, any recorded run."""
    if args[:1] == ("approve",) or args[:2] == ("runs", "cancel"):
        pending = _pending_runs(ws)
        if not pending:  # the follow-up agent leaves one waiting; ask it again for a second
            ws.run(["ask", "Acme was paid twice in March (8,500); open a case", "--agent", "followup", "--as", "bob"])
            pending = _pending_runs(ws)
        assert pending, "no run waits for approval"
        ws.values["RUN_ID"] = pending[0]
        return
    if "RUN_ID" not in ws.values:
        p = ws.run(["ask", "What is the hotel limit per night in London?", "--as", "alice"])
        _record_run_ids(ws, p.stdout + p.stderr)
    if any("OUT_" in a for a in args):
        for name in ("OUT_A", "OUT_B"):
            out = ws.cwd / name.lower()
            if not out.exists():
                r = ws.run(["eval", "--suite", "demo", "--retrieval-only", "--out", str(out)])
                assert r.returncode == 0, r.stderr[-2000:]
            ws.values[name] = str(out)
