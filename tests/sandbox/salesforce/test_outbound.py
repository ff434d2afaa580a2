"""Outbound Messaging: the workflow rule fires on writes through simple-salesforce, the SOAP
envelope is Salesforce's, unacknowledged messages are retried, rolled-back writes fire nothing,
100 notifications per message, redelivery of acknowledged messages."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import Any
from xml.etree import ElementTree

import httpx
import pytest
import uvicorn
from simple_salesforce import Salesforce
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sandbox.demo_company import ORG_ID
from sandbox.salesforce import SalesforceEmulator
from sandbox.salesforce.outbound import (
    MAX_NOTIFICATIONS,
    OUTBOUND_NS,
    SOAPENV_NS,
    SOBJECT_NS,
    acknowledged,
    retry_delay,
)

XSI = "{http://www.w3.org/2001/XMLSchema-instance}"
ACK = (
    f'<soapenv:Envelope xmlns:soapenv="{SOAPENV_NS}"><soapenv:Body>'
    f'<notificationsResponse xmlns="{OUTBOUND_NS}"><Ack>true</Ack></notificationsResponse>'
    "</soapenv:Body></soapenv:Envelope>"
)


@dataclass
class Listener:
    """An outbound message listener on a loopback port; ``answers`` scripts the first replies
    (status, body), after which it acknowledges."""

    answers: list[tuple[int, str]] = field(default_factory=list)
    bodies: list[bytes] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    url: str = ""

    async def handle(self, request: Request) -> Response:
        self.bodies.append(await request.body())
        self.headers.append(dict(request.headers))
        status, body = self.answers.pop(0) if self.answers else (200, ACK)
        return Response(body, status_code=status, media_type="text/xml")

    def notifications(self) -> list[tuple[str, dict[str, str | None]]]:
        """(notification Id, sObject fields) of every notification received, in order."""
        out = []
        for body in self.bodies:
            root = ElementTree.fromstring(body)
            for n in root.iter(f"{{{OUTBOUND_NS}}}Notification"):
                sobject = n.find(f"{{{OUTBOUND_NS}}}sObject")
                assert sobject is not None
                values = {c.tag.removeprefix(f"{{{SOBJECT_NS}}}"): c.text for c in sobject}
                out.append((n.findtext(f"{{{OUTBOUND_NS}}}Id") or "", values))
        return out


@pytest.fixture
def listener() -> Iterator[Listener]:
    recorder = Listener()
    app = Starlette(routes=[Route("/om", recorder.handle, methods=["POST"])])
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=0,
            log_level="warning",
            lifespan="off",
            timeout_graceful_shutdown=1,
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    recorder.url = f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}/om"
    yield recorder
    server.should_exit = True
    thread.join(timeout=10)


def register(emulator: SalesforceEmulator, **settings: Any) -> httpx.Response:
    return httpx.post(
        emulator.base_url + "/_sandbox/outbound",
        json={"delay_scale": 0.001, **settings},
        verify=False,
    )


def open_opportunities(sf: Salesforce) -> list[dict[str, Any]]:
    return sf.query("SELECT Id, Name FROM Opportunity WHERE IsClosed = false ORDER BY Id")[
        "records"
    ]


def test_closing_a_deal_sends_the_soap_notification(
    emulator: SalesforceEmulator, sf: Salesforce, listener: Listener
) -> None:
    assert register(emulator, url=listener.url, fields=["Name", "StageName", "Amount"]).is_success
    first, second = open_opportunities(sf)[:2]
    sf.Opportunity.update(first["Id"], {"StageName": "Closed Won"})
    sf.Opportunity.update(first["Id"], {"Description": "signed"})  # still won: no new rule hit
    sf.Opportunity.update(second["Id"], {"StageName": "Negotiation/Review"})  # not the rule
    account = sf.query("SELECT Id FROM Account LIMIT 1")["records"][0]["Id"]
    created = sf.Opportunity.create(
        {
            "Name": "Born won",
            "StageName": "Closed Won",
            "CloseDate": date.today().isoformat(),
            "AccountId": account,
        }
    )["id"]
    assert emulator.outbound.wait_idle(5)

    body = listener.bodies[0]
    assert listener.headers[0]["content-type"].startswith("text/xml")
    assert listener.headers[0]["soapaction"] == '""'
    root = ElementTree.fromstring(body)
    assert root.tag == f"{{{SOAPENV_NS}}}Envelope"
    notes = root.find(f"{{{SOAPENV_NS}}}Body/{{{OUTBOUND_NS}}}notifications")
    assert notes is not None
    assert notes.findtext(f"{{{OUTBOUND_NS}}}OrganizationId") == ORG_ID
    assert (notes.findtext(f"{{{OUTBOUND_NS}}}ActionId") or "").startswith("04k")
    session = notes.find(f"{{{OUTBOUND_NS}}}SessionId")
    assert session is not None and session.get(f"{XSI}nil") == "true"
    assert (notes.findtext(f"{{{OUTBOUND_NS}}}PartnerUrl") or "").startswith(
        emulator.base_url + "/services/Soap/u/"
    )
    sobject = notes.find(f"{{{OUTBOUND_NS}}}Notification/{{{OUTBOUND_NS}}}sObject")
    assert sobject is not None and sobject.get(f"{XSI}type") == "sf:Opportunity"

    received = listener.notifications()
    assert [values["Id"] for _, values in received] == [first["Id"], created]
    assert list(received[0][1]) == ["Id", "Name", "StageName", "Amount"]
    assert received[0][1]["StageName"] == "Closed Won"
    assert received[0][1]["Name"] == first["Name"]
    assert all(nid.startswith("04l") and len(nid) == 18 for nid, _ in received)
    assert len({nid for nid, _ in received}) == 2
    log = register(emulator, url=listener.url).json()["messages"]  # re-registering keeps the log
    assert all(m["acknowledged"] for m in log)


def test_unacknowledged_messages_are_retried_until_the_ack(
    emulator: SalesforceEmulator, sf: Salesforce, listener: Listener
) -> None:
    listener.answers = [
        (500, "oops"),
        (200, "<ok/>"),  # a 200 without the SOAP Ack is a failure too
        (200, ACK.replace(">true<", ">false<")),
    ]
    register(emulator, url=listener.url)
    opp = open_opportunities(sf)[0]
    sf.Opportunity.update(opp["Id"], {"StageName": "Closed Won"})
    assert emulator.outbound.wait_idle(10)
    (message,) = httpx.get(emulator.base_url + "/_sandbox/outbound", verify=False).json()[
        "messages"
    ]
    assert message["status_codes"] == [500, 200, 200, 200]
    assert message["errors"][:3] == [
        "HTTP 500",
        "no <Ack>true</Ack> in the answer",
        "no <Ack>true</Ack> in the answer",
    ]
    assert message["acknowledged"]
    # every attempt carries the same notification: the listener's de-duplication key
    assert len({nid for nid, _ in listener.notifications()}) == 1
    assert retry_delay(1, 1.0) == 15.0
    assert retry_delay(4, 1.0) == 120.0
    assert retry_delay(30, 1.0) == 7200.0  # capped at two hours


def test_a_rolled_back_all_or_none_call_fires_nothing(
    emulator: SalesforceEmulator, sf: Salesforce, listener: Listener
) -> None:
    register(emulator, url=listener.url)
    opp = open_opportunities(sf)[0]
    body = {
        "allOrNone": True,
        "records": [
            {"attributes": {"type": "Opportunity"}, "id": opp["Id"], "StageName": "Closed Won"},
            {"attributes": {"type": "Opportunity"}, "id": opp["Id"][:3] + "x" * 15},
        ],
    }
    results = sf.restful("composite/sobjects", method="PATCH", json=body)
    assert not any(r["success"] for r in results)
    assert emulator.outbound.wait_idle(2)
    time.sleep(0.2)  # past the batching window
    assert listener.bodies == []
    stage = sf.Opportunity.get(opp["Id"])["StageName"]
    assert stage != "Closed Won"


def test_at_most_100_notifications_per_message_and_redelivery(
    emulator: SalesforceEmulator, sf: Salesforce, listener: Listener
) -> None:
    register(emulator, url=listener.url, redeliver=True)
    account = sf.query("SELECT Id FROM Account LIMIT 1")["records"][0]["Id"]
    records = [
        {
            "attributes": {"type": "Opportunity"},
            "Name": f"Bulk {n}",
            "StageName": "Closed Won",
            "CloseDate": "2026-11-23",
            "AccountId": account,
        }
        for n in range(150)
    ]
    for chunk in (records[:100], records[100:]):
        answer = sf.restful(
            "composite/sobjects", method="POST", json={"allOrNone": True, "records": chunk}
        )
        assert all(r["success"] for r in answer)
    assert emulator.outbound.wait_idle(10)
    sizes = [len(m["notification_ids"]) for m in emulator.outbound.snapshot()["messages"]]
    assert max(sizes) <= MAX_NOTIFICATIONS and sum(sizes) == 150
    received = listener.notifications()
    # each message was delivered twice (at least once): same notification Ids again
    assert len(received) == 300
    assert len({nid for nid, _ in received}) == 150


def test_registration_is_validated_and_reseeding_forgets_it(
    emulator: SalesforceEmulator, listener: Listener
) -> None:
    assert register(emulator, url="not a url").status_code == 400
    bad_field = register(emulator, url=listener.url, fields=["Nope__c"])
    assert bad_field.status_code == 400
    assert "Nope__c" in bad_field.text
    assert register(emulator, url=listener.url, object="Widget").status_code == 400
    assert register(emulator, url=listener.url, colour="red").status_code == 400
    assert register(emulator, url=listener.url).json()["registration"]["url"] == listener.url
    emulator.seed("demo")
    assert httpx.get(emulator.base_url + "/_sandbox/outbound", verify=False).json() == {
        "registration": None,
        "queued": 0,
        "pending_messages": 0,
        "dropped": 0,
        "messages": [],
    }
    assert acknowledged(ACK.encode())
    assert not acknowledged(b"<<<")
