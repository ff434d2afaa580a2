"""Intuit's OAuth 2.0 / OpenID Connect server, as the QuickBooks emulator's token authority.

What the real clients need, served from the emulator's own origin:

- the discovery document intuitlib reads (``AuthClient(environment=discovery_url)``), at
  ``/.well-known/openid_sandbox_configuration`` and ``/.well-known/openid_configuration``;
- ``/connect/oauth2`` (authorize: consent is auto-approved, the sandbox has nobody to click),
  ``/oauth2/v1/tokens/bearer`` (token), ``/v2/oauth2/tokens/revoke``,
  ``/v1/openid_connect/userinfo`` and ``/op/v1/jwks`` — the paths Intuit uses;
- ``/_sandbox/tokens``: inspect and age tokens per realm; ``/_sandbox/redirect_uris``: register
  another redirect URI for the app.

Consent is non-interactive: ``GET /connect/oauth2`` redirects straight to the redirect URI with
``code``, ``state`` and ``realmId``, as Intuit does after the user clicks Connect. The company is
the ``realm_id`` query parameter if given, else the one chosen with ``choose_company``, else the
first.

Token rules follow Intuit's: access tokens live 3600 s on the sandbox clock; a refresh token may
be used any number of times while valid and is answered with itself until it is 24 h old, after
which a refresh returns a NEW token and the old one turns stale at once (``invalid_grant``; Intuit's
help article "Validity of Refresh Token": once a new refresh token is returned the previous one
"is no longer valid", and Intuit support reports ``Refresh token not found`` for it — older docs
spoke of a 24 h grace, which the current platform does not give). Each refresh
token lives 101 days (``x_refresh_token_expires_in`` 8726400 when fresh, counting down as it is
reused), and no token outlives its connection's five-year cap (Intuit's policy since 2025-11).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import string
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any, Literal
from urllib.parse import parse_qs, urlencode, urlparse

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from sandbox.core.clock import Clock

# ---- fixed sandbox credentials (test data, published in the info file) -------------------------
CLIENT_ID = "ABrvbSandbox7QkXm2Lw9Hc4Tn8Pz3Jd6Fy1Gs5Vb0Nq7Ka2Re"
CLIENT_SECRET = "rvbSandboxSecret4Hn8Qw2Zx6Lp0Tc3Vm9Bk7Dy1"
WEBHOOK_VERIFIER_TOKEN = "6f1c2a9e-4b7d-4e3a-9c58-0d2b7e1f3a64"
REDIRECT_URI = "http://127.0.0.1:8765/callback"
# What `python -m deployments.authorize` serves by default (Intuit lets a development app register
# http://localhost redirect URIs; production ones must be https and name no IP address).
LOCALHOST_REDIRECT_URI = "http://localhost:8765/callback"

ACCOUNTING_SCOPE = "com.intuit.quickbooks.accounting"
OPENID_SCOPES = frozenset({"openid", "profile", "email", "phone", "address"})
KNOWN_SCOPES = OPENID_SCOPES | {
    ACCOUNTING_SCOPE,
    "com.intuit.quickbooks.payment",
    "com.intuit.quickbooks.payroll",
    "com.intuit.quickbooks.payroll.timetracking",
    "com.intuit.quickbooks.payroll.benefits",
    "com.intuit.quickbooks.payroll.payslip.read",
    "intuit_name",
}

ACCESS_TOKEN_LIFETIME = timedelta(seconds=3600)
REFRESH_TOKEN_LIFETIME = timedelta(seconds=8_726_400)  # what Intuit reports for a fresh token
REFRESH_ROTATION_AGE = timedelta(hours=24)
CONNECTION_MAX_AGE = timedelta(days=5 * 365)
AUTH_CODE_LIFETIME = timedelta(minutes=5)
ID_TOKEN_LIFETIME = timedelta(hours=1)
PRUNE_AFTER = timedelta(days=1)  # an access token this long past expiry answers "invalid"

# The identity behind every sandbox connection (userinfo and id_token claims).
SANDBOX_USER: dict[str, Any] = {
    "sub": "7b3f0c1e-2d4a-4f5b-8e6c-9a1d2b3c4e5f",
    "givenName": "Priya",
    "familyName": "Nair",
    "email": "priya.nair@acme-analytics.example",
    "emailVerified": True,
    "phoneNumber": "+1 (415) 555-0142",
    "phoneNumberVerified": False,
    "address": {
        "streetAddress": "500 Market Street",
        "locality": "San Francisco",
        "region": "CA",
        "postalCode": "94105",
        "country": "US",
    },
}

AccessProblem = Literal["invalid", "expired", "forbidden"]
_ALNUM = string.ascii_letters + string.digits
_JWE_HEADER = (
    "eyJlbmMiOiJBMTI4Q0JDLUhTMjU2IiwiYWxnIjoiZGlyIn0"  # {"enc":"A128CBC-HS256","alg":"dir"}
)


# ---- API faults (rendered by the QuickBooks API for check_access problems) ---------------------
def auth_fault(
    kind: str, *, token: str | None = None, now: datetime | None = None
) -> tuple[int, dict[str, Any]]:
    """(status, body) QuickBooks answers on /v3 for a ``check_access`` problem.

    Intuit's API gateway renders these in its lower-case envelope (not the ``Fault`` one of the
    accounting service): python-quickbooks raises ``AuthorizationException`` on any 401 whatever
    the body, and a generic ``QuickbooksException`` (code 10000) on this 403.
    """
    if kind == "forbidden":
        status, message, code, detail, fault_type = (
            403,
            "ApplicationAuthorizationFailed",
            "3100",
            "",
            "SERVICE",
        )
    elif kind in ("expired", "invalid"):
        status, message, code, fault_type = 401, "AuthenticationFailed", "3200", "AUTHENTICATION"
        if kind == "expired":
            detail = f"Token expired: {(token or '')[:50]}"
        elif token and len(token) >= 40:
            detail = f"Token revoked or unknown: {token[:50]}"
        else:
            detail = "Malformed bearer token: too short or too long"
    else:
        raise ValueError(f"unknown auth fault kind {kind!r}")
    when = now or datetime.now(UTC)
    body: dict[str, Any] = {
        "warnings": None,
        "intuitObject": None,
        "fault": {
            "error": [
                {
                    "message": f"message={message}; errorCode=00{code}; statusCode={status}",
                    "detail": detail,
                    "code": code,
                    "element": None,
                }
            ],
            "type": fault_type,
        },
        "report": None,
        "queryResponse": None,
        "batchItemResponse": [],
        "attachableResponse": [],
        "syncErrorResponse": None,
        "requestId": None,
        "time": int(when.timestamp() * 1000),
        "status": None,
        "cdcresponse": [],
    }
    return status, body


class OAuthError(Exception):
    """An OAuth error answer: ``{"error": code}`` with its status (RFC 6749 §5.2)."""

    def __init__(self, error: str, status: int = 400, description: str | None = None) -> None:
        super().__init__(error)
        self.error = error
        self.status = status
        self.description = description

    def body(self) -> dict[str, str]:
        body = {"error": self.error}
        if self.description:
            body["error_description"] = self.description
        return body


# ---- state -----------------------------------------------------------------------------------
@dataclass
class _Connection:
    """One authorization of the app for one realm (what Intuit calls a connection)."""

    realm_id: str
    scopes: frozenset[str]
    authorized_at: datetime
    revoked_at: datetime | None = None

    @property
    def expires_at(self) -> datetime:
        return self.authorized_at + CONNECTION_MAX_AGE


@dataclass
class _RefreshToken:
    value: str
    connection: _Connection
    issued_at: datetime
    expires_at: datetime
    uses: int = 0
    rotated_at: datetime | None = None  # set when a successor was issued: this one is stale
    successor: str | None = None
    rotation_due: bool = False  # forced by /_sandbox/tokens "rotate"

    def status(self, now: datetime) -> str:
        if self.connection.revoked_at is not None:
            return "revoked"
        if self.rotated_at is not None:
            return "stale"
        if now >= self.expires_at:
            return "expired"
        return "active"


@dataclass
class _AccessToken:
    value: str
    connection: _Connection
    issued_at: datetime
    expires_at: datetime


@dataclass
class _AuthCode:
    realm_id: str
    scopes: frozenset[str]
    redirect_uri: str
    issued_at: datetime
    used: bool = False


@dataclass
class TokenGrant:
    """What the token endpoint answers (before rendering)."""

    access_token: str
    refresh_token: str
    expires_in: int
    x_refresh_token_expires_in: int
    id_token: str | None = None

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "token_type": "bearer",
            "access_token": self.access_token,
            "refresh_token": self.refresh_token,
            "expires_in": self.expires_in,
            "x_refresh_token_expires_in": self.x_refresh_token_expires_in,
        }
        if self.id_token is not None:
            body["id_token"] = self.id_token
        return body


class TokenStore:
    """Every token the sandbox issued, per realm; thread-safe (handlers run in a pool)."""

    def __init__(
        self,
        clock: Clock,
        *,
        client_id: str = CLIENT_ID,
        client_secret: str = CLIENT_SECRET,
        redirect_uris: frozenset[str] = frozenset({REDIRECT_URI, LOCALHOST_REDIRECT_URI}),
    ) -> None:
        self.clock = clock
        self.client_id = client_id
        self.client_secret = client_secret
        self.redirect_uris = set(redirect_uris)
        self._registered = frozenset(redirect_uris)
        self._lock = threading.RLock()
        self._realms: list[str] = []
        self._connections: list[_Connection] = []
        self._refresh: dict[str, _RefreshToken] = {}
        self._access: dict[str, _AccessToken] = {}
        self._codes: dict[str, _AuthCode] = {}
        self._initial: dict[str, str] = {}
        self._chosen: str | None = None  # the company the next consent connects

    # ---- lifecycle -------------------------------------------------------------------------
    def load(self, realm_ids: list[str]) -> None:
        """Forget every token; issue a deterministic initial refresh token per realm."""
        with self._lock:
            self._realms = list(realm_ids)
            self._connections.clear()
            self._refresh.clear()
            self._access.clear()
            self._codes.clear()
            self._initial.clear()
            self._chosen = None
            self.redirect_uris = set(self._registered)
            now = self.clock.now()
            for realm_id in self._realms:
                connection = self._connect(realm_id, frozenset({ACCOUNTING_SCOPE}), now)
                value = _initial_refresh_token(realm_id)
                self._initial[realm_id] = value
                self._refresh[value] = _RefreshToken(
                    value, connection, now, self._refresh_expiry(connection, now)
                )

    @property
    def realm_ids(self) -> list[str]:
        with self._lock:
            return list(self._realms)

    def initial_refresh_token(self, realm_id: str) -> str:
        with self._lock:
            return self._initial[realm_id]

    # ---- the API's view --------------------------------------------------------------------
    def check_access(self, authorization: str | None, realm_id: str) -> str | None:
        """None when the bearer token is valid for realm_id; else "invalid" | "expired" (→ 401
        code 3200 AuthenticationFailed) or "forbidden" (token of another realm, or one without the
        accounting scope → 403, code 3100 ApplicationAuthorizationFailed)."""
        token = bearer_token(authorization)
        if token is None:
            return "invalid"
        with self._lock:
            record = self._access.get(token)
            if record is None or record.connection.revoked_at is not None:
                return "invalid"
            if self.clock.now() >= record.expires_at:
                return "expired"
            if record.connection.realm_id != realm_id:
                return "forbidden"
            if ACCOUNTING_SCOPE not in record.connection.scopes:
                return "forbidden"
            return None

    def expire_access_tokens(self, realm_id: str | None = None) -> None:
        """Every issued access token (of one realm, or of all) is now expired."""
        with self._lock:
            now = self.clock.now()
            for record in self._access.values():
                if realm_id is None or record.connection.realm_id == realm_id:
                    record.expires_at = min(record.expires_at, now)

    # ---- grants ----------------------------------------------------------------------------
    def authenticate_client(self, client_id: str | None, client_secret: str | None) -> None:
        ok = (
            client_id is not None
            and client_secret is not None
            and hmac.compare_digest(client_id.encode(), self.client_id.encode())
            and hmac.compare_digest(client_secret.encode(), self.client_secret.encode())
        )
        if not ok:
            raise OAuthError("invalid_client", 401)

    def authorize(
        self,
        client_id: str | None,
        redirect_uri: str | None,
        scope: str | None,
        realm_id: str | None,
    ) -> tuple[str, str]:
        """Auto-approve consent: (code, realm id). Raises OAuthError for a bad request; the
        caller decides whether the error may be sent back to the redirect URI."""
        if client_id != self.client_id:
            raise OAuthError("invalid_client", 400, "unknown client_id")
        if redirect_uri not in self.redirect_uris:
            raise OAuthError("invalid_request", 400, "redirect_uri is not registered")
        scopes = frozenset((scope or "").split())
        if not scopes or not scopes <= KNOWN_SCOPES:
            raise OAuthError("invalid_scope", 400)
        with self._lock:
            if realm_id is None:
                if not self._realms:
                    raise OAuthError("access_denied", 400, "the sandbox has no company")
                realm_id = self._chosen or self._realms[0]
                self._chosen = None
            elif realm_id not in self._realms:
                raise OAuthError("access_denied", 400, f"no company {realm_id}")
            now = self.clock.now()
            code = _token("AB11", now, 42)
            self._codes[code] = _AuthCode(realm_id, scopes, redirect_uri, now)
            return code, realm_id

    def exchange_code(self, code: str | None, redirect_uri: str | None, issuer: str) -> TokenGrant:
        """grant_type=authorization_code: a new connection with its first token pair."""
        with self._lock:
            now = self.clock.now()
            record = self._codes.get(code or "")
            if (
                record is None
                or record.used
                or now >= record.issued_at + AUTH_CODE_LIFETIME
                or redirect_uri != record.redirect_uri
            ):
                raise OAuthError("invalid_grant")
            record.used = True
            connection = self._connect(record.realm_id, record.scopes, now)
            refresh = self._issue_refresh(connection, now)
            grant = self._grant(connection, refresh, now)
            if "openid" in record.scopes:
                grant.id_token = _id_token(self.client_id, issuer, record.realm_id)
            return grant

    def refresh(self, value: str | None) -> TokenGrant:
        """grant_type=refresh_token, with Intuit's once-a-day rotation."""
        with self._lock:
            now = self.clock.now()
            record = self._refresh.get(value or "")
            if record is None or record.status(now) != "active":
                raise OAuthError("invalid_grant")
            record.uses += 1
            if record.rotation_due or now - record.issued_at >= REFRESH_ROTATION_AGE:
                successor = self._issue_refresh(record.connection, now)
                record.rotated_at = now
                record.successor = successor.value
                record = successor
            return self._grant(record.connection, record, now)

    def revoke(self, value: str | None) -> None:
        """Revoke the connection a refresh or access token belongs to (all its tokens).
        Unknown tokens are ignored, as RFC 7009 asks."""
        with self._lock:
            record = self._refresh.get(value or "") or self._access.get(value or "")
            if record is not None and record.connection.revoked_at is None:
                record.connection.revoked_at = self.clock.now()

    def userinfo(self, authorization: str | None) -> dict[str, Any]:
        token = bearer_token(authorization)
        with self._lock:
            record = self._access.get(token or "")
            if (
                record is None
                or record.connection.revoked_at is not None
                or self.clock.now() >= record.expires_at
            ):
                raise OAuthError("invalid_token", 401)
            scopes = record.connection.scopes
        if "openid" not in scopes:
            raise OAuthError("insufficient_scope", 403)
        claims: dict[str, Any] = {"sub": SANDBOX_USER["sub"]}
        if "email" in scopes:
            claims |= {k: SANDBOX_USER[k] for k in ("email", "emailVerified")}
        if "profile" in scopes:
            claims |= {k: SANDBOX_USER[k] for k in ("givenName", "familyName")}
        if "phone" in scopes:
            claims |= {k: SANDBOX_USER[k] for k in ("phoneNumber", "phoneNumberVerified")}
        if "address" in scopes:
            claims["address"] = dict(SANDBOX_USER["address"])
        return claims

    # ---- sandbox controls ------------------------------------------------------------------
    def register_redirect_uri(self, uri: str) -> None:
        """Add a redirect URI to the app, as a developer does on its Keys & OAuth page (until
        the next reset or seed)."""
        parsed = urlparse(uri)
        if parsed.scheme not in ("http", "https") or not parsed.netloc or parsed.fragment:
            raise ValueError("redirect_uri must be an absolute http(s) URL without a fragment")
        with self._lock:
            self.redirect_uris.add(uri)

    def control(self, realm_id: str, action: str, seconds: int | None = None) -> None:
        """/_sandbox/tokens actions: expire_access | rotate | expire_refresh | revoke |
        choose_company (the next consent without a realm_id connects this company, as if the
        user picked it) | connection_expires_in (``seconds``: the realm's connections reach
        Intuit's five-year cap that soon, so every refresh reports at most that lifetime)."""
        with self._lock:
            if realm_id not in self._realms:
                raise KeyError(realm_id)
            now = self.clock.now()
            tokens = [t for t in self._refresh.values() if t.connection.realm_id == realm_id]
            if action == "choose_company":
                self._chosen = realm_id
            elif action == "connection_expires_in":
                if not isinstance(seconds, int) or isinstance(seconds, bool) or seconds < 0:
                    raise ValueError("connection_expires_in needs seconds (an integer >= 0)")
                for connection in self._connections:
                    if connection.realm_id == realm_id:
                        connection.authorized_at = (
                            now + timedelta(seconds=seconds) - CONNECTION_MAX_AGE
                        )
                for token in tokens:
                    token.expires_at = min(token.expires_at, token.connection.expires_at)
            elif action == "expire_access":
                self.expire_access_tokens(realm_id)
            elif action == "rotate":
                for token in tokens:
                    token.rotation_due = True
            elif action == "expire_refresh":
                for token in tokens:
                    token.expires_at = min(token.expires_at, now)
            elif action == "revoke":
                for connection in self._connections:
                    if connection.realm_id == realm_id and connection.revoked_at is None:
                        connection.revoked_at = now
            else:
                raise ValueError(
                    f"unknown action {action!r}; use expire_access, rotate, expire_refresh, "
                    "revoke, choose_company or connection_expires_in"
                )

    def refresh_token_state(self, realm_id: str) -> dict[str, Any]:
        """For /_sandbox/tokens: the realm's refresh tokens (values included: test data)."""
        with self._lock:
            now = self.clock.now()
            tokens = [t for t in self._refresh.values() if t.connection.realm_id == realm_id]
            active = [t for t in tokens if t.status(now) == "active"]
            access = [t for t in self._access.values() if t.connection.realm_id == realm_id]
            live = [t for t in access if t.connection.revoked_at is None and now < t.expires_at]
            return {
                "realm_id": realm_id,
                "initial_refresh_token": self._initial.get(realm_id),
                "current_refresh_token": active[-1].value if active else None,
                "connected": any(
                    c.realm_id == realm_id and c.revoked_at is None for c in self._connections
                ),
                "rotations": sum(1 for t in tokens if t.rotated_at is not None),
                "refresh_tokens": [
                    {
                        "refresh_token": t.value,
                        "status": t.status(now),
                        "issued_at": t.issued_at.isoformat(),
                        "expires_at": t.expires_at.isoformat(),
                        "rotated_at": t.rotated_at.isoformat() if t.rotated_at else None,
                        "successor": t.successor,
                        "uses": t.uses,
                        "rotation_due": t.rotation_due,
                    }
                    for t in tokens
                ],
                "access_tokens": {
                    "issued": len(access),
                    "valid": len(live),
                    "latest_expires_at": (
                        max(t.expires_at for t in access).isoformat() if access else None
                    ),
                },
            }

    # ---- internals -------------------------------------------------------------------------
    def _connect(self, realm_id: str, scopes: frozenset[str], now: datetime) -> _Connection:
        connection = _Connection(realm_id, scopes, now)
        self._connections.append(connection)
        return connection

    def _prune(self, now: datetime) -> None:
        """Forget access tokens a day past expiry and spent or stale codes (memory stays flat)."""
        horizon = now - PRUNE_AFTER
        for value in [v for v, t in self._access.items() if t.expires_at < horizon]:
            del self._access[value]
        for code in [c for c, r in self._codes.items() if r.issued_at < horizon]:
            del self._codes[code]

    @staticmethod
    def _refresh_expiry(connection: _Connection, now: datetime) -> datetime:
        return min(now + REFRESH_TOKEN_LIFETIME, connection.expires_at)

    def _issue_refresh(self, connection: _Connection, now: datetime) -> _RefreshToken:
        expires_at = self._refresh_expiry(connection, now)
        record = _RefreshToken(_token("AB11", expires_at, 36), connection, now, expires_at)
        self._refresh[record.value] = record
        return record

    def _grant(self, connection: _Connection, refresh: _RefreshToken, now: datetime) -> TokenGrant:
        self._prune(now)
        access = _AccessToken(
            f"{_JWE_HEADER}..{secrets.token_urlsafe(16)}.{secrets.token_urlsafe(300)}."
            f"{secrets.token_urlsafe(16)}",
            connection,
            now,
            now + ACCESS_TOKEN_LIFETIME,
        )
        self._access[access.value] = access
        return TokenGrant(
            access_token=access.value,
            refresh_token=refresh.value,
            expires_in=int(ACCESS_TOKEN_LIFETIME.total_seconds()),
            x_refresh_token_expires_in=max(0, int((refresh.expires_at - now).total_seconds())),
        )


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header (scheme case-insensitive)."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    return token


def _initial_refresh_token(realm_id: str) -> str:
    """Deterministic per realm, so the info file stays valid across resets and restarts."""
    digest = hashlib.shake_256(f"revbridge-sandbox-refresh:{realm_id}".encode()).digest(46)
    return "AB11" + "".join(_ALNUM[b % len(_ALNUM)] for b in digest)


def _token(prefix: str, when: datetime, random_len: int) -> str:
    """Intuit-shaped opaque token: prefix, epoch seconds, random alphanumerics."""
    tail = "".join(secrets.choice(_ALNUM) for _ in range(random_len))
    return f"{prefix}{int(when.timestamp())}{tail}"


# ---- id_token signing (RS256 with a per-process key, published at jwks_uri) ----------------
_KEY_ID = "r4p5SbL2rvbSandbox"


@cache
def _signing_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _uint(n: int) -> str:
    return _b64url(n.to_bytes((n.bit_length() + 7) // 8, "big"))


def jwks() -> dict[str, Any]:
    numbers = _signing_key().public_key().public_numbers()
    return {
        "keys": [
            {
                "kty": "RSA",
                "alg": "RS256",
                "use": "sig",
                "kid": _KEY_ID,
                "e": _uint(numbers.e),
                "n": _uint(numbers.n),
            }
        ]
    }


def _id_token(client_id: str, issuer: str, realm_id: str) -> str:
    """An id_token as Intuit issues it. Its times use the wall clock, not the sandbox clock:
    clients validate ``iat``/``exp`` against their own clock and silently drop the token
    otherwise (intuitlib keeps ``id_token`` None)."""
    now = datetime.now(UTC)
    header = {"kid": _KEY_ID, "alg": "RS256"}
    payload = {
        "sub": SANDBOX_USER["sub"],
        "aud": [client_id],
        "realmid": realm_id,
        "auth_time": int(now.timestamp()),
        "iss": issuer,
        "exp": int((now + ID_TOKEN_LIFETIME).timestamp()),
        "iat": int(now.timestamp()),
    }
    signing_input = ".".join(
        _b64url(json.dumps(part, separators=(",", ":")).encode()) for part in (header, payload)
    )
    signature = _signing_key().sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{_b64url(signature)}"


# ---- HTTP ------------------------------------------------------------------------------------
DISCOVERY_PATHS = ("/.well-known/openid_sandbox_configuration", "/.well-known/openid_configuration")
AUTHORIZE_PATH = "/connect/oauth2"
TOKEN_PATH = "/oauth2/v1/tokens/bearer"
REVOKE_PATH = "/v2/oauth2/tokens/revoke"
USERINFO_PATH = "/v1/openid_connect/userinfo"
JWKS_PATH = "/op/v1/jwks"
ISSUER_PATH = "/op/v1"


def discovery_document(base: str) -> dict[str, Any]:
    """The keys Intuit publishes, pointing at this server."""
    return {
        "issuer": base + ISSUER_PATH,
        "authorization_endpoint": base + AUTHORIZE_PATH,
        "token_endpoint": base + TOKEN_PATH,
        "userinfo_endpoint": base + USERINFO_PATH,
        "revocation_endpoint": base + REVOKE_PATH,
        "jwks_uri": base + JWKS_PATH,
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "scopes_supported": ["openid", "email", "profile", "address", "phone"],
        "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
        "claims_supported": ["aud", "exp", "iat", "iss", "realmid", "sub"],
    }


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> JSONResponse:
    """An answer with the ``intuit_tid`` header Intuit puts on every response."""
    return JSONResponse(
        body, status_code=status, headers={"intuit_tid": secrets.token_hex(16), **(headers or {})}
    )


def _oauth_error(exc: OAuthError) -> JSONResponse:
    headers = {"Cache-Control": "no-store"}
    if exc.status == 401 and exc.error == "invalid_token":
        headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
    return _json(exc.body(), exc.status, headers)


def _basic_credentials(authorization: str | None) -> tuple[str | None, str | None]:
    if not authorization:
        return None, None
    scheme, _, encoded = authorization.strip().partition(" ")
    if scheme.lower() != "basic":
        return None, None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None, None
    client_id, sep, secret = decoded.partition(":")
    return (client_id, secret) if sep else (None, None)


async def _form(request: Request) -> dict[str, str]:
    """The urlencoded body (first value per key); anything else counts as empty."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        return {}
    parsed = parse_qs((await request.body()).decode("utf-8", "replace"), keep_blank_values=True)
    return {k: v[0] for k, v in parsed.items()}


def _token_to_revoke(raw: bytes) -> str:
    """The ``token`` of a revoke body: JSON as intuitlib sends it, or a form as RFC 7009 does."""
    text = raw.decode("utf-8", "replace")
    try:
        body = json.loads(text) if text.strip() else {}
    except ValueError:
        body = {k: v[0] for k, v in parse_qs(text).items()}
    value = body.get("token") if isinstance(body, dict) else None
    if not isinstance(value, str) or not value:
        raise OAuthError("invalid_request")
    return value


def oauth_routes(store: TokenStore, base_url: Callable[[], str]) -> list[BaseRoute]:
    """Discovery, authorize, token, revoke, userinfo, jwks and ``/_sandbox/tokens``."""

    def origin(request: Request) -> str:
        return base_url() or str(request.base_url).rstrip("/")

    async def discovery(request: Request) -> Response:
        return _json(discovery_document(origin(request)))

    async def authorize(request: Request) -> Response:
        q = request.query_params
        redirect_uri, state = q.get("redirect_uri"), q.get("state")
        if q.get("client_id") != store.client_id or redirect_uri not in store.redirect_uris:
            # Never redirect to an unverified URI: Intuit shows an error page instead.
            return _json(
                {
                    "error": "invalid_client"
                    if redirect_uri in store.redirect_uris
                    else "invalid_request"
                },
                400,
            )
        try:
            if q.get("response_type") != "code":
                raise OAuthError("unsupported_response_type")
            code, realm_id = store.authorize(
                q.get("client_id"), redirect_uri, q.get("scope"), q.get("realm_id")
            )
            params = {"code": code, "state": state, "realmId": realm_id}
        except OAuthError as exc:
            params = {"error": exc.error, "state": state}
        query = urlencode({k: v for k, v in params.items() if v is not None})
        return RedirectResponse(f"{redirect_uri}?{query}", status_code=302)

    async def token(request: Request) -> Response:
        form = await _form(request)
        client_id, secret = _basic_credentials(request.headers.get("authorization"))
        if client_id is None:
            client_id, secret = form.get("client_id"), form.get("client_secret")
        try:
            store.authenticate_client(client_id, secret)
            grant_type = form.get("grant_type")
            if grant_type == "refresh_token":
                if not form.get("refresh_token"):
                    raise OAuthError("invalid_request")
                grant = store.refresh(form["refresh_token"])
            elif grant_type == "authorization_code":
                if not form.get("code"):
                    raise OAuthError("invalid_request")
                grant = store.exchange_code(
                    form["code"], form.get("redirect_uri"), origin(request) + ISSUER_PATH
                )
            elif not grant_type:
                raise OAuthError("invalid_request")
            else:
                raise OAuthError("unsupported_grant_type")
        except OAuthError as exc:
            return _oauth_error(exc)
        return _json(grant.body(), headers={"Cache-Control": "no-store", "Pragma": "no-cache"})

    async def revoke(request: Request) -> Response:
        client_id, secret = _basic_credentials(request.headers.get("authorization"))
        try:
            store.authenticate_client(client_id, secret)
            value = _token_to_revoke(await request.body())
        except OAuthError as exc:
            return _oauth_error(exc)
        store.revoke(value)
        return Response(status_code=200, headers={"intuit_tid": secrets.token_hex(16)})

    async def userinfo(request: Request) -> Response:
        try:
            return _json(store.userinfo(request.headers.get("authorization")))
        except OAuthError as exc:
            return _oauth_error(exc)

    async def keys(_: Request) -> Response:
        return _json(jwks())

    async def redirect_uris(request: Request) -> Response:
        if request.method == "POST":
            try:
                body = json.loads(await request.body() or b"{}")
                store.register_redirect_uri(str(body["redirect_uri"]))
            except (ValueError, KeyError, TypeError) as exc:
                return JSONResponse({"error": f"need {{'redirect_uri': URL}}: {exc}"}, 400)
        return JSONResponse({"redirect_uris": sorted(store.redirect_uris)})

    async def tokens(request: Request) -> Response:
        if request.method == "POST":
            try:
                body = json.loads(await request.body() or b"{}")
            except ValueError:
                return JSONResponse({"error": "body must be JSON"}, status_code=400)
            if not isinstance(body, dict):
                return JSONResponse({"error": "body must be a JSON object"}, status_code=400)
            realm_id, action = body.get("realm_id"), str(body.get("action", ""))
            targets = store.realm_ids if realm_id is None else [str(realm_id)]
            if action == "choose_company" and realm_id is None:
                return JSONResponse({"error": "choose_company needs a realm_id"}, status_code=400)
            try:
                for target in targets:
                    store.control(target, action, body.get("seconds"))
            except KeyError:
                return JSONResponse({"error": f"unknown realm_id {realm_id}"}, status_code=404)
            except ValueError as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)
        wanted = request.query_params.get("realm_id")
        if wanted and wanted not in store.realm_ids:
            return JSONResponse({"error": f"unknown realm_id {wanted}"}, status_code=404)
        realms = [wanted] if wanted else store.realm_ids
        return JSONResponse({"realms": {r: store.refresh_token_state(r) for r in realms}})

    routes: list[BaseRoute] = []
    for path in DISCOVERY_PATHS:
        routes += [Route(path, discovery, methods=["GET"]), Route(path + "/", discovery)]
    return [
        *routes,
        Route(AUTHORIZE_PATH, authorize, methods=["GET"]),
        Route(TOKEN_PATH, token, methods=["POST"]),
        Route(REVOKE_PATH, revoke, methods=["POST"]),
        Route(USERINFO_PATH, userinfo, methods=["GET"]),
        Route(JWKS_PATH, keys, methods=["GET"]),
        Route("/_sandbox/tokens", tokens, methods=["GET", "POST"]),
        Route("/_sandbox/redirect_uris", redirect_uris, methods=["GET", "POST"]),
    ]
