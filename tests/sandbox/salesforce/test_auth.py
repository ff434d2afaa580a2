"""OAuth 2.0 token grants, partner SOAP login and expired sessions, through simple-salesforce."""

from __future__ import annotations

import base64
from datetime import timedelta
from typing import Any

import pytest
import requests
from simple_salesforce import Salesforce, SalesforceAuthenticationFailed, SalesforceExpiredSession

from sandbox.salesforce import SalesforceEmulator
from tests.sandbox.salesforce.clients import password_client, token_client

CONTRACT_KEYS = {
    "instance_url",
    "token_url",
    "api_version",
    "client_id",
    "client_secret",
    "username",
    "password",
    "security_token",
    "ca_bundle",
}


def calls(emulator: SalesforceEmulator, endpoint: str) -> int:
    return emulator.calls.total(endpoint=endpoint)


def test_info_has_exactly_the_contract_keys(
    info: dict[str, Any], emulator: SalesforceEmulator
) -> None:
    assert set(info) == CONTRACT_KEYS
    assert info["instance_url"] == emulator.base_url
    assert info["token_url"] == emulator.base_url + "/services/oauth2/token"
    assert info["api_version"] == "62.0"


def test_password_grant_answers_like_salesforce(
    info: dict[str, Any], session: requests.Session
) -> None:
    answer = session.post(
        info["token_url"],
        data={
            "grant_type": "password",
            "client_id": info["client_id"],
            "client_secret": info["client_secret"],
            "username": info["username"],
            "password": info["password"] + info["security_token"],
        },
    )
    assert answer.status_code == 200
    body = answer.json()
    assert set(body) == {
        "access_token",
        "instance_url",
        "id",
        "token_type",
        "issued_at",
        "signature",
    }
    assert body["token_type"] == "Bearer"
    assert body["instance_url"] == info["instance_url"]
    assert body["access_token"].startswith("00D5g00000Rb7Qx!")
    assert body["id"].startswith(info["instance_url"] + "/id/00D5g00000Rb7Qx")
    assert body["issued_at"].isdigit()
    sf = Salesforce(
        instance_url=body["instance_url"],
        session_id=body["access_token"],
        version=info["api_version"],
        session=session,
    )
    assert sf.query("SELECT COUNT() FROM Account")["totalSize"] == 26


def test_password_grant_through_the_client(info: dict[str, Any], session: requests.Session) -> None:
    sf = Salesforce(
        username=info["username"],
        password=info["password"] + info["security_token"],
        consumer_key=info["client_id"],
        consumer_secret=info["client_secret"],
        version=info["api_version"],
        session=session,
    )
    assert sf.is_sandbox() is False
    with pytest.raises(SalesforceAuthenticationFailed) as err:
        Salesforce(
            username=info["username"],
            password="wrong",
            consumer_key=info["client_id"],
            consumer_secret=info["client_secret"],
            session=session,
        )
    assert err.value.code == "invalid_grant"
    assert err.value.auth_message == "authentication failure"


def test_client_credentials_with_basic_auth_through_the_client(
    info: dict[str, Any], session: requests.Session, emulator: SalesforceEmulator
) -> None:
    sf = Salesforce(
        consumer_key=info["client_id"],
        consumer_secret=info["client_secret"],
        domain="acme-analytics.my",
        version=info["api_version"],
        session=session,
    )
    assert sf.query("SELECT Id FROM Organization")["totalSize"] == 1
    assert calls(emulator, "oauth2/token") == 1


def test_client_credentials_with_form_credentials(
    info: dict[str, Any], session: requests.Session
) -> None:
    answer = session.post(
        info["token_url"],
        data={
            "grant_type": "client_credentials",
            "client_id": info["client_id"],
            "client_secret": info["client_secret"],
        },
    )
    assert answer.status_code == 200
    assert answer.json()["scope"] == "api"


def test_refresh_token_grant(
    info: dict[str, Any], session: requests.Session, emulator: SalesforceEmulator
) -> None:
    refresh = emulator.backend.issue_refresh_token()
    form = {
        "grant_type": "refresh_token",
        "client_id": info["client_id"],
        "client_secret": info["client_secret"],
        "refresh_token": refresh,
    }
    first = session.post(info["token_url"], data=form).json()
    second = session.post(info["token_url"], data=form).json()  # reusable, like Salesforce's
    assert first["access_token"] != second["access_token"]
    assert "refresh_token" not in second
    bad = session.post(info["token_url"], data={**form, "refresh_token": "5Aep861nope"})
    assert (bad.status_code, bad.json()) == (
        400,
        {"error": "invalid_grant", "error_description": "expired access/refresh token"},
    )


@pytest.mark.parametrize(
    ("change", "error", "description"),
    [
        ({"client_id": "3MVG9unknown"}, "invalid_client_id", "client identifier invalid"),
        ({"client_secret": "nope"}, "invalid_client", "invalid client credentials"),
        ({"password": "wrong"}, "invalid_grant", "authentication failure"),
        ({"username": "someone@else.example"}, "invalid_grant", "authentication failure"),
        ({"grant_type": "magic"}, "unsupported_grant_type", "grant type not supported"),
    ],
)
def test_token_errors(
    info: dict[str, Any],
    session: requests.Session,
    change: dict[str, str],
    error: str,
    description: str,
) -> None:
    form = {
        "grant_type": "password",
        "client_id": info["client_id"],
        "client_secret": info["client_secret"],
        "username": info["username"],
        "password": info["password"] + info["security_token"],
        **change,
    }
    answer = session.post(info["token_url"], data=form)
    assert answer.status_code == 400
    assert answer.json() == {"error": error, "error_description": description}


def test_client_credentials_basic_auth_with_a_wrong_secret(
    info: dict[str, Any], session: requests.Session
) -> None:
    basic = base64.b64encode(f"{info['client_id']}:wrong".encode()).decode()
    answer = session.post(
        info["token_url"],
        data={"grant_type": "client_credentials"},
        headers={"Authorization": f"Basic {basic}"},
    )
    assert answer.json() == {
        "error": "invalid_client",
        "error_description": "invalid client credentials",
    }


def test_soap_login_through_the_client(
    info: dict[str, Any], session: requests.Session, emulator: SalesforceEmulator
) -> None:
    sf = password_client(info, session)
    assert sf.sf_instance == info["instance_url"].removeprefix("https://")
    assert sf.query("SELECT COUNT() FROM Opportunity")["totalSize"] == 59
    assert calls(emulator, "soap/login") == 1


def test_soap_login_fault(info: dict[str, Any], session: requests.Session) -> None:
    with pytest.raises(SalesforceAuthenticationFailed) as err:
        Salesforce(
            username=info["username"],
            password=info["password"],
            security_token="WRONG",
            session=session,
        )
    assert err.value.code == "INVALID_LOGIN"
    assert err.value.auth_message == (
        "Invalid username, password, security token; or user locked out."
    )


def test_unauthorized_calls_get_invalid_session_id(
    info: dict[str, Any], session: requests.Session
) -> None:
    url = f"{info['instance_url']}/services/data/v62.0/limits/"
    for headers in ({}, {"Authorization": "Bearer not-a-token"}):
        answer = session.get(url, headers=headers)
        assert answer.status_code == 401
        assert answer.json() == [
            {"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}
        ]


def test_password_client_logs_in_again_when_sessions_expire(
    info: dict[str, Any], session: requests.Session, emulator: SalesforceEmulator
) -> None:
    sf = password_client(info, session)
    first = sf.session_id
    session.post(f"{info['instance_url']}/_sandbox/expire-sessions")
    assert sf.query("SELECT COUNT() FROM Account")["totalSize"] == 26
    assert sf.session_id != first
    assert calls(emulator, "soap/login") == 2
    assert calls(emulator, "query") == 2  # the refused call and its retry


def test_token_client_cannot_log_in_again(sf: Salesforce, emulator: SalesforceEmulator) -> None:
    emulator.backend.expire_sessions()
    with pytest.raises(SalesforceExpiredSession) as err:
        sf.query("SELECT Id FROM Account")
    assert err.value.status == 401
    assert err.value.content[0]["errorCode"] == "INVALID_SESSION_ID"


def test_expired_token_fault(
    info: dict[str, Any], session: requests.Session, sf: Salesforce, emulator: SalesforceEmulator
) -> None:
    relogging = password_client(info, session)
    fault = {"path": "/query", "expired_token": True}
    session.post(f"{info['instance_url']}/_sandbox/faults", json=fault)
    assert relogging.query("SELECT COUNT() FROM Contact")["totalSize"] == 26
    assert calls(emulator, "soap/login") == 2
    session.post(f"{info['instance_url']}/_sandbox/faults", json=fault)
    with pytest.raises(SalesforceExpiredSession):
        sf.query("SELECT COUNT() FROM Contact")
    assert sf.query("SELECT COUNT() FROM Contact")["totalSize"] == 26  # the fault is used up


def test_sessions_time_out_after_inactivity(sf: Salesforce, emulator: SalesforceEmulator) -> None:
    emulator.clock.set(emulator.clock.now() + timedelta(days=30))  # business time only
    assert sf.query("SELECT COUNT() FROM User")["totalSize"] == 6
    emulator.backend.session_timeout = timedelta(0)
    try:
        with pytest.raises(SalesforceExpiredSession):
            sf.query("SELECT COUNT() FROM User")
    finally:
        emulator.backend.session_timeout = timedelta(hours=2)


def test_revoked_token_stops_working(info: dict[str, Any], session: requests.Session) -> None:
    sf = token_client(info, session)
    revoked = session.post(
        info["instance_url"] + "/services/oauth2/revoke", data={"token": sf.session_id}
    )
    assert revoked.status_code == 200
    with pytest.raises(SalesforceExpiredSession):
        sf.limits()
