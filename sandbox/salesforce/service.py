"""The Salesforce emulator as an ``EmulatedService``: routes, seeds, info and error rendering."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from sandbox.core.clock import Clock
from sandbox.core.service import EmulatedService
from sandbox.demo_company import ORG_ID
from sandbox.salesforce import seed
from sandbox.salesforce.bulk import generate_json
from sandbox.salesforce.exceptions import NOT_FOUND, SESSION_EXPIRED, default_body, sf_json
from sandbox.salesforce.models import SalesforceBackend
from sandbox.salesforce.outbound import OutboundDispatcher, outbound_routes
from sandbox.salesforce.responses import SalesforceApi, method_not_allowed
from sandbox.salesforce.urls import classify

API_VERSION = "62.0"
ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


class SalesforceEmulator(EmulatedService):
    """Salesforce REST (``/services/data``), OAuth 2.0 token and partner SOAP login for one org.

    ``backend`` (a ``SalesforceBackend``) holds the org; tests may read and change it directly.
    """

    name = "salesforce"
    scheme = "https"

    def __init__(self, clock: Clock | None = None, profile: str = "demo") -> None:
        clock = clock or Clock()
        self.backend = SalesforceBackend(clock)
        self.outbound = OutboundDispatcher(
            self.backend.record,
            lambda: self.base_url,
            session=self._outbound_session,
            now=clock.now,
        )
        self.backend.on_commit = self.outbound.on_commit
        self.api = SalesforceApi(self.backend, self._instance_url)
        super().__init__(clock, profile)

    def _instance_url(self, request: Request) -> str:
        if self.base_url:
            return self.base_url
        return f"{request.url.scheme}://{request.url.netloc}"

    # ---- EmulatedService ---------------------------------------------------------------------
    def load(self, profile: str) -> None:
        self.outbound.reset()
        seed.load(self.backend, profile)

    def close(self) -> None:
        """Stop the outbound message sender (call when the emulator is done for good)."""
        self.outbound.close()

    def _outbound_session(self) -> str:
        creds = self.backend.credentials
        password = creds.password + creds.security_token
        return self.backend.soap_login(creds.username, password).token

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/services/data{rest:path}", self.api.data, methods=ALL_METHODS),
            Route("/services/oauth2/token", self.api.token, methods=["POST"]),
            Route("/services/oauth2/revoke", self.api.revoke, methods=["POST"]),
            Route("/services/Soap/u/{version}", self.api.soap_login, methods=["POST"]),
            Route("/_sandbox/limits", self._limits, methods=["GET", "POST"]),
            Route("/_sandbox/expire-sessions", self._expire_sessions, methods=["POST"]),
            Route("/_sandbox/generate", self._generate, methods=["POST"]),
            *outbound_routes(self.outbound),
        ]

    def info(self, base_url: str, ca_bundle: str | None) -> dict[str, Any]:
        creds = self.backend.credentials
        return {
            "instance_url": base_url,
            "token_url": f"{base_url}/services/oauth2/token",
            "api_version": API_VERSION,
            "client_id": creds.client_id,
            "client_secret": creds.client_secret,
            "username": creds.username,
            "password": creds.password,
            "security_token": creds.security_token,
            "ca_bundle": ca_bundle,
        }

    def error_response(self, status: int, body: Any, headers: dict[str, str]) -> Response:
        return sf_json(body if body is not None else default_body(status), status, headers)

    def unauthorized_response(self) -> Response:
        return sf_json(SESSION_EXPIRED, 401)

    def not_found_response(self, request: Request, status: int) -> Response:
        if status == 405:  # the OAuth and SOAP endpoints answer POST only
            allowed = ["POST"] if request.url.path.startswith("/services/") else []
            return method_not_allowed(request.method, allowed)
        return sf_json(NOT_FOUND, 404)

    def classify(self, method: str, path: str) -> tuple[str, str | None]:
        return classify(method, path), ORG_ID

    # ---- extra control endpoints (under /_sandbox/) ------------------------------------------
    async def _limits(self, request: Request) -> Response:
        """``GET|POST /_sandbox/limits`` ``{"daily_api_requests": N, "used": M}``."""
        if request.method == "POST":
            body = await request.json() if (await request.body()).strip() else {}
            if "daily_api_requests" in body:
                self.backend.daily_api_limit = int(body["daily_api_requests"])
            if "used" in body:
                self.backend.set_api_used(int(body["used"]))
        return JSONResponse(
            {
                "daily_api_requests": self.backend.daily_api_limit,
                "used": self.backend.api_used,
            }
        )

    async def _generate(self, request: Request) -> Response:
        """``POST /_sandbox/generate``: Closed Won volume (see sandbox/salesforce/bulk.py)."""
        try:
            return JSONResponse(generate_json(self.backend, await request.json()))
        except ValueError as exc:  # pydantic's ValidationError is one
            return JSONResponse({"error": str(exc)}, status_code=400)

    async def _expire_sessions(self, _: Request) -> Response:
        self.backend.expire_sessions()
        return JSONResponse({"ok": True})
