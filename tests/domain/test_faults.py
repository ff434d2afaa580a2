"""Which faults are retried: transient ones only."""

from __future__ import annotations

import pytest
import requests
from quickbooks.exceptions import AuthorizationException, QuickbooksException, ValidationException

from tasks.faults import TransientError, is_transient


@pytest.mark.parametrize(
    ("exc", "transient"),
    [
        (TransientError("x"), True),
        (requests.ConnectionError("reset"), True),
        (QuickbooksException("Throttled", 3001), True),
        (QuickbooksException("Service unavailable", 503), True),
        # python-quickbooks wraps an answer it cannot read as JSON (an HTML 502 page) as 10000
        (QuickbooksException("Error reading json response: <html>502</html>", 10000), True),
        (QuickbooksException("Error returned with status code '502': bad gateway", 10000), True),
        (QuickbooksException("Error returned with status code '429': slow down", 10000), True),
        # ...and the gateway's lowercase 403 body the same way: not worth retrying
        (
            QuickbooksException("Error returned with status code '403': {\"fault\": {}}", 10000),
            False,
        ),
        (ValidationException("Duplicate Name Exists Error", 6240), False),
        (AuthorizationException("Application authentication failed", 401), False),
        (ValueError("a bug"), False),
    ],
)
def test_only_transient_faults_are_retried(exc: BaseException, transient: bool) -> None:
    assert is_transient(exc) is transient
