"""Signed audit bundles: one run or a date range, exported as a zip that anyone can check offline.

The zip holds ``bundle.json`` (every record of the runs exactly as the chain hashed it, plus what a
reader sees, the chain check and head at export), one HTML report per run (:func:`report_html`) with an
``index.html``, and ``manifest.json``: the SHA-256 of every file and the Ed25519 public key.
``manifest.sig`` is the audit signing key's signature over the manifest's SHA-256.

:func:`verify_bundle` needs neither the database nor the network: the signature (by the expected key,
when one is given), every file's digest, no file added, and every record's hash recomputed from its
fields. A bundle therefore proves that these records were written to the chain of the key holder,
unchanged since; it does not prove that no other records exist (that is what the chain check in the
live log, with an anchor, is for).
"""

from __future__ import annotations

import hashlib
import html
import io
import json
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sovra.audit import RUN_END, RUN_ERROR, RUN_START, AuditLog, AuditRecord, canonical_json, record_hash
from sovra.audit_sign import Signer, signature_ok
from sovra.errors import ConfigError, InputError
from sovra.ui.audit_report import report_html

FORMAT = "sovra-audit-bundle/1"
MAX_RUNS = 5000  # a date range larger than this is split by the caller: a bundle is read in one piece


def run_report(records: list[AuditRecord], chain: dict[str, Any], exported_at: str) -> dict[str, Any]:
    """The report of one run, in the shape :func:`report_html` renders (as ``report_json`` builds it,
    with the chain check done once for the whole bundle rather than once per run)."""
    start = next((r for r in records if r.kind == RUN_START), records[0])
    end = next((r for r in reversed(records) if r.kind in (RUN_END, RUN_ERROR)), None)
    sd: dict[str, Any] = start.data if isinstance(start.data, dict) else {}
    ed: dict[str, Any] = end.data if end is not None and isinstance(end.data, dict) else {}
    return {
        "run_id": start.run_id,
        "trace_id": start.trace_id,
        "user": start.user_id,
        "groups": sd.get("groups", []),
        "interface": sd.get("interface"),
        "started": start.ts,
        "question": sd.get("question"),
        "answer": ed.get("answer"),
        "status": "error" if end and end.kind == RUN_ERROR else ("ok" if end else "running"),
        "error": ed if end and end.kind == RUN_ERROR else None,
        "sources": list(ed.get("citations") or []),
        "steps": [
            {"seq": r.seq, "ts": r.ts, "kind": r.kind, "span_id": r.span_id, "hash": r.hash, "data": r.data}
            for r in records
        ],
        "chain": chain,
        "exported_at": exported_at,
    }


def _index_html(bundle: dict[str, Any]) -> str:
    chain = bundle["chain"]
    rows = "".join(
        f'<tr><td><a href="runs/{html.escape(r["run_id"])}.html">{html.escape(r["run_id"])}</a></td>'
        f"<td>{html.escape(str(r['user']))}</td><td>{html.escape(r['started'])}</td>"
        f"<td>{html.escape(r['status'])}</td><td>{len(r['steps'])}</td></tr>"
        for r in bundle["runs"]
    )
    verdict = "intact" if chain["ok"] else f"BROKEN: {chain['reason']}"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>Sovra audit bundle</title><style>body{{font:14px system-ui,sans-serif;margin:2em}}
td,th{{border:1px solid #ddd;padding:4px 6px}}table{{border-collapse:collapse}}</style></head><body>
<h1>Sovra audit bundle</h1>
<p>Scope: {html.escape(json.dumps(bundle["scope"], sort_keys=True))}; exported {html.escape(bundle["exported_at"])}
by {html.escape(str(bundle["exported_by"]))}. Audit chain at export: {html.escape(verdict)}
({chain["checked"]} records; head {chain["head"]["count"]}:{html.escape(chain["head"]["last_hash"])}).</p>
<p>Signed by the audit key {html.escape(bundle["public_key"])}: check with
<code>sovra audit verify-bundle FILE --public-key KEY</code>.</p>
<table><tr><th>run</th><th>user</th><th>started (UTC)</th><th>status</th><th>records</th></tr>{rows}</table>
</body></html>
"""


def export_bundle(
    log: AuditLog,
    run_ids: list[str],
    *,
    exported_by: str,
    scope: dict[str, Any],
    signer: Signer | None = None,
) -> bytes:
    """The signed zip of ``run_ids`` (in the order given). ``signer``: default, the log's own key."""
    signer = signer or log.signer
    if signer is None:
        raise ConfigError(
            "a signed bundle needs the audit signing key",
            hint="set SOVRA_AUDIT_SIGNING_KEY (a PEM Ed25519 key or 64 hex characters)",
        )
    if not run_ids:
        raise InputError("no run to export", hint="pick a run, or a date range that holds runs")
    if len(run_ids) > MAX_RUNS:
        raise InputError(f"{len(run_ids)} runs are more than one bundle holds ({MAX_RUNS})", hint="narrow the dates")
    check = log.verify()
    head = log.head()
    exported_at = datetime.now(UTC).isoformat(timespec="seconds")
    chain = {
        "ok": check.ok,
        "checked": check.checked,
        "reason": check.reason,
        "first_bad_seq": check.first_bad_seq,
        "head": {"count": head.count, "last_hash": head.last_hash},
    }
    runs, records = [], []
    for run_id in run_ids:
        recs = log.records(run_id)
        if not recs:
            raise InputError(f"no run {run_id!r} in the audit log")
        runs.append(run_report(recs, chain, exported_at))
        records += [
            {
                "seq": r.seq,
                "run_id": r.run_id,
                "ts": r.ts,
                "kind": r.kind,
                "user_id": r.user_id,
                "trace_id": r.trace_id,
                "span_id": r.span_id,
                "sealed": r.sealed,
                "prev_hash": r.prev_hash,
                "hash": r.hash,
            }
            for r in recs
        ]
    bundle = {
        "format": FORMAT,
        "exported_at": exported_at,
        "exported_by": exported_by,
        "scope": scope,
        "audit_log": log.location,
        "public_key": signer.public_key_hex,
        "chain": chain,
        "runs": runs,
        "records": records,
    }
    files: dict[str, bytes] = {"bundle.json": json.dumps(bundle, ensure_ascii=False, indent=1).encode()}
    files["index.html"] = _index_html(bundle).encode()
    for report in runs:
        files[f"runs/{report['run_id']}.html"] = report_html(report).encode()
    manifest = {
        "format": FORMAT,
        "public_key": signer.public_key_hex,
        "files": {name: hashlib.sha256(data).hexdigest() for name, data in sorted(files.items())},
    }
    manifest_bytes = json.dumps(manifest, indent=1, sort_keys=True).encode()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in files.items():
            z.writestr(name, data)
        z.writestr("manifest.json", manifest_bytes)
        z.writestr("manifest.sig", signer.sign(hashlib.sha256(manifest_bytes).hexdigest()))
    return buf.getvalue()


@dataclass(frozen=True)
class BundleCheck:
    ok: bool
    reason: str
    public_key: str = ""
    runs: int = 0
    records: int = 0


def verify_bundle(data: bytes, public_key: str | None = None) -> BundleCheck:
    """Check a bundle offline (see the module docstring). ``public_key``: the hex Ed25519 key the
    bundle must be signed with; without it, the key the bundle names (which proves integrity, not
    origin: pin the key to prove who made it)."""

    def bad(reason: str, key: str = "") -> BundleCheck:
        return BundleCheck(False, reason, key)

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            contents = {name: z.read(name) for name in z.namelist()}
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        return bad(f"not a readable zip file: {exc}")
    if "manifest.json" not in contents or "manifest.sig" not in contents:
        return bad("the manifest or its signature is missing")
    manifest_bytes = contents.pop("manifest.json")
    signature = contents.pop("manifest.sig").decode("ascii", "replace").strip()
    try:
        manifest = json.loads(manifest_bytes)
        key = str(manifest["public_key"])
        listed: dict[str, str] = dict(manifest["files"])
    except (ValueError, KeyError, TypeError):
        return bad("the manifest is not valid")
    if public_key is not None and key.lower() != public_key.lower():
        return bad(f"signed with another key ({key[:16]}...), not the expected one", key)
    if not signature_ok(key, hashlib.sha256(manifest_bytes).hexdigest(), signature):
        return bad("the manifest's signature does not verify: the bundle was altered or not signed by this key", key)
    for name, digest in listed.items():
        if name not in contents:
            return bad(f"{name} is missing", key)
        if hashlib.sha256(contents[name]).hexdigest() != digest:
            return bad(f"{name} was altered after signing", key)
    extra = sorted(set(contents) - set(listed))
    if extra:
        return bad(f"files were added after signing: {', '.join(extra)}", key)
    try:
        bundle = json.loads(contents["bundle.json"])
        records = list(bundle["records"])
    except (KeyError, ValueError, TypeError):
        return bad("bundle.json is missing or not valid", key)
    by_seq: dict[int, dict[str, Any]] = {}
    for r in records:
        digest = record_hash(
            seq=r["seq"], run_id=r["run_id"], ts=r["ts"], kind=r["kind"], user_id=r["user_id"],
            trace_id=r["trace_id"], span_id=r["span_id"], data=json.loads(canonical_json(r["sealed"])),
            prev_hash=r["prev_hash"],
        )  # fmt: skip
        if digest != r["hash"]:
            return bad(f"record {r['seq']} does not hash to what the chain recorded", key)
        by_seq[int(r["seq"])] = r
    for seq, r in by_seq.items():  # where neighbours are both in the bundle, they must link
        if seq - 1 in by_seq and r["prev_hash"] != by_seq[seq - 1]["hash"]:
            return bad(f"record {seq} does not follow record {seq - 1}", key)
    for report in bundle.get("runs", []):
        for step in report.get("steps", []):
            if by_seq.get(int(step["seq"]), {}).get("hash") != step["hash"]:
                return bad(f"run {report.get('run_id')}: step {step['seq']} is not among the bundle's records", key)
    return BundleCheck(True, "bundle verifies", key, len(bundle.get("runs", [])), len(records))
