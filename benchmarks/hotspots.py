"""Benchmark 3 — where time goes: the 500-deal backfill with QuickBooks' limits off (sandbox and
client side), profiled twice:

1. sampled: every 5 ms, the stack of every thread of this process (``sys._current_frames``);
   each busy sample goes to the innermost frame that belongs to a category — our code
   (revbridge/, flows/, tasks/, blocks/), Prefect, the emulators (sandbox/ and the server stack
   under it), client libraries (simple-salesforce, python-quickbooks, intuit-oauth, requests,
   urllib3) — or "other" (stdlib, pydantic, … with none of them on the stack). A sample whose
   innermost frame waits (lock, select, socket read, queue) is "waiting". Low overhead; counts
   threads, so CPU-ish samples can add up to more than the wall time when threads overlap.
2. cProfile of the flow's threads (the caller and the task-runner threads it starts), merged:
   the top functions by own time, and ``results/hotspots.prof`` for snakeviz/pstats.

Plus the Prefect API server's CPU (a separate process: its SQLite writes are not in 1 or 2).
The floor here is zero (no limits): the run is CPU- and round-trip-bound.
"""

from __future__ import annotations

import cProfile
import pstats
import sys
import sysconfig
import threading
import time
from collections import Counter
from pathlib import Path
from types import FrameType
from typing import Any

from benchmarks.common import (
    RESULTS,
    Bench,
    PrefectRetries,
    backfill_config,
    children_cpu_seconds,
    print_table,
    pyplot,
    write_json,
)

REPO = Path(__file__).resolve().parent.parent
SITE = Path(sysconfig.get_paths()["purelib"]).resolve()
STDLIB = Path(sysconfig.get_paths()["stdlib"]).resolve()
OURS = tuple(str(REPO / d) + "/" for d in ("revbridge", "flows", "tasks", "blocks"))
EMULATORS = tuple(
    str(path) + "/"
    for path in [REPO / "sandbox", *(SITE / d for d in ("uvicorn", "starlette", "h11"))]
)
CLIENTS = tuple(
    str(SITE / d) + "/"
    for d in ("simple_salesforce", "quickbooks", "intuitlib", "requests", "urllib3", "zeep")
)
PREFECT = (str(SITE / "prefect") + "/",)
WAITING_LEAVES = {
    ("threading.py", "wait"),
    ("threading.py", "_wait_for_tstate_lock"),
    ("queue.py", "get"),
    ("selectors.py", "select"),
    ("socket.py", "readinto"),
    ("ssl.py", "read"),
    ("ssl.py", "recv_into"),
    ("_base.py", "result"),
    ("_base.py", "wait"),
    ("thread.py", "_worker"),
    ("connection.py", "wait"),
}
CATEGORIES = ("our code", "Prefect", "emulators", "client libraries", "other")
BLOCKING_BUILTINS = ("acquire", "poll", "select", "sleep", "recv", "wait", "accept")


def builtin_category(name: str) -> str:
    """cProfile's C functions (file "~"): blocking calls are waiting, the rest "C builtins"."""
    return "waiting" if any(word in name for word in BLOCKING_BUILTINS) else "C builtins"


def category(filename: str) -> str | None:
    if filename.startswith(OURS):
        return "our code"
    if filename.startswith(PREFECT):
        return "Prefect"
    if filename.startswith(EMULATORS):
        return "emulators"
    if filename.startswith(CLIENTS):
        return "client libraries"
    return None


def classify(frame: FrameType | None) -> str:
    if frame is None:
        return "waiting"
    leaf = frame.f_code
    if (Path(leaf.co_filename).name, leaf.co_name) in WAITING_LEAVES:
        return "waiting"
    while frame is not None:
        found = category(frame.f_code.co_filename)
        if found:
            return found
        frame = frame.f_back
    return "other"


class Sampler:
    def __init__(self, interval: float = 0.005) -> None:
        self.interval = interval
        self.counts: Counter[str] = Counter()
        self.ticks = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-sampler", daemon=True)

    def _run(self) -> None:
        me = threading.get_ident()
        while not self._stop.wait(self.interval):
            self.ticks += 1
            for ident, frame in sys._current_frames().items():
                if ident != me:
                    self.counts[classify(frame)] += 1

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def _backfill(b: Bench, deals: int, seed: int) -> tuple[Any, Any]:
    from sandbox.salesforce.bulk import GenerateRequest, generate

    b.reset(qbo_limits=False)
    start, end = b.backfill_window()
    request = GenerateRequest(
        opportunities=deals, new_account_share=0.33, close_from=start, close_to=end, seed=seed
    )
    generate(b.salesforce_backend(), request)
    b.clear_counters()
    return start, end


def sampled(b: Bench, deals: int) -> dict[str, Any]:
    from flows.closed_won import closed_won_to_invoice

    start, end = _backfill(b, deals, seed=11)
    config_path = backfill_config()
    server_cpu = children_cpu_seconds()
    cpu = time.process_time()
    with PrefectRetries() as retries, Sampler() as sampler:
        began = time.perf_counter()
        state = closed_won_to_invoice(
            closed_from=start, closed_to=end, config_path=config_path, return_state=True
        )
        wall = time.perf_counter() - began
    seconds = {k: n * sampler.interval for k, n in sampler.counts.items()}
    return {
        "state": state.type.value,
        "wall_s": wall,
        "process_cpu_s": time.process_time() - cpu,
        "prefect_server_cpu_s": children_cpu_seconds() - server_cpu,
        "prefect_api_503_retries": retries.count,
        "thread_seconds": seconds,
        "emulator_handler_s": dict(b.server_time.seconds),
        "emulator_requests": dict(b.server_time.requests),
    }


def profiled(b: Bench, deals: int) -> dict[str, Any]:
    """cProfile the flow's caller thread and every thread started while it runs."""
    from flows.closed_won import closed_won_to_invoice

    start, end = _backfill(b, deals, seed=13)
    config_path = backfill_config()
    profiles: list[cProfile.Profile] = []

    def bootstrap(*_: Any) -> None:
        sys.setprofile(None)
        profile = cProfile.Profile()
        profiles.append(profile)
        profile.enable()

    main = cProfile.Profile()
    threading.setprofile(bootstrap)
    main.enable()
    began = time.perf_counter()
    state = closed_won_to_invoice(
        closed_from=start, closed_to=end, config_path=config_path, return_state=True
    )
    wall = time.perf_counter() - began
    main.disable()
    threading.setprofile(None)  # type: ignore[arg-type]
    stats = pstats.Stats(main)
    for profile in list(profiles):
        profile.disable()  # a thread still alive keeps its own hook; its data so far is kept
        stats.add(profile)
    stats.dump_stats(RESULTS / "hotspots.prof")
    own: Counter[str] = Counter()
    top: list[dict[str, Any]] = []
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    for (filename, line, name), (_cc, calls, tottime, cumtime, _callers) in raw.items():
        kind = builtin_category(name) if filename == "~" else category(filename) or "other"
        own[kind] += tottime
        if category(filename) == "our code":
            top.append(
                {
                    "function": f"{Path(filename).relative_to(REPO)}:{line}({name})",
                    "calls": calls,
                    "own_s": tottime,
                    "cumulative_s": cumtime,
                }
            )
    top.sort(key=lambda r: -r["own_s"])
    return {
        "state": state.type.value,
        "wall_s_under_cprofile": wall,
        "threads_profiled": 1 + len(profiles),
        "own_time_by_category_s": dict(own),
        "top_our_functions": top[:15],
    }


def main(b: Bench, deals: int) -> dict[str, Any]:
    sample = sampled(b, deals)
    prof = profiled(b, deals)
    busy = {k: v for k, v in sample["thread_seconds"].items() if k != "waiting"}
    total_busy = sum(busy.values()) or 1.0
    rows = [[k, busy.get(k, 0.0), f"{busy.get(k, 0.0) / total_busy:.0%}"] for k in CATEGORIES]
    rows.append(
        ["waiting (all threads, idle or on I/O)", sample["thread_seconds"].get("waiting", 0.0), ""]
    )
    print_table(
        f"Where time goes: {deals}-deal backfill, limits off, wall {sample['wall_s']:.1f} s, "
        f"process CPU {sample['process_cpu_s']:.1f} s, Prefect server CPU "
        f"{sample['prefect_server_cpu_s']:.1f} s (sampled, all threads)",
        ["category", "busy thread-seconds", "share"],
        rows,
    )
    print_table(
        "cProfile own time by category (flow threads, inflated by profiling)",
        ["category", "own s"],
        [[k, v] for k, v in sorted(prof["own_time_by_category_s"].items(), key=lambda kv: -kv[1])],
    )
    print_table(
        "Top functions of ours by own time (cProfile)",
        ["function", "calls", "own s", "cumulative s"],
        [
            [r["function"], r["calls"], r["own_s"], r["cumulative_s"]]
            for r in prof["top_our_functions"][:10]
        ],
    )
    print(
        "Emulator handler time (server side): "
        + ", ".join(
            f"{k} {v:.2f} s / {sample['emulator_requests'][k]} requests"
            for k, v in sample["emulator_handler_s"].items()
        )
    )
    print("Floor: none (limits off): the run is bound by CPU (2 cores) and round trips.")
    data = {
        "benchmark": "hotspots",
        "deals": deals,
        "floor": "none: QuickBooks limits off on both sides",
        "sampled": sample,
        "cprofile": prof,
    }
    write_json("hotspots", data)
    _chart(sample, deals)
    return data


def _chart(sample: dict[str, Any], deals: int) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 3.8))
    seconds = sample["thread_seconds"]
    names = [*CATEGORIES, "waiting"]
    ax.barh(names, [seconds.get(n, 0.0) for n in names], color="tab:blue")
    ax.invert_yaxis()
    ax.set_xlabel("thread-seconds (sampled every 5 ms, all threads)")
    ax.set_title(
        f"{deals}-deal backfill, limits off: wall {sample['wall_s']:.1f} s, "
        f"Prefect server CPU {sample['prefect_server_cpu_s']:.1f} s"
    )
    fig.tight_layout()
    fig.savefig(RESULTS / "hotspots.png", dpi=110)
    plt.close(fig)
