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
   access token is used. Intuit invalidates the previous refresh token at once, so a crash
   between the refresh and the save would strand the realm: a rotated token is first written to
   a local write-ahead journal (``blocks.token_journal``: atomic, fsynced, 0600, encrypted), the
   block is saved, then the entry is cleared. Step 2 takes a pending entry whose predecessor is
   the token the saved block still holds. A save that fails with the token safe in the journal
   (or unchanged) is logged and the client is still returned; the next refresh saves it;
5. build ``quickbooks.QuickBooks`` from that ``AuthClient``.

python-quickbooks refreshes on construction only when its ``AuthClient`` has no access token yet;
here the refresh is done just before construction (step 3), so the client starts with the fresh
access token and does not refresh again. It never refreshes by itself later: a caller that gets
401 / fault code 3200 mid-run calls ``refresh()`` for a new client. No token is ever logged or put
in an exception message.
"""

from __future__ import annotations

import ipaddress
import logging
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
from prefect.exceptions import MissingContextError
from prefect.logging import get_run_logger
from pydantic import Field, HttpUrl, PrivateAttr, SecretStr, field_validator
from quickbooks.client import QuickBooks

from blocks.token_journal import JournalEntry, TokenJournal, token_digest
from revbridge.token_health import authorize_command

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


def _logger() -> logging.Logger | logging.LoggerAdapter[logging.Logger]:
    try:
        return get_run_logger()
    except MissingContextError:
        return logging.getLogger(__name__)


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
            journal = self._journal()
            from_journal = journal is not None and self._adopt_journaled_token(journal)
            used = self.refresh_token.get_secret_value()
            self._refresh_tokens(auth)
            self._store_rotated_token(auth, used, journal, from_journal)
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
    def _token_lock(self, shared: bool | None = None) -> Iterator[None]:
        """The realm's lock: in-process, plus the Prefect global concurrency limit when the
        block lives in the Prefect API (``shared`` overrides that test)."""
        if shared is None:
            shared = self._block_document_name is not None
        with _realm_lock(self.realm_id):
            lock = (
                concurrency(
                    token_lock_name(self.realm_id),
                    occupy=1,
                    strict=False,
                    timeout_seconds=TOKEN_LOCK_WAIT_SECONDS,
                    lease_duration=TOKEN_LOCK_LEASE_SECONDS,
                )
                if shared
                else nullcontext()
            )
            try:
                with lock:
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

    def _journal(self) -> TokenJournal | None:
        """The write-ahead journal of a saved block (an unsaved one has nothing to save)."""
        if self._block_document_name is None:
            return None
        return TokenJournal(self._block_document_name, self.client_secret.get_secret_value())

    def _adopt_journaled_token(self, journal: TokenJournal) -> bool:
        """Take a journaled token whose predecessor is the one the saved block holds: Intuit
        issued it, and the process that got it died (or failed) before saving the block."""
        entry = journal.read()
        if entry is None:
            return False
        current = self.refresh_token.get_secret_value()
        if (
            entry.realm_id == self.realm_id
            and entry.replaces == token_digest(current)
            and entry.refresh_token != current
        ):
            _logger().warning(
                "QuickBooks realm %s: block %r missed its rotated refresh token (the process "
                "that got it stopped before saving); taking it from the token journal",
                self.realm_id,
                self._block_document_name,
            )
            self.refresh_token = SecretStr(entry.refresh_token)
            self.refresh_token_expires_at = entry.expires_at
            return True
        journal.clear()  # saved already, or the block moved on (re-authorized elsewhere)
        return False

    def _refresh_tokens(self, auth: AuthClient) -> None:
        try:
            auth.refresh(refresh_token=self.refresh_token.get_secret_value())
        except AuthClientError as exc:
            raise self._auth_error(exc) from None
        self._access_expires_at = datetime.now(UTC) + timedelta(
            seconds=int(auth.expires_in or 3600)
        )

    def _store_rotated_token(
        self, auth: AuthClient, used: str, journal: TokenJournal | None, from_journal: bool
    ) -> None:
        new = str(auth.refresh_token)
        if auth.x_refresh_token_expires_in:
            self.refresh_token_expires_at = datetime.now(UTC) + timedelta(
                seconds=int(auth.x_refresh_token_expires_in)
            )
        # Where `new` survives this process if the block save below does not happen.
        in_journal = from_journal and new == used
        if journal is not None and new != used:
            in_journal = self._write_ahead(journal, used, new)
        self.refresh_token = SecretStr(new)
        if self._block_document_name is None:
            return
        try:
            # _sync: this may run inside an async flow; the save must finish before we go on.
            self.save(self._block_document_name, overwrite=True, _sync=True)  # type: ignore[call-arg]
        except Exception as exc:
            if not in_journal and new != used:
                raise
            _logger().warning(
                "QuickBooks realm %s: saving block %r failed (%s); its refresh token is %s, "
                "the next refresh saves it",
                self.realm_id,
                self._block_document_name,
                type(exc).__name__,
                "in the token journal" if in_journal else "unchanged",
            )
            return
        if journal is not None:
            journal.clear()

    def _write_ahead(self, journal: TokenJournal, used: str, new: str) -> bool:
        entry = JournalEntry(self.realm_id, token_digest(used), new, self.refresh_token_expires_at)
        try:
            journal.write(entry)
        except OSError as exc:
            _logger().warning(
                "QuickBooks realm %s: the token journal %s is not writable (%s); saving the "
                "block without it",
                self.realm_id,
                journal.path,
                exc.strerror or type(exc).__name__,
            )
            return False
        return True

    def _auth_error(self, exc: AuthClientError) -> QuickBooksAuthError:
        code = _oauth_error_code(exc)
        where = f"QuickBooks realm {self.realm_id}"
        block = f" {self._block_document_name!r}" if self._block_document_name else ""
        tid = f" (intuit_tid {exc.intuit_tid})" if exc.intuit_tid else ""
        if code == "invalid_grant":
            command = authorize_command(self.realm_id, self._block_document_name)
            return QuickBooksReauthorizationRequired(
                self.realm_id,
                f"{where}: Intuit refused the stored refresh token (invalid_grant){tid}: it "
                "expired, was revoked, or was replaced by a newer one that was never saved. "
                "Re-authorize the app for this company: run `" + command + "` (add --config "
                "PATH for another config file); it opens Intuit's consent page, where a "
                "QuickBooks admin of this company clicks Connect, and stores the new tokens in "
                f"the QuickBooks Connection block{block}.",
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

    # ---- a new authorization -----------------------------------------------------------------
    def store_authorization(
        self,
        block_name: str,
        realm_id: str,
        refresh_token: str,
        refresh_expires_in: int | None,
        redirect_uri: str,
    ) -> None:
        """Save the tokens of a fresh consent (``deployments.authorize``) as block
        ``block_name``, under the realm's token lock, so a refresh running elsewhere cannot
        overwrite them with the old connection's token; a pending journal entry is dropped."""
        self.realm_id = realm_id
        self.redirect_uri = redirect_uri
        self.refresh_token = SecretStr(refresh_token)
        self.refresh_token_expires_at = (
            datetime.now(UTC) + timedelta(seconds=int(refresh_expires_in))
            if refresh_expires_in
            else None
        )
        self._client = None
        self.ensure_token_lock()
        with self._token_lock(shared=True):
            self.save(block_name, overwrite=True, _sync=True)  # type: ignore[call-arg]
            TokenJournal(block_name, self.client_secret.get_secret_value()).clear()

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
