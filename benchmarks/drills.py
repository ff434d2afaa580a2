"""Long fault drills (the short ones are tests/drills/):

1. ``kill``: a Closed Won backfill of N deals run by a worker process against the sandbox in
   another process; the worker is SIGKILLed at seeded random moments K times in a row, then run
   to completion. Checked: QuickBooks invoices == eligible Opportunities, no marker twice, every
   Opportunity written back to the invoice that carries its marker.
2. ``receiver``: the QuickBooks webhook receiver (its own process, a recording emitter that
   fails now and then) under R deliveries/s for S seconds, a share of them duplicates (Intuit
   resending an acknowledged delivery) and every failed one retried as Intuit does. Checked:
   each change emitted exactly once, none lost; acknowledgement latency p50/p99/max against
   Intuit's 3 s.
3. ``payments``: end to end at small scale — partial payments made with python-quickbooks, the
   sandbox's QuickBooks delivering webhooks to the receiver (whose emitter fails every third
   call, so deliveries are retried), each emitted event running the payments flow as its
   deployment trigger would, some events twice. Checked: every payment counted once in
   Amount_Paid__c.

    .venv/bin/python -m benchmarks.drills                          # full size
    .venv/bin/python -m benchmarks.drills --kills 3 --deals 200 --seconds 10   # reduced
    .venv/bin/python -m benchmarks.drills --only receiver

Writes ``benchmarks/results/drills.json`` and prints a table per drill.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from benchmarks.common import RESULTS, percentile, print_table, write_json

NAMES = ("kill", "receiver", "payments")
ROOT = Path(__file__).resolve().parents[1]
INTUIT_ACK_SECONDS = 3.0
VERIFIER = "drill-verifier-token"


# ---- shared ---------------------------------------------------------------------------------
@contextlib.contextmanager
def prefect_server(folder: Path) -> Iterator[str]:
    """``prefect server start`` on SQLite in ``folder``, as in production (its services run:
    the repossessor frees the concurrency slots of a killed worker when their lease ends;
    an ephemeral test server never does); this process uses it. Yields the API URL."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = {
        **os.environ,
        "PREFECT_HOME": str(folder / "prefect"),
        "PREFECT_API_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{folder}/prefect.db",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_UI_ENABLED": "false",
        "PREFECT_LOGGING_LEVEL": "WARNING",
    }
    env.pop("PREFECT_API_URL", None)
    command = [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1"]
    with (folder / "prefect-server.log").open("wb") as log:
        proc = subprocess.Popen([*command, "--port", str(port)], env=env, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 120
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{api}/health", timeout=2).status_code == 200:
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the Prefect server did not start: see {folder}")
            time.sleep(0.5)
        with temporary_settings(updates={PREFECT_API_URL: api}):
            yield api
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def child_env(api_url: str) -> dict[str, str]:
    return {
        **os.environ,
        "PREFECT_API_URL": api_url,
        "PREFECT_LOGGING_LEVEL": "WARNING",
        "PYTHONPATH": str(ROOT),
    }


def quiet_receiver_log() -> None:
    """The receiver logs each emit failure with its traceback: the drills cause them on
    purpose (and count the retries), so keep them off the console."""
    import logging

    logging.getLogger("revbridge.receiver").setLevel(logging.CRITICAL)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def sign(body: bytes, token: str = VERIFIER) -> str:
    from sandbox.quickbooks.webhooks import sign as intuit_sign

    return intuit_sign(body, token)


# ---- 1. kill the worker ---------------------------------------------------------------------
@contextlib.contextmanager
def sandbox_process(folder: Path) -> Iterator[dict[str, Any]]:
    """``python -m sandbox serve`` in its own process; yields the info file's content."""
    info_file = folder / "sandbox.json"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sandbox",
            "serve",
            "--info-file",
            str(info_file),
            "--state-dir",
            str(folder / "state"),
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 90
        while not info_file.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the sandbox did not start")
            time.sleep(0.2)
        yield json.loads(info_file.read_text())
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def start_worker(api_url: str, start: date, end: date) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "benchmarks.drills", "worker", start.isoformat(), end.isoformat()],
        cwd=ROOT,
        env=child_env(api_url),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def worker(start: str, end: str) -> int:
    """The worker process: one backfill run; exit 0 when the flow completed."""
    from flows.closed_won import closed_won_to_invoice

    state = closed_won_to_invoice(
        closed_from=date.fromisoformat(start), closed_to=date.fromisoformat(end), return_state=True
    )
    return 0 if state.is_completed() else 1


def ledger(blocks: Any, eligible: set[str]) -> dict[str, Any]:
    """Where the backfill stands: invoices per Opportunity marker, write-backs that match."""
    from revbridge.invoices import opportunity_id_from_invoice
    from tasks.quickbooks import qbo_query

    markers: Counter[str] = Counter()
    invoice_of: dict[str, tuple[str, str]] = {}
    for connection in blocks.quickbooks.values():
        for row in qbo_query(connection, "SELECT * FROM Invoice"):
            opp = opportunity_id_from_invoice(row)
            if opp in eligible:
                markers[opp] += 1
                invoice_of[opp] = (connection.realm_id, str(row["Id"]))
    sf = blocks.salesforce.get_client()
    rows = sf.query_all(
        "SELECT Id, QB_Invoice_Id__c, QB_Realm__c FROM Opportunity WHERE Name LIKE 'Bulk deal%'"
    )["records"]
    written = {
        r["Id"]
        for r in rows
        if r["QB_Invoice_Id__c"]
        and invoice_of.get(r["Id"]) == (r["QB_Realm__c"], r["QB_Invoice_Id__c"])
    }
    wrong = {r["Id"] for r in rows if r["QB_Invoice_Id__c"]} - written
    return {
        "invoices": sum(markers.values()),
        "opportunities_invoiced": len(markers),
        "duplicates": {k: n for k, n in markers.items() if n > 1},
        "missing": sorted(eligible - set(markers)),
        "written_back": len(written),
        "written_back_wrong": sorted(wrong),
        "not_written_back": sorted(eligible - written),
    }


def held_locks() -> list[str]:
    """The global concurrency limits a killed worker left with a slot taken (until its lease
    ends, the next run waits for them)."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        limits = client.read_global_concurrency_limits(limit=200)
    return sorted(limit.name for limit in limits if limit.active_slots)


def kill_drill(kills: int, deals: int, seed: int, window: tuple[float, float]) -> dict[str, Any]:
    from blocks.sandbox import blocks_from_info, save_all

    rng = random.Random(seed)
    with (
        tempfile.TemporaryDirectory() as tmp,
        prefect_server(Path(tmp)) as api_url,
        sandbox_process(Path(tmp)) as info,
    ):
        blocks = blocks_from_info(info)
        save_all(blocks)
        sf_base = info["salesforce"]["instance_url"]
        qbo_base = info["quickbooks"]["api_base"].removesuffix("/v3")
        today = datetime.fromisoformat(httpx.get(f"{qbo_base}/_sandbox/clock").json()["now"])
        start = today.date() - timedelta(days=430)
        end = start + timedelta(days=29)
        created = httpx.post(
            f"{sf_base}/_sandbox/generate",
            json={
                "opportunities": deals,
                "new_account_share": 0.33,
                "close_from": start.isoformat(),
                "close_to": end.isoformat(),
                "seed": seed,
            },
            verify=info["salesforce"]["ca_bundle"],
            timeout=300,
        )
        created.raise_for_status()
        sf = blocks.salesforce.get_client()
        eligible = {
            r["Id"]
            for r in sf.query_all("SELECT Id FROM Opportunity WHERE Name LIKE 'Bulk deal%'")[
                "records"
            ]
        }
        runs: list[dict[str, Any]] = []
        for n in range(1, kills + 1):
            delay = rng.uniform(*window)
            proc = start_worker(api_url, start, end)
            started = time.perf_counter()
            try:
                code = proc.wait(timeout=delay)
                outcome = f"finished (exit {code}) before the kill"
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
                outcome = "killed"
            ran = time.perf_counter() - started
            at = ledger(blocks, eligible)
            runs.append(
                {
                    "run": n,
                    "kill_after_s": round(delay, 2),
                    "ran_s": round(ran, 2),
                    "outcome": outcome,
                    "locks_left_held": held_locks(),
                    "invoices": at["invoices"],
                    "written_back": at["written_back"],
                    "duplicates": len(at["duplicates"]),
                }
            )
            print(f"  run {n}: {runs[-1]}", flush=True)
        proc = start_worker(api_url, start, end)
        started = time.perf_counter()
        code = proc.wait(timeout=1800)
        final_s = time.perf_counter() - started
        final = ledger(blocks, eligible)
        print(f"  final run: exit {code} after {final_s:.1f} s", flush=True)
    ok = (
        final["invoices"] == len(eligible)
        and not final["duplicates"]
        and not final["missing"]
        and not final["not_written_back"]
        and not final["written_back_wrong"]
    )
    result = {
        "deals": deals,
        "eligible": len(eligible),
        "kills": kills,
        "seed": seed,
        "window_s": list(window),
        "runs": runs,
        "final_exit_code": code,
        "final_run_s": round(final_s, 2),
        "final": {k: (v if isinstance(v, int) else len(v)) for k, v in final.items()},
        "final_detail": {k: v for k, v in final.items() if not isinstance(v, int) and v},
        "passed": ok and code == 0,
    }
    print_table(
        f"Kill the worker: {deals} deals, {kills} SIGKILLs (seed {seed}), then a full run",
        [
            "run",
            "kill after s",
            "ran s",
            "outcome",
            "invoices",
            "written back",
            "duplicates",
            "locks held after",
        ],
        [
            [
                r["run"],
                r["kill_after_s"],
                r["ran_s"],
                r["outcome"],
                r["invoices"],
                r["written_back"],
                r["duplicates"],
                ", ".join(r["locks_left_held"]) or "-",
            ]
            for r in runs
        ]
        + [
            [
                "final",
                "-",
                result["final_run_s"],
                f"exit {code}",
                final["invoices"],
                final["written_back"],
                len(final["duplicates"]),
                "-",
            ]
        ],
    )
    print(
        f"eligible {len(eligible)}: invoices {final['invoices']}, missing "
        f"{len(final['missing'])}, duplicates {len(final['duplicates'])}, not written back "
        f"{len(final['not_written_back'])} → {'PASS' if result['passed'] else 'FAIL'}"
    )
    return result


# ---- 2. the receiver under load -------------------------------------------------------------
def serve_receiver(port: int, out: str, fail_every: int) -> int:
    """The receiver process: ``create_app`` with an emitter that records each event (and fails
    every ``fail_every``-th call); the events go to ``out`` when uvicorn stops (SIGTERM)."""
    import uvicorn

    from receiver.app import create_app

    events: list[dict[str, Any]] = []
    calls = 0

    def emit(**event: Any) -> None:
        nonlocal calls
        calls += 1
        if fail_every and calls % fail_every == 0:
            raise RuntimeError("events worker is down")
        events.append({"id": str(event["id"]), "payload": event["payload"]})

    quiet_receiver_log()
    inner = create_app(VERIFIER, emit=emit)
    handling: list[float] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        """The receiver, its time per delivery measured (request start → response sent)."""
        began = time.perf_counter()
        try:
            await inner(scope, receive, send)
        finally:
            if scope["type"] == "http" and scope["path"] == "/qbo/webhooks":
                handling.append(time.perf_counter() - began)

    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="error", lifespan="off", access_log=False
    )
    server = uvicorn.Server(config)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    thread = threading.Thread(target=server.run)  # off the main thread: no signal handlers
    thread.start()
    stop.wait()
    server.should_exit = True
    thread.join(timeout=30)
    Path(out).write_text(
        json.dumps(
            {
                "events": events,
                "emit_calls": calls,
                "handling": handling,
                "cpu_s": time.process_time(),
            }
        )
    )
    return 0


def delivery(n: int, rng: random.Random, realm: str) -> tuple[bytes, set[str]]:
    """One delivery of 1-3 changes; returns the body and its change keys."""
    when = "2026-11-23T10:00:00.000Z"
    if rng.random() < 0.2:  # the legacy envelope still arrives
        entities = [
            {"name": rng.choice(["Payment", "Invoice"]), "id": f"{n}{m}", "operation": "Update",
             "lastUpdated": when}
            for m in range(rng.randint(1, 3))
        ]  # fmt: skip
        body = {
            "eventNotifications": [{"realmId": realm, "dataChangeEvent": {"entities": entities}}]
        }
        keys = {f"legacy:{realm}:{e['name']}:{e['id']}:Update:{when}" for e in entities}
    else:
        events = [
            {"specversion": "1.0", "id": str(uuid.UUID(int=rng.getrandbits(128))),
             "source": "intuit.drill",
             "type": f"qbo.{rng.choice(['payment', 'invoice'])}.updated.v1",
             "time": when, "intuitentityid": f"{n}{m}", "intuitaccountid": realm, "data": {}}
            for m in range(rng.randint(1, 3))
        ]  # fmt: skip
        body = events  # type: ignore[assignment]
        keys = {f"ce:{e['id']}" for e in events}
    return json.dumps(body).encode(), keys


async def _post(
    streams: tuple[asyncio.StreamReader, asyncio.StreamWriter], host: str, body: bytes
) -> int:
    """One delivery on a kept-alive HTTP/1.1 connection; the status code. (Plain streams: an
    HTTP client library costs more CPU per request than the receiver does.)"""
    reader, writer = streams
    head = (
        f"POST /qbo/webhooks HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"intuit-signature: {sign(body)}\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    writer.write(head.encode() + body)
    await writer.drain()
    status = int((await reader.readline()).split()[1])
    length = 0
    while (line := await reader.readline()) not in (b"\r\n", b""):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    await reader.readexactly(length)
    return status


async def offer_deliveries(
    url: str, rate: float, seconds: float, dup_share: float, seed: int, connections: int = 48
) -> dict[str, Any]:
    """Open-loop load: delivery n is due at n / rate; its acknowledgement latency runs from
    when it was due (so time queued behind a slow receiver counts). A refused or failed
    delivery is sent again 1 s later, at most 6 times, as Intuit retries."""
    rng = random.Random(seed)
    host_port = url.split("//")[1].split("/")[0]
    host, port = host_port.split(":")
    sent: list[tuple[bytes, set[str]]] = []
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    expected: set[str] = set()
    queue: asyncio.Queue[tuple[int, bytes, float, int]] = asyncio.Queue()
    pending = 0
    finished = asyncio.Event()
    lost: list[int] = []
    retries = 0

    async def connection() -> None:
        nonlocal pending, retries
        streams = await asyncio.open_connection(host, int(port))
        while True:
            n, body, due, attempt = await queue.get()
            try:
                status = await _post(streams, host_port, body)
            except (OSError, ValueError, IndexError, asyncio.IncompleteReadError):
                status = 0
                streams[1].close()
                streams = await asyncio.open_connection(host, int(port))
            latencies.append(time.perf_counter() - due)
            statuses[status] += 1
            if not 200 <= status < 300:
                retries += 1
                if attempt < 5:
                    again = time.perf_counter() + 1.0
                    loop.call_later(1.0, queue.put_nowait, (n, body, again, attempt + 1))
                    continue
                lost.append(n)
            pending -= 1
            if pending == 0 and producing_done:
                finished.set()

    loop = asyncio.get_running_loop()
    producing_done = False
    workers = [asyncio.create_task(connection()) for _ in range(connections)]
    began = time.perf_counter()
    total = int(rate * seconds)
    for n in range(total):
        due = began + n / rate
        if (wait := due - time.perf_counter()) > 0:
            await asyncio.sleep(wait)
        if sent and rng.random() < dup_share:
            body, _ = rng.choice(sent)  # Intuit sends an acknowledged delivery again
        else:
            body, keys = delivery(seed * 10**7 + n, rng, "9341453172461001")
            sent.append((body, keys))
            expected |= keys
        pending += 1
        queue.put_nowait((n, body, due, 0))
    offered = time.perf_counter() - began
    producing_done = True
    if pending:
        await asyncio.wait_for(finished.wait(), timeout=120)
    for worker_task in workers:
        worker_task.cancel()
    return {
        "deliveries": total,
        "unique_deliveries": len(sent),
        "duplicates_sent": total - len(sent),
        "expected_changes": expected,
        "offered_rate": total / offered,
        "latencies": latencies,
        "statuses": dict(statuses),
        "retries": retries,
        "lost_deliveries": lost,
    }


def _offer_part(
    url: str, rate: float, seconds: float, dup_share: float, seed: int
) -> dict[str, Any]:
    return asyncio.run(offer_deliveries(url, rate, seconds, dup_share, seed))


def _load_in_parallel(
    url: str, rate: int, seconds: float, dup_share: float, seed: int, senders: int
) -> dict[str, Any]:
    """The load from ``senders`` processes (one Python client cannot offer 200 signed
    deliveries a second and time them fairly on a busy machine), merged."""
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=senders) as pool:
        parts = list(
            pool.map(
                _offer_part,
                [url] * senders,
                [rate / senders] * senders,
                [seconds] * senders,
                [dup_share] * senders,
                [seed * 1000 + i for i in range(senders)],
            )
        )
    merged: dict[str, Any] = {
        "deliveries": sum(p["deliveries"] for p in parts),
        "unique_deliveries": sum(p["unique_deliveries"] for p in parts),
        "duplicates_sent": sum(p["duplicates_sent"] for p in parts),
        "expected_changes": set().union(*(p["expected_changes"] for p in parts)),
        "offered_rate": sum(p["offered_rate"] for p in parts),
        "latencies": [x for p in parts for x in p["latencies"]],
        "statuses": dict(sum((Counter(p["statuses"]) for p in parts), Counter())),
        "retries": sum(p["retries"] for p in parts),
        "lost_deliveries": [x for p in parts for x in p["lost_deliveries"]],
    }
    return merged


def receiver_drill(
    rate: int, seconds: float, dup_share: float, fail_every: int, seed: int, senders: int = 1
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "events.json"
        port = free_port()
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "benchmarks.drills",
                "receiver",
                str(port),
                str(out),
                str(fail_every),
            ],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        try:
            deadline = time.monotonic() + 60
            while True:
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                        break
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("the receiver did not start")
                time.sleep(0.2)
            load = _load_in_parallel(
                f"http://127.0.0.1:{port}/qbo/webhooks", rate, seconds, dup_share, seed, senders
            )
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
        recorded = json.loads(out.read_text())
    from receiver.qbo import EVENT_NAMESPACE

    expected: set[str] = load.pop("expected_changes")
    expected_ids = {str(uuid.uuid5(EVENT_NAMESPACE, key)) for key in expected}
    emitted = Counter(e["id"] for e in recorded["events"])
    lat = load.pop("latencies")
    result = {
        "rate": rate,
        "seconds": seconds,
        "duplicate_share": dup_share,
        "emitter_fails_every": fail_every,
        **load,
        "lost_deliveries": len(load["lost_deliveries"]),
        "changes": len(expected),
        "emitted": sum(emitted.values()),
        "emitted_twice": sum(1 for n in emitted.values() if n > 1),
        "changes_lost": len(expected_ids - set(emitted)),
        "unexpected_events": len(set(emitted) - expected_ids),
        "receiver_cpu_s": recorded["cpu_s"],
        "server_p50_s": percentile(recorded["handling"], 50),
        "server_p99_s": percentile(recorded["handling"], 99),
        "server_max_s": max(recorded["handling"]),
        "ack_p50_s": percentile(lat, 50),
        "ack_p99_s": percentile(lat, 99),
        "ack_max_s": max(lat),
        "requests": len(lat),
    }
    result["passed"] = (
        result["changes_lost"] == 0
        and result["emitted_twice"] == 0
        and result["unexpected_events"] == 0
        and result["lost_deliveries"] == 0
        and result["ack_p99_s"] < INTUIT_ACK_SECONDS
    )
    print_table(
        f"Receiver: {rate} deliveries/s for {seconds:g} s, {dup_share:.0%} duplicates, the "
        f"emitter failing every {fail_every}th call (retried after 1 s)",
        [
            "deliveries",
            "offered/s",
            "requests",
            "retries",
            "changes",
            "emitted",
            "twice",
            "lost",
            "ack p50 ms",
            "ack p99 ms",
            "ack max ms",
            "server p99 ms",
            "pass",
        ],
        [
            [
                result["deliveries"],
                result["offered_rate"],
                result["requests"],
                result["retries"],
                result["changes"],
                result["emitted"],
                result["emitted_twice"],
                result["changes_lost"],
                result["ack_p50_s"] * 1000,
                result["ack_p99_s"] * 1000,
                result["ack_max_s"] * 1000,
                result["server_p99_s"] * 1000,
                "yes" if result["passed"] else "NO",
            ]
        ],
    )
    return result


# ---- 3. payments end to end -----------------------------------------------------------------
FAIL_EVERY = 5  # the payments drill's emitter fails every 5th call


def payments_drill(payments: int, seed: int) -> dict[str, Any]:
    """Partial payments → sandbox webhooks → receiver → events → payments flow (some twice)."""
    import uvicorn
    from quickbooks.objects.base import LinkedTxn, Ref
    from quickbooks.objects.payment import Payment, PaymentLine

    from benchmarks.common import bench
    from blocks.sandbox import blocks_from_info
    from flows.approval import invoice_approval
    from flows.closed_won import closed_won_to_invoice
    from flows.payments import sync_payments
    from receiver.app import create_app
    from receiver.qbo import WATCHED_ENTITIES
    from sandbox.quickbooks.oauth import WEBHOOK_VERIFIER_TOKEN

    rng = random.Random(seed)
    events: list[dict[str, Any]] = []
    lock = threading.Lock()
    emit_calls = 0

    def emit(**event: Any) -> None:
        nonlocal emit_calls
        with lock:
            emit_calls += 1
            if emit_calls % FAIL_EVERY == 0:
                raise RuntimeError("events worker is down")  # Intuit retries the delivery
            events.append(event)

    quiet_receiver_log()
    with bench() as b:
        b.reset(qbo_limits=False)
        # the big demo deals ask for approval: the deployment must exist (it is not served)
        approval = invoice_approval.to_deployment(name="invoice-approval")
        approval.apply()  # type: ignore[union-attr]  # sync here: a RunnerDeployment
        invoiced = closed_won_to_invoice(return_state=True)
        if not invoiced.is_completed():
            raise RuntimeError(f"the Closed Won run failed: {invoiced.message}")
        blocks = blocks_from_info(b.sandbox.info())
        realm = blocks.quickbooks["us"]
        port = free_port()
        server = uvicorn.Server(
            uvicorn.Config(
                create_app(WEBHOOK_VERIFIER_TOKEN, emit=emit),
                host="127.0.0.1",
                port=port,
                log_level="error",
                lifespan="off",
            )
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.05)
        qbo_base = b.sandbox.servers["quickbooks"].base_url
        httpx.post(
            f"{qbo_base}/_sandbox/webhooks",
            json={"url": f"http://127.0.0.1:{port}/qbo/webhooks", "format": "cloudevents",
                  "delay_scale": 0.001},
        ).raise_for_status()  # fmt: skip
        sf = blocks.salesforce.get_client()
        deals = sf.query_all(
            "SELECT Id, Amount, QB_Invoice_Id__c, QB_Customer_Id__c FROM Opportunity "
            f"WHERE QB_Realm__c = '{realm.realm_id}' AND QB_Invoice_Id__c != null"
        )["records"]
        qb = realm.get_client()
        paid: dict[str, Decimal] = defaultdict(Decimal)
        started = time.perf_counter()
        for _ in range(payments):
            deal = rng.choice(deals)
            amount = Decimal(str(deal["Amount"])) / 10  # ten such payments would pay it in full
            if paid[deal["Id"]] + amount > Decimal(str(deal["Amount"])):
                continue
            payment = Payment()
            payment.CustomerRef = Ref()
            payment.CustomerRef.value = deal["QB_Customer_Id__c"]
            payment.TotalAmt = float(amount)
            line = PaymentLine()
            line.Amount = float(amount)
            link = LinkedTxn()
            link.TxnId, link.TxnType = deal["QB_Invoice_Id__c"], "Invoice"
            line.LinkedTxn = [link]
            payment.Line = [line]
            payment.save(qb=qb)
            paid[deal["Id"]] += amount
        webhooks = b.sandbox.services["quickbooks"].webhooks
        idle = webhooks.wait_idle(300)  # every delivery acknowledged (after its retries)
        delivered = httpx.get(f"{qbo_base}/_sandbox/webhooks").json()["deliveries"]
        changes = [
            e for d in delivered for e in d["events"] if e["entity"] in WATCHED_ENTITIES
        ]  # each delivered change once, however often its delivery was retried
        # each event runs the flow as the trigger would; a third of them twice
        runs = 0
        for event in list(events):
            times = 2 if rng.random() < 0.33 else 1
            for _ in range(times):
                payload = event["payload"]
                state = sync_payments(
                    realm=payload["realm"],
                    invoice_ids=payload["invoice_ids"],
                    payment_ids=payload["payment_ids"],
                    credit_memo_ids=payload["credit_memo_ids"],
                    return_state=True,
                )
                runs += 1
                assert state.is_completed(), state.message
        wall = time.perf_counter() - started
        rows = sf.query_all(
            "SELECT Id, Amount_Paid__c, Payment_Status__c FROM Opportunity "
            f"WHERE QB_Realm__c = '{realm.realm_id}' AND QB_Invoice_Id__c != null"
        )["records"]
        server.should_exit = True
        thread.join(timeout=10)
    wrong = [
        {"id": r["Id"], "expected": str(paid[r["Id"]]), "amount_paid": r["Amount_Paid__c"]}
        for r in rows
        if Decimal(str(r["Amount_Paid__c"] or 0)) != paid[r["Id"]]
    ]
    ids = [str(e["id"]) for e in events]
    result = {
        "payments_made": payments,
        "deals_paid": sum(1 for v in paid.values() if v),
        "deliveries": len(delivered),
        "delivery_attempts": sum(len(d.get("status_codes", [])) for d in delivered),
        "webhooks_idle": idle,
        "changes_delivered": len(changes),
        "events": len(events),
        "events_twice": len(ids) - len(set(ids)),
        "flow_runs": runs,
        "wall_s": wall,
        "amount_paid_wrong": wrong,
        "passed": idle and not wrong and len(ids) == len(set(ids)) == len(changes),
    }
    print_table(
        f"Payments end to end: webhooks → receiver (emitter fails every {FAIL_EVERY}th) → "
        "payments flow",
        [
            "payments",
            "deals",
            "deliveries",
            "attempts",
            "changes",
            "events",
            "flow runs",
            "wrong",
            "pass",
        ],
        [
            [
                payments,
                sum(1 for v in paid.values() if v),
                result["deliveries"],
                result["delivery_attempts"],
                len(changes),
                len(events),
                runs,
                len(wrong),
                "yes" if result["passed"] else "NO",
            ]
        ],
    )
    return result


# ---- entry point ----------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    args_in = list(sys.argv[1:] if argv is None else argv)
    if args_in[:1] == ["worker"]:
        return worker(args_in[1], args_in[2])
    if args_in[:1] == ["receiver"]:
        return serve_receiver(int(args_in[1]), args_in[2], int(args_in[3]))
    parser = argparse.ArgumentParser(prog="python -m benchmarks.drills")
    parser.add_argument(
        "--only", default=",".join(NAMES), help="comma-separated: " + ", ".join(NAMES)
    )
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--deals", type=int, default=500)
    parser.add_argument("--kill-window", default="1.5,20", help="seconds after start, min,max")
    parser.add_argument("--rate", type=int, default=200, help="webhook deliveries per second")
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--duplicates", type=float, default=0.2)
    parser.add_argument("--fail-every", type=int, default=50, help="emitter fails every Nth call")
    parser.add_argument("--payments", type=int, default=20)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(args_in)
    chosen = [n.strip() for n in args.only.split(",") if n.strip()]
    if set(chosen) - set(NAMES):
        parser.error(f"unknown drill(s): {', '.join(sorted(set(chosen) - set(NAMES)))}")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("REVBRIDGE_BACKOFF_SECONDS", "1.0")
    results: dict[str, Any] = {"benchmark": "drills", "args": vars(args)}
    if "kill" in chosen:
        low, high = (float(x) for x in args.kill_window.split(","))
        results["kill"] = kill_drill(args.kills, args.deals, args.seed, (low, high))
    if "receiver" in chosen:
        results["receiver"] = receiver_drill(
            args.rate, args.seconds, args.duplicates, args.fail_every, args.seed
        )
    if "payments" in chosen:
        results["payments"] = payments_drill(args.payments, args.seed)
    previous = RESULTS / "drills.json"
    if previous.exists():  # a partial re-run (--only) keeps the other drills' last results
        kept = json.loads(previous.read_text())
        results = {**{k: v for k, v in kept.items() if k in NAMES}, **results}
    write_json("drills", results)
    passed = all(r.get("passed") for k, r in results.items() if isinstance(r, dict) and k in NAMES)
    print(f"\ndrills: {'PASS' if passed else 'FAIL'} → benchmarks/results/drills.json")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
