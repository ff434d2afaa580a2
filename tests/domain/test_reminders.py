"""Reminder, escalation and digest rules (revbridge.reminders) and the ``reminders`` config."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest

from revbridge.aging import OpenInvoice, StoredAging, age
from revbridge.config import ConfigError, load_config
from revbridge.config_sections import RemindersConfig
from revbridge.reminders import (
    ContractInfo,
    Escalation,
    EscalationRow,
    ReminderRow,
    RenewalInvoice,
    deal_escalations,
    existing_markers,
    plan_reminders,
    realm_digest,
    reminder_state,
    reminder_updates,
    renewal_escalations,
    task_record,
    task_subject,
    tasks_query,
)

T = date(2026, 3, 1)
CONTRACT = "800000000000001AAA"
REALM = "9341453172461001"


def invoice_row(**extra: Any) -> dict[str, Any]:
    row = {
        "Id": "145",
        "DocNumber": "1045",
        "PrivateNote": f"revbridge:contract={CONTRACT}:renewal={T}",
        "DueDate": str(T),
        "TxnDate": str(T - timedelta(days=7)),
        "Balance": 1200,
        "CurrencyRef": {"value": "USD"},
        "CustomerRef": {"value": "3", "name": "Globex"},
        "BillEmail": {"Address": "ap@globex.example"},
    }
    return row | extra


def renewal(**extra: Any) -> RenewalInvoice:
    found = RenewalInvoice.from_qbo(invoice_row(**extra), REALM)
    assert found is not None
    return found


def contract(**extra: Any) -> ContractInfo:
    return ContractInfo(id=CONTRACT, number="00000101", owner_id="005A", **extra)


@pytest.mark.parametrize(
    ("today", "sent", "delivered", "expected"),
    [
        (T + timedelta(days=9), None, None, "not due"),
        (T + timedelta(days=10), None, None, "due"),
        (T + timedelta(days=40), None, None, "due"),  # missed days: still once
        (T + timedelta(days=12), T + timedelta(days=10), None, "sent"),
        (T + timedelta(days=12), T - timedelta(days=355), None, "due"),  # last year's renewal
        (T + timedelta(days=12), None, "2026-03-11T09:00:00-08:00", "delivered"),  # lost write
        (T + timedelta(days=12), None, "2026-02-22T09:00:00-08:00", "due"),  # the first e-mail
    ],
)
def test_reminder_state(
    today: date, sent: date | None, delivered: str | None, expected: str
) -> None:
    extra = (
        {"DeliveryInfo": {"DeliveryType": "Email", "DeliveryTime": delivered}} if delivered else {}
    )
    assert reminder_state(renewal(**extra), contract(reminder_sent=sent), today, 10) == expected


def test_only_open_renewal_invoices_with_a_known_contract_are_planned() -> None:
    assert RenewalInvoice.from_qbo(invoice_row(Balance=0), REALM) is None  # paid or voided
    deal = invoice_row(PrivateNote="revbridge:opportunity=006000000000001AAA")
    assert RenewalInvoice.from_qbo(deal, REALM) is None
    planned = plan_reminders([renewal()], {CONTRACT: contract()}, T + timedelta(days=10), 10)
    assert [p.state for p in planned] == ["due"]
    assert len(planned[0].request_id) <= 50  # QuickBooks' requestid limit
    assert plan_reminders([renewal()], {}, T + timedelta(days=10), 10) == []


def test_write_back_keeps_the_latest_date_per_contract() -> None:
    planned = plan_reminders([renewal()], {CONTRACT: contract()}, T + timedelta(days=10), 10)
    rows = [
        ReminderRow.of(planned[0], T + timedelta(days=10), "Reminded", sent_on=T + timedelta(10)),
        ReminderRow.of(planned[0], T + timedelta(days=10), "Needs Review", reason="no e-mail"),
    ]
    (body,) = reminder_updates(rows)
    assert body["records"] == [
        {
            "attributes": {"type": "Contract"},
            "Id": CONTRACT,
            "Renewal_Reminder_Sent__c": str(T + timedelta(days=10)),
        }
    ]


def deal(days_due_ago: tuple[int, ...], today: date) -> list[Any]:
    opp = StoredAging(id="006000000000001AAA", name="Globex — Platform", owner_id="005B")
    invoices = [
        OpenInvoice(
            invoice_id=str(n),
            opportunity_id=opp.id,
            realm_id=REALM,
            balance=Decimal(100),
            due_date=today - timedelta(days=ago),
        )
        for n, ago in enumerate(days_due_ago, start=1)
    ]
    return age([opp], invoices, today, [REALM])


def test_escalation_is_per_invoice_and_starts_after_90_days() -> None:
    today = date(2026, 6, 1)
    found = deal_escalations(deal((90, 91, 200), today), today, 90)
    assert [(e.invoice_id, e.days, e.owner_id, e.what_type) for e in found] == [
        ("2", 91, "005B", "Opportunity"),
        ("3", 200, "005B", "Opportunity"),
    ]
    on_contract = renewal_escalations(
        [renewal()], {CONTRACT: contract(owner_name="Ava")}, T + timedelta(days=91), 90
    )
    assert [(e.what_id, e.what_type, e.owner_id) for e in on_contract] == [
        (CONTRACT, "Contract", "005A")
    ]
    assert renewal_escalations([renewal()], {}, T + timedelta(days=200), 90) == []


def escalation(**extra: Any) -> Escalation:
    values: dict[str, Any] = {
        "what_id": "006000000000001AAA",
        "what_type": "Opportunity",
        "name": "Globex — Platform",
        "owner_id": "005B",
        "realm_id": REALM,
        "invoice_id": "145",
        "doc_number": "1045",
        "customer": "Globex",
        "balance": Decimal("1200.5"),
        "currency": "USD",
        "due_date": T,
        "days": 95,
    }
    return Escalation(**(values | extra))


def test_task_subject_carries_the_marker_found_again_and_fits_255() -> None:
    e = escalation()
    subject = task_subject(e, "Collect {invoice} from {customer} ({days} days)")
    assert subject == f"Collect #1045 from Globex (95 days) [revbridge:invoice={REALM}/145]"
    assert existing_markers([{"Subject": subject}, {"Subject": "Call Globex"}]) == {e.marker}
    long = task_subject(escalation(customer="x" * 400), "{customer}")
    assert len(long) == 255 and long.endswith(e.marker)
    record = task_record(e, RemindersConfig(task_priority="Normal"), T + timedelta(days=95))
    assert record["OwnerId"] == "005B" and record["WhatId"] == e.what_id
    assert record["ActivityDate"] == str(T + timedelta(days=98)) and record["Priority"] == "Normal"
    assert "USD 1,200.50" in record["Description"]
    assert "LIKE '%[revbridge:invoice=%'" in tasks_query([e.what_id])
    with pytest.raises(ValueError):
        tasks_query([])


def test_digest_lists_moves_reminders_tasks_and_problems_for_its_realm_only() -> None:
    today = date(2026, 6, 1)
    decisions = deal((45,), today)
    planned = plan_reminders([renewal()], {CONTRACT: contract(owner_name="Ava")}, today, 10)
    rows = [
        ReminderRow.of(planned[0], today, "Reminded", sent_on=today),
        ReminderRow.of(planned[0], today, "Needs Review", reason="the invoice has no BillEmail"),
    ]
    tasks = [
        EscalationRow(escalation=escalation(), outcome="Created", task_id="00T1"),
        EscalationRow(escalation=escalation(realm_id="1"), outcome="Created", task_id="00T2"),
    ]
    text = realm_digest("us", REALM, decisions, rows, tasks, detailed=True)
    assert text.startswith("*Daily receivables digest — us*: 1 open invoice(s)")
    assert "Globex — Platform → 31-60" in text
    assert "renewal reminders e-mailed: 1" in text and "owner Ava" in text
    assert "Tasks created for long-overdue invoices: 1" in text  # the other realm's is not here
    assert "needs a human: 1" in text and "has no BillEmail" in text
    summary = realm_digest("us", REALM, decisions, rows, tasks, detailed=False)
    assert summary.startswith("*Receivables aging — us*") and "owner Ava" not in summary


def test_reminders_config_defaults_and_errors() -> None:
    base = "salesforce_block: sf\nslack: {block: s}\nrealms:\n  us: {realm_id: '1', "
    base += "connection_block: q, currency: USD}\n"
    config = load_config(base)
    assert (config.reminders.days_after_due, config.reminders.escalate_days) == (10, 90)
    assert config.reminders.digest_channels == {}
    with pytest.raises(ConfigError) as bad:
        load_config(
            base + "reminders: {digest_channels: {eu: '#finance-ops'}, task_subject: '{x}'}"
        )
    assert "reminders.task_subject: unknown placeholder" in str(bad.value)
    with pytest.raises(ConfigError, match="unknown realm 'eu'"):
        load_config(base + "reminders: {digest_channels: {eu: '#finance-ops'}}")
    off = load_config(base + "reminders: {days_after_due: null, escalate_days: null}")
    assert off.reminders.days_after_due is None and off.reminders.escalate_days is None
