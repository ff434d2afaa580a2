from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from revbridge.batch import (
    BatchResult,
    batch_request,
    batch_request_id,
    chunk,
    describe_fault,
    parse_batch_response,
)
from revbridge.config import RevbridgeConfig
from revbridge.invoices import InvoiceDraft, build_invoice
from revbridge.models import Opportunity
from sandbox.demo_company import DemoCompany
from tests.domain import demo_records


def _drafts(
    won: dict[str, Opportunity], config: RevbridgeConfig, company: DemoCompany
) -> list[InvoiceDraft]:
    keys = ["opp-012", "opp-007", "opp-ambiguous"]
    return [
        build_invoice(
            won[k],
            config.realm("us"),
            "42",
            demo_records.qbo_items(company),
            demo_records.qbo_terms(company),
            demo_records.TODAY,
        )
        for k in keys
    ]


def _fault(code: str, kind: str, message: str = "m", detail: str = "d") -> dict[str, Any]:
    return {
        "Error": [{"Message": message, "Detail": detail, "code": code, "element": ""}],
        "type": kind,
    }


@given(st.lists(st.integers(), max_size=200), st.integers(min_value=1, max_value=40))
def test_chunk_keeps_order_and_bounds(items: list[int], size: int) -> None:
    parts = chunk(items, size)
    assert [x for part in parts for x in part] == items
    assert all(1 <= len(part) <= size for part in parts)


def test_chunk_rejects_a_silly_size() -> None:
    with pytest.raises(ValueError):
        chunk([1], 0)


def test_batch_request_body(
    won: dict[str, Opportunity], config: RevbridgeConfig, company: DemoCompany
) -> None:
    drafts = _drafts(won, config, company)
    body, mapping = batch_request(drafts)
    assert [item["bId"] for item in body["BatchItemRequest"]] == ["1", "2", "3"]
    assert body["BatchItemRequest"][0] == {
        "bId": "1",
        "operation": "create",
        "Invoice": drafts[0].payload(),
    }
    assert mapping == {
        "1": drafts[0].opportunity_id,
        "2": drafts[1].opportunity_id,
        "3": drafts[2].opportunity_id,
    }
    rid = batch_request_id(body)
    assert rid == batch_request_id(batch_request(drafts)[0]) and len(rid) <= 50
    assert rid != batch_request_id(batch_request(drafts[:2])[0])


def test_batch_limits(
    won: dict[str, Opportunity], config: RevbridgeConfig, company: DemoCompany
) -> None:
    draft = _drafts(won, config, company)[0]
    with pytest.raises(ValueError, match="at most 30"):
        batch_request([draft] * 31)
    with pytest.raises(ValueError, match="twice"):
        batch_request([draft, draft])
    with pytest.raises(ValueError, match="at least one"):
        batch_request([])


def test_parse_batch_response_mixed() -> None:
    mapping = {"1": "006A", "2": "006B", "3": "006C", "4": "006D", "5": "006E"}
    body = {
        "BatchItemResponse": [
            {
                "bId": "2",
                "Fault": _fault(
                    "6240",
                    "ValidationFault",
                    "Duplicate Name Exists Error",
                    "The name supplied already exists. : Another customer",
                ),
            },
            {"bId": "1", "Invoice": {"Id": "130", "DocNumber": "1001", "TotalAmt": 27000}},
            {"bId": "3", "Fault": _fault("3001", "ThrottleExceeded", "message=ThrottleExceeded")},
            {"bId": "4", "Fault": _fault("10000", "SystemFault", "An application error")},
        ],
        "time": "2026-11-23T02:00:00.000-08:00",
    }
    results = parse_batch_response(body, mapping)
    assert [r.opp_id for r in results] == ["006A", "006B", "006C", "006D", "006E"]
    ok, dup, throttled, system, missing = results
    assert ok.ok and ok.entity_id == "130" and ok.doc_number == "1001"
    assert (dup.ok, dup.fault_code, dup.transient) == (False, "6240", False)
    assert dup.message == (
        "6240: Duplicate Name Exists Error - The name supplied already exists. : Another customer"
    )
    assert (throttled.fault_code, throttled.transient) == ("3001", True)
    assert (system.fault_code, system.transient) == ("10000", True)
    assert (missing.ok, missing.transient, missing.fault_code) == (False, True, None)
    assert "no answer" in missing.message


def test_a_whole_request_fault_applies_to_every_item() -> None:
    body = {"Fault": _fault("3001", "ThrottleExceeded"), "time": "t"}
    results = parse_batch_response(body, {"1": "006A", "2": "006B"})
    assert [(r.opp_id, r.ok, r.transient) for r in results] == [
        ("006A", False, True),
        ("006B", False, True),
    ]


@pytest.mark.parametrize(
    ("code", "kind", "transient"),
    [
        ("6240", "ValidationFault", False),
        ("5010", "ValidationFault", False),
        ("610", "ValidationFault", False),
        ("6140", "ValidationFault", False),
        ("2500", "ValidationFault", False),
        ("3001", "ValidationFault", False),  # a validation fault is never retried
        ("3001", "ThrottleExceeded", True),
        ("10000", "SystemFault", True),
        ("503", "SERVICE", True),
        ("3200", "AUTHENTICATION", False),
        ("6000", "SystemFault", True),
    ],
)
def test_transient_classification(code: str, kind: str, transient: bool) -> None:
    assert describe_fault(_fault(code, kind))[2] is transient


def test_describe_fault_without_code_or_detail() -> None:
    assert describe_fault({"Error": [{"Message": "Boom"}], "type": "SystemFault"}) == (
        None,
        "Boom",
        True,
    )
    assert describe_fault({}) == (None, "unknown QuickBooks fault", False)


def test_entity_less_answer_is_not_ok() -> None:
    (result,) = parse_batch_response({"BatchItemResponse": [{"bId": "1"}]}, {"1": "006A"})
    assert result == BatchResult(
        opp_id="006A", bid="1", ok=False, message="batch item 1 came back without an entity"
    )


def test_entity_drafts_batch_like_invoices() -> None:
    from revbridge.batch import EntityDraft

    drafts = [
        EntityDraft(kind="Customer", key="001A", body={"DisplayName": "A"}),
        EntityDraft(kind="Customer", key="001B", body={"DisplayName": "B"}),
    ]
    body, mapping = batch_request(drafts)
    assert body["BatchItemRequest"][1] == {
        "bId": "2",
        "operation": "create",
        "Customer": {"DisplayName": "B"},
    }
    assert mapping == {"1": "001A", "2": "001B"}
