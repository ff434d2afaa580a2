"""The offline demo: ``python -m deployments.demo [--once]`` (what ``make demo`` runs).

1. Start the sandbox (Salesforce, QuickBooks, Slack emulators) with the demo company.
2. Start a local Prefect server on SQLite under ``.demo/`` (UI included).
3. Save the connection blocks and serve the deployments from this process.
4. Start the receiver (Salesforce pushes, Slack button clicks, QuickBooks webhooks) and register
   it with the emulators, as an admin registers the real one.
5. Run the Closed Won → invoice deployment once and print what happened to every deal.
6. ``--once``: approve one waiting deal with its Slack button, reject another through the form
   the Prefect UI shows, close one more deal in Salesforce and watch the push invoice it; print
   the result and stop. Otherwise keep serving until Ctrl-C, so deals can be approved in the
   Prefect UI (and the poller runs every minute).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
STATE = Path(os.environ.get("REVBRIDGE_DEMO_DIR") or ROOT / ".demo")
APPROVER = "priya.nair@acme-analytics.example"
APPROVER_SLACK_ID = "U07PNAIR01"  # Priya in the emulated Slack workspace
PUSH_DEAL = "opp-014"  # an open Wayne Enterprises deal the demo closes to show the push
OUTBOUND_TOKEN = "demo-outbound-token"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait(what: str, ready: Any, proc: subprocess.Popen[bytes] | None, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if proc is not None and proc.poll() is not None:
            raise SystemExit(f"{what} exited with code {proc.returncode}; see {STATE}/*.log")
        if time.monotonic() > deadline:
            raise SystemExit(f"{what} did not start within {timeout:.0f} s; see {STATE}/*.log")
        time.sleep(0.25)


def _start(cmd: list[str], log: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    out = (STATE / log).open("wb")
    return subprocess.Popen(
        cmd, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT, env=env, start_new_session=True
    )


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def start_sandbox() -> tuple[subprocess.Popen[bytes], dict[str, Any]]:
    info_file = STATE / "sandbox.json"
    info_file.unlink(missing_ok=True)
    cmd = [
        sys.executable,
        "-m",
        "sandbox",
        "serve",
        "--info-file",
        str(info_file),
        "--state-dir",
        str(STATE / "sandbox"),
    ]
    proc = _start(cmd, "sandbox.log")
    _wait("the sandbox", info_file.exists, proc)
    return proc, json.loads(info_file.read_text())


def start_prefect() -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = {
        **os.environ,
        "PREFECT_HOME": str(STATE / "prefect"),
        "PREFECT_API_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{STATE / 'prefect.db'}",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_UI_API_URL": api,
        "PREFECT_UI_URL": f"http://127.0.0.1:{port}",
    }
    cmd = [
        sys.executable,
        "-m",
        "prefect",
        "server",
        "start",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    proc = _start(cmd, "prefect-server.log", env)

    def healthy() -> bool:
        try:
            return httpx.get(f"{api}/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    _wait("the Prefect server", healthy, proc, timeout=120)
    # This process talks to that server from now on.
    os.environ.update(
        {
            "PREFECT_API_URL": api,
            "PREFECT_HOME": env["PREFECT_HOME"],
            "PREFECT_UI_URL": env["PREFECT_UI_URL"],
            "PREFECT_RUNNER_POLL_FREQUENCY": "2",
            # flow logs still reach the UI; the console keeps the summary readable
            "PREFECT_LOGGING_LEVEL": "WARNING",
        }
    )
    return proc, f"http://127.0.0.1:{port}"


def serve_in_background(config_path: str, poll_minutes: float) -> Any:
    from datetime import timedelta

    from prefect.runner import Runner

    from deployments.serve import deployments

    runner = Runner(query_seconds=2, limit=6, pause_on_shutdown=False)
    for deployment in deployments(config_path, timedelta(minutes=poll_minutes)):
        runner.add_deployment(deployment)
    thread = threading.Thread(target=lambda: asyncio.run(runner.start()), daemon=True)
    thread.start()
    return runner


def start_receiver(info: dict[str, Any], config_path: str) -> str:
    """The receiver in this process (uvicorn in a thread), registered with the emulators: the
    Slack app's interactivity Request URL, the Salesforce Outbound Message endpoint, the
    QuickBooks webhook URL. Returns its base URL."""
    import uvicorn
    from slack_sdk import WebClient

    from receiver.app import create_app
    from receiver.salesforce import salesforce_routes
    from receiver.slack import slack_interaction_routes
    from revbridge.config import load_config
    from sandbox.demo_company import ORG_ID

    config = load_config(config_path)
    slack = WebClient(token=info["slack"]["token"], base_url=info["slack"]["base_url"])
    app = create_app(
        info["quickbooks"]["webhook_verifier_token"],
        extra_routes=[
            *salesforce_routes(ORG_ID, OUTBOUND_TOKEN, "demo-callout-secret"),
            *slack_interaction_routes(info["slack"]["signing_secret"], slack, config.approval),
        ],
    )
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    base = f"http://127.0.0.1:{port}"
    _wait("the receiver", lambda: _up(f"{base}/healthz"), None)
    salesforce = info["salesforce"]["instance_url"]
    slack_base = info["slack"]["base_url"].removesuffix("/api/")
    qbo_base = info["quickbooks"]["api_base"].removesuffix("/v3")
    ca = info["salesforce"]["ca_bundle"]
    for url, body, verify in (
        (f"{slack_base}/_sandbox/interactivity", {"url": f"{base}/slack/interactions"}, True),
        (
            f"{salesforce}/_sandbox/outbound",
            {"url": f"{base}/salesforce/outbound?token={OUTBOUND_TOKEN}"},
            ca,
        ),
        (f"{qbo_base}/_sandbox/webhooks", {"url": f"{base}/qbo/webhooks"}, True),
    ):
        httpx.post(url, json=body, verify=verify, timeout=10).raise_for_status()
    return base


def _up(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def approve_in_slack(info: dict[str, Any], run_id: Any) -> None:
    """Click Approve, as Priya, on the Slack request of approval run ``run_id``."""
    slack_base = info["slack"]["base_url"].removesuffix("/api/")
    messages = httpx.get(
        f"{slack_base}/_sandbox/messages", params={"channel": "#finance-approvals"}
    ).json()["messages"]
    request = next(m for m in messages if str(run_id) in json.dumps(m.get("blocks") or []))
    click = {
        "channel": "#finance-approvals",
        "ts": request["ts"],
        "action_id": "revbridge_approval_approve",
        "user": APPROVER_SLACK_ID,
    }
    httpx.post(f"{slack_base}/_sandbox/interactions/click", json=click, timeout=30)


def close_a_deal(blocks: Any) -> str:
    """Move one open deal to Closed Won in Salesforce: its Outbound Message reaches the
    receiver, whose event triggers closed-won-to-invoice/on-push for it."""
    from datetime import UTC, datetime

    from sandbox.demo_company import build

    opp_id = build(datetime.now(UTC).date()).sf_id(PUSH_DEAL)
    blocks.salesforce.get_client().Opportunity.update(opp_id, {"StageName": "Closed Won"})
    return str(opp_id)


def invoiced(blocks: Any, opp_id: str) -> str | None:
    """The invoice number written back to ``opp_id``, once there is one."""
    record = blocks.salesforce.get_client().Opportunity.get(opp_id)
    return record["QB_DocNumber__c"] if record.get("QB_Invoice_Id__c") else None


def opportunities(blocks: Any) -> list[dict[str, Any]]:
    sf = blocks.salesforce.get_client()
    return sf.query_all(
        "SELECT Id, Name, Amount, CurrencyIsoCode, QB_Sync_Status__c, QB_DocNumber__c, "
        "QB_Sync_Error__c, QB_Approved_By__c FROM Opportunity WHERE StageName = 'Closed Won' "
        "ORDER BY Name"
    )["records"]


def print_summary(blocks: Any, ui: str) -> None:
    rows = opportunities(blocks)
    print("\nClosed Won deals after the run:")
    for row in rows:
        status = row["QB_Sync_Status__c"] or "-"
        extra = f"invoice #{row['QB_DocNumber__c']}" if row["QB_DocNumber__c"] else ""
        if row["QB_Approved_By__c"] and status == "Invoiced":
            extra += f", approved by {row['QB_Approved_By__c']}"
        if status in {"Needs Review", "Error", "Rejected"}:
            extra = (row["QB_Sync_Error__c"] or "").split("UTC: ", 1)[-1][:100]
        amount = f"{row['CurrencyIsoCode']} {row['Amount'] or 0:>10,.2f}"
        print(f"  {status:<18} {amount}  {row['Name'][:48]:<48} {extra}")
    counts = Counter(r["QB_Sync_Status__c"] or "-" for r in rows)
    print("\n" + ", ".join(f"{k}: {v}" for k, v in sorted(counts.items())))
    print(f"\nPrefect UI: {ui}  (flow runs, the audit artifact, approvals waiting as Suspended)")


def approval_runs() -> list[Any]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterTags
    from prefect.client.schemas.sorting import FlowRunSort

    from tasks.approvals import APPROVAL_TAG

    async def read() -> list[Any]:
        async with get_client() as client:
            return await client.read_flow_runs(
                flow_run_filter=FlowRunFilter(tags=FlowRunFilterTags(all_=[APPROVAL_TAG])),
                sort=FlowRunSort.ID_DESC,
                limit=200,
            )

    return asyncio.run(read())


def waiting_approvals() -> list[Any]:
    """The approval runs waiting at their form, by name (the same order every demo)."""
    runs = [r for r in approval_runs() if r.state and r.state.is_paused()]
    return sorted(runs, key=lambda r: r.name)


def all_settled() -> bool:
    """Every approval run has reached its form (or finished)."""
    runs = approval_runs()
    return bool(runs) and all(r.state and (r.state.is_paused() or r.state.is_final()) for r in runs)


def wait_for(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deployments.demo")
    parser.add_argument("--once", action="store_true", help="run, decide two approvals, exit")
    parser.add_argument("--config", default="config/demo.yaml")
    args = parser.parse_args(argv)

    shutil.rmtree(STATE, ignore_errors=True)
    STATE.mkdir(parents=True)
    print("starting the sandbox (Salesforce, QuickBooks, Slack emulators)…", flush=True)
    sandbox, info = start_sandbox()
    print("starting a local Prefect server (SQLite in .demo/)…", flush=True)
    prefect, ui = start_prefect()
    try:
        from prefect.deployments import run_deployment
        from prefect.flow_runs import resume_flow_run

        from blocks.sandbox import blocks_from_info, save_all

        blocks = blocks_from_info(info)
        save_all(blocks)
        serve_in_background(args.config, poll_minutes=1)
        receiver = start_receiver(info, args.config)
        print(f"receiver on {receiver} (Salesforce pushes, Slack clicks, QuickBooks webhooks)")
        time.sleep(3)
        print("running Closed Won → QuickBooks invoices…", flush=True)
        run: Any = run_deployment("closed-won-to-invoice/poll", timeout=300, poll_interval=2)
        print(
            f"flow run {run.name}: {run.state.name if run.state else '?'} "
            f"({run.state.message if run.state else ''})"
        )
        wait_for(all_settled, 300, "the approval runs to reach their form")
        print_summary(blocks, ui)
        pending = waiting_approvals()
        print(f"\n{len(pending)} deal(s) over the threshold wait for finance approval.")
        if args.once:
            if len(pending) >= 2:
                approve_in_slack(info, pending[0].id)
                resume_flow_run(
                    pending[1].id,
                    run_input={
                        "decision": "Reject",
                        "approver": APPROVER,
                        "comment": "demo rejection",
                    },
                )
                decided = {pending[0].id, pending[1].id}
                wait_for(
                    lambda: all(
                        r.state and r.state.is_final() for r in approval_runs() if r.id in decided
                    ),
                    180,
                    "the two decisions",
                )
                print(
                    "\napproved one deal with its Slack button and rejected another through the "
                    "approval form:"
                )
                for decision in (r for r in approval_runs() if r.id in decided):
                    state = decision.state
                    print(f"  {decision.name}: {state.name} ({state.message})")
                print_summary(blocks, ui)
            pushed = close_a_deal(blocks)
            print(f"\nclosed {PUSH_DEAL} ({pushed}) in Salesforce; its push runs the invoice flow…")
            wait_for(lambda: invoiced(blocks, pushed), 120, "the pushed deal's invoice")
            print(f"{pushed} invoiced by closed-won-to-invoice/on-push: {invoiced(blocks, pushed)}")
            return 0  # the runner's thread is a daemon: it ends with this process
        print(
            "\nOpen the UI, pick a Suspended 'approve …' flow run and press Resume to approve "
            f"or reject (approvers: {APPROVER}, liam.obrien@acme-analytics.example), or click "
            "the buttons through the Slack emulator (see sandbox/README.md).\n"
            "Serving the deployments; the poller runs every minute. Ctrl-C stops everything."
        )
        stop = threading.Event()
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        stop.wait()
        return 0
    finally:
        _stop(prefect)
        _stop(sandbox)


if __name__ == "__main__":
    sys.exit(main())
