"""Contract renewals: which Contracts get their renewal invoice today, and that invoice.

Dates. A Contract's renewal date is its EndDate + 1 day (EndDate is Salesforce's StartDate +
ContractTerm months - 1 day, so a contract starting on 31 January for one month ends on 28/29
February and renews on 1 March). A run "as of" day D with ``days_ahead`` N invoices the Activated
contracts renewing on exactly D + N: TxnDate D, DueDate the renewal date.

Exactly once. A renewal R counts as invoiced when ``Last_Invoice_Date__c`` is later than one
month before R (the invoice for the previous renewal is dated at least a month earlier, and ours
is dated R - N with N ≤ `MAX_DAYS_AHEAD`); a ``QB_Renewal_Invoice_Id__c`` without a
``Last_Invoice_Date__c`` cannot be placed and goes to review rather than risk a second invoice.
After a crash between create and write-back the invoice is found again by its PrivateNote
marker ``revbridge:contract=<Id>:renewal=<date>``; and a retried batch replays QuickBooks' first
answer through its requestid (a hash of the batch body, which the Contract Ids, the renewal
date and the lines determine).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, timedelta
from decimal import Decimal
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict

from revbridge.batch import chunk
from revbridge.config import RealmConfig, RevbridgeConfig
from revbridge.ids import is_salesforce_id, to_18
from revbridge.invoices import MEMO_MAX, DraftLine, InvoiceError, price_line
from revbridge.models import Account, LineItem, Owner, Problem
from revbridge.report import escape_slack
from revbridge.soql import quote
from revbridge.writeback import MAX_RECORDS

MAX_DAYS_AHEAD = 27  # keeps "invoiced for this renewal" unambiguous (see the module docstring)
MAX_IDS = 500
DEFAULT_TERM_MONTHS = 12
_MARKER = re.compile(r"revbridge:contract=([0-9A-Za-z]{15,18}):renewal=(\d{4}-\d{2}-\d{2})")
CONTRACT_FIELDS = (
    "Id", "ContractNumber", "AccountId", "Status", "StartDate", "EndDate", "ContractTerm",
    "CurrencyIsoCode", "Auto_Renew__c", "Renewal_Product__c", "Renewal_Product__r.ProductCode",
    "Renewal_Product__r.Name", "Renewal_Quantity__c", "Renewal_Unit_Price__c",
    "Last_Invoice_Date__c", "QB_Renewal_Invoice_Id__c", "Owner.Id", "Owner.Name", "Owner.Email",
    "Account.Id", "Account.Name", "Account.Website", "Account.BillingStreet", "Account.BillingCity",
    "Account.BillingState", "Account.BillingPostalCode", "Account.BillingCountry", "Account.Phone",
    "Account.Billing_Email__c", "Account.QB_Customer_Id__c",
)  # fmt: skip

Eligibility = Literal["due", "not due", "inactive", "no auto-renew", "invoiced"]
RenewalOutcome = Literal["Invoiced", "Already Invoiced", "Needs Review", "Error", "Skipped"]


def add_months(day: date, months: int) -> date:
    """``day`` moved by whole months, clamped to the month's last day (31 Jan + 1 → 28/29 Feb)."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    following = date(year + (month == 12), month % 12 + 1, 1)
    return date(year, month, min(day.day, (following - timedelta(days=1)).day))


def renewal_date(end_date: date) -> date:
    """The day a contract renews: the day after it ends."""
    return end_date + timedelta(days=1)


def target_renewal(as_of: date, days_ahead: int) -> date:
    """The renewal date a run as of ``as_of`` invoices."""
    if not 0 <= days_ahead <= MAX_DAYS_AHEAD:
        raise ValueError(f"days_ahead must be between 0 and {MAX_DAYS_AHEAD}, got {days_ahead}")
    return as_of + timedelta(days=days_ahead)


class RenewalContract(BaseModel):
    """A Contract as the renewal query reads it."""

    model_config = ConfigDict(frozen=True)

    id: str
    number: str | None = None
    status: str | None = None
    start_date: date | None = None
    end_date: date | None = None
    term_months: int | None = None
    currency: str | None = None
    auto_renew: bool | None = None
    product_id: str | None = None
    product_code: str | None = None
    product_name: str | None = None
    quantity: Decimal | None = None
    unit_price: Decimal | None = None
    last_invoice_date: date | None = None
    renewal_invoice_id: str | None = None
    account: Account | None = None
    owner: Owner | None = None

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> RenewalContract:
        product = record.get("Renewal_Product__r") or {}
        account = record.get("Account")
        owner = record.get("Owner")
        term = record.get("ContractTerm")
        return cls(
            id=record["Id"],
            number=record.get("ContractNumber"),
            status=record.get("Status"),
            start_date=record.get("StartDate"),
            end_date=record.get("EndDate"),
            term_months=int(term) if term is not None else None,
            currency=record.get("CurrencyIsoCode"),
            auto_renew=record.get("Auto_Renew__c"),
            product_id=record.get("Renewal_Product__c"),
            product_code=product.get("ProductCode"),
            product_name=product.get("Name"),
            quantity=record.get("Renewal_Quantity__c"),
            unit_price=record.get("Renewal_Unit_Price__c"),
            last_invoice_date=record.get("Last_Invoice_Date__c"),
            renewal_invoice_id=record.get("QB_Renewal_Invoice_Id__c") or None,
            account=Account.from_record(account) if account else None,
            owner=Owner.from_record(owner) if owner else None,
        )

    @property
    def label(self) -> str:
        name = self.account.name if self.account else "no account"
        return f"Contract {self.number or self.id} ({name})"

    @property
    def renewal(self) -> date | None:
        return renewal_date(self.end_date) if self.end_date else None


def eligibility(contract: RenewalContract, renewal: date) -> Eligibility:
    """Whether ``contract`` gets an invoice for the renewal on ``renewal`` (a date)."""
    if contract.status != "Activated":
        return "inactive"
    if contract.renewal != renewal:
        return "not due"
    if contract.auto_renew is False:
        return "no auto-renew"
    if already_invoiced(contract, renewal):
        return "invoiced"
    return "due"


def already_invoiced(contract: RenewalContract, renewal: date) -> bool:
    """Whether ``Last_Invoice_Date__c`` says the renewal on ``renewal`` is invoiced."""
    last = contract.last_invoice_date
    return last is not None and last > add_months(renewal, -1)


def check_contract(contract: RenewalContract, realm_cfg: RealmConfig) -> list[Problem]:
    """What stops a due contract from being invoiced, by field (empty: nothing)."""
    problems: list[Problem] = []

    def problem(field: str, reason: str) -> None:
        problems.append(Problem(record_id=contract.id, field=field, reason=reason))

    if contract.renewal_invoice_id and contract.last_invoice_date is None:
        problem(
            "Last_Invoice_Date__c",
            f"empty while QB_Renewal_Invoice_Id__c is {contract.renewal_invoice_id}: cannot tell "
            "which renewal that invoice was for",
        )
    if contract.account is None:
        problem("AccountId", "the contract has no account to invoice")
    if not contract.product_id:
        problem("Renewal_Product__c", "no renewal product")
    elif realm_cfg.item_for(contract.product_code) is None:
        problem(
            "Renewal_Product__c",
            f"product {contract.product_code or contract.product_id} has no QuickBooks item in "
            "the realm's item map",
        )
    if contract.quantity is None:
        problem("Renewal_Quantity__c", "no renewal quantity")
    elif contract.quantity <= 0:
        problem("Renewal_Quantity__c", f"must be positive, is {contract.quantity}")
    if contract.unit_price is None:
        problem("Renewal_Unit_Price__c", "no renewal unit price")
    elif contract.unit_price <= 0:
        problem("Renewal_Unit_Price__c", f"must be positive, is {contract.unit_price}")
    return problems


def route_renewal(
    contract: RenewalContract, record_type: str | None, config: RevbridgeConfig
) -> str | Problem:
    """The realm of a contract: its Account's latest Opportunity record type, else the
    configured ``routing.default``."""
    if record_type:
        for name, realm in config.realms.items():
            if record_type in realm.record_types:
                return name
    if config.routing.default:
        return config.routing.default
    return Problem(
        record_id=contract.id,
        field="AccountId",
        reason=(
            f"no realm: the account's latest Opportunity record type is {record_type or '(none)'}"
            " and routing.default is not set"
        ),
    )


def renewal_marker(contract_id: str, renewal: date) -> str:
    """The PrivateNote marker that finds a renewal invoice again after a crash."""
    return f"revbridge:contract={to_18(contract_id)}:renewal={renewal.isoformat()}"


def renewal_from_invoice(invoice: Mapping[str, Any]) -> tuple[str, date] | None:
    """(Contract Id, renewal date) from a QuickBooks Invoice's PrivateNote marker, if any."""
    found = _MARKER.search(str(invoice.get("PrivateNote") or ""))
    return (found.group(1), date.fromisoformat(found.group(2))) if found else None


class RenewalDraft(BaseModel):
    """One renewal invoice to create (a `revbridge.batch.Creatable`)."""

    model_config = ConfigDict(frozen=True)
    entity: ClassVar[str] = "Invoice"

    contract_id: str
    contract_label: str
    customer_id: str
    currency: str
    txn_date: date
    renewal: date
    period_end: date
    line: DraftLine
    bill_email: str | None = None

    @property
    def record_id(self) -> str:
        return self.contract_id

    @property
    def total(self) -> Decimal:
        return self.line.amount

    def payload(self) -> dict[str, Any]:
        invoice: dict[str, Any] = {
            "CustomerRef": {"value": self.customer_id},
            "Line": [self.line.payload(1)],
            "TxnDate": self.txn_date.isoformat(),
            "DueDate": self.renewal.isoformat(),
            "CurrencyRef": {"value": self.currency},
            "PrivateNote": renewal_marker(self.contract_id, self.renewal),
            "CustomerMemo": {
                "value": f"Renewal of {self.contract_label}: {self.renewal} to {self.period_end}"[
                    :MEMO_MAX
                ]
            },
        }
        if self.bill_email:
            invoice["BillEmail"] = {"Address": self.bill_email}
        return invoice


def build_renewal_invoice(
    contract: RenewalContract,
    realm_cfg: RealmConfig,
    customer_id: str,
    items: Mapping[str, str],
    as_of: date,
    renewal: date,
) -> RenewalDraft:
    """The renewal invoice of a contract `check_contract` accepted. ``items`` maps QuickBooks
    Item Name → Id. Raises `InvoiceError` when the item is missing from QuickBooks or the line
    cannot be priced to the cent."""
    problems = check_contract(contract, realm_cfg)
    if problems:
        raise InvoiceError(problems)
    ref = realm_cfg.item_for(contract.product_code)
    assert ref is not None and contract.quantity is not None and contract.unit_price is not None
    if ref.id is not None:
        item: tuple[str, str | None] = (
            ref.id,
            next((n for n, i in items.items() if i == ref.id), None),
        )
    else:
        assert ref.name is not None
        found = next((i for n, i in items.items() if n.casefold() == ref.name.casefold()), None)
        if found is None:
            raise InvoiceError(
                [
                    Problem(
                        record_id=contract.id,
                        field="Renewal_Product__c",
                        reason=f"QuickBooks item {ref.name!r} (for {contract.product_code}) "
                        "does not exist",
                    )
                ]
            )
        item = (found, ref.name)
    period_end = add_months(renewal, contract.term_months or DEFAULT_TERM_MONTHS) - timedelta(1)
    line = LineItem(
        product_code=contract.product_code,
        product_name=contract.product_name or contract.product_code or "",
        quantity=contract.quantity,
        unit_price=contract.unit_price,
        total_price=contract.quantity * contract.unit_price,
        description=f"renewal {renewal} to {period_end}",
    )
    priced = price_line(line, item, realm_cfg.tax_code)
    if isinstance(priced, str):
        raise InvoiceError(
            [Problem(record_id=contract.id, field="Renewal_Unit_Price__c", reason=priced)]
        )
    return RenewalDraft(
        contract_id=contract.id,
        contract_label=f"contract {contract.number or contract.id}",
        customer_id=customer_id,
        currency=contract.currency or realm_cfg.currency,
        txn_date=as_of,
        renewal=renewal,
        period_end=period_end,
        line=priced[0],
        bill_email=contract.account.billing_email if contract.account else None,
    )


class ContractUpdate(BaseModel):
    """What is written back to a contract whose renewal is invoiced."""

    model_config = ConfigDict(frozen=True)

    contract_id: str
    invoice_id: str
    invoice_date: date


def contract_updates(updates: Iterable[ContractUpdate]) -> list[dict[str, Any]]:
    """``composite/sobjects`` PATCH bodies: Last_Invoice_Date__c and QB_Renewal_Invoice_Id__c."""
    records = [
        {
            "attributes": {"type": "Contract"},
            "Id": u.contract_id,
            "Last_Invoice_Date__c": u.invoice_date.isoformat(),
            "QB_Renewal_Invoice_Id__c": u.invoice_id,
        }
        for u in updates
    ]
    return [{"allOrNone": False, "records": part} for part in chunk(records, MAX_RECORDS)]


def contracts_query(renewal: date) -> str:
    """Activated contracts renewing on ``renewal`` (ending the day before)."""
    end = renewal - timedelta(days=1)
    return (
        f"SELECT {', '.join(CONTRACT_FIELDS)} FROM Contract "
        f"WHERE Status = 'Activated' AND EndDate = {end.isoformat()} ORDER BY Id"
    )


def latest_record_type_query(account_ids: Sequence[str]) -> str:
    """Per account, the record type of its latest Opportunity (by CloseDate)."""
    ids = list(dict.fromkeys(account_ids))
    if not ids or len(ids) > MAX_IDS:
        raise ValueError(f"between 1 and {MAX_IDS} account ids per query, got {len(ids)}")
    bad = [i for i in ids if not is_salesforce_id(i)]
    if bad:
        raise ValueError(f"not Salesforce Ids: {', '.join(map(repr, bad))}")
    return (
        "SELECT Id, (SELECT RecordType.DeveloperName, CloseDate FROM Opportunities "
        "WHERE RecordTypeId != null ORDER BY CloseDate DESC, CreatedDate DESC LIMIT 1) "
        f"FROM Account WHERE Id IN ({', '.join(quote(i) for i in ids)})"
    )


def latest_record_types(records: Iterable[Mapping[str, Any]]) -> dict[str, str | None]:
    """Account Id → record type DeveloperName from `latest_record_type_query` rows."""
    found: dict[str, str | None] = {}
    for record in records:
        opps = (record.get("Opportunities") or {}).get("records") or []
        found[record["Id"]] = (
            (opps[0].get("RecordType") or {}).get("DeveloperName") if opps else None
        )
    return found


class RenewalRow(BaseModel):
    """One line of the run report."""

    model_config = ConfigDict(frozen=True)

    contract_id: str
    contract: str
    realm: str = ""
    customer: str | None = None
    amount: Decimal | None = None
    currency: str | None = None
    renewal: date | None = None
    outcome: RenewalOutcome
    invoice_id: str | None = None
    doc_number: str | None = None
    reason: str = ""


def markdown_report(rows: Sequence[RenewalRow], renewal: date) -> str:
    """The run's markdown table (pipes escaped)."""
    if not rows:
        return f"_No contracts renew on {renewal}._"
    header = "| Contract | Realm | Customer | Amount | Renewal | Outcome | Invoice | Reason |"
    lines = [header, "|---|---|---|---:|---|---|---|---|"]
    for r in rows:
        invoice = f"#{r.doc_number} (Id {r.invoice_id})" if r.doc_number else r.invoice_id or ""
        cells = (
            r.contract,
            r.realm,
            r.customer or "",
            _money(r.amount, r.currency),
            str(r.renewal or ""),
            r.outcome,
            invoice,
            r.reason,
        )
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(lines)


def slack_summary(rows: Sequence[RenewalRow], renewal: date) -> str:
    """Counts per outcome with invoiced totals, and the contracts needing a human (mrkdwn)."""
    lines = [f"*Contract renewals for {renewal}*: {len(rows)} contract(s)"]
    for outcome in ("Invoiced", "Already Invoiced", "Needs Review", "Error", "Skipped"):
        picked = [r for r in rows if r.outcome == outcome]
        if not picked:
            continue
        line = f"• {outcome}: {len(picked)}"
        if outcome == "Invoiced":
            sums: dict[str, Decimal] = {}
            for r in picked:
                sums[r.currency or ""] = sums.get(r.currency or "", Decimal(0)) + (r.amount or 0)
            line += " (" + ", ".join(_money(v, k) for k, v in sorted(sums.items())) + ")"
        lines.append(line)
    attention = [r for r in rows if r.outcome in {"Needs Review", "Error"}]
    for r in attention[:5]:
        reason = " ".join(r.reason.split())
        lines.append(f"   ◦ {escape_slack(r.contract)}: {escape_slack(reason)}")
    if len(attention) > 5:
        lines.append(f"   ◦ … and {len(attention) - 5} more in the run report")
    return "\n".join(lines)


def problems_text(problems: Iterable[Problem]) -> str:
    return "; ".join(f"{p.field}: {p.reason}" for p in problems)


def _money(amount: Decimal | None, currency: str | None) -> str:
    return "" if amount is None else f"{currency or ''} {amount:,.2f}".strip()


def _cell(text: str) -> str:
    return " ".join(text.replace("\\", "\\\\").replace("|", "\\|").split())
