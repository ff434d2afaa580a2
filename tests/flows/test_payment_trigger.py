"""A signed QuickBooks delivery to the receiver becomes a Prefect event, and the deployment
trigger in `deployments.serve` turns it into one payments run with the Ids as parameters."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from typing import Any
from uuid import UUID

import httpx
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

from deployments.serve import deployments
from receiver.app import create_app

TOKEN = "test-verifier-token"
REALM = "9341453172461001"


def runs_of(deployment_id: UUID) -> list[Any]:
    async def read() -> list[Any]:
        async with get_client() as client:
            return await client.read_flow_runs(
                deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id])),
                limit=10,
            )

    return asyncio.run(read())


def deliver(body: bytes, signature: str) -> httpx.Response:
    async def post() -> httpx.Response:
        transport = httpx.ASGITransport(app=create_app(TOKEN))
        async with httpx.AsyncClient(transport=transport, base_url="http://receiver") as client:
            return await client.post(
                "/qbo/webhooks",
                content=body,
                headers={"intuit-signature": signature, "content-type": "application/json"},
            )

    return asyncio.run(post())


def test_a_signed_payment_delivery_starts_one_payments_run(prefect_api: None) -> None:
    (on_change,) = [d for d in deployments("config/demo.yaml") if d.name == "on-change"]
    deployment_id = on_change.apply()
    body = json.dumps(
        [
            {
                "specversion": "1.0",
                "id": "evt-1",
                "source": "intuit.test",
                "type": "qbo.payment.created.v1",
                "time": "2026-11-23T10:00:00Z",
                "intuitentityid": "42",
                "intuitaccountid": REALM,
                "data": {},
            }
        ]
    ).encode()
    forged = deliver(body, base64.b64encode(b"x" * 32).decode())
    assert forged.status_code == 401
    signature = base64.b64encode(hmac.new(TOKEN.encode(), body, hashlib.sha256).digest())
    assert deliver(body, signature.decode()).status_code == 200
    assert deliver(body, signature.decode()).status_code == 200  # Intuit retried: a replay

    deadline = time.monotonic() + 30
    while not (runs := runs_of(deployment_id)) and time.monotonic() < deadline:
        time.sleep(0.5)
    time.sleep(2)  # a replay would have made a second run by now
    runs = runs_of(deployment_id)
    assert len(runs) == 1
    assert runs[0].parameters["payment_ids"] == ["42"]
    assert runs[0].parameters["realm"] == REALM
