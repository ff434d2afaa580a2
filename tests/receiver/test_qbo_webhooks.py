"""The QuickBooks webhook receiver: signatures, both formats, replays, bad bodies, the 3 s ack,
and deliveries from the sandbox's QuickBooks emulator raised by python-quickbooks writes."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import uvicorn
from intuitlib.client import AuthClient
from quickbooks import QuickBooks
from quickbooks.objects.base import LinkedTxn, Ref
from quickbooks.objects.payment import Payment, PaymentLine
from starlette.applications import Starlette

from receiver.app import create_app, verifier_token_from_environment
from receiver.qbo import EVENT_NAME, SeenChanges
from sandbox.quickbooks import QuickBooksEmulator
from sandbox.quickbooks.oauth import REDIRECT_URI, WEBHOOK_VERIFIER_TOKEN
from sandbox.quickbooks.webhooks import ChangeEvent, render, sign
from tests.support import serving

TOKEN = "test-verifier-token"
US = "9341453172461001"
WHEN = datetime(2026, 11, 23, 10, 30, 15, 123456, tzinfo=UTC)


class _Served:
    """The receiver on a loopback port (uvicorn in a thread)."""

    def __init__(self, app: Starlette) -> None:
        self.server = uvicorn.Server(
            uvicorn.Config(
                app,
                host="127.0.0.1",
                port=0,
                log_level="warning",
                lifespan="off",
                timeout_graceful_shutdown=1,
            )
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "the receiver did not start"
            time.sleep(0.01)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/qbo/webhooks"

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@dataclass
class Recorder:
    """Stands in for prefect.events.emit_event."""

    events: list[dict[str, Any]] = field(default_factory=list)
    fail: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, **event: Any) -> None:
        with self.lock:
            if self.fail:
                self.fail -= 1
                raise RuntimeError("events worker is down")
            self.events.append(event)


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@contextmanager
def receiving(app: Starlette) -> Iterator[httpx.Client]:
    """An httpx client for the app served on a loopback port."""
    with _Served(app) as url, httpx.Client(base_url=url.removesuffix("/qbo/webhooks")) as c:
        yield c


@pytest.fixture
def client(recorder: Recorder) -> Iterator[httpx.Client]:
    with receiving(create_app(TOKEN, emit=recorder, max_body=64_000)) as test_client:
        yield test_client


def change(entity: str, entity_id: str, operation: str = "Update", realm: str = US) -> ChangeEvent:
    return ChangeEvent(str(uuid.uuid4()), realm, entity, entity_id, operation, WHEN)


def post(client: httpx.Client, body: bytes, token: str = TOKEN) -> httpx.Response:
    headers = {"Content-Type": "application/json", "intuit-signature": sign(body, token)}
    return client.post("/qbo/webhooks", content=body, headers=headers)


def test_cloudevents_become_one_prefect_event_per_watched_change(
    client: httpx.Client, recorder: Recorder
) -> None:
    events = [
        change("Payment", "200", "Create"),
        change("Invoice", "130"),
        change("CreditMemo", "90", "Void"),
        change("Customer", "58"),  # not a payment matter: acknowledged, not emitted
    ]
    answer = post(client, render(events, "cloudevents"))
    assert answer.status_code == 200
    assert answer.json() == {"received": 4, "emitted": 3}
    assert [e["event"] for e in recorder.events] == [EVENT_NAME] * 3
    payment, invoice, memo = recorder.events
    assert payment["resource"]["prefect.resource.id"] == f"qbo.{US}.payment.200"
    assert payment["payload"] == {
        "realm": US,
        "entity": "Payment",
        "id": "200",
        "operation": "Create",
        "invoice_ids": [],
        "payment_ids": ["200"],
        "credit_memo_ids": [],
    }
    assert invoice["payload"]["invoice_ids"] == ["130"]
    assert memo["payload"]["operation"] == "Void"
    assert memo["payload"]["credit_memo_ids"] == ["90"]
    assert payment["occurred"] == WHEN
    assert len({e["id"] for e in recorder.events}) == 3


def test_legacy_notifications_are_accepted(client: httpx.Client, recorder: Recorder) -> None:
    body = render([change("Invoice", "130"), change("Payment", "7", "Delete")], "legacy")
    assert post(client, body).status_code == 200
    assert [(e["payload"]["entity"], e["payload"]["operation"]) for e in recorder.events] == [
        ("Invoice", "Update"),
        ("Payment", "Delete"),
    ]


def test_forged_or_unsigned_deliveries_are_refused(
    client: httpx.Client, recorder: Recorder
) -> None:
    body = render([change("Invoice", "130")], "cloudevents")
    forged = post(client, body, token="somebody-elses-token")
    assert forged.status_code == 401
    assert forged.json() == {"error": "invalid intuit-signature"}
    unsigned = client.post("/qbo/webhooks", content=body)
    assert unsigned.status_code == 401
    tampered = body.replace(b"130", b"131")
    headers = {"intuit-signature": sign(body, TOKEN)}
    assert client.post("/qbo/webhooks", content=tampered, headers=headers).status_code == 401
    assert recorder.events == []
    # a forged copy does not use up the real delivery's key
    assert post(client, body).status_code == 200
    assert len(recorder.events) == 1


def test_replays_are_emitted_once(client: httpx.Client, recorder: Recorder) -> None:
    first = change("Payment", "200", "Create")
    body = render([first], "cloudevents")
    assert post(client, body).json() == {"received": 1, "emitted": 1}
    assert post(client, body).json() == {"received": 1, "emitted": 0}  # Intuit's retry
    # the same change in a later delivery, next to a new one
    assert post(client, render([first, change("Invoice", "130")], "cloudevents")).json() == {
        "received": 2,
        "emitted": 1,
    }
    legacy = render([change("Invoice", "131")], "legacy")
    post(client, legacy)
    post(client, legacy)
    assert [e["payload"]["id"] for e in recorder.events] == ["200", "130", "131"]


def test_the_event_id_is_stable_across_receivers(recorder: Recorder) -> None:
    """A restarted receiver has forgotten its LRU; the Prefect event id is the same again, so
    Prefect's de-duplication holds."""
    body = render([change("Invoice", "130")], "cloudevents")
    for _ in range(2):
        with receiving(create_app(TOKEN, emit=recorder)) as fresh:
            post(fresh, body)
    assert recorder.events[0]["id"] == recorder.events[1]["id"]


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"{}",
        b'{"eventNotifications": "x"}',
        b'[{"id": "1", "type": "qbo.invoice.updated.v1"}]',  # no realm, no entity id
        b'[{"id": "1", "type": "invoice.updated", "intuitaccountid": "1", "intuitentityid": "2"}]',
        b'{"eventNotifications": [{"realmId": "1", "dataChangeEvent": {"entities": [{}]}}]}',
        b"[1]",
    ],
)
def test_malformed_bodies_are_refused(
    client: httpx.Client, recorder: Recorder, body: bytes
) -> None:
    answer = post(client, body)
    assert answer.status_code == 400
    assert answer.json()["error"]
    assert recorder.events == []


def test_huge_bodies_are_refused_before_anything_else(
    client: httpx.Client, recorder: Recorder
) -> None:
    body = render([change("Invoice", str(n)) for n in range(1000)], "cloudevents")
    assert len(body) > 64_000
    answer = post(client, body)
    assert answer.status_code == 400
    assert "larger than" in answer.json()["error"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted while reading
        yield body[:40_000]
        yield body[40_000:]

    headers = {"intuit-signature": sign(body, TOKEN)}
    assert client.post("/qbo/webhooks", content=chunks(), headers=headers).status_code == 400
    assert recorder.events == []


def test_a_failed_emit_asks_for_a_retry(client: httpx.Client, recorder: Recorder) -> None:
    body = render([change("Invoice", "130"), change("Payment", "200")], "cloudevents")
    recorder.fail = 1
    assert post(client, body).status_code == 500
    assert post(client, body).json() == {"received": 2, "emitted": 2}
    assert [e["payload"]["id"] for e in recorder.events] == ["130", "200"]


def test_acknowledges_a_big_delivery_well_within_three_seconds(
    client: httpx.Client, recorder: Recorder
) -> None:
    body = render([change("Invoice", str(n)) for n in range(200)], "cloudevents")
    assert len(body) < 64_000
    started = time.monotonic()
    assert post(client, body).status_code == 200
    assert time.monotonic() - started < 1.0
    assert len(recorder.events) == 200


def test_health_and_configuration(client: httpx.Client, monkeypatch: pytest.MonkeyPatch) -> None:
    assert client.get("/healthz").json() == {"ok": True}
    assert client.get("/qbo/webhooks").status_code == 405
    with pytest.raises(ValueError, match="empty"):
        create_app("")
    monkeypatch.setenv("REVBRIDGE_QBO_VERIFIER_TOKEN", TOKEN)
    assert verifier_token_from_environment() == TOKEN
    seen = SeenChanges(size=2)
    assert [seen.claim(k) for k in ("a", "b", "a", "c", "b")] == [True, True, False, True, True]


# ---- end to end: the sandbox's QuickBooks delivers to the receiver ---------------------------
@pytest.mark.parametrize("fmt", ["cloudevents", "legacy"])
def test_sandbox_deliveries_arrive_as_events(
    recorder: Recorder, monkeypatch: pytest.MonkeyPatch, fmt: str
) -> None:
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")
    emulator = QuickBooksEmulator()
    app = create_app(WEBHOOK_VERIFIER_TOKEN, emit=recorder)
    try:
        with serving(emulator) as running, _Served(app) as url:
            info = emulator.info(running.base_url, None)
            registration = {"url": url, "format": fmt, "delay_scale": 0.001}
            httpx.post(running.base_url + "/_sandbox/webhooks", json=registration)
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
            invoices = emulator.backend.query(realm["realm_id"], "SELECT * FROM Invoice")
            (open_invoice,) = [i for i in invoices["Invoice"] if i["DocNumber"] == "1002"]
            payment = Payment()
            payment.CustomerRef = Ref()
            payment.CustomerRef.value = open_invoice["CustomerRef"]["value"]
            payment.TotalAmt = 500
            line = PaymentLine()
            line.Amount = 500
            link = LinkedTxn()
            link.TxnId = open_invoice["Id"]
            link.TxnType = "Invoice"
            line.LinkedTxn = [link]
            payment.Line = [line]
            payment.save(qb=qb)

            assert emulator.webhooks.wait_idle(5)
            log = httpx.get(running.base_url + "/_sandbox/webhooks").json()["deliveries"]
            assert all(d["acknowledged"] and d["status_codes"][-1] == 200 for d in log)
    finally:
        emulator.close()
    got = {(e["payload"]["entity"], e["payload"]["id"]) for e in recorder.events}
    assert got == {("Payment", str(payment.Id)), ("Invoice", str(open_invoice["Id"]))}
    assert all(e["payload"]["realm"] == realm["realm_id"] for e in recorder.events)
    assert json.dumps([e["payload"] for e in recorder.events])  # plain JSON for the trigger
