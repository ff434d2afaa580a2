"""The flow's one SOQL query: closed-won Opportunities with their account, owner, record type and
line items, in ``ORDER BY SystemModstamp, Id`` order.

Three ways to choose the rows (`closed_won_query`):

- watermark (the schedule): rows strictly after ``since`` — ``SystemModstamp > X OR
  (SystemModstamp = X AND Id > 'id')`` — and stamped before ``until`` (the run's start);
- a date range (backfill): ``between=DateRange("CloseDate" | "SystemModstamp", start, end)``,
  both ends inclusive;
- explicit Ids (run now): ``ids=[...]``.

SOQL datetime literals take whole seconds (``2026-11-23T10:00:00Z``) and Salesforce compares
datetimes to the second, so a watermark's milliseconds are dropped.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, model_validator

from revbridge.ids import is_salesforce_id
from revbridge.watermark import Watermark

OPPORTUNITY_FIELDS = (
    "Id", "Name", "Amount", "CloseDate", "StageName", "CurrencyIsoCode", "SystemModstamp",
    "Payment_Terms__c", "Description", "QB_Invoice_Id__c", "QB_DocNumber__c", "QB_Realm__c",
    "QB_Sync_Status__c", "Account.Id", "Account.Name", "Account.Website", "Account.BillingStreet",
    "Account.BillingCity", "Account.BillingState", "Account.BillingPostalCode",
    "Account.BillingCountry", "Account.Phone", "Account.Billing_Email__c",
    "Account.QB_Customer_Id__c", "Owner.Id", "Owner.Name", "Owner.Email",
    "RecordType.DeveloperName",
)  # fmt: skip
LINE_ITEM_FIELDS = (
    "Id", "Product2Id", "ProductCode", "Name", "Quantity", "UnitPrice", "ListPrice", "Discount",
    "TotalPrice", "Description", "SortOrder", "Product2.Name",
)  # fmt: skip
MAX_IDS = 500  # keeps the query far below SOQL's 100,000-character limit

_ESCAPES = {
    "\\": "\\\\",
    "'": "\\'",
    '"': '\\"',
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\b": "\\b",
    "\f": "\\f",
}


class DateRange(BaseModel):
    """An inclusive range of days on CloseDate (a date) or SystemModstamp (a datetime, UTC)."""

    model_config = ConfigDict(frozen=True)

    field: Literal["CloseDate", "SystemModstamp"]
    start: date
    end: date

    @model_validator(mode="after")
    def _ordered(self) -> DateRange:
        if self.end < self.start:
            raise ValueError("end is before start")
        return self


def quote(value: str) -> str:
    """A SOQL string literal, with backslash, quotes and control characters escaped."""
    return "'" + "".join(_ESCAPES.get(ch, ch) for ch in value) + "'"


def datetime_literal(value: datetime) -> str:
    """A SOQL datetime literal in UTC, whole seconds: ``2026-11-23T10:00:00Z``."""
    if value.tzinfo is None:
        raise ValueError("datetime literals need an aware datetime")
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def closed_won_query(
    *,
    since: Watermark | None = None,
    until: datetime | None = None,
    between: DateRange | None = None,
    ids: Sequence[str] | None = None,
) -> str:
    """The closed-won query for one of the three modes (see the module docstring).

    ``until`` is required in watermark mode (neither ``between`` nor ``ids``) and optional
    otherwise; ``since`` only belongs to watermark mode. Raises ValueError on a bad combination
    or a malformed Id.
    """
    conditions = ["StageName = 'Closed Won'"]
    if ids is not None:
        if since is not None or between is not None:
            raise ValueError("ids cannot be combined with since or between")
        if not ids:
            raise ValueError("ids is empty")
        if len(ids) > MAX_IDS:
            raise ValueError(f"at most {MAX_IDS} ids per query, got {len(ids)}")
        bad = [i for i in ids if not is_salesforce_id(i)]
        if bad:
            raise ValueError(f"not Salesforce Ids: {', '.join(map(repr, bad))}")
        conditions.append(f"Id IN ({', '.join(quote(i) for i in dict.fromkeys(ids))})")
    elif between is not None:
        if since is not None:
            raise ValueError("between cannot be combined with since")
        if between.field == "CloseDate":
            conditions.append(f"CloseDate >= {between.start.isoformat()}")
            conditions.append(f"CloseDate <= {between.end.isoformat()}")
        else:
            start = datetime.combine(between.start, time(), UTC)
            stop = datetime.combine(between.end + timedelta(days=1), time(), UTC)
            conditions.append(f"SystemModstamp >= {datetime_literal(start)}")
            conditions.append(f"SystemModstamp < {datetime_literal(stop)}")
    else:
        if until is None:
            raise ValueError("watermark mode needs until (the run's start)")
        if since is not None:
            mark = datetime_literal(since.ts)
            after = f"SystemModstamp > {mark}"
            if since.id:
                after = f"({after} OR (SystemModstamp = {mark} AND Id > {quote(since.id)}))"
            conditions.append(after)
    if until is not None:
        conditions.append(f"SystemModstamp < {datetime_literal(until)}")
    lines = f"SELECT {', '.join(LINE_ITEM_FIELDS)} FROM OpportunityLineItems ORDER BY SortOrder"
    return (
        f"SELECT {', '.join(OPPORTUNITY_FIELDS)}, ({lines}) FROM Opportunity "
        f"WHERE {' AND '.join(conditions)} ORDER BY SystemModstamp, Id"
    )
