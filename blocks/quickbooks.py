"""``QuickBooksConnection``: one QuickBooks Online company (realm), its app and its tokens.

Tokens. Intuit's refresh token may be used more than once while it is valid, but its value rotates
(about daily): the answer of a refresh may carry a new one, and the caller must keep the latest or
a later refresh fails with ``invalid_grant``. So every refresh here is one critical section per
realm:

1. take the realm's lock: a ``threading.Lock`` in this process and, when the block lives in the
   Prefect API (it was saved or loaded, so ``_block_document_name`` is set), the Prefect global
   concurrency limit ``qbo-token-<realm_id>`` (occupy 1; ``strict=False``, so a missing limit
   does not fail the refresh: ``ensure_token_lock()`` or ``blocks.sandbox.save_all`` create it
   with limit 1). Across processes and workers that limit is the lock: two concurrent
   ``save(overwrite=True)`` would otherwise let an older token win;
2. re-read the saved block, in case another process rotated the token meanwhile;
3. refresh with intuitlib's ``AuthClient``;
4. store the rotated refresh token (and its expiry) in the block and save it, BEFORE the new
   access token is used;
5. build ``quickbooks.QuickBooks`` from that ``AuthClient``.

python-quickbooks refreshes on construction only when its ``AuthClient`` has no access token yet;
here the refresh is done just before construction (step 3), so the client starts with the fresh
access token and does not refresh again. It never refreshes by itself later: a caller that gets
401 / fault code 3200 mid-run calls ``refresh()`` for a new client. No token is ever logged or put
in an exception message.
"""

from __future__ import annotations

import ipaddress
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from datetime import UTC, datetime, timedelta
from typing import Any, cast
from urllib.parse import urlparse

from intuitlib.client import AuthClient
from intuitlib.exceptions import AuthClientError
from prefect.blocks.core import Block
from prefect.client.orchestration import get_client as get_prefect_client
from prefect.concurrency.sync import concurrency
from pydantic import Field, HttpUrl, PrivateAttr, SecretStr, field_validator
from quickbooks.client import QuickBooks

ENVIRONMENTS = ("sandbox", "production")
OAUTH_PLAYGROUND_REDIRECT = "https://developer.intuit.com/v2/OAuth2Playground/RedirectUrl"
# get_client() refreshes ahead of time when the cached access token is this close to expiring.
ACCESS_TOKEN_MARGIN = timedelta(minutes=5)

_realm_locks: dict[str, threading.Lock] = {}
_realm_locks_guard = threading.Lock()


class QuickBooksAuthError(RuntimeError):
    """Getting tokens for a QuickBooks company failed; the message names the realm, never a
    token."""

    def __init__(self, realm_id: str, message: str) -> None:
        super().__init__(message)
        self.realm_id = realm_id


class QuickBooksReauthorizationRequired(QuickBooksAuthError):
    """Intuit answered ``invalid_grant``: the stored refresh token is dead; a person must
    re-authorize the app for this company."""


# A refresh takes about a second. A holder that dies mid-refresh frees the lock when its lease
# ends, so keep the lease short; a waiter gives up (loudly) well after that.
TOKEN_LOCK_LEASE_SECONDS = 60
TOKEN_LOCK_WAIT_SECONDS = 150


def token_lock_name(realm_id: str) -> str:
    """The Prefect global concurrency limit that serializes token refreshes of one realm."""
    return f"qbo-token-{realm_id}"


def _realm_lock(realm_id: str) -> threading.Lock:
    with _realm_locks_guard:
        return _realm_locks.setdefault(realm_id, threading.Lock())


def _is_loopback_http(url: str) -> bool:
    parsed = urlparse(url)
    if parsed.scheme != "http" or not parsed.hostname:
        return False
    if parsed.hostname == "localhost":
        return True
    try:
        return ipaddress.ip_address(parsed.hostname).is_loopback
    except ValueError:
        return False


class QuickBooksConnection(Block):
    """A QuickBooks Online company (realm): the Intuit app's credentials and the company's
    refresh token, with a ready ``quickbooks.QuickBooks`` client.

    The refresh token rotates: every refresh stores the latest one in this block (and saves the
    block when it lives in the Prefect API) before the new access token is used.

    Examples:
        Load the block and read the company:
        ```python
        from blocks import QuickBooksConnection
        from quickbooks.objects.company_info import CompanyInfo

        quickbooks_connection = QuickBooksConnection.load("BLOCK_NAME")
        qb = quickbooks_connection.get_client()
        CompanyInfo.get(quickbooks_connection.realm_id, qb=qb)
        ```
    """

    _block_type_name = "QuickBooks Connection"
    _documentation_url = HttpUrl(
        "https://developer.intuit.com/app/developer/qbo/docs/develop/authentication-and-authorization/oauth-2.0"
    )

    client_id: str = Field(description="Client ID of the Intuit app (Keys & credentials).")
    client_secret: SecretStr = Field(description="Client secret of the Intuit app.")
    realm_id: str = Field(description="QuickBooks company id (realmId) this connection is for.")
    environment: str = Field(
        default="production",
        description=(
            "Intuit environment: production, sandbox, or the URL of an OpenID discovery document "
            "(the sandbox's QuickBooks emulator)."
        ),
    )
    refresh_token: SecretStr = Field(
        description="Latest OAuth refresh token of this company; updated after every refresh.",
    )
    redirect_uri: str = Field(
        default=OAUTH_PLAYGROUND_REDIRECT,
        description="Redirect URI registered for the Intuit app.",
    )
    api_base: str | None = Field(
        default=None,
        description=(
            "Override of the Accounting API v3 base URL (e.g. http://127.0.0.1:PORT/v3); optional."
        ),
    )
    minorversion: int = Field(
        default=75, ge=75, description="Accounting API minor version sent with every call."
    )
    refresh_token_expires_at: datetime | None = Field(
        default=None,
        description="When the stored refresh token expires, as Intuit last reported it.",
    )

    _client: QuickBooks | None = PrivateAttr(default=None)
    _access_expires_at: datetime | None = PrivateAttr(default=None)

    @field_validator("environment")
    @classmethod
    def _known_environment(cls, value: str) -> str:
        if value in ENVIRONMENTS or urlparse(value).scheme in ("http", "https"):
            return value
        raise ValueError(
            f"environment must be one of {ENVIRONMENTS} or a discovery document URL, not {value!r}"
        )

    @field_validator("api_base")
    @classmethod
    def _no_trailing_slash(cls, value: str | None) -> str | None:
        return value.rstrip("/") if value else value

    # ---- clients -----------------------------------------------------------------------------
    def get_client(self) -> QuickBooks:
        """A ``quickbooks.QuickBooks`` with a valid access token (cached per block instance; a new
        one when the cached token is about to expire)."""
        expires = self._access_expires_at
        if (
            self._client is None
            or expires is None
            or datetime.now(UTC) + ACCESS_TOKEN_MARGIN >= expires
        ):
            return self.refresh()
        return self._client

    def refresh(self) -> QuickBooks:
        """Refresh the tokens now and return a new client; for a caller whose calls started to
        fail with 401 / code 3200 (expired access token)."""
        if self.api_base and _is_loopback_http(self.api_base):
            # requests-oauthlib refuses http:// unless told; only ever for a loopback API base.
            os.environ["OAUTHLIB_INSECURE_TRANSPORT"] = "1"
        auth = self._auth_client()
        with self._token_lock():
            self._adopt_saved_token()
            self._refresh_tokens(auth)
            self._store_rotated_token(auth)
        qb = QuickBooks(
            auth_client=auth,
            refresh_token=auth.refresh_token,
            company_id=self.realm_id,
            minorversion=self.minorversion,
        )
        if self.api_base:
            qb.sandbox_api_url_v3 = qb.api_url_v3 = self.api_base
        self._client = qb
        return qb

    def _auth_client(self) -> AuthClient:
        return AuthClient(
            client_id=self.client_id,
            client_secret=self.client_secret.get_secret_value(),
            redirect_uri=self.redirect_uri,
            environment=self.environment,
        )

    # ---- the refresh critical section --------------------------------------------------------
    @contextmanager
    def _token_lock(self) -> Iterator[None]:
        with _realm_lock(self.realm_id):
            shared = (
                concurrency(
                    token_lock_name(self.realm_id),
                    occupy=1,
                    strict=False,
                    timeout_seconds=TOKEN_LOCK_WAIT_SECONDS,
                    lease_duration=TOKEN_LOCK_LEASE_SECONDS,
                )
                if self._block_document_name is not None
                else nullcontext()
            )
            try:
                with shared:
                    yield
            except TimeoutError as exc:
                raise TimeoutError(
                    f"QuickBooks realm {self.realm_id}: another process has held the token "
                    f"lock {token_lock_name(self.realm_id)!r} for over "
                    f"{TOKEN_LOCK_WAIT_SECONDS} s; try again (a crashed holder's lease ends "
                    f"within {TOKEN_LOCK_LEASE_SECONDS} s)"
                ) from exc

    def _adopt_saved_token(self) -> None:
        """Take the refresh token another process may have rotated and saved meanwhile."""
        if self._block_document_name is None:
            return
        saved = cast(
            QuickBooksConnection,
            type(self).load(self._block_document_name, _sync=True),  # type: ignore[call-arg]
        )
        if saved.refresh_token.get_secret_value() != self.refresh_token.get_secret_value():
            self.refresh_token = saved.refresh_token
            self.refresh_token_expires_at = saved.refresh_token_expires_at

    def _refresh_tokens(self, auth: AuthClient) -> None:
        try:
            auth.refresh(refresh_token=self.refresh_token.get_secret_value())
        except AuthClientError as exc:
            raise self._auth_error(exc) from None
        self._access_expires_at = datetime.now(UTC) + timedelta(
            seconds=int(auth.expires_in or 3600)
        )

    def _store_rotated_token(self, auth: AuthClient) -> None:
        self.refresh_token = SecretStr(auth.refresh_token)
        if auth.x_refresh_token_expires_in:
            self.refresh_token_expires_at = datetime.now(UTC) + timedelta(
                seconds=int(auth.x_refresh_token_expires_in)
            )
        if self._block_document_name is not None:
            # _sync: this may run inside an async flow; the save must finish before we go on.
            self.save(self._block_document_name, overwrite=True, _sync=True)  # type: ignore[call-arg]

    def _auth_error(self, exc: AuthClientError) -> QuickBooksAuthError:
        code = _oauth_error_code(exc)
        where = f"QuickBooks realm {self.realm_id}"
        block = f" {self._block_document_name!r}" if self._block_document_name else ""
        tid = f" (intuit_tid {exc.intuit_tid})" if exc.intuit_tid else ""
        if code == "invalid_grant":
            return QuickBooksReauthorizationRequired(
                self.realm_id,
                f"{where}: Intuit refused the stored refresh token (invalid_grant){tid}: it "
                "expired, was revoked, or was replaced by a newer one that was never saved. "
                "Re-authorize the app for this company (Intuit's OAuth 2.0 authorization-code "
                "flow, e.g. the OAuth 2.0 Playground, with the accounting scope) and store the "
                f"new refresh token in the QuickBooks Connection block{block}.",
            )
        if code == "invalid_client":
            return QuickBooksAuthError(
                self.realm_id,
                f"{where}: Intuit rejected the app's client id/secret (invalid_client){tid}. "
                f"Check client_id and client_secret in the QuickBooks Connection block{block}.",
            )
        return QuickBooksAuthError(
            self.realm_id,
            f"{where}: token refresh failed with HTTP {exc.status_code}"
            f"{f' ({code})' if code else ''}{tid}.",
        )

    # ---- Prefect-side setup ------------------------------------------------------------------
    def ensure_token_lock(self) -> None:
        """Create (or reset to 1) the global concurrency limit that serializes this realm's
        token refreshes across processes."""
        with get_prefect_client(sync_client=True) as client:
            client.upsert_global_concurrency_limit_by_name(token_lock_name(self.realm_id), 1)


def _oauth_error_code(exc: AuthClientError) -> str | None:
    try:
        body: Any = exc.response.json()
    except ValueError:
        return None
    return str(body.get("error")) if isinstance(body, dict) and body.get("error") else None
