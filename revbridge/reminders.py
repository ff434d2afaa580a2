"""Renewal payment reminders and Salesforce Tasks for invoices long past due: the rules, pure (no
clock reads, no I/O; the run passes ``today``).

Reminders. T is a renewal invoice's DueDate (its renewal date, see `revbridge.renewals`). From
T + ``days_after_due`` (10) on, a renewal invoice still open (Balance > 0) is e-mailed to the
customer again, once. QuickBooks Online has no reminder API (its automatic reminders are a
company setting in the QuickBooks UI that apps cannot trigger): a reminder is the invoice's
``send``, which e-mails it again with its open balance. The memory is the Contract's
``Renewal_Reminder_Sent__c``: a date on or after T means this renewal was reminded. After a crash
between the send and that write-back, the invoice itself says it went (``DeliveryInfo.
DeliveryTime`` on or after the reminder day) and only the write-back is done. A run that missed
days still reminds once; a paid (or voided) invoice is not open and is never reminded.

Escalation. An invoice more than ``escalate_days`` (90) days past due — the 90+ aging bucket —
gets one Task for its owner, linked (WhatId) to its Opportunity, or to its Contract for a renewal
invoice. The Subject ends with a marker ``[revbridge:invoice=<realm id>/<invoice id>]``; before
creating, the run looks for that marker among the record's Tasks, deleted ones included
(queryAll), so an invoice gets its Task once, even when the owner closed or deleted it.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from revbridge.aging import AgingDecision, bucket_totals, days_past_due, digest_text
from revbridge.batch import chunk
from revbridge.config_sections import RemindersConfig
from revbridge.renewals import renewal_from_invoice
from revbridge.report import escape_slack
from revbridge.soql import quote
from revbridge.writeback import MAX_RECORDS

MAX_IDS = 500
SUBJECT_MAX = 255  # Task.Subject
CONTRACT_FIELDS = (
    "Id", "ContractNumber", "Renewal_Reminder_Sent__c", "OwnerId", "Owner.Name", "Owner.Email",
    "Account.Name",
)  # fmt: skip
_TASK_MARKER = re.compile(r"\[revbridge:invoice=(\d+)/(\w+)\]")
ReminderState = Literal["not due", "due", "sent", "delivered"]
ReminderOutcome = Literal["Reminded", "Recorded", "Needs Review", "Error"]


class RenewalInvoice(BaseModel):
    """An open renewal invoice (its PrivateNote carries the renewal marker)."""

    model_config = ConfigDict(frozen=True)

    invoice_id: str
    doc_number: str | None = None
    realm_id: str
    contract_id: str
    renewal: date
    due_date: date
    balance: Decimal
    currency: str | None = None
    customer: str | None = None
    bill_email: str | None = None
    delivered_on: date | None = None  # DeliveryInfo.DeliveryTime: the last e-mail of it

    @classmethod
    def from_qbo(cls, row: Mapping[str, Any], realm_id: str) -> RenewalInvoice | None:
        """The invoice, or None when it is no renewal invoice or it is settled."""
        marked = renewal_from_invoice(row)
        balance = Decimal(str(row.get("Balance") or 0))
        if marked is None or balance <= 0:
            return None
        delivered = (row.get("DeliveryInfo") or {}).get("DeliveryTime")
        return cls(
            invoice_id=str(row["Id"]),
            doc_number=row.get("DocNumber"),
            realm_id=realm_id,
            contract_id=marked[0],
            renewal=marked[1],
            due_date=_date(row.get("DueDate")) or marked[1],
            balance=balance,
            currency=(row.get("CurrencyRef") or {}).get("value"),
            customer=(row.get("CustomerRef") or {}).get("name"),
            bill_email=(row.get("BillEmail") or {}).get("Address") or None,
            delivered_on=_date(delivered),
        )

    @property
    def label(self) -> str:
        return f"#{self.doc_number}" if self.doc_number else f"Id {self.invoice_id}"


class ContractInfo(BaseModel):
    """A Contract as the reminder query reads it."""

    model_config = ConfigDict(frozen=True)

    id: str
    number: str | None = None
    reminder_sent: date | None = None
    owner_id: str | None = None
    owner_name: str | None = None
    owner_email: str | None = None
    account_name: str | None = None

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> ContractInfo:
        owner = record.get("Owner") or {}
        return cls(
            id=record["Id"],
            number=record.get("ContractNumber"),
            reminder_sent=_date(record.get("Renewal_Reminder_Sent__c")),
            owner_id=record.get("OwnerId"),
            owner_name=owner.get("Name"),
            owner_email=owner.get("Email"),
            account_name=(record.get("Account") or {}).get("Name"),
        )

    @property
    def label(self) -> str:
        return f"Contract {self.number or self.id} ({self.account_name or 'no account'})"


def contracts_query(ids: Sequence[str]) -> str:
    """The reminder fields of the given Contracts (at most `MAX_IDS`)."""
    unique = list(dict.fromkeys(ids))
    if not unique or len(unique) > MAX_IDS:
        raise ValueError(f"between 1 and {MAX_IDS} ids per query, got {len(unique)}")
    listed = ", ".join(quote(i) for i in unique)
    return f"SELECT {', '.join(CONTRACT_FIELDS)} FROM Contract WHERE Id IN ({listed}) ORDER BY Id"


def reminder_day(invoice: RenewalInvoice, days_after_due: int) -> date:
    """The day the reminder of ``invoice`` is due: T + ``days_after_due``."""
    return invoice.due_date + timedelta(days=days_after_due)


def reminder_state(
    invoice: RenewalInvoice, contract: ContractInfo, today: date, days_after_due: int
) -> ReminderState:
    """Whether the open renewal invoice is to be reminded today (see the module docstring):
    ``not due`` yet; ``sent`` (the Contract says so); ``delivered`` (QuickBooks e-mailed it on or
    after the reminder day but the Contract does not know: write back only); ``due``."""
    day = reminder_day(invoice, days_after_due)
    if today < day:
        return "not due"
    if contract.reminder_sent is not None and contract.reminder_sent >= invoice.due_date:
        return "sent"
    if invoice.delivered_on is not None and invoice.delivered_on >= day:
        return "delivered"
    return "due"


class Reminder(BaseModel):
    """A renewal invoice the run reminds (``due``) or records (``delivered``)."""

    model_config = ConfigDict(frozen=True)

    invoice: RenewalInvoice
    contract: ContractInfo
    state: Literal["due", "delivered"]

    @property
    def request_id(self) -> str:
        """The send's requestid: a retried send is replayed, not e-mailed twice (≤ 50 chars)."""
        key = f"remind:{self.invoice.realm_id}/{self.invoice.invoice_id}/{self.invoice.due_date}"
        return "remind-" + hashlib.sha256(key.encode()).hexdigest()[:32]


def plan_reminders(
    invoices: Iterable[RenewalInvoice],
    contracts: Mapping[str, ContractInfo],
    today: date,
    days_after_due: int,
) -> list[Reminder]:
    """The reminders to send (or to record) today, oldest due date first. Invoices whose
    Contract is not in ``contracts`` (deleted) are left out: see `orphan_invoices`."""
    planned = []
    for invoice in invoices:
        contract = contracts.get(invoice.contract_id)
        if contract is None:
            continue
        state = reminder_state(invoice, contract, today, days_after_due)
        if state in ("due", "delivered"):
            planned.append(Reminder(invoice=invoice, contract=contract, state=state))
    return sorted(planned, key=lambda r: (r.invoice.due_date, r.invoice.realm_id, r.contract.id))


def orphan_invoices(
    invoices: Iterable[RenewalInvoice], contracts: Mapping[str, ContractInfo]
) -> list[RenewalInvoice]:
    """Open renewal invoices whose Contract Salesforce does not have."""
    return [i for i in invoices if i.contract_id not in contracts]


def missing_email(reminder: Reminder) -> str | None:
    """Why a due reminder cannot be sent (None: it can)."""
    if reminder.state == "due" and not reminder.invoice.bill_email:
        return (
            "the invoice has no BillEmail: add the customer's billing e-mail to the invoice in "
            "QuickBooks (or Billing_Email__c on the Account for the next renewal)"
        )
    return None


class ReminderRow(BaseModel):
    """What the run did with one reminder."""

    model_config = ConfigDict(frozen=True)

    contract_id: str
    contract: str
    realm_id: str
    invoice_id: str
    invoice: str
    customer: str | None = None
    balance: Decimal
    currency: str | None = None
    due_date: date
    days: int
    outcome: ReminderOutcome
    sent_on: date | None = None  # what Renewal_Reminder_Sent__c gets
    reason: str = ""
    owner_name: str | None = None
    owner_email: str | None = None

    @classmethod
    def of(
        cls,
        reminder: Reminder,
        today: date,
        outcome: ReminderOutcome,
        *,
        reason: str = "",
        sent_on: date | None = None,
    ) -> ReminderRow:
        invoice, contract = reminder.invoice, reminder.contract
        return cls(
            contract_id=contract.id,
            contract=contract.label,
            realm_id=invoice.realm_id,
            invoice_id=invoice.invoice_id,
            invoice=invoice.label,
            customer=invoice.customer,
            balance=invoice.balance,
            currency=invoice.currency,
            due_date=invoice.due_date,
            days=max(days_past_due(invoice.due_date, None, today), 0),
            outcome=outcome,
            sent_on=sent_on,
            reason=reason,
            owner_name=contract.owner_name,
            owner_email=contract.owner_email,
        )


def reminder_updates(rows: Iterable[ReminderRow]) -> list[dict[str, Any]]:
    """``composite/sobjects`` PATCH bodies: Renewal_Reminder_Sent__c of the reminded Contracts."""
    latest: dict[str, date] = {}
    for row in rows:
        if row.outcome in ("Reminded", "Recorded") and row.sent_on is not None:
            latest[row.contract_id] = max(row.sent_on, latest.get(row.contract_id, row.sent_on))
    records = [
        {
            "attributes": {"type": "Contract"},
            "Id": contract_id,
            "Renewal_Reminder_Sent__c": sent.isoformat(),
        }
        for contract_id, sent in sorted(latest.items())
    ]
    return [{"allOrNone": False, "records": part} for part in chunk(records, MAX_RECORDS)]


def reminder_text(row: ReminderRow) -> str:
    """The contract owner's note (mrkdwn) that the customer was reminded."""
    return (
        f":envelope: *{escape_slack(row.contract)}*: renewal invoice {escape_slack(row.invoice)} "
        f"is unpaid {row.days} days after its due date {row.due_date}; QuickBooks e-mailed it "
        f"to the customer again (open balance {_money(row.balance, row.currency)})."
    )


# ---- escalation ------------------------------------------------------------------------------


class Escalation(BaseModel):
    """An invoice past ``escalate_days``: one Task for the owner of the deal or contract."""

    model_config = ConfigDict(frozen=True)

    what_id: str
    what_type: Literal["Opportunity", "Contract"]
    name: str
    owner_id: str | None = None
    owner_name: str | None = None
    realm_id: str
    invoice_id: str
    doc_number: str | None = None
    customer: str | None = None
    balance: Decimal
    currency: str | None = None
    due_date: date
    days: int

    @property
    def marker(self) -> str:
        return task_marker(self.realm_id, self.invoice_id)

    @property
    def invoice_label(self) -> str:
        return f"#{self.doc_number}" if self.doc_number else f"Id {self.invoice_id}"


def task_marker(realm_id: str, invoice_id: str) -> str:
    """The Subject suffix that finds an invoice's Task again."""
    return f"[revbridge:invoice={realm_id}/{invoice_id}]"


def deal_escalations(
    decisions: Iterable[AgingDecision], today: date, escalate_days: int
) -> list[Escalation]:
    """One per open invoice of a deal more than ``escalate_days`` past due (a deal with two
    such invoices gets two Tasks)."""
    found = []
    for decision in decisions:
        opp = decision.opportunity
        for invoice in decision.invoices:
            days = days_past_due(invoice.due_date, invoice.txn_date, today)
            if days <= escalate_days:
                continue
            found.append(
                Escalation(
                    what_id=opp.id,
                    what_type="Opportunity",
                    name=opp.name,
                    owner_id=opp.owner_id,
                    owner_name=opp.owner_name,
                    realm_id=invoice.realm_id,
                    invoice_id=invoice.invoice_id,
                    doc_number=invoice.doc_number,
                    customer=invoice.customer,
                    balance=invoice.balance,
                    currency=invoice.currency,
                    due_date=invoice.due_date or invoice.txn_date or today,
                    days=days,
                )
            )
    return found


def renewal_escalations(
    invoices: Iterable[RenewalInvoice],
    contracts: Mapping[str, ContractInfo],
    today: date,
    escalate_days: int,
) -> list[Escalation]:
    """One per open renewal invoice more than ``escalate_days`` past due, for the Contract's
    owner (invoices of a Contract Salesforce does not have are left out)."""
    found = []
    for invoice in invoices:
        contract = contracts.get(invoice.contract_id)
        days = days_past_due(invoice.due_date, None, today)
        if contract is None or days <= escalate_days:
            continue
        found.append(
            Escalation(
                what_id=contract.id,
                what_type="Contract",
                name=contract.label,
                owner_id=contract.owner_id,
                owner_name=contract.owner_name,
                realm_id=invoice.realm_id,
                invoice_id=invoice.invoice_id,
                doc_number=invoice.doc_number,
                customer=invoice.customer,
                balance=invoice.balance,
                currency=invoice.currency,
                due_date=invoice.due_date,
                days=days,
            )
        )
    return found


def tasks_query(what_ids: Sequence[str]) -> str:
    """revbridge's Tasks on the given records (at most `MAX_IDS`); run it with queryAll so the
    deleted ones count too."""
    unique = list(dict.fromkeys(what_ids))
    if not unique or len(unique) > MAX_IDS:
        raise ValueError(f"between 1 and {MAX_IDS} ids per query, got {len(unique)}")
    listed = ", ".join(quote(i) for i in unique)
    return (
        "SELECT Id, WhatId, Subject, Status, IsDeleted FROM Task "
        f"WHERE WhatId IN ({listed}) AND Subject LIKE '%[revbridge:invoice=%' ORDER BY Id"
    )


def existing_markers(records: Iterable[Mapping[str, Any]]) -> set[str]:
    """The invoice markers of the Tasks a `tasks_query` found."""
    found = set()
    for record in records:
        match = _TASK_MARKER.search(str(record.get("Subject") or ""))
        if match:
            found.add(task_marker(match.group(1), match.group(2)))
    return found


def task_subject(escalation: Escalation, template: str) -> str:
    """The Task's Subject: the configured template, then the marker (≤ 255 characters)."""
    text = template.format(
        invoice=escalation.invoice_label,
        days=escalation.days,
        customer=escalation.customer or "",
        name=escalation.name,
    )
    room = SUBJECT_MAX - len(escalation.marker) - 1
    text = " ".join(text.split())
    if len(text) > room:
        text = text[: room - 1].rstrip() + "…"
    return f"{text} {escalation.marker}"


def task_record(escalation: Escalation, settings: RemindersConfig, today: date) -> dict[str, Any]:
    """The Task to insert for one escalation."""
    record: dict[str, Any] = {
        "attributes": {"type": "Task"},
        "Subject": task_subject(escalation, settings.task_subject),
        "WhatId": escalation.what_id,
        "ActivityDate": (today + timedelta(days=settings.task_due_days)).isoformat(),
        "Status": "Not Started",
        "Priority": settings.task_priority,
        "Description": (
            f"QuickBooks invoice {escalation.invoice_label} (Id {escalation.invoice_id}, company "
            f"{escalation.realm_id}) to {escalation.customer or 'the customer'} was due on "
            f"{escalation.due_date} and is {escalation.days} days past due as of {today}, "
            f"open balance {_money(escalation.balance, escalation.currency)}. Please follow up "
            "with the customer. (Created once per invoice by revbridge.)"
        ),
    }
    if escalation.owner_id:
        record["OwnerId"] = escalation.owner_id
    return record


# ---- the run report ---------------------------------------------------------------------------


class EscalationRow(BaseModel):
    """What the run did with one escalation."""

    model_config = ConfigDict(frozen=True)

    escalation: Escalation
    outcome: Literal["Created", "Error"]
    task_id: str | None = None
    reason: str = ""


def realm_digest(
    realm: str,
    realm_id: str,
    decisions: Sequence[AgingDecision],
    reminders: Sequence[ReminderRow],
    tasks: Sequence[EscalationRow],
    *,
    detailed: bool,
    limit: int = 10,
) -> str:
    """The per-realm Slack message (mrkdwn). ``detailed`` (a realm with a digest channel): the
    deals that moved with their owners, each reminder and Task, what needs a human — the one
    message of the day in place of owner DMs. Otherwise the aging summary plus counts."""
    mine_r = [r for r in reminders if r.realm_id == realm_id]
    mine_t = [t for t in tasks if t.escalation.realm_id == realm_id]
    if not detailed:
        lines = [digest_text(realm, decisions)]
    else:
        totals = bucket_totals(decisions)
        count = sum(t.count for t in totals)
        lines = [f"*Daily receivables digest — {escape_slack(realm)}*: {count} open invoice(s)"]
        lines += [f"• {t.bucket}: {t.count} ({_money(t.balance, t.currency)})" for t in totals]
        moved = [d for d in decisions if d.alert]
        if moved:
            lines.append(f":warning: moved to a worse bucket: {len(moved)}")
            for d in moved[:limit]:
                owner = escape_slack(d.opportunity.owner_name or "no owner")
                lines.append(
                    f"   ◦ {escape_slack(d.opportunity.name)} → {d.bucket} ({d.days} days, "
                    f"{_money(d.balance, d.currency)}; owner {owner})"
                )
            _more(lines, len(moved), limit)
        cleared = sum(1 for d in decisions if d.cleared)
        if cleared:
            lines.append(f":white_check_mark: settled since the last run: {cleared}")
    reminded = [r for r in mine_r if r.outcome == "Reminded"]
    if reminded:
        lines.append(f":envelope: renewal reminders e-mailed: {len(reminded)}")
        if detailed:
            for r in reminded[:limit]:
                lines.append(
                    f"   ◦ {escape_slack(r.contract)}: {escape_slack(r.invoice)}, "
                    f"{_money(r.balance, r.currency)}, due {r.due_date} "
                    f"(owner {escape_slack(r.owner_name or 'none')})"
                )
            _more(lines, len(reminded), limit)
    created = [t for t in mine_t if t.outcome == "Created"]
    if created:
        lines.append(
            f":clipboard: Salesforce Tasks created for long-overdue invoices: {len(created)}"
        )
        if detailed:
            for t in created[:limit]:
                e = t.escalation
                owner = escape_slack(e.owner_name or "none")
                lines.append(
                    f"   ◦ {escape_slack(e.name)}: {escape_slack(e.invoice_label)}, {e.days} days, "
                    f"{_money(e.balance, e.currency)} (owner {owner})"
                )
            _more(lines, len(created), limit)
    attention = [
        f"{r.contract}: reminder {r.outcome.lower()}: {r.reason}"
        for r in mine_r
        if r.outcome in ("Needs Review", "Error")
    ] + [
        f"{t.escalation.name}: Task not created: {t.reason}" for t in mine_t if t.outcome == "Error"
    ]
    if attention:
        lines.append(f":rotating_light: needs a human: {len(attention)}")
        for text in attention[:limit]:
            lines.append(f"   ◦ {escape_slack(' '.join(text.split()))}")
        _more(lines, len(attention), limit)
    return "\n".join(lines)


def markdown_section(reminders: Sequence[ReminderRow], tasks: Sequence[EscalationRow]) -> str:
    """The reminders and Tasks of the run, for the aging artifact (pipes escaped)."""
    lines = ["", "## Renewal reminders", ""]
    if reminders:
        lines += ["| Contract | Invoice | Balance | Due | Days | Outcome | Reason |"]
        lines += ["|---|---|---:|---|---:|---|---|"]
        for r in reminders:
            cells: tuple[str, ...] = (
                r.contract,
                r.invoice,
                _money(r.balance, r.currency),
                str(r.due_date),
                str(r.days),
                r.outcome,
                r.reason,
            )
            lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    else:
        lines.append("_No reminders due._")
    lines += ["", "## Tasks for invoices past the escalation limit", ""]
    if tasks:
        lines += ["| Record | Invoice | Days | Balance | Owner | Outcome | Task |"]
        lines += ["|---|---|---:|---:|---|---|---|"]
        for t in tasks:
            e = t.escalation
            cells = (
                e.name,
                e.invoice_label,
                str(e.days),
                _money(e.balance, e.currency),
                e.owner_name or "",
                t.outcome,
                t.task_id or t.reason,
            )
            lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    else:
        lines.append("_No new Tasks._")
    return "\n".join(lines)


def _more(lines: list[str], total: int, limit: int) -> None:
    if total > limit:
        lines.append(f"   ◦ … and {total - limit} more in the run report")


def _money(amount: Decimal, currency: str | None) -> str:
    return f"{currency or ''} {amount:,.2f}".strip()


def _cell(text: str) -> str:
    return " ".join(text.replace("\\", "\\\\").replace("|", "\\|").split())


def _date(value: Any) -> date | None:
    if not value:
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])
