"""Salesforce pushes: Outbound Message authentication (URL token + OrganizationId), Flow callout
authentication (bearer or HMAC), malformed bodies, duplicates, the Ack, and messages from the
sandbox's Salesforce emulator raised by simple-salesforce writes."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from simple_salesforce import Salesforce
from starlette.applications import Starlette

from receiver.salesforce import (
    EVENT_NAME,
    EVENTS_PATH,
    OUTBOUND_PATH,
    parse_outbound,
    routes_from_environment,
    salesforce_routes,
)
from sandbox.core.tls import TlsFiles
from sandbox.demo_company import ORG_ID
from sandbox.salesforce import SalesforceEmulator
from sandbox.salesforce.outbound import acknowledged
from tests.receiver.test_qbo_webhooks import Recorder, _Served, receiving
from tests.sandbox.salesforce.clients import sandbox_session, token_client
from tests.support import serving

TOKEN = "outbound-url-token"
SECRET = "named-credential-secret"
OPP = "0065g0000000002AAA"
OPP_15 = OPP[:15]


def envelope(
    *notifications: tuple[str, str], org: str = ORG_ID, kind: str = "Opportunity"
) -> bytes:
    items = "".join(
        f"<Notification><Id>{nid}</Id>"
        f'<sObject xsi:type="sf:{kind}" xmlns:sf="urn:sobject.enterprise.soap.sforce.com">'
        f"<sf:Id>{opp}</sf:Id><sf:StageName>Closed Won</sf:StageName></sObject></Notification>"
        for nid, opp in notifications
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body>'
        '<notifications xmlns="http://soap.sforce.com/2005/09/outbound">'
        f"<OrganizationId>{org}</OrganizationId><ActionId>04k5g000000Rb7QAAS</ActionId>"
        '<SessionId xsi:nil="true"/>'
        "<EnterpriseUrl>https://x/services/Soap/c/62.0/00D</EnterpriseUrl>"
        "<PartnerUrl>https://x/services/Soap/u/62.0/00D</PartnerUrl>"
        f"{items}</notifications></soapenv:Body></soapenv:Envelope>"
    ).encode()


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def client(recorder: Recorder) -> Iterator[httpx.Client]:
    app = Starlette(routes=salesforce_routes(ORG_ID, TOKEN, SECRET, recorder, max_body=50_000))
    with receiving(app) as test_client:
        yield test_client


def outbound(client: httpx.Client, body: bytes, token: str | None = TOKEN) -> httpx.Response:
    params = {"token": token} if token is not None else {}
    return client.post(
        OUTBOUND_PATH, content=body, params=params, headers={"Content-Type": "text/xml"}
    )


def callout(client: httpx.Client, data: Any, **headers: str) -> httpx.Response:
    return client.post(EVENTS_PATH, content=json.dumps(data).encode(), headers=headers)


def test_an_outbound_message_is_acknowledged_and_emitted_once_per_notification(
    client: httpx.Client, recorder: Recorder
) -> None:
    body = envelope(("04l5g00000000AAAAA", OPP), ("04l5g00000000BAAAA", "0065g0000000003AAA"))
    answer = outbound(client, body)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/xml")
    assert acknowledged(answer.content)
    first, second = recorder.events
    assert first["event"] == EVENT_NAME
    assert first["resource"]["prefect.resource.id"] == f"salesforce.opportunity.{OPP}"
    assert first["payload"] == {
        "opportunity_ids": [OPP],
        "stage": "Closed Won",
        "source": "outbound-message",
        "notification_id": "04l5g00000000AAAAA",
    }
    assert isinstance(first["id"], uuid.UUID) and first["id"] != second["id"]

    # Salesforce redelivers (and may batch an old notification with a new one): acked, dropped
    assert acknowledged(outbound(client, body).content)
    again = envelope(("04l5g00000000AAAAA", OPP), ("04l5g00000000CAAAA", OPP))
    assert acknowledged(outbound(client, again).content)
    assert [e["payload"]["notification_id"] for e in recorder.events] == [
        "04l5g00000000AAAAA",
        "04l5g00000000BAAAA",
        "04l5g00000000CAAAA",
    ]


def test_forged_outbound_messages_are_refused_and_emit_nothing(
    client: httpx.Client, recorder: Recorder
) -> None:
    body = envelope(("04l5g00000000AAAAA", OPP))
    assert outbound(client, body, token=None).status_code == 401
    wrong = outbound(client, body, token="guess")
    assert wrong.status_code == 401
    assert b"<faultstring>invalid token</faultstring>" in wrong.content
    other_org = outbound(client, envelope(("04l5g00000000AAAAA", OPP), org="00D5g00000Zz9QxEAJ"))
    assert other_org.status_code == 403
    assert not acknowledged(other_org.content)
    assert recorder.events == []
    # a refused copy does not use up the real notification
    assert outbound(client, body).status_code == 200
    assert len(recorder.events) == 1
    # the 15-character org Id in the config matches the 18-character one Salesforce sends
    app = Starlette(routes=salesforce_routes(ORG_ID[:15], TOKEN, SECRET, recorder))
    with receiving(app) as fifteen:
        assert outbound(fifteen, envelope(("04l5g00000000DAAAA", OPP))).status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        b"not xml",
        b"<a/>",
        envelope(),  # no Notification
        envelope(("04l5g00000000AAAAA", "001000000000001AAA")),  # an Account Id
        envelope(("04l5g00000000AAAAA", OPP), kind="Account"),
        envelope(("04l5g00000000AAAAA", "not-an-id")),
        b'<!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>',
    ],
)
def test_malformed_outbound_messages_are_refused(
    client: httpx.Client, recorder: Recorder, body: bytes
) -> None:
    answer = outbound(client, body)
    assert answer.status_code == 400
    assert b"<faultstring>" in answer.content
    assert recorder.events == []


def test_flow_callouts_authenticate_with_a_bearer_or_an_hmac(
    client: httpx.Client, recorder: Recorder
) -> None:
    data = {"opportunityId": OPP_15, "stage": "Closed Won"}
    assert callout(client, data).status_code == 401
    assert callout(client, data, Authorization="Bearer wrong").status_code == 401
    raw = json.dumps(data).encode()
    forged = "sha256=" + hmac.new(b"wrong", raw, hashlib.sha256).hexdigest()
    assert callout(client, data, **{"X-Revbridge-Signature": forged}).status_code == 401
    assert recorder.events == []

    ok = callout(client, data, Authorization=f"Bearer {SECRET}")
    assert ok.status_code == 200
    assert ok.json() == {"received": 1, "emitted": 1}
    signed = "sha256=" + hmac.new(SECRET.encode(), raw, hashlib.sha256).hexdigest()
    assert callout(client, data, **{"X-Revbridge-Signature": signed}).status_code == 200
    # the 15-character Id becomes the 18-character one
    assert [e["resource"]["prefect.resource.id"] for e in recorder.events] == [
        f"salesforce.opportunity.{OPP}"
    ] * 2
    assert recorder.events[0]["payload"]["source"] == "flow-callout"
    many = {"opportunityIds": [OPP, OPP_15, "0065g0000000003AAA"]}
    answer = callout(client, many, Authorization=f"Bearer {SECRET}")
    assert answer.json() == {"received": 2, "emitted": 2}


@pytest.mark.parametrize(
    "data",
    [{}, [], {"opportunityId": 5}, {"opportunityId": "001000000000001"}, {"opportunityIds": []}],
)
def test_malformed_callouts_are_refused(
    client: httpx.Client, recorder: Recorder, data: Any
) -> None:
    answer = callout(client, data, Authorization=f"Bearer {SECRET}")
    assert answer.status_code == 400
    assert answer.json()["error"]
    assert recorder.events == []


def test_limits_failures_and_configuration(
    client: httpx.Client, recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    huge = envelope(*((f"04l5g{n:010d}AAA", OPP) for n in range(400)))
    assert len(huge) > 50_000
    assert outbound(client, huge).status_code == 400
    # emitting failed: 500 and not remembered, so Salesforce's retry is emitted
    body = envelope(("04l5g00000000AAAAA", OPP))
    recorder.fail = 1
    assert outbound(client, body).status_code == 500
    assert outbound(client, body).status_code == 200
    assert len(recorder.events) == 1
    assert client.get(OUTBOUND_PATH).status_code == 405
    with pytest.raises(ValueError, match="org Id"):
        salesforce_routes("not-an-org", TOKEN, SECRET)
    with pytest.raises(ValueError, match="empty"):
        salesforce_routes(ORG_ID, "", SECRET)
    monkeypatch.delenv("REVBRIDGE_SALESFORCE_ORG_ID", raising=False)
    assert list(routes_from_environment(recorder)) == []
    monkeypatch.setenv("REVBRIDGE_SALESFORCE_ORG_ID", ORG_ID)
    monkeypatch.setenv("REVBRIDGE_SALESFORCE_OUTBOUND_TOKEN", TOKEN)
    monkeypatch.setenv("REVBRIDGE_SALESFORCE_CALLOUT_SECRET", SECRET)
    paths = [r.path for r in routes_from_environment(recorder)]
    assert paths == [OUTBOUND_PATH, EVENTS_PATH]
    assert parse_outbound(body).organization_id == ORG_ID


# ---- end to end: the sandbox's Salesforce sends to the receiver --------------------------------
def test_sandbox_outbound_messages_arrive_as_events(
    recorder: Recorder, tls_files: TlsFiles
) -> None:
    emulator = SalesforceEmulator()
    app = Starlette(routes=salesforce_routes(ORG_ID, TOKEN, SECRET, recorder))
    try:
        with serving(emulator, tls_files) as running, _Served(app) as url:
            listener = url.removesuffix("/qbo/webhooks") + OUTBOUND_PATH + f"?token={TOKEN}"
            registration = {"url": listener, "delay_scale": 0.001, "redeliver": True}
            httpx.post(running.base_url + "/_sandbox/outbound", json=registration, verify=False)
            info = emulator.info(running.base_url, str(tls_files.ca_bundle))
            with sandbox_session(info) as session:
                sf: Salesforce = token_client(info, session)
                opps = sf.query(
                    "SELECT Id FROM Opportunity WHERE IsClosed = false ORDER BY Id LIMIT 2"
                )["records"]
                for opp in opps:
                    sf.Opportunity.update(opp["Id"], {"StageName": "Closed Won"})
                assert emulator.outbound.wait_idle(10)
            log = emulator.outbound.snapshot()["messages"]
    finally:
        emulator.close()
    assert all(m["acknowledged"] and m["attempts"] == 2 for m in log)  # each sent twice
    assert sorted(e["payload"]["opportunity_ids"][0] for e in recorder.events) == sorted(
        o["Id"] for o in opps
    )
