from __future__ import annotations

import json
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from revbridge.config import RealmConfig, RevbridgeConfig
from revbridge.invoices import (
    InvoiceDraft,
    InvoiceError,
    build_invoice,
    invoice_marker,
    opportunity_id_from_invoice,
    request_id,
)
from revbridge.models import LineItem, Opportunity
from sandbox.demo_company import DemoCompany
from tests.domain import demo_records

TODAY = demo_records.TODAY


def _draft(
    opp: Opportunity, config: RevbridgeConfig, company: DemoCompany, realm: str = "us"
) -> InvoiceDraft:
    return build_invoice(
        opp,
        config.realm(realm),
        "42",
        demo_records.qbo_items(company),
        demo_records.qbo_terms(company),
        TODAY,
    )


def test_stark_invoice_payload(
    won: dict[str, Opportunity], config: RevbridgeConfig, company: DemoCompany
) -> None:
    opp = won["opp-012"]
    draft = _draft(opp, config, company)
    items = demo_records.qbo_items(company)
    payload = draft.payload()
    assert payload["CustomerRef"] == {"value": "42"}
    assert payload["SalesTermRef"] == {"value": demo_records.qbo_terms(company)["Net 15"]}
    assert payload["TxnDate"] == "2026-10-29"
    assert payload["CurrencyRef"] == {"value": "USD"}
    assert payload["BillEmail"] == {"Address": "ap@stark.example"}
    assert payload["PrivateNote"] == f"revbridge:opportunity={opp.id}"
    assert payload["CustomerMemo"] == {"value": "Stark Industries — Team 2026"}
    assert "DueDate" not in payload and "DocNumber" not in payload
    seats = payload["Line"][1]
    assert seats == {
        "LineNum": 2,
        "DetailType": "SalesItemLineDetail",
        "Amount": 8100,
        "Description": "Additional Seat (annual) — list 600.00, 10% discount",
        "SalesItemLineDetail": {
            "ItemRef": {"value": items["Additional Seat"], "name": "Additional Seat"},
            "Qty": 15,
            "UnitPrice": 540,
            "TaxCodeRef": {"value": "NON"},
        },
    }
    assert payload["Line"][0]["Description"] == "Platform Subscription (annual)"
    assert draft.total == opp.amount == Decimal("27000")
    assert draft.record_id == opp.id and draft.entity == "Invoice"


def test_every_valid_demo_deal_drafts_to_its_amount(
    won: dict[str, Opportunity], config: RevbridgeConfig, company: DemoCompany
) -> None:
    dirty = {"opp-nolines", "opp-unmapped", "opp-nobilling", "opp-019"}
    for key, opp in won.items():
        if key in dirty:
            continue
        realm = "eu" if opp.record_type == "EU_Sales" else "us"
        draft = _draft(opp, config, company, realm)
        assert draft.total == opp.amount, key
        for line in draft.lines:
            assert line.qty * line.unit_price == line.amount
        tax = [line["SalesItemLineDetail"].get("TaxCodeRef") for line in draft.payload()["Line"]]
        assert tax == ([{"value": "NON"}] * len(tax) if realm == "us" else [None] * len(tax))


def test_zero_lines_are_refused(
    won: dict[str, Opportunity], config: RevbridgeConfig, company: DemoCompany
) -> None:
    with pytest.raises(InvoiceError) as info:
        _draft(won["opp-nolines"], config, company)
    assert [p.reason for p in info.value.problems] == [
        "no line items: refusing a zero-line invoice"
    ]


def test_unmapped_product_and_unknown_item_and_terms(
    won: dict[str, Opportunity], config: RevbridgeConfig, company: DemoCompany
) -> None:
    with pytest.raises(InvoiceError) as info:
        _draft(won["opp-unmapped"], config, company)
    assert "LEGACY-ADDON" in str(info.value)
    opp = won["opp-012"].model_copy(update={"payment_terms": "Net 45"})
    items = demo_records.qbo_items(company)
    del items["Training"]
    with pytest.raises(InvoiceError) as info:
        build_invoice(opp, config.realm("us"), "42", items, {}, TODAY)
    assert [p.reason for p in info.value.problems] == [
        "QuickBooks item 'Training' (for TRAIN-DAY) does not exist",
        "payment terms 'Net 45' do not exist in QuickBooks",
    ]


def test_item_by_id_names_and_case_insensitive_lookups(
    won: dict[str, Opportunity], company: DemoCompany
) -> None:
    realm = RealmConfig.model_validate(
        {
            "realm_id": "1",
            "connection_block": "b",
            "currency": "EUR",
            "item_map": {"PLAT-ANNUAL": {"id": "7"}, "SUPPORT-PREM": "premium support"},
        }
    )
    opp = won["opp-big-eu"]
    draft = build_invoice(
        opp, realm, "9", {"Platform Sub": "7", "Premium Support": "8"}, {"net 60": "4"}, TODAY
    )
    refs = [line["SalesItemLineDetail"]["ItemRef"] for line in draft.payload()["Line"]]
    assert refs == [
        {"value": "7", "name": "Platform Sub"},
        {"value": "8", "name": "premium support"},
    ]
    assert draft.terms_id == "4"
    assert all("TaxCodeRef" not in line["SalesItemLineDetail"] for line in draft.payload()["Line"])
    unnamed = build_invoice(opp, realm, "9", {"Premium Support": "8"}, {"Net 60": "4"}, TODAY)
    assert unnamed.payload()["Line"][0]["SalesItemLineDetail"]["ItemRef"] == {"value": "7"}


def test_default_terms_and_txn_date_rules(
    won: dict[str, Opportunity], config: RevbridgeConfig, company: DemoCompany
) -> None:
    opp = won["opp-012"].model_copy(update={"payment_terms": None, "close_date": date(2027, 1, 1)})
    draft = _draft(opp, config, company)
    assert draft.terms_id == demo_records.qbo_terms(company)["Net 30"]
    assert draft.txn_date == TODAY  # a future CloseDate is not a future invoice
    assert _draft(opp.model_copy(update={"close_date": None}), config, company).txn_date == TODAY


def _priced(qty: str, unit: str, discount: str, total: str) -> list[dict[str, Any]]:
    line = LineItem(
        product_code="SEAT-ADD",
        name="Deal Seat",
        product_name="Seat",
        quantity=Decimal(qty),
        unit_price=Decimal(unit),
        discount=Decimal(discount),
        total_price=Decimal(total),
    )
    opp = Opportunity(
        id="0065g000000000AAAQ",
        name="Deal",
        amount=Decimal(total),
        close_date=TODAY,
        line_items=(line,),
        payment_terms="Net 30",
    )
    realm = RealmConfig.model_validate(
        {
            "realm_id": "1",
            "connection_block": "b",
            "currency": "USD",
            "item_map": {"SEAT-ADD": "Seat"},
        }
    )
    draft = build_invoice(opp, realm, "1", {"Seat": "5"}, {"Net 30": "3"}, TODAY)
    return draft.payload()["Line"]


def test_a_discount_that_divides_exactly_becomes_the_unit_price() -> None:
    (line,) = _priced("3", "99.99", "12.5", "262.47")  # 3 x 87.49125 = 262.47375 → 262.47
    assert line["SalesItemLineDetail"]["UnitPrice"] == 87.49  # 262.47 / 3, exactly
    assert line["Description"] == "Seat — list 99.99, 12.5% discount"
    (line,) = _priced("8", "14.29", "12.5", "100.03")  # 100.03 / 8 = 12.50375
    assert line["SalesItemLineDetail"]["UnitPrice"] == 12.50375
    assert line["Amount"] == 100.03


def test_an_inexact_discount_becomes_an_explicit_discount_line() -> None:
    # 7 x 10.00 less 33.33% = 46.669 → 46.67; 46.67 / 7 has no 5-decimal unit price
    gross, discount = _priced("7", "10", "33.33", "46.67")
    detail = gross["SalesItemLineDetail"]
    assert (detail["Qty"], detail["UnitPrice"]) == (7, 10)
    assert gross["Amount"] == 70 and gross["Description"] == "Seat"
    assert discount["SalesItemLineDetail"]["Qty"] == 1
    assert discount["SalesItemLineDetail"]["UnitPrice"] == discount["Amount"] == -23.33
    assert discount["Description"] == "33.33% discount on Seat"
    assert discount["SalesItemLineDetail"]["ItemRef"] == gross["SalesItemLineDetail"]["ItemRef"]


def test_unpriceable_lines_are_problems() -> None:
    with pytest.raises(InvoiceError, match="not a whole number of cents"):
        _priced("1.5", "33.33", "0", "50.00")  # 1.5 x 33.33 = 49.995
    with pytest.raises(InvoiceError, match=r"TotalPrice 1\.005 is not a whole number of cents"):
        _priced("1", "1.005", "0", "1.005")


def test_request_id_is_short_deterministic_and_content_bound(
    won: dict[str, Opportunity], config: RevbridgeConfig, company: DemoCompany
) -> None:
    opp = won["opp-012"]
    draft = _draft(opp, config, company)
    again = _draft(
        Opportunity.from_record(demo_records.opportunity_record(company, "opp-012")),
        config,
        company,
    )
    assert draft.request_id == again.request_id
    assert draft.request_id.startswith(f"rb-inv-{opp.id}-")
    assert len(draft.request_id) <= 50
    changed = _draft(opp.model_copy(update={"payment_terms": "Net 60"}), config, company)
    assert changed.request_id != draft.request_id
    assert request_id(opp.id[:15], draft.payload()) == draft.request_id  # 15 → 18 chars


def test_marker_round_trip(won: dict[str, Opportunity]) -> None:
    opp_id = won["opp-012"].id
    note = f"Voided\n{invoice_marker(opp_id[:15])}"
    assert opportunity_id_from_invoice({"PrivateNote": note}) == opp_id
    assert opportunity_id_from_invoice({"PrivateNote": "typed by hand"}) is None
    assert opportunity_id_from_invoice({}) is None


CENTS = st.integers(min_value=0, max_value=10_000_000).map(lambda c: Decimal(c).scaleb(-2))
QUANTITIES = st.integers(min_value=1, max_value=500).map(Decimal) | st.integers(
    min_value=1, max_value=50_000
).map(lambda q: Decimal(q).scaleb(-2))
DISCOUNTS = st.integers(min_value=0, max_value=10_000).map(lambda d: Decimal(d).scaleb(-2))


@given(
    st.lists(st.tuples(QUANTITIES, CENTS, DISCOUNTS), min_size=1, max_size=8),
)
def test_totals_always_equal_the_amount_exactly(
    lines: list[tuple[Decimal, Decimal, Decimal]],
) -> None:
    items = []
    for n, (qty, unit, discount) in enumerate(lines):
        total = (qty * unit * (1 - discount / 100)).quantize(Decimal("0.01"), ROUND_HALF_UP)
        items.append(
            LineItem(
                product_code="P",
                product_name=f"P{n}",
                quantity=qty,
                unit_price=unit,
                discount=discount,
                total_price=total,
            )
        )
    amount = sum((li.total_price or Decimal(0) for li in items), Decimal(0))
    opp = Opportunity(
        id="0065g000000000AAAQ",
        name="Deal",
        amount=amount,
        close_date=TODAY,
        line_items=tuple(items),
        payment_terms="Net 30",
    )
    realm = RealmConfig.model_validate(
        {"realm_id": "1", "connection_block": "b", "currency": "USD", "item_map": {"P": "Thing"}}
    )
    try:
        draft = build_invoice(opp, realm, "1", {"Thing": "5"}, {"Net 30": "3"}, TODAY)
    except InvoiceError as error:
        # only a fractional quantity can make the undiscounted price fall between cents
        assert all("not a whole number of cents" in p.reason for p in error.problems)
        assert any(qty != qty.to_integral_value() for qty, _, _ in lines)
        return
    assert draft.total == amount
    # what goes over the wire, read back exactly: no float drift anywhere
    wire = json.loads(json.dumps(draft.payload()), parse_float=Decimal, parse_int=Decimal)
    assert sum((line["Amount"] for line in wire["Line"]), Decimal(0)) == amount
    for line in wire["Line"]:
        detail = line["SalesItemLineDetail"]
        assert detail["Qty"] * detail["UnitPrice"] == line["Amount"]
        assert line["Amount"] == line["Amount"].quantize(Decimal("0.01"))
