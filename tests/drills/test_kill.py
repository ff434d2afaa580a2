"""The worker dies (SIGKILL) in the middle of a backfill, twice, at exact points: while
QuickBooks creates a batch, and after every invoice exists but before any write-back. The next
run finishes the job: one invoice per deal, every Opportunity written back. (Ten kills at random
moments of a 500-deal backfill: ``python -m benchmarks.drills --only kill``.)"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from prefect.client.orchestration import get_client
from prefect.settings import PREFECT_API_URL

from blocks.sandbox import SandboxBlocks
from flows.closed_won import closed_won_to_invoice
from revbridge.invoices import opportunity_id_from_invoice
from sandbox.core.server import Sandbox
from sandbox.core.service import EmulatedService
from sandbox.salesforce.bulk import GenerateRequest, generate
from tests.drills.conftest import on_call
from tests.flows.conftest import inject
from tests.flows.test_closed_won import invoices

DEALS = 40
ROOT = Path(__file__).resolve().parents[2]


def start_worker(start: date, end: date) -> subprocess.Popen[bytes]:
    """A worker process running the backfill against this test's sandbox and Prefect API."""
    env = {**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value()), "PYTHONPATH": str(ROOT)}
    env["PREFECT_LOGGING_LEVEL"] = "WARNING"
    command = [sys.executable, "-m", "benchmarks.drills", "worker", str(start), str(end)]
    return subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


def killed_at(
    service: EmulatedService, endpoint: str, start: date, end: date, **match: Any
) -> None:
    """Run a worker and SIGKILL it when ``service`` counts that call; it must die of it."""
    pid: list[int] = []
    with on_call(service, endpoint, lambda: os.kill(pid[0], signal.SIGKILL), **match) as hit:
        worker = start_worker(start, end)
        pid.append(worker.pid)
        code = worker.wait(timeout=90)
    assert hit.is_set() and code == -signal.SIGKILL, f"the worker was not killed (exit {code})"
    free_dead_holders()


def free_dead_holders() -> None:
    """Free the global concurrency slots the killed worker held (the realm's invoicing lock,
    the token lock). A real Prefect server's repossessor does that when their 60 s leases end;
    this test's ephemeral server runs no repossessor, so without this the next run would wait
    for the lock until it gives up. (The benchmark runs a real server and waits.)"""
    with get_client(sync_client=True) as client:
        for limit in client.read_global_concurrency_limits(limit=200):
            if limit.active_slots:
                client.delete_global_concurrency_limit_by_name(limit.name)
                client.upsert_global_concurrency_limit_by_name(limit.name, limit.limit)


def test_a_worker_killed_mid_batch_and_before_write_back_leaves_nothing_twice(
    fresh: Sandbox, blocks: SandboxBlocks
) -> None:
    start = fresh.clock.today() - timedelta(days=430)
    end = start + timedelta(days=29)
    request = GenerateRequest(opportunities=DEALS, close_from=start, close_to=end, seed=11)
    ids = set(generate(fresh.services["salesforce"].backend, request))

    # 1. killed while QuickBooks answers the third batch (references are two: one per realm)
    killed_at(fresh.services["quickbooks"], "batch", start, end, nth=3, method="POST")
    # 2. killed once every invoice exists and the write-back is on its way (refused, to be sure
    #    it does not land after the kill)
    inject(fresh, "salesforce", method="PATCH", path="composite/sobjects", status=503)
    killed_at(fresh.services["salesforce"], "composite/sobjects", start, end, method="PATCH")
    made = [(r, i) for r in ("us", "eu") for i in invoices(blocks, r)]
    assert {opportunity_id_from_invoice(i) for _, i in made} == ids
    assert not [
        o
        for o in blocks.salesforce.get_client().query_all(
            "SELECT Id FROM Opportunity WHERE Name LIKE 'Bulk deal%' AND QB_Invoice_Id__c != null"
        )["records"]
    ]

    # 3. the next run
    state = closed_won_to_invoice(closed_from=start, closed_to=end, return_state=True)
    assert state.is_completed(), state.message
    markers = Counter(
        opportunity_id_from_invoice(i) for r in ("us", "eu") for i in invoices(blocks, r)
    )
    assert set(markers) == ids and set(markers.values()) == {1}  # one invoice each, none twice
    invoice_of = {
        opportunity_id_from_invoice(i): (blocks.quickbooks[r].realm_id, i["Id"])
        for r in ("us", "eu")
        for i in invoices(blocks, r)
    }
    rows = blocks.salesforce.get_client().query_all(
        "SELECT Id, QB_Invoice_Id__c, QB_Realm__c FROM Opportunity WHERE Name LIKE 'Bulk deal%'"
    )["records"]
    assert {r["Id"]: (r["QB_Realm__c"], r["QB_Invoice_Id__c"]) for r in rows} == invoice_of
