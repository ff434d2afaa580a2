"""The run plan: every fetched deal sorted into ready, awaiting approval, skipped or problems,
grouped per realm, in input order (deterministic for the same input)."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict
from pydantic import Field as ModelField

from revbridge.approval import needs_approval
from revbridge.config import RevbridgeConfig
from revbridge.models import Opportunity, Problem
from revbridge.routing import route
from revbridge.validate import validate

CLOSED_WON = "Closed Won"
# QB_Sync_Status__c values that park a deal until a human acts (the approval run, or someone
# clearing the status): the write-back bumps SystemModstamp, so without this every watermark run
# would ask again.
PARKED_STATUSES = frozenset({"Awaiting Approval", "Rejected"})


class Skipped(BaseModel):
    model_config = ConfigDict(frozen=True)

    opportunity: Opportunity
    reason: str
    invoice_id: str | None = None  # set: already invoiced (write it back if Salesforce lacks it)


class Invalid(BaseModel):
    model_config = ConfigDict(frozen=True)

    opportunity: Opportunity
    problems: tuple[Problem, ...]

    @property
    def reason(self) -> str:
        return "; ".join(f"{p.field}: {p.reason}" for p in self.problems)


class RealmPlan(BaseModel):
    model_config = ConfigDict(frozen=True)

    realm: str
    ready: tuple[Opportunity, ...] = ()
    approval: tuple[Opportunity, ...] = ()
    skipped: tuple[Skipped, ...] = ()
    problems: tuple[Invalid, ...] = ()


class RunPlan(BaseModel):
    model_config = ConfigDict(frozen=True)

    realms: dict[str, RealmPlan] = ModelField(default_factory=dict)
    unroutable: tuple[Invalid, ...] = ()
    skipped: tuple[Skipped, ...] = ()  # skipped before routing (duplicates, wrong stage)

    @property
    def counts(self) -> dict[str, int]:
        plans = self.realms.values()
        return {
            "ready": sum(len(p.ready) for p in plans),
            "approval": sum(len(p.approval) for p in plans),
            "skipped": sum(len(p.skipped) for p in plans) + len(self.skipped),
            "problems": sum(len(p.problems) for p in plans) + len(self.unroutable),
        }


@dataclass
class _Bucket:
    ready: list[Opportunity] = field(default_factory=list)
    approval: list[Opportunity] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    problems: list[Invalid] = field(default_factory=list)


def plan_run(
    opps: Iterable[Opportunity],
    config: RevbridgeConfig,
    already_invoiced: Mapping[str, str] | None = None,
    approved: Collection[str] = (),
) -> RunPlan:
    """Sort ``opps`` for this run.

    ``already_invoiced``: Opportunity Id → QuickBooks Invoice Id found by the PrivateNote marker
    (an invoice created before a crash, not yet written back). ``approved``: Opportunity Ids an
    approver has approved (the approval run passes its deal): they skip the threshold and the
    parked-status check. Realms appear in config order, only when they have deals.
    """
    found = dict(already_invoiced or {})
    buckets: dict[str, _Bucket] = {}
    unroutable: list[Invalid] = []
    skipped: list[Skipped] = []
    seen: set[str] = set()
    for opp in opps:
        if opp.id in seen:
            skipped.append(Skipped(opportunity=opp, reason="duplicate in this run's input"))
            continue
        seen.add(opp.id)
        if opp.stage != CLOSED_WON:
            skipped.append(Skipped(opportunity=opp, reason=f"stage is {opp.stage}, not Closed Won"))
            continue
        realm = route(opp, config)
        if isinstance(realm, Problem):
            unroutable.append(Invalid(opportunity=opp, problems=(realm,)))
            continue
        bucket = buckets.setdefault(realm, _Bucket())
        invoice_id = opp.qb_invoice_id or found.get(opp.id)
        if invoice_id:
            source = "QB_Invoice_Id__c" if opp.qb_invoice_id else "its QuickBooks marker"
            bucket.skipped.append(
                Skipped(
                    opportunity=opp,
                    reason=f"already invoiced: invoice {invoice_id} (from {source})",
                    invoice_id=invoice_id,
                )
            )
            continue
        if opp.qb_sync_status in PARKED_STATUSES and opp.id not in approved:
            bucket.skipped.append(
                Skipped(opportunity=opp, reason=f"QB_Sync_Status__c is {opp.qb_sync_status}")
            )
            continue
        problems = validate(opp, config, realm)
        if problems:
            bucket.problems.append(Invalid(opportunity=opp, problems=tuple(problems)))
        elif opp.id not in approved and needs_approval(opp, config):
            bucket.approval.append(opp)
        else:
            bucket.ready.append(opp)
    return RunPlan(
        realms={
            name: RealmPlan(
                realm=name,
                ready=tuple(buckets[name].ready),
                approval=tuple(buckets[name].approval),
                skipped=tuple(buckets[name].skipped),
                problems=tuple(buckets[name].problems),
            )
            for name in config.realms
            if name in buckets
        },
        unroutable=tuple(unroutable),
        skipped=tuple(skipped),
    )
