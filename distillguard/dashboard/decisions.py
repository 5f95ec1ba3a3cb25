"""Recording analysts' decisions in the store, and exporting them as labels.

Decisions are appended to the store's ``decisions`` table (the latest on a
subject is in force; ``verdict.decisions`` applies them to the next scan) with a
snapshot of the evidence the analyst saw, taken from the findings.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import duckdb
import orjson

from distillguard.engines import map_duckdb_errors
from distillguard.errors import InputError
from distillguard.verdict.decisions import (
    DECISION_KINDS,
    DECISION_VALUES,
    Decision,
    account_decision,
    account_snapshot,
    campaign_snapshot,
    decisions_from_rows,
    in_force,
)

__all__ = ["MAX_NOTE_CHARS", "decision_labels", "record_decision"]

MAX_NOTE_CHARS = 2000
MAX_ANALYST_CHARS = 100


def _snapshot(kind: str, subject: str, findings: dict[str, Any]) -> dict[str, Any]:
    accounts = {a["account_id"]: a for a in findings["accounts"]}
    campaigns = {c["campaign_id"]: c for c in findings["campaigns"]}
    if kind == "campaign":
        if subject not in campaigns:
            msg = f"no campaign {subject!r} in these findings"
            raise InputError(msg)
        return campaign_snapshot(campaigns[subject], accounts)
    dismissed = {a["account_id"]: a for a in findings.get("dismissed_accounts", [])}
    entry = accounts.get(subject) or dismissed.get(subject)
    if entry is None:
        msg = f"no account {subject!r} listed in these findings"
        raise InputError(msg)
    return account_snapshot({"rules": [], **entry}, campaigns.get(entry.get("campaign_id") or ""))


def record_decision(con: duckdb.DuckDBPyConnection, findings: dict[str, Any], *, kind: str,
                    subject: str, decision: str, note: str = "", analyst: str = "",
                    now: datetime | None = None) -> Decision:
    """Append a decision on a campaign or account of ``findings``; ``InputError`` when the
    kind, value or subject is unknown or the note too long."""
    if kind not in DECISION_KINDS:
        msg = f"kind must be one of {', '.join(DECISION_KINDS)}, not {kind!r}"
        raise InputError(msg)
    if decision not in DECISION_VALUES:
        msg = f"decision must be one of {', '.join(DECISION_VALUES)}, not {decision!r}"
        raise InputError(msg)
    if len(note) > MAX_NOTE_CHARS or len(analyst) > MAX_ANALYST_CHARS:
        msg = (f"a note holds at most {MAX_NOTE_CHARS:,} characters and an analyst name "
               f"{MAX_ANALYST_CHARS}")
        raise InputError(msg)
    evidence = _snapshot(kind, subject, findings)
    at = (now or datetime.now(UTC)).astimezone(UTC).replace(tzinfo=None, microsecond=0)
    row = [uuid.uuid4().hex, kind, subject, decision, note, analyst, at,
           findings.get("generated_at"), orjson.dumps(evidence).decode()]
    with map_duckdb_errors("cannot record the decision"):
        cursor = con.cursor()
        try:
            cursor.execute("INSERT INTO decisions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", row)
        finally:
            cursor.close()
    return decisions_from_rows([row])[0]


def decision_labels(decisions: list[Decision]) -> list[dict[str, Any]]:
    """Decisions in force as labels for threshold tuning, one per account, in the format
    ``distillguard eval --labels`` reads: ``actor`` names what the analyst confirmed
    (null for a dismissed account: legitimate), with the decision beside it."""
    forced = in_force(decisions)
    accounts = {a for d in forced.values() for a in
                ([d.subject] if d.kind == "account" else d.evidence.get("accounts", {}))}
    labels = []
    for account_id in sorted(accounts):
        d = account_decision(account_id, forced)
        if d is None:
            continue
        actor = f"confirmed {d.kind} {d.subject}" if d.decision == "confirmed" else None
        labels.append({"account_id": account_id, "actor": actor, "decision": d.decision,
                       "decided_on": d.kind, "subject": d.subject, "analyst": d.analyst,
                       "decided_at": d.decided_at, "note": d.note,
                       "findings_generated_at": d.findings_generated_at})
    return labels
