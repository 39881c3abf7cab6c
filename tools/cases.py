"""open_case: a side-effecting demo tool. It writes a follow-up case for the finance team to a SQLite
table in the data dir (``<data_dir>/cases.sqlite``), only after a person approves the call.

The case records who asked (from the run, never from the model) and the run it came from, so a
case can be traced back to the audit log.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, Field

from sovra.tools.base import ToolContext, tool

_DDL = """CREATE TABLE IF NOT EXISTS cases (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    counterparty TEXT NOT NULL,
    summary TEXT NOT NULL,
    amount REAL NOT NULL,
    opened_by TEXT NOT NULL,
    run_id TEXT NOT NULL,
    opened_at TEXT NOT NULL
)"""


class CaseOpened(BaseModel):
    case_id: int
    counterparty: str
    amount: float
    opened_by: str


def cases_db(settings: Any) -> Path:
    root = Path(settings.data_dir).expanduser()
    root.mkdir(parents=True, exist_ok=True)
    return root / "cases.sqlite"


def list_cases(settings: Any) -> list[dict[str, Any]]:
    """Every case, oldest first (for tests, the CLI and the examples)."""
    path = cases_db(settings)
    if not path.exists():
        return []
    with sqlite3.connect(path) as conn:
        conn.row_factory = sqlite3.Row
        conn.execute(_DDL)
        return [dict(r) for r in conn.execute("SELECT * FROM cases ORDER BY id")]


@tool(read_only=False, needs_approval=True, requires=("group:finance",))
def open_case(
    counterparty: Annotated[str, Field(min_length=1, max_length=120, description="The company concerned.")],
    summary: Annotated[str, Field(min_length=1, max_length=500, description="What must be followed up.")],
    amount: Annotated[float, Field(ge=0, description="The amount at stake, in the ledger currency.")],
    ctx: ToolContext,
) -> CaseOpened:
    """Open a follow-up case for the finance team about a payment problem with a counterparty."""
    with sqlite3.connect(cases_db(ctx.services.settings)) as conn:
        conn.execute(_DDL)
        cur = conn.execute(
            "INSERT INTO cases (counterparty, summary, amount, opened_by, run_id, opened_at) VALUES (?, ?, ?, ?, ?, ?)",
            (
                counterparty.strip(),
                summary.strip(),
                amount,
                ctx.user.id,
                ctx.run_id,
                dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            ),
        )
        case_id = int(cur.lastrowid or 0)
    return CaseOpened(case_id=case_id, counterparty=counterparty.strip(), amount=amount, opened_by=ctx.user.id)
