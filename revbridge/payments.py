"""Payments → Salesforce: what a QuickBooks invoice's balance means for its Opportunity.

The rules, all pure:

- `payment_status`: Paid when Balance is 0 and TotalAmt > 0; Partially Paid when
  0 < Balance < TotalAmt; Unpaid otherwise. Credit memos applied to an invoice lower its Balance
  exactly like payments, so they count as paid (``Amount_Paid__c = TotalAmt - Balance``).
- A voided invoice (amounts 0, PrivateNote "Voided ...") or a deleted one (a CDC tombstone, or
  an Id QuickBooks no longer returns) makes its deal Unpaid, and Needs Review with a note: the
  payments it had are released and a person decides whether to invoice again.
- An invoice speaks for the Opportunity its PrivateNote marker names only while that Opportunity
  links it (``QB_Invoice_Id__c``): an old voided invoice of a re-invoiced deal changes nothing.
- `decide` writes only the fields whose value changes; a fully paid deal moves from Closed Won to
  the configured post-closed stage (and back when it stops being paid).

Plus the CDC bookkeeping (where a sweep starts, how far its watermark may move) and the run's
report (write-back bodies, Slack texts, the audit table).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from revbridge.ids import to_18
from revbridge.invoices import json_number, opportunity_id_from_invoice
from revbridge.report import escape_slack
from revbridge.soql import quote
from revbridge.writeback import MAX_RECORDS

PaymentStatus = Literal["Unpaid", "Partially Paid", "Paid"]
Notice = Literal["paid", "partial", "review"]
RowOutcome = Literal["Updated", "Unchanged", "Needs Review", "Skipped", "Unapplied", "Error"]

WON_STAGE = "Closed Won"
CDC_ENTITIES = ("Invoice", "Payment", "CreditMemo")
CDC_MAX_DAYS = 30
CDC_MAX_OBJECTS = 1000
CDC_MARGIN = timedelta(minutes=10)  # start no closer than this to QuickBooks' 30-day edge
CDC_OVERLAP = timedelta(minutes=1)  # re-read the last minute: rows committed late are not lost
MAX_IDS = 500
CENT = Decimal("0.01")
OPPORTUNITY_FIELDS = (
    "Id", "Name", "StageName", "CurrencyIsoCode", "Payment_Status__c", "Amount_Paid__c",
    "QB_Invoice_Id__c", "QB_DocNumber__c", "QB_Realm__c", "QB_Sync_Status__c", "QB_Sync_Error__c",
    "Owner.Name", "Owner.Email",
)  # fmt: skip


def payment_status(total: Decimal, balance: Decimal) -> PaymentStatus:
    """The status of an invoice of ``total`` with ``balance`` still open."""
    if total > 0 and balance <= 0:
        return "Paid"
    if 0 < balance < total:
        return "Partially Paid"
    return "Unpaid"


def _decimal(value: Any) -> Decimal:
    try:
        return Decimal(str(value)) if value not in (None, "") else Decimal(0)
    except InvalidOperation:
        raise ValueError(f"not a number: {value!r}") from None


class InvoiceState(BaseModel):
    """A QuickBooks invoice as the payment rules see it."""

    model_config = ConfigDict(frozen=True)

    invoice_id: str
    doc_number: str | None = None
    opportunity_id: str | None = None
    total: Decimal = Decimal(0)
    balance: Decimal = Decimal(0)
    currency: str | None = None
    voided: bool = False
    deleted: bool = False

    @classmethod
    def from_qbo(cls, row: Mapping[str, Any]) -> InvoiceState:
        """From an Invoice as a query, a read or CDC returns it (a CDC tombstone included)."""
        invoice_id = str(row["Id"])
        if str(row.get("status") or "") == "Deleted":
            return cls.gone(invoice_id)
        total = _decimal(row.get("TotalAmt"))
        note = str(row.get("PrivateNote") or "")
        opp_id = opportunity_id_from_invoice(row)
        return cls(
            invoice_id=invoice_id,
            doc_number=str(row["DocNumber"]) if row.get("DocNumber") else None,
            opportunity_id=to_18(opp_id) if opp_id else None,
            total=total,
            balance=_decimal(row.get("Balance")),
            currency=(row.get("CurrencyRef") or {}).get("value"),
            voided=total == 0 and note.startswith("Voided"),
        )

    @classmethod
    def gone(cls, invoice_id: str) -> InvoiceState:
        """An invoice deleted in QuickBooks (a tombstone, or an Id it no longer returns)."""
        return cls(invoice_id=invoice_id, deleted=True)

    @property
    def status(self) -> PaymentStatus:
        if self.voided or self.deleted:
            return "Unpaid"
        return payment_status(self.total, self.balance)

    @property
    def amount_paid(self) -> Decimal:
        """TotalAmt - Balance (payments and credits alike); 0 once voided or deleted."""
        if self.voided or self.deleted:
            return Decimal("0.00")
        return max(self.total - self.balance, Decimal(0)).quantize(CENT)

    @property
    def label(self) -> str:
        return f"{self.doc_number} (Id {self.invoice_id})" if self.doc_number else self.invoice_id

    @property
    def review_reason(self) -> str | None:
        if self.voided:
            return (
                f"QuickBooks invoice {self.label} was voided: its payments were released and "
                "the deal is unpaid; decide whether to invoice it again"
            )
        if self.deleted:
            return (
                f"QuickBooks invoice {self.invoice_id} was deleted: the deal is unpaid; decide "
                "whether to invoice it again (clear QB_Invoice_Id__c to let revbridge do it)"
            )
        return None


class OpportunityPayment(BaseModel):
    """What Salesforce holds now for an invoiced Opportunity."""

    model_config = ConfigDict(frozen=True)

    id: str
    name: str = ""
    stage: str = ""
    currency: str | None = None
    payment_status: str | None = None
    amount_paid: Decimal | None = None
    invoice_id: str | None = None
    realm_id: str | None = None
    sync_status: str | None = None
    sync_error: str | None = None
    owner_name: str | None = None
    owner_email: str | None = None

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> OpportunityPayment:
        owner = record.get("Owner") or {}
        paid = record.get("Amount_Paid__c")
        return cls(
            id=to_18(str(record["Id"])),
            name=str(record.get("Name") or ""),
            stage=str(record.get("StageName") or ""),
            currency=record.get("CurrencyIsoCode"),
            payment_status=record.get("Payment_Status__c"),
            amount_paid=_decimal(paid) if paid is not None else None,
            invoice_id=record.get("QB_Invoice_Id__c"),
            realm_id=record.get("QB_Realm__c"),
            sync_status=record.get("QB_Sync_Status__c"),
            sync_error=record.get("QB_Sync_Error__c"),
            owner_name=owner.get("Name"),
            owner_email=owner.get("Email"),
        )


class PaymentChange(BaseModel):
    """What one invoice means for its Opportunity: the fields to write (only those that change)
    and whether to tell the owner."""

    model_config = ConfigDict(frozen=True)

    opportunity: OpportunityPayment
    invoice: InvoiceState
    fields: dict[str, Any]
    notice: Notice | None = None

    @property
    def changed(self) -> bool:
        return bool(self.fields)


def decide(
    opp: OpportunityPayment,
    invoice: InvoiceState,
    post_closed_stage: str,
    now: datetime,
) -> PaymentChange:
    """The fields of ``opp`` that ``invoice`` changes, and the owner's notice, if any."""
    status = invoice.status
    paid = invoice.amount_paid
    fields: dict[str, Any] = {}
    if opp.payment_status != status:
        fields["Payment_Status__c"] = status
    previous = opp.amount_paid.quantize(CENT) if opp.amount_paid is not None else None
    if previous != paid:
        fields["Amount_Paid__c"] = json_number(paid)
    if status == "Paid" and opp.stage == WON_STAGE and post_closed_stage != WON_STAGE:
        fields["StageName"] = post_closed_stage
    elif status != "Paid" and opp.stage == post_closed_stage and post_closed_stage != WON_STAGE:
        fields["StageName"] = WON_STAGE

    notice: Notice | None = None
    reason = invoice.review_reason
    if reason is not None:
        if not (opp.sync_status == "Needs Review" and reason in (opp.sync_error or "")):
            stamp = now.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
            fields["QB_Sync_Status__c"] = "Needs Review"
            fields["QB_Sync_Error__c"] = f"{stamp}: {reason}"
            notice = "review"
    elif "Payment_Status__c" in fields and status == "Paid":
        notice = "paid"
    elif status == "Partially Paid" and (
        "Payment_Status__c" in fields or (previous is not None and paid > previous)
    ):
        notice = "partial"
    return PaymentChange(opportunity=opp, invoice=invoice, fields=fields, notice=notice)


class Skip(BaseModel):
    model_config = ConfigDict(frozen=True)

    invoice: InvoiceState
    opportunity_id: str | None
    reason: str


def pair_invoices(
    invoices: Iterable[InvoiceState], opps: Iterable[OpportunityPayment], realm_id: str
) -> tuple[list[tuple[OpportunityPayment, InvoiceState]], list[Skip]]:
    """Each invoice with the Opportunity it speaks for. A live invoice needs its marker, and the
    marked Opportunity must link it (in this realm); a deleted one is found by the link alone.
    Invoices without a marker or a link (not revbridge's) are left out silently."""
    by_id = {o.id: o for o in opps}
    by_link = {(o.realm_id, o.invoice_id): o for o in by_id.values() if o.invoice_id and o.realm_id}
    pairs: list[tuple[OpportunityPayment, InvoiceState]] = []
    skipped: list[Skip] = []
    for invoice in invoices:
        linked = by_link.get((realm_id, invoice.invoice_id))
        if invoice.opportunity_id is None:
            if linked is not None:
                pairs.append((linked, invoice))
            continue
        opp = by_id.get(invoice.opportunity_id)
        if opp is None:
            skipped.append(
                Skip(
                    invoice=invoice,
                    opportunity_id=invoice.opportunity_id,
                    reason="its Opportunity does not exist in Salesforce",
                )
            )
        elif opp.invoice_id == invoice.invoice_id and opp.realm_id == realm_id:
            pairs.append((opp, invoice))
        elif not opp.invoice_id:
            skipped.append(
                Skip(
                    invoice=invoice,
                    opportunity_id=opp.id,
                    reason="not linked to its Opportunity yet (the Closed Won flow writes it)",
                )
            )
        else:
            skipped.append(
                Skip(
                    invoice=invoice,
                    opportunity_id=opp.id,
                    reason=f"the Opportunity links another invoice ({opp.invoice_id})",
                )
            )
    return pairs, skipped


# ---- payments and credit memos ---------------------------------------------------------------
def linked_ids(document: Mapping[str, Any], txn_type: str) -> list[str]:
    """Ids of the ``txn_type`` transactions a Payment's lines (or a document's LinkedTxn) name."""
    links = list(document.get("LinkedTxn") or [])
    for line in document.get("Line") or []:
        links += line.get("LinkedTxn") or []
    ids = [str(link.get("TxnId")) for link in links if link.get("TxnType") == txn_type]
    return sorted(set(ids), key=ids.index)


def unapplied_amount(payment: Mapping[str, Any]) -> Decimal:
    """What a Payment holds that is applied to no invoice (a credit on the customer)."""
    if str(payment.get("status") or "") == "Deleted":
        return Decimal(0)
    return _decimal(payment.get("UnappliedAmt"))


def unapplied_news(
    payments: Iterable[Mapping[str, Any]], known: Mapping[str, str]
) -> tuple[list[tuple[Mapping[str, Any], bool]], dict[str, str]]:
    """Each payment holding unapplied money, with whether that is news (not reported before at
    this amount); and the map to keep (payment Id → amount reported). A payment that is fully
    applied again (or deleted) leaves the map, so the map stays small."""
    remembered = dict(known)
    found: list[tuple[Mapping[str, Any], bool]] = []
    for payment in payments:
        payment_id = str(payment["Id"])
        amount = unapplied_amount(payment)
        if amount <= 0:
            remembered.pop(payment_id, None)
            continue
        text = str(amount.quantize(CENT))
        found.append((payment, remembered.get(payment_id) != text))
        remembered[payment_id] = text
    return found, remembered


# ---- CDC -------------------------------------------------------------------------------------
def cdc_start(watermark: datetime | None, now: datetime) -> datetime:
    """Where a sweep starts: the watermark, never more than 30 days back (QuickBooks refuses
    older; a first run starts at the edge)."""
    edge = now - timedelta(days=CDC_MAX_DAYS) + CDC_MARGIN
    return edge if watermark is None or watermark < edge else watermark


def cdc_rows(answer: Mapping[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """``{entity: rows}`` from a ``GET cdc`` answer."""
    rows: dict[str, list[dict[str, Any]]] = {}
    for response in answer.get("CDCResponse") or []:
        for part in response.get("QueryResponse") or []:
            for name, value in part.items():
                if isinstance(value, list):
                    rows.setdefault(name, []).extend(value)
    return rows


def qbo_time(text: str) -> datetime:
    """A QuickBooks timestamp (``2026-11-23T02:00:00.123-08:00``) as an aware datetime."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def last_updated(row: Mapping[str, Any]) -> datetime | None:
    stamp = (row.get("MetaData") or {}).get("LastUpdatedTime")
    return qbo_time(str(stamp)) if stamp else None


def cdc_truncated(rows: Mapping[str, Sequence[Any]]) -> bool:
    """QuickBooks answers at most 1,000 objects: a full answer may have left some out."""
    return sum(len(v) for v in rows.values()) >= CDC_MAX_OBJECTS


def next_watermark(since: datetime, answered: datetime | None, rows: Sequence[Any]) -> datetime:
    """Where the next read of one entity starts. A complete answer moves to the time QuickBooks
    answered (less an overlap); a full one only to its last row's time (rows at that instant are
    read again, harmlessly)."""
    if len(rows) < CDC_MAX_OBJECTS:
        end = (answered or since) - CDC_OVERLAP
        return max(end, since)
    stamps = [s for s in (last_updated(r) for r in rows) if s is not None]
    return max([since, *stamps])


# ---- Salesforce ------------------------------------------------------------------------------
def opportunities_query(realm_id: str, invoice_ids: Sequence[str], opp_ids: Sequence[str]) -> str:
    """The Opportunities that link any of ``invoice_ids`` in the realm, or whose Id is in
    ``opp_ids`` (the invoices' markers). At most `MAX_IDS` of each: callers chunk."""
    if len(invoice_ids) > MAX_IDS or len(opp_ids) > MAX_IDS:
        raise ValueError(f"at most {MAX_IDS} ids of each kind per query")
    clauses = []
    if invoice_ids:
        ids = ", ".join(quote(i) for i in invoice_ids)
        clauses.append(f"(QB_Realm__c = {quote(realm_id)} AND QB_Invoice_Id__c IN ({ids}))")
    if opp_ids:
        clauses.append(f"Id IN ({', '.join(quote(i) for i in opp_ids)})")
    if not clauses:
        raise ValueError("no invoice or Opportunity ids")
    return f"SELECT {', '.join(OPPORTUNITY_FIELDS)} FROM Opportunity WHERE {' OR '.join(clauses)}"


def payment_updates(changes: Iterable[PaymentChange]) -> list[dict[str, Any]]:
    """``composite/sobjects`` PATCH bodies (≤ 200 records, ``allOrNone`` false) with only the
    changed fields of each Opportunity."""
    records = [
        {"attributes": {"type": "Opportunity"}, "Id": c.opportunity.id, **c.fields}
        for c in changes
        if c.changed
    ]
    return [
        {"allOrNone": False, "records": records[i : i + MAX_RECORDS]}
        for i in range(0, len(records), MAX_RECORDS)
    ]


# ---- report ----------------------------------------------------------------------------------
def _money(amount: Decimal, currency: str | None) -> str:
    return f"{currency + ' ' if currency else ''}{amount:,.2f}"


def owner_message(change: PaymentChange, mention: str | None = None) -> str:
    """The Slack text for the deal's owner (``mention``: ``<@U…>`` when not a DM)."""
    opp, invoice = change.opportunity, change.invoice
    who = f"{mention} " if mention else ""
    name = escape_slack(opp.name or opp.id)
    currency = invoice.currency or opp.currency
    if change.notice == "paid":
        return (
            f":moneybag: {who}*{name}* is paid in full: invoice {escape_slack(invoice.label)}, "
            f"{_money(invoice.total, currency)}."
        )
    if change.notice == "partial":
        return (
            f":heavy_dollar_sign: {who}*{name}* is partially paid: "
            f"{_money(invoice.amount_paid, currency)} of {_money(invoice.total, currency)} "
            f"(invoice {escape_slack(invoice.label)}, {_money(invoice.balance, currency)} open)."
        )
    reason = invoice.review_reason or "needs review"
    return f":mag: {who}*{name}* needs review: {escape_slack(reason)}."


class PaymentRow(BaseModel):
    """One line of the run's audit table."""

    model_config = ConfigDict(frozen=True)

    realm: str
    invoice: str
    opportunity_id: str | None = None
    name: str | None = None
    status: str | None = None
    amount_paid: str | None = None
    total: str | None = None
    outcome: RowOutcome
    reason: str = ""
    announce: bool = True  # False: listed in the artifact only (already said in Slack)

    @classmethod
    def of(
        cls, realm: str, change: PaymentChange, outcome: RowOutcome, reason: str = ""
    ) -> PaymentRow:
        invoice, currency = change.invoice, change.invoice.currency or change.opportunity.currency
        return cls(
            realm=realm,
            invoice=invoice.label,
            opportunity_id=change.opportunity.id,
            name=change.opportunity.name,
            status=invoice.status,
            amount_paid=_money(invoice.amount_paid, currency),
            total=_money(invoice.total, currency),
            outcome=outcome,
            reason=reason or ", ".join(sorted(change.fields)),
        )


def markdown_report(rows: Sequence[PaymentRow], title: str) -> str:
    """The run's markdown artifact: counts, then every row that is not Unchanged."""
    counts: dict[str, int] = {}
    for row in rows:
        counts[row.outcome] = counts.get(row.outcome, 0) + 1
    lines = [f"# {title}", ""]
    lines.append(", ".join(f"{k}: {v}" for k, v in counts.items()) or "nothing to do")
    shown = [r for r in rows if r.outcome != "Unchanged"]
    if shown:
        lines += [
            "",
            "| Realm | Invoice | Opportunity | Name | Status | Paid | Total | Outcome | Reason |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for r in shown:
            cells = (r.realm, r.invoice, r.opportunity_id, r.name, r.status, r.amount_paid,
                     r.total, r.outcome, r.reason)  # fmt: skip
            lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(lines) + "\n"


def slack_summary(rows: Sequence[PaymentRow], title: str) -> str | None:
    """A short summary for the alerts channel, or None when nothing needs saying."""
    review = [r for r in rows if r.announce and r.outcome in ("Needs Review", "Error", "Unapplied")]
    updated = [r for r in rows if r.outcome == "Updated"]
    if not review and not updated:
        return None
    paid = sum(1 for r in updated if r.status == "Paid")
    partial = sum(1 for r in updated if r.status == "Partially Paid")
    text = (
        f"*{escape_slack(title)}*: {len(updated)} deal(s) updated ({paid} paid, {partial} partial)"
    )
    for row in review[:5]:
        who = row.name or row.opportunity_id or "no deal"
        text += f"\n• {row.outcome}: {escape_slack(who)} — {escape_slack(row.reason)}"
    if len(review) > 5:
        text += f"\n• … and {len(review) - 5} more (see the run's artifact)"
    return text


def _cell(value: str | None) -> str:
    return (value or "").replace("|", "\\|").replace("\n", " ")


__all__ = [
    "CDC_ENTITIES",
    "InvoiceState",
    "OpportunityPayment",
    "PaymentChange",
    "PaymentRow",
    "cdc_rows",
    "cdc_start",
    "decide",
    "linked_ids",
    "next_watermark",
    "opportunities_query",
    "pair_invoices",
    "payment_status",
    "payment_updates",
]
