"""The QuickBooks query grammar and its evaluation, without a server."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from quickbooks.utils import build_choose_clause, build_where_clause

from sandbox.quickbooks.exceptions import QBOFault
from sandbox.quickbooks.query import Condition, parse, sort_key


def fault_of(text: str) -> QBOFault:
    with pytest.raises(QBOFault) as caught:
        parse(text)
    return caught.value


def test_select_star_defaults() -> None:
    query = parse("SELECT * FROM Customer")
    assert (query.entity, query.count, query.fields) == ("Customer", False, None)
    assert (query.start_position, query.max_results) == (1, 100)


def test_keywords_are_case_insensitive_and_both_order_by_spellings_parse() -> None:
    a = parse("select * from Invoice where TotalAmt > '10.0' order by TxnDate desc maxresults 5")
    b = parse("SELECT * FROM Invoice WHERE TotalAmt > '10.0' ORDERBY TxnDate DESC MAXRESULTS 5")
    assert a == b
    assert a.order == [("TxnDate", True)]
    assert a.conditions == [Condition("TotalAmt", ">", ("10.0",))]


def test_count_fields_in_like_and_paging() -> None:
    count = parse("SELECT COUNT(*) FROM Invoice WHERE Balance > 0")
    assert count.count and count.conditions[0].values == (Decimal("0"),)
    fields = parse(
        "SELECT Id, DisplayName FROM Customer WHERE Id IN ('1', '2') "
        "AND DisplayName LIKE '%Init%' STARTPOSITION 11 MAXRESULTS 10"
    )
    assert fields.fields == ["Id", "DisplayName"]
    assert [c.op for c in fields.conditions] == ["IN", "LIKE"]
    assert (fields.start_position, fields.max_results) == (11, 10)
    item = parse("SELECT *, Sku FROM Item ORDER BY Name STARTPOSITION 1 MAXRESULTS 100")
    assert item.fields is None and item.order == [("Name", False)]


def test_nested_properties_and_boolean_values() -> None:
    query = parse(
        "SELECT * FROM Customer WHERE MetaData.LastUpdatedTime >= '2026-11-01T00:00:00-08:00' "
        "AND Active IN (true, false)"
    )
    assert query.properties() == ["MetaData.LastUpdatedTime", "Active"]
    assert query.conditions[1].values == (True, False)
    assert query.mentions("active")


def test_or_is_a_query_parser_error() -> None:
    fault = fault_of("SELECT * FROM Customer WHERE DisplayName = 'a' OR DisplayName = 'b'")
    error = fault.errors[0]
    assert (fault.status, error.code, error.message) == (400, "4000", "Error parsing query")
    assert error.detail.startswith('QueryParserError: Encountered " OR "OR "" at line 1')


@pytest.mark.parametrize(
    "text",
    ["", "SELEC * FROM Customer", "SELECT * FROM", "SELECT * FROM Customer WHERE", "DELETE x"],
)
def test_malformed_queries_are_4000(text: str) -> None:
    assert fault_of(text).errors[0].code == "4000"


def test_maxresults_over_1000_is_a_validation_error() -> None:
    error = fault_of("SELECT * FROM Customer MAXRESULTS 1001").errors[0]
    assert error.code == "4001"
    assert error.detail == (
        "QueryValidationError: value 1001 is too large. Max allowed value is 1000"
    )


@given(
    st.text(
        alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="\\"),
        max_size=40,
    )
)
def test_python_quickbooks_quoting_round_trips(name: str) -> None:
    """Whatever ``Customer.filter(DisplayName=...)`` writes parses back to the same value.
    (Backslashes excluded: python-quickbooks escapes only quotes, so a name ending in a
    backslash makes a query QuickBooks cannot parse either.)"""
    query = parse(f"SELECT * FROM Customer WHERE {build_where_clause(DisplayName=name)}")
    assert query.conditions == [Condition("DisplayName", "=", (name,))]
    choose = parse(f"SELECT * FROM Customer WHERE {build_choose_clause([name, 'x'], 'Id')}")
    assert choose.conditions[0].values == (name, "x")


def test_conditions_compare_like_quickbooks() -> None:
    invoice = {
        "Id": "10",
        "CustomerRef": {"value": "7", "name": "Bluth Company"},
        "Balance": Decimal("3000.00"),
        "TxnDate": "2026-09-08",
        "MetaData": {"LastUpdatedTime": "2026-10-13T10:00:00-07:00"},
        "PrimaryEmailAddr": {"Address": "Gob@Bluth.example"},
        "DisplayName": "Bob's Burgers",
        "Active": True,
    }

    def holds(text: str) -> bool:
        return parse(f"SELECT * FROM Invoice WHERE {text}").matches(invoice)

    assert holds("CustomerRef = '7'")
    assert holds("Balance > '0.0'") and holds("Balance = 3000") and not holds("Balance < 10")
    assert holds("Id > '9'")  # numerically, not as text
    assert holds("TxnDate >= '2026-09-01'") and not holds("TxnDate > '2026-09-08'")
    assert holds("MetaData.LastUpdatedTime > '2026-10-13T16:59:59Z'")
    assert not holds("MetaData.LastUpdatedTime > '2026-10-13T17:00:00Z'")
    assert holds("PrimaryEmailAddr = 'gob@bluth.example'")
    assert holds("DisplayName = 'bob\\'s burgers'") and holds("DisplayName LIKE 'bob%'")
    assert not holds("DisplayName LIKE 'burgers%'")
    assert holds("Active = true") and not holds("Active = false")
    assert not holds("Missing = 'x'")


def test_sort_key_orders_numbers_numerically() -> None:
    rows = [{"Id": "10"}, {"Id": "9"}, {"Id": "100"}, {}]
    assert [r.get("Id") for r in sorted(rows, key=sort_key("Id"))] == [None, "9", "10", "100"]
