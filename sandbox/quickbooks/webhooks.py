"""QuickBooks webhooks: entity changes delivered to the endpoint registered with the sandbox.

Intuit delivers change notifications, signed with the app's verifier token, to the one endpoint
configured for the app; the sandbox takes that endpoint from ``POST /_sandbox/webhooks``. As Intuit:

- a delivery is a POST with a JSON body, ``Content-Type: application/json`` and the header
  ``intuit-signature`` = base64(HMAC-SHA256(verifier token, raw body));
- the body is a CloudEvents array (the format since May 2026) or the legacy
  ``{"eventNotifications": [...]}`` envelope, chosen at registration;
- changes raised within a short window (``BATCH_WINDOW``) travel in one delivery;
- a delivery is acknowledged by a 2xx answer within 3 s; anything else is retried after 10 s,
  20 s, 30 s, 5 min, 20 min, 2 h, 4 h, 6 h and then every 6 h — these delays multiplied by the
  registration's ``delay_scale`` so tests stay fast — and later changes wait until it is
  acknowledged, so the receiver sees them in order.

Retry delays run on the wall clock (a pinned sandbox clock would stall them); event times come
from the caller (the sandbox clock of the write).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import httpx
from pydantic import Field
from starlette.routing import BaseRoute

from sandbox.core.callbacks import Attempt, CallbackRegistration, post_timed, registration_route
from sandbox.core.clock import Clock
from sandbox.quickbooks.oauth import CLIENT_ID

# Entities that raise webhooks (Intuit's list, restricted to the ones the emulator serves).
WEBHOOK_ENTITIES = frozenset(
    {
        "Account", "Bill", "BillPayment", "Budget", "Class", "CreditMemo", "Currency",
        "Customer", "Department", "Deposit", "Employee", "Estimate", "Invoice", "Item",
        "JournalCode", "JournalEntry", "Payment", "PaymentMethod", "Preferences", "Purchase",
        "PurchaseOrder", "RefundReceipt", "SalesReceipt", "TaxAgency", "Term", "TimeActivity",
        "Transfer", "Vendor", "VendorCredit",
    }
)  # fmt: skip
# Operation → the verb in a CloudEvents type ("qbo.invoice.voided.v1").
OPERATIONS = {
    "Create": "created",
    "Update": "updated",
    "Delete": "deleted",
    "Void": "voided",
    "Merge": "merged",
    "Emailed": "emailed",
}
RETRY_DELAYS = (10.0, 20.0, 30.0, 300.0, 1200.0, 7200.0, 14400.0, 21600.0)  # then every 6 h
BATCH_WINDOW = 0.1  # seconds: changes closer together than this share one delivery
ACK_TIMEOUT = 3.0  # seconds Intuit waits for a 2xx
MAX_LOGGED_DELIVERIES = 1000
EVENT_SOURCE = "intuit." + base64.b64encode(hashlib.sha256(CLIENT_ID.encode()).digest()).decode()

WebhookFormat = Literal["cloudevents", "legacy"]


def sign(body: bytes, verifier_token: str) -> str:
    """The ``intuit-signature`` of a raw body."""
    return base64.b64encode(
        hmac.new(verifier_token.encode(), body, hashlib.sha256).digest()
    ).decode()


def verify(body: bytes, signature: str | None, verifier_token: str) -> bool:
    """Whether ``signature`` is the body's ``intuit-signature`` (constant-time comparison)."""
    return signature is not None and hmac.compare_digest(sign(body, verifier_token), signature)


def retry_delay(failures: int, delay_scale: float) -> float:
    """Seconds to wait after the ``failures``-th failed attempt of one delivery."""
    return RETRY_DELAYS[min(failures, len(RETRY_DELAYS)) - 1] * delay_scale


class Registration(CallbackRegistration):
    """The body of ``POST /_sandbox/webhooks``."""

    format: WebhookFormat = "cloudevents"
    delay_scale: float = Field(default=1.0, ge=0, description="multiplies Intuit's retry delays")
    timeout: float = Field(
        default=ACK_TIMEOUT, gt=0, le=60, description="seconds a 2xx may take (Intuit: 3)"
    )


@dataclass(frozen=True)
class ChangeEvent:
    id: str
    realm_id: str
    entity: str
    entity_id: str
    operation: str
    when: datetime

    def cloudevent(self) -> dict[str, Any]:
        return {
            "specversion": "1.0",
            "id": self.id,
            "source": EVENT_SOURCE,
            "type": f"qbo.{self.entity.lower()}.{OPERATIONS[self.operation]}.v1",
            "datacontenttype": "application/json",
            "time": _iso(self.when),
            "intuitentityid": self.entity_id,
            "intuitaccountid": self.realm_id,
            "data": {},
        }

    def legacy_entity(self) -> dict[str, Any]:
        return {
            "name": self.entity,
            "id": self.entity_id,
            "operation": self.operation,
            "lastUpdated": _iso(self.when, places=3),
        }


def render(events: list[ChangeEvent], fmt: WebhookFormat) -> bytes:
    """The raw body of one delivery."""
    payload: Any
    if fmt == "cloudevents":
        payload = [e.cloudevent() for e in events]
    else:
        by_realm: dict[str, list[dict[str, Any]]] = {}
        for e in events:
            by_realm.setdefault(e.realm_id, []).append(e.legacy_entity())
        payload = {
            "eventNotifications": [
                {"realmId": realm, "dataChangeEvent": {"entities": entities}}
                for realm, entities in by_realm.items()
            ]
        }
    return json.dumps(payload, separators=(",", ":")).encode()


def _iso(when: datetime, places: int = 6) -> str:
    when = when.astimezone(UTC) if when.tzinfo else when.replace(tzinfo=UTC)
    return when.isoformat(timespec="microseconds")[: 20 + places].rstrip(".") + "Z"


@dataclass
class Delivery:
    id: str
    events: list[ChangeEvent]
    attempts: list[Attempt] = field(default_factory=list)
    acknowledged: bool = False
    next_attempt: float = 0.0  # time.monotonic() of the next attempt

    def snapshot(self) -> dict[str, Any]:
        waiting = None
        if not self.acknowledged and self.attempts:
            waiting = round(max(0.0, self.next_attempt - time.monotonic()), 3)
        return {
            "id": self.id,
            "events": [
                {
                    "realm_id": e.realm_id,
                    "entity": e.entity,
                    "entity_id": e.entity_id,
                    "operation": e.operation,
                    "time": _iso(e.when),
                }
                for e in self.events
            ],
            "attempts": len(self.attempts),
            "status_codes": [a.status for a in self.attempts],
            "errors": [a.error for a in self.attempts],
            "acknowledged": self.acknowledged,
            "next_attempt_in": waiting,
        }


@dataclass
class _Queued:
    event: ChangeEvent
    queued_at: float  # time.monotonic()


class _Worker:
    """The delivery thread of one registration; ``stopped`` ends it."""

    def __init__(self, dispatcher: WebhookDispatcher) -> None:
        self.stopped = False
        self.thread = threading.Thread(
            target=dispatcher._run, args=(self,), name="sandbox-qbo-webhooks", daemon=True
        )


class WebhookDispatcher:
    """Queues change events and delivers them, in order, to the registered endpoint."""

    def __init__(self, clock: Clock, verifier_token: str) -> None:
        self.clock = clock
        self.verifier_token = verifier_token
        self._cond = threading.Condition(threading.RLock())
        self._registration: Registration | None = None
        self._pending: list[_Queued] = []
        self._current: Delivery | None = None
        self._log: list[Delivery] = []
        self._dropped = 0
        self._worker: _Worker | None = None
        self._closed = False

    # ---- the emulator's side ---------------------------------------------------------------
    def notify(
        self, realm_id: str, entity: str, entity_id: str, operation: str, when: datetime
    ) -> None:
        """Queue a change (operation: Create, Update, Delete, Void, Merge, Emailed) for delivery.

        Entities that raise no webhooks are ignored; with no endpoint registered the change is
        dropped (counted), as Intuit sends nothing to an app without webhooks configured."""
        if operation not in OPERATIONS:
            raise ValueError(f"unknown webhook operation {operation!r}")
        if entity not in WEBHOOK_ENTITIES:
            return
        event = ChangeEvent(str(uuid.uuid4()), realm_id, entity, str(entity_id), operation, when)
        with self._cond:
            if self._registration is None or self._closed:
                self._dropped += 1
                return
            self._pending.append(_Queued(event, time.monotonic()))
            self._cond.notify_all()

    # ---- registration ----------------------------------------------------------------------
    def register(self, registration: Registration) -> None:
        """Set (or replace) the endpoint; queued changes go to the new one."""
        with self._cond:
            if self._closed:
                raise RuntimeError("the webhook dispatcher is closed")
            self._registration = registration
            if self._worker is None:
                self._worker = _Worker(self)
                self._worker.thread.start()
            self._cond.notify_all()

    def reset(self) -> None:
        """Forget the registration, queued changes and the delivery log; stop the thread."""
        self._stop_worker()
        with self._cond:
            self._registration = None
            self._pending.clear()
            self._current = None
            self._log.clear()
            self._dropped = 0

    def close(self) -> None:
        """Stop delivering for good."""
        self.reset()
        with self._cond:
            self._closed = True

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Block until every queued change was delivered and acknowledged (True), or timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._pending or self._current is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
            return True

    def snapshot(self) -> dict[str, Any]:
        """The body of ``GET /_sandbox/webhooks``."""
        with self._cond:
            return {
                "registration": self._registration.model_dump() if self._registration else None,
                "pending": len(self._pending),
                "dropped": self._dropped,
                "deliveries": [d.snapshot() for d in self._log],
            }

    # ---- delivery thread -------------------------------------------------------------------
    def _stop_worker(self) -> None:
        with self._cond:
            worker, self._worker = self._worker, None
            if worker is not None:
                worker.stopped = True
                self._cond.notify_all()
        if worker is not None and worker.thread is not threading.current_thread():
            timeout = self._registration.timeout if self._registration else ACK_TIMEOUT
            worker.thread.join(timeout=timeout + 2.0)

    def _run(self, worker: _Worker) -> None:
        with httpx.Client(follow_redirects=False) as client:
            while True:
                job = self._next_job(worker)
                if job is None:
                    return
                delivery, registration = job
                attempt = self._attempt(client, delivery, registration)
                with self._cond:
                    if worker.stopped:
                        return
                    self._record(delivery, attempt, registration)

    def _next_job(self, worker: _Worker) -> tuple[Delivery, Registration] | None:
        """Wait for the next attempt to be due: a retry, or a new batch once its window closed."""
        with self._cond:
            while True:
                if worker.stopped:
                    return None
                now = time.monotonic()
                if self._registration is None:
                    self._cond.wait()
                elif self._current is not None:
                    if now >= self._current.next_attempt:
                        return self._current, self._registration
                    self._cond.wait(self._current.next_attempt - now)
                elif self._pending:
                    closes = self._pending[0].queued_at + BATCH_WINDOW
                    if now >= closes:
                        self._current = Delivery(
                            str(uuid.uuid4()), [q.event for q in self._pending]
                        )
                        self._pending.clear()
                        self._log.append(self._current)
                        del self._log[:-MAX_LOGGED_DELIVERIES]
                        return self._current, self._registration
                    self._cond.wait(closes - now)
                else:
                    self._cond.wait()

    def _attempt(
        self, client: httpx.Client, delivery: Delivery, registration: Registration
    ) -> Attempt:
        body = render(delivery.events, registration.format)
        headers = {
            "Content-Type": "application/json",
            "intuit-signature": sign(body, self.verifier_token),
        }
        attempt, response = post_timed(
            client, registration.url, body, headers, registration.timeout, self.clock.now()
        )
        if response is not None and attempt.elapsed_ms > registration.timeout * 1000:
            attempt.error = f"answered after {attempt.elapsed_ms} ms"  # Intuit gave up waiting
        return attempt

    def _record(self, delivery: Delivery, attempt: Attempt, registration: Registration) -> None:
        delivery.attempts.append(attempt)
        if attempt.error is None:
            delivery.acknowledged = True
            if self._current is delivery:
                self._current = None
        else:
            delay = retry_delay(len(delivery.attempts), registration.delay_scale)
            delivery.next_attempt = time.monotonic() + delay
        self._cond.notify_all()


def webhook_routes(dispatcher: WebhookDispatcher) -> list[BaseRoute]:
    """``/_sandbox/webhooks``: POST registers the endpoint, GET shows it with the delivery log,
    DELETE forgets both."""
    return registration_route("/_sandbox/webhooks", dispatcher, Registration)
