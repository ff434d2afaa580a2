"""Benchmark 1 — backfill: N Closed Won deals (a third on brand-new accounts) across both realms,
through ``closed_won_to_invoice(closed_from=…, closed_to=…)`` with QuickBooks' limits on.

The floor: per realm, batch requests = ceil(new customers / 30) + ceil(invoices / 30) + 1 (the
reference-data batch); at 40 batch requests a minute per realm, floor = batches / 40 minutes —
the max over realms if realms run in parallel, the sum if serially (as the flow does today). The
sliding window also lets the first 40 batches of each realm through at once, so the strict lower
bound is ``floor((batches - 1) / 40)`` minutes ("window floor"); both are reported.
"""

from __future__ import annotations

import gc
import math
import time
from collections import Counter
from typing import Any

from benchmarks.common import (
    RESULTS,
    Bench,
    PrefectRetries,
    backfill_config,
    peak_rss_mb,
    print_table,
    pyplot,
    reset_peak_rss,
    rss_mb,
    write_json,
)

BATCH_SIZE = 30
BATCHES_PER_MINUTE = 40
TARGETS = {"qbo_calls_per_invoice": 0.1, "sf_calls_per_invoice": 0.02, "wall_over_floor": 1.2}
PEAK_MB_TARGET = 500


def batches_floor_seconds(batches: int) -> float:
    """The steady-state floor: batches / 40 per minute."""
    return batches / BATCHES_PER_MINUTE * 60


def window_floor_seconds(batches: int) -> float:
    """The sliding-window bound: batch k (from 0) cannot start before floor(k / 40) minutes."""
    return math.floor(max(batches - 1, 0) / BATCHES_PER_MINUTE) * 60.0


def run_backfill(b: Bench, deals: int, seed: int) -> dict[str, Any]:
    from flows.closed_won import closed_won_to_invoice
    from revbridge.invoices import opportunity_id_from_invoice
    from sandbox.salesforce.bulk import GenerateRequest, generate

    b.reset(qbo_limits=True)
    start, end = b.backfill_window()
    request = GenerateRequest(
        opportunities=deals, new_account_share=0.33, close_from=start, close_to=end, seed=seed
    )
    ids = set(generate(b.salesforce_backend(), request))
    qbo = b.qbo_backend()
    realms = b.realm_ids()
    before = {
        key: (len(qbo.company(rid).table("Customer")), len(qbo.company(rid).table("Invoice")))
        for key, rid in realms.items()
    }
    config_path = backfill_config()
    b.clear_counters()
    gc.collect()
    exact_peak = reset_peak_rss()
    rss_before = rss_mb()
    with PrefectRetries() as retries:
        started = time.perf_counter()
        state = closed_won_to_invoice(
            closed_from=start, closed_to=end, config_path=config_path, return_state=True
        )
        wall = time.perf_counter() - started
    peak = peak_rss_mb()

    qcalls, scalls = b.calls("quickbooks"), b.calls("salesforce")
    per_realm: dict[str, dict[str, Any]] = {}
    invoiced: Counter[str] = Counter()
    for key, rid in realms.items():
        company = qbo.company(rid)
        new_customers = len(company.table("Customer")) - before[key][0]
        invoices = len(company.table("Invoice")) - before[key][1]
        for invoice in company.table("Invoice").values():
            opp_id = opportunity_id_from_invoice(invoice)
            if opp_id in ids:
                invoiced[opp_id] += 1
        endpoints = Counter(
            {row["endpoint"]: row["count"] for row in qcalls["calls"] if row["tenant"] == rid}
        )
        batches = math.ceil(new_customers / BATCH_SIZE) + math.ceil(invoices / BATCH_SIZE) + 1
        stamps = [t for t, service, _, tenant in b.timeline.calls if tenant == rid]
        per_realm[key] = {
            "realm_id": rid,
            "invoices": invoices,
            "new_customers": new_customers,
            "batches_needed": batches,
            "batch_calls": endpoints.get("batch", 0),
            "query_calls": endpoints.get("query", 0),
            "api_calls": sum(endpoints.values()),
            "floor_s": batches_floor_seconds(batches),
            "window_floor_s": window_floor_seconds(batches),
            "first_call_s": (min(stamps) - started) if stamps else None,
            "last_call_s": (max(stamps) - started) if stamps else None,
        }
    invoices_total = sum(r["invoices"] for r in per_realm.values())
    floors = [r["floor_s"] for r in per_realm.values()]
    window = [r["window_floor_s"] for r in per_realm.values()]
    floor_parallel, floor_serial = max(floors), sum(floors)
    result: dict[str, Any] = {
        "deals": deals,
        "state": state.type.value,
        "message": state.message,
        "wall_s": wall,
        "invoices": invoices_total,
        "every_deal_invoiced_once": len(invoiced) == deals
        and all(n == 1 for n in invoiced.values()),
        "qbo_calls": qcalls["total"],
        "sf_calls": scalls["total"],
        "qbo_calls_per_invoice": qcalls["total"] / max(invoices_total, 1),
        "sf_calls_per_invoice": scalls["total"] / max(invoices_total, 1),
        "qbo_429": b.timeline.throttled,
        "prefect_api_503_retries": retries.count,
        "peak_rss_mb": peak,
        "rss_before_mb": rss_before,
        "peak_is_for_this_run": exact_peak,
        "floor_parallel_s": floor_parallel,
        "floor_serial_s": floor_serial,
        "window_floor_parallel_s": max(window),
        "window_floor_serial_s": sum(window),
        "wall_over_floor_parallel": wall / floor_parallel,
        "wall_over_floor_serial": wall / floor_serial,
        "realms": per_realm,
        "emulator_seconds": dict(b.server_time.seconds),
        "timeline": [
            (round(t - started, 3), service, endpoint, tenant)
            for t, service, endpoint, tenant in b.timeline.calls
            if service == "quickbooks" and endpoint == "batch"
        ],
    }
    return result


def main(b: Bench, sizes: list[int]) -> dict[str, Any]:
    runs = [run_backfill(b, deals, seed=7 + i) for i, deals in enumerate(sizes)]
    rows = []
    for r in runs:
        rows.append(
            [
                r["deals"],
                r["state"],
                r["wall_s"],
                r["floor_parallel_s"],
                r["floor_serial_s"],
                r["window_floor_serial_s"],
                f"{r['wall_over_floor_parallel']:.2f}x",
                f"{r['wall_over_floor_serial']:.2f}x",
                r["qbo_calls_per_invoice"],
                r["sf_calls_per_invoice"],
                r["peak_rss_mb"],
                "yes" if r["every_deal_invoiced_once"] else "NO",
            ]
        )
    print_table(
        "Backfill (QuickBooks limits on: 40 batch/min, 500 req/min, 10 concurrent per realm)",
        [
            "deals",
            "state",
            "wall s",
            "floor∥ s",
            "floor serial s",
            "window floor serial s",
            "wall/floor∥",
            "wall/floor serial",
            "QBO/inv",
            "SF/inv",
            "peak MB",
            "once",
        ],
        rows,
    )
    realm_rows = [
        [
            r["deals"],
            key,
            realm["invoices"],
            realm["new_customers"],
            realm["batches_needed"],
            realm["batch_calls"],
            realm["query_calls"],
            realm["first_call_s"],
            realm["last_call_s"],
        ]
        for r in runs
        for key, realm in r["realms"].items()
    ]
    print_table(
        "Per realm (first and last QuickBooks call, seconds from the flow's start)",
        [
            "deals",
            "realm",
            "invoices",
            "new cust.",
            "batches needed",
            "batch calls",
            "queries",
            "first call s",
            "last call s",
        ],
        realm_rows,
    )
    print(
        "Floor: per realm ceil(new customers/30) + ceil(invoices/30) + 1 reference batch, at 40 "
        "batch requests/min; ∥ = realms in parallel (max), serial = sum (what the flow does)."
    )
    data = {
        "benchmark": "backfill",
        "targets": {**TARGETS, "peak_rss_mb": PEAK_MB_TARGET},
        "floor": "per realm batches = ceil(new customers/30) + ceil(invoices/30) + 1 reference "
        "batch; floor = batches/40 min (max over realms = parallel, sum = serial); window floor "
        "= floor((batches-1)/40) min (the sliding window admits the first 40 at once)",
        "runs": runs,
    }
    write_json("backfill", data)
    _chart(runs)
    return data


def _chart(runs: list[dict[str, Any]]) -> None:
    plt = pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 4.8))
    labels = [f"{r['deals']:,} deals" for r in runs]
    series = [
        ("wall", "wall_s", "tab:blue"),
        ("floor, realms parallel", "floor_parallel_s", "tab:green"),
        ("floor, realms serial", "floor_serial_s", "tab:orange"),
        ("window floor, serial", "window_floor_serial_s", "tab:gray"),
    ]
    width = 0.2
    for i, (name, key, color) in enumerate(series):
        xs = [j + (i - 1.5) * width for j in range(len(runs))]
        left.bar(xs, [r[key] for r in runs], width, label=name, color=color)
    left.set_xticks(range(len(runs)), labels)
    left.set_ylabel("seconds")
    left.set_title("Backfill wall time against the QuickBooks batch-limit floor")
    left.legend(fontsize=8)
    biggest = runs[-1]
    for key, realm in biggest["realms"].items():
        times = sorted(t for t, _, _, tenant in biggest["timeline"] if tenant == realm["realm_id"])
        right.step(times, range(1, len(times) + 1), where="post", label=f"realm {key}")
    right.set_xlabel("seconds since the flow started")
    right.set_ylabel("batch requests sent (cumulative)")
    right.set_title(f"{biggest['deals']:,} deals: batch requests per realm over time")
    right.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(RESULTS / "backfill.png", dpi=110)
    plt.close(fig)
