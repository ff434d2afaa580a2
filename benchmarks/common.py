"""What every benchmark shares: a throwaway Prefect API and an in-process sandbox, reset to the
demo seed between runs; call counts, server-side time, peak memory; tables, JSON and charts."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx

RESULTS = Path(__file__).parent / "results"


def backfill_config() -> str:
    """config/demo.yaml without the ``delivery`` section, as a file: a backfill of past deals
    creates invoices but e-mails nobody (and QuickBooks has no batch form of send or upload, so
    delivery would cost two calls per invoice on top of the batches measured here)."""
    import tempfile

    import yaml

    config = yaml.safe_load(Path("config/demo.yaml").read_text())
    config.pop("delivery", None)
    path = Path(tempfile.mkdtemp(prefix="revbridge-bench-")) / "backfill.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True))
    return str(path)


# Quiet consoles: flow and task loggers still work, INFO lines are neither printed nor shipped.
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")


@dataclass
class ServerTime:
    """Wall time the emulators spend answering (measured around each ASGI app), per service."""

    seconds: dict[str, float] = field(default_factory=dict)
    requests: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def clear(self) -> None:
        with self.lock:
            self.seconds.clear()
            self.requests.clear()

    def wrap(self, name: str, app: Any) -> Any:
        async def timed(scope: Any, receive: Any, send: Any) -> None:
            start = time.perf_counter()
            try:
                await app(scope, receive, send)
            finally:
                if scope["type"] == "http":
                    spent = time.perf_counter() - start
                    with self.lock:
                        self.seconds[name] = self.seconds.get(name, 0.0) + spent
                        self.requests[name] = self.requests.get(name, 0) + 1

        return timed


@dataclass
class Timeline:
    """When each counted API call reached an emulator: (perf_counter, service, endpoint, tenant)."""

    calls: list[tuple[float, str, str, str | None]] = field(default_factory=list)
    throttled: int = 0  # QuickBooks 429 ThrottleExceeded answers
    lock: threading.Lock = field(default_factory=threading.Lock)

    def watch(self, name: str, log: Any) -> None:
        record = log.record

        def timed(method: str, endpoint: str, tenant: str | None = None) -> None:
            with self.lock:
                self.calls.append((time.perf_counter(), name, endpoint, tenant))
            record(method, endpoint, tenant)

        log.record = timed

    def count_throttled(self, service: Any) -> None:
        """Count the 429s the QuickBooks emulator answers (its throttle's reject hook)."""
        reject = service._throttled

        def counted(scope: Any) -> Any:
            with self.lock:
                self.throttled += 1
            return reject(scope)

        service._throttled = counted

    def clear(self) -> None:
        with self.lock:
            self.calls.clear()
            self.throttled = 0


@dataclass
class Bench:
    """A running sandbox inside a Prefect test harness."""

    sandbox: Any  # sandbox.core.server.Sandbox
    server_time: ServerTime
    timeline: Timeline

    def reset(self, *, qbo_limits: bool = True) -> None:
        """Every emulator back to the demo seed, the watermark and token locks forgotten, the
        blocks saved again, the in-process QuickBooks limiter emptied; QuickBooks' limits on
        (Intuit's defaults) or off, on both sides."""
        from prefect.client.orchestration import get_client
        from prefect.exceptions import ObjectNotFound
        from prefect.variables import Variable

        from blocks.quickbooks import token_lock_name
        from blocks.sandbox import blocks_from_info, save_all
        from flows.closed_won import STATE_VARIABLE
        from tasks import ratelimit
        from tasks.locks import invoicing_lock_name

        for service in self.sandbox.services.values():
            service.seed("demo")
        Variable.unset(STATE_VARIABLE)
        blocks = blocks_from_info(self.sandbox.info())
        with get_client(sync_client=True) as client:
            for connection in blocks.quickbooks.values():
                realm = connection.realm_id
                for name in (token_lock_name(realm), invoicing_lock_name(realm)):
                    with contextlib.suppress(ObjectNotFound):
                        client.delete_global_concurrency_limit_by_name(name)
        save_all(blocks)
        if qbo_limits:
            ratelimit.configure(ratelimit.Limits())
        else:
            big = 1_000_000
            ratelimit.configure(
                ratelimit.Limits(requests_per_minute=big, batch_per_minute=big, concurrent=big)
            )
            url = f"{self.sandbox.servers['quickbooks'].base_url}/_sandbox/limits"
            httpx.post(url, json={"enabled": False}).raise_for_status()
        self.clear_counters()

    def clear_counters(self) -> None:
        for service in self.sandbox.services.values():
            service.calls.clear()
        self.server_time.clear()
        self.timeline.clear()

    def calls(self, service: str) -> dict[str, Any]:
        """``GET /_sandbox/calls`` of one emulator."""
        url = f"{self.sandbox.servers[service].base_url}/_sandbox/calls"
        return httpx.get(url, verify=False).json()

    def qbo_backend(self) -> Any:
        return self.sandbox.services["quickbooks"].backend

    def salesforce_backend(self) -> Any:
        return self.sandbox.services["salesforce"].backend

    def realm_ids(self) -> dict[str, str]:
        """Realm key ("us", "eu") → realm id."""
        info = self.sandbox.info()["quickbooks"]["realms"]
        return {key: str(realm["realm_id"]) for key, realm in info.items()}

    def backfill_window(self, days: int = 29) -> tuple[date, date]:
        """A CloseDate range long before any demo deal (as tests/flows/test_backfill.py)."""
        start = self.sandbox.clock.today() - timedelta(days=430)
        return start, start + timedelta(days=days)


@contextlib.contextmanager
def bench() -> Iterator[Bench]:
    """A throwaway Prefect API (SQLite; heartbeats and analytics off) and the whole sandbox in
    this process, every emulator timed server-side."""
    os.environ.setdefault("REVBRIDGE_BACKOFF_SECONDS", "1.0")
    from prefect.settings import (
        PREFECT_FLOWS_HEARTBEAT_FREQUENCY,
        PREFECT_SERVER_ANALYTICS_ENABLED,
        temporary_settings,
    )
    from prefect.testing.utilities import prefect_test_harness

    from sandbox.core.server import Sandbox

    settings = {PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None, PREFECT_SERVER_ANALYTICS_ENABLED: False}
    server_time = ServerTime()
    timeline = Timeline()
    with temporary_settings(updates=settings), prefect_test_harness(server_startup_timeout=60):
        sandbox = Sandbox(profile="demo")
        for name, service in sandbox.services.items():
            build = service.build_app
            service.build_app = lambda build=build, name=name: server_time.wrap(name, build())
            timeline.watch(name, service.calls)
        timeline.count_throttled(sandbox.services["quickbooks"])
        with sandbox:
            yield Bench(sandbox=sandbox, server_time=server_time, timeline=timeline)


class PrefectRetries(logging.Filter):
    """Counts the Prefect client's retries on 5xx from the API (the embedded SQLite server answers
    503 when its database is locked) from the client's own debug log line, and keeps the client's
    DEBUG/INFO lines off the console."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0
        self.logger = logging.getLogger("prefect.client")

    def filter(self, record: logging.LogRecord) -> bool:
        if "retryable status code 5" in record.getMessage():
            self.count += 1
        return record.levelno >= logging.WARNING

    def __enter__(self) -> PrefectRetries:
        self._level = self.logger.level
        self.logger.setLevel(logging.DEBUG)
        self.logger.addFilter(self)
        return self

    def __exit__(self, *_: object) -> None:
        self.logger.removeFilter(self)
        self.logger.setLevel(self._level)


# ---- memory ---------------------------------------------------------------------------------
def reset_peak_rss() -> bool:
    """Reset this process's peak resident set (Linux ``clear_refs`` 5); False where unsupported."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def peak_rss_mb() -> float:
    """Peak resident set of this process since the last reset (VmHWM), in MB."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    match = re.search(r"VmHWM:\s+(\d+) kB", status)
    return int(match.group(1)) / 1024 if match else 0.0


def rss_mb() -> float:
    match = re.search(r"VmRSS:\s+(\d+) kB", Path("/proc/self/status").read_text())
    return int(match.group(1)) / 1024 if match else 0.0


def process_table() -> tuple[dict[int, int], dict[int, float]]:
    """Every process's parent and CPU seconds (user + system), from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    parents: dict[int, int] = {}
    cpu: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        parents[int(entry.name)] = int(fields[1])
        cpu[int(entry.name)] = (int(fields[11]) + int(fields[12])) / tick
    return parents, cpu


def child_pids(parents: dict[int, int] | None = None) -> list[int]:
    """This process's live children (the harness's API server, say)."""
    me = os.getpid()
    table = parents if parents is not None else process_table()[0]
    return [pid for pid, parent in table.items() if parent == me]


def tree_cpu_seconds(
    roots: list[int], table: tuple[dict[int, int], dict[int, float]] | None = None
) -> float:
    """CPU seconds of the live processes ``roots`` and their descendants."""
    parents, cpu = table or process_table()
    wanted = set(roots)

    def inside(pid: int) -> bool:
        while pid > 1:
            if pid in wanted:
                return True
            pid = parents.get(pid, 0)
        return False

    return sum(seconds for pid, seconds in cpu.items() if inside(pid))


def children_cpu_seconds() -> float:
    """User + system CPU of this process's live descendants (the Prefect API server)."""
    table = process_table()
    return tree_cpu_seconds(child_pids(table[0]), table)


# ---- output ---------------------------------------------------------------------------------
def print_table(title: str, headers: list[str], rows: list[list[Any]]) -> None:
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    print(f"\n{title}")
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for row in cells:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 10 else f"{value:,.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def write_json(name: str, data: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")
    return path


def pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def percentile(values: list[float], p: float) -> float:
    """Linear-interpolated percentile (p in 0..100)."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = (len(ordered) - 1) * p / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)
