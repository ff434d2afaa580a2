"""The invoicing steps both the Closed Won flow and the approval flow run, for one realm:
reference data → customer matching → new customers → invoice drafts → create exactly once.

Plain functions that call tasks, so the flows read like the step list. Three guards make "exactly
once": the plan skips deals whose QB_Invoice_Id__c is set; invoices found again by their
PrivateNote marker (created before a crash, never written back) are written back instead of
created; and every batch carries the requestid of its body, so a retry replays. Runs that pick
up the same deal at once (a push-triggered run and the poller) take turns per realm
(`tasks.locks.invoicing_lock`), so the second finds the first one's customer and invoice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from revbridge.batch import BatchResult, EntityDraft
from revbridge.config import RealmConfig, RevbridgeConfig
from revbridge.invoices import InvoiceError, build_invoice
from revbridge.matching import CustomerMatch, match_accounts, new_customer_payload
from revbridge.models import Account, Opportunity, Problem
from revbridge.report import AuditRow
from revbridge.writeback import SyncOutcome
from tasks.locks import invoicing_lock
from tasks.quickbooks import create_in_batches, find_marked_invoices, load_realm_reference

if TYPE_CHECKING:
    from blocks.quickbooks import QuickBooksConnection


@dataclass
class RealmResult:
    """What happened to each deal of one realm: audit rows, write-back outcomes, and which deals
    are settled (the watermark may pass them)."""

    realm: str = ""
    rows: list[AuditRow] = field(default_factory=list)
    outcomes: list[SyncOutcome] = field(default_factory=list)
    settled: set[str] = field(default_factory=set)
    errors: list[str] = field(default_factory=list)

    def add(
        self,
        opp: Opportunity,
        outcome: SyncOutcome | None,
        *,
        realm: str,
        row_outcome: str,
        reason: str = "",
        match: CustomerMatch | None = None,
        settled: bool = True,
    ) -> None:
        if outcome is not None:
            self.outcomes.append(outcome)
        self.rows.append(
            AuditRow(
                opportunity_id=opp.id,
                name=opp.name,
                realm=realm,
                customer=match.display_name if match else None,
                match_kind=match.kind if match else None,
                amount=opp.amount,
                currency=opp.currency,
                outcome=row_outcome,  # type: ignore[arg-type]
                invoice_id=outcome.invoice_id if outcome else None,
                doc_number=outcome.doc_number if outcome else None,
                reason=reason,
            )
        )
        if settled:
            self.settled.add(opp.id)
        if row_outcome == "Error":
            self.errors.append(f"{opp.id} ({opp.name}): {reason}")

    def extend(self, other: RealmResult) -> None:
        """Add another result's deals of the same realm to this one."""
        self.rows += other.rows
        self.outcomes += other.outcomes
        self.settled |= other.settled
        self.errors += other.errors


def invoice_deals(
    realm: str,
    realm_cfg: RealmConfig,
    config: RevbridgeConfig,
    connection: QuickBooksConnection,
    opps: Sequence[Opportunity],
    today: date,
    *,
    dry_run: bool = False,
    approvals: dict[str, SyncOutcome] | None = None,
) -> RealmResult:
    """`_invoice_deals` holding the realm's invoicing lock (a dry run writes nothing and
    takes no lock)."""
    args = (realm, realm_cfg, config, connection, opps, today)
    if not opps or dry_run:
        return _invoice_deals(*args, dry_run=dry_run, approvals=approvals)
    with invoicing_lock(connection.realm_id):
        return _invoice_deals(*args, dry_run=dry_run, approvals=approvals)


def screen_for_approval(
    realm: str,
    realm_cfg: RealmConfig,
    config: RevbridgeConfig,
    connection: QuickBooksConnection,
    opps: Sequence[Opportunity],
    today: date,
) -> tuple[list[Opportunity], RealmResult]:
    """Which deals over the threshold finance can be asked to approve. The invoicing steps run
    dry (nothing is written, no lock is taken): a deal whose customer needs a human decision or
    whose invoice cannot be drafted (an unmapped product, say) goes to review now, not after
    somebody approved it; one whose invoice an earlier run created is written back. Returns the
    deals to ask about and the result of the others."""
    if not opps:
        return [], RealmResult(realm=realm)
    dry = _invoice_deals(realm, realm_cfg, config, connection, opps, today, dry_run=True)
    held = {row.opportunity_id for row in dry.rows if row.outcome != "Dry Run"}
    result = RealmResult(
        realm=realm,
        rows=[r for r in dry.rows if r.opportunity_id in held],
        outcomes=[o for o in dry.outcomes if o.opportunity_id in held],
        settled=dry.settled & held,
        errors=dry.errors,
    )
    return [o for o in opps if o.id not in held], result


def _invoice_deals(
    realm: str,
    realm_cfg: RealmConfig,
    config: RevbridgeConfig,
    connection: QuickBooksConnection,
    opps: Sequence[Opportunity],
    today: date,
    *,
    dry_run: bool = False,
    approvals: dict[str, SyncOutcome] | None = None,
) -> RealmResult:
    """Invoice validated, approved-or-small deals of one realm. ``approvals`` carries the
    approver fields to write back with each approved deal's outcome."""
    result = RealmResult(realm=realm)
    if not opps:
        return result
    reference = load_realm_reference(connection)
    existing = _find_existing(connection, opps)
    pairs = [(o.account, billed_in(o, realm_cfg)) for o in opps if o.account is not None]
    matches = match_in_realm(pairs, reference, config)
    customer_ids = _create_customers(realm, realm_cfg, connection, opps, matches, result, dry_run)
    items = {i["Name"]: str(i["Id"]) for i in reference.get("Item", []) if i.get("Active", True)}
    terms = {t["Name"]: str(t["Id"]) for t in reference.get("Term", []) if t.get("Active", True)}

    drafts = []
    for opp in opps:
        key = customer_key(opp.account.id, billed_in(opp, realm_cfg)) if opp.account else None
        match = matches[key] if key else None
        extra = (approvals or {}).get(opp.id)
        if opp.id in existing:
            invoice = existing[opp.id]
            outcome = SyncOutcome(
                opportunity_id=opp.id,
                status="Invoiced",
                invoice_id=str(invoice["Id"]),
                doc_number=invoice.get("DocNumber"),
                customer_id=str(invoice.get("CustomerRef", {}).get("value") or "") or None,
            )
            result.add(
                opp,
                _with_approval(outcome, extra),
                realm=realm,
                row_outcome="Invoiced",
                reason="found an invoice created by an earlier run: written back, not created",
                match=match,
            )
            continue
        if match is None or opp.account is None:
            continue  # validation guarantees an account; nothing to do without one
        customer_id = customer_ids.get(key) if key else None
        if customer_id is None:
            continue  # reported by _create_customers (review or refused)
        try:
            draft = build_invoice(opp, realm_cfg, customer_id, items, terms, today)
        except InvoiceError as exc:
            _needs_review(result, opp, realm, exc.problems, match, customer_id)
            continue
        if dry_run:
            result.add(
                opp,
                None,
                realm=realm,
                row_outcome="Dry Run",
                match=match,
                reason=f"would create an invoice of {draft.total}",
                settled=False,
            )
            continue
        drafts.append((opp, draft, match, extra))

    created = create_in_batches(connection, [d for _, d, _, _ in drafts]) if drafts else []
    for (opp, draft, match, extra), answer in zip(drafts, created, strict=True):
        outcome = _with_approval(SyncOutcome.from_batch(answer, draft.customer_id), extra)
        if answer.ok:
            result.add(opp, outcome, realm=realm, row_outcome="Invoiced", match=match)
        else:
            # a transient fault leaves the deal unsettled: the next run tries again
            result.add(
                opp,
                outcome,
                realm=realm,
                row_outcome="Error",
                reason=answer.message,
                match=match,
                settled=not answer.transient,
            )
    return result


def _with_approval(outcome: SyncOutcome, approval: SyncOutcome | None) -> SyncOutcome:
    if approval is None:
        return outcome
    return outcome.model_copy(
        update={"approved_by": approval.approved_by, "approved_at": approval.approved_at}
    )


def _find_existing(
    connection: QuickBooksConnection, opps: Sequence[Opportunity]
) -> dict[str, dict[str, Any]]:
    """Invoices an earlier run created for these deals but never wrote back. An invoice is made
    after its deal was last stamped, so the search starts a day before the oldest stamp."""
    stamps = [o.system_modstamp for o in opps if o.system_modstamp is not None]
    if not stamps:
        return {}
    found = find_marked_invoices(connection, min(stamps) - timedelta(days=1))
    wanted = {o.id for o in opps}
    return {opp_id: inv for opp_id, inv in found.items() if opp_id in wanted}


def match_in_realm(
    accounts: Sequence[tuple[Account, str]],
    reference: dict[str, list[dict[str, Any]]],
    config: RevbridgeConfig,
) -> dict[str, CustomerMatch]:
    """Match ``(account, billing currency)`` pairs against a realm's customers, one currency at
    a time (a customer billed in another currency is never reused), with vendor and employee
    names reserved. Keyed by `customer_key` (Account Id and currency: one account may have deals
    in two currencies in one run). The Closed Won and renewal flows share it.

    ``matching.currency_mismatch: per_currency``: each currency is matched only against the
    customers billed in it (QuickBooks never changes a customer's currency), so an account
    billed in USD gets a second customer for its EUR deals, named with the currency suffix;
    the other currencies' customer names stay taken."""
    taken = [
        str(r.get("DisplayName") or "")
        for r in reference.get("Vendor", []) + reference.get("Employee", [])
    ]
    customers = reference.get("Customer", [])
    by_currency: dict[str, list[Account]] = {}
    for account, currency in accounts:
        by_currency.setdefault(currency, []).append(account)
    matches: dict[str, CustomerMatch] = {}
    for currency, group in by_currency.items():
        pool, names, settings = customers, taken, config.matching
        if settings.currency_mismatch == "per_currency":
            pool = [c for c in customers if _billed_in(c) in (None, currency)]
            names = taken + [
                str(c.get("DisplayName") or "")
                for c in customers
                if _billed_in(c) not in (None, currency)
            ]
            settings = settings.model_copy(
                update={"name_collision": "suffix", "suffix": f" ({currency})"}
            )
        found = match_accounts(group, pool, names, settings, currency=currency)
        matches.update({customer_key(aid, currency): m for aid, m in found.items()})
    return matches


def customer_key(account_id: str, currency: str) -> str:
    """Which customer a deal is billed to: its account's, in the deal's currency."""
    return f"{account_id}/{currency}"


def billed_in(opp: Opportunity, realm_cfg: RealmConfig) -> str:
    """The currency a deal is invoiced in: its own, else the company's home currency."""
    return opp.currency or realm_cfg.currency


def _billed_in(customer: dict[str, Any]) -> str | None:
    return (customer.get("CurrencyRef") or {}).get("value")


@dataclass
class CustomerResolution:
    """Which QuickBooks customer each account gets: ``ids`` (existing or just created),
    ``review`` (account Id → why a human must decide), ``refused`` (the failed creates)."""

    ids: dict[str, str] = field(default_factory=dict)
    review: dict[str, str] = field(default_factory=dict)
    refused: dict[str, BatchResult] = field(default_factory=dict)


def resolve_customers(
    connection: QuickBooksConnection,
    accounts: Sequence[tuple[Account, str]],
    matches: dict[str, CustomerMatch],
    *,
    dry_run: bool = False,
) -> CustomerResolution:
    """Act on the matches (`match_in_realm`) of ``(account, currency)`` pairs: reuse the matched
    customer, create the ones decided "new" (one batch, once per account and currency), and say
    why the rest need review. Keyed by `customer_key`. The Closed Won and renewal flows share it
    and report the outcome their own way."""
    resolution = CustomerResolution()
    new: dict[str, EntityDraft] = {}
    for account, currency in accounts:
        key = customer_key(account.id, currency)
        match = matches[key]
        if match.resolved and match.customer_id:
            resolution.ids[key] = match.customer_id
        elif match.kind == "new" and match.display_name:
            if dry_run:
                resolution.ids[key] = "(new)"
            elif key not in new:
                body = new_customer_payload(account, match.display_name, currency, None)
                new[key] = EntityDraft(kind="Customer", key=key, body=body)
        else:
            candidates = ", ".join(
                f"{c.display_name} (Id {c.customer_id})" for c in match.candidates
            )
            resolution.review[key] = f"customer needs review: {match.reason}" + (
                f"; candidates: {candidates}" if candidates else ""
            )
    if new:
        for answer in create_in_batches(connection, list(new.values())):
            if answer.ok and answer.entity_id:
                resolution.ids[answer.opp_id] = answer.entity_id
            else:
                resolution.refused[answer.opp_id] = answer
    return resolution


def _create_customers(
    realm: str,
    realm_cfg: RealmConfig,
    connection: QuickBooksConnection,
    opps: Sequence[Opportunity],
    matches: dict[str, CustomerMatch],
    result: RealmResult,
    dry_run: bool,
) -> dict[str, str]:
    """`customer_key` → QuickBooks Customer Id (`resolve_customers`); deals whose account needs
    review, or whose new customer QuickBooks refused, are reported here."""
    pairs = [(o.account, billed_in(o, realm_cfg)) for o in opps if o.account is not None]
    resolution = resolve_customers(connection, pairs, matches, dry_run=dry_run)
    for opp in opps:
        if opp.account is None:
            continue
        key = customer_key(opp.account.id, billed_in(opp, realm_cfg))
        if key in resolution.review:
            problem = Problem(record_id=opp.id, field="Account", reason=resolution.review[key])
            _needs_review(result, opp, realm, [problem], matches[key], None)
        elif key in resolution.refused:
            answer = resolution.refused[key]
            reason = f"QuickBooks refused the new customer: {answer.message}"
            outcome = SyncOutcome(opportunity_id=opp.id, status="Error", error=reason)
            result.add(
                opp,
                outcome,
                realm=realm,
                row_outcome="Error",
                reason=reason,
                match=matches[key],
                settled=not answer.transient,
            )
    return resolution.ids


def _needs_review(
    result: RealmResult,
    opp: Opportunity,
    realm: str,
    problems: Sequence[Problem],
    match: CustomerMatch | None,
    customer_id: str | None,
) -> None:
    outcome = SyncOutcome.from_problems(opp.id, problems, customer_id)
    result.add(
        opp,
        outcome,
        realm=realm,
        row_outcome="Needs Review",
        reason=outcome.error or "",
        match=match,
    )
