"""QuickBooks webhook deliveries: signature check, both body formats, replay bookkeeping.

Intuit signs the raw body: ``intuit-signature`` = base64(HMAC-SHA256(verifier token, body)).
Since May 2026 it delivers CloudEvents (a JSON array of ``{specversion, id, type:
"qbo.invoice.updated.v1", time, intuitentityid, intuitaccountid, ...}``); the legacy
``{"eventNotifications": [{"realmId", "dataChangeEvent": {"entities": [{name, id, operation,
lastUpdated}]}}]}`` may still arrive. Intuit retries until it gets a 2xx within 3 s, so the same
change can come more than once: each has a key (the CloudEvent id; entity, id, operation and
lastUpdated for the legacy form) remembered in a bounded LRU, and the Prefect event id is derived
from it, so Prefect's own de-duplication catches what a restarted receiver forgot.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import uuid
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

EVENT_NAME = "revbridge.qbo.change"
WATCHED_ENTITIES = frozenset({"Invoice", "Payment", "CreditMemo"})
# CloudEvents types carry the entity in lower case: map back to QuickBooks' names.
_ENTITY_NAMES = {
    name.lower(): name
    for name in (
        "Account", "Bill", "BillPayment", "Budget", "Class", "CreditMemo", "Currency",
        "Customer", "Department", "Deposit", "Employee", "Estimate", "Invoice", "Item",
        "JournalCode", "JournalEntry", "Payment", "PaymentMethod", "Preferences", "Purchase",
        "PurchaseOrder", "RefundReceipt", "SalesReceipt", "TaxAgency", "Term", "TimeActivity",
        "Transfer", "Vendor", "VendorCredit",
    )
}  # fmt: skip
_OPERATIONS = {
    "created": "Create",
    "updated": "Update",
    "deleted": "Delete",
    "voided": "Void",
    "merged": "Merge",
    "emailed": "Emailed",
}
_ID_PARAMETERS = {
    "Invoice": "invoice_ids",
    "Payment": "payment_ids",
    "CreditMemo": "credit_memo_ids",
}
# A stable namespace: the same change always becomes the same Prefect event id.
EVENT_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://revbridge.invalid/qbo-webhooks")


class MalformedDelivery(ValueError):
    """The body is not a QuickBooks webhook delivery (the message says what is wrong)."""


def signature_ok(body: bytes, signature: str | None, verifier_token: str) -> bool:
    """Whether ``signature`` is the body's ``intuit-signature`` (constant-time comparison)."""
    if not signature or not verifier_token:
        return False
    expected = base64.b64encode(
        hmac.new(verifier_token.encode(), body, hashlib.sha256).digest()
    ).decode()
    return hmac.compare_digest(expected.encode(), signature.strip().encode())


@dataclass(frozen=True)
class Change:
    """One entity change of a delivery."""

    key: str
    realm_id: str
    entity: str
    entity_id: str
    operation: str
    occurred: datetime | None = None

    @property
    def event_id(self) -> uuid.UUID:
        return uuid.uuid5(EVENT_NAMESPACE, self.key)

    @property
    def resource(self) -> dict[str, str]:
        return {
            "prefect.resource.id": f"qbo.{self.realm_id}.{self.entity.lower()}.{self.entity_id}",
            "prefect.resource.name": f"QuickBooks {self.entity} {self.entity_id}",
        }

    @property
    def payload(self) -> dict[str, Any]:
        """Realm, entity, id, operation; plus one Id list per document kind, ready to be a
        deployment trigger's parameters (``"{{ event.payload.invoice_ids }}"``)."""
        payload: dict[str, Any] = {
            "realm": self.realm_id,
            "entity": self.entity,
            "id": self.entity_id,
            "operation": self.operation,
        }
        for entity, parameter in _ID_PARAMETERS.items():
            payload[parameter] = [self.entity_id] if entity == self.entity else []
        return payload


def parse_delivery(body: bytes) -> list[Change]:
    """The changes of a delivery, in order; `MalformedDelivery` when it is neither format."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedDelivery(f"body is not JSON: {exc}") from None
    except RecursionError:
        raise MalformedDelivery("body is not JSON a delivery can be: nested too deeply") from None
    if isinstance(data, list):
        return [_cloudevent(item, n) for n, item in enumerate(data)]
    if isinstance(data, dict) and "eventNotifications" in data:
        return _legacy(data["eventNotifications"])
    raise MalformedDelivery("expected a CloudEvents array or an eventNotifications object")


def _text(item: dict[str, Any], key: str, where: str) -> str:
    value = item.get(key)
    if not isinstance(value, (str, int)) or isinstance(value, bool) or str(value) == "":
        raise MalformedDelivery(f"{where}: '{key}' is missing or not a string")
    return str(value)


def _when(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _cloudevent(item: Any, index: int) -> Change:
    where = f"event {index}"
    if not isinstance(item, dict):
        raise MalformedDelivery(f"{where}: not an object")
    kind = _text(item, "type", where).split(".")
    if len(kind) != 4 or kind[0] != "qbo" or not kind[1] or kind[2] not in _OPERATIONS:
        raise MalformedDelivery(f"{where}: type {'.'.join(kind)!r} is not qbo.<entity>.<verb>.v1")
    event_id = _text(item, "id", where)
    return Change(
        key=f"ce:{event_id}",
        realm_id=_text(item, "intuitaccountid", where),
        entity=_ENTITY_NAMES.get(kind[1], kind[1]),
        entity_id=_text(item, "intuitentityid", where),
        operation=_OPERATIONS[kind[2]],
        occurred=_when(item.get("time")),
    )


def _legacy(notifications: Any) -> list[Change]:
    if not isinstance(notifications, list):
        raise MalformedDelivery("eventNotifications is not a list")
    changes: list[Change] = []
    for n, notification in enumerate(notifications):
        where = f"eventNotifications[{n}]"
        if not isinstance(notification, dict):
            raise MalformedDelivery(f"{where}: not an object")
        realm = _text(notification, "realmId", where)
        change_event = notification.get("dataChangeEvent")
        entities = change_event.get("entities") if isinstance(change_event, dict) else None
        if not isinstance(entities, list):
            raise MalformedDelivery(f"{where}: dataChangeEvent.entities is not a list")
        for m, entity in enumerate(entities):
            inner = f"{where}.entities[{m}]"
            if not isinstance(entity, dict):
                raise MalformedDelivery(f"{inner}: not an object")
            name = _text(entity, "name", inner)
            entity_id = _text(entity, "id", inner)
            operation = _text(entity, "operation", inner)
            updated = str(entity.get("lastUpdated") or "")
            changes.append(
                Change(
                    key=f"legacy:{realm}:{name}:{entity_id}:{operation}:{updated}",
                    realm_id=realm,
                    entity=name,
                    entity_id=entity_id,
                    operation=operation,
                    occurred=_when(updated),
                )
            )
    return changes


class SeenChanges:
    """The keys of changes already handled: a bounded, thread-safe LRU."""

    def __init__(self, size: int = 10_000) -> None:
        if size < 1:
            raise ValueError("size must be at least 1")
        self.size = size
        self._keys: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()

    def claim(self, key: str) -> bool:
        """True the first time ``key`` is seen (and remember it); False for a replay."""
        with self._lock:
            if key in self._keys:
                self._keys.move_to_end(key)
                return False
            self._keys[key] = None
            while len(self._keys) > self.size:
                self._keys.popitem(last=False)
            return True

    def forget(self, keys: Iterable[str]) -> None:
        """Let these keys be handled again (their handling failed)."""
        with self._lock:
            for key in keys:
                self._keys.pop(key, None)

    def __len__(self) -> int:
        return len(self._keys)
