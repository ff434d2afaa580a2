"""What counts as transient (worth a retry) for each API, and the retry condition tasks share."""

from __future__ import annotations

import os
import re
from typing import Any

import requests
from prefect.cache_policies import NO_CACHE
from quickbooks.exceptions import QuickbooksException
from simple_salesforce.exceptions import SalesforceError
from slack_sdk.errors import SlackApiError

# QuickBooks Fault codes that mean "try again later": throttled, system faults, service unavailable.
QBO_TRANSIENT_CODES = frozenset({3001, 10000})
# python-quickbooks' code 10000 also wraps a non-200 answer without a "Fault" (e.g. the gateway's
# lowercase 403 body): its HTTP status, when the message carries one, decides.
_HTTP_STATUS = re.compile(r"Error returned with status code '(\d{3})'")


class TransientError(Exception):
    """A fault that a later attempt may not meet (throttling, 5xx, a dropped connection)."""


def qbo_code(exc: BaseException) -> int | None:
    code = getattr(exc, "error_code", None)
    try:
        return int(code) if code is not None else None
    except (TypeError, ValueError):
        return None


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, TransientError):
        return True
    network = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError)
    if isinstance(exc, (*network, ConnectionError, TimeoutError)):
        return True
    if isinstance(exc, QuickbooksException):
        code = qbo_code(exc)
        answered = _HTTP_STATUS.match(str(getattr(exc, "message", "") or ""))
        if code == 10000 and answered:
            return int(answered.group(1)) in (429, *range(500, 600))
        return code is not None and (code in QBO_TRANSIENT_CODES or 500 <= code <= 599)
    if isinstance(exc, SalesforceError):
        status = getattr(exc, "status", 0) or 0
        return status >= 500 or status == 429
    if isinstance(exc, SlackApiError):
        return exc.response.status_code == 429 or exc.response.status_code >= 500
    return False


def retry_if_transient(task: Any, task_run: Any, state: Any) -> bool:
    """Prefect ``retry_condition_fn``: retry a failed task only on a transient fault."""
    try:
        state.result()
    except Exception as exc:
        return is_transient(exc)
    return False


def io_task_options(*delays: float) -> dict[str, Any]:
    """Prefect task options for a task that talks to an API: one retry per delay (seconds),
    only on a transient fault, never cached (its result depends on the outside world).
    ``REVBRIDGE_RETRY_DELAY_SCALE`` shrinks the delays (the test suite sets it to 0.01)."""
    scale = float(os.environ.get("REVBRIDGE_RETRY_DELAY_SCALE", "1"))
    return {
        "retries": len(delays),
        "retry_delay_seconds": [d * scale for d in delays],
        "retry_condition_fn": retry_if_transient,
        "cache_policy": NO_CACHE,
    }
