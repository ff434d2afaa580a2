"""The follow-up steps of the receivables aging flow (plain functions, as `flows.invoicing` is for
the Closed Won flow): renewal reminders and Tasks for invoices long past due. The rules are in
`revbridge.reminders`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date

from prefect import get_run_logger

from blocks.quickbooks import QuickBooksConnection
from blocks.salesforce import SalesforceCredentials
from revbridge.batch import chunk
from revbridge.config_sections import RemindersConfig
from revbridge.reminders import (
    MAX_IDS,
    ContractInfo,
    Escalation,
    EscalationRow,
    Reminder,
    ReminderRow,
    RenewalInvoice,
    contracts_query,
    existing_markers,
    missing_email,
    orphan_invoices,
    plan_reminders,
    reminder_updates,
    task_record,
    tasks_query,
)
from tasks.reminders import create_records, query_all_rows, send_invoices
from tasks.salesforce import query_records, update_records


def renewal_contracts(
    salesforce: SalesforceCredentials, invoices: Sequence[RenewalInvoice]
) -> dict[str, ContractInfo]:
    """Contract Id → the Contract of each open renewal invoice (Id-listed queries); invoices
    whose Contract is gone are logged."""
    ids = sorted({i.contract_id for i in invoices})
    contracts: dict[str, ContractInfo] = {}
    for part in chunk(ids, MAX_IDS):
        for record in query_records(salesforce, contracts_query(part)):
            contract = ContractInfo.from_record(record)
            contracts[contract.id] = contract
    for invoice in orphan_invoices(invoices, contracts):
        get_run_logger().warning(
            "renewal invoice %s (realm %s) names Contract %s, which Salesforce does not have",
            invoice.label,
            invoice.realm_id,
            invoice.contract_id,
        )
    return contracts


def send_reminders(
    salesforce: SalesforceCredentials,
    connections: Mapping[str, QuickBooksConnection],
    invoices: Sequence[RenewalInvoice],
    contracts: Mapping[str, ContractInfo],
    today: date,
    days_after_due: int,
) -> tuple[list[ReminderRow], list[str]]:
    """E-mail each due reminder once (``connections``: realm id → connection) and record it on
    its Contract. Returns the report rows and the errors."""
    rows: list[ReminderRow] = []
    planned = plan_reminders(invoices, contracts, today, days_after_due)
    by_realm: dict[str, list[tuple[str, str]]] = {}
    due: dict[tuple[str, str], Reminder] = {}
    for reminder in planned:
        if reminder.state == "delivered":  # sent before, the write-back was lost: record it
            rows.append(
                ReminderRow.of(
                    reminder,
                    today,
                    "Recorded",
                    sent_on=reminder.invoice.delivered_on,
                    reason="QuickBooks e-mailed it on "
                    f"{reminder.invoice.delivered_on}: recorded, not sent again",
                )
            )
        elif problem := missing_email(reminder):
            rows.append(ReminderRow.of(reminder, today, "Needs Review", reason=problem))
        else:
            key = (reminder.invoice.realm_id, reminder.invoice.invoice_id)
            due[key] = reminder
            by_realm.setdefault(reminder.invoice.realm_id, []).append(
                (reminder.invoice.invoice_id, reminder.request_id)
            )
    for realm_id, sends in by_realm.items():
        answers = send_invoices(connections[realm_id], sends)
        for (invoice_id, _), problem in zip(sends, answers, strict=True):
            reminder = due[(realm_id, invoice_id)]
            if problem:
                reason = f"QuickBooks did not send it: {problem}"
                rows.append(ReminderRow.of(reminder, today, "Error", reason=reason))
            else:
                rows.append(ReminderRow.of(reminder, today, "Reminded", sent_on=today))

    errors = [
        f"{r.contract}: reminder of {r.invoice}: {r.reason}" for r in rows if r.outcome == "Error"
    ]
    bodies = reminder_updates(rows)
    if bodies:
        failures = update_records(salesforce, bodies)
        # the e-mail went: the next run finds it in DeliveryInfo and records it then
        errors += [
            f"{f.opportunity_id}: reminder write-back refused: {f.message}" for f in failures
        ]
    get_run_logger().info(
        "renewal reminders: %s",
        ", ".join(
            f"{o}: {sum(1 for r in rows if r.outcome == o)}"
            for o in sorted({r.outcome for r in rows})
        )
        or "none due",
    )
    return rows, errors


def create_tasks(
    salesforce: SalesforceCredentials,
    escalations: Sequence[Escalation],
    settings: RemindersConfig,
    today: date,
) -> tuple[list[EscalationRow], list[str]]:
    """One Task per escalated invoice that has none yet (deleted Tasks count: queryAll).
    Returns the rows of the Tasks created (or refused) and the errors."""
    if not escalations:
        return [], []
    what_ids = sorted({e.what_id for e in escalations})
    found: set[str] = set()
    for part in chunk(what_ids, MAX_IDS):
        found |= existing_markers(query_all_rows(salesforce, tasks_query(part)))
    new: dict[str, Escalation] = {}
    for escalation in escalations:
        if escalation.marker not in found:
            new.setdefault(escalation.marker, escalation)
    if not new:
        return [], []
    todo = list(new.values())
    answers = create_records(salesforce, [task_record(e, settings, today) for e in todo])
    rows = [
        EscalationRow(escalation=e, outcome="Created", task_id=task_id)
        if task_id
        else EscalationRow(escalation=e, outcome="Error", reason=problem)
        for e, (task_id, problem) in zip(todo, answers, strict=True)
    ]
    errors = [
        f"{r.escalation.name}: Task for invoice {r.escalation.invoice_label} refused: {r.reason}"
        for r in rows
        if r.outcome == "Error"
    ]
    return rows, errors
