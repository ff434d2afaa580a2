"""QuickBooks batch create: the request body (built by us: python-quickbooks sends no requestid
in batches) and the per-item results.

A batch carries one ``requestid`` for the whole HTTP request (`batch_request_id`): a replay of the
same body returns QuickBooks' first answer. Retry only the failed, transient items, as a new batch
(a new body, so a new id): resending a partly failed batch unchanged would replay its faults.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict

MAX_BATCH_ITEMS = 30
# Fault codes worth retrying: throttled (3001) and "an application error has occurred" (10000).
TRANSIENT_CODES = frozenset({"3001", "10000"})

T = TypeVar("T")


class Creatable(Protocol):
    """A draft that becomes one ``create`` in a batch (`revbridge.invoices.InvoiceDraft`)."""

    @property
    def entity(self) -> str: ...

    @property
    def record_id(self) -> str: ...

    def payload(self) -> dict[str, Any]: ...


class EntityDraft(BaseModel):
    """Any entity to create in a batch (a new Customer, say), keyed by the Salesforce record it
    comes from; `revbridge.invoices.InvoiceDraft` is the richer one for invoices."""

    model_config = ConfigDict(frozen=True)

    kind: str
    key: str
    body: dict[str, Any]

    @property
    def entity(self) -> str:
        return self.kind

    @property
    def record_id(self) -> str:
        return self.key

    def payload(self) -> dict[str, Any]:
        return dict(self.body)


class BatchResult(BaseModel):
    """What QuickBooks answered for one batch item."""

    model_config = ConfigDict(frozen=True)

    opp_id: str
    bid: str
    ok: bool
    entity: dict[str, Any] | None = None
    fault_code: str | None = None
    message: str = ""
    transient: bool = False

    @property
    def entity_id(self) -> str | None:
        return str(self.entity["Id"]) if self.entity and "Id" in self.entity else None

    @property
    def doc_number(self) -> str | None:
        return self.entity.get("DocNumber") if self.entity else None


def chunk(items: Sequence[T], size: int = MAX_BATCH_ITEMS) -> list[list[T]]:
    """``items`` in consecutive pieces of at most ``size``, order kept."""
    if size < 1:
        raise ValueError("size must be at least 1")
    return [list(items[start : start + size]) for start in range(0, len(items), size)]


def batch_request(
    drafts: Sequence[Creatable], operation: str = "create"
) -> tuple[dict[str, Any], dict[str, str]]:
    """The ``BatchItemRequest`` body for up to 30 drafts and its bId → record Id mapping.

    The bId is the draft's position ("1".."30"), so a record Id never leaks into a length limit.
    """
    if not drafts:
        raise ValueError("a batch needs at least one item")
    if len(drafts) > MAX_BATCH_ITEMS:
        raise ValueError(f"a batch holds at most {MAX_BATCH_ITEMS} items, got {len(drafts)}")
    records = [d.record_id for d in drafts]
    if len(set(records)) != len(records):
        raise ValueError("a record appears twice in one batch")
    items = []
    mapping: dict[str, str] = {}
    for position, draft in enumerate(drafts, start=1):
        bid = str(position)
        items.append({"bId": bid, "operation": operation, draft.entity: draft.payload()})
        mapping[bid] = draft.record_id
    return {"BatchItemRequest": items}, mapping


def batch_request_id(body: Mapping[str, Any]) -> str:
    """The ``requestid`` for a batch body (≤ 50 chars; same body → same id)."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "rb-batch-" + hashlib.sha256(canonical.encode()).hexdigest()[:40]


def parse_batch_response(body: Mapping[str, Any], mapping: Mapping[str, str]) -> list[BatchResult]:
    """One `BatchResult` per requested item, in request order.

    A whole-request fault (``{"Fault": ...}`` instead of ``BatchItemResponse``, e.g. throttling)
    applies to every item; an item QuickBooks did not answer is a transient failure.
    """
    if "Fault" in body and "BatchItemResponse" not in body:
        code, message, transient = describe_fault(body["Fault"])
        return [
            BatchResult(
                opp_id=opp_id,
                bid=bid,
                ok=False,
                fault_code=code,
                message=message,
                transient=transient,
            )
            for bid, opp_id in mapping.items()
        ]
    answers = {str(item.get("bId")): item for item in body.get("BatchItemResponse") or ()}
    results: list[BatchResult] = []
    for bid, opp_id in mapping.items():
        answer = answers.get(bid)
        if answer is None:
            results.append(
                BatchResult(
                    opp_id=opp_id,
                    bid=bid,
                    ok=False,
                    message=f"QuickBooks returned no answer for batch item {bid}",
                    transient=True,
                )
            )
        elif "Fault" in answer:
            code, message, transient = describe_fault(answer["Fault"])
            results.append(
                BatchResult(
                    opp_id=opp_id,
                    bid=bid,
                    ok=False,
                    fault_code=code,
                    message=message,
                    transient=transient,
                )
            )
        else:
            entity = next(
                (v for k, v in answer.items() if k != "bId" and isinstance(v, dict)), None
            )
            if entity is not None:  # the flows read the header; a 5,000-deal run keeps them all
                entity = {k: v for k, v in entity.items() if k != "Line"}
            results.append(
                BatchResult(
                    opp_id=opp_id,
                    bid=bid,
                    ok=entity is not None,
                    entity=entity,
                    message="" if entity else f"batch item {bid} came back without an entity",
                )
            )
    return results


def describe_fault(fault: Mapping[str, Any]) -> tuple[str | None, str, bool]:
    """(first error code, readable message, transient?) for a QuickBooks Fault object.

    Transient: throttling (3001), system errors (10000, 5xx-style codes, type SystemFault).
    A ValidationFault is never transient, whatever its code.
    """
    errors = fault.get("Error") or []
    codes = [str(e.get("code")) for e in errors if e.get("code") is not None]
    parts = []
    for error in errors:
        text = " - ".join(str(error[k]) for k in ("Message", "Detail") if error.get(k))
        parts.append(f"{error.get('code')}: {text}" if error.get("code") else text)
    kind = str(fault.get("type") or "")
    transient = kind != "ValidationFault" and (
        kind == "SystemFault"
        or any(c in TRANSIENT_CODES or (c.isdigit() and 500 <= int(c) < 600) for c in codes)
    )
    message = "; ".join(parts) or kind or "unknown QuickBooks fault"
    return (codes[0] if codes else None), message, transient
