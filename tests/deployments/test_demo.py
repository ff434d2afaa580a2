"""The README's demo command, as a user runs it (in its run-once form)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

from deployments.demo import APPROVER
from deployments.serve import deployments

ROOT = Path(__file__).resolve().parents[2]


def test_the_demo_runs_end_to_end(tmp_path: Path) -> None:
    env = {**os.environ, "REVBRIDGE_DEMO_DIR": str(tmp_path / "demo")}
    env.pop("PREFECT_API_URL", None)
    done = subprocess.run(
        [sys.executable, "-m", "deployments.demo", "--once"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    out = done.stdout
    assert done.returncode == 0, out[-3000:] + done.stderr[-3000:]
    assert "flow run" in out and "Completed" in out
    assert "Invoiced" in out and "Awaiting Approval" in out and "Needs Review" in out
    assert "Prefect UI: http://127.0.0.1:" in out
    decided = out.split("approved one deal with its Slack button and rejected another")
    assert len(decided) == 2, out[-3000:]
    after = decided[1]
    # both approval runs ended as decided, and Salesforce shows it
    assert f": Completed (approved by {APPROVER}, invoice #" in after, after
    assert f": Completed (rejected by {APPROVER})" in after, after
    assert "Rejected" in after, after
    assert f"approved by {APPROVER}" in after.split("Closed Won deals after the run:")[1], after
    assert "invoiced by closed-won-to-invoice/on-push: " in out, out[-3000:]


def test_prefect_yaml_declares_what_serve_serves() -> None:
    declared = yaml.safe_load((ROOT / "prefect.yaml").read_text())["deployments"]
    entry = {(d["entrypoint"].split(":")[1], d["name"]) for d in declared}
    names = {(d.flow_name, d.name) for d in deployments("config/demo.yaml")}
    assert len(declared) == len(names)
    flows_by_entry = {
        "closed_won_to_invoice": "closed-won-to-invoice",
        "invoice_approval": "invoice-approval",
        "sync_payments": "qbo-payments-to-salesforce",
        "receivables_aging": "receivables-aging",
        "contract_renewals": "contract-renewals",
        "monthly_reconciliation": "monthly-reconciliation",
        "customer_sync": "customer-sync",
        "customer_cleanse_audit": "customer-cleanse-audit",
        "token_health": "token-health",
    }
    assert {(flows_by_entry[fn], name) for fn, name in entry} == names
