from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from revbridge.batch import BatchResult
from revbridge.models import Problem
from revbridge.writeback import (
    SyncOutcome,
    opportunity_updates,
    parse_composite_response,
    salesforce_datetime,
)

NOW = datetime(2026, 11, 23, 10, 30, tzinfo=UTC)


def test_outcomes_from_batch_results() -> None:
    ok = BatchResult(opp_id="006A", bid="1", ok=True, entity={"Id": "130", "DocNumber": "1001"})
    bad = BatchResult(opp_id="006B", bid="2", ok=False, fault_code="2500", message="2500: bad")
    later = BatchResult(
        opp_id="006C", bid="3", ok=False, fault_code="3001", message="throttled", transient=True
    )
    assert SyncOutcome.from_batch(ok, "42") == SyncOutcome(
        opportunity_id="006A",
        status="Invoiced",
        invoice_id="130",
        doc_number="1001",
        customer_id="42",
    )
    assert SyncOutcome.from_batch(bad).error == "QuickBooks refused the invoice: 2500: bad"
    assert SyncOutcome.from_batch(later).error == (
        "QuickBooks refused the invoice: throttled (transient: retried next run)"
    )


def test_opportunity_updates_fields() -> None:
    outcomes = [
        SyncOutcome(
            opportunity_id="006A",
            status="Invoiced",
            invoice_id="130",
            doc_number="1001",
            customer_id="42",
            approved_by="priya@x.example",
            approved_at=datetime(2026, 11, 23, 11, 0, tzinfo=timezone(timedelta(hours=1))),
        ),
        SyncOutcome.from_problems(
            "006B",
            [
                Problem(
                    record_id="006B",
                    field="Account.BillingCity",
                    reason="Account.BillingCity is empty",
                )
            ],
        ),
        SyncOutcome(opportunity_id="006C", status="Awaiting Approval"),
    ]
    (body,) = opportunity_updates(outcomes, "9341453172461001", NOW)
    assert body["allOrNone"] is False
    invoiced, review, waiting = body["records"]
    assert invoiced == {
        "attributes": {"type": "Opportunity"},
        "Id": "006A",
        "QB_Sync_Status__c": "Invoiced",
        "QB_Sync_Error__c": None,
        "QB_Realm__c": "9341453172461001",
        "QB_Customer_Id__c": "42",
        "QB_Invoice_Id__c": "130",
        "QB_DocNumber__c": "1001",
        "QB_Approved_By__c": "priya@x.example",
        "QB_Approved_At__c": "2026-11-23T10:00:00.000+0000",
    }
    assert review["QB_Sync_Status__c"] == "Needs Review"
    assert review["QB_Sync_Error__c"] == (
        "2026-11-23 10:30 UTC: Account.BillingCity: Account.BillingCity is empty"
    )
    assert "QB_Invoice_Id__c" not in review  # an error never erases a stored invoice link
    assert waiting["QB_Sync_Status__c"] == "Awaiting Approval"


def test_updates_are_chunked_by_200() -> None:
    outcomes = [
        SyncOutcome(opportunity_id=f"006{n:015d}", status="Error", error="x") for n in range(401)
    ]
    bodies = opportunity_updates(outcomes, None, NOW)
    assert [len(b["records"]) for b in bodies] == [200, 200, 1]
    assert "QB_Realm__c" not in bodies[0]["records"][0]
    assert opportunity_updates([], "1", NOW) == []


def test_parse_composite_response() -> None:
    (body,) = opportunity_updates(
        [SyncOutcome(opportunity_id=i, status="Invoiced", invoice_id="1") for i in "ABCD"],
        "1",
        NOW,
    )
    rows = [
        {"id": "A", "success": True, "errors": []},
        {
            "success": False,
            "errors": [
                {"statusCode": "UNABLE_TO_LOCK_ROW", "message": "unable to obtain exclusive access"}
            ],
        },
        {
            "id": "C",
            "success": False,
            "errors": [
                {
                    "statusCode": "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                    "message": "bad value for restricted picklist field: Invoiced",
                    "fields": ["QB_Sync_Status__c"],
                }
            ],
        },
    ]
    failures = parse_composite_response(rows, body)
    assert [(f.opportunity_id, f.status_code, f.transient) for f in failures] == [
        ("B", "UNABLE_TO_LOCK_ROW", True),
        ("C", "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", False),
        ("D", "NO_RESULT", True),
    ]
    assert failures[1].fields == ("QB_Sync_Status__c",)
    assert failures[1].message.startswith("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST: bad value")
    assert parse_composite_response(rows[:1], body["records"][:1]) == []


def test_salesforce_datetime_format() -> None:
    value = datetime(2026, 11, 23, 10, 0, 5, 123456, tzinfo=UTC)
    assert salesforce_datetime(value) == "2026-11-23T10:00:05.123+0000"
