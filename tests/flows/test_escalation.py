"""Escalation and the per-realm digest against the sandbox: an invoice more than 90 days past due
gets exactly one Salesforce Task for its owner; a realm with a digest channel gets one daily
message there instead of per-invoice owner DMs."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from blocks.sandbox import SandboxBlocks
from flows.aging import DEFAULT_CONFIG, receivables_aging
from flows.closed_won import closed_won_to_invoice
from flows.renewals import contract_renewals
from revbridge.report import escape_slack
from sandbox.core.server import Sandbox
from sandbox.demo_company import REALMS
from tests.flows.conftest import inject, slack_messages
from tests.flows.test_reminders import qbo, sends

MARKER = "[revbridge:invoice="


@pytest.fixture
def invoiced(fresh: Sandbox) -> Iterator[date]:
    """The demo's small deals invoiced today, the clock pinned at noon; yields today."""
    today = fresh.clock.today()
    fresh.clock.set(datetime.combine(today, time(12), UTC))
    try:
        state = closed_won_to_invoice(return_state=True)
        assert state.is_completed(), state.message
        yield today
    finally:
        fresh.clock.set(None)


def age_on(sandbox: Sandbox, day: date, config_path: str = DEFAULT_CONFIG) -> Any:
    sandbox.clock.set(datetime.combine(day, time(12), UTC))
    return receivables_aging(as_of=day, config_path=config_path, return_state=True)


def deal_invoices() -> dict[str, dict[str, Any]]:
    """ "realm id/invoice id" → each invoice the Closed Won flow created, with its Opportunity."""
    found = {}
    for realm in REALMS:
        qb = qbo() if realm.key == "us" else _client(realm.key)
        answer = qb.make_request(
            "POST",
            f"{qb.api_url}/company/{realm.realm_id}/query",
            "SELECT * FROM Invoice MAXRESULTS 1000",
            content_type="application/text",
        )
        for row in answer["QueryResponse"].get("Invoice", []):
            note = row.get("PrivateNote") or ""
            if note.startswith("revbridge:opportunity="):
                found[f"{realm.realm_id}/{row['Id']}"] = {**row, "opp": note.split("=")[1][:18]}
    return found


def _client(key: str) -> Any:
    from blocks.quickbooks import QuickBooksConnection
    from revbridge.config import load_config

    block = QuickBooksConnection.load(load_config(DEFAULT_CONFIG).realm(key).connection_block)
    return block.get_client()  # type: ignore[union-attr]


def tasks(blocks: SandboxBlocks, include_deleted: bool = False) -> list[dict[str, Any]]:
    sf = blocks.salesforce.get_client()
    return sf.query_all(
        "SELECT Id, Subject, WhatId, OwnerId, ActivityDate, Status, Priority, Description, "
        "IsDeleted FROM Task",
        include_deleted=include_deleted,
    )["records"]


def past_90(invoices: dict[str, dict[str, Any]], day: date) -> dict[str, dict[str, Any]]:
    return {
        key: row
        for key, row in invoices.items()
        if (day - date.fromisoformat(row["DueDate"])).days > 90
    }


def markers(found: list[dict[str, Any]]) -> list[str]:
    """The "realm id/invoice id" each Task's Subject marker names, sorted."""
    return sorted(
        t["Subject"].split(MARKER)[1].rstrip("]") for t in found if MARKER in t["Subject"]
    )


def owners(blocks: SandboxBlocks, sobject: str) -> dict[str, str]:
    sf = blocks.salesforce.get_client()
    return {
        r["Id"]: r["OwnerId"] for r in sf.query_all(f"SELECT Id, OwnerId FROM {sobject}")["records"]
    }


def test_each_invoice_past_90_days_gets_one_task_for_its_owner_even_after_a_lost_answer(
    fresh: Sandbox, blocks: SandboxBlocks, invoiced: date
) -> None:
    day = invoiced + timedelta(days=125)
    invoices = deal_invoices()
    expected = past_90(invoices, day)
    assert 0 < len(expected) < len(invoices)  # some are 90+, some not yet
    # a run in between, as the daily schedule does (it also rotates the QuickBooks refresh
    # tokens, which expire after 100 days unused): only what is 90+ by then gets its Task
    early = invoiced + timedelta(days=60)
    assert age_on(fresh, early).is_completed()
    assert markers(tasks(blocks)) == sorted(past_90(invoices, early))

    # Salesforce inserts the Tasks but the answer never arrives: the run fails loudly...
    inject(fresh, "salesforce", method="POST", path="composite/sobjects$", drop_after_write=True)
    state = age_on(fresh, day)
    assert state.is_failed() and "no answer from Salesforce" in state.message
    assert fresh.services["salesforce"].faults.pending() == []
    # ...and the next run finds them by their marker instead of inserting them again
    later = day + timedelta(days=1)
    assert age_on(fresh, later).is_completed()

    found = [t for t in tasks(blocks) if MARKER in (t["Subject"] or "")]
    assert markers(found) == sorted(past_90(invoices, later))
    opp_owner = owners(blocks, "Opportunity")
    for task in found:
        row = invoices[task["Subject"].split(MARKER)[1].rstrip("]")]
        assert task["WhatId"] == row["opp"]
        assert task["OwnerId"] == opp_owner[row["opp"]]
        assert task["Status"] == "Not Started" and task["Priority"] == "High"
        assert task["ActivityDate"] in {str(d + timedelta(days=3)) for d in (early, day, later)}
        assert f"#{row['DocNumber']}" in task["Subject"] and "days past due" in task["Subject"]

    # the owner completes one and deletes another: neither comes back
    sf = blocks.salesforce.get_client()
    sf.Task.update(found[0]["Id"], {"Status": "Completed"})
    if len(found) > 1:
        sf.Task.delete(found[1]["Id"])
    last = day + timedelta(days=2)
    assert age_on(fresh, last).is_completed()
    assert markers(tasks(blocks, include_deleted=True)) == sorted(past_90(invoices, last))


def test_a_realm_with_a_digest_channel_gets_one_daily_message_instead_of_owner_dms(
    fresh: Sandbox, blocks: SandboxBlocks, invoiced: date, tmp_path: Path
) -> None:
    config = yaml.safe_load(Path(DEFAULT_CONFIG).read_text())
    config["reminders"] = {"digest_channels": {"us": "#finance-ops"}}
    path = tmp_path / "digest.yaml"
    path.write_text(yaml.safe_dump(config))
    assert contract_renewals(
        as_of=invoiced, config_path=str(path), return_state=True
    ).is_completed()
    renewal = invoiced + timedelta(days=7)
    before = slack_messages(fresh)

    # 92 days after T, 99 after the last run (QuickBooks refresh tokens live 101 days): the
    # renewal invoices are due a reminder and a Task each; some deals moved, some are 90+
    day = renewal + timedelta(days=92)
    sent = sends(fresh)  # the Closed Won flow e-mails its new invoices
    state = age_on(fresh, day, str(path))
    assert state.is_completed(), state.message
    assert state.result()["reminded"] >= 2
    assert sends(fresh) - sent == state.result()["reminded"]

    new = [m for m in slack_messages(fresh) if m not in before]
    (digest,) = [m for m in new if m["channel_name"] == "finance-ops"]
    text = digest["text"]
    assert text.startswith("*Daily receivables digest — us*")
    assert "moved to a worse bucket" in text and "owner " in text
    assert f"renewal reminders e-mailed: {state.result()['reminded']}" in text
    assert "Salesforce Tasks created for long-overdue invoices" in text
    # no per-invoice message for the US realm's owners; the EU realm keeps its DMs and summary
    us, eu = (next(r for r in REALMS if r.key == k) for k in ("us", "eu"))
    dms = [m for m in new if m["im_user"]]
    assert dms and not any("e-mailed it to the customer again" in m["text"] for m in dms)
    opp_realm = {row["opp"]: key.split("/")[0] for key, row in deal_invoices().items()}
    names = _opportunity_names(blocks)
    for m in dms:
        assert {opp_realm[i] for i, n in names.items() if f"*{escape_slack(n)}*" in m["text"]} == {
            eu.realm_id
        }
    alerts = [m["text"] for m in new if m["channel_name"] == "revops-alerts"]
    assert any(t.startswith("*Receivables aging — eu*") for t in alerts)
    assert not any("— us*" in t for t in alerts)

    # renewal invoices escalate to their Contract's owner
    contract_owner = owners(blocks, "Contract")
    on_contracts = [t for t in tasks(blocks) if t["WhatId"] in contract_owner]
    assert len(on_contracts) == state.result()["reminded"]
    assert all(t["OwnerId"] == contract_owner[t["WhatId"]] for t in on_contracts)
    assert us.realm_id in on_contracts[0]["Subject"]

    # daily: a second run on the same day posts no second digest; the next day's run does
    before = slack_messages(fresh)
    assert age_on(fresh, day, str(path)).is_completed()
    again = [m for m in slack_messages(fresh) if m not in before]
    assert not [m for m in again if m["channel_name"] == "finance-ops"]
    assert age_on(fresh, day + timedelta(days=1), str(path)).is_completed()
    later = [m for m in slack_messages(fresh) if m not in before and m not in again]
    assert [m["channel_name"] for m in later].count("finance-ops") == 1


def _opportunity_names(blocks: SandboxBlocks) -> dict[str, str]:
    sf = blocks.salesforce.get_client()
    rows = sf.query_all("SELECT Id, Name FROM Opportunity WHERE QB_Invoice_Id__c != null")
    return {r["Id"]: r["Name"] for r in rows["records"]}
