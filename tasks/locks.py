"""The per-realm invoicing lock: one "find invoices by marker → create" at a time per realm.

A run triggered by a Salesforce push and the poller (or a second push) can pick up the same deal
at the same moment; each would find no invoice and create one. Holding the realm's lock from
the reference read to the last create makes the second run find the first one's customer and
invoice (by its marker) instead. The lock is the Prefect global concurrency limit
``revbridge-invoicing-<realm_id>`` (limit 1), so it holds across processes and workers; every
use makes sure it exists (``blocks.sandbox.save_all`` creates it too). Its lease is renewed while
held, so a long backfill keeps it; the slot of a holder that died is freed by the Prefect
server's lease repossessor about ``LEASE_SECONDS`` (plus its loop interval) later. An ephemeral
server (no ``PREFECT_API_URL``, or ``prefect_test_harness``) runs no repossessor: there a dead
holder's slot stays taken until the limit is deleted or reset.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

from prefect.client.orchestration import get_client
from prefect.concurrency.sync import concurrency

LEASE_SECONDS = 60
WAIT_SECONDS = 1800  # a 5,000-deal backfill of one realm can hold it for minutes


def invoicing_lock_name(realm_id: str) -> str:
    """The global concurrency limit that serializes invoicing in one QuickBooks realm."""
    return f"revbridge-invoicing-{realm_id}"


def ensure_invoicing_lock(realm_id: str) -> None:
    """Create (or reset to 1) the realm's invoicing limit."""
    with get_client(sync_client=True) as client:
        client.upsert_global_concurrency_limit_by_name(invoicing_lock_name(realm_id), 1)


@contextmanager
def invoicing_lock(realm_id: str, *, timeout_seconds: float = WAIT_SECONDS) -> Iterator[None]:
    """Hold the realm's invoicing lock. It is made sure to exist first (one cheap API call), and
    taken strictly: a lock that cannot be taken fails the caller rather than letting it invoice
    unguarded."""
    ensure_invoicing_lock(realm_id)
    stack = ExitStack()
    try:
        stack.enter_context(
            concurrency(
                invoicing_lock_name(realm_id),
                occupy=1,
                strict=True,
                timeout_seconds=timeout_seconds,
                lease_duration=LEASE_SECONDS,
                raise_on_lease_renewal_failure=False,
            )
        )
    except TimeoutError as exc:
        raise TimeoutError(
            f"QuickBooks realm {realm_id}: another run has held the invoicing lock "
            f"{invoicing_lock_name(realm_id)!r} for over {timeout_seconds:.0f} s"
        ) from exc
    with stack:
        yield
