"""Run the benchmarks: ``python -m benchmarks.run [--quick] [--only backfill,latency,hotspots]
[--drills]``.

Results (tables on stdout, ``benchmarks/results/<name>.json`` and ``.png``) are described in
``benchmarks/README.md``. On a machine with PostgreSQL the latency benchmark also measures the
push path against a Prefect server on it (~12 more minutes; ``python -m benchmarks.latency``
runs it alone).
"""

from __future__ import annotations

import argparse
import time

from benchmarks.common import bench

NAMES = ("backfill", "latency", "hotspots")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run")
    parser.add_argument(
        "--quick", action="store_true", help="500 deals only, 20 latency runs (~3 minutes)"
    )
    parser.add_argument(
        "--only", default=",".join(NAMES), help="comma-separated: " + ", ".join(NAMES)
    )
    parser.add_argument(
        "--drills",
        action="store_true",
        help="then the long fault drills (benchmarks/drills.py; reduced with --quick)",
    )
    args = parser.parse_args(argv)
    chosen = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = set(chosen) - set(NAMES)
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")

    started = time.perf_counter()
    with bench() as b:
        if "backfill" in chosen:
            from benchmarks import backfill

            backfill.main(b, [500] if args.quick else [500, 5000])
        if "latency" in chosen:
            from benchmarks import latency

            latency.main(b, runs=20 if args.quick else 100, triggered_runs=2 if args.quick else 8)
        if "hotspots" in chosen:
            from benchmarks import hotspots

            hotspots.main(b, deals=500)
    if args.drills:
        from benchmarks import drills

        reduced = ["--kills", "3", "--deals", "200", "--seconds", "10", "--payments", "10"]
        drills.main(reduced if args.quick else [])
    print(f"\nall benchmarks: {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
