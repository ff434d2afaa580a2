"""Customer sync (per-field source of truth) and the cleanse audit.

customer_sync:
1. Read the Account fields the org has, the Accounts, and the deals that link an Account to a
   realm's customer; per realm, the customers and terms (one batch of queries).
2. Pair Accounts and Customers (Notes marker, else the deals' QB_Customer_Id__c).
3. Plan each field: unchanged, flows from its owner, or a conflict (the non-owner side changed
   since the last sync: reported, never overwritten). ``dry_run`` stops here.
4. Write: QuickBooks sparse updates (SyncToken, requestid), Salesforce composite PATCH; keep the
   agreed fingerprints in the Prefect Variable ``customer-sync-state``.
5. Report: table + markdown artifact, Slack when something changed or conflicts.

cleanse_audit: the same reads; duplicates within each system and unlinked look-alikes across
them, as an artifact and a CSV.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.states import Completed, Failed, State

from blocks.loading import load_block
from blocks.quickbooks import QuickBooksConnection
from blocks.salesforce import SalesforceCredentials
from blocks.slack import SlackConnection
from revbridge.config import RevbridgeConfig, load_config
from revbridge.config_sections import CustomerSyncConfig
from revbridge.customer_sync import (
    SALESFORCE_COLUMNS,
    Decision,
    Pair,
    cleanse_audit,
    link_pairs,
    plan_sync,
    quickbooks_patch,
    salesforce_fields,
    salesforce_patch,
)
from revbridge.report import escape_slack
from revbridge.writeback import MAX_RECORDS
from tasks.audit import publish_audit
from tasks.customers import account_fields, update_customers
from tasks.quickbooks import load_realm_reference
from tasks.salesforce import query_records, update_records
from tasks.slack import post_message
from tasks.state import read_state, write_state

DEFAULT_CONFIG = "config/demo.yaml"
STATE_VARIABLE = "customer-sync-state"
BASE_COLUMNS = ("Id", "Name", "Website", "Billing_Email__c", "QB_Customer_Id__c")


@flow(name="customer-sync", log_prints=False)
def customer_sync(dry_run: bool = False, config_path: str = DEFAULT_CONFIG) -> State[Any]:
    """Sync linked customers field by field from each field's owner; ``dry_run`` reports the
    planned changes and conflicts and writes nothing."""
    logger = get_run_logger()
    config = load_config(config_path)
    owners = dict(customer_sync_settings(config).fields)
    salesforce = load_block(SalesforceCredentials, config.salesforce_block)
    available = account_fields(salesforce)
    skipped = salesforce_fields(owners, available)
    for field in skipped:
        logger.warning(
            "field %s skipped: Salesforce Account lacks %s", field, SALESFORCE_COLUMNS[field]
        )
        owners.pop(field)
    columns = [*BASE_COLUMNS, *(c for f in owners for c in SALESFORCE_COLUMNS[f])]
    _, pairs, references = _read(config, salesforce, columns, available)

    previous = (read_state(STATE_VARIABLE) or {}).get("pairs", {})
    plan = plan_sync(pairs, owners, previous)
    logger.info(
        "%s pairs: %s changes, %s conflicts", len(pairs), len(plan.changes), len(plan.conflicts)
    )
    errors: list[str] = []
    state = plan.state
    if not dry_run and plan.changes:
        failed, errors = _apply(config, salesforce, plan.changes, pairs, references)
        state = {k: (dict(previous.get(k, {})) if k in failed else v) for k, v in state.items()}
    if not dry_run and state != previous:
        write_state(STATE_VARIABLE, {"pairs": state})

    _report(config, plan.decisions, list(skipped), errors, dry_run)
    message = (
        f"{len(pairs)} linked customers: {len(plan.changes)} "
        f"{'planned ' if dry_run else ''}changes, {len(plan.conflicts)} conflicts"
    )
    data = {
        "changes": [d.model_dump(mode="json") for d in plan.changes],
        "conflicts": [d.model_dump(mode="json") for d in plan.conflicts],
        "skipped_fields": skipped,
    }
    if errors:
        return Failed(
            message=f"{message}; {len(errors)} failed: " + "; ".join(errors[:5]), data=data
        )
    return Completed(message=message, data=data)


@flow(name="customer-cleanse-audit", log_prints=False)
def customer_cleanse_audit(
    config_path: str = DEFAULT_CONFIG, report_dir: str | None = None
) -> State[Any]:
    """Duplicates within Salesforce Accounts, within each realm's customers, and unlinked
    look-alikes across the systems: a table artifact and a CSV."""
    config = load_config(config_path)
    settings = customer_sync_settings(config)
    salesforce = load_block(SalesforceCredentials, config.salesforce_block)
    accounts, pairs, references = _read(config, salesforce, list(BASE_COLUMNS), None)
    customers = {realm: ref.get("Customer", []) for realm, ref in references.items()}
    found = cleanse_audit(
        accounts,
        customers,
        pairs,
        config.matching.free_mail_domains,
        config.matching.fuzzy_review,
    )
    rows = [d.model_dump() for d in found]
    folder = Path(report_dir or settings.report_dir).expanduser().resolve()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "cleanse-audit.csv"
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=["kind", "realm", "records", "names", "reason"])
    writer.writeheader()
    writer.writerows(rows)
    path.write_text(buffer.getvalue(), encoding="utf-8")
    lines = [f"# Cleanse audit: {len(found)} findings", "", f"CSV: `{path}`", ""]
    lines += [f"- **{d.kind}** {d.realm} {d.names}: {d.reason}" for d in found]
    publish_audit("customer-cleanse-audit", rows, "\n".join(lines), description="Cleanse audit")
    return Completed(message=f"{len(found)} findings", data={"csv": str(path), "rows": rows})


def customer_sync_settings(config: RevbridgeConfig) -> CustomerSyncConfig:
    """The ``customer_sync`` section, or its defaults while the config has none."""
    section = getattr(config, "customer_sync", None)
    return section if isinstance(section, CustomerSyncConfig) else CustomerSyncConfig()


def _read(
    config: RevbridgeConfig,
    salesforce: SalesforceCredentials,
    columns: list[str],
    available: list[str] | None,
) -> tuple[list[dict[str, Any]], list[Pair], dict[str, dict[str, list[dict[str, Any]]]]]:
    wanted = [c for c in dict.fromkeys(columns) if available is None or c in available]
    accounts = query_records(salesforce, f"SELECT {', '.join(wanted)} FROM Account ORDER BY Id")
    links = query_records(
        salesforce,
        "SELECT AccountId, QB_Realm__c, QB_Customer_Id__c FROM Opportunity "
        "WHERE QB_Customer_Id__c != null",
    )
    realm_of = {r.realm_id: name for name, r in config.realms.items()}
    references = {
        name: load_realm_reference(load_block(QuickBooksConnection, realm.connection_block))
        for name, realm in config.realms.items()
    }
    deal_links = [
        (realm_of[str(r["QB_Realm__c"])], str(r["AccountId"]), str(r["QB_Customer_Id__c"]))
        for r in links
        if r.get("AccountId") and str(r.get("QB_Realm__c")) in realm_of
    ]
    customers = {realm: ref.get("Customer", []) for realm, ref in references.items()}
    return accounts, link_pairs(accounts, customers, deal_links), references


def _apply(
    config: RevbridgeConfig,
    salesforce: SalesforceCredentials,
    changes: list[Decision],
    pairs: list[Pair],
    references: dict[str, dict[str, list[dict[str, Any]]]],
) -> tuple[set[str], list[str]]:
    """Write the changes; returns the pairs that failed (their state is not advanced)."""
    by_key = {p.key: p for p in pairs}
    failed: set[str] = set()
    errors: list[str] = []
    for realm, realm_cfg in config.realms.items():
        terms = {str(t["Name"]): str(t["Id"]) for t in references[realm].get("Term", [])}
        patches: dict[str, tuple[str, dict[str, Any]]] = {}
        keys: dict[str, str] = {}
        for change in (c for c in changes if c.realm == realm and c.action == "to_quickbooks"):
            customer = by_key[change.pair].customer
            try:
                fields = quickbooks_patch(change.field, change.salesforce, customer, terms)
            except ValueError as exc:
                failed.add(change.pair)
                errors.append(f"{change.name} ({change.field}): {exc}")
                continue
            token, current = patches.get(change.customer_id, (str(customer["SyncToken"]), {}))
            patches[change.customer_id] = (token, {**current, **fields})
            keys[change.customer_id] = change.pair
        if patches:
            connection = load_block(QuickBooksConnection, realm_cfg.connection_block)
            for customer_id, error in update_customers(connection, patches).items():
                failed.add(keys[customer_id])
                errors.append(f"QuickBooks customer {customer_id}: {error}")
    records: dict[str, dict[str, Any]] = {}
    keys_by_account: dict[str, set[str]] = {}
    for change in (c for c in changes if c.action == "to_salesforce"):
        record = records.setdefault(
            change.account_id, {"attributes": {"type": "Account"}, "Id": change.account_id}
        )
        record.update(salesforce_patch(change.field, change.quickbooks))
        keys_by_account.setdefault(change.account_id, set()).add(change.pair)
    if records:
        rows = list(records.values())
        bodies = [
            {"allOrNone": False, "records": rows[i : i + MAX_RECORDS]}
            for i in range(0, len(rows), MAX_RECORDS)
        ]
        for failure in update_records(salesforce, bodies):
            failed |= keys_by_account.get(failure.opportunity_id, set())
            errors.append(f"Salesforce Account {failure.opportunity_id}: {failure.message}")
    return failed, errors


def _report(
    config: RevbridgeConfig,
    decisions: tuple[Decision, ...],
    skipped: Sequence[str],
    errors: list[str],
    dry_run: bool,
) -> None:
    title = "Customer sync" + (" (dry run)" if dry_run else "")
    rows = [
        {
            "realm": d.realm,
            "account": d.name,
            "account_id": d.account_id,
            "customer_id": d.customer_id,
            "field": d.field,
            "action": d.action,
            "salesforce": str(d.salesforce),
            "quickbooks": str(d.quickbooks),
            "reason": d.reason,
        }
        for d in decisions
    ]
    lines = [f"# {title}", ""]
    if skipped:
        lines.append(f"Skipped (no Salesforce field): {', '.join(skipped)}")
    lines += [f"- {r['action']}: {r['account']} {r['field']} — {r['reason']}" for r in rows]
    lines += [f"- error: {e}" for e in errors]
    publish_audit("customer-sync", rows, "\n".join(lines) or title, description=title)
    if decisions or errors:
        changes = sum(1 for d in decisions if d.action != "conflict")
        conflicts = [d for d in decisions if d.action == "conflict"]
        text = [f"*{title}*: {changes} change(s), {len(conflicts)} conflict(s)"]
        text += [f"• conflict: {escape_slack(d.name)} {d.field}" for d in conflicts[:5]]
        text += [f"• error: {escape_slack(e)}" for e in errors[:5]]
        post_message(
            load_block(SlackConnection, config.slack.block),
            "\n".join(text),
            channel=config.slack.alerts_channel,
        )
