"""Intuit's OAuth server as the QuickBooks emulator serves it, driven by intuitlib's AuthClient
and python-quickbooks."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
import requests
from intuitlib.client import AuthClient
from intuitlib.enums import Scopes
from intuitlib.exceptions import AuthClientError
from quickbooks import QuickBooks
from quickbooks.exceptions import AuthorizationException, QuickbooksException
from quickbooks.objects.company_info import CompanyInfo
from quickbooks.objects.customer import Customer

from sandbox.demo_company import REALMS
from sandbox.quickbooks import QuickBooksEmulator, oauth
from tests.support import serving

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
US, EU = (realm.realm_id for realm in REALMS)


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[QuickBooksEmulator, str]]:
    emulator = QuickBooksEmulator()
    try:
        with serving(emulator) as running:
            yield emulator, running.base_url
    finally:
        emulator.close()


@pytest.fixture
def service(server: tuple[QuickBooksEmulator, str]) -> QuickBooksEmulator:
    emulator, _ = server
    emulator.clock.set(T0)
    emulator.reset()
    return emulator


@pytest.fixture
def base(server: tuple[QuickBooksEmulator, str], service: QuickBooksEmulator) -> str:
    return server[1]


def client(base: str, secret: str = oauth.CLIENT_SECRET, redirect: str = oauth.REDIRECT_URI):
    return AuthClient(
        oauth.CLIENT_ID, secret, redirect, environment=base + oauth.DISCOVERY_PATHS[0]
    )


def error_of(exc: AuthClientError) -> dict[str, Any]:
    return exc.response.json()


def authorize(base: str, scopes: list[Scopes], realm_id: str | None = None) -> dict[str, str]:
    """Follow the authorize URL intuitlib builds; return the redirect's query parameters."""
    auth = client(base)
    url = auth.get_authorization_url(scopes, state_token="csrf-123")
    if realm_id:
        url += f"&realm_id={realm_id}"
    answer = requests.get(url, allow_redirects=False, timeout=5)
    assert answer.status_code == 302
    location = urlparse(answer.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == oauth.REDIRECT_URI
    return {k: v[0] for k, v in parse_qs(location.query).items()}


# ---- discovery -------------------------------------------------------------------------------
def test_discovery_document_points_intuitlib_at_this_server(base: str) -> None:
    auth = client(base)
    assert auth.token_endpoint == base + "/oauth2/v1/tokens/bearer"
    assert auth.auth_endpoint == base + "/connect/oauth2"
    assert auth.revoke_endpoint == base + "/v2/oauth2/tokens/revoke"
    assert auth.user_info_url == base + "/v1/openid_connect/userinfo"
    assert auth.jwks_uri == base + "/op/v1/jwks"
    assert auth.issuer_uri == base + "/op/v1"
    for path in ("/.well-known/openid_configuration", "/.well-known/openid_sandbox_configuration/"):
        doc = requests.get(base + path, timeout=5).json()
        assert doc["token_endpoint"] == auth.token_endpoint
        assert doc["id_token_signing_alg_values_supported"] == ["RS256"]


# ---- refresh tokens --------------------------------------------------------------------------
def test_refresh_with_the_initial_token(service: QuickBooksEmulator, base: str) -> None:
    initial = service.tokens.initial_refresh_token(US)
    auth = client(base)
    auth.refresh(refresh_token=initial)
    assert auth.expires_in == 3600
    assert auth.refresh_token == initial  # younger than 24 h: answered with itself
    assert auth.x_refresh_token_expires_in == 8_726_400
    assert auth.id_token is None  # no openid scope on the seeded connection
    assert service.tokens.check_access(f"Bearer {auth.access_token}", US) is None
    assert service.tokens.check_access(f"bearer {auth.access_token}", US) is None


def test_initial_refresh_tokens_are_deterministic_per_realm(service: QuickBooksEmulator) -> None:
    us, eu = service.tokens.initial_refresh_token(US), service.tokens.initial_refresh_token(EU)
    assert us != eu and us.startswith("AB11") and len(us) == 50
    service.tokens.load([US, EU])
    assert service.tokens.initial_refresh_token(US) == us


def test_a_refresh_token_is_reusable_and_counts_down(
    service: QuickBooksEmulator, base: str
) -> None:
    initial = service.tokens.initial_refresh_token(US)
    first = client(base)
    first.refresh(refresh_token=initial)
    service.clock.set(T0 + timedelta(minutes=30))
    second = client(base)
    second.refresh(refresh_token=initial)
    assert second.refresh_token == initial
    assert second.access_token != first.access_token
    assert second.x_refresh_token_expires_in == 8_726_400 - 1800
    # Both access tokens stay valid until their own hour is up.
    assert service.tokens.check_access(f"Bearer {first.access_token}", US) is None


def test_refresh_token_rotates_after_a_day_and_the_old_one_goes_stale(
    service: QuickBooksEmulator, base: str
) -> None:
    initial = service.tokens.initial_refresh_token(US)
    service.clock.set(T0 + timedelta(hours=25))
    auth = client(base)
    auth.refresh(refresh_token=initial)
    rotated = auth.refresh_token
    assert rotated != initial and rotated.startswith("AB11")
    assert auth.x_refresh_token_expires_in == 8_726_400

    with pytest.raises(AuthClientError) as stale:
        client(base).refresh(refresh_token=initial)
    assert stale.value.status_code == 400
    assert error_of(stale.value) == {"error": "invalid_grant"}
    assert stale.value.intuit_tid  # Intuit's transaction id header

    again = client(base)
    again.refresh(refresh_token=rotated)
    assert again.refresh_token == rotated
    state = service.tokens.refresh_token_state(US)
    assert state["current_refresh_token"] == rotated
    assert state["rotations"] == 1
    assert [t["status"] for t in state["refresh_tokens"]] == ["stale", "active"]


def test_an_unused_refresh_token_expires(service: QuickBooksEmulator, base: str) -> None:
    service.clock.set(T0 + timedelta(seconds=8_726_400))
    with pytest.raises(AuthClientError) as expired:
        client(base).refresh(refresh_token=service.tokens.initial_refresh_token(US))
    assert expired.value.status_code == 400
    assert error_of(expired.value) == {"error": "invalid_grant"}


def test_access_tokens_live_an_hour(service: QuickBooksEmulator, base: str) -> None:
    auth = client(base)
    auth.refresh(refresh_token=service.tokens.initial_refresh_token(US))
    header = f"Bearer {auth.access_token}"
    service.clock.set(T0 + timedelta(seconds=3599))
    assert service.tokens.check_access(header, US) is None
    service.clock.set(T0 + timedelta(seconds=3600))
    assert service.tokens.check_access(header, US) == "expired"
    auth.refresh()
    assert service.tokens.check_access(f"Bearer {auth.access_token}", US) is None


def test_check_access_problems(service: QuickBooksEmulator, base: str) -> None:
    auth = client(base)
    auth.refresh(refresh_token=service.tokens.initial_refresh_token(US))
    assert service.tokens.check_access(f"Bearer {auth.access_token}", EU) == "forbidden"
    assert service.tokens.check_access(None, US) == "invalid"
    assert service.tokens.check_access("Basic abc", US) == "invalid"
    assert service.tokens.check_access("Bearer not-a-token", US) == "invalid"
    service.tokens.expire_access_tokens()
    assert service.tokens.check_access(f"Bearer {auth.access_token}", US) == "expired"


def test_bad_client_credentials(service: QuickBooksEmulator, base: str) -> None:
    with pytest.raises(AuthClientError) as bad:
        client(base, secret="wrong").refresh(refresh_token=service.tokens.initial_refresh_token(US))
    assert bad.value.status_code == 401
    assert error_of(bad.value) == {"error": "invalid_client"}


def test_token_endpoint_request_errors(service: QuickBooksEmulator, base: str) -> None:
    url = base + oauth.TOKEN_PATH
    auth = (oauth.CLIENT_ID, oauth.CLIENT_SECRET)
    answer = requests.post(url, data={"grant_type": "password"}, auth=auth, timeout=5)
    assert (answer.status_code, answer.json()) == (400, {"error": "unsupported_grant_type"})
    answer = requests.post(url, data={"grant_type": "refresh_token"}, auth=auth, timeout=5)
    assert (answer.status_code, answer.json()) == (400, {"error": "invalid_request"})
    # client_secret_post works as well as HTTP Basic.
    form = {
        "grant_type": "refresh_token",
        "refresh_token": service.tokens.initial_refresh_token(EU),
        "client_id": oauth.CLIENT_ID,
        "client_secret": oauth.CLIENT_SECRET,
    }
    answer = requests.post(url, data=form, timeout=5)
    assert answer.status_code == 200
    assert answer.headers["cache-control"] == "no-store"
    assert set(answer.json()) == {
        "token_type", "access_token", "refresh_token", "expires_in", "x_refresh_token_expires_in"
    }  # fmt: skip
    assert answer.json()["token_type"] == "bearer"


# ---- revoke ----------------------------------------------------------------------------------
def test_revoke_ends_the_connection(service: QuickBooksEmulator, base: str) -> None:
    auth = client(base)
    auth.refresh(refresh_token=service.tokens.initial_refresh_token(US))
    access = auth.access_token
    assert auth.revoke() is True
    assert service.tokens.check_access(f"Bearer {access}", US) == "invalid"
    with pytest.raises(AuthClientError) as revoked:
        client(base).refresh(refresh_token=service.tokens.initial_refresh_token(US))
    assert error_of(revoked.value) == {"error": "invalid_grant"}
    assert service.tokens.refresh_token_state(US)["connected"] is False
    # The other company is untouched.
    client(base).refresh(refresh_token=service.tokens.initial_refresh_token(EU))


def test_revoke_by_access_token_and_bad_client(service: QuickBooksEmulator, base: str) -> None:
    auth = client(base)
    auth.refresh(refresh_token=service.tokens.initial_refresh_token(EU))
    with pytest.raises(AuthClientError) as bad:
        client(base, secret="nope").revoke(token=auth.access_token)
    assert bad.value.status_code == 401
    assert client(base).revoke(token=auth.access_token) is True
    assert service.tokens.check_access(f"Bearer {auth.access_token}", EU) == "invalid"
    assert client(base).revoke(token="AB11unknown") is True  # RFC 7009: unknown tokens are fine


# ---- authorization code flow -----------------------------------------------------------------
def test_authorization_code_flow_with_openid(service: QuickBooksEmulator, base: str) -> None:
    params = authorize(base, [Scopes.ACCOUNTING, Scopes.OPENID, Scopes.EMAIL, Scopes.PROFILE])
    assert params["state"] == "csrf-123"
    assert params["realmId"] == US  # the first realm unless one is chosen
    auth = client(base)
    auth.get_bearer_token(params["code"], realm_id=params["realmId"])
    assert auth.realm_id == US
    assert auth.refresh_token.startswith("AB11")
    assert auth.id_token is not None  # intuitlib validated it against our jwks
    assert service.tokens.check_access(f"Bearer {auth.access_token}", US) is None
    info = auth.get_user_info().json()
    assert info == {
        "sub": oauth.SANDBOX_USER["sub"],
        "email": "priya.nair@acme-analytics.example",
        "emailVerified": True,
        "givenName": "Priya",
        "familyName": "Nair",
    }
    # A code is good for one exchange only.
    with pytest.raises(AuthClientError) as reused:
        client(base).get_bearer_token(params["code"], realm_id=US)
    assert (reused.value.status_code, error_of(reused.value)) == (400, {"error": "invalid_grant"})


def test_authorize_picks_the_realm_and_scopes(service: QuickBooksEmulator, base: str) -> None:
    params = authorize(base, [Scopes.ACCOUNTING], realm_id=EU)
    assert params["realmId"] == EU
    auth = client(base)
    auth.get_bearer_token(params["code"], realm_id=EU)
    assert auth.id_token is None
    assert service.tokens.check_access(f"Bearer {auth.access_token}", EU) is None
    with pytest.raises(AuthClientError) as no_openid:
        auth.get_user_info()
    assert no_openid.value.status_code == 403
    # Without the accounting scope the API refuses the token.
    params = authorize(base, [Scopes.OPENID], realm_id=EU)
    auth = client(base)
    auth.get_bearer_token(params["code"], realm_id=EU)
    assert service.tokens.check_access(f"Bearer {auth.access_token}", EU) == "forbidden"


def test_code_exchange_needs_the_same_redirect_uri_and_a_fresh_code(
    service: QuickBooksEmulator, base: str
) -> None:
    params = authorize(base, [Scopes.ACCOUNTING])
    with pytest.raises(AuthClientError) as mismatch:
        client(base, redirect="http://127.0.0.1:9999/other").get_bearer_token(params["code"])
    assert error_of(mismatch.value) == {"error": "invalid_grant"}
    params = authorize(base, [Scopes.ACCOUNTING])
    service.clock.set(T0 + timedelta(minutes=5))
    with pytest.raises(AuthClientError) as late:
        client(base).get_bearer_token(params["code"])
    assert error_of(late.value) == {"error": "invalid_grant"}


def test_authorize_errors(base: str) -> None:
    url = base + oauth.AUTHORIZE_PATH
    good = {
        "client_id": oauth.CLIENT_ID,
        "response_type": "code",
        "scope": "com.intuit.quickbooks.accounting",
        "redirect_uri": oauth.REDIRECT_URI,
        "state": "s1",
    }
    # Never redirect to an unregistered URI or for an unknown client.
    for bad in ({"redirect_uri": "http://evil.example/cb"}, {"client_id": "nobody"}):
        answer = requests.get(url, params=good | bad, allow_redirects=False, timeout=5)
        assert answer.status_code == 400
    for bad, error in (
        ({"scope": "com.intuit.quickbooks.everything"}, "invalid_scope"),
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"realm_id": "123"}, "access_denied"),
    ):
        answer = requests.get(url, params=good | bad, allow_redirects=False, timeout=5)
        assert answer.status_code == 302
        query = parse_qs(urlparse(answer.headers["location"]).query)
        assert query == {"error": [error], "state": ["s1"]}


# ---- sandbox controls ------------------------------------------------------------------------
def test_sandbox_token_controls(service: QuickBooksEmulator, base: str) -> None:
    controls = base + "/_sandbox/tokens"
    auth = client(base)
    auth.refresh(refresh_token=service.tokens.initial_refresh_token(US))

    def act(action: str, realm_id: str | None = US) -> requests.Response:
        return requests.post(controls, json={"realm_id": realm_id, "action": action}, timeout=5)

    assert act("expire_access").status_code == 200
    assert service.tokens.check_access(f"Bearer {auth.access_token}", US) == "expired"

    assert act("rotate").status_code == 200
    auth.refresh()
    assert auth.refresh_token != service.tokens.initial_refresh_token(US)
    state = requests.get(controls, params={"realm_id": US}, timeout=5).json()["realms"][US]
    assert state["current_refresh_token"] == auth.refresh_token
    assert state["access_tokens"]["valid"] == 1

    assert act("expire_refresh").status_code == 200
    with pytest.raises(AuthClientError):
        auth.refresh()

    assert act("revoke", None).status_code == 200  # null realm: every realm
    everything = requests.get(controls, timeout=5).json()["realms"]
    assert {r: s["connected"] for r, s in everything.items()} == {US: False, EU: False}

    assert act("explode").status_code == 400
    assert act("revoke", "42").status_code == 404
    assert requests.get(controls, params={"realm_id": "42"}, timeout=5).status_code == 404


# ---- faults the API renders ------------------------------------------------------------------
def test_auth_fault_bodies() -> None:
    now = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    status, body = oauth.auth_fault("expired", token="eyJ" + "x" * 80, now=now)
    assert status == 401
    error = body["fault"]["error"][0]
    assert error["message"] == "message=AuthenticationFailed; errorCode=003200; statusCode=401"
    assert error["code"] == "3200"
    assert error["detail"] == "Token expired: eyJ" + "x" * 47
    assert body["fault"]["type"] == "AUTHENTICATION"
    assert body["time"] == int(now.timestamp() * 1000)

    status, body = oauth.auth_fault("invalid")
    assert status == 401
    assert body["fault"]["error"][0]["detail"].startswith("Malformed bearer token")

    status, body = oauth.auth_fault("forbidden")
    assert status == 403
    error = body["fault"]["error"][0]
    assert error["message"] == (
        "message=ApplicationAuthorizationFailed; errorCode=003100; statusCode=403"
    )
    assert (error["code"], body["fault"]["type"]) == ("3100", "SERVICE")
    with pytest.raises(ValueError):
        oauth.auth_fault("nope")


# ---- python-quickbooks against the API ------------------------------------------------------
@pytest.fixture
def insecure_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    """requests-oauthlib refuses http:// unless told; the project does this for loopback only."""
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")


def quickbooks(base: str, refresh_token: str, realm_id: str) -> QuickBooks:
    qb = QuickBooks(
        auth_client=client(base),
        refresh_token=refresh_token,
        company_id=realm_id,
        minorversion=75,
    )
    qb.sandbox_api_url_v3 = qb.api_url_v3 = base + "/v3"
    return qb


def test_python_quickbooks_refreshes_on_construction(
    service: QuickBooksEmulator, base: str, insecure_loopback: None
) -> None:
    info = service.info(base, None)
    assert info["discovery_url"] == base + "/.well-known/openid_sandbox_configuration"
    initial = info["realms"]["eu"]["refresh_token"]
    assert initial == service.tokens.initial_refresh_token(EU)
    service.clock.set(T0 + timedelta(days=2))
    qb = quickbooks(base, initial, EU)
    assert qb.refresh_token != initial  # rotated: the caller must store this one
    assert service.tokens.refresh_token_state(EU)["current_refresh_token"] == qb.refresh_token
    assert CompanyInfo.get(EU, qb=qb).CompanyName == "Acme Analytics Europe B.V."
    with pytest.raises(AuthClientError) as stale:  # the next run with the old token fails
        quickbooks(base, initial, EU)
    assert error_of(stale.value) == {"error": "invalid_grant"}
    assert service.calls.total(endpoint="token") == 2


def test_an_expired_access_token_gets_3200(
    service: QuickBooksEmulator, base: str, insecure_loopback: None
) -> None:
    qb = quickbooks(base, service.tokens.initial_refresh_token(US), US)
    assert Customer.count(qb=qb) > 0
    service.clock.set(T0 + timedelta(hours=1, seconds=1))
    with pytest.raises(AuthorizationException) as expired:
        Customer.count(qb=qb)
    assert expired.value.error_code == 401
    body = json.loads(expired.value.detail)
    assert body["fault"]["error"][0]["code"] == "3200"
    assert body["fault"]["error"][0]["detail"].startswith("Token expired: eyJ")
    # A fresh client refreshes and carries on.
    qb = quickbooks(base, qb.refresh_token, US)
    assert Customer.count(qb=qb) > 0


def test_a_token_of_another_company_gets_3100(
    service: QuickBooksEmulator, base: str, insecure_loopback: None
) -> None:
    qb = quickbooks(base, service.tokens.initial_refresh_token(US), US)
    qb.company_id = EU
    with pytest.raises(QuickbooksException) as forbidden:
        CompanyInfo.get(EU, qb=qb)
    # The gateway's lower-case envelope has no "Fault" key: the client's generic exception.
    assert type(forbidden.value) is QuickbooksException
    assert forbidden.value.error_code == 10000
    assert "errorCode=003100; statusCode=403" in forbidden.value.message


def test_a_revoked_connection_gets_401(
    service: QuickBooksEmulator, base: str, insecure_loopback: None
) -> None:
    qb = quickbooks(base, service.tokens.initial_refresh_token(US), US)
    assert qb.auth_client.revoke() is True
    with pytest.raises(AuthorizationException):
        CompanyInfo.get(US, qb=qb)
    with pytest.raises(AuthClientError):
        quickbooks(base, service.tokens.initial_refresh_token(US), US)


def test_token_endpoints_are_counted_without_a_realm(
    service: QuickBooksEmulator, base: str
) -> None:
    client(base).refresh(refresh_token=service.tokens.initial_refresh_token(US))
    calls = requests.get(base + "/_sandbox/calls", timeout=5).json()["calls"]
    assert {(c["endpoint"], c["tenant"]) for c in calls} == {("discovery", None), ("token", None)}
