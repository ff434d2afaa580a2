"""Monthly reconciliation against the sandbox's demo company, after the Closed Won flow ran."""

from __future__ import annotations

import asyncio
import csv
import json
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

from blocks.sandbox import SandboxBlocks
from flows.closed_won import closed_won_to_invoice
from flows.reconcile import ARTIFACT_KEY, monthly_reconciliation
from sandbox.core.server import Sandbox
from sandbox.demo_company import build
from tests.flows.conftest import calls, inject, slack_messages
from tests.flows.test_closed_won import invoices, opportunities


def qbo(blocks: SandboxBlocks, realm: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    connection = blocks.quickbooks[realm]
    client = connection.get_client()
    url = f"{client.api_url}/company/{connection.realm_id}/{path}"
    return client.make_request("POST", url, json.dumps(body))


def artifacts(key: str) -> list[Any]:
    async def read() -> list[Any]:
        async with get_client() as client:
            return await client.read_artifacts(
                artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key]))
            )

    return asyncio.run(read())


def test_month_is_reconciled_and_every_difference_explained(
    fresh: Sandbox, blocks: SandboxBlocks, tmp_path: Path
) -> None:
    today = fresh.clock.today()
    company = build(today)
    month_day = today - timedelta(days=1)  # the awkward demo deals closed yesterday
    month = month_day.strftime("%Y-%m")
    assert closed_won_to_invoice(return_state=True).is_completed()

    # QuickBooks moves on: two older invoices re-dated into the month (one then voided), a
    # partial payment with a credit memo, an invoice with no deal
    opps = opportunities(blocks)
    mine = [
        (realm, inv)
        for realm in ("us", "eu")
        for inv in invoices(blocks, realm)
        if inv["TxnDate"].startswith(month)
    ]
    older = [
        (realm, inv)
        for realm in ("us", "eu")
        for inv in invoices(blocks, realm)
        if inv["TxnDate"] < f"{month}-01"
    ]
    assert mine and len(older) >= 2, (mine, older)
    (paid_realm, partial) = mine[0]
    (late_realm, late), (void_realm, voided) = older[0], older[1]
    for realm, inv in (older[0], older[1]):
        body = {"Id": inv["Id"], "SyncToken": inv["SyncToken"], "sparse": True}
        qbo(blocks, realm, "invoice", body | {"TxnDate": month_day.isoformat()})
    void = {"Id": voided["Id"], "SyncToken": str(int(voided["SyncToken"]) + 1)}
    qbo(blocks, void_realm, "invoice?operation=void", void)
    customer = partial["CustomerRef"]
    item = partial["Line"][0]["SalesItemLineDetail"]["ItemRef"]
    memo = qbo(
        blocks,
        paid_realm,
        "creditmemo",
        {
            "CustomerRef": customer,
            "Line": [
                {
                    "DetailType": "SalesItemLineDetail",
                    "Amount": 100,
                    "SalesItemLineDetail": {"ItemRef": item, "Qty": 1, "UnitPrice": 100},
                }
            ],
        },
    )["CreditMemo"]
    qbo(
        blocks,
        paid_realm,
        "payment",
        {
            "CustomerRef": customer,
            "TotalAmt": 400,
            "Line": [
                {"Amount": 500, "LinkedTxn": [{"TxnId": partial["Id"], "TxnType": "Invoice"}]},
                {"Amount": 100, "LinkedTxn": [{"TxnId": memo["Id"], "TxnType": "CreditMemo"}]},
            ],
        },
    )
    line = next(ln for ln in partial["Line"] if ln["DetailType"] == "SalesItemLineDetail")
    stray = qbo(
        blocks,
        paid_realm,
        "invoice",
        {"CustomerRef": customer, "TxnDate": month_day.isoformat(), "Line": [line]},
    )["Invoice"]

    # and the API stumbles: the flow's reads retry through it
    realm_id = blocks.quickbooks["us"].realm_id
    inject(fresh, "quickbooks", method="POST", path=r"/query$", status=503, tenant=realm_id)
    inject(fresh, "quickbooks", method="POST", path=r"/query$", skip=2, count=1, status=429)

    before = qbo_calls(fresh)
    state = monthly_reconciliation(month=month, report_dir=str(tmp_path), return_state=True)
    assert state.is_completed(), state.message

    csv_path = tmp_path / f"reconciliation-{month}.csv"
    assert (tmp_path / f"reconciliation-{month}.png").read_bytes().startswith(b"\x89PNG")
    rows = list(csv.DictReader(csv_path.open(encoding="utf-8")))
    by_opp = {r["opportunity_id"]: r for r in rows if r["opportunity_id"]}
    by_invoice = {(r["realm"], r["invoice_id"]): r for r in rows if r["invoice_id"]}

    # every won deal of the month has a row; those without an invoice say why
    won = {
        company.sf_id(o.key): o
        for o in company.opportunities
        if o.is_won and o.close_date.strftime("%Y-%m") == month
    }
    assert set(won) <= set(by_opp)
    for opp_id in won:
        row, status = by_opp[opp_id], opps[opp_id]["QB_Sync_Status__c"]
        if status == "Awaiting Approval":
            assert row["reason"] == "missing invoice: awaiting finance approval"
        elif status == "Needs Review":
            assert row["reason"].startswith("missing invoice: needs review — ")
            assert opps[opp_id]["QB_Sync_Error__c"] in row["reason"]
    assert by_opp[company.sf_id("opp-big-eu")]["reason"] == (
        "missing invoice: awaiting finance approval"
    )
    assert "needs review" in by_opp[company.sf_id("opp-nolines")]["reason"]
    assert "needs review" in by_opp[company.sf_id("opp-ambiguous")]["reason"]

    assert by_invoice[(void_realm, voided["Id"])]["reason"].startswith("voided: ")
    assert by_invoice[(late_realm, late["Id"])]["reason"].startswith(
        f"invoiced late: TxnDate {month_day.isoformat()}, CloseDate "
    )
    settled = by_invoice[(paid_realm, partial["Id"])]
    assert "credited: " in settled["reason"] and "partially paid: " in settled["reason"]
    assert (float(settled["paid_home"]), float(settled["credited_home"])) == (400.0, 100.0)
    assert by_invoice[(paid_realm, stray["Id"])]["reason"] == (
        "invoice without a deal: no Opportunity marker on the invoice"
    )
    for realm, inv in mine[1:]:
        assert by_invoice[(realm, inv["Id"])]["status"] == "matched"

    # the artifacts, the Slack summary
    table, summary = artifacts(ARTIFACT_KEY), artifacts(f"{ARTIFACT_KEY}-summary")
    assert table and summary
    assert "data:image/png;base64," in summary[0].data
    assert str(csv_path) in summary[0].data
    posted = slack_messages(fresh, "#revops-alerts")
    assert any(f"Reconciliation {month}" in m["text"] for m in posted)

    # QuickBooks: reads only (per realm: invoices, payments, credit memos; the 503 and 429
    # answered queries are tried again)
    made = qbo_calls(fresh) - before
    assert set(made) <= {("POST", "query"), ("POST", "token"), ("GET", "discovery")}, made
    assert made[("POST", "query")] == 3 * 2 + 2


def test_a_bad_month_fails_before_any_call(fresh: Sandbox) -> None:
    state = monthly_reconciliation(month="2026-13", return_state=True)
    assert state.is_failed()
    assert "YYYY-MM" in str(state.message)


def qbo_calls(sandbox: Sandbox) -> Counter[tuple[str, str]]:
    counted: Counter[tuple[str, str]] = Counter()
    for row in calls(sandbox, "quickbooks")["calls"]:
        counted[(row["method"], row["endpoint"])] += row["count"]
    return counted
