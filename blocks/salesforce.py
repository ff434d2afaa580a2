"""``SalesforceCredentials``: how revbridge logs in to a Salesforce org, and the client it gets.

The client is ``simple_salesforce.Salesforce`` built from credentials (never from a bare session
id), so it logs in again by itself when an API call answers 401 ``INVALID_SESSION_ID``.

simple-salesforce always sends its logins to ``https://{domain}.salesforce.com``. When
``login_url_override`` is set, the client's ``requests.Session`` carries a transport adapter for
exactly that host which sends the login to the override instead (the sandbox's Salesforce
emulator, or a proxy); every other request, including the API calls to the instance URL the login
returned, goes out unchanged. ``ca_bundle`` becomes the session's ``verify``, and stays it even
when ``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE`` are set (plain requests lets those override
``Session.verify``, psf/requests#3829).
"""

from __future__ import annotations

from typing import Any, Literal, Self

import requests
from prefect.blocks.core import Block
from pydantic import Field, HttpUrl, PrivateAttr, SecretStr, field_validator, model_validator
from requests.adapters import HTTPAdapter
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceAuthenticationFailed

AuthFlow = Literal["password", "client_credentials", "soap"]

_REQUIRED: dict[str, tuple[str, ...]] = {
    "password": ("username", "password", "consumer_key", "consumer_secret"),
    "soap": ("username", "password", "security_token"),
    "client_credentials": ("consumer_key", "consumer_secret"),
}


# What to fix for each refusal (the OAuth ``error`` / ``error_description`` or the SOAP fault code).
# Salesforce gives one answer for several causes on purpose; Setup → Login History names the one.
_LOGIN_FIXES: dict[str, str] = {
    "INVALID_LOGIN": (
        "Salesforce gives one answer for: a wrong username (field username), a wrong password "
        "(password), a missing or outdated security token (security_token; resetting the "
        "password or the token emails a new one), or a locked-out or frozen user"
    ),
    "authentication failure": (
        "check username, password and security_token (appended to the password for this flow; "
        "needed unless the caller's IP is in the org's trusted ranges), that the user is not "
        "locked out, and that Setup → OAuth and OpenID Connect Settings → Allow OAuth "
        "Username-Password Flows is on"
    ),
    "LOGIN_MUST_USE_SECURITY_TOKEN": (
        "the caller's IP is outside the org's trusted ranges: set security_token (Settings → "
        "Reset My Security Token emails it)"
    ),
    "ip restricted": (
        "the caller's IP is outside the integration user's profile login IP ranges (or the "
        "connected app's IP relaxation policy)"
    ),
    "INVALID_OPERATION_WITH_EXPIRED_PASSWORD": (
        "the integration user's password expired: log in as that user once to set a new one, "
        "then store it in password (consider a password-never-expires profile for it)"
    ),
    "password expired": (
        "the integration user's password expired: log in as that user once to set a new one, "
        "then store it in password"
    ),
    "inactive user": "the integration user is deactivated or frozen: reactivate it",
    "invalid_client_id": (
        "consumer_key does not name a connected app of this org (or the app is not yet "
        "available: new apps take up to 10 minutes)"
    ),
    "invalid_client": "consumer_secret does not match the connected app's consumer secret",
    "no client credentials user enabled": (
        "the connected app has no Run As user: enable the client credentials flow and set one"
    ),
    "user hasn't approved this consumer": (
        "the connected app needs admin approval: set Permitted Users to 'Admin approved users "
        "are pre-authorized' and assign the integration user's profile or permission set"
    ),
}


class SalesforceLoginFailed(SalesforceAuthenticationFailed):
    """Salesforce refused the block's login (``INVALID_LOGIN``, ``invalid_grant``, ...); the
    message says which block field to fix. Never carries a secret."""

    def __init__(self, block: str, username: str | None, cause: SalesforceAuthenticationFailed):
        super().__init__(cause.code, cause.auth_message)
        reason = f"{cause.code}: {cause.auth_message}" if cause.auth_message else str(cause.code)
        fix = _LOGIN_FIXES.get(str(cause.code)) or _LOGIN_FIXES.get(
            cause.auth_message.strip().lower(), "check the block's credentials"
        )
        who = f" of {username}" if username else ""
        self.explanation = (
            f"Salesforce refused the login{who} ({reason}). {fix[0].upper()}{fix[1:]}. Fix the "
            f"field in the Salesforce Credentials block {block} (Prefect UI → Blocks), see "
            "Setup → Login History in Salesforce for the exact reason, then re-run "
            "`python -m deployments.doctor`."
        )

    def __str__(self) -> str:
        return self.explanation


class LoginHostAdapter(HTTPAdapter):
    """Sends requests for one login host (``https://login.salesforce.com/...``) to another base
    URL, keeping path and query; mounted on that host's prefix only."""

    def __init__(self, login_prefix: str, target: str) -> None:
        super().__init__()
        self.login_prefix = login_prefix.rstrip("/")
        self.target = target.rstrip("/")

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> Any:
        url = request.url or ""
        if url.lower().startswith(self.login_prefix.lower()):
            request.url = self.target + url[len(self.login_prefix) :]
        return super().send(request, *args, **kwargs)


class _PinnedVerifySession(requests.Session):
    """A session whose own ``verify`` beats the CA-bundle environment variables."""

    def merge_environment_settings(
        self, url: Any, proxies: Any, stream: Any, verify: Any, cert: Any
    ) -> dict[str, Any]:
        settings = super().merge_environment_settings(url, proxies, stream, verify, cert)
        if verify is None:  # not set on the request itself
            settings["verify"] = self.verify
        return settings


class SalesforceCredentials(Block):
    """Credentials for one Salesforce org and a ready ``simple_salesforce.Salesforce`` client.

    Three login flows: ``password`` (OAuth 2.0 username-password flow through a connected app:
    consumer key and secret, username, password; the security token is appended to the password
    when set), ``soap`` (partner SOAP login: username, password and security token) and
    ``client_credentials`` (OAuth 2.0 client credentials flow of a connected app; Salesforce only
    offers it on a My Domain, so ``domain`` must be one, e.g. ``acme.my``).

    Examples:
        Load the block and query:
        ```python
        from blocks import SalesforceCredentials

        salesforce_credentials = SalesforceCredentials.load("BLOCK_NAME")
        sf = salesforce_credentials.get_client()
        sf.query("SELECT Id, Name FROM Account LIMIT 10")
        ```
    """

    _block_type_name = "Salesforce Credentials"
    _documentation_url = HttpUrl(
        "https://help.salesforce.com/s/articleView?id=sf.remoteaccess_oauth_flows.htm"
    )

    auth_flow: AuthFlow = Field(
        default="password",
        description=(
            "Login flow: password (OAuth username-password), soap (username, password and "
            "security token) or client_credentials (OAuth client credentials, My Domain only)."
        ),
    )
    domain: str = Field(
        default="login",
        description=(
            "Login domain: login for production, test for sandboxes, or a My Domain such as "
            "acme.my (the part before .salesforce.com)."
        ),
    )
    username: str | None = Field(
        default=None, description="Salesforce username of the integration user."
    )
    password: SecretStr | None = Field(
        default=None, description="Password of the integration user."
    )
    security_token: SecretStr | None = Field(
        default=None,
        description="Security token of the integration user (soap flow; appended otherwise).",
    )
    consumer_key: str | None = Field(
        default=None, description="Consumer key (client id) of the connected app."
    )
    consumer_secret: SecretStr | None = Field(
        default=None, description="Consumer secret (client secret) of the connected app."
    )
    api_version: str = Field(default="62.0", description="Salesforce REST API version.")
    login_url_override: str | None = Field(
        default=None,
        description=(
            "Base URL that login-host traffic goes to instead of https://{domain}.salesforce.com"
            ", e.g. the sandbox's Salesforce emulator; optional."
        ),
    )
    ca_bundle: str | None = Field(
        default=None,
        description="Path of a CA bundle (PEM) to verify TLS with instead of the system's.",
    )

    _client: Salesforce | None = PrivateAttr(default=None)

    @field_validator("api_version")
    @classmethod
    def _bare_version(cls, value: str) -> str:
        return value.removeprefix("v")

    @field_validator("domain")
    @classmethod
    def _bare_domain(cls, value: str) -> str:
        value = value.strip().removeprefix("https://").rstrip("/")
        return value.removesuffix(".salesforce.com")

    @model_validator(mode="after")
    def _flow_has_what_it_needs(self) -> Self:
        missing = [name for name in _REQUIRED[self.auth_flow] if not getattr(self, name)]
        if missing:
            raise ValueError(
                f"auth_flow {self.auth_flow!r} needs {', '.join(_REQUIRED[self.auth_flow])}; "
                f"missing: {', '.join(missing)}"
            )
        if self.auth_flow == "client_credentials" and self.domain in ("login", "test"):
            raise ValueError(
                "auth_flow 'client_credentials' needs a My Domain as domain (e.g. 'acme.my'): "
                "Salesforce does not offer the client credentials flow on login or test"
            )
        return self

    @property
    def login_host(self) -> str:
        """Where simple-salesforce sends this block's logins."""
        return f"https://{self.domain}.salesforce.com"

    def get_session(self) -> requests.Session:
        """The ``requests.Session`` every call of the client goes through."""
        session = _PinnedVerifySession() if self.ca_bundle else requests.Session()
        if self.ca_bundle:
            session.verify = self.ca_bundle
        if self.login_url_override:
            session.mount(
                self.login_host + "/", LoginHostAdapter(self.login_host, self.login_url_override)
            )
        return session

    def get_client(self) -> Salesforce:
        """A logged-in ``simple_salesforce.Salesforce`` (built once per block instance)."""
        if self._client is None:
            self._client = self._login()
        return self._client

    def close(self) -> None:
        """Close the cached client's connections (it is built again on the next get_client())."""
        if self._client is not None:
            self._client.session.close()
            self._client = None

    def _login(self) -> Salesforce:
        session = self.get_session()
        try:
            return self._salesforce(session)
        except SalesforceAuthenticationFailed as exc:
            session.close()  # a failed login leaves no connection behind
            name = repr(self._block_document_name) if self._block_document_name else "(unsaved)"
            raise SalesforceLoginFailed(name, self.username, exc) from None
        except Exception:
            session.close()
            raise

    def _salesforce(self, session: requests.Session) -> Salesforce:
        common: dict[str, Any] = {
            "domain": self.domain,
            "version": self.api_version,
            "session": session,
        }
        if self.auth_flow == "soap":
            return Salesforce(
                username=self.username,
                password=_reveal(self.password),
                security_token=_reveal(self.security_token),
                **common,
            )
        if self.auth_flow == "password":
            return Salesforce(
                username=self.username,
                password=_reveal(self.password) + _reveal(self.security_token),
                consumer_key=self.consumer_key,
                consumer_secret=_reveal(self.consumer_secret),
                **common,
            )
        return Salesforce(
            consumer_key=self.consumer_key,
            consumer_secret=_reveal(self.consumer_secret),
            **common,
        )


def _reveal(secret: SecretStr | None) -> str:
    return secret.get_secret_value() if secret is not None else ""
