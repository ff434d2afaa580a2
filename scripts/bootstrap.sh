#!/usr/bin/env bash
# Creates .venv and installs the pinned lock + this project, once per change of the lock.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "revbridge needs Python >= 3.11 (set PYTHON=/path/to/python3.11)" >&2
  exit 1
fi
[ -x .venv/bin/python ] || "$PY" -m venv .venv
stamp=.venv/.revbridge-installed
want=$(cat requirements.lock pyproject.toml | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "installing dependencies into .venv (first run takes a minute or two)…"
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements.lock -e . 2>&1 \
    | grep -v "is ignored: it is neither a file nor a directory" || true
  .venv/bin/python -c "import prefect, simple_salesforce, quickbooks, intuitlib, slack_sdk, lark, rapidfuzz" \
    || { echo "dependency install failed" >&2; exit 1; }
  echo "$want" > "$stamp"
fi
