"""Salesforce Outbound Messaging: a workflow rule on an object sends SOAP notifications to the
endpoint registered with ``POST /_sandbox/outbound``.

As Salesforce does (SOAP API guide, "Understanding Notifications"):

- the rule fires when a record is created meeting its criteria, and when an edit makes it meet
  them ("created, and any time it's edited to subsequently meet criteria"); here the criteria
  are ``field`` equals ``value`` (by default ``StageName`` equals ``Closed Won``) and fire after
  the write commits: a rolled-back allOrNone call fires nothing;
- notifications are queued and sent by a background sender, up to 100 per SOAP message
  (``notifications`` of namespace ``http://soap.sforce.com/2005/09/outbound``), each with its own
  ``04l`` notification Id and the record's fields AS THEY ARE WHEN SENT (not when queued);
- a message is delivered when the listener answers 2xx with
  ``<notificationsResponse><Ack>true</Ack></notificationsResponse>``; anything else (an error
  status, no Ack, ``Ack`` false, a timeout) is retried at exponentially growing intervals, capped
  at two hours, until the message is 24 hours old, then dropped;
- messages are retried independently of their order, so they can arrive out of order, and a
  message may be delivered more than once (``redeliver`` sends every acknowledged message once
  more, for listeners' de-duplication tests).

Delays and the 24 h expiry run on the wall clock, multiplied by the registration's
``delay_scale`` (tests use ~0.001); the first retry waits ``FIRST_RETRY`` seconds, an emulator
choice (Salesforce documents only "increases exponentially").
"""

from __future__ import annotations

import secrets
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from xml.etree import ElementTree
from xml.sax.saxutils import escape, quoteattr

import httpx
from pydantic import (
    Field,
    field_validator,
    model_validator,
)
from starlette.routing import BaseRoute

from sandbox.core.callbacks import Attempt, CallbackRegistration, post_timed, registration_route
from sandbox.demo_company import ORG_ID, ORG_ID_15, salesforce_checksum
from sandbox.salesforce.schema import SCHEMA

OUTBOUND_NS = "http://soap.sforce.com/2005/09/outbound"
SOAPENV_NS = "http://schemas.xmlsoap.org/soap/envelope/"
SOBJECT_NS = "urn:sobject.enterprise.soap.sforce.com"
MAX_NOTIFICATIONS = 100  # per SOAP message
FIRST_RETRY = 15.0  # seconds; doubled after every failure
MAX_RETRY = 7200.0  # two hours
MAX_AGE = 86_400.0  # a message older than 24 h is dropped
ACK_TIMEOUT = 10.0  # seconds the sender waits for the listener's answer (emulator default)
BATCH_WINDOW = 0.05  # seconds: notifications queued closer together share one message
MAX_LOGGED_MESSAGES = 1000
DEFAULT_FIELDS = ("Id", "Name", "StageName", "Amount", "CloseDate", "AccountId")
ACTION_ID = "04k5g000000Rb7Q"
_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

Change = tuple[str, dict[str, Any] | None, dict[str, Any] | None]  # sobject, before, after
RecordReader = Callable[[str], Mapping[str, Any] | None]
SessionMaker = Callable[[], str]


def retry_delay(failures: int, delay_scale: float) -> float:
    """Seconds to wait after the ``failures``-th failed attempt of one message."""
    return min(FIRST_RETRY * 2 ** (failures - 1), MAX_RETRY) * delay_scale


def _with_checksum(id15: str) -> str:
    return id15 + salesforce_checksum(id15)


def _notification_id(n: int) -> str:
    digits = ""
    for _ in range(10):
        digits = _BASE62[n % 62] + digits
        n //= 62
    return _with_checksum(f"04l5g{digits}")


class Registration(CallbackRegistration):
    """The body of ``POST /_sandbox/outbound``: one outbound message and its workflow rule."""

    object: str = "Opportunity"
    field: str = Field(default="StageName", description="the rule: this field ...")
    value: str = Field(default="Closed Won", description="... equals this value")
    fields: list[str] = Field(default_factory=lambda: list(DEFAULT_FIELDS))
    include_session_id: bool = False
    delay_scale: float = Field(default=1.0, ge=0, description="multiplies retry delays and age")
    timeout: float = Field(default=ACK_TIMEOUT, gt=0, le=120)
    redeliver: bool = Field(default=False, description="send every acknowledged message again")

    @field_validator("object")
    @classmethod
    def _known_object(cls, v: str) -> str:
        if SCHEMA.get(v) is None:
            raise ValueError(f"unknown object {v!r}")
        return SCHEMA[v].name

    @model_validator(mode="after")
    def _known_fields(self) -> Registration:
        obj = SCHEMA[self.object]
        found = [obj.field(name) for name in (self.field, *self.fields)]
        unknown = [n for n, f in zip((self.field, *self.fields), found, strict=True) if f is None]
        if unknown:
            raise ValueError(f"no such field on {obj.name}: {', '.join(unknown)}")
        names = [f.name for f in found if f is not None]
        self.field = names[0]
        # Salesforce always sends the Id, first
        self.fields = ["Id", *dict.fromkeys(n for n in names[1:] if n != "Id")]
        return self

    def matches(self, record: Mapping[str, Any] | None) -> bool:
        return (
            record is not None
            and not record.get("IsDeleted")
            and _text(record.get(self.field)) == self.value
        )


@dataclass
class Notification:
    id: str
    record_id: str


@dataclass
class Message:
    id: str
    notifications: list[Notification]
    created: float  # time.monotonic()
    attempts: list[Attempt] = field(default_factory=list)
    next_attempt: float = 0.0
    acknowledged: bool = False
    expired: bool = False
    redelivered: bool = False

    def snapshot(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "notification_ids": [n.id for n in self.notifications],
            "record_ids": [n.record_id for n in self.notifications],
            "attempts": len(self.attempts),
            "status_codes": [a.status for a in self.attempts],
            "errors": [a.error for a in self.attempts],
            "acknowledged": self.acknowledged,
            "expired": self.expired,
        }


class OutboundDispatcher:
    """Evaluates the registered rule on committed changes and delivers the notifications."""

    def __init__(
        self,
        read: RecordReader,
        base_url: Callable[[], str],
        *,
        session: SessionMaker | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._read = read
        self._base_url = base_url
        self._session = session
        self._now = now
        self._cond = threading.Condition(threading.RLock())
        self._registration: Registration | None = None
        self._queued: list[tuple[Notification, float]] = []
        self._messages: list[Message] = []  # not yet acknowledged nor expired
        self._log: list[Message] = []
        # notification Ids are unique for good (a listener remembers them): never reset
        self._counter = secrets.randbelow(62**8)
        self._dropped = 0
        self._busy = False
        self._worker: threading.Thread | None = None
        self._generation = 0
        self._closed = False

    # ---- the org's side ------------------------------------------------------------------------
    def on_commit(self, changes: list[Change]) -> None:
        """Called by the backend after a write committed: queue a notification for every record
        of the rule's object that now meets the criteria and did not before."""
        with self._cond:
            registration = self._registration
            if registration is None or self._closed:
                return
            fired = [
                after["Id"]
                for sobject, before, after in changes
                if sobject == registration.object
                and after is not None
                and registration.matches(after)
                and not registration.matches(before)
            ]
            for record_id in fired:
                self._counter += 1
                notification = Notification(_notification_id(self._counter), str(record_id))
                self._queued.append((notification, time.monotonic()))
            if fired:
                self._cond.notify_all()

    # ---- registration ------------------------------------------------------------------------
    def register(self, registration: Registration) -> None:
        with self._cond:
            if self._closed:
                raise RuntimeError("the outbound dispatcher is closed")
            self._registration = registration
            if self._worker is None:
                self._worker = threading.Thread(
                    target=self._run,
                    args=(self._generation,),
                    name="sandbox-sf-outbound",
                    daemon=True,
                )
                self._worker.start()
            self._cond.notify_all()

    def reset(self) -> None:
        """Forget the registration, the queue and the log; stop the sender."""
        with self._cond:
            self._generation += 1
            worker, self._worker = self._worker, None
            timeout = self._registration.timeout if self._registration else ACK_TIMEOUT
            self._registration = None
            self._queued.clear()
            self._messages.clear()
            self._log.clear()
            self._dropped = 0
            self._busy = False
            self._cond.notify_all()
        if worker is not None and worker is not threading.current_thread():
            worker.join(timeout=timeout + 2.0)

    def close(self) -> None:
        self.reset()
        with self._cond:
            self._closed = True

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Block until every notification was acknowledged or dropped (True), or timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._queued or self._messages or self._busy:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
            return True

    def snapshot(self) -> dict[str, Any]:
        """The body of ``GET /_sandbox/outbound``."""
        with self._cond:
            return {
                "registration": self._registration.model_dump() if self._registration else None,
                "queued": len(self._queued),
                "pending_messages": len(self._messages),
                "dropped": self._dropped,
                "messages": [m.snapshot() for m in self._log],
            }

    # ---- the sender thread ---------------------------------------------------------------------
    def _run(self, generation: int) -> None:
        with httpx.Client(follow_redirects=False) as client:
            while True:
                job = self._next(generation)
                if job is None:
                    return
                message, registration = job
                try:
                    body = self.render(message, registration)
                    attempt = self._send(client, body, registration)
                except Exception as exc:  # a render bug must not kill the sender
                    attempt = Attempt(self._now(), None, 0, f"{type(exc).__name__}: {exc}")
                with self._cond:
                    if generation != self._generation:
                        return
                    self._record(message, attempt, registration)

    def _next(self, generation: int) -> tuple[Message, Registration] | None:
        """Wait until a message is due: a retry or redelivery, or a new batch."""
        with self._cond:
            self._busy = False
            self._cond.notify_all()
            while True:
                if generation != self._generation:
                    return None
                registration = self._registration
                now = time.monotonic()
                if registration is None:
                    self._cond.wait()
                    continue
                max_age = MAX_AGE * registration.delay_scale
                for message in list(self._messages):
                    if max_age and now - message.created > max_age:
                        message.expired = True
                        self._messages.remove(message)
                        self._dropped += len(message.notifications)
                if self._queued and now >= self._queued[0][1] + BATCH_WINDOW:
                    batch = [n for n, _ in self._queued[:MAX_NOTIFICATIONS]]
                    del self._queued[:MAX_NOTIFICATIONS]
                    message = Message(str(uuid.uuid4()), batch, now)
                    self._messages.append(message)
                    self._log.append(message)
                    del self._log[:-MAX_LOGGED_MESSAGES]
                due = [m for m in self._messages if m.next_attempt <= now]
                if due:
                    self._busy = True
                    return due[0], registration
                wake = [m.next_attempt for m in self._messages]
                if self._queued:
                    wake.append(self._queued[0][1] + BATCH_WINDOW)
                self._cond.wait(max(0.0, min(wake) - now) if wake else None)

    def _send(self, client: httpx.Client, body: bytes, registration: Registration) -> Attempt:
        headers = {
            "Content-Type": "text/xml; charset=utf-8",
            "SOAPAction": '""',
            "User-Agent": "Jakarta Commons-HttpClient/3.1",
        }
        attempt, response = post_timed(
            client, registration.url, body, headers, registration.timeout, self._now()
        )
        if response is not None and attempt.error is None and not acknowledged(response.content):
            attempt.error = "no <Ack>true</Ack> in the answer"
        return attempt

    def _record(self, message: Message, attempt: Attempt, registration: Registration) -> None:
        message.attempts.append(attempt)
        failures = sum(1 for a in message.attempts if a.error is not None)
        if attempt.error is not None:
            delay = retry_delay(failures, registration.delay_scale)
            message.next_attempt = time.monotonic() + delay
        elif registration.redeliver and not message.redelivered:
            message.redelivered = True  # at least once: the same message, once more
            message.next_attempt = time.monotonic() + retry_delay(1, registration.delay_scale)
        else:
            message.acknowledged = True
            if message in self._messages:
                self._messages.remove(message)
        self._cond.notify_all()

    # ---- the SOAP message ----------------------------------------------------------------------
    def render(self, message: Message, registration: Registration) -> bytes:
        """The SOAP envelope of a message, with each record's fields as they are now (a record
        deleted meanwhile is sent with its Id only)."""
        base = self._base_url()
        session = self._session() if registration.include_session_id and self._session else None
        parts = [
            '<?xml version="1.0" encoding="UTF-8"?>',
            f'<soapenv:Envelope xmlns:soapenv="{SOAPENV_NS}" '
            'xmlns:xsd="http://www.w3.org/2001/XMLSchema" '
            'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">',
            "<soapenv:Body>",
            f'<notifications xmlns="{OUTBOUND_NS}">',
            f"<OrganizationId>{ORG_ID}</OrganizationId>",
            f"<ActionId>{_with_checksum(ACTION_ID)}</ActionId>",
            f"<SessionId>{escape(session)}</SessionId>"
            if session
            else '<SessionId xsi:nil="true"/>',
            f"<EnterpriseUrl>{escape(base)}/services/Soap/c/62.0/{ORG_ID_15}</EnterpriseUrl>",
            f"<PartnerUrl>{escape(base)}/services/Soap/u/62.0/{ORG_ID_15}</PartnerUrl>",
        ]
        for notification in message.notifications:
            record = self._read(notification.record_id) or {"Id": notification.record_id}
            parts.append(f"<Notification><Id>{notification.id}</Id>")
            parts.append(
                f"<sObject xsi:type={quoteattr('sf:' + registration.object)} "
                f'xmlns:sf="{SOBJECT_NS}">'
            )
            for name in registration.fields:
                value = record.get(name)
                if value is None:
                    parts.append(f'<sf:{name} xsi:nil="true"/>')
                else:
                    parts.append(f"<sf:{name}>{escape(_text(value))}</sf:{name}>")
            parts.append("</sObject></Notification>")
        parts.append("</notifications></soapenv:Body></soapenv:Envelope>")
        return "".join(parts).encode()


def _text(value: Any) -> str:
    """A field value as the SOAP API writes it."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        utc = value.astimezone(UTC)
        return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal | float):
        return repr(float(value))
    return str(value)


def acknowledged(body: bytes) -> bool:
    """Whether a listener's answer is the SOAP ``notificationsResponse`` with ``Ack`` true."""
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError:
        return False
    ack = root.find(
        f"{{{SOAPENV_NS}}}Body/{{{OUTBOUND_NS}}}notificationsResponse/{{{OUTBOUND_NS}}}Ack"
    )
    return ack is not None and (ack.text or "").strip() == "true"


def outbound_routes(dispatcher: OutboundDispatcher) -> list[BaseRoute]:
    """``/_sandbox/outbound``: POST registers the endpoint and rule, GET shows them with the
    message log, DELETE forgets both."""
    return registration_route("/_sandbox/outbound", dispatcher, Registration)
