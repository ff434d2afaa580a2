"""Opportunities as the flow's one SOQL query returns them, parsed into exact, typed models.

simple-salesforce hands back dicts: parent lookups nest (``{"Account": {...} | None}``), the line
item subquery nests as a query result (``{"totalSize", "done", "records"}`` or ``None``), every
record carries ``"attributes"``, numbers may be floats (converted through ``str`` so 0.1 stays
0.1), datetimes look like ``2026-11-23T10:00:00.000+0000``. Names are cleaned of control and
format characters on the way in (`revbridge.text.clean_text`); a name that is empty afterwards is
left empty for `revbridge.validate` to report.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict

from revbridge.text import clean_text


class Problem(BaseModel):
    """Why a record cannot go through: the record, the field, the reason."""

    model_config = ConfigDict(frozen=True)

    record_id: str
    field: str
    reason: str

    def __str__(self) -> str:
        return f"{self.record_id} {self.field}: {self.reason}"


class _Record(BaseModel):
    # pydantic turns a float into a Decimal through str(), so 0.1 stays exactly 0.1.
    model_config = ConfigDict(frozen=True)


class Account(_Record):
    id: str
    name: str = ""
    website: str | None = None
    billing_street: str | None = None
    billing_city: str | None = None
    billing_state: str | None = None
    billing_postal_code: str | None = None
    billing_country: str | None = None
    phone: str | None = None
    billing_email: str | None = None
    qb_customer_id: str | None = None

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Account:
        return cls(
            id=record["Id"],
            name=clean_text(record.get("Name")),
            website=_text(record.get("Website")),
            billing_street=_text(record.get("BillingStreet"), multiline=True),
            billing_city=_text(record.get("BillingCity")),
            billing_state=_text(record.get("BillingState")),
            billing_postal_code=_text(record.get("BillingPostalCode")),
            billing_country=_text(record.get("BillingCountry")),
            phone=_text(record.get("Phone")),
            billing_email=_text(record.get("Billing_Email__c")),
            qb_customer_id=_text(record.get("QB_Customer_Id__c")),
        )


class Owner(_Record):
    id: str | None = None
    name: str | None = None
    email: str | None = None

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Owner:
        return cls(
            id=record.get("Id"),
            name=_text(record.get("Name")),
            email=_text(record.get("Email")),
        )


class LineItem(_Record):
    id: str | None = None
    product_id: str | None = None
    product_code: str | None = None
    name: str = ""  # Salesforce names a line "<Opportunity name> <product name>"
    product_name: str = ""
    quantity: Decimal | None = None
    unit_price: Decimal | None = None
    list_price: Decimal | None = None
    discount: Decimal | None = None  # percent, 0..100
    total_price: Decimal | None = None
    description: str | None = None
    sort_order: int | None = None

    @classmethod
    def from_record(cls, record: Mapping[str, Any], opportunity_name: str = "") -> LineItem:
        """Parse one line item; the product name is Product2.Name, else the line Name without
        its Opportunity-name prefix."""
        name = clean_text(record.get("Name"))
        product_name = clean_text((record.get("Product2") or {}).get("Name"))
        if not product_name:
            prefix = f"{opportunity_name} "
            product_name = (
                name[len(prefix) :] if opportunity_name and name.startswith(prefix) else name
            )
        return cls(
            id=record.get("Id"),
            product_id=record.get("Product2Id"),
            product_code=_text(record.get("ProductCode")),
            name=name,
            product_name=product_name,
            quantity=record.get("Quantity"),
            unit_price=record.get("UnitPrice"),
            list_price=record.get("ListPrice"),
            discount=record.get("Discount"),
            total_price=record.get("TotalPrice"),
            description=_text(record.get("Description"), multiline=True),
            sort_order=record.get("SortOrder"),
        )

    @property
    def label(self) -> str:
        """How messages name the line: "SEAT-ADD (Additional Seat (annual))"."""
        if self.product_code and self.product_name:
            return f"{self.product_code} ({self.product_name})"
        return self.product_code or self.product_name or self.id or "?"

    @property
    def discount_pct(self) -> Decimal:
        return self.discount or Decimal(0)


class Opportunity(_Record):
    id: str
    name: str = ""
    amount: Decimal | None = None
    close_date: date | None = None
    stage: str | None = None
    currency: str | None = None
    system_modstamp: datetime | None = None
    payment_terms: str | None = None
    description: str | None = None
    qb_invoice_id: str | None = None
    qb_doc_number: str | None = None
    qb_realm: str | None = None
    qb_sync_status: str | None = None
    account: Account | None = None
    owner: Owner | None = None
    record_type: str | None = None
    line_items: tuple[LineItem, ...] = ()
    line_items_complete: bool = True  # False: the subquery said done=false (more rows exist)

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Opportunity:
        """Parse one record of the closed-won SOQL query (see `revbridge.soql`)."""
        account = record.get("Account")
        owner = record.get("Owner")
        record_type = record.get("RecordType")
        lines = record.get("OpportunityLineItems") or {}
        name = clean_text(record.get("Name"))
        return cls(
            id=record["Id"],
            name=name,
            amount=record.get("Amount"),
            close_date=record.get("CloseDate"),
            stage=_text(record.get("StageName")),
            currency=_text(record.get("CurrencyIsoCode")),
            system_modstamp=parse_datetime(record.get("SystemModstamp")),
            payment_terms=_text(record.get("Payment_Terms__c")),
            description=_text(record.get("Description"), multiline=True),
            qb_invoice_id=_text(record.get("QB_Invoice_Id__c")),
            qb_doc_number=_text(record.get("QB_DocNumber__c")),
            qb_realm=_text(record.get("QB_Realm__c")),
            qb_sync_status=_text(record.get("QB_Sync_Status__c")),
            account=Account.from_record(account) if account else None,
            owner=Owner.from_record(owner) if owner else None,
            record_type=(record_type or {}).get("DeveloperName"),
            line_items=tuple(LineItem.from_record(r, name) for r in lines.get("records") or ()),
            line_items_complete=lines.get("done", True) is not False,
        )

    @property
    def lines_total(self) -> Decimal:
        """The sum of the line items' TotalPrice (missing totals count as zero)."""
        return sum((li.total_price or Decimal(0) for li in self.line_items), Decimal(0))


def parse_datetime(value: str | datetime | None) -> datetime | None:
    """A Salesforce datetime (``2026-11-23T10:00:00.000+0000`` or ISO 8601) as an aware UTC one."""
    if value is None or value == "":
        return None
    parsed = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _text(value: Any, *, multiline: bool = False) -> str | None:
    if isinstance(value, str):
        return clean_text(value, multiline=multiline) or None
    return value
