from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from revbridge.soql import DateRange, closed_won_query, datetime_literal, quote
from revbridge.watermark import Watermark
from sandbox.demo_company import salesforce_id

UNTIL = datetime(2026, 11, 23, 10, 5, 3, 700000, tzinfo=UTC)
SELECT = (
    "SELECT Id, Name, Amount, CloseDate, StageName, CurrencyIsoCode, SystemModstamp, "
    "Payment_Terms__c, Description, QB_Invoice_Id__c, QB_DocNumber__c, QB_Realm__c, "
    "QB_Sync_Status__c, Account.Id, Account.Name, Account.Website, Account.BillingStreet, "
    "Account.BillingCity, Account.BillingState, Account.BillingPostalCode, "
    "Account.BillingCountry, Account.Phone, Account.Billing_Email__c, Account.QB_Customer_Id__c, "
    "Owner.Id, Owner.Name, Owner.Email, RecordType.DeveloperName, "
    "(SELECT Id, Product2Id, ProductCode, Name, Quantity, UnitPrice, ListPrice, Discount, "
    "TotalPrice, Description, SortOrder, Product2.Name FROM OpportunityLineItems "
    "ORDER BY SortOrder) "
    "FROM Opportunity WHERE "
)
ORDER = " ORDER BY SystemModstamp, Id"


def test_watermark_mode_with_tiebreak_and_until() -> None:
    since = Watermark.from_dict({"ts": "2026-11-23T06:00:00.000+0000", "id": "0065g000000000AAAQ"})
    assert closed_won_query(since=since, until=_in_paris(UNTIL)) == (
        SELECT + "StageName = 'Closed Won' AND (SystemModstamp > 2026-11-23T06:00:00Z OR "
        "(SystemModstamp = 2026-11-23T06:00:00Z AND Id > '0065g000000000AAAQ')) AND "
        "SystemModstamp < 2026-11-23T10:05:03Z" + ORDER
    )


def _in_paris(value: datetime) -> datetime:
    return value.astimezone(timezone(timedelta(hours=1)))


def test_first_run_and_id_less_watermark() -> None:
    assert closed_won_query(until=UNTIL) == (
        SELECT + "StageName = 'Closed Won' AND SystemModstamp < 2026-11-23T10:05:03Z" + ORDER
    )
    since = Watermark(ts=datetime(2026, 11, 1, tzinfo=UTC))
    assert "AND SystemModstamp > 2026-11-01T00:00:00Z AND" in closed_won_query(
        since=since, until=UNTIL
    )


def test_backfill_ranges() -> None:
    by_close = DateRange(field="CloseDate", start=date(2026, 10, 1), end=date(2026, 10, 31))
    assert closed_won_query(between=by_close) == (
        SELECT + "StageName = 'Closed Won' AND CloseDate >= 2026-10-01 AND "
        "CloseDate <= 2026-10-31" + ORDER
    )
    by_stamp = DateRange(field="SystemModstamp", start=date(2026, 11, 1), end=date(2026, 11, 1))
    assert closed_won_query(between=by_stamp, until=UNTIL) == (
        SELECT + "StageName = 'Closed Won' AND SystemModstamp >= 2026-11-01T00:00:00Z AND "
        "SystemModstamp < 2026-11-02T00:00:00Z AND SystemModstamp < 2026-11-23T10:05:03Z" + ORDER
    )
    with pytest.raises(ValidationError, match="end is before start"):
        DateRange(field="CloseDate", start=date(2026, 2, 1), end=date(2026, 1, 1))


def test_run_now_ids() -> None:
    one, two = salesforce_id("Opportunity", 1), salesforce_id("Opportunity", 2)
    assert closed_won_query(ids=[one, two, one]) == (
        SELECT + f"StageName = 'Closed Won' AND Id IN ('{one}', '{two}')" + ORDER
    )
    with pytest.raises(ValueError, match="not Salesforce Ids"):
        closed_won_query(ids=["006' OR Name != '"])
    with pytest.raises(ValueError, match="ids is empty"):
        closed_won_query(ids=[])
    with pytest.raises(ValueError, match="at most 500"):
        closed_won_query(ids=[one] * 501)


def test_bad_combinations() -> None:
    since = Watermark(ts=UNTIL)
    by_close = DateRange(field="CloseDate", start=date(2026, 10, 1), end=date(2026, 10, 31))
    with pytest.raises(ValueError, match="needs until"):
        closed_won_query()
    with pytest.raises(ValueError, match="cannot be combined"):
        closed_won_query(ids=[salesforce_id("Opportunity", 1)], since=since)
    with pytest.raises(ValueError, match="cannot be combined"):
        closed_won_query(between=by_close, since=since)
    with pytest.raises(ValueError, match="aware"):
        datetime_literal(datetime(2026, 1, 1))


def test_quote_escapes_everything_soql_needs() -> None:
    assert quote("O'Reilly") == "'O\\'Reilly'"
    assert quote('back\\slash "q"\n\t') == "'back\\\\slash \\\"q\\\"\\n\\t'"
    injected = closed_won_query(since=Watermark(ts=UNTIL, id="x' OR Name != '"), until=UNTIL)
    assert "Id > 'x\\' OR Name != \\''" in injected
