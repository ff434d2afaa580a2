"""Salesforce write-back: what the run decided, as ``composite/sobjects`` PATCH bodies.

simple-salesforce has no helper for the collection call: the flow sends each body with
``sf.restful("composite/sobjects", method="PATCH", json=body)``. Salesforce answers HTTP 200 even
when records fail, one row per record in request order: `parse_composite_response` checks them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from revbridge.batch import BatchResult, chunk
from revbridge.models import Problem

MAX_RECORDS = 200
ERROR_MAX = 32000  # QB_Sync_Error__c is a Long Text Area (32,768)
SyncStatus = Literal["Invoiced", "Needs Review", "Error", "Awaiting Approval", "Rejected"]
# Salesforce statusCodes worth retrying on the next run.
TRANSIENT_STATUS_CODES = frozenset(
    {"UNABLE_TO_LOCK_ROW", "REQUEST_LIMIT_EXCEEDED", "SERVER_UNAVAILABLE", "UNKNOWN_EXCEPTION"}
)


class SyncOutcome(BaseModel):
    """The result of the run for one Opportunity, as written back to it."""

    model_config = ConfigDict(frozen=True)

    opportunity_id: str
    status: SyncStatus
    invoice_id: str | None = None
    doc_number: str | None = None
    customer_id: str | None = None
    error: str | None = None
    approved_by: str | None = None
    approved_at: datetime | None = None

    @classmethod
    def from_batch(cls, result: BatchResult, customer_id: str | None = None) -> SyncOutcome:
        """An invoice create's answer: Invoiced, or Error with the fault (transient ones say so:
        the Opportunity stays eligible and the next run retries it)."""
        if result.ok:
            return cls(
                opportunity_id=result.opp_id,
                status="Invoiced",
                invoice_id=result.entity_id,
                doc_number=result.doc_number,
                customer_id=customer_id,
            )
        retry = " (transient: retried next run)" if result.transient else ""
        return cls(
            opportunity_id=result.opp_id,
            status="Error",
            customer_id=customer_id,
            error=f"QuickBooks refused the invoice: {result.message}{retry}",
        )

    @classmethod
    def from_problems(
        cls, opportunity_id: str, problems: Iterable[Problem], customer_id: str | None = None
    ) -> SyncOutcome:
        """Needs Review, with every problem in QB_Sync_Error__c."""
        return cls(
            opportunity_id=opportunity_id,
            status="Needs Review",
            customer_id=customer_id,
            error="; ".join(f"{p.field}: {p.reason}" for p in problems),
        )


class WritebackFailure(BaseModel):
    model_config = ConfigDict(frozen=True)

    opportunity_id: str
    status_code: str
    message: str
    fields: tuple[str, ...] = ()
    transient: bool = False


def opportunity_updates(
    outcomes: Iterable[SyncOutcome], realm: str | None, now: datetime
) -> list[dict[str, Any]]:
    """``composite/sobjects`` PATCH bodies (≤ 200 records each, ``allOrNone`` false).

    ``realm`` is stored in QB_Realm__c (the flows pass the realm id). Errors are stamped with
    ``now`` (UTC); a successful outcome clears QB_Sync_Error__c. Invoice fields are written only
    for Invoiced, so an error never erases a stored invoice link.
    """
    stamp = now.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    records: list[dict[str, Any]] = []
    for outcome in outcomes:
        record: dict[str, Any] = {
            "attributes": {"type": "Opportunity"},
            "Id": outcome.opportunity_id,
            "QB_Sync_Status__c": outcome.status,
            "QB_Sync_Error__c": f"{stamp}: {outcome.error}"[:ERROR_MAX] if outcome.error else None,
        }
        if realm:
            record["QB_Realm__c"] = realm
        if outcome.customer_id:
            record["QB_Customer_Id__c"] = outcome.customer_id
        if outcome.status == "Invoiced":
            record["QB_Invoice_Id__c"] = outcome.invoice_id
            record["QB_DocNumber__c"] = outcome.doc_number
        if outcome.approved_by:
            record["QB_Approved_By__c"] = outcome.approved_by
        if outcome.approved_at:
            record["QB_Approved_At__c"] = salesforce_datetime(outcome.approved_at)
        records.append(record)
    return [{"allOrNone": False, "records": part} for part in chunk(records, MAX_RECORDS)]


def parse_composite_response(
    rows: Sequence[Mapping[str, Any]], sent: Mapping[str, Any] | Sequence[Mapping[str, Any]]
) -> list[WritebackFailure]:
    """The records that failed, matched to what was sent by position (a failed row may carry
    no ``id``). ``sent`` is the body or its records. A missing row counts as a failure."""
    records = sent["records"] if isinstance(sent, Mapping) else sent
    failures: list[WritebackFailure] = []
    for index, record in enumerate(records):
        opp_id = str(record["Id"])
        if index >= len(rows):
            failures.append(
                WritebackFailure(
                    opportunity_id=opp_id,
                    status_code="NO_RESULT",
                    message="Salesforce returned no result row for this record",
                    transient=True,
                )
            )
            continue
        row = rows[index]
        if row.get("success"):
            continue
        errors = row.get("errors") or [{"statusCode": "UNKNOWN", "message": "no detail"}]
        codes = [str(e.get("statusCode")) for e in errors]
        failures.append(
            WritebackFailure(
                opportunity_id=opp_id,
                status_code=codes[0],
                message="; ".join(f"{e.get('statusCode')}: {e.get('message')}" for e in errors),
                fields=tuple(f for e in errors for f in e.get("fields") or ()),
                transient=all(c in TRANSIENT_STATUS_CODES for c in codes),
            )
        )
    return failures


def salesforce_datetime(value: datetime) -> str:
    """A datetime as Salesforce writes them: ``2026-11-23T10:00:00.000+0000`` (UTC)."""
    utc = value.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}+0000"
