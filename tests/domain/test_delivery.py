"""Delivery rules: the newest signed contract, QuickBooks' attachment limits, hold, the upload
request, the invoice link and the write-back."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from revbridge.config_sections import DeliveryConfig
from revbridge.delivery import (
    ContractFile,
    Delivery,
    apply_hold,
    check_contracts,
    contract_files_query,
    invoice_url,
    merge_delivery,
    newest_signed,
    parse_contract_files,
    refusal,
    undelivered_items,
    upload_body,
    upload_request_id,
)
from revbridge.models import Opportunity
from revbridge.plan import RealmPlan, RunPlan
from sandbox.quickbooks.responses import parse_multipart

OPP = "0065g0000000001AAA"
OTHER = "0065g0000000002AAA"


def _file(
    title: str, path: str, day: int, opp: str = OPP, size: int = 10, version: str = "v"
) -> ContractFile:
    return ContractFile(
        opportunity_id=opp,
        document_id="0695g0000000001AAA",
        version_id=f"068{version}{day}",
        title=title,
        path_on_client=path,
        extension=path.rsplit(".", 1)[-1].lower() if "." in path else None,
        size=size,
        created=datetime(2026, 11, day, tzinfo=UTC),
    )


def test_the_newest_signed_file_is_the_contract() -> None:
    files = [
        _file("Proposal", "proposal.pdf", 1),
        _file("Order form (signed)", "order.pdf", 2),
        _file("MSA", "C:\\docs\\MSA-SIGNED.docx", 3),
        _file("Order form draft", "draft.docx", 4),  # newer, but not signed
        _file("Unsigned copy", "unsignedcopy.pdf", 5),  # "signed" only inside a word
        _file("Signed order", "o.pdf", 9, opp=OTHER),
    ]
    best = newest_signed(files, DeliveryConfig().contract_title_pattern)
    assert best[OPP].file_name == "MSA-SIGNED.docx"
    assert best[OTHER].title == "Signed order"


def test_what_quickbooks_would_refuse_is_named() -> None:
    assert refusal(_file("Contract signed", "contract.pdf", 1)) is None
    zipped = refusal(_file("Contract signed", "contract-signed.zip", 1))
    assert zipped is not None and zipped.startswith("contract-signed.zip: QuickBooks does not")
    assert refusal(_file("x signed", "scan.PNG", 1)) is None  # extensions in any case
    big = refusal(_file("x signed", "big.pdf", 1, size=100 * 1024 * 1024 + 1))
    assert big is not None and "big.pdf" in big and "100 MB" in big
    assert "without an extension" in (refusal(_file("x signed", "README", 1)) or "")


def test_check_and_hold() -> None:
    files = [_file("Signed", "a-signed.exe", 1), _file("x", "y.pdf", 1, opp=OTHER)]
    warn = check_contracts([OPP, OTHER], files, DeliveryConfig())
    assert warn.held(OPP) is None and "a-signed.exe" in warn.missing[OPP]
    assert "no signed contract" in warn.missing[OTHER]
    hold = check_contracts([OPP, OTHER[:15]], files, DeliveryConfig(missing_contract="hold"))
    assert hold.held(OPP[:15]) and hold.held(OTHER)

    ready, waiting = Opportunity(id=OPP), Opportunity(id=OTHER, amount=Decimal("90000"))
    kept = Opportunity(id="0065g0000000003AAA")
    plan = RunPlan(realms={"us": RealmPlan(realm="us", ready=(ready, kept), approval=(waiting,))})
    held = apply_hold(plan, hold).realms["us"]
    assert held.ready == (kept,) and held.approval == ()
    assert [(p.opportunity.id, p.problems[0].field) for p in held.problems] == [
        (OPP, "Contract"),
        (OTHER, "Contract"),
    ]
    assert apply_hold(plan, warn) is plan


def test_the_upload_body_is_what_quickbooks_reads() -> None:
    contract = _file("Order (signed)", 'Order "A" signed.pdf', 2)
    data = bytes(range(256)) * 4
    body, content_type = upload_body(contract, "1042", data)
    parts = {p.name: p for p in parse_multipart(body.encode(), content_type)}
    meta = json.loads(parts["file_metadata_01"].data)
    assert meta["AttachableRef"] == [
        {"EntityRef": {"type": "Invoice", "value": "1042"}, "IncludeOnSend": True}
    ]
    assert (meta["FileName"], meta["ContentType"]) == ('Order "A" signed.pdf', "application/pdf")
    assert parts["file_content_01"].data == data
    assert parts["file_content_01"].content_type == "application/pdf"
    with pytest.raises(ValueError):
        upload_body(_file("x", "x.zip", 1), "1", b"")
    rid = upload_request_id("1042", contract)
    assert rid == upload_request_id("1042", contract) and len(rid) <= 50
    assert rid != upload_request_id("1043", contract)


def test_invoice_links_and_the_write_back() -> None:
    assert invoice_url("production", "42") == "https://app.qbo.intuit.com/app/invoice?txnId=42"
    assert invoice_url("sandbox", "42").startswith("https://app.sandbox.qbo.intuit.com/")
    discovery = "http://127.0.0.1:9/.well-known/openid_sandbox_configuration"
    assert invoice_url(discovery, "7").endswith("/app/invoice?txnId=7")

    body = {
        "allOrNone": False,
        "records": [{"attributes": {}, "Id": OPP, "QB_Sync_Status__c": "x"}],
    }
    sent = Delivery(opportunity_id=OPP[:15], invoice_id="1", url="u1", sent_to="ap@x.example")
    unsent = Delivery(opportunity_id=OTHER, invoice_id="2", url="u2", problems=("boom",))
    merged = merge_delivery([body], [sent, unsent])
    records = merged[0]["records"]
    assert records[0] == {
        "attributes": {},
        "Id": OPP,
        "QB_Sync_Status__c": "x",
        "QB_Invoice_URL__c": "u1",
        "Invoice_Sent__c": True,
    }
    assert records[1] == {
        "attributes": {"type": "Opportunity"},
        "Id": OTHER,
        "QB_Invoice_URL__c": "u2",
    }
    assert body["records"][0].get("QB_Invoice_URL__c") is None  # the input is not changed
    many = [
        Delivery(opportunity_id=f"0065g0000000{n:03d}", invoice_id=str(n), url="u")
        for n in range(250)
    ]
    assert [len(b["records"]) for b in merge_delivery([], many)] == [200, 50]


def test_the_salesforce_rows_parse() -> None:
    rows = [
        {
            "LinkedEntityId": OPP,
            "ContentDocumentId": "0695g0000000001AAA",
            "ContentDocument": {
                "LatestPublishedVersion": {
                    "Id": "0685g0000000001AAA",
                    "Title": "Order (signed)",
                    "PathOnClient": "order.pdf",
                    "FileExtension": "pdf",
                    "ContentSize": 1234,
                    "CreatedDate": "2026-11-20T10:00:00.000+0000",
                }
            },
        },
        {"LinkedEntityId": OPP, "ContentDocumentId": "069x", "ContentDocument": None},
    ]
    (parsed,) = parse_contract_files(rows)
    assert (parsed.size, parsed.content_type, parsed.created) == (
        1234,
        "application/pdf",
        datetime(2026, 11, 20, 10, tzinfo=UTC),
    )
    assert "WHERE LinkedEntityId IN ('0065g0000000001AAA')" in contract_files_query([OPP, OPP])
    retry = undelivered_items(
        [
            {"Id": OPP, "Name": "A", "QB_Invoice_Id__c": "5", "QB_Realm__c": "1", "Account": None},
            {"Id": OTHER, "QB_Invoice_Id__c": "6", "QB_Realm__c": "9"},  # unknown realm
        ],
        {"1": "us"},
    )
    assert [(i.realm, i.invoice_id, i.fresh) for i in retry] == [("us", "5", False)]


def test_the_config_section() -> None:
    assert DeliveryConfig().attach_contract is False and DeliveryConfig().send_invoice is False
    with pytest.raises(ValueError, match="not a regular expression"):
        DeliveryConfig(contract_title_pattern="(")
