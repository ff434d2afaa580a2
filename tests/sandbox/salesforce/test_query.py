"""Queries over HTTP through simple-salesforce: shapes, paging, queryAll and errors."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from simple_salesforce import Salesforce, SalesforceMalformedRequest

from sandbox.demo_company import build
from sandbox.salesforce import SalesforceEmulator
from sandbox.salesforce.values import format_datetime

SPINE = (
    "SELECT Id, Name, Amount, CurrencyIsoCode, CloseDate, SystemModstamp, Payment_Terms__c, "
    "Account.Name, Account.BillingCity, Account.Billing_Email__c, Owner.Email, "
    "RecordType.DeveloperName, "
    "(SELECT Id, Quantity, UnitPrice, Discount, TotalPrice, ProductCode, "
    "PricebookEntry.Product2.Name FROM OpportunityLineItems ORDER BY SortOrder) "
    "FROM Opportunity WHERE StageName = 'Closed Won' AND SystemModstamp >= {since} "
    "ORDER BY SystemModstamp, Id"
)


def test_parent_and_child_relationships_nest(sf: Salesforce, emulator: SalesforceEmulator) -> None:
    company = build(emulator.clock.today())
    since = format_datetime(emulator.clock.now() - timedelta(days=3))
    rows = sf.query_all(SPINE.format(since=since))["records"]
    by_id = {r["Id"]: r for r in rows}
    stark = by_id[company.sf_id("opp-vendorclash")]
    assert stark["Account"] == {
        "attributes": {
            "type": "Account",
            "url": f"/services/data/v62.0/sobjects/Account/{company.sf_id('stark')}",
        },
        "Name": "Stark Industries",
        "BillingCity": "Malibu",
        "Billing_Email__c": "ap@stark.example",
    }
    assert stark["Owner"]["Email"] == "marcus.webb@acme-analytics.example"
    assert stark["RecordType"]["DeveloperName"] == "US_Sales"
    assert stark["Amount"] == 41000.0
    lines = stark["OpportunityLineItems"]
    assert (lines["totalSize"], lines["done"]) == (2, True)
    assert [(li["ProductCode"], li["Quantity"], li["TotalPrice"]) for li in lines["records"]] == [
        ("PLAT-ANNUAL", 3.0, 36000.0),
        ("IMPL-STD", 1.0, 5000.0),
    ]
    assert (
        lines["records"][0]["PricebookEntry"]["Product2"]["Name"]
        == "Platform Subscription (annual)"
    )
    assert by_id[company.sf_id("opp-nolines")]["OpportunityLineItems"] is None
    eu = by_id[company.sf_id("opp-big-eu")]
    assert (eu["CurrencyIsoCode"], eu["RecordType"]["DeveloperName"]) == ("EUR", "EU_Sales")
    stamps = [r["SystemModstamp"] for r in rows]
    assert stamps == sorted(stamps)
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0000", s) for s in stamps)


def test_empty_lookup_renders_null(sf: Salesforce) -> None:
    sf.Opportunity.create(
        {"Name": "No account", "StageName": "Prospecting", "CloseDate": "2030-01-01"}
    )
    row = sf.query(
        "SELECT Name, Account.Name, Account.Owner.Email FROM Opportunity WHERE Name = 'No account'"
    )["records"][0]
    assert row["Account"] is None


def test_watermark_query_finds_a_fresh_change(sf: Salesforce, emulator: SalesforceEmulator) -> None:
    company = build(emulator.clock.today())
    since = format_datetime(emulator.clock.now())
    opp = company.sf_id("opp-ambiguous")
    sf.Opportunity.update(opp, {"Description": "touched"})
    rows = sf.query(SPINE.format(since=since))["records"]
    assert [r["Id"] for r in rows] == [opp]


@pytest.fixture
def many_tasks(emulator: SalesforceEmulator) -> int:
    backend = emulator.backend
    for n in range(2150):
        backend.create("Task", {"Subject": f"Follow up {n:05d}"})
    return 2150


def test_query_pages_and_query_all_follows_next_records_url(
    sf: Salesforce, many_tasks: int, emulator: SalesforceEmulator
) -> None:
    soql = "SELECT Id, Subject FROM Task ORDER BY Subject"
    first = sf.query(soql)
    assert (first["totalSize"], first["done"], len(first["records"])) == (many_tasks, False, 2000)
    assert re.fullmatch(r"/services/data/v62\.0/query/01g\w{15}-2000", first["nextRecordsUrl"])
    more = sf.query_more(first["nextRecordsUrl"], identifier_is_url=True)
    assert (more["done"], len(more["records"]), "nextRecordsUrl" in more) == (True, 150, False)
    emulator.calls.clear()
    everything = sf.query_all(soql)["records"]
    assert [r["Subject"] for r in everything] == [f"Follow up {n:05d}" for n in range(many_tasks)]
    assert emulator.calls.total(endpoint="query") == 2


def test_batch_size_header(sf: Salesforce, many_tasks: int) -> None:
    headers = {"Sforce-Query-Options": "batchSize=500"}
    first = sf.query("SELECT Id FROM Task", headers=headers)
    assert len(first["records"]) == 500
    assert first["nextRecordsUrl"].endswith("-500")
    pages = 0
    result = first
    while not result["done"]:
        result = sf.query_more(result["nextRecordsUrl"], identifier_is_url=True)
        pages += 1
    assert pages == 4  # 500 + 4 pages of up to 500 = 2150
    small = sf.query("SELECT Id FROM Task", headers={"Sforce-Query-Options": "batchSize=10"})
    assert len(small["records"]) == 200  # Salesforce never pages below 200


def test_invalid_query_locator(sf: Salesforce) -> None:
    with pytest.raises(SalesforceMalformedRequest) as err:
        sf.query_more("/services/data/v62.0/query/01g5g0000000099AAA-2000", identifier_is_url=True)
    assert err.value.content == [
        {"message": "invalid query locator", "errorCode": "INVALID_QUERY_LOCATOR"}
    ]


def test_query_all_includes_deleted(sf: Salesforce, emulator: SalesforceEmulator) -> None:
    company = build(emulator.clock.today())
    contract = company.sf_id("ctr-001")
    assert sf.Contract.delete(contract) == 204
    soql = f"SELECT Id, IsDeleted FROM Contract WHERE Id = '{contract}'"
    assert sf.query(soql)["totalSize"] == 0
    rows = sf.query_all(soql, include_deleted=True)["records"]
    assert [(r["Id"], r["IsDeleted"]) for r in rows] == [(contract, True)]
    assert emulator.calls.total(endpoint="queryAll") == 1


@pytest.mark.parametrize(
    ("soql", "code", "fragment"),
    [
        (
            "SELECT Id FROM Opportunity WHERE A = 1 AND B = 2 OR C = 3",
            "MALFORMED_QUERY",
            "unexpected token: 'OR'",
        ),
        (
            "SELECT Id, Nmae FROM Opportunity",
            "INVALID_FIELD",
            "No such column 'Nmae' on entity 'Opportunity'",
        ),
        ("SELECT Id FROM Opportunty", "INVALID_TYPE", "sObject type 'Opportunty' is not supported"),
        (
            "SELECT Id FROM Opportunity WHERE AccountId = '001xyz'",
            "INVALID_QUERY_FILTER_OPERATOR",
            "invalid ID field: 001xyz",
        ),
    ],
)
def test_query_errors_raise_malformed_request(
    sf: Salesforce, soql: str, code: str, fragment: str
) -> None:
    with pytest.raises(SalesforceMalformedRequest) as err:
        sf.query(soql)
    assert err.value.status == 400
    [error] = err.value.content
    assert error["errorCode"] == code
    assert fragment in error["message"]
    assert error["message"].startswith("\n")


def test_date_literals_follow_the_sandbox_clock(
    sf: Salesforce, emulator: SalesforceEmulator
) -> None:
    soql = (
        "SELECT COUNT() FROM Opportunity WHERE StageName = 'Closed Won' AND CloseDate = YESTERDAY"
    )
    awkward = sf.query(soql)["totalSize"]
    assert awkward >= 6  # the demo company's deliberately awkward deals closed yesterday
    emulator.clock.set(emulator.clock.now() + timedelta(days=1))
    assert sf.query(soql)["totalSize"] < awkward
