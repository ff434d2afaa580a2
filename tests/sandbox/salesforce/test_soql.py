"""The SOQL grammar and query engine, without a server (fast)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest

from sandbox.core.clock import Clock
from sandbox.salesforce import SalesforceBackend
from sandbox.salesforce.exceptions import ApiError
from sandbox.salesforce.query import date_literal_range
from sandbox.salesforce.seed import load
from sandbox.salesforce.soql import (
    And,
    Comparison,
    CountExpr,
    FieldRef,
    Not,
    Or,
    SoqlError,
    SubQuery,
    parse,
)

NOW = datetime(2026, 3, 15, 12, 0, tzinfo=UTC)


# ---- parsing ---------------------------------------------------------------------------------


def test_parses_fields_parents_subquery_and_clauses() -> None:
    q = parse(
        "select Id, Account.Name, (SELECT Quantity FROM OpportunityLineItems WHERE Quantity > 1 "
        "ORDER BY SortOrder LIMIT 5) FROM Opportunity WHERE StageName = 'Closed Won' "
        "ORDER BY CloseDate DESC, Name ASC NULLS LAST LIMIT 10 OFFSET 5"
    )
    assert q.sobject == "Opportunity"
    assert [i.path for i in q.select if isinstance(i, FieldRef)] == [("Id",), ("Account", "Name")]
    sub = q.select[2]
    assert isinstance(sub, SubQuery)
    assert (sub.relationship, sub.limit, len(sub.order)) == ("OpportunityLineItems", 5, 1)
    assert isinstance(q.where, Comparison) and q.where.value.value == "Closed Won"  # type: ignore[union-attr]
    assert [(o.field.path, o.descending, o.nulls_last) for o in q.order] == [
        (("CloseDate",), True, True),  # DESC defaults to NULLS LAST
        (("Name",), False, True),
    ]
    assert (q.limit, q.offset) == (10, 5)


def test_parses_counts_with_and_without_alias() -> None:
    assert parse("SELECT COUNT() FROM Account").select == (CountExpr(None, None, 1, 8),)
    item = parse("SELECT COUNT(Id) total FROM Account").select[0]
    assert isinstance(item, CountExpr) and item.alias == "total"


def test_boolean_structure_needs_parentheses_to_mix_and_or() -> None:
    q = parse("SELECT Id FROM Account WHERE (A = 1 OR B = 2) AND NOT C = 3")
    assert isinstance(q.where, And)
    assert isinstance(q.where.items[0], Or) and isinstance(q.where.items[1], Not)
    with pytest.raises(SoqlError) as err:
        parse("SELECT Id FROM Account WHERE A = 1 AND B = 2 OR C = 3")
    assert err.value.code == "MALFORMED_QUERY"
    assert err.value.message == (
        "\nSELECT Id FROM Account WHERE A = 1 AND B = 2 OR C = 3\n"
        + " " * 45
        + "^\nERROR at Row:1:Column:46\nunexpected token: 'OR'"
    )


@pytest.mark.parametrize(
    ("soql", "detail"),
    [
        ("SELECT Id FROM Account WHERE", "unexpected token: '<EOF>'"),
        ("SELECT Id FROM Account LIMIT 5 junk", "unexpected token: 'junk'"),
        ('SELECT Id FROM Account WHERE Name = "x"', "no viable alternative at character '\"'"),
        ("SELECT Id FROM Account WHERE CloseDate = 2026-13-45", "invalid date: 2026-13-45"),
        ("SELECT Id FROM Account WHERE Name IN ()", "unexpected token: ')'"),
    ],
)
def test_syntax_errors_are_malformed_query(soql: str, detail: str) -> None:
    with pytest.raises(SoqlError) as err:
        parse(soql)
    assert err.value.code == "MALFORMED_QUERY"
    assert "ERROR at Row:1:Column:" in err.value.message
    assert err.value.message.endswith(detail)


def test_literals() -> None:
    q = parse(
        "SELECT Id FROM X WHERE A = 'O\\'Reilly \\\\ x' AND B = -1.5 AND C = true AND D = null "
        "AND E = 2026-11-23 AND F = 2026-11-23T10:00:00Z AND G = 2026-11-23T10:00:00.000+0000 "
        "AND H = 2026-11-23T11:00:00+01:00 AND I = LAST_N_DAYS:7 AND J = today"
    )
    assert isinstance(q.where, And)
    values = [c.value.value for c in q.where.items]  # type: ignore[union-attr]
    ten = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    assert values == [
        "O'Reilly \\ x",
        Decimal("-1.5"),
        True,
        None,
        date(2026, 11, 23),
        ten,
        ten,
        ten,
        ("LAST_N_DAYS", 7),
        ("TODAY", None),
    ]


@pytest.mark.parametrize(
    ("literal", "today", "expected"),
    [
        ("TODAY", date(2026, 3, 15), (date(2026, 3, 15), date(2026, 3, 15))),
        ("YESTERDAY", date(2026, 3, 1), (date(2026, 2, 28), date(2026, 2, 28))),
        ("TOMORROW", date(2026, 12, 31), (date(2027, 1, 1), date(2027, 1, 1))),
        ("THIS_MONTH", date(2026, 2, 10), (date(2026, 2, 1), date(2026, 2, 28))),
        ("LAST_MONTH", date(2026, 1, 10), (date(2025, 12, 1), date(2025, 12, 31))),
        ("NEXT_MONTH", date(2026, 12, 10), (date(2027, 1, 1), date(2027, 1, 31))),
        ("LAST_N_DAYS:1", date(2026, 3, 15), (date(2026, 3, 14), date(2026, 3, 15))),
        ("NEXT_N_DAYS:7", date(2026, 3, 15), (date(2026, 3, 16), date(2026, 3, 22))),
    ],
)
def test_date_literal_ranges(literal: str, today: date, expected: tuple[date, date]) -> None:
    name, _, n = literal.partition(":")
    assert date_literal_range(name, int(n) if n else None, today) == expected


# ---- evaluation against an org ---------------------------------------------------------------


@pytest.fixture(scope="module")
def org() -> SalesforceBackend:
    clock = Clock()
    clock.set(NOW)
    backend = SalesforceBackend(clock)
    load(backend, "empty")
    accounts = [
        {"Name": "Alpha", "Industry": "Banking", "BillingCity": "Paris", "Phone": "1"},
        {"Name": "beta", "Industry": "Energy", "BillingCity": None},
        {"Name": "Gamma_Co", "Industry": None, "BillingCity": "Oslo"},
        {"Name": "O'Reilly", "Industry": "Media", "BillingCity": "Paris"},
    ]
    ids = [backend.create("Account", a) for a in accounts]
    for n, (name, stage, close, amount, acct) in enumerate(
        [
            ("A1", "Closed Won", "2026-03-14", 100, 0),
            ("A2", "Prospecting", "2026-03-15", 250.5, 0),
            ("B1", "Closed Lost", "2026-02-10", None, 1),
            ("C1", "Closed Won", "2026-03-20", 1000, 2),
            ("N1", "Qualification", "2026-04-02", 5, None),
        ]
    ):
        backend.create(
            "Opportunity",
            {
                "Name": name,
                "StageName": stage,
                "CloseDate": close,
                "Amount": amount,
                "AccountId": ids[acct] if acct is not None else None,
                "Description": f"deal {n}",
            },
        )
    deleted = backend.create(
        "Opportunity", {"Name": "GONE", "StageName": "Prospecting", "CloseDate": "2026-03-15"}
    )
    backend.delete("Opportunity", deleted)
    return backend


def names(
    org: SalesforceBackend, where: str, sobject: str = "Opportunity", order: str = "Name"
) -> list[str]:
    result = org.query(f"SELECT Name FROM {sobject} WHERE {where} ORDER BY {order}")
    return [r["Name"] for r in result["records"]]


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("Amount = 100", ["A1"]),
        ("Amount != 100", ["A2", "B1", "C1", "N1"]),  # != keeps nulls, as SOQL does
        ("Amount <> 100", ["A2", "B1", "C1", "N1"]),
        ("Amount < 250.5", ["A1", "N1"]),
        ("Amount <= 250.5", ["A1", "A2", "N1"]),
        ("Amount > 250.5", ["C1"]),
        ("Amount >= 250.5", ["A2", "C1"]),
        ("Amount = null", ["B1"]),
        ("Amount != null", ["A1", "A2", "C1", "N1"]),
        ("StageName IN ('Closed Won', 'closed lost')", ["A1", "B1", "C1"]),
        ("StageName NOT IN ('Closed Won')", ["A2", "B1", "N1"]),
        ("Name LIKE 'a%'", ["A1", "A2"]),
        ("Name LIKE '_1'", ["A1", "B1", "C1", "N1"]),
        ("IsWon = true", ["A1", "C1"]),
        ("IsClosed = false", ["A2", "N1"]),
        ("NOT IsClosed = true", ["A2", "N1"]),
        ("(StageName = 'Closed Won' OR Amount = null) AND CloseDate < 2026-03-15", ["A1", "B1"]),
        ("Account.Name = 'ALPHA'", ["A1", "A2"]),
        ("Account.Industry = null", ["C1", "N1"]),
        ("CloseDate = TODAY", ["A2"]),
        ("CloseDate = YESTERDAY", ["A1"]),
        ("CloseDate > TODAY", ["C1", "N1"]),
        ("CloseDate >= TODAY", ["A2", "C1", "N1"]),
        ("CloseDate < TODAY", ["A1", "B1"]),
        ("CloseDate <= TODAY", ["A1", "A2", "B1"]),
        ("CloseDate = LAST_N_DAYS:1", ["A1", "A2"]),
        ("CloseDate = NEXT_N_DAYS:5", ["C1"]),
        ("CloseDate = THIS_MONTH", ["A1", "A2", "C1"]),
        ("CloseDate = LAST_MONTH", ["B1"]),
        ("CloseDate != THIS_MONTH", ["B1", "N1"]),
        ("CreatedDate = TODAY", ["A1", "A2", "B1", "C1", "N1"]),
        ("CreatedDate < TODAY", []),
        ("CreatedDate >= 2026-03-15T12:00:00Z", ["A1", "A2", "B1", "C1", "N1"]),
        ("CreatedDate > 2026-03-15T13:00:00+02:00", ["A1", "A2", "B1", "C1", "N1"]),
        ("CreatedDate > 2026-03-15T12:00:00.000+0000", []),
    ],
)
def test_where_operators(org: SalesforceBackend, where: str, expected: list[str]) -> None:
    assert names(org, where) == expected


def test_like_escapes_and_apostrophes(org: SalesforceBackend) -> None:
    assert names(org, "Name LIKE 'Gamma\\_%'", "Account") == ["Gamma_Co"]
    assert names(org, "Name LIKE 'Gamma_%'", "Account") == ["Gamma_Co"]
    assert names(org, "Name = 'O\\'Reilly'", "Account") == ["O'Reilly"]
    assert names(org, "Name LIKE '%\\%%'", "Account") == []


def test_order_by_directions_and_nulls(org: SalesforceBackend) -> None:
    assert names(org, "Name != null", order="Amount") == ["B1", "N1", "A1", "A2", "C1"]
    assert names(org, "Name != null", order="Amount NULLS LAST") == ["N1", "A1", "A2", "C1", "B1"]
    assert names(org, "Name != null", order="Amount DESC") == ["C1", "A2", "A1", "N1", "B1"]
    assert names(org, "Name != null", order="Amount DESC NULLS FIRST") == [
        "B1",
        "C1",
        "A2",
        "A1",
        "N1",
    ]
    assert names(org, "Name != null", order="StageName, Name DESC") == [
        "B1",
        "C1",
        "A1",
        "A2",
        "N1",
    ]
    accounts = names(org, "Name != null", "Account", order="Name")
    assert accounts == ["Alpha", "beta", "Gamma_Co", "O'Reilly"]  # case-insensitive collation


def test_limit_offset_and_counts(org: SalesforceBackend) -> None:
    page = org.query("SELECT Name FROM Opportunity ORDER BY Name LIMIT 2 OFFSET 1")
    assert [r["Name"] for r in page["records"]] == ["A2", "B1"]
    assert org.query("SELECT COUNT() FROM Opportunity")["totalSize"] == 5
    assert org.query("SELECT COUNT() FROM Opportunity LIMIT 3")["totalSize"] == 3
    aggregate = org.query("SELECT COUNT(Id), COUNT(Amount) amounts FROM Opportunity")
    assert aggregate["records"] == [
        {"attributes": {"type": "AggregateResult"}, "expr0": 5, "amounts": 4}
    ]


def test_query_all_sees_deleted_rows(org: SalesforceBackend) -> None:
    assert names(org, "Name = 'GONE'") == []
    rows = org.query(
        "SELECT Name, IsDeleted FROM Opportunity WHERE Name = 'GONE'", include_deleted=True
    )["records"]
    assert [(r["Name"], r["IsDeleted"]) for r in rows] == [("GONE", True)]


def test_ids_compare_in_15_and_18_character_forms(org: SalesforceBackend) -> None:
    first = org.query("SELECT Id FROM Account WHERE Name = 'Alpha'")["records"][0]["Id"]
    # 15 characters (case-sensitive), and 18 in any letter case (the suffix restores it)
    for form in (first, first[:15], first.lower(), first.upper()):
        assert names(org, f"Id = '{form}'", "Account") == ["Alpha"], form
    assert names(org, f"AccountId IN ('{first[:15]}')") == ["A1", "A2"]


def query_error(org: SalesforceBackend, soql: str) -> dict[str, Any]:
    with pytest.raises(ApiError) as err:
        org.query(soql)
    assert err.value.status == 400
    body: dict[str, Any] = err.value.body[0]
    return body


def test_unknown_field_object_and_relationship(org: SalesforceBackend) -> None:
    assert query_error(org, "SELECT Id, Foo FROM Opportunity") == {
        "errorCode": "INVALID_FIELD",
        "message": "\nSELECT Id, Foo FROM Opportunity\n           ^\nERROR at Row:1:Column:12\n"
        "No such column 'Foo' on entity 'Opportunity'. If you are attempting to use a custom "
        "field, be sure to append the '__c' after the custom field name. Please reference your "
        "WSDL or the describe call for the appropriate names.",
    }
    body = query_error(org, "SELECT Id FROM Invoice__c")
    assert body["errorCode"] == "INVALID_TYPE"
    assert "sObject type 'Invoice__c' is not supported." in body["message"]
    body = query_error(org, "SELECT Acount.Name FROM Opportunity")
    assert body["errorCode"] == "INVALID_FIELD"
    assert "Didn't understand relationship 'Acount' in field path." in body["message"]
    body = query_error(org, "SELECT Account.Nme FROM Opportunity")
    assert "No such column 'Nme' on entity 'Account'." in body["message"]
    body = query_error(org, "SELECT Id, (SELECT Id FROM LineItems) FROM Opportunity")
    assert body["errorCode"] == "INVALID_TYPE"
    assert (
        "Didn't understand relationship 'LineItems' in FROM part of query call." in body["message"]
    )


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ("Id = 'abc'", "invalid ID field: abc"),
        (
            "Amount = '5'",
            "value of filter criterion for field 'Amount' must be of type double "
            "and should not be enclosed in quotes",
        ),
        (
            "Name = 5",
            "value of filter criterion for field 'Name' must be of type string and "
            "should be enclosed in quotes",
        ),
        (
            "CloseDate = '2026-03-15'",
            "value of filter criterion for field 'CloseDate' must be of "
            "type date and should not be enclosed in quotes",
        ),
        (
            "CreatedDate > 2026-03-15",
            "value of filter criterion for field 'CreatedDate' must be "
            "of type dateTime and should not be enclosed in quotes",
        ),
        (
            "IsWon = 'true'",
            "value of filter criterion for field 'IsWon' must be of type boolean "
            "and should not be enclosed in quotes",
        ),
    ],
)
def test_filter_value_types(org: SalesforceBackend, where: str, message: str) -> None:
    body = query_error(org, f"SELECT Id FROM Opportunity WHERE {where}")
    assert body["errorCode"] == "INVALID_QUERY_FILTER_OPERATOR"
    assert body["message"].endswith(message)


def test_count_rules_and_offset_limit(org: SalesforceBackend) -> None:
    assert query_error(org, "SELECT Id, COUNT() FROM Account")["errorCode"] == "MALFORMED_QUERY"
    body = query_error(org, "SELECT Name, COUNT(Id) FROM Account")
    assert body["message"].endswith("Field must be grouped or aggregated: Name")
    assert query_error(org, "SELECT Id FROM Account OFFSET 2001") == {
        "errorCode": "NUMBER_OUTSIDE_VALID_RANGE",
        "message": "Maximum SOQL offset allowed is 2000",
    }
