"""simple-salesforce clients on the Salesforce emulator, both ways the contract allows."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter
from simple_salesforce import Salesforce


class LoginHostAdapter(HTTPAdapter):
    """Sends simple-salesforce's ``https://*.salesforce.com`` logins to the sandbox instead, and
    verifies the sandbox with its CA.

    ``Session.verify`` alone is not enough: requests lets ``REQUESTS_CA_BUNDLE`` (set on many
    machines, this one included) override it, so the adapter pins ``verify`` itself.
    """

    def __init__(self, instance_url: str, ca_bundle: str) -> None:
        super().__init__()
        target = urlsplit(instance_url)
        self._scheme, self._netloc, self._ca_bundle = target.scheme, target.netloc, ca_bundle

    def send(
        self, request: requests.PreparedRequest, *args: Any, **kwargs: Any
    ) -> requests.Response:
        url = urlsplit(request.url or "")
        if (url.hostname or "").endswith(".salesforce.com"):
            request.url = urlunsplit((self._scheme, self._netloc, url.path, url.query, ""))
            url = urlsplit(request.url)
        if url.netloc == self._netloc:
            kwargs["verify"] = self._ca_bundle
        return super().send(request, *args, **kwargs)


def sandbox_session(info: dict[str, Any]) -> requests.Session:
    """A requests session that trusts the sandbox CA and reaches it for login hosts."""
    session = requests.Session()
    session.verify = info["ca_bundle"]
    session.mount("https://", LoginHostAdapter(info["instance_url"], info["ca_bundle"]))
    return session


def token_client(info: dict[str, Any], session: requests.Session) -> Salesforce:
    """A client on an access token from the OAuth password grant (no re-login possible)."""
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
    answer.raise_for_status()
    body = answer.json()
    return Salesforce(
        instance_url=body["instance_url"],
        session_id=body["access_token"],
        version=info["api_version"],
        session=session,
    )


def password_client(info: dict[str, Any], session: requests.Session) -> Salesforce:
    """A client that logs in itself (SOAP), so it re-logs in on INVALID_SESSION_ID."""
    return Salesforce(
        username=info["username"],
        password=info["password"],
        security_token=info["security_token"],
        version=info["api_version"],
        session=session,
    )
