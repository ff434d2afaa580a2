"""Salesforce drills on the Closed Won flow: the session expires mid-run, and the org runs out
of its daily API requests (REQUEST_LIMIT_EXCEEDED) between the read and the write-back."""

from __future__ import annotations

from typing import Any

from prefect.variables import Variable

from blocks.sandbox import SandboxBlocks
from flows.closed_won import STATE_VARIABLE, closed_won_to_invoice
from sandbox.core.server import Sandbox
from sandbox.demo_company import REALMS
from tests.drills.conftest import on_call
from tests.flows.conftest import calls
from tests.flows.test_closed_won import invoices, opportunities


def sf_calls(sandbox: Sandbox, endpoint: str, method: str | None = None) -> int:
    rows: list[dict[str, Any]] = calls(sandbox, "salesforce")["calls"]
    return sum(
        r["count"]
        for r in rows
        if r["endpoint"] == endpoint and (method is None or r["method"] == method)
    )


def assert_invoiced_once(blocks: SandboxBlocks) -> list[dict[str, Any]]:
    """Every invoice revbridge made belongs to exactly one Opportunity that points back at it."""
    invoiced = [o for o in opportunities(blocks).values() if o["QB_Invoice_Id__c"]]
    made = {(r.realm_id, i["Id"]) for r in REALMS for i in invoices(blocks, r.key)}
    assert {(o["QB_Realm__c"], o["QB_Invoice_Id__c"]) for o in invoiced} == made
    assert len(invoiced) == len(made) > 0
    return invoiced


def test_a_session_that_expires_mid_run_is_renewed_and_the_run_completes(
    fresh: Sandbox, blocks: SandboxBlocks
) -> None:
    salesforce = fresh.services["salesforce"]
    for service in fresh.services.values():
        service.calls.clear()
    # An admin ends every session while QuickBooks answers the first batch: after the
    # Salesforce read, before the write-back (and the approval runs' own reads).
    with on_call(fresh.services["quickbooks"], "batch", salesforce.backend.expire_sessions) as hit:
        state = closed_won_to_invoice(return_state=True)
    assert hit.is_set()
    assert state.is_completed(), state.message
    assert_invoiced_once(blocks)
    logins = sf_calls(fresh, "oauth2/token") + sf_calls(fresh, "soap/login")
    assert logins >= 2  # logged in again after the 401 INVALID_SESSION_ID
    written = [o for o in opportunities(blocks).values() if o["QB_Sync_Status__c"] == "Invoiced"]
    assert written and all(o["QB_Invoice_Id__c"] for o in written)


def test_request_limit_exceeded_before_the_write_back_fails_loudly_and_recovers(
    fresh: Sandbox, blocks: SandboxBlocks
) -> None:
    backend = fresh.services["salesforce"].backend
    limit = backend.daily_api_limit
    for service in fresh.services.values():
        service.calls.clear()
    try:
        # the org's daily allowance runs out while QuickBooks creates the invoices
        def exhaust() -> None:
            backend.daily_api_limit = backend.api_used

        with on_call(fresh.services["quickbooks"], "batch", exhaust):
            state = closed_won_to_invoice(return_state=True)
        assert state.is_failed()
        assert "REQUEST_LIMIT_EXCEEDED" in str(state.message) or "Limit exceeded" in str(
            state.message
        ), state.message
        created = {r.key: len(invoices(blocks, r.key)) for r in REALMS}
        assert sum(created.values()) > 0
        # a 403 is not worth retrying within the run: one PATCH, no hammering of a spent limit
        assert sf_calls(fresh, "composite/sobjects", "PATCH") <= 1
        assert "ts" not in (Variable.get(STATE_VARIABLE) or {})  # the watermark stayed put
    finally:
        backend.daily_api_limit = limit  # the next day

    for service in fresh.services.values():
        service.calls.clear()
    again = closed_won_to_invoice(return_state=True)
    assert again.is_completed(), again.message
    assert {r.key: len(invoices(blocks, r.key)) for r in REALMS} == created  # none twice
    invoiced = assert_invoiced_once(blocks)
    assert len(invoiced) == sum(created.values())  # every write-back done
    assert Variable.get(STATE_VARIABLE)["ts"]
