"""Invoice drafts: a validated Opportunity turned into the QuickBooks Invoice to create.

Money is exact. Every Salesforce line becomes one SalesItemLine with ``Amount = TotalPrice`` and
``Qty * UnitPrice == Amount`` exactly (QuickBooks checks that product):

- no discount: UnitPrice is the Salesforce UnitPrice;
- a discount: UnitPrice is TotalPrice / Qty when that is exact in at most `UNIT_PRICE_PLACES`
  decimals (15 seats at 600.00 less 10% → 540 each), and the description says
  "list 600.00, 10% discount";
- otherwise (3 at 100.00 less 1/3...): the line at its undiscounted price plus an explicit
  discount line of the same item (Qty 1, negative UnitPrice), so the invoice still totals
  TotalPrice to the cent and the discount is visible on the document;
- when even the undiscounted price is not whole cents (fractional quantities), `InvoiceError`.

The invoice therefore always totals the sum of the lines' TotalPrice, which `validate` has already
matched to the Opportunity Amount.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from revbridge.config import RealmConfig
from revbridge.ids import to_18
from revbridge.models import LineItem, Opportunity, Problem

UNIT_PRICE_PLACES = 5  # decimals of UnitPrice we send; QuickBooks stores more, its UI shows 5
CENT = Decimal("0.01")
MARKER_PREFIX = "revbridge:opportunity="
DESCRIPTION_MAX = 4000
MEMO_MAX = 1000
_MARKER = re.compile(re.escape(MARKER_PREFIX) + r"([0-9A-Za-z]{15,18})")


class InvoiceError(ValueError):
    """The deal cannot be drafted; ``problems`` say why (same shape as `validate`'s)."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("; ".join(str(p) for p in problems))


class DraftLine(BaseModel):
    model_config = ConfigDict(frozen=True)

    item_id: str
    item_name: str | None
    qty: Decimal
    unit_price: Decimal
    amount: Decimal
    description: str
    tax_code: str | None = None

    def payload(self, line_num: int) -> dict[str, Any]:
        detail: dict[str, Any] = {
            "ItemRef": {"value": self.item_id},
            "Qty": json_number(self.qty),
            "UnitPrice": json_number(self.unit_price),
        }
        if self.item_name:
            detail["ItemRef"]["name"] = self.item_name
        if self.tax_code:
            detail["TaxCodeRef"] = {"value": self.tax_code}
        return {
            "LineNum": line_num,
            "DetailType": "SalesItemLineDetail",
            "Amount": json_number(self.amount),
            "Description": self.description,
            "SalesItemLineDetail": detail,
        }


class InvoiceDraft(BaseModel):
    """One invoice to create; `payload` is the QuickBooks JSON, `request_id` its idempotency key."""

    model_config = ConfigDict(frozen=True)
    entity: ClassVar[str] = "Invoice"

    opportunity_id: str
    opportunity_name: str
    customer_id: str
    currency: str
    txn_date: date
    terms_id: str
    bill_email: str | None
    lines: tuple[DraftLine, ...]

    @property
    def record_id(self) -> str:
        return self.opportunity_id

    @property
    def total(self) -> Decimal:
        return sum((line.amount for line in self.lines), Decimal(0))

    @property
    def private_note(self) -> str:
        return invoice_marker(self.opportunity_id)

    def payload(self) -> dict[str, Any]:
        invoice: dict[str, Any] = {
            "CustomerRef": {"value": self.customer_id},
            "Line": [line.payload(n) for n, line in enumerate(self.lines, start=1)],
            "SalesTermRef": {"value": self.terms_id},
            "TxnDate": self.txn_date.isoformat(),
            "CurrencyRef": {"value": self.currency},
            "PrivateNote": self.private_note,
            "CustomerMemo": {"value": self.opportunity_name[:MEMO_MAX]},
        }
        if self.bill_email:
            invoice["BillEmail"] = {"Address": self.bill_email}
        return invoice

    @property
    def request_id(self) -> str:
        return request_id(self.opportunity_id, self.payload())


def build_invoice(
    opp: Opportunity,
    realm_cfg: RealmConfig,
    customer_id: str,
    items: Mapping[str, str],
    terms: Mapping[str, str],
    today: date,
) -> InvoiceDraft:
    """Draft the invoice for a validated ``opp``.

    ``items`` maps QuickBooks Item Name → Id and ``terms`` Term Name → Id (from the realm's
    queries). TxnDate is the CloseDate (today when the CloseDate is empty or in the future).
    Raises `InvoiceError` when the deal has no lines, a product or term cannot be resolved,
    or a line cannot be priced to the cent.
    """
    problems: list[Problem] = []

    def problem(field: str, reason: str) -> None:
        problems.append(Problem(record_id=opp.id, field=field, reason=reason))

    if not opp.line_items:
        problem("OpportunityLineItems", "no line items: refusing a zero-line invoice")
    lines: list[DraftLine] = []
    for index, line in enumerate(opp.line_items):
        where = f"OpportunityLineItems[{index}]"
        item = _resolve_item(line, realm_cfg, items)
        if isinstance(item, str):
            problem(f"{where}.ProductCode", item)
            continue
        priced = price_line(line, item, realm_cfg.tax_code)
        if isinstance(priced, str):
            problem(where, f"line {index + 1} ({line.label}): {priced}")
            continue
        inexact = [v for d in priced for v in (d.qty, d.unit_price, d.amount) if not json_exact(v)]
        if inexact:
            problem(
                where,
                f"line {index + 1} ({line.label}): {inexact[0]} has more digits than a "
                "QuickBooks amount carries exactly (a JSON number: about 15 significant)",
            )
            continue
        lines.extend(priced)

    terms_name = opp.payment_terms or realm_cfg.default_terms
    terms_id = _lookup(terms, terms_name) if terms_name else None
    if terms_id is None:
        problem(
            "Payment_Terms__c",
            f"payment terms {terms_name!r} do not exist in QuickBooks"
            if terms_name
            else "Payment_Terms__c is empty and the realm has no default_terms",
        )
    if problems:
        raise InvoiceError(problems)
    assert terms_id is not None
    txn_date = opp.close_date if opp.close_date and opp.close_date <= today else today
    return InvoiceDraft(
        opportunity_id=opp.id,
        opportunity_name=opp.name,
        customer_id=customer_id,
        currency=opp.currency or realm_cfg.currency,
        txn_date=txn_date,
        terms_id=terms_id,
        bill_email=opp.account.billing_email if opp.account else None,
        lines=tuple(lines),
    )


def price_line(
    line: LineItem, item: tuple[str, str | None], tax_code: str | None = None
) -> list[DraftLine] | str:
    """The invoice line(s) for one Salesforce line, or why it cannot be priced exactly."""
    item_id, item_name = item
    qty, unit, total = line.quantity, line.unit_price, line.total_price
    if qty is None or qty <= 0 or unit is None or total is None:
        return "Quantity, UnitPrice and TotalPrice are required"
    if total != total.quantize(CENT):
        return f"TotalPrice {total} is not a whole number of cents"
    total = total.quantize(CENT)
    discount = line.discount_pct
    note = f"list {_money(unit)}, {_percent(discount)}% discount" if discount else ""
    description = _describe(line, note)

    def draft(q: Decimal, u: Decimal, amount: Decimal, text: str) -> DraftLine:
        return DraftLine(
            item_id=item_id,
            item_name=item_name,
            qty=q,
            unit_price=u,
            amount=amount,
            description=text,
            tax_code=tax_code,
        )

    if qty * unit == total:
        return [draft(qty, unit, total, description)]
    per_unit = (total / qty).quantize(Decimal(1).scaleb(-UNIT_PRICE_PLACES))
    if per_unit * qty == total:
        return [draft(qty, _trim(per_unit), total, description)]
    gross = qty * unit
    if gross != gross.quantize(CENT):
        return (
            f"{qty} x {unit} = {gross} is not a whole number of cents, and no unit price of at "
            f"most {UNIT_PRICE_PLACES} decimals gives {total}"
        )
    gross = gross.quantize(CENT)
    adjustment = total - gross
    label = f"{_percent(discount)}% discount" if discount else "price adjustment"
    return [
        draft(qty, unit, gross, _describe(line, "")),
        draft(
            Decimal(1),
            adjustment,
            adjustment,
            f"{label} on {line.product_name or line.product_code}",
        ),
    ]


def request_id(opp_id: str, payload: Mapping[str, Any], prefix: str = "rb-inv") -> str:
    """A QuickBooks ``requestid`` (≤ 50 chars): prefix, the 18-character record Id, and a hash
    of the canonical payload. A retry of the same content replays QuickBooks' first answer; a
    corrected deal gets a new id, so it is not stuck replaying an old fault."""
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    digest = hashlib.sha256(canonical.encode()).hexdigest()[:16]
    return f"{prefix}-{to_18(opp_id)}-{digest}"


def invoice_marker(opp_id: str) -> str:
    """The PrivateNote marker that finds an invoice again after a crash."""
    return f"{MARKER_PREFIX}{to_18(opp_id)}"


def opportunity_id_from_invoice(invoice: Mapping[str, Any]) -> str | None:
    """The Opportunity Id in a QuickBooks Invoice's PrivateNote marker, if any."""
    found = _MARKER.search(str(invoice.get("PrivateNote") or ""))
    return found.group(1) if found else None


def json_number(value: Decimal) -> int | float:
    """A Decimal as a JSON number: an int when whole, else the float whose repr is the same
    digits (amounts and 5-decimal prices are far inside a float's 15 significant digits)."""
    if value == value.to_integral_value():
        return int(value)
    return float(value)


def json_exact(value: Decimal) -> bool:
    """Whether `json_number` sends ``value`` without changing it."""
    return value == value.to_integral_value() or Decimal(repr(float(value))) == value


def _resolve_item(
    line: LineItem, realm_cfg: RealmConfig, items: Mapping[str, str]
) -> tuple[str, str | None] | str:
    ref = realm_cfg.item_for(line.product_code)
    if ref is None:
        return f"product {line.label} has no QuickBooks item in the item map"
    if ref.id is not None:
        name = next((n for n, i in items.items() if i == ref.id), None)
        return ref.id, name
    assert ref.name is not None
    item_id = _lookup(items, ref.name)
    if item_id is None:
        return f"QuickBooks item {ref.name!r} (for {line.product_code}) does not exist"
    return item_id, ref.name


def _lookup(table: Mapping[str, str], name: str) -> str | None:
    if name in table:
        return table[name]
    folded = name.casefold()
    return next((v for k, v in table.items() if k.casefold() == folded), None)


def _describe(line: LineItem, note: str) -> str:
    text = line.product_name or line.product_code or ""
    if line.description:
        text = f"{text}: {line.description}" if text else line.description
    if note:
        text = f"{text} — {note}"
    return text[:DESCRIPTION_MAX]


def _money(value: Decimal) -> str:
    return str(value.quantize(CENT)) if value == value.quantize(CENT) else str(value)


def _percent(value: Decimal) -> str:
    return format(value.normalize(), "f")


def _trim(value: Decimal) -> Decimal:
    """Drop trailing zeros but keep cents: 540.00000 → 540.00, 33.33300 → 33.333."""
    trimmed = value.normalize()
    return trimmed if trimmed.as_tuple().exponent < -2 else value.quantize(CENT)  # type: ignore[operator]
