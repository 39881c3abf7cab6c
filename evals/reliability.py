"""`make reliability`: run every reliability and security suite and print what was tried and what held.

Each suite is a set of pytest files (slow tests included). The runner calls pytest once per suite
with a JUnit XML report, then prints one table row per suite: how many checks were tried, how many
held, failed or were skipped (with the skip reasons), and how long it took. The exit status is
non-zero when any check failed, so CI can run it as is.

    python -m sovra.evals.reliability [--suite NAME ...] [--markdown report.md]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Suite:
    name: str
    tried: str  # what the suite attacks, in one line, for the table
    paths: tuple[str, ...]


SUITES: tuple[Suite, ...] = (
    Suite(
        "acl-leakage",
        "generated users x groups x adversarial queries through retrieval, agents, API, bots, audit views",
        (
            "tests/reliability/test_rel_acl_leakage.py",
            "tests/reliability/test_rel_acl_interfaces.py",
            "tests/core/test_index.py::test_acl_filter_hides_restricted_chunks_even_for_verbatim_quotes",
            "tests/core/test_index.py::test_set_acl_makes_a_document_private",
        ),
    ),
    Suite(
        "answer-sharing",
        "answers quoting restricted sources in shared Slack channels / Teams chats (guests, paged rosters, "
        "unlistable members); approvers who may not read the owner's sources; SharePoint principals in Graph's "
        "real shapes (GUIDs, site groups, everyone-except-external, org links); CLI usage errors",
        (
            "tests/ui/test_slack_bot.py::test_an_answer_a_guest_may_not_read_goes_to_the_asker_alone",
            "tests/ui/test_slack_bot.py::test_a_member_without_the_policy_group_keeps_the_answer_out_of_the_channel",
            "tests/ui/test_slack_bot.py::test_every_page_of_members_is_checked",
            "tests/ui/test_slack_bot.py::test_a_channel_whose_members_cannot_be_listed_gets_no_sources",
            "tests/ui/test_slack_bot.py::test_an_approver_approves_with_the_button",
            "tests/ui/test_teams_bot.py::test_an_answer_a_guest_may_not_read_goes_to_the_asker_alone",
            "tests/ui/test_teams_bot.py::test_every_page_of_the_roster_is_checked",
            "tests/ui/test_teams_bot.py::test_a_conversation_whose_roster_cannot_be_read_gets_no_sources",
            "tests/ui/test_teams_bot.py::test_an_approver_approves_from_the_card",
            "tests/ui/test_api_runs.py::test_an_approver_approves_and_the_run_finishes",
            "tests/ui/test_approve_cli_sharing.py",
            "tests/ui/test_cli.py::test_usage_errors_are_one_line_not_a_bug",
            "tests/connectors/test_sharepoint_graph.py::"
            "test_entra_ids_site_groups_and_everyone_except_external_users_map_to_principals",
            "tests/connectors/test_sharepoint_graph.py::test_the_export_connector_reads_the_same_permissions_the_same_way",
        ),
    ),
    Suite(
        "prompt-injection",
        "documents carrying instructions, tool-call bait, exfiltration links, prompt-reveal requests",
        ("tests/reliability/test_rel_injection.py", "tests/core/test_guard.py"),
    ),
    Suite(
        "fuzzing",
        "hypothesis over parsers (PDF/DOCX/HTML/MD/XLSX/CSV bytes) and every API input",
        ("tests/reliability/test_rel_fuzz.py",),
    ),
    Suite(
        "crash-restart",
        "kill -9 during ingestion, agent runs and audit writes (1 and 3 writers), then restart",
        ("tests/reliability/test_rel_crash.py", "tests/reliability/test_rel_crash_agent.py"),
    ),
    Suite(
        "dependency-faults",
        "Qdrant unreachable; model server down, hanging, garbage, 500s; PostgreSQL restarted mid-run",
        ("tests/reliability/test_rel_faults.py",),
    ),
    Suite(
        "load",
        "concurrent users on the HTTP API: throughput, p95, errors, memory growth",
        ("tests/reliability/test_rel_load.py",),
    ),
    Suite(
        "secrets-supply-chain",
        "planted credentials vs logs/audit/checkpoints/errors; lock files pin every dependency",
        ("tests/reliability/test_rel_secrets.py",),
    ),
    Suite(
        "connector-containment",
        "file symlinks and linked sidecars out of an ingested folder (the API tokens file); sidecars widening ACLs",
        (
            "tests/reliability/test_rel_containment.py::test_a_file_symlink_out_of_the_folder_is_skipped_and_reported",
            "tests/reliability/test_rel_containment.py::test_a_sidecar_cannot_widen_what_the_connector_allows_nor_rewrite_its_path",
            "tests/reliability/test_rel_containment.py::test_a_directory_symlink_out_of_the_folder_is_never_read",
            "tests/connectors/test_connectors.py",
        ),
    ),
    Suite(
        "per-item-sync",
        "non-UTF-8 file names, lone surrogates in sidecars and API bodies; deletions/ACL changes still apply",
        (
            "tests/reliability/test_rel_containment.py::test_one_bad_name_or_field_never_stops_a_sync_deletions_and_acl_changes_apply",
            "tests/reliability/test_rel_containment.py::test_a_chunk_that_cannot_be_embedded_fails_alone",
            "tests/reliability/test_rel_revocation.py::test_a_question_with_a_lone_surrogate_is_a_client_error_or_answered_never_a_500",
        ),
    ),
    Suite(
        "source-names",
        "a folder with the name of another source; two SharePoint exports with the same item ids",
        (
            "tests/reliability/test_rel_containment.py::test_a_folder_name_never_takes_over_another_source",
            "tests/reliability/test_rel_containment.py::test_sharepoint_export_ids_include_their_source",
        ),
    ),
    Suite(
        "revocation",
        "a token removed from the tokens file, a user or group removed from users.json, without restart",
        (
            "tests/reliability/test_rel_revocation.py::test_a_removed_token_group_or_user_stops_working_without_a_restart",
            "tests/reliability/test_rel_revocation.py::test_a_broken_tokens_file_refuses_static_tokens_rather_than_keeping_old_ones",
            "tests/reliability/test_rel_revocation.py::test_directory_from_file_rereads_on_change",
            "tests/reliability/test_rel_revocation.py::test_bot_chat_identities_are_reread_on_change",
        ),
    ),
    Suite(
        "closed-defaults",
        "dev login without opting in or on a public bind; full audit verification by non-auditors, in parallel",
        (
            "tests/ui/test_streamlit_app.py::test_dev_login_is_off_unless_enabled",
            "tests/ui/test_streamlit_app.py::test_dev_login_is_refused_off_loopback",
            "tests/ui/test_streamlit_app.py::test_sovra_ui_refuses_the_dev_login_on_a_public_address",
            "tests/reliability/test_rel_revocation.py::test_full_chain_verification_is_for_auditors_only_and_one_at_a_time",
            "tests/deploy/test_compose.py",
        ),
    ),
    Suite(
        "admission-control",
        "questions abandoned while queued; more questions than the per-user and overall bounds; /ready while full",
        ("tests/ui/test_api_admission.py",),
    ),
    Suite(
        "run-state-races",
        "approval for an owner gone from the directory; cancel racing a run's end; cancel of a dead process's run",
        ("tests/agents/test_run_races.py",),
    ),
    Suite(
        "audit-tampering",
        "records edited, deleted, reordered; tail cut and head rewritten (signed and unsigned); content rows deleted",
        (
            "tests/core/test_audit.py",
            "tests/core/test_audit_privacy.py::test_signed_records_and_a_rewritten_chain",
            "tests/core/test_audit_privacy.py::test_cutting_the_tail_and_rewriting_the_head_is_caught_when_signing_is_on",
            "tests/core/test_audit_privacy.py::test_a_content_row_deleted_behind_the_logs_back_is_caught_and_an_erasure_is_not",
        ),
    ),
    Suite(
        "erasure",
        "a subject's question and an approval reason searched in every file of the data dir after erasure",
        ("tests/reliability/test_rel_erasure.py", "tests/core/test_audit_privacy.py"),
    ),
)


@dataclass
class Outcome:
    suite: Suite
    tried: int = 0
    held: int = 0
    failed: int = 0
    skipped: int = 0
    seconds: float = 0.0
    failures: list[str] = field(default_factory=list)
    skip_reasons: list[str] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        if self.failed:
            return "FAILED"
        return "held" if self.held else "not run"


def _existing(paths: tuple[str, ...]) -> list[str]:
    return [p for p in paths if (ROOT / p.split("::", 1)[0]).exists()]


def run_suite(suite: Suite, extra: list[str]) -> Outcome:
    out = Outcome(suite)
    paths = _existing(suite.paths)
    if not paths:
        out.skip_reasons.append("no test file yet")
        return out
    with tempfile.TemporaryDirectory() as tmp:
        xml = Path(tmp) / "junit.xml"
        t0 = time.perf_counter()
        cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={xml}", *paths, *extra]
        subprocess.run(cmd, cwd=ROOT, env={**os.environ, "HF_HUB_OFFLINE": "1"}, check=False)
        out.seconds = time.perf_counter() - t0
        if not xml.exists():
            out.failed, out.failures = 1, ["pytest did not run (collection error?)"]
            return out
        for case in ET.parse(xml).getroot().iter("testcase"):
            out.tried += 1
            name = case.get("name", "?")
            if case.find("failure") is not None or case.find("error") is not None:
                out.failed += 1
                out.failures.append(name)
            elif (skip := case.find("skipped")) is not None:
                out.skipped += 1
                out.skip_reasons.append(f"{name}: {skip.get('message', '')}"[:160])
            else:
                out.held += 1
    return out


def table(outcomes: list[Outcome]) -> str:
    rows = [
        "| suite | what was tried | checks | held | failed | skipped | time | verdict |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for o in outcomes:
        rows.append(
            f"| {o.suite.name} | {o.suite.tried} | {o.tried} | {o.held} | {o.failed} | {o.skipped} "
            f"| {o.seconds:.0f} s | {o.verdict} |"
        )
    notes = [f"- {o.suite.name}: failed {', '.join(o.failures)}" for o in outcomes if o.failures]
    notes += [f"- {o.suite.name}: skipped {r}" for o in outcomes for r in o.skip_reasons]
    return "\n".join(rows + (["", *notes] if notes else []))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", action="append", choices=[s.name for s in SUITES], help="run only these")
    parser.add_argument("--markdown", type=Path, help="also write the table to this file")
    parser.add_argument("pytest_args", nargs="*", help="extra pytest arguments (after --)")
    args = parser.parse_args(argv)
    chosen = [s for s in SUITES if not args.suite or s.name in args.suite]
    outcomes = [run_suite(s, args.pytest_args) for s in chosen]
    report = table(outcomes)
    print("\n" + report)
    if args.markdown:
        args.markdown.write_text(report + "\n")
    return 1 if any(o.failed for o in outcomes) else 0


if __name__ == "__main__":
    raise SystemExit(main())
