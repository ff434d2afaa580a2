"""QuickBooks Online emulator: the v3 accounting API, Intuit's OAuth server and webhooks.

``QuickBooksEmulator`` wires the pieces: the backend (``models``) behind thin handlers
(``responses``), the token store and OAuth routes (``oauth``), webhook delivery (``webhooks``)
and Intuit's throttles (``throttle``). See sandbox/README.md for the control endpoints.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Scope

from sandbox.core.clock import Clock
from sandbox.core.service import EmulatedService
from sandbox.quickbooks import exceptions as exc
from sandbox.quickbooks import oauth
from sandbox.quickbooks.models import QuickBooksBackend, dumps
from sandbox.quickbooks.oauth import (
    CLIENT_ID,
    CLIENT_SECRET,
    WEBHOOK_VERIFIER_TOKEN,
    TokenStore,
    auth_fault,
    oauth_routes,
)
from sandbox.quickbooks.responses import JSON_TYPE, QuickBooksResponses, intuit_headers
from sandbox.quickbooks.throttle import Limits, Throttle, ThrottleMiddleware, limits_routes
from sandbox.quickbooks.webhooks import WebhookDispatcher, webhook_routes

__all__ = ["QuickBooksEmulator"]

API_PREFIX = "/v3/company/"
# Non-API paths, by the label they are counted under in /_sandbox/calls.
AUTH_ENDPOINTS = {
    oauth.TOKEN_PATH: "token",
    oauth.REVOKE_PATH: "revoke",
    oauth.AUTHORIZE_PATH: "authorize",
    oauth.USERINFO_PATH: "userinfo",
    oauth.JWKS_PATH: "jwks",
    **{path: "discovery" for path in oauth.DISCOVERY_PATHS},
}
# /v3 resources counted under their own name (the rest: the entity, lower-case).
RESOURCES = {"query", "batch", "cdc", "upload", "companyinfo", "preferences", "exchangerate"}


def realm_of(path: str) -> str | None:
    """The realm id of a ``/v3/company/{realmId}/...`` path."""
    if not path.startswith(API_PREFIX):
        return None
    realm_id = path[len(API_PREFIX) :].split("/", 1)[0]
    return realm_id or None


class QuickBooksEmulator(EmulatedService):
    name = "quickbooks"
    scheme = "http"

    def __init__(self, clock: Clock | None = None, profile: str = "demo") -> None:
        clock = clock or Clock()
        self.tokens = TokenStore(clock)
        self.webhooks = WebhookDispatcher(clock, WEBHOOK_VERIFIER_TOKEN)
        self.backend = QuickBooksBackend(
            clock, notify=self.webhooks.notify, base_url=lambda: self.base_url
        )
        self.throttle = Throttle()
        self.responses = QuickBooksResponses(self.backend, self.tokens, clock)
        super().__init__(clock=clock, profile=profile)

    # ---- EmulatedService ---------------------------------------------------------------------
    def routes(self) -> list[BaseRoute]:
        return [
            *oauth_routes(self.tokens, lambda: self.base_url),
            *webhook_routes(self.webhooks),
            *limits_routes(self.throttle, self._limits_changed),
            *self.responses.routes(),
        ]

    def load(self, profile: str) -> None:
        self.backend.load(profile)
        self.tokens.load(self.backend.realm_ids())
        self.webhooks.reset()
        self.throttle.reset()
        self._limits_changed(self.throttle.limits)

    def build_app(self) -> ASGIApp:
        return ThrottleMiddleware(super().build_app(), self.throttle, realm_of, self._throttled)

    def info(self, base_url: str, ca_bundle: str | None) -> dict[str, Any]:
        realms = {
            company.info.key: {
                "realm_id": realm_id,
                "refresh_token": self.tokens.initial_refresh_token(realm_id),
            }
            for realm_id, company in self.backend.companies.items()
        }
        return {
            "discovery_url": base_url + oauth.DISCOVERY_PATHS[0],
            "api_base": base_url + "/v3",
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "webhook_verifier_token": WEBHOOK_VERIFIER_TOKEN,
            "realms": realms,
        }

    def error_response(self, status: int, body: Any, headers: dict[str, str]) -> Response:
        """An injected fault: the given body, or Intuit's own for the status."""
        all_headers = {**intuit_headers(), **headers}
        if body is None:
            if status in (401, 403):
                code, auth_body = auth_fault(
                    "expired" if status == 401 else "forbidden", now=self.clock.now()
                )
                return JSONResponse(auth_body, status_code=code, headers=all_headers)
            fault = {
                429: exc.throttled,
                503: exc.service_unavailable,
                404: lambda: exc.unsupported_operation("requested"),
            }.get(status)
            if fault is not None:
                body = fault().body(self.clock.now())
            elif status >= 500:
                body = exc.system_fault(status).body(self.clock.now())
            else:
                body = exc.business_validation("Injected fault").body(self.clock.now())
        if isinstance(body, (dict, list)):
            return Response(dumps(body), status, media_type=JSON_TYPE, headers=all_headers)
        return Response(str(body), status, media_type="text/html", headers=all_headers)

    def unauthorized_response(self) -> Response:
        status, body = auth_fault("expired", now=self.clock.now())
        return JSONResponse(body, status_code=status, headers=intuit_headers())

    def not_found_response(self, request: Request, status: int) -> Response:
        fault = exc.unknown_resource(request.url.path, str(request.url), status)
        return Response(
            dumps(fault.body(self.clock.now())),
            fault.status,
            media_type=JSON_TYPE,
            headers=intuit_headers(),
        )

    def classify(self, method: str, path: str) -> tuple[str, str | None]:
        realm_id = realm_of(path)
        if realm_id is None:
            return AUTH_ENDPOINTS.get(path.rstrip("/"), path), None
        rest = [p for p in path[len(API_PREFIX) + len(realm_id) :].split("/") if p]
        if not rest:
            return "company", realm_id
        head = rest[0].lower()
        if head in RESOURCES:
            return head, realm_id
        if len(rest) >= 3 and rest[2].lower() in ("send", "pdf"):
            return f"{head}/{rest[2].lower()}", realm_id
        return head, realm_id

    # ---- lifecycle ---------------------------------------------------------------------------
    def close(self) -> None:
        """Stop webhook delivery threads (call when the emulator is done for good)."""
        self.webhooks.close()

    # ---- internals ---------------------------------------------------------------------------
    def _limits_changed(self, limits: Limits) -> None:
        self.backend.upload_max_bytes = limits.upload_max_bytes

    def _throttled(self, scope: Scope) -> Response:
        endpoint, tenant = self.classify(scope["method"], scope["path"])
        self.calls.record(scope["method"], endpoint, tenant)
        fault = exc.throttled()
        return Response(
            dumps(fault.body(self.clock.now())),
            fault.status,
            media_type=JSON_TYPE,
            headers=intuit_headers(),
        )
