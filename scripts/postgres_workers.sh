#!/usr/bin/env bash
# The Closed Won backfill on a Prefect server backed by PostgreSQL, run by two process workers
# that share each QuickBooks realm's rate limits (benchmarks/workers.py says how). Everything it
# starts (a throwaway PostgreSQL cluster, the Prefect server, the workers, the sandbox) lives in a
# temp directory and is stopped and deleted on exit.
#   scripts/postgres_workers.sh [--deals 1000] [--seed 11] [--keep]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec .venv/bin/python -m benchmarks.workers "$@"
