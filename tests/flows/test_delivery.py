"""Signed contracts attached and invoices delivered, against the sandbox: the Closed Won flow with
``delivery`` switched on (warn and hold), a missing contract, a file QuickBooks refuses, and
delivery faults retried by the next run without a second invoice."""

from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import Any

import httpx
import yaml

from blocks.sandbox import SandboxBlocks
from flows.closed_won import closed_won_to_invoice
from revbridge.delivery import invoice_url
from sandbox.core.server import Sandbox
from sandbox.demo_company import REFUSED_CONTRACT, DemoCompany, build
from tests.flows.conftest import calls, inject, slack_messages
from tests.flows.test_closed_won import eligible_small, invoices

SIGNED = re.compile(r"(?i)\bsigned\b")


def _config(tmp_path: Path, **delivery: Any) -> str:
    config = yaml.safe_load(Path("config/demo.yaml").read_text())
    config["delivery"] = {
        "attach_contract": True,
        "send_invoice": True,
        "missing_contract": "warn",
        **delivery,
    }
    path = tmp_path / "delivery.yaml"
    path.write_text(yaml.safe_dump(config))
    return str(path)


def _opps(blocks: SandboxBlocks) -> dict[str, dict[str, Any]]:
    rows = blocks.salesforce.get_client().query_all(
        "SELECT Id, Name, QB_Invoice_Id__c, QB_Realm__c, QB_Invoice_URL__c, Invoice_Sent__c, "
        "QB_Sync_Status__c, QB_Sync_Error__c FROM Opportunity WHERE StageName = 'Closed Won'"
    )["records"]
    return {r["Id"]: r for r in rows}


def _attachables(blocks: SandboxBlocks, realm: str) -> list[dict[str, Any]]:
    qb = blocks.quickbooks[realm].get_client()
    url = f"{qb.api_url}/company/{blocks.quickbooks[realm].realm_id}/query"
    answer = qb.make_request(
        "POST", url, "SELECT * FROM Attachable MAXRESULTS 1000", content_type="application/text"
    )
    return answer["QueryResponse"].get("Attachable", [])


def _by_invoice(blocks: SandboxBlocks) -> dict[tuple[str, str], dict[str, Any]]:
    """Invoices by (realm id, invoice Id): Ids are per company."""
    return {
        (blocks.quickbooks[realm].realm_id, i["Id"]): i
        for realm in ("us", "eu")
        for i in invoices(blocks, realm)
    }


def _signed_file(company: DemoCompany, opp_id: str) -> Any:
    key = next(o.key for o in company.opportunities if company.sf_id(o.key) == opp_id)
    signed = [
        f
        for f in company.files
        if f.opportunity_key == key and (SIGNED.search(f.title) or SIGNED.search(f.path_on_client))
    ]
    return max(signed, key=lambda f: f.created) if signed else None


def _qbo_writes(sandbox: Sandbox) -> dict[str, int]:
    counted: dict[str, int] = {}
    for row in calls(sandbox, "quickbooks")["calls"]:
        if row["endpoint"] in {"upload", "invoice/send"} and row["method"] == "POST":
            counted[row["endpoint"]] = counted.get(row["endpoint"], 0) + row["count"]
    return counted


def test_each_new_invoice_gets_its_signed_contract_and_is_emailed_once(
    fresh: Sandbox, blocks: SandboxBlocks, tmp_path: Path
) -> None:
    company = build(fresh.clock.today())
    config = _config(tmp_path)
    state = closed_won_to_invoice(config_path=config, return_state=True)
    assert state.is_completed(), state.message

    opps = _opps(blocks)
    by_invoice = _by_invoice(blocks)
    attached = {
        (blocks.quickbooks[realm].realm_id, ref["EntityRef"]["value"]): a
        for realm in ("us", "eu")
        for a in _attachables(blocks, realm)
        for ref in a.get("AttachableRef", [])
    }
    small = eligible_small(company)
    invoiced = {i: o for i, o in opps.items() if o["QB_Invoice_Id__c"] and i in small}
    assert len(invoiced) >= 10
    without_contract = 0
    for opp_id, opp in invoiced.items():
        key = (opp["QB_Realm__c"], opp["QB_Invoice_Id__c"])
        invoice = by_invoice[key]
        assert invoice["EmailStatus"] == "EmailSent"
        assert opp["Invoice_Sent__c"] is True
        environment = blocks.quickbooks["us"].environment
        assert opp["QB_Invoice_URL__c"] == invoice_url(environment, invoice["Id"])
        assert opp["QB_Invoice_URL__c"].startswith("https://app.sandbox.qbo.intuit.com/app/")
        expected = _signed_file(company, opp_id)
        if expected is None:
            without_contract += 1
            assert key not in attached
            continue
        attachable = attached[key]
        assert attachable["FileName"] == expected.path_on_client
        assert attachable["AttachableRef"][0]["IncludeOnSend"] is True
        assert httpx.get(attachable["TempDownloadUri"]).content == expected.content
    assert without_contract >= 1  # warned, invoiced and sent without an attachment
    alerts = " ".join(m["text"] for m in slack_messages(fresh, "#revops-alerts"))
    assert "no signed contract in Salesforce Files" in alerts
    if company.sf_id(REFUSED_CONTRACT) in invoiced:  # the .zip is named, never uploaded
        assert "-signed.zip: QuickBooks does not accept .zip files" in alerts

    # a second run attaches and sends nothing again, and creates nothing
    for service in fresh.services.values():
        service.calls.clear()
    again = closed_won_to_invoice(config_path=config, return_state=True)
    assert again.is_completed(), again.message
    assert _qbo_writes(fresh) == {}
    assert _by_invoice(blocks).keys() == by_invoice.keys()


def test_hold_keeps_a_deal_without_a_contract_until_it_is_uploaded(
    fresh: Sandbox, blocks: SandboxBlocks, tmp_path: Path
) -> None:
    company = build(fresh.clock.today())
    config = _config(tmp_path, missing_contract="hold")
    waiting = sorted(i for i in eligible_small(company) if _signed_file(company, i) is None)
    assert waiting
    state = closed_won_to_invoice(opportunity_ids=waiting, config_path=config, return_state=True)
    assert state.is_completed(), state.message
    opps = _opps(blocks)
    for opp_id in waiting:
        assert opps[opp_id]["QB_Invoice_Id__c"] is None
        assert opps[opp_id]["QB_Sync_Status__c"] == "Needs Review"
        assert (
            "Contract: no signed contract in Salesforce Files" in opps[opp_id]["QB_Sync_Error__c"]
        )
    assert calls(fresh, "quickbooks")["total"] == 0  # decided before anything was created

    # the signed contract arrives: the next run invoices the deal with it
    held = waiting[0]
    pdf = b"%PDF-1.4 countersigned"
    blocks.salesforce.get_client().ContentVersion.create(
        {
            "Title": "MSA (signed)",
            "PathOnClient": "MSA-signed.pdf",
            "VersionData": base64.b64encode(pdf).decode(),
            "FirstPublishLocationId": held,
        }
    )
    state = closed_won_to_invoice(opportunity_ids=[held], config_path=config, return_state=True)
    assert state.is_completed(), state.message
    opp = _opps(blocks)[held]
    assert opp["QB_Sync_Status__c"] == "Invoiced" and opp["Invoice_Sent__c"] is True
    realm = "us" if opp["QB_Realm__c"] == blocks.quickbooks["us"].realm_id else "eu"
    files = [
        a
        for a in _attachables(blocks, realm)
        if a["AttachableRef"][0]["EntityRef"]["value"] == opp["QB_Invoice_Id__c"]
    ]
    assert [(a["FileName"], httpx.get(a["TempDownloadUri"]).content) for a in files] == [
        ("MSA-signed.pdf", pdf)
    ]


def test_failed_delivery_is_reported_and_retried_never_a_second_invoice(
    fresh: Sandbox, blocks: SandboxBlocks, tmp_path: Path
) -> None:
    config = _config(tmp_path)
    us = blocks.quickbooks["us"].realm_id
    # every US send fails past the client's retries; QuickBooks refuses every US upload as too big
    inject(fresh, "quickbooks", path="/send$", tenant=us, count=1000, status=503)
    qbo = f"{fresh.servers['quickbooks'].base_url}/_sandbox/limits"
    httpx.post(qbo, json={"upload_max_bytes": 64}).raise_for_status()
    state = closed_won_to_invoice(config_path=config, return_state=True)
    assert state.is_failed()
    assert "not delivered" in str(state.message)
    first = _by_invoice(blocks)
    opps = _opps(blocks)
    us_deals = [o for o in opps.values() if o["QB_Realm__c"] == us and o["QB_Invoice_Id__c"]]
    assert us_deals and not any(o["Invoice_Sent__c"] for o in us_deals)
    assert all(o["QB_Invoice_URL__c"] for o in us_deals)  # the link is written all the same
    alerts = " ".join(m["text"] for m in slack_messages(fresh, "#revops-alerts"))
    assert "QuickBooks refused the attachment" in alerts and "-signed.pdf" in alerts
    assert not any(
        a["AttachableRef"][0]["EntityRef"]["type"] == "Invoice" for a in _attachables(blocks, "us")
    )  # never half-attached

    for service in fresh.services.values():
        service.faults.clear()
    httpx.post(qbo, json={"upload_max_bytes": 100 * 1024 * 1024}).raise_for_status()
    again = closed_won_to_invoice(config_path=config, return_state=True)
    assert again.is_completed(), again.message
    assert _by_invoice(blocks).keys() == first.keys()  # no second invoice
    opps = _opps(blocks)
    assert all(opps[o["Id"]]["Invoice_Sent__c"] for o in us_deals)
    assert {i["EmailStatus"] for i in invoices(blocks, "us")} == {"EmailSent"}
