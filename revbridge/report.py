"""The run's audit trail: one row per deal, as a markdown table (a Prefect artifact) and as a
short Slack summary (mrkdwn)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict

Outcome = Literal[
    "Invoiced", "Awaiting Approval", "Needs Review", "Error", "Skipped", "Rejected", "Dry Run"
]
OUTCOME_ORDER: tuple[Outcome, ...] = (
    "Invoiced", "Awaiting Approval", "Needs Review", "Error", "Rejected", "Skipped", "Dry Run",
)  # fmt: skip
_ICONS = {
    "Invoiced": ":white_check_mark:",
    "Awaiting Approval": ":hourglass_flowing_sand:",
    "Needs Review": ":mag:",
    "Error": ":x:",
    "Rejected": ":no_entry_sign:",
    "Skipped": ":fast_forward:",
    "Dry Run": ":memo:",
}
MAX_LISTED = 5  # deals needing a human listed in the Slack summary
COLUMNS = (
    "Opportunity", "Name", "Realm", "Customer", "Match", "Amount", "Outcome", "Invoice", "Reason",
)  # fmt: skip


class AuditRow(BaseModel):
    model_config = ConfigDict(frozen=True)

    opportunity_id: str
    name: str
    realm: str | None = None
    customer: str | None = None
    match_kind: str | None = None
    amount: Decimal | None = None
    currency: str | None = None
    outcome: Outcome
    invoice_id: str | None = None
    doc_number: str | None = None
    reason: str = ""

    @property
    def amount_text(self) -> str:
        if self.amount is None:
            return ""
        return f"{self.currency or ''} {self.amount:,.2f}".strip()

    @property
    def invoice_text(self) -> str:
        if self.doc_number and self.invoice_id:
            return f"#{self.doc_number} (Id {self.invoice_id})"
        return self.invoice_id or ""


def markdown_table(rows: Sequence[AuditRow]) -> str:
    """A GitHub-flavoured markdown table of ``rows`` (pipes and newlines in cells escaped)."""
    header = "| " + " | ".join(COLUMNS) + " |"
    rule = "|" + "|".join("---" if c != "Amount" else "---:" for c in COLUMNS) + "|"
    body = [
        "| "
        + " | ".join(
            _cell(value)
            for value in (
                row.opportunity_id,
                row.name,
                row.realm,
                row.customer,
                row.match_kind,
                row.amount_text,
                row.outcome,
                row.invoice_text,
                row.reason,
            )
        )
        + " |"
        for row in rows
    ]
    return "\n".join([header, rule, *body]) if rows else "_No deals in this run._"


def slack_summary(rows: Sequence[AuditRow], title: str = "Closed Won → QuickBooks") -> str:
    """A short mrkdwn summary: counts per outcome (with invoiced totals per currency) and the
    first few deals that need a human. Text from the records is escaped (&, <, >)."""
    counts = Counter(row.outcome for row in rows)
    lines = [f"*{escape_slack(title)}*: {len(rows)} deal{'s' if len(rows) != 1 else ''}"]
    for outcome in OUTCOME_ORDER:
        if not counts[outcome]:
            continue
        line = f"{_ICONS[outcome]} {outcome}: {counts[outcome]}"
        if outcome == "Invoiced":
            totals = _totals(r for r in rows if r.outcome == "Invoiced")
            if totals:
                line += f" ({totals})"
        lines.append(line)
    attention = [r for r in rows if r.outcome in {"Needs Review", "Error"}]
    for row in attention[:MAX_LISTED]:
        lines.append(f"• {_slack(row.name)} ({row.outcome}): {_slack(row.reason)}")
    if len(attention) > MAX_LISTED:
        lines.append(f"• … and {len(attention) - MAX_LISTED} more in the run report")
    return "\n".join(lines)


def escape_slack(text: str) -> str:
    """Escape the three characters Slack's mrkdwn treats as control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _slack(text: str) -> str:
    """One line of escaped text (a newline would break the bullet list)."""
    return escape_slack(" ".join(text.split()))


def _totals(rows: Iterable[AuditRow]) -> str:
    sums: dict[str, Decimal] = {}
    for row in rows:
        if row.amount is not None:
            key = row.currency or ""
            sums[key] = sums.get(key, Decimal(0)) + row.amount
    return ", ".join(f"{cur} {total:,.2f}".strip() for cur, total in sorted(sums.items()))


def _cell(value: str | None) -> str:
    text = (value or "").replace("\\", "\\\\").replace("|", "\\|")
    return " ".join(text.split())
