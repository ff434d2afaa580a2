"""The QuickBooks webhook receiver under 200 deliveries a second (2 s of it here; 30 s in
``python -m benchmarks.drills --only receiver``), a fifth of them duplicates of deliveries it
already acknowledged, and its event emitter failing now and then so Intuit retries: every
change becomes exactly one event, none is lost, and acknowledgements stay far inside 3 s."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections import Counter
from typing import Any

from benchmarks.common import percentile
from benchmarks.drills import VERIFIER, offer_deliveries
from receiver.app import create_app
from receiver.qbo import EVENT_NAMESPACE
from tests.receiver.test_qbo_webhooks import _Served

RATE, SECONDS = 200, 2.0


class FlakyEmitter:
    """Records events; every ``fail_every``-th call raises, as a down events worker would."""

    def __init__(self, fail_every: int) -> None:
        self.fail_every = fail_every
        self.calls = 0
        self.events: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    def __call__(self, **event: Any) -> None:
        with self.lock:
            self.calls += 1
            if self.calls % self.fail_every == 0:
                raise RuntimeError("events worker is down")
            self.events.append(event)


def test_200_deliveries_a_second_with_duplicates_and_retries_emit_each_change_once() -> None:
    emitter = FlakyEmitter(fail_every=40)
    with _Served(create_app(VERIFIER, emit=emitter)) as url:
        load = asyncio.run(offer_deliveries(url, RATE, SECONDS, dup_share=0.2, seed=3))
    assert load["deliveries"] == RATE * SECONDS
    assert load["duplicates_sent"] > 0.1 * load["deliveries"]
    assert load["retries"] > 0 and load["statuses"].get(500, 0) == load["retries"]
    assert load["lost_deliveries"] == []

    expected = {uuid.uuid5(EVENT_NAMESPACE, key) for key in load["expected_changes"]}
    emitted = Counter(event["id"] for event in emitter.events)
    assert set(emitted) == expected  # none lost, nothing made up
    assert set(emitted.values()) == {1}  # none twice, duplicates and retries included
    assert percentile(load["latencies"], 99) < 3.0  # Intuit's limit, by far
