"""API limits, injected faults, control endpoints and unknown routes."""

from __future__ import annotations

import time
from typing import Any

import pytest
import requests
from simple_salesforce import (
    Salesforce,
    SalesforceGeneralError,
    SalesforceMalformedRequest,
    SalesforceRefusedRequest,
    SalesforceResourceNotFound,
)
from simple_salesforce.util import Usage

from sandbox.demo_company import ORG_ID
from sandbox.salesforce import SalesforceEmulator


def fault(session: requests.Session, info: dict[str, Any], **rule: Any) -> None:
    answer = session.post(f"{info['instance_url']}/_sandbox/faults", json=rule)
    assert answer.status_code == 200, answer.text


def test_limits_and_api_usage_header(sf: Salesforce, emulator: SalesforceEmulator) -> None:
    limits = sf.limits()
    assert limits["DailyApiRequests"] == {"Max": 100_000, "Remaining": 99_999}
    assert {"DailyBulkApiBatches", "DataStorageMB", "SingleEmail"} <= set(limits)
    assert sf.api_usage["api-usage"] == Usage(used=1, total=100_000)
    sf.query("SELECT Id FROM User LIMIT 1")
    assert sf.api_usage["api-usage"] == Usage(used=2, total=100_000)
    assert emulator.backend.api_used == 2


def test_request_limit_exceeded(
    sf: Salesforce, session: requests.Session, info: dict[str, Any]
) -> None:
    answer = session.post(
        f"{info['instance_url']}/_sandbox/limits", json={"daily_api_requests": 5, "used": 4}
    )
    assert answer.json() == {"daily_api_requests": 5, "used": 4}
    sf.query("SELECT Id FROM User LIMIT 1")
    assert sf.api_usage["api-usage"] == Usage(used=5, total=5)
    with pytest.raises(SalesforceRefusedRequest) as err:
        sf.query("SELECT Id FROM User LIMIT 1")
    assert err.value.status == 403
    assert err.value.content == [
        {"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}
    ]


@pytest.mark.parametrize(
    ("status", "body", "exc", "code"),
    [
        (503, None, SalesforceGeneralError, "SERVER_UNAVAILABLE"),
        (500, None, SalesforceGeneralError, "UNKNOWN_EXCEPTION"),
        (404, None, SalesforceResourceNotFound, "NOT_FOUND"),
        (
            400,
            [{"message": "Unable to lock row", "errorCode": "UNABLE_TO_LOCK_ROW"}],
            SalesforceMalformedRequest,
            "UNABLE_TO_LOCK_ROW",
        ),
        (403, None, SalesforceRefusedRequest, "REQUEST_LIMIT_EXCEEDED"),
    ],
)
def test_status_faults(
    sf: Salesforce,
    session: requests.Session,
    info: dict[str, Any],
    status: int,
    body: Any,
    exc: type[Exception],
    code: str,
) -> None:
    fault(session, info, path="/sobjects/Account", method="POST", status=status, body=body)
    with pytest.raises(exc) as err:
        sf.Account.create({"Name": "Faulty"})
    assert err.value.status == status  # type: ignore[attr-defined]
    assert err.value.content[0]["errorCode"] == code  # type: ignore[attr-defined]
    assert sf.Account.create({"Name": "Fine"})["success"] is True  # one request only


def test_latency_fault(sf: Salesforce, session: requests.Session, info: dict[str, Any]) -> None:
    fault(session, info, path="/limits", latency_ms=300)
    started = time.monotonic()
    sf.limits()
    assert time.monotonic() - started >= 0.3


def test_drop_after_write(
    sf: Salesforce, session: requests.Session, info: dict[str, Any], emulator: SalesforceEmulator
) -> None:
    fault(session, info, path="/sobjects/Account", method="POST", drop_after_write=True)
    with pytest.raises(requests.exceptions.RequestException):
        sf.Account.create({"Name": "Written but unanswered"})
    found = sf.query("SELECT Id FROM Account WHERE Name = 'Written but unanswered'")
    assert found["totalSize"] == 1  # the write happened; the caller must not blindly retry
    assert emulator.calls.total(endpoint="sobjects/Account") == 1


def test_calls_are_counted_per_endpoint(
    sf: Salesforce, emulator: SalesforceEmulator, session: requests.Session, info: dict[str, Any]
) -> None:
    emulator.calls.clear()
    sf.query("SELECT Id FROM Account LIMIT 1")
    sf.Account.get(sf.query("SELECT Id FROM Account LIMIT 1")["records"][0]["Id"])
    sf.Opportunity.describe()
    sf.describe()
    sf.limits()
    sf.restful(
        "composite/sobjects",
        method="POST",
        json={"records": [{"attributes": {"type": "Account"}, "Name": "x"}]},
    )
    snapshot = session.get(f"{info['instance_url']}/_sandbox/calls").json()
    counted = {(c["method"], c["endpoint"]): c["count"] for c in snapshot["calls"]}
    assert counted == {
        ("GET", "query"): 2,
        ("GET", "sobjects/Account"): 1,
        ("GET", "describe/Opportunity"): 1,
        ("GET", "describe"): 1,
        ("GET", "limits"): 1,
        ("POST", "composite/sobjects"): 1,
    }
    assert snapshot["by_tenant"] == {ORG_ID: 7}


def test_reset_and_seed_control_endpoints(
    sf: Salesforce, session: requests.Session, info: dict[str, Any]
) -> None:
    base = info["instance_url"]
    sf.Account.create({"Name": "Temporary"})
    assert session.post(f"{base}/_sandbox/reset").json() == {"ok": True, "profile": "demo"}
    assert session.get(f"{base}/_sandbox/calls").json()["total"] == 0
    assert sf.query("SELECT COUNT() FROM Account")["totalSize"] == 26  # sessions survive
    assert session.post(f"{base}/_sandbox/seed", json={"profile": "empty"}).status_code == 200
    counts = {
        obj: sf.query(f"SELECT COUNT() FROM {obj}")["totalSize"]
        for obj in (
            "Account",
            "Opportunity",
            "User",
            "RecordType",
            "Pricebook2",
            "Organization",
            "Product2",
        )
    }
    assert counts == {
        "Account": 0,
        "Opportunity": 0,
        "User": 6,
        "RecordType": 2,
        "Pricebook2": 1,
        "Organization": 1,
        "Product2": 0,
    }
    bad = session.post(f"{base}/_sandbox/seed", json={"profile": "huge"})
    assert bad.status_code == 400


def test_unknown_resources_answer_like_salesforce(
    sf: Salesforce, session: requests.Session, info: dict[str, Any]
) -> None:
    not_found = [{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}]
    with pytest.raises(SalesforceResourceNotFound) as err:
        sf.restful("no/such/thing")
    assert err.value.content == not_found
    headers = {"Authorization": f"Bearer {sf.session_id}"}
    base = info["instance_url"]
    for path in ("/services/data/v20.0/limits", "/services/apexrest/x", "/favicon.ico"):
        answer = session.get(base + path, headers=headers)
        assert (answer.status_code, answer.json()) == (404, not_found), path
    put = session.put(f"{base}/services/data/v62.0/sobjects/Account/001", headers=headers)
    assert put.status_code == 405
    assert put.json()[0]["errorCode"] == "METHOD_NOT_ALLOWED"


def test_versions_and_resources(
    sf: Salesforce, session: requests.Session, info: dict[str, Any]
) -> None:
    versions = session.get(f"{info['instance_url']}/services/data/").json()
    assert [v["version"] for v in versions] == [f"{n}.0" for n in range(50, 65)]
    assert versions[12] == {"label": "Winter '25", "url": "/services/data/v62.0", "version": "62.0"}
    assert sf.restful("")["query"] == "/services/data/v62.0/query"
    old = Salesforce(
        instance_url=info["instance_url"], session_id=sf.session_id, version="50.0", session=session
    )
    assert old.query("SELECT COUNT() FROM User")["totalSize"] == 6


def test_invalid_json_body(sf: Salesforce) -> None:
    with pytest.raises(SalesforceMalformedRequest) as err:
        sf.restful("sobjects/Account", method="POST", data="{not json")
    assert err.value.content[0]["errorCode"] == "JSON_PARSER_ERROR"
