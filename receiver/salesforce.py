"""Salesforce pushes (Outbound Messages, Flow HTTP callouts) → ``revbridge.salesforce.closed_won``.

Two doors, each answered at once, neither calling any API:

- ``POST /salesforce/outbound?token=<secret>``: a workflow Outbound Message (SOAP, namespace
  ``http://soap.sforce.com/2005/09/outbound``). It cannot carry custom headers, so it is
  authenticated twice: the shared secret in the endpoint URL's query (missing or wrong → 401)
  and the message's ``OrganizationId`` against the configured org (another org → 403). The
  answer is the SOAP ``notificationsResponse`` with ``<Ack>true</Ack>``; without it Salesforce
  retries for 24 hours.
- ``POST /salesforce/events``: a JSON body ``{"opportunityId": "006…", "stage": "Closed Won"}``
  (or ``{"opportunityIds": [...]}``) from a Flow HTTP callout through a Named Credential, which
  sends either ``Authorization: Bearer <secret>`` or ``X-Revbridge-Signature: sha256=<hex
  HMAC-SHA256(secret, raw body)>``. Neither → 401; answer ``{"received": n, "emitted": m}``.

Every comparison is constant-time. A body over the size limit or one that is not a message →
400; a rejected push emits nothing. Each new Opportunity becomes one Prefect event with resource
``salesforce.opportunity.<18-character Id>`` and payload ``{"opportunity_ids": [Id], "stage",
"source", "notification_id"}`` (a deployment trigger renders ``{{ event.payload.opportunity_ids
}}`` as the flow's ``opportunity_ids``). Outbound Messages are at-least-once: a notification Id
already seen is acknowledged and dropped, and the Prefect event id is derived from it, so
Prefect's own de-duplication catches what a restarted receiver forgot. Callouts have no delivery
id: each is emitted (the flow's exactly-once guards make a repeat harmless).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, cast
from xml.etree import ElementTree

from prefect.events import emit_event
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from receiver.qbo import SeenChanges
from revbridge.ids import is_salesforce_id, to_18

EVENT_NAME = "revbridge.salesforce.closed_won"
OUTBOUND_PATH = "/salesforce/outbound"
EVENTS_PATH = "/salesforce/events"
OUTBOUND_NS = "http://soap.sforce.com/2005/09/outbound"
SOAPENV_NS = "http://schemas.xmlsoap.org/soap/envelope/"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
SOBJECT_NS = "urn:sobject.enterprise.soap.sforce.com"
SIGNATURE_HEADER = "x-revbridge-signature"
MAX_BODY = 1_000_000  # bytes; 100 notifications of a few fields are well under 100 KB
MAX_CALLOUT_IDS = 200
OPPORTUNITY_PREFIX = "006"
EVENT_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://revbridge.invalid/salesforce-push")

ORG_ENV = "REVBRIDGE_SALESFORCE_ORG_ID"
OUTBOUND_TOKEN_ENV = "REVBRIDGE_SALESFORCE_OUTBOUND_TOKEN"
CALLOUT_SECRET_ENV = "REVBRIDGE_SALESFORCE_CALLOUT_SECRET"

ACK = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    f'<soapenv:Envelope xmlns:soapenv="{SOAPENV_NS}"><soapenv:Body>'
    f'<notificationsResponse xmlns="{OUTBOUND_NS}"><Ack>true</Ack></notificationsResponse>'
    "</soapenv:Body></soapenv:Envelope>"
)

logger = logging.getLogger("revbridge.receiver")
Emit = Callable[..., Any]


class MalformedPush(ValueError):
    """The body is not an Outbound Message / callout (the message says what is wrong)."""


@dataclass(frozen=True)
class Push:
    """One Opportunity a push named."""

    opportunity_id: str  # 18 characters
    stage: str | None
    source: str  # "outbound-message" | "flow-callout"
    notification_id: str | None = None

    @property
    def key(self) -> str | None:
        return f"om:{self.notification_id}" if self.notification_id else None

    def emit_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "event": EVENT_NAME,
            "resource": {
                "prefect.resource.id": f"salesforce.opportunity.{self.opportunity_id}",
                "prefect.resource.name": f"Salesforce Opportunity {self.opportunity_id}",
            },
            "payload": {
                "opportunity_ids": [self.opportunity_id],
                "stage": self.stage,
                "source": self.source,
                "notification_id": self.notification_id,
            },
        }
        if self.key:
            kwargs["id"] = uuid.uuid5(EVENT_NAMESPACE, self.key)
        return kwargs


@dataclass(frozen=True)
class OutboundMessage:
    organization_id: str
    pushes: list[Push]


def same_org(given: str, configured: str) -> bool:
    """Whether two org Ids (15 or 18 characters) name the same org; constant-time."""
    return hmac.compare_digest(given.strip()[:15].encode(), configured.strip()[:15].encode())


def _opportunity_id(value: Any, where: str) -> str:
    if not isinstance(value, str) or not is_salesforce_id(value.strip()):
        raise MalformedPush(f"{where}: {value!r} is not a Salesforce Id")
    record_id = to_18(value.strip())
    if not record_id.startswith(OPPORTUNITY_PREFIX):
        raise MalformedPush(f"{where}: {record_id} is not an Opportunity Id")
    return record_id


def parse_outbound(body: bytes) -> OutboundMessage:
    """The notifications of an Outbound Message; `MalformedPush` when it is not one. DTDs are
    refused outright (no entity tricks)."""
    if b"<!DOCTYPE" in body.upper() or b"<!ENTITY" in body.upper():
        raise MalformedPush("document type declarations are not accepted")
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError as exc:
        raise MalformedPush(f"body is not XML: {exc}") from None
    notifications = root.find(f"{{{SOAPENV_NS}}}Body/{{{OUTBOUND_NS}}}notifications")
    if root.tag != f"{{{SOAPENV_NS}}}Envelope" or notifications is None:
        raise MalformedPush("expected a SOAP Envelope with an outbound notifications body")
    org = (notifications.findtext(f"{{{OUTBOUND_NS}}}OrganizationId") or "").strip()
    if not org:
        raise MalformedPush("OrganizationId is missing")
    pushes: list[Push] = []
    for n, item in enumerate(notifications.iter(f"{{{OUTBOUND_NS}}}Notification")):
        where = f"Notification {n}"
        notification_id = (item.findtext(f"{{{OUTBOUND_NS}}}Id") or "").strip()
        sobject = item.find(f"{{{OUTBOUND_NS}}}sObject")
        if not notification_id or sobject is None:
            raise MalformedPush(f"{where}: Id or sObject is missing")
        kind = sobject.get(f"{{{XSI_NS}}}type", "")
        if kind.split(":")[-1] != "Opportunity":
            raise MalformedPush(f"{where}: sObject is {kind or 'untyped'}, not sf:Opportunity")
        record_id = _opportunity_id(sobject.findtext(f"{{{SOBJECT_NS}}}Id"), where)
        stage = sobject.findtext(f"{{{SOBJECT_NS}}}StageName")
        pushes.append(Push(record_id, stage, "outbound-message", notification_id))
    if not pushes:
        raise MalformedPush("the message has no Notification")
    return OutboundMessage(org, pushes)


def parse_callout(body: bytes) -> list[Push]:
    """The Opportunities of a Flow HTTP callout body; `MalformedPush` when it is not one."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedPush(f"body is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise MalformedPush("expected a JSON object")
    stage = data.get("stage")
    if stage is not None and not isinstance(stage, str):
        raise MalformedPush("'stage' is not a string")
    if "opportunityIds" in data:
        ids = data["opportunityIds"]
        if not isinstance(ids, list) or not ids or len(ids) > MAX_CALLOUT_IDS:
            raise MalformedPush(f"'opportunityIds' must be a list of 1 to {MAX_CALLOUT_IDS} Ids")
    elif "opportunityId" in data:
        ids = [data["opportunityId"]]
    else:
        raise MalformedPush("'opportunityId' is missing")
    unique = dict.fromkeys(_opportunity_id(i, f"opportunity {n}") for n, i in enumerate(ids))
    return [Push(i, stage, "flow-callout") for i in unique]


def callout_authorized(body: bytes, headers: Any, secret: str) -> bool:
    """A bearer secret or an HMAC-SHA256 signature of the raw body; constant-time."""
    bearer = headers.get("authorization") or ""
    if bearer[:7].lower() == "bearer " and hmac.compare_digest(
        bearer[7:].strip().encode(), secret.encode()
    ):
        return True
    signature = (headers.get(SIGNATURE_HEADER) or "").strip()
    if signature.lower().startswith("sha256="):
        expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected.encode(), signature[7:].strip().lower().encode())
    return False


def salesforce_routes(
    org_id: str,
    outbound_token: str,
    callout_secret: str,
    emit: Emit = emit_event,
    *,
    max_body: int = MAX_BODY,
    remember: int = 10_000,
) -> list[Route]:
    """The two push routes. ``emit`` is called like `prefect.events.emit_event`; tests pass a
    recorder. ``remember``: how many notification Ids the replay LRU keeps."""
    if not is_salesforce_id(org_id.strip()) or not org_id.startswith("00D"):
        raise ValueError(f"not a Salesforce org Id: {org_id!r}")
    if not outbound_token or not callout_secret:
        raise ValueError("the Salesforce push secrets must not be empty")
    seen = SeenChanges(remember)

    async def read(request: Request) -> bytes | None:
        declared = request.headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > max_body):
            return None
        body = bytearray()
        async for part in request.stream():
            body += part
            if len(body) > max_body:
                return None
        return bytes(body)

    def emit_all(pushes: list[Push]) -> int | None:
        """Emit the pushes not seen before: how many, or None when emitting failed (the unsent
        ones are forgotten, so the retry brings them again)."""
        fresh = [p for p in pushes if p.key is None or seen.claim(p.key)]
        for n, push in enumerate(fresh):
            try:
                emit(**push.emit_kwargs())
            except Exception:
                logger.exception("emitting %s failed; asking Salesforce to retry", push)
                seen.forget(p.key for p in fresh[n:] if p.key)
                return None
        return len(fresh)

    async def outbound(request: Request) -> Response:
        token = request.query_params.get("token") or ""
        if not hmac.compare_digest(token.encode(), outbound_token.encode()):
            logger.warning("Salesforce outbound message refused: bad or missing token")
            return _soap_fault(401, "invalid token")
        body = await read(request)
        if body is None:
            return _soap_fault(400, f"body larger than {max_body} bytes")
        try:
            message = parse_outbound(body)
        except MalformedPush as exc:
            logger.warning("Salesforce outbound message refused: %s", exc)
            return _soap_fault(400, str(exc))
        if not same_org(message.organization_id, org_id):
            logger.warning("Salesforce outbound message refused: another org")
            return _soap_fault(403, "unknown OrganizationId")
        emitted = emit_all(message.pushes)
        if emitted is None:
            return _soap_fault(500, "could not queue the notifications; retry later")
        logger.info(
            "Salesforce outbound message: %s notification(s), %s new event(s)",
            len(message.pushes),
            emitted,
        )
        return Response(ACK, media_type="text/xml; charset=utf-8")

    async def events(request: Request) -> Response:
        body = await read(request)
        if body is None:
            return JSONResponse({"error": f"body larger than {max_body} bytes"}, 400)
        if not callout_authorized(body, request.headers, callout_secret):
            logger.warning("Salesforce callout refused: bad or missing credentials")
            return JSONResponse({"error": "invalid credentials"}, 401)
        try:
            pushes = parse_callout(body)
        except MalformedPush as exc:
            logger.warning("Salesforce callout refused: %s", exc)
            return JSONResponse({"error": str(exc)}, 400)
        emitted = emit_all(pushes)
        if emitted is None:
            return JSONResponse({"error": "could not queue the event; retry later"}, 500)
        return JSONResponse({"received": len(pushes), "emitted": emitted})

    return [
        Route(OUTBOUND_PATH, outbound, methods=["POST"]),
        Route(EVENTS_PATH, events, methods=["POST"]),
    ]


def _soap_fault(status: int, message: str) -> Response:
    code = "soapenv:Client" if status < 500 else "soapenv:Server"
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<soapenv:Envelope xmlns:soapenv="{SOAPENV_NS}"><soapenv:Body><soapenv:Fault>'
        f"<faultcode>{code}</faultcode><faultstring>{_xml_text(message)}</faultstring>"
        "</soapenv:Fault></soapenv:Body></soapenv:Envelope>"
    )
    return Response(body, status_code=status, media_type="text/xml; charset=utf-8")


def _xml_text(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _secret(env: str) -> str:
    """An environment variable, else the Prefect Secret block named by ``<env>_SECRET`` (by
    default the variable's name in lower case with dashes)."""
    value = os.environ.get(env)
    if value:
        return value
    from prefect.blocks.system import Secret

    default = env.lower().removeprefix("revbridge_").replace("_", "-")
    secret = cast(Secret, Secret.load(os.environ.get(f"{env}_SECRET", default)))
    return str(secret.get())


def routes_from_environment(emit: Emit = emit_event) -> Iterator[Route]:
    """The push routes as deployed: org Id from ``REVBRIDGE_SALESFORCE_ORG_ID``, the outbound
    token and callout secret from ``REVBRIDGE_SALESFORCE_OUTBOUND_TOKEN`` /
    ``REVBRIDGE_SALESFORCE_CALLOUT_SECRET`` or Prefect Secret blocks
    (``salesforce-outbound-token``, ``salesforce-callout-secret``). Nothing when no org Id is
    set: the receiver then serves QuickBooks only."""
    org_id = os.environ.get(ORG_ENV)
    if not org_id:
        return iter(())
    return iter(
        salesforce_routes(org_id, _secret(OUTBOUND_TOKEN_ENV), _secret(CALLOUT_SECRET_ENV), emit)
    )
