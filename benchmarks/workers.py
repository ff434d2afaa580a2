"""The backfill beyond one process: Prefect server on PostgreSQL, two process workers, one
QuickBooks rate limit per realm shared through the Prefect API.

``scripts/postgres_workers.sh [--deals N]`` (or ``python -m benchmarks.workers``):

1. ``initdb`` a throwaway PostgreSQL cluster in a temp directory, on a free loopback port (as the
   ``postgres`` OS user when run as root: PostgreSQL refuses root), and start it.
2. ``prefect server start`` on a free loopback port with
   ``PREFECT_API_DATABASE_CONNECTION_URL=postgresql+asyncpg://…`` (its own ``PREFECT_HOME``).
3. Start the sandbox (in this process), save its blocks, create the process work pool, and deploy
   ``flows/closed_won.py:closed_won_to_invoice`` from this checkout (a local source: the pull
   step is "set the working directory", nothing is pushed or pulled).
4. Start two ``prefect worker start --limit 1`` processes with ``REVBRIDGE_QBO_GLOBAL_LIMITS=1``
   (every flow run they start takes the realm's Prefect rate limits, `tasks.ratelimit`).
5. Generate N Closed Won deals and start the backfill as two flow runs, one per half of the
   CloseDate range; one worker takes each (``--limit 1``).
6. Check: both runs Completed; every deal has exactly one invoice; each worker ran a flow run
   (the run's own log lines, which name it, are in that worker's output); QuickBooks answered
   no 429 and no realm saw more than 40 batch requests in any 60 s. Print a table, write
   ``results/workers.json``.
7. Stop the workers, the server and PostgreSQL, and delete the temp directory, also on Ctrl-C
   or a failure.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

import httpx

REPO = Path(__file__).resolve().parent.parent
PREFECT = str(Path(sys.executable).parent / "prefect")
POOL = "revbridge-backfill"
DEPLOYMENT = "closed-won-to-invoice/backfill"
PG_USER = "postgres"
BATCHES_PER_MINUTE = 40


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pg_bin_dir() -> Path:
    """Where initdb and pg_ctl are: on PATH, or the newest /usr/lib/postgresql/<v>/bin."""
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name)
    )
    if not versions:
        raise SystemExit("PostgreSQL not found: apt-get install postgresql (initdb, pg_ctl)")
    return versions[-1].parent


def _as_pg_user(command: list[str]) -> list[str]:
    """PostgreSQL will not run as root: run its server tools as the ``postgres`` user then."""
    return ["runuser", "-u", PG_USER, "--", *command] if os.geteuid() == 0 else command


@contextlib.contextmanager
def postgres(root: Path) -> Iterator[str]:
    """A throwaway cluster (trust auth, loopback only) with a ``prefect`` database; yields its
    SQLAlchemy URL for Prefect."""
    bindir, port = pg_bin_dir(), free_port()
    data, log = root / "data", root / "postgres.log"
    root.mkdir(parents=True)
    if os.geteuid() == 0:
        account = pwd.getpwnam(PG_USER)
        os.chown(root, account.pw_uid, account.pw_gid)
    _run(_as_pg_user([str(bindir / "initdb"), "-D", str(data), "-U", PG_USER, "-A", "trust"]))
    options = f"-p {port} -c listen_addresses=127.0.0.1 -k {root} -c max_connections=200"
    pg_ctl = str(bindir / "pg_ctl")
    _run(_as_pg_user([pg_ctl, "-D", str(data), "-l", str(log), "-o", options, "-w", "start"]))
    try:
        _run(
            [str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", PG_USER, "prefect"]
        )
        yield f"postgresql+asyncpg://{PG_USER}@127.0.0.1:{port}/prefect"
    finally:
        _run(_as_pg_user([pg_ctl, "-D", str(data), "-m", "fast", "-w", "stop"]), check=False)


@contextlib.contextmanager
def process(
    command: list[str], log: Path, env: dict[str, str]
) -> Iterator[subprocess.Popen[bytes]]:
    """A child in its own process group (a worker's flow-run processes included), stopped with
    SIGTERM, then SIGKILL after 15 s."""
    with log.open("wb") as out:
        child = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=REPO, start_new_session=True
        )
    try:
        yield child
    finally:
        for sig, wait in ((signal.SIGTERM, 15.0), (signal.SIGKILL, 5.0)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, sig)
            try:
                child.wait(wait)
                break
            except subprocess.TimeoutExpired:
                continue


def wait_healthy(api_url: str, server: subprocess.Popen[bytes], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"prefect server exited with {server.returncode}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{api_url}/health", timeout=2).status_code == 200:
                return
        time.sleep(0.5)
    raise SystemExit(f"prefect server not healthy after {timeout:.0f} s")


def max_in_window(stamps: list[float], window: float = 60.0) -> int:
    """The most stamps in any ``window`` seconds."""
    ordered = sorted(stamps)
    best, start = 0, 0
    for end, stamp in enumerate(ordered):
        while stamp - ordered[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best


def run(deals: int, seed: int, keep: bool) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="revbridge-workers-"))
    os.chmod(root, 0o755)  # the postgres user reaches its data directory through it
    home = root / "prefect-home"
    home.mkdir()
    with contextlib.ExitStack() as stack:
        if not keep:
            stack.callback(shutil.rmtree, root, ignore_errors=True)
        print(f"work directory {root}")
        database_url = stack.enter_context(postgres(root / "pg"))
        api_url = f"http://127.0.0.1:{free_port()}/api"
        base_env = {
            **os.environ,
            "PREFECT_HOME": str(home),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_LOGGING_LEVEL": "INFO",
        }
        base_env.pop("PREFECT_API_URL", None)
        server_env = {**base_env, "PREFECT_API_DATABASE_CONNECTION_URL": database_url}
        port = api_url.rsplit(":", 1)[1].split("/")[0]
        server = stack.enter_context(
            process(
                [PREFECT, "server", "start", "--host", "127.0.0.1", "--port", port, "--no-ui"],
                root / "server.log",
                server_env,
            )
        )
        wait_healthy(api_url, server)
        print(f"Prefect server on PostgreSQL: {api_url}")
        client_env = {**base_env, "PREFECT_API_URL": api_url}
        os.environ.update({k: client_env[k] for k in ("PREFECT_HOME", "PREFECT_API_URL")})
        os.environ.setdefault("REVBRIDGE_BACKOFF_SECONDS", "1.0")
        return _backfill(stack, root, client_env, deals, seed)
    raise AssertionError("unreachable")


def _backfill(
    stack: contextlib.ExitStack, root: Path, env: dict[str, str], deals: int, seed: int
) -> dict[str, Any]:
    from prefect import Flow, flow
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.client.schemas.objects import FlowRun
    from prefect.deployments import run_deployment

    from benchmarks.common import Timeline
    from blocks.sandbox import blocks_from_info, save_all
    from revbridge.invoices import opportunity_id_from_invoice
    from sandbox.core.server import Sandbox
    from sandbox.salesforce.bulk import GenerateRequest, generate
    from tasks.ratelimit import ensure_global_limits

    sandbox = Sandbox(profile="demo", state_dir=root / "sandbox")
    timeline = Timeline()
    for name, service in sandbox.services.items():
        timeline.watch(name, service.calls)
    timeline.count_throttled(sandbox.services["quickbooks"])
    stack.enter_context(sandbox)
    blocks = blocks_from_info(sandbox.info())
    save_all(blocks)
    realms = {key: c.realm_id for key, c in blocks.quickbooks.items()}
    for realm_id in realms.values():
        ensure_global_limits(realm_id)

    with get_client(sync_client=True) as client:
        client.create_work_pool(WorkPoolCreate(name=POOL, type="process"))
    deployable = cast(
        "Flow[..., Any]",
        flow.from_source(source=str(REPO), entrypoint="flows/closed_won.py:closed_won_to_invoice"),
    )
    deployable.deploy(
        name="backfill",
        work_pool_name=POOL,
        build=False,
        push=False,
        print_next_steps=False,
        ignore_warnings=True,  # "deploying to a process work pool": that is the point here
    )
    worker_env = {**env, "REVBRIDGE_QBO_GLOBAL_LIMITS": "1", "PREFECT_WORKER_QUERY_SECONDS": "2"}
    logs = {name: root / f"{name}.log" for name in ("worker-a", "worker-b")}
    for name, log in logs.items():
        command = [PREFECT, "worker", "start", "--pool", POOL, "--name", name, "--limit", "1"]
        stack.enter_context(process(command, log, worker_env))

    start = sandbox.clock.today() - timedelta(days=430)
    end = start + timedelta(days=29)
    services: dict[str, Any] = dict(sandbox.services)
    salesforce = services["salesforce"].backend
    ids = set(
        generate(
            salesforce,
            GenerateRequest(
                opportunities=deals,
                new_account_share=0.33,
                close_from=start,
                close_to=end,
                seed=seed,
            ),
        )
    )
    qbo = services["quickbooks"].backend
    before = {k: len(qbo.company(r).table("Invoice")) for k, r in realms.items()}
    middle = start + (end - start) / 2
    halves = [(start, middle), (middle + timedelta(days=1), end)]
    timeline.clear()
    started = time.monotonic()
    runs = [
        cast(
            "FlowRun",
            run_deployment(
                DEPLOYMENT,
                parameters={"closed_from": a.isoformat(), "closed_to": b.isoformat()},
                timeout=0,
                as_subflow=False,
            ),
        )
        for a, b in halves
    ]
    print(f"{deals} deals, two flow runs: {', '.join(str(r.id) for r in runs)}")
    final: dict[str, Any] = {}
    with get_client(sync_client=True) as client:
        while len(final) < len(runs):
            if time.monotonic() - started > 3600:
                raise SystemExit("the backfill runs did not finish within an hour")
            for r in runs:
                state = client.read_flow_run(r.id).state
                if state is not None and state.is_final():
                    final.setdefault(str(r.id), state)
            time.sleep(2)
    wall = time.monotonic() - started

    invoiced: Counter[str] = Counter()
    per_realm: dict[str, dict[str, Any]] = {}
    for key, realm_id in realms.items():
        company = qbo.company(realm_id)
        for invoice in company.table("Invoice").values():
            opp_id = opportunity_id_from_invoice(invoice)
            if opp_id in ids:
                invoiced[opp_id] += 1
        batches = [
            t for t, svc, ep, tenant in timeline.calls if tenant == realm_id and ep == "batch"
        ]
        per_realm[key] = {
            "invoices": len(company.table("Invoice")) - before[key],
            "batch_calls": len(batches),
            "max_batches_in_60s": max_in_window(batches),
            "window_floor_s": math.floor(max(len(batches) - 1, 0) / BATCHES_PER_MINUTE) * 60.0,
        }
    by_worker = {
        name: [str(r.id) for r in runs if f"/flow-run/{r.id}" in log.read_text(errors="replace")]
        for name, log in logs.items()
    }
    return {
        "benchmark": "workers",
        "deals": deals,
        "wall_s": wall,
        "runs": {run_id: state.type.value for run_id, state in final.items()},
        "every_deal_invoiced_once": len(invoiced) == len(ids)
        and all(n == 1 for n in invoiced.values()),
        "runs_per_worker": by_worker,
        "both_workers_ran": all(by_worker.values()),
        "qbo_429": timeline.throttled,
        "realms": per_realm,
    }


def _run(command: list[str], *, check: bool = True) -> None:
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if check and done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stdout}{done.stderr}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/postgres_workers.sh")
    parser.add_argument("--deals", type=int, default=1000, help="Closed Won deals (default 1000)")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--keep", action="store_true", help="keep the work directory and logs")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # clean up as on Ctrl-C

    from benchmarks.common import print_table, write_json

    result = run(args.deals, args.seed, args.keep)
    ok = (
        all(s == "COMPLETED" for s in result["runs"].values())
        and result["every_deal_invoiced_once"]
        and result["both_workers_ran"]
        and result["qbo_429"] == 0
        and all(r["max_batches_in_60s"] <= BATCHES_PER_MINUTE for r in result["realms"].values())
    )
    result["ok"] = ok
    print_table(
        "Backfill on PostgreSQL, two process workers (QuickBooks limits shared via Prefect)",
        ["realm", "invoices", "batch calls", "max batches in 60 s", "window floor s"],
        [
            [k, r["invoices"], r["batch_calls"], r["max_batches_in_60s"], r["window_floor_s"]]
            for k, r in result["realms"].items()
        ],
    )
    print(
        f"wall {result['wall_s']:.1f} s; runs {result['runs']}; per worker "
        f"{result['runs_per_worker']}; 429s {result['qbo_429']}; every deal invoiced once: "
        f"{result['every_deal_invoiced_once']}\n{'OK' if ok else 'FAILED'}"
    )
    write_json("workers", result)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
