"""Webhook deliveries to a receiver of the test's own: signature, formats, batching, retries,
and a delivery raised by a python-quickbooks write."""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from intuitlib.client import AuthClient
from quickbooks import QuickBooks
from quickbooks.objects.customer import Customer
from starlette.applications import Starlette

from sandbox.core.clock import Clock
from sandbox.quickbooks import QuickBooksEmulator, webhooks
from sandbox.quickbooks.oauth import REDIRECT_URI, WEBHOOK_VERIFIER_TOKEN
from sandbox.quickbooks.webhooks import Registration, WebhookDispatcher
from tests.support import serving

WHEN = datetime(2026, 11, 23, 10, 30, 15, 123456, tzinfo=UTC)
US, EU = "9341453172461001", "9341453172461002"
FAST = 0.001  # delay_scale: Intuit's 10 s first retry becomes 10 ms


@dataclass
class Received:
    body: bytes
    headers: dict[str, str]
    at: float
    valid: bool

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """An HTTP endpoint that verifies Intuit's signature and answers as scripted."""

    verifier_token: str = WEBHOOK_VERIFIER_TOKEN
    script: list[tuple[int, float]] = field(default_factory=list)  # (status, delay) per request
    received: list[Received] = field(default_factory=list)
    url: str = ""
    _cond: threading.Condition = field(default_factory=threading.Condition)

    def handle(self, body: bytes, headers: dict[str, str]) -> tuple[int, float]:
        valid = webhooks.verify(body, headers.get("intuit-signature"), self.verifier_token)
        with self._cond:
            self.received.append(Received(body, headers, time.monotonic(), valid))
            self._cond.notify_all()
            status, delay = self.script.pop(0) if self.script else (200, 0.0)
        return (status if valid else 401), delay

    def wait_for(self, count: int, timeout: float = 5.0) -> list[Received]:
        with self._cond:
            assert self._cond.wait_for(lambda: len(self.received) >= count, timeout), (
                f"expected {count} deliveries, got {len(self.received)}"
            )
            return list(self.received)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, delay = state.handle(body, headers)
            time.sleep(delay)
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/qbo/webhooks"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def dispatcher() -> Iterator[WebhookDispatcher]:
    d = WebhookDispatcher(Clock(), WEBHOOK_VERIFIER_TOKEN)
    try:
        yield d
    finally:
        d.close()
        assert not [t for t in threading.enumerate() if t.name == "sandbox-qbo-webhooks"]


def register(d: WebhookDispatcher, receiver: Receiver, **extra: Any) -> None:
    d.register(Registration.model_validate({"url": receiver.url, "delay_scale": FAST, **extra}))


def wait_until(
    d: WebhookDispatcher, predicate: Callable[[dict[str, Any]], bool], timeout: float = 5.0
) -> dict[str, Any]:
    """The first logged delivery, once ``predicate`` holds for it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        log = d.snapshot()["deliveries"]
        if log and predicate(log[0]):
            return log[0]
        time.sleep(0.005)
    raise AssertionError(f"delivery log never matched: {d.snapshot()}")


# ---- signature and formats -------------------------------------------------------------------
def test_cloudevents_delivery_is_signed(dispatcher: WebhookDispatcher, receiver: Receiver) -> None:
    register(dispatcher, receiver)
    dispatcher.notify(US, "Invoice", "130", "Create", WHEN)
    (got,) = receiver.wait_for(1)
    assert got.valid
    assert got.headers["content-type"] == "application/json"
    # python-quickbooks' own verifier agrees.
    qb = QuickBooks(minorversion=75)
    assert qb.validate_webhook_signature(
        got.body.decode(), got.headers["intuit-signature"], WEBHOOK_VERIFIER_TOKEN
    )
    (event,) = got.json()
    assert event == {
        "specversion": "1.0",
        "id": event["id"],
        "source": webhooks.EVENT_SOURCE,
        "type": "qbo.invoice.created.v1",
        "datacontenttype": "application/json",
        "time": "2026-11-23T10:30:15.123456Z",
        "intuitentityid": "130",
        "intuitaccountid": US,
        "data": {},
    }
    assert event["source"].startswith("intuit.")
    assert dispatcher.wait_idle(2)
    (delivery,) = dispatcher.snapshot()["deliveries"]
    assert delivery["acknowledged"] and delivery["status_codes"] == [200]


def test_a_forged_signature_is_rejected(dispatcher: WebhookDispatcher, receiver: Receiver) -> None:
    receiver.verifier_token = "somebody-elses-token"
    register(dispatcher, receiver)
    dispatcher.notify(US, "Customer", "58", "Update", WHEN)
    first = receiver.wait_for(1)[0]
    assert not first.valid
    assert not webhooks.verify(first.body + b" ", first.headers["intuit-signature"], "x")
    assert not webhooks.verify(first.body, None, WEBHOOK_VERIFIER_TOKEN)
    assert webhooks.verify(first.body, first.headers["intuit-signature"], WEBHOOK_VERIFIER_TOKEN)
    # The receiver's 401 is a failed delivery: Intuit retries it.
    attempts = wait_until(dispatcher, lambda d: len(d["status_codes"]) >= 2)
    assert attempts["status_codes"][:2] == [401, 401]


def test_legacy_format_groups_entities_per_realm(
    dispatcher: WebhookDispatcher, receiver: Receiver
) -> None:
    register(dispatcher, receiver, format="legacy")
    dispatcher.notify(US, "Customer", "58", "Create", WHEN)
    dispatcher.notify(EU, "Invoice", "7", "Void", WHEN)
    dispatcher.notify(US, "Invoice", "130", "Delete", WHEN)
    (got,) = receiver.wait_for(1)
    assert got.valid
    assert got.json() == {
        "eventNotifications": [
            {
                "realmId": US,
                "dataChangeEvent": {
                    "entities": [
                        {"name": "Customer", "id": "58", "operation": "Create",
                         "lastUpdated": "2026-11-23T10:30:15.123Z"},
                        {"name": "Invoice", "id": "130", "operation": "Delete",
                         "lastUpdated": "2026-11-23T10:30:15.123Z"},
                    ]
                },
            },
            {
                "realmId": EU,
                "dataChangeEvent": {
                    "entities": [
                        {"name": "Invoice", "id": "7", "operation": "Void",
                         "lastUpdated": "2026-11-23T10:30:15.123Z"},
                    ]
                },
            },
        ]
    }  # fmt: skip


def test_operations_map_to_cloudevent_types(
    dispatcher: WebhookDispatcher, receiver: Receiver
) -> None:
    register(dispatcher, receiver)
    for op in ("Create", "Update", "Delete", "Void", "Merge", "Emailed"):
        dispatcher.notify(US, "Invoice", "1", op, WHEN)
    dispatcher.notify(US, "TaxCode", "3", "Update", WHEN)  # raises no webhook
    (got,) = receiver.wait_for(1)
    assert [e["type"] for e in got.json()] == [
        f"qbo.invoice.{verb}.v1"
        for verb in ("created", "updated", "deleted", "voided", "merged", "emailed")
    ]
    assert len({e["id"] for e in got.json()}) == 6
    with pytest.raises(ValueError):
        dispatcher.notify(US, "Invoice", "1", "Explode", WHEN)


# ---- batching, retries, ordering -------------------------------------------------------------
def test_changes_close_together_share_a_delivery(
    dispatcher: WebhookDispatcher, receiver: Receiver
) -> None:
    register(dispatcher, receiver)
    for n in range(3):
        dispatcher.notify(US, "Customer", str(n), "Create", WHEN)
    assert dispatcher.wait_idle(2)
    time.sleep(webhooks.BATCH_WINDOW * 1.5)
    dispatcher.notify(US, "Customer", "3", "Update", WHEN)
    assert dispatcher.wait_idle(2)
    got = receiver.wait_for(2)
    assert [[e["intuitentityid"] for e in r.json()] for r in got] == [["0", "1", "2"], ["3"]]


def test_failed_deliveries_are_retried_on_the_scaled_schedule(
    dispatcher: WebhookDispatcher, receiver: Receiver
) -> None:
    receiver.script = [(500, 0.0), (503, 0.0), (429, 0.0)]
    register(dispatcher, receiver, delay_scale=0.002)
    dispatcher.notify(US, "Payment", "77", "Create", WHEN)
    got = receiver.wait_for(4)
    assert dispatcher.wait_idle(2)
    assert len({r.body for r in got}) == 1  # the same payload each time
    gaps = [b.at - a.at for a, b in itertools.pairwise(got)]
    for gap, expected in zip(gaps, (0.020, 0.040, 0.060), strict=True):
        assert gap >= expected * 0.9
    (delivery,) = dispatcher.snapshot()["deliveries"]
    assert delivery["status_codes"] == [500, 503, 429, 200]
    assert delivery["errors"][:3] == ["HTTP 500", "HTTP 503", "HTTP 429"]
    assert delivery["acknowledged"] is True


def test_retry_schedule() -> None:
    minutes = [webhooks.retry_delay(n, 1.0) / 60 for n in range(1, 11)]
    assert minutes == [1 / 6, 1 / 3, 0.5, 5, 20, 120, 240, 360, 360, 360]
    assert webhooks.retry_delay(1, 0.001) == pytest.approx(0.01)


def test_later_changes_wait_for_the_first_to_be_acknowledged(
    dispatcher: WebhookDispatcher, receiver: Receiver
) -> None:
    receiver.script = [(500, 0.0), (500, 0.0)]
    register(dispatcher, receiver, delay_scale=0.01)  # retries after 100 ms, then 200 ms
    dispatcher.notify(US, "Invoice", "1", "Create", WHEN)
    receiver.wait_for(1)
    dispatcher.notify(US, "Invoice", "1", "Update", WHEN)
    dispatcher.notify(US, "Invoice", "2", "Create", WHEN)
    assert dispatcher.wait_idle(5)
    got = receiver.wait_for(4)
    assert [[(e["intuitentityid"], e["type"]) for e in r.json()] for r in got] == [
        [("1", "qbo.invoice.created.v1")],
        [("1", "qbo.invoice.created.v1")],
        [("1", "qbo.invoice.created.v1")],
        [("1", "qbo.invoice.updated.v1"), ("2", "qbo.invoice.created.v1")],
    ]
    log = dispatcher.snapshot()["deliveries"]
    assert [d["attempts"] for d in log] == [3, 1]


def test_a_slow_answer_counts_as_a_failure(
    dispatcher: WebhookDispatcher, receiver: Receiver
) -> None:
    receiver.script = [(200, 0.5)]
    register(dispatcher, receiver, timeout=0.2)  # Intuit waits 3 s; scaled down here
    dispatcher.notify(US, "Bill", "9", "Create", WHEN)
    receiver.wait_for(2)
    assert dispatcher.wait_idle(3)
    (delivery,) = dispatcher.snapshot()["deliveries"]
    assert delivery["status_codes"] == [None, 200]
    assert "Timeout" in delivery["errors"][0]


def test_an_unreachable_endpoint_is_retried(dispatcher: WebhookDispatcher) -> None:
    dispatcher.register(Registration(url="http://127.0.0.1:9/nothing", delay_scale=FAST))
    dispatcher.notify(US, "Item", "4", "Create", WHEN)
    delivery = wait_until(dispatcher, lambda d: d["attempts"] >= 2)
    assert delivery["status_codes"][:2] == [None, None]
    assert delivery["errors"][0].startswith("ConnectError")
    assert delivery["acknowledged"] is False
    assert delivery["next_attempt_in"] is not None


# ---- lifecycle and controls ------------------------------------------------------------------
def test_without_an_endpoint_changes_are_dropped(
    dispatcher: WebhookDispatcher, receiver: Receiver
) -> None:
    dispatcher.notify(US, "Invoice", "1", "Create", WHEN)
    assert dispatcher.snapshot() == {
        "registration": None, "pending": 0, "dropped": 1, "deliveries": []
    }  # fmt: skip
    register(dispatcher, receiver)
    dispatcher.notify(US, "Invoice", "2", "Create", WHEN)
    (got,) = receiver.wait_for(1)
    assert got.json()[0]["intuitentityid"] == "2"


def test_reset_stops_the_thread_and_forgets_everything(
    dispatcher: WebhookDispatcher, receiver: Receiver
) -> None:
    receiver.script = [(500, 0.0)] * 100
    register(dispatcher, receiver)
    dispatcher.notify(US, "Invoice", "1", "Create", WHEN)
    receiver.wait_for(2)
    dispatcher.reset()
    assert not [t for t in threading.enumerate() if t.name == "sandbox-qbo-webhooks"]
    assert dispatcher.snapshot()["deliveries"] == []
    count = len(receiver.received)
    time.sleep(0.05)
    assert len(receiver.received) == count
    # Usable again after a reset; not after close.
    register(dispatcher, receiver)
    dispatcher.close()
    with pytest.raises(RuntimeError):
        register(dispatcher, receiver)


def test_sandbox_webhooks_control_endpoint(
    dispatcher: WebhookDispatcher, receiver: Receiver
) -> None:
    app = Starlette(routes=webhooks.webhook_routes(dispatcher))
    asyncio.run(_drive_controls(app, dispatcher, receiver))


async def _drive_controls(
    app: Starlette, dispatcher: WebhookDispatcher, receiver: Receiver
) -> None:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sandbox") as http:
        assert (await http.get("/_sandbox/webhooks")).json()["registration"] is None
        for bad in (
            {"url": "ftp://example.com/x"},
            {"url": receiver.url, "format": "xml"},
            {"url": receiver.url, "delay_scale": -1},
            {"url": receiver.url, "colour": "blue"},
            {},
        ):
            answer = await http.post("/_sandbox/webhooks", json=bad)
            assert answer.status_code == 400, bad
            assert answer.json()["error"]
        answer = await http.post(
            "/_sandbox/webhooks",
            json={"url": receiver.url, "format": "legacy", "delay_scale": 0.001},
        )
        assert answer.status_code == 200
        assert answer.json()["registration"] == {
            "url": receiver.url, "format": "legacy", "delay_scale": 0.001, "timeout": 3.0
        }  # fmt: skip
        dispatcher.notify(EU, "Estimate", "12", "Emailed", WHEN)
        assert dispatcher.wait_idle(2)
        (delivery,) = (await http.get("/_sandbox/webhooks")).json()["deliveries"]
        assert delivery["events"] == [
            {
                "realm_id": EU,
                "entity": "Estimate",
                "entity_id": "12",
                "operation": "Emailed",
                "time": "2026-11-23T10:30:15.123456Z",
            }
        ]
        assert (delivery["attempts"], delivery["acknowledged"]) == (1, True)
        answer = await http.delete("/_sandbox/webhooks")
        assert answer.json() == {
            "registration": None, "pending": 0, "dropped": 0, "deliveries": []
        }  # fmt: skip


# ---- end to end: a python-quickbooks write raises a webhook ---------------------------------
def test_a_quickbooks_write_is_delivered(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")
    emulator = QuickBooksEmulator()
    try:
        with serving(emulator) as running:
            base = running.base_url
            info = emulator.info(base, None)
            assert info["webhook_verifier_token"] == receiver.verifier_token
            answer = httpx.post(
                base + "/_sandbox/webhooks", json={"url": receiver.url, "delay_scale": FAST}
            )
            assert answer.status_code == 200
            realm = info["realms"]["us"]
            auth = AuthClient(
                info["client_id"], info["client_secret"], REDIRECT_URI, info["discovery_url"]
            )
            qb = QuickBooks(
                auth_client=auth,
                refresh_token=realm["refresh_token"],
                company_id=realm["realm_id"],
                minorversion=75,
            )
            qb.sandbox_api_url_v3 = qb.api_url_v3 = info["api_base"]
            customer = Customer()
            customer.DisplayName = "Webhook Works Ltd"
            customer.save(qb=qb)
            customer.CompanyName = "Webhook Works"
            customer.save(qb=qb)

            assert emulator.webhooks.wait_idle(5)
            assert all(r.valid for r in receiver.received)
            events = [e for r in receiver.received for e in r.json()]
            assert [(e["type"], e["intuitentityid"], e["intuitaccountid"]) for e in events] == [
                ("qbo.customer.created.v1", str(customer.Id), realm["realm_id"]),
                ("qbo.customer.updated.v1", str(customer.Id), realm["realm_id"]),
            ]
            # A sandbox reset forgets the endpoint, like every other piece of state.
            httpx.post(base + "/_sandbox/reset")
            assert httpx.get(base + "/_sandbox/webhooks").json()["registration"] is None
    finally:
        emulator.close()
