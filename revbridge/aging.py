"""Accounts-receivable aging of the invoices revbridge created, written to their Opportunities.

Convention (QuickBooks' own A/R Aging report): an invoice ages by **days past due**, counted from
its DueDate (its TxnDate when it has none: due on receipt) to ``today``.

=========  ==========================
bucket     days past due
=========  ==========================
Current    0 or less (not yet due)
1-30       1 … 30
31-60      31 … 60
61-90      61 … 90
90+        91 and more
=========  ==========================

``Days_Outstanding__c`` holds the days past due (0 while not yet due) and ``Aging_Bucket__c`` the
bucket. An invoice that is no longer open (paid, voided, deleted: Balance 0) clears both.

The stored ``Aging_Bucket__c`` is the alert memory: the owner is alerted when the new bucket
differs from it and is 31-60 or worse, so a deal sitting in 61-90 for a month alerts once, when
it got there. Fields are written only when they change.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from revbridge.batch import chunk
from revbridge.invoices import opportunity_id_from_invoice
from revbridge.report import escape_slack
from revbridge.soql import quote
from revbridge.writeback import MAX_RECORDS

Bucket = Literal["Current", "1-30", "31-60", "61-90", "90+"]
BUCKETS: tuple[Bucket, ...] = ("Current", "1-30", "31-60", "61-90", "90+")
ALERT_FROM: Bucket = "31-60"
AGING_FIELDS = (
    "Id", "Name", "QB_Invoice_Id__c", "QB_Realm__c", "Days_Outstanding__c", "Aging_Bucket__c",
    "CurrencyIsoCode", "OwnerId", "Owner.Name", "Owner.Email", "Account.Name",
)  # fmt: skip
MAX_IDS = 500


def days_past_due(due_date: date | None, txn_date: date | None, today: date) -> int:
    """Days from the due date (else the transaction date) to ``today``; negative when not due.
    Raises ValueError when the invoice has neither date."""
    start = due_date or txn_date
    if start is None:
        raise ValueError("an invoice needs a DueDate or a TxnDate to age")
    return (today - start).days


def bucket_for(days: int) -> Bucket:
    """The aging bucket of an invoice ``days`` past due (see the module docstring)."""
    if days <= 0:
        return "Current"
    if days <= 30:
        return "1-30"
    if days <= 60:
        return "31-60"
    if days <= 90:
        return "61-90"
    return "90+"


def should_alert(previous: str | None, new: Bucket | None) -> bool:
    """Alert once per bucket change: the bucket moved and is now ``ALERT_FROM`` or worse."""
    if new is None or new == previous:
        return False
    return BUCKETS.index(new) >= BUCKETS.index(ALERT_FROM)


class OpenInvoice(BaseModel):
    """An open QuickBooks invoice that revbridge created (its PrivateNote names the deal)."""

    model_config = ConfigDict(frozen=True)

    invoice_id: str
    doc_number: str | None = None
    opportunity_id: str
    realm_id: str
    customer: str | None = None
    balance: Decimal
    total: Decimal | None = None
    currency: str | None = None
    txn_date: date | None = None
    due_date: date | None = None

    @classmethod
    def from_qbo(cls, row: Mapping[str, Any], realm_id: str) -> OpenInvoice | None:
        """The invoice, or None when revbridge did not create it (no marker) or it is settled."""
        opp_id = opportunity_id_from_invoice(row)
        balance = Decimal(str(row.get("Balance") or 0))
        if opp_id is None or balance <= 0:
            return None
        customer = row.get("CustomerRef") or {}
        return cls(
            invoice_id=str(row["Id"]),
            doc_number=row.get("DocNumber"),
            opportunity_id=opp_id,
            realm_id=realm_id,
            customer=customer.get("name"),
            balance=balance,
            total=Decimal(str(row["TotalAmt"])) if row.get("TotalAmt") is not None else None,
            currency=(row.get("CurrencyRef") or {}).get("value"),
            txn_date=_date(row.get("TxnDate")),
            due_date=_date(row.get("DueDate")),
        )

    @property
    def label(self) -> str:
        return f"#{self.doc_number}" if self.doc_number else f"Id {self.invoice_id}"


class StoredAging(BaseModel):
    """An Opportunity as the aging query reads it: what is stored now."""

    model_config = ConfigDict(frozen=True)

    id: str
    name: str = ""
    realm_id: str | None = None
    invoice_id: str | None = None
    days: int | None = None
    bucket: str | None = None
    currency: str | None = None
    owner_id: str | None = None
    owner_name: str | None = None
    owner_email: str | None = None
    account_name: str | None = None

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> StoredAging:
        owner = record.get("Owner") or {}
        days = record.get("Days_Outstanding__c")
        return cls(
            id=record["Id"],
            name=str(record.get("Name") or ""),
            realm_id=record.get("QB_Realm__c"),
            invoice_id=record.get("QB_Invoice_Id__c"),
            days=int(days) if days is not None else None,
            bucket=record.get("Aging_Bucket__c"),
            currency=record.get("CurrencyIsoCode"),
            owner_id=record.get("OwnerId") or owner.get("Id"),
            owner_name=owner.get("Name"),
            owner_email=owner.get("Email"),
            account_name=(record.get("Account") or {}).get("Name"),
        )


class AgingDecision(BaseModel):
    """What the run decides for one Opportunity."""

    model_config = ConfigDict(frozen=True)

    opportunity: StoredAging
    invoices: tuple[OpenInvoice, ...] = ()
    days: int | None = None  # days past due (0 when not due); None: nothing open
    bucket: Bucket | None = None
    write: bool = False
    alert: bool = False

    @property
    def balance(self) -> Decimal:
        return sum((i.balance for i in self.invoices), Decimal(0))

    @property
    def currency(self) -> str | None:
        return next((i.currency for i in self.invoices if i.currency), self.opportunity.currency)

    @property
    def realm_id(self) -> str | None:
        return self.invoices[0].realm_id if self.invoices else self.opportunity.realm_id

    @property
    def cleared(self) -> bool:
        return self.bucket is None and self.write


def age(
    stored: Iterable[StoredAging],
    open_invoices: Iterable[OpenInvoice],
    today: date,
    scanned_realms: Iterable[str],
) -> list[AgingDecision]:
    """Decide every Opportunity's aging fields and alert.

    ``stored``: the Opportunities with an open invoice or with aging fields set; ``open_invoices``:
    every open revbridge invoice of the ``scanned_realms`` (realm ids). A deal with several open
    invoices ages by the oldest. A deal with nothing open is cleared, unless its realm was not
    scanned (its query failed): then it is left alone.
    """
    scanned = set(scanned_realms)
    by_opp: dict[str, list[OpenInvoice]] = {}
    for invoice in open_invoices:
        by_opp.setdefault(invoice.opportunity_id, []).append(invoice)
    decisions: list[AgingDecision] = []
    for opp in stored:
        invoices = by_opp.get(opp.id, [])
        if invoices:
            days = max(days_past_due(i.due_date, i.txn_date, today) for i in invoices)
            bucket = bucket_for(days)
            shown = max(days, 0)
            decisions.append(
                AgingDecision(
                    opportunity=opp,
                    invoices=tuple(sorted(invoices, key=lambda i: i.invoice_id)),
                    days=shown,
                    bucket=bucket,
                    write=(shown, bucket) != (opp.days, opp.bucket),
                    alert=should_alert(opp.bucket, bucket),
                )
            )
        elif opp.realm_id is None or opp.realm_id in scanned:
            decisions.append(
                AgingDecision(opportunity=opp, write=opp.days is not None or opp.bucket is not None)
            )
    return decisions


def orphans(
    stored: Iterable[StoredAging], open_invoices: Iterable[OpenInvoice]
) -> list[OpenInvoice]:
    """Open invoices whose Opportunity is not in Salesforce (deleted, or another org's)."""
    known = {o.id for o in stored}
    return [i for i in open_invoices if i.opportunity_id not in known]


def aging_updates(decisions: Iterable[AgingDecision]) -> list[dict[str, Any]]:
    """``composite/sobjects`` PATCH bodies for the decisions that change a field."""
    records = [
        {
            "attributes": {"type": "Opportunity"},
            "Id": d.opportunity.id,
            "Days_Outstanding__c": d.days,
            "Aging_Bucket__c": d.bucket,
        }
        for d in decisions
        if d.write
    ]
    return [{"allOrNone": False, "records": part} for part in chunk(records, MAX_RECORDS)]


def opportunities_query(ids: Sequence[str]) -> str:
    """The aging fields of the given Opportunities (at most `MAX_IDS`)."""
    if not ids or len(ids) > MAX_IDS:
        raise ValueError(f"between 1 and {MAX_IDS} ids per query, got {len(ids)}")
    listed = ", ".join(quote(i) for i in dict.fromkeys(ids))
    return f"SELECT {', '.join(AGING_FIELDS)} FROM Opportunity WHERE Id IN ({listed}) ORDER BY Id"


def aged_query() -> str:
    """The Opportunities whose aging fields are set (a paid invoice must clear them)."""
    return (
        f"SELECT {', '.join(AGING_FIELDS)} FROM Opportunity "
        "WHERE Aging_Bucket__c != null OR Days_Outstanding__c != null ORDER BY Id"
    )


class BucketTotal(BaseModel):
    model_config = ConfigDict(frozen=True)

    bucket: Bucket
    currency: str
    count: int
    balance: Decimal


def bucket_totals(decisions: Iterable[AgingDecision]) -> list[BucketTotal]:
    """Open deals and balance per bucket and currency, in bucket order."""
    sums: dict[tuple[Bucket, str], tuple[int, Decimal]] = {}
    for d in decisions:
        if d.bucket is None:
            continue
        key = (d.bucket, d.currency or "")
        count, total = sums.get(key, (0, Decimal(0)))
        sums[key] = (count + 1, total + d.balance)
    return [
        BucketTotal(bucket=b, currency=c, count=n, balance=total)
        for (b, c), (n, total) in sorted(
            sums.items(), key=lambda kv: (BUCKETS.index(kv[0][0]), kv[0][1])
        )
    ]


def alert_text(decision: AgingDecision) -> str:
    """The owner's alert (mrkdwn) for a deal that moved to a worse bucket."""
    opp = decision.opportunity
    docs = ", ".join(i.label for i in decision.invoices)
    dates = [d for i in decision.invoices if (d := i.due_date or i.txn_date) is not None]
    due = min(dates) if dates else None
    was = f" (was {escape_slack(opp.bucket)})" if opp.bucket else ""
    return (
        f":warning: *{escape_slack(opp.name)}*: invoice {escape_slack(docs)} is now "
        f"*{decision.bucket}* days past due{was}: {decision.days} days since {due}, "
        f"open balance {_money(decision.balance, decision.currency)}."
    )


def digest_text(realm: str, decisions: Sequence[AgingDecision]) -> str:
    """The per-realm digest (mrkdwn): deals and balances per bucket, moves and clears."""
    totals = bucket_totals(decisions)
    open_count = sum(t.count for t in totals)
    lines = [f"*Receivables aging — {escape_slack(realm)}*: {open_count} open invoice(s)"]
    for t in totals:
        lines.append(f"• {t.bucket}: {t.count} ({_money(t.balance, t.currency)})")
    moved = [d for d in decisions if d.alert]
    if moved:
        lines.append(f":warning: moved to a worse bucket today: {len(moved)}")
        for d in moved[:5]:
            lines.append(f"   ◦ {escape_slack(d.opportunity.name)} → {d.bucket}")
        if len(moved) > 5:
            lines.append(f"   ◦ … and {len(moved) - 5} more in the run report")
    cleared = sum(1 for d in decisions if d.cleared)
    if cleared:
        lines.append(f":white_check_mark: settled since the last run: {cleared}")
    return "\n".join(lines)


def audit_rows(
    decisions: Iterable[AgingDecision], realm_names: Mapping[str, str]
) -> list[dict[str, Any]]:
    """One JSON-ready row per deal for the table artifact."""
    rows = []
    for d in decisions:
        rows.append(
            {
                "opportunity_id": d.opportunity.id,
                "name": d.opportunity.name,
                "realm": realm_names.get(d.realm_id or "", d.realm_id or ""),
                "invoices": ", ".join(i.label for i in d.invoices),
                "balance": str(d.balance) if d.invoices else "",
                "currency": d.currency or "",
                "days_past_due": d.days,
                "bucket": d.bucket or "",
                "previous_bucket": d.opportunity.bucket or "",
                "changed": d.write,
                "alerted": d.alert,
            }
        )
    return rows


def markdown_report(
    realm_totals: Mapping[str, Sequence[BucketTotal]], changes: int, alerts: int, cleared: int
) -> str:
    """The markdown artifact: per realm, deals and balances per bucket."""
    lines = [
        "# Receivables aging",
        "",
        f"Opportunities updated: {changes}; owners alerted: {alerts}; settled (cleared): "
        f"{cleared}.",
        "",
        "| Realm | Bucket | Open invoices | Balance |",
        "|---|---|---:|---:|",
    ]
    for realm, totals in realm_totals.items():
        for t in totals:
            lines.append(f"| {realm} | {t.bucket} | {t.count} | {_money(t.balance, t.currency)} |")
    if not any(realm_totals.values()):
        lines.append("| | _no open invoices_ | 0 | |")
    return "\n".join(lines)


def _money(amount: Decimal, currency: str | None) -> str:
    return f"{currency or ''} {amount:,.2f}".strip()


def _date(value: Any) -> date | None:
    if not value:
        return None
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])
