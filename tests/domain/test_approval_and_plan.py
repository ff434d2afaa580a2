from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from revbridge.approval import ApprovalDecision, approval_key, needs_approval
from revbridge.config import RevbridgeConfig
from revbridge.invoices import build_invoice
from revbridge.models import Opportunity
from revbridge.plan import plan_run
from sandbox.demo_company import DemoCompany
from tests.domain import demo_records


def test_needs_approval_compares_in_the_deal_currency(
    won: dict[str, Opportunity], config: RevbridgeConfig, company: DemoCompany
) -> None:
    assert needs_approval(won["opp-vendorclash"], config)  # 41,000 USD
    assert not needs_approval(won["opp-ambiguous"], config)  # 12,000 USD
    at_threshold = won["opp-ambiguous"].model_copy(update={"amount": Decimal("25000.00")})
    assert not needs_approval(at_threshold, config)  # "above" the threshold, not at it
    assert not needs_approval(at_threshold.model_copy(update={"amount": None}), config)
    strict_eur = config.model_copy(
        update={"approval": config.approval.model_copy(update={"thresholds": {"EUR": Decimal(1)}})}
    )
    assert needs_approval(won["opp-041"], strict_eur)  # 12,000 EUR > 1 EUR
    assert not needs_approval(won["opp-ambiguous"], strict_eur)  # USD keeps 25,000
    draft = build_invoice(
        won["opp-big-eu"],
        config.realm("eu"),
        "1",
        demo_records.qbo_items(company),
        demo_records.qbo_terms(company),
        demo_records.TODAY,
    )
    assert needs_approval(draft, config)


def test_approval_key_is_lowercase_and_unique(won: dict[str, Opportunity]) -> None:
    keys = {approval_key(opp.id) for opp in won.values()}
    assert len(keys) == len(won)
    for key in keys:
        assert key == key.lower() and all(ch.isalnum() or ch == "-" for ch in key)
    some = won["opp-012"].id
    assert approval_key(some[:15]) == approval_key(some) == f"approval-{some.lower()}"


def test_approval_decision_is_plain_data() -> None:
    decided = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    decision = ApprovalDecision(
        approved=True, approver="priya.nair@acme-analytics.example", decided_at=decided
    )
    assert decision.comment == ""
    assert ApprovalDecision.model_validate_json(decision.model_dump_json()) == decision


def test_demo_plan(won: dict[str, Opportunity], config: RevbridgeConfig) -> None:
    opps = list(won.values())
    plan = plan_run(opps, config, already_invoiced={})
    assert list(plan.realms) == ["us", "eu"]
    assert plan.counts == {"ready": 16, "approval": 15, "skipped": 0, "problems": 4}
    us, eu = plan.realms["us"], plan.realms["eu"]
    ids = {opp.id: key for key, opp in won.items()}
    assert [ids[i.opportunity.id] for i in us.problems] == [
        "opp-019",
        "opp-nolines",
        "opp-unmapped",
        "opp-nobilling",
    ]
    assert ids[us.ready[-1].id] == "opp-ambiguous"  # matching, not planning, sends it to review
    assert "opp-vendorclash" in [ids[o.id] for o in us.approval]
    assert "opp-big-eu" in [ids[o.id] for o in eu.approval]
    assert all(o.amount is not None and o.amount > 25000 for o in us.approval + eu.approval)
    # input order is kept inside every bucket
    order = [o.id for o in opps]
    for bucket in (us.ready, us.approval, eu.ready, eu.approval):
        positions = [order.index(o.id) for o in bucket]
        assert positions == sorted(positions)
    assert plan_run(opps, config, {}) == plan  # deterministic


def test_already_invoiced_parked_and_approved(
    won: dict[str, Opportunity], config: RevbridgeConfig
) -> None:
    invoiced = won["opp-007"].model_copy(update={"qb_invoice_id": "130"})
    crashed = won["opp-010"]
    parked = won["opp-vendorclash"].model_copy(update={"qb_sync_status": "Awaiting Approval"})
    rejected = won["opp-026"].model_copy(update={"qb_sync_status": "Rejected"})
    approved = won["opp-big-eu"].model_copy(update={"qb_sync_status": "Awaiting Approval"})
    plan = plan_run(
        [invoiced, crashed, parked, rejected, approved],
        config,
        already_invoiced={crashed.id: "131"},
        approved={approved.id},
    )
    us = plan.realms["us"]
    assert [(s.opportunity.id, s.invoice_id) for s in us.skipped] == [
        (invoiced.id, "130"),
        (crashed.id, "131"),
        (parked.id, None),
        (rejected.id, None),
    ]
    assert us.skipped[0].reason == "already invoiced: invoice 130 (from QB_Invoice_Id__c)"
    assert us.skipped[1].reason == "already invoiced: invoice 131 (from its QuickBooks marker)"
    assert us.skipped[2].reason == "QB_Sync_Status__c is Awaiting Approval"
    assert plan.realms["eu"].ready == (approved,)  # approved: above the threshold but ready
    assert plan.counts == {"ready": 1, "approval": 0, "skipped": 4, "problems": 0}


def test_duplicates_wrong_stage_and_unroutable(
    won: dict[str, Opportunity], config: RevbridgeConfig
) -> None:
    deal = won["opp-012"]
    lost = won["opp-041"].model_copy(update={"stage": "Closed Lost"})
    apac = won["opp-007"].model_copy(update={"record_type": "APAC_Sales"})
    plan = plan_run([deal, deal, lost, apac], config)
    assert [s.reason for s in plan.skipped] == [
        "duplicate in this run's input",
        "stage is Closed Lost, not Closed Won",
    ]
    assert [i.opportunity.id for i in plan.unroutable] == [apac.id]
    assert plan.unroutable[0].reason.startswith("RecordType.DeveloperName: no realm")
    assert list(plan.realms) == ["us"]
    assert plan.realms["us"].approval == (deal,)  # 27,000
