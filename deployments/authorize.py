"""Connect (or reconnect) a QuickBooks company: Intuit's OAuth consent, tokens into its block.

    python -m deployments.authorize --realm us [--config PATH] [--block NAME] [--port N]
                                    [--no-browser] [--timeout SECONDS]

1. ``--realm`` is a realm key of the config (or a realm id); the block is that realm's
   ``connection_block`` unless ``--block`` names another. The block must exist (client id and
   secret, environment); its app must have the redirect URI registered.
2. Builds Intuit's consent URL (intuitlib, accounting scope, a random ``state``) and opens it in a
   browser (``--no-browser``: prints it). The redirect URI is ``http://localhost:PORT/callback``
   with ``--port``, else the block's redirect URI when it is a loopback http one (Intuit allows
   http://localhost for development keys), served on 127.0.0.1 until the consent comes back;
   otherwise (production keys need https) the user pastes the address the browser landed on.
3. Refuses a callback whose ``state`` differs (it keeps waiting), an Intuit error, and a consent
   for another company than the realm's (that connection is revoked again).
4. Exchanges the code, stores realm id, refresh token and its expiry in the block under the
   realm's token lock, checks the connection by reading CompanyInfo, and prints what to do next.
   Never prints a token. Blocks live in the Prefect API (``PREFECT_API_URL``).
"""

from __future__ import annotations

import argparse
import contextlib
import secrets
import sys
import threading
import webbrowser
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

from intuitlib.client import AuthClient
from intuitlib.enums import Scopes
from intuitlib.exceptions import AuthClientError

from blocks.loading import load_block
from blocks.quickbooks import QuickBooksConnection
from revbridge.config import ConfigError, load_config
from revbridge.token_health import DEFAULT_CONFIG
from tasks.quickbooks import qbo_call

DEFAULT_PORT = 8765
CALLBACK_PATH = "/callback"
DEFAULT_TIMEOUT = 300.0
LOOPBACK_HOSTS = ("localhost", "127.0.0.1")

Out = Callable[[str], None]


class AuthorizeError(Exception):
    """The authorization did not happen; the message says why and what to do."""


@dataclass(frozen=True)
class Target:
    label: str  # how the user named it
    block: str
    realm_id: str | None  # the company the consent must connect, when known


@dataclass
class Callback:
    """What came back to the redirect URI."""

    code: str | None = None
    realm_id: str | None = None
    error: str | None = None


def resolve(realm: str, config_path: str, block: str | None) -> Target:
    """The block and expected realm id for ``--realm`` (a config key or a realm id)."""
    path = Path(config_path)
    if path.exists():
        try:
            config = load_config(path)
        except ConfigError as exc:
            raise AuthorizeError(str(exc)) from None
        for key, realm_cfg in config.realms.items():
            if realm in (key, realm_cfg.realm_id):
                return Target(key, block or realm_cfg.connection_block, realm_cfg.realm_id)
        if block is None:
            raise AuthorizeError(
                f"{config_path} has no realm {realm!r} (realms: {', '.join(config.realms)}); "
                "name the block with --block"
            )
    elif block is None:
        raise AuthorizeError(f"no config file {config_path}; name the block with --block")
    return Target(realm, block, realm if realm.isdigit() else None)


def _loopback_http(uri: str) -> bool:
    parsed = urlparse(uri)
    return parsed.scheme == "http" and parsed.hostname in LOOPBACK_HOSTS and bool(parsed.port)


def _parse_callback(query: dict[str, list[str]], state: str) -> Callback | None:
    """None for a callback that is not ours (state mismatch); else code/realm or the error."""
    if query.get("state", [""])[0] != state:
        return None
    if "error" in query:
        return Callback(error=query["error"][0])
    return Callback(code=query.get("code", [None])[0], realm_id=query.get("realmId", [None])[0])


class _CallbackServer(ThreadingHTTPServer):
    """Serves the redirect URI on 127.0.0.1 until a callback with our state arrives."""

    daemon_threads = True

    def __init__(self, port: int, path: str, state: str) -> None:
        self.callback_path = path
        self.state = state
        self.result: Callback | None = None
        self.done = threading.Event()
        super().__init__(("127.0.0.1", port), _CallbackHandler)


class _CallbackHandler(BaseHTTPRequestHandler):
    server: _CallbackServer

    def do_GET(self) -> None:
        url = urlparse(self.path)
        if url.path != self.server.callback_path:
            self._answer(404, "Not found.")
            return
        result = _parse_callback(parse_qs(url.query), self.server.state)
        if result is None or self.server.done.is_set():
            self._answer(400, "This authorization response is not the one this command asked for.")
            return
        self.server.result = result
        self.server.done.set()
        if result.error:
            self._answer(200, f"Intuit answered {result.error}. Go back to the terminal.")
        else:
            self._answer(200, "QuickBooks is connected. You can close this window.")

    def _answer(self, status: int, text: str) -> None:
        body = f"<!doctype html><title>revbridge</title><p>{text}</p>".encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the request line carries the authorization code."""


def _consent_local(
    url: str, redirect_uri: str, state: str, open_browser: Out, out: Out, timeout: float
) -> Callback:
    parsed = urlparse(redirect_uri)
    try:
        server = _CallbackServer(parsed.port or DEFAULT_PORT, parsed.path or "/", state)
    except OSError as exc:
        raise AuthorizeError(
            f"cannot listen on 127.0.0.1:{parsed.port} ({exc.strerror}); pick another --port "
            "(and register http://localhost:PORT/callback for the app)"
        ) from None
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        out(f"Waiting for Intuit's answer on {redirect_uri} (up to {timeout:.0f} s).")
        out(f"Sign in to QuickBooks and click Connect at:\n\n    {url}\n")
        open_browser(url)
        if not server.done.wait(timeout):
            raise AuthorizeError(f"no answer from Intuit within {timeout:.0f} s; run it again")
    finally:
        server.shutdown()
        server.server_close()
    assert server.result is not None
    return server.result


def _consent_pasted(url: str, state: str, out: Out, read_line: Callable[[], str]) -> Callback:
    out(f"Sign in to QuickBooks and click Connect at:\n\n    {url}\n")
    out("Then paste here the full address the browser was sent to (it has code= and realmId=):")
    result = _parse_callback(parse_qs(urlparse(read_line().strip()).query), state)
    if result is None:
        raise AuthorizeError("that address does not carry this authorization's state; run again")
    return result


def authorize(
    realm: str,
    *,
    config_path: str = DEFAULT_CONFIG,
    block: str | None = None,
    port: int | None = None,
    open_browser: Out | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    out: Out = print,
    read_line: Callable[[], str] = input,
) -> str:
    """Run the consent for one realm and store its tokens; returns the connected company's
    name. Raises AuthorizeError with what to do when it cannot."""
    target = resolve(realm, config_path, block)
    try:
        connection = load_block(QuickBooksConnection, target.block)
    except ValueError:
        raise AuthorizeError(
            f"no QuickBooks Connection block {target.block!r}: create it first (Prefect UI → "
            "Blocks) with the Intuit app's client id and secret, the environment and the realm "
            "id; any placeholder refresh token will do"
        ) from None
    # --port, else the app's registered URI: served here when loopback http, else pasted back.
    redirect_uri = (
        f"http://localhost:{port}{CALLBACK_PATH}" if port is not None else connection.redirect_uri
    )
    auth = AuthClient(
        client_id=connection.client_id,
        client_secret=connection.client_secret.get_secret_value(),
        redirect_uri=redirect_uri,
        environment=connection.environment,
    )
    state = secrets.token_urlsafe(32)
    url = auth.get_authorization_url([Scopes.ACCOUNTING], state_token=state)
    if _loopback_http(redirect_uri):
        result = _consent_local(url, redirect_uri, state, open_browser or _no_browser, out, timeout)
    else:
        result = _consent_pasted(url, state, out, read_line)
    if result.error or not result.code or not result.realm_id:
        reason = result.error or "no authorization code"
        raise AuthorizeError(f"Intuit did not authorize the app ({reason}); nothing was changed")

    try:
        auth.get_bearer_token(result.code, realm_id=result.realm_id)
    except AuthClientError as exc:
        raise AuthorizeError(
            f"Intuit refused the authorization code (HTTP {exc.status_code}); run it again"
        ) from None
    if target.realm_id is not None and result.realm_id != target.realm_id:
        # a failed revoke leaves a stray connection, which the user can disconnect in QuickBooks
        with contextlib.suppress(AuthClientError):
            auth.revoke(token=auth.refresh_token)
        raise AuthorizeError(
            f"the consent connected company {result.realm_id}, but {target.label} is "
            f"{target.realm_id}; run it again and pick that company (nothing was saved)"
        )

    connection.store_authorization(
        target.block,
        result.realm_id,
        str(auth.refresh_token),
        auth.x_refresh_token_expires_in,
        redirect_uri,
    )
    try:
        info = qbo_call(connection, "GET", f"companyinfo/{result.realm_id}")
    except Exception as exc:
        raise AuthorizeError(
            f"the tokens are stored in block {target.block!r}, but reading the company failed: "
            f"{type(exc).__name__}: {exc}"
        ) from None
    company = str(info.get("CompanyInfo", {}).get("CompanyName", ""))
    expires = connection.refresh_token_expires_at
    out(
        f"Connected QuickBooks company {company!r} (realm {result.realm_id}); its tokens are "
        f"stored in block {target.block!r}"
        + (f"; the refresh token is valid until {expires:%Y-%m-%d} UTC." if expires else ".")
    )
    out("Next: python -m deployments.doctor to check every connection.")
    return company


def _no_browser(url: str) -> None:
    """--no-browser: the URL is printed already."""


def _web_browser(url: str) -> None:
    webbrowser.open(url)


def main(argv: Iterable[str] | None = None, open_browser: Out | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m deployments.authorize",
        description="Connect a QuickBooks company: Intuit's OAuth consent, tokens into its block.",
    )
    parser.add_argument("--realm", required=True, help="realm key of the config, or a realm id")
    parser.add_argument("--config", default=DEFAULT_CONFIG, help="revbridge config file")
    parser.add_argument("--block", help="QuickBooks Connection block (default: the realm's)")
    parser.add_argument("--port", type=int, help="serve http://localhost:PORT/callback")
    parser.add_argument("--no-browser", action="store_true", help="print the URL only")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, help="seconds to wait")
    args = parser.parse_args(list(argv) if argv is not None else None)
    browser = _no_browser if args.no_browser else (open_browser or _web_browser)
    try:
        authorize(
            args.realm,
            config_path=args.config,
            block=args.block,
            port=args.port,
            open_browser=browser,
            timeout=args.timeout,
        )
    except AuthorizeError as exc:
        print(f"authorize: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
