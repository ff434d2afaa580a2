"""Batch, change data capture, requestid idempotency and attachments through python-quickbooks."""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests
from quickbooks import QuickBooks
from quickbooks.batch import batch_create, batch_delete
from quickbooks.cdc import change_data_capture
from quickbooks.exceptions import (
    GeneralException,
    QuickbooksException,
    UnsupportedException,
)
from quickbooks.objects import Attachable, Customer, Invoice, Item
from quickbooks.objects.base import AttachableRef, Ref
from quickbooks.objects.detailline import SalesItemLine, SalesItemLineDetail

from sandbox.quickbooks import QuickBooksEmulator

FaultCheck = Callable[[type[QuickbooksException], int], AbstractContextManager[Any]]


def named(name: str) -> Customer:
    customer = Customer()
    customer.DisplayName = name
    return customer


def invoice_for(qb: QuickBooks, customer_name: str, amount: int = 100) -> Invoice:
    customer = Customer.filter(DisplayName=customer_name, qb=qb)[0]
    item = Item.filter(Name="Training", qb=qb)[0]
    line = SalesItemLine()
    line.Amount = amount
    line.SalesItemLineDetail = SalesItemLineDetail()
    line.SalesItemLineDetail.ItemRef = item.to_ref()
    invoice = Invoice()
    invoice.CustomerRef = customer.to_ref()
    invoice.Line = [line]
    return invoice


def url(qb: QuickBooks, path: str) -> str:
    return f"{qb.api_url}/company/{qb.company_id}/{path}"


# ---- batch -----------------------------------------------------------------------------------
def test_batch_create_with_a_failing_item(qb: QuickBooks) -> None:
    result = batch_create(
        [named("Batch One"), named("Stark Industries"), named("Batch Two")], qb=qb
    )
    assert sorted(c.DisplayName for c in result.successes) == ["Batch One", "Batch Two"]
    (fault,) = result.faults
    assert fault.Error[0].code == "6240" and fault.type == "ValidationFault"
    assert fault.original_object.DisplayName == "Stark Industries"
    assert len(Customer.filter(DisplayName="Batch One", qb=qb)) == 1


def test_batch_delete_and_query_items(qb: QuickBooks) -> None:
    invoices = [invoice_for(qb, "Globex Corp.").save(qb=qb) for _ in range(2)]
    deleted = batch_delete(invoices, qb=qb)
    assert not deleted.faults and len(deleted.batch_responses) == 2
    body = {
        "BatchItemRequest": [
            {"bId": "q1", "Query": "SELECT COUNT(*) FROM Invoice"},
            {"bId": "q2", "Query": "SELECT * FROM Invoice WHERE Id = 'x' OR Id = 'y'"},
            {"bId": "u1", "operation": "update", "Customer": {"DisplayName": "No Id"}},
        ]
    }
    answers = {a["bId"]: a for a in qb.batch_operation(json.dumps(body))["BatchItemResponse"]}
    assert answers["q1"]["QueryResponse"] == {"totalCount": 3}  # the demo history only
    assert answers["q2"]["Fault"]["Error"][0]["code"] == "4000"
    assert answers["u1"]["Fault"]["Error"][0]["code"] == "2020"


def test_batch_void_option(qb: QuickBooks) -> None:
    invoice = invoice_for(qb, "Globex Corp.").save(qb=qb)
    body = {
        "BatchItemRequest": [
            {
                "bId": "v1",
                "operation": "update",
                "optionsData": "void",
                "Invoice": {"Id": invoice.Id, "SyncToken": invoice.SyncToken},
            }
        ]
    }
    (answer,) = qb.batch_operation(json.dumps(body))["BatchItemResponse"]
    assert answer["Invoice"]["TotalAmt"] == 0 and answer["Invoice"]["PrivateNote"] == "Voided"


def test_more_than_30_items_is_refused(qb: QuickBooks, expect_fault: FaultCheck) -> None:
    body = {"BatchItemRequest": [{"bId": str(i), "Query": "SELECT * FROM Term"} for i in range(31)]}
    with expect_fault(GeneralException, 1040):
        qb.batch_operation(json.dumps(body))
    result = batch_create([named(f"Many {i}") for i in range(31)], qb=qb)  # the client splits
    assert len(result.successes) == 31


# ---- CDC -------------------------------------------------------------------------------------
def test_change_data_capture(qb: QuickBooks) -> None:
    since = (datetime.now(UTC) - timedelta(seconds=5)).isoformat()
    customer = named("Changed Co").save(qb=qb)
    kept = invoice_for(qb, "Changed Co").save(qb=qb)
    gone = invoice_for(qb, "Changed Co").save(qb=qb)
    gone.delete(qb=qb)
    changes = change_data_capture([Customer, Invoice], since, qb=qb)
    assert [c.Id for c in changes.Customer] == [customer.Id]
    by_id = {i.Id: i for i in changes.Invoice}
    assert set(by_id) == {kept.Id, gone.Id}
    assert by_id[gone.Id].status == "Deleted" and by_id[gone.Id].TotalAmt == ""  # Id only
    assert "time" in changes.__dict__
    raw = qb.change_data_capture("Payment,Customer", since)
    assert raw["CDCResponse"][0]["QueryResponse"][0] == {}


def test_cdc_more_than_30_days_back_is_refused(qb: QuickBooks, expect_fault: FaultCheck) -> None:
    long_ago = (datetime.now(UTC) - timedelta(days=31)).isoformat()
    with expect_fault(UnsupportedException, 500) as caught:
        change_data_capture([Invoice], long_ago, qb=qb)
    assert "older than fixed days" in caught.value.detail


def test_cdc_sees_the_seeded_history_only_within_30_days(qb: QuickBooks) -> None:
    since = (datetime.now(UTC) - timedelta(days=29)).isoformat()
    changes = change_data_capture([Invoice, Customer, Item], since, qb=qb)
    assert not hasattr(changes, "Invoice")  # the demo history is older than 30 days


# ---- requestid -------------------------------------------------------------------------------
def test_requestid_replays_the_original_answer(qb: QuickBooks) -> None:
    before = Invoice.count(qb=qb)
    first = invoice_for(qb, "Globex Corp.").save(qb=qb, request_id="opp-006-1")
    second = invoice_for(qb, "Globex Corp.", amount=999).save(qb=qb, request_id="opp-006-1")
    assert second.Id == first.Id and float(second.TotalAmt) == 100.0
    assert Invoice.count(qb=qb) == before + 1
    body = invoice_for(qb, "Globex Corp.").to_json()
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    target = url(qb, "invoice")
    params = {"requestid": "raw-1", "minorversion": 75}
    a = qb.process_request("POST", target, headers=dict(headers), params=params, data=body)
    b = qb.process_request("POST", target, headers=dict(headers), params=params, data=body)
    assert a.status_code == b.status_code == 200 and a.content == b.content


def test_requestid_is_per_realm(qb: QuickBooks, qb_eu: QuickBooks) -> None:
    us = invoice_for(qb, "Globex Corp.").save(qb=qb, request_id="shared-id")
    eu = invoice_for(qb_eu, "Fjord Fisk AS").save(qb=qb_eu, request_id="shared-id")
    assert us.CustomerRef.name == "Globex Corp." and eu.CustomerRef.name == "Fjord Fisk AS"


def test_requestid_longer_than_50_characters(qb: QuickBooks, expect_fault: FaultCheck) -> None:
    with expect_fault(QuickbooksException, 6000) as caught:
        named("Long Id").save(qb=qb, request_id="x" * 51)
    assert "more than 50 characters" in caught.value.detail


def test_failed_writes_are_not_remembered(qb: QuickBooks, expect_fault: FaultCheck) -> None:
    with expect_fault(QuickbooksException, 6240):
        named("Stark Industries").save(qb=qb, request_id="retry-me")
    assert named("Stark Two").save(qb=qb, request_id="retry-me").DisplayName == "Stark Two"


def test_batch_with_requestid_replays(qb: QuickBooks) -> None:
    body = json.dumps(
        {
            "BatchItemRequest": [
                {"bId": "1", "operation": "create", "Customer": {"DisplayName": "B"}}
            ]
        }
    )
    first = qb.post(url(qb, "batch"), body, params={"requestid": "batch-1"})
    again = qb.post(url(qb, "batch"), body, params={"requestid": "batch-1"})
    assert first == again and "Customer" in first["BatchItemResponse"][0]
    assert len(Customer.filter(DisplayName="B", qb=qb)) == 1


def test_dropped_connection_after_write_then_replay(qb: QuickBooks, control: httpx.Client) -> None:
    control.post(
        "/_sandbox/faults", json={"method": "POST", "path": "/invoice$", "drop_after_write": True}
    )
    before = Invoice.count(qb=qb)
    with pytest.raises(requests.exceptions.RequestException):
        invoice_for(qb, "Globex Corp.").save(qb=qb, request_id="drop-1")
    assert Invoice.count(qb=qb) == before + 1  # the write happened
    replayed = invoice_for(qb, "Globex Corp.").save(qb=qb, request_id="drop-1")
    assert Invoice.count(qb=qb) == before + 1
    assert Invoice.get(replayed.Id, qb=qb).DocNumber == replayed.DocNumber


# ---- attachments -----------------------------------------------------------------------------
def attach_to(invoice: Invoice, name: str, content_type: str) -> Attachable:
    attachable = Attachable()
    attachable.FileName, attachable.ContentType = name, content_type
    link = AttachableRef()
    link.EntityRef = invoice.to_ref()
    link.EntityRef.type = "Invoice"
    attachable.AttachableRef.append(link)
    return attachable


def test_upload_bytes_and_path(qb: QuickBooks, tmp_path: Path) -> None:
    invoice = invoice_for(qb, "Globex Corp.").save(qb=qb)
    content = b"%PDF-1.4 signed order form\n" + bytes(range(256))
    attachable = attach_to(invoice, "order-form.pdf", "application/pdf")
    attachable._FileBytes = content
    saved = attachable.save(qb=qb)
    fetched = Attachable.get(saved.Id, qb=qb)
    assert (fetched.FileName, fetched.ContentType, fetched.Size) == (
        "order-form.pdf",
        "application/pdf",
        len(content),
    )
    assert fetched.AttachableRef[0].EntityRef.value == invoice.Id
    assert httpx.get(fetched.TempDownloadUri).content == content
    on_disk = tmp_path / "notes.txt"
    on_disk.write_text("renewal terms")
    from_path = attach_to(invoice, "notes.txt", "text/plain")
    from_path._FilePath = str(on_disk)
    saved_path = from_path.save(qb=qb)
    assert httpx.get(Attachable.get(saved_path.Id, qb=qb).TempDownloadUri).text == "renewal terms"
    linked = "AttachableRef.EntityRef.Type = 'Invoice' AND AttachableRef.EntityRef.value = "
    found = Attachable.where(f"{linked}'{invoice.Id}'", qb=qb)
    assert {a.FileName for a in found} == {"order-form.pdf", "notes.txt"}


def test_note_attachable_and_bad_reference(qb: QuickBooks, expect_fault: FaultCheck) -> None:
    invoice = invoice_for(qb, "Globex Corp.").save(qb=qb)
    note = attach_to(invoice, "", "")
    note.FileName = note.ContentType = None
    note.Note = "Approved by Priya"
    saved = note.save(qb=qb)
    assert saved.Note == "Approved by Priya" and saved.Id
    bad = attach_to(invoice, "", "")
    bad.FileName = bad.ContentType = None
    bad.Note = "x"
    bad.AttachableRef[0].EntityRef = Ref()
    bad.AttachableRef[0].EntityRef.type, bad.AttachableRef[0].EntityRef.value = "Spaceship", "1"
    with expect_fault(QuickbooksException, 6050):
        bad.save(qb=qb)


def test_upload_limits(qb: QuickBooks, control: httpx.Client, expect_fault: FaultCheck) -> None:
    invoice = invoice_for(qb, "Globex Corp.").save(qb=qb)
    exe = attach_to(invoice, "setup.exe", "application/x-msdownload")
    exe._FileBytes = b"MZ"
    with expect_fault(QuickbooksException, 6000):
        exe.save(qb=qb)
    assert control.post("/_sandbox/limits", json={"upload_max_bytes": 1024}).status_code == 200
    big = attach_to(invoice, "big.pdf", "application/pdf")
    big._FileBytes = b"x" * 2048
    with expect_fault(QuickbooksException, 6030):
        big.save(qb=qb)


def test_uploads_are_counted_and_realm_scoped(
    qb: QuickBooks, qbo_emulator: QuickBooksEmulator
) -> None:
    invoice = invoice_for(qb, "Globex Corp.").save(qb=qb)
    attachable = attach_to(invoice, "a.png", "image/png")
    attachable._FileBytes = b"\x89PNG\r\n"
    attachable.save(qb=qb)
    calls = qbo_emulator.calls.snapshot()["calls"]
    assert {"method": "POST", "endpoint": "upload", "tenant": qb.company_id, "count": 1} in calls
