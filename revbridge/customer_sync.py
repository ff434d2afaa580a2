"""Customer sync with a per-field source of truth, and the cleanse audit. Pure: records in,
decisions out.

Each linked Account ↔ Customer pair (Customer Notes ``Salesforce Account Id: <Id>``, or a deal
that carries both the Account and the realm's QB_Customer_Id__c) is compared field by field.
A field that differs flows only from its owner. The state kept per pair and field is a
fingerprint of the value both sides last agreed on; when the NON-owner side moved away from it,
someone edited the wrong system: that is a conflict, reported and not overwritten (no sync war).
A run with nothing new writes nothing: agreeing fields and unresolved conflicts change nothing.

Fields (Salesforce Account ↔ QuickBooks Customer):

- ``name``: Name ↔ CompanyName (DisplayName is left alone: it is QuickBooks' unique key);
- ``billing_address``: Billing* ↔ BillAddr;
- ``contact``: Phone ↔ PrimaryPhone;
- ``email``: Billing_Email__c ↔ PrimaryEmailAddr;
- ``payment_terms``: Payment_Terms__c ↔ SalesTermRef (by Term name);
- ``tax``: Tax_Exempt__c ↔ Taxable (inverted).

A field whose Salesforce column the org lacks is skipped and reported (see `salesforce_fields`).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from rapidfuzz import fuzz

from revbridge.config_sections import (
    FieldName,
    Owner,
)
from revbridge.ids import is_salesforce_id, same_record, to_18
from revbridge.text import clean_text, domain_of, normalise_name

# the Salesforce Account columns behind each field
SALESFORCE_COLUMNS: dict[FieldName, tuple[str, ...]] = {
    "name": ("Name",),
    "billing_address": (
        "BillingStreet", "BillingCity", "BillingState", "BillingPostalCode", "BillingCountry",
    ),
    "contact": ("Phone",),
    "email": ("Billing_Email__c",),
    "payment_terms": ("Payment_Terms__c",),
    "tax": ("Tax_Exempt__c",),
}  # fmt: skip
_ADDRESS_PARTS = ("City", "CountrySubDivisionCode", "PostalCode", "Country")
_NOTES_ID = re.compile(r"Salesforce Account Id:\s*([0-9A-Za-z]{15}(?:[0-9A-Za-z]{3})?)\b")


class Pair(BaseModel):
    """A linked Salesforce Account and QuickBooks Customer."""

    model_config = ConfigDict(frozen=True)

    realm: str
    account: dict[str, Any]
    customer: dict[str, Any]

    @property
    def key(self) -> str:
        return f"{self.realm}:{self.customer['Id']}:{to_18(self.account['Id'])}"


class Decision(BaseModel):
    """What the run does about one field of one pair."""

    model_config = ConfigDict(frozen=True)

    pair: str
    account_id: str
    customer_id: str
    realm: str
    name: str
    field: FieldName
    action: Literal["to_quickbooks", "to_salesforce", "conflict"]
    salesforce: Any = None
    quickbooks: Any = None
    reason: str = ""


class Plan(BaseModel):
    model_config = ConfigDict(frozen=True)

    decisions: tuple[Decision, ...] = ()
    state: dict[str, dict[str, str]] = Field(default_factory=dict)  # pair → field → fingerprint

    @property
    def conflicts(self) -> list[Decision]:
        return [d for d in self.decisions if d.action == "conflict"]

    @property
    def changes(self) -> list[Decision]:
        return [d for d in self.decisions if d.action != "conflict"]


# ---- pairs -----------------------------------------------------------------------------------
def link_pairs(
    accounts: Iterable[Mapping[str, Any]],
    customers: Mapping[str, Sequence[Mapping[str, Any]]],
    deal_links: Iterable[tuple[str, str, str]] = (),
) -> list[Pair]:
    """Pairs by the Customer Notes marker, then by ``deal_links`` (realm, Account Id, Customer
    Id) from deals that carry QB_Realm__c and QB_Customer_Id__c. ``customers``: realm → rows."""
    by_id = {to_18(str(a["Id"])): dict(a) for a in accounts if is_salesforce_id(str(a["Id"]))}
    pairs: dict[tuple[str, str], Pair] = {}
    for realm, rows in customers.items():
        for customer in rows:
            for found in _NOTES_ID.findall(str(customer.get("Notes") or "")):
                account = by_id.get(to_18(found))
                if account is not None:
                    pair = Pair(realm=realm, account=account, customer=dict(customer))
                    pairs.setdefault((realm, str(customer["Id"])), pair)
    for realm, account_id, customer_id in deal_links:
        account = by_id.get(to_18(account_id)) if is_salesforce_id(account_id) else None
        matches = [c for c in customers.get(realm, []) if str(c["Id"]) == customer_id]
        if account is not None and matches:
            pair = Pair(realm=realm, account=account, customer=dict(matches[0]))
            pairs.setdefault((realm, customer_id), pair)
    return sorted(pairs.values(), key=lambda p: p.key)


# ---- field values ----------------------------------------------------------------------------
def salesforce_value(field: FieldName, account: Mapping[str, Any]) -> Any:
    """The canonical value of ``field`` on a Salesforce Account."""
    if field == "billing_address":
        street = clean_text(account.get("BillingStreet"), multiline=True)
        return [
            street,
            *(
                clean_text(account.get(f"Billing{p}"))
                for p in ("City", "State", "PostalCode", "Country")
            ),
        ]
    if field == "tax":
        value = account.get("Tax_Exempt__c")
        return None if value is None else not bool(value)  # canonical: taxable
    column = SALESFORCE_COLUMNS[field][0]
    text = clean_text(account.get(column))
    return text.lower() if field == "email" else text


def quickbooks_value(field: FieldName, customer: Mapping[str, Any]) -> Any:
    """The canonical value of ``field`` on a QuickBooks Customer."""
    if field == "name":
        return clean_text(customer.get("CompanyName") or customer.get("DisplayName"))
    if field == "billing_address":
        address = customer.get("BillAddr") or {}
        lines = [clean_text(address.get(f"Line{i}")) for i in range(1, 6)]
        return ["\n".join(ln for ln in lines if ln)] + [
            clean_text(address.get(p)) for p in _ADDRESS_PARTS
        ]
    if field == "contact":
        return clean_text((customer.get("PrimaryPhone") or {}).get("FreeFormNumber"))
    if field == "email":
        return clean_text((customer.get("PrimaryEmailAddr") or {}).get("Address")).lower()
    if field == "payment_terms":
        return clean_text((customer.get("SalesTermRef") or {}).get("name"))
    value = customer.get("Taxable")
    return None if value is None else bool(value)


def quickbooks_patch(
    field: FieldName, value: Any, customer: Mapping[str, Any], terms: Mapping[str, str]
) -> dict[str, Any]:
    """The sparse-update fields that set ``field`` to a Salesforce-side ``value``."""
    if field == "name":
        return {"CompanyName": value}
    if field == "billing_address":
        street, city, state, postal, country = value
        lines = [ln for ln in street.split("\n") if ln][:5]
        address = {f"Line{i}": ln for i, ln in enumerate(lines, start=1)}
        for key, part in zip(_ADDRESS_PARTS, (city, state, postal, country), strict=True):
            address[key] = part
        old = customer.get("BillAddr") or {}
        return {"BillAddr": {**({"Id": old["Id"]} if "Id" in old else {}), **address}}
    if field == "contact":
        return {"PrimaryPhone": {"FreeFormNumber": value}}
    if field == "email":
        return {"PrimaryEmailAddr": {"Address": value}}
    if field == "payment_terms":
        term_id = terms.get(value)
        if term_id is None:
            raise ValueError(f"QuickBooks has no Term named {value!r}")
        return {"SalesTermRef": {"value": term_id}}
    return {"Taxable": bool(value)}


def salesforce_patch(field: FieldName, value: Any) -> dict[str, Any]:
    """The Account fields that set ``field`` to a QuickBooks-side ``value``."""
    if field == "billing_address":
        street, city, state, postal, country = value
        return {
            "BillingStreet": street or None,
            "BillingCity": city or None,
            "BillingState": state or None,
            "BillingPostalCode": postal or None,
            "BillingCountry": country or None,
        }
    if field == "tax":
        return {"Tax_Exempt__c": None if value is None else not value}
    return {SALESFORCE_COLUMNS[field][0]: value or None}


def fingerprint(value: Any) -> str:
    canonical = json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


# ---- the plan --------------------------------------------------------------------------------
def plan_sync(
    pairs: Iterable[Pair],
    owners: Mapping[FieldName, Owner],
    previous: Mapping[str, Mapping[str, str]],
) -> Plan:
    """Decide every field of every pair (see the module docstring). ``previous``: the state of
    the last run. Returns the decisions and the state to keep if every change is applied."""
    decisions: list[Decision] = []
    state: dict[str, dict[str, str]] = {}
    for pair in pairs:
        before = previous.get(pair.key, {})
        kept: dict[str, str] = {}
        for field, owner in owners.items():
            sf = salesforce_value(field, pair.account)
            qb = quickbooks_value(field, pair.customer)
            agreed = before.get(field)
            if sf == qb:
                kept[field] = fingerprint(sf)
                continue
            ours, theirs = (sf, qb) if owner == "salesforce" else (qb, sf)
            common = {
                "pair": pair.key,
                "account_id": to_18(str(pair.account["Id"])),
                "customer_id": str(pair.customer["Id"]),
                "realm": pair.realm,
                "name": clean_text(pair.account.get("Name")),
                "field": field,
                "salesforce": sf,
                "quickbooks": qb,
            }
            other = "QuickBooks" if owner == "salesforce" else "Salesforce"
            if agreed is not None and fingerprint(theirs) != agreed:
                decisions.append(
                    Decision(
                        **common,
                        action="conflict",
                        reason=f"{field} is owned by {owner.title()} but was changed in {other} "
                        "since the last sync: not overwritten, fix it in one place",
                    )
                )
                kept[field] = agreed
                continue
            action: Literal["to_quickbooks", "to_salesforce"] = (
                "to_quickbooks" if owner == "salesforce" else "to_salesforce"
            )
            why = "first sync" if agreed is None else f"changed in {owner.title()}"
            decisions.append(Decision(**common, action=action, reason=why))
            kept[field] = fingerprint(ours)
        state[pair.key] = kept
    return Plan(decisions=tuple(decisions), state=state)


def salesforce_fields(
    owners: Mapping[FieldName, Owner], available: Iterable[str]
) -> list[FieldName]:
    """Fields whose Salesforce columns the org lacks (they are skipped)."""
    have = set(available)
    return [f for f in owners if not set(SALESFORCE_COLUMNS[f]) <= have]


# ---- the cleanse audit -----------------------------------------------------------------------
class Duplicate(BaseModel):
    model_config = ConfigDict(frozen=True)

    kind: Literal["salesforce duplicate", "quickbooks duplicate", "look-alike"]
    realm: str = ""
    records: str
    names: str
    reason: str


def cleanse_audit(
    accounts: Sequence[Mapping[str, Any]],
    customers: Mapping[str, Sequence[Mapping[str, Any]]],
    pairs: Sequence[Pair],
    free_mail: Iterable[str] = (),
    fuzzy_threshold: float = 80,
) -> list[Duplicate]:
    """Duplicates within Salesforce Accounts and within each realm's customers (same normalised
    name or same email/web domain), and unlinked look-alikes across the systems (same name or
    domain, or a fuzzy name score ≥ ``fuzzy_threshold``)."""
    free = {d.lower() for d in free_mail}
    found: list[Duplicate] = []
    sf_rows = [
        (str(a["Id"]), clean_text(a.get("Name")), _account_domains(a) - free) for a in accounts
    ]
    found += _within("salesforce duplicate", "", sf_rows)
    linked = {(p.realm, str(p.customer["Id"])) for p in pairs}
    linked_accounts = {to_18(str(p.account["Id"])) for p in pairs}
    for realm, rows in customers.items():
        qb_rows = [
            (str(c["Id"]), clean_text(c.get("DisplayName")), _customer_domains(c) - free)
            for c in rows
        ]
        found += _within("quickbooks duplicate", realm, qb_rows)
        for account_id, account_name, account_domains in sf_rows:
            if is_salesforce_id(account_id) and to_18(account_id) in linked_accounts:
                continue
            for customer_id, customer_name, customer_domains in qb_rows:
                if (realm, customer_id) in linked:
                    continue
                why = _alike(account_name, account_domains, customer_name, customer_domains)
                if why is None:
                    score = fuzz.WRatio(normalise_name(account_name), normalise_name(customer_name))
                    why = f"similar names ({score:.0f})" if score >= fuzzy_threshold else None
                if why:
                    found.append(
                        Duplicate(
                            kind="look-alike",
                            realm=realm,
                            records=f"Account {account_id} / Customer {customer_id}",
                            names=f"{account_name} / {customer_name}",
                            reason=f"not linked, but {why}",
                        )
                    )
    return found


def _within(
    kind: Literal["salesforce duplicate", "quickbooks duplicate"],
    realm: str,
    rows: Sequence[tuple[str, str, set[str]]],
) -> list[Duplicate]:
    found = []
    for i, (id_a, name_a, dom_a) in enumerate(rows):
        for id_b, name_b, dom_b in rows[i + 1 :]:
            if same_record(id_a, id_b):
                continue
            why = _alike(name_a, dom_a, name_b, dom_b)
            if why:
                found.append(
                    Duplicate(
                        kind=kind,
                        realm=realm,
                        records=f"{id_a} / {id_b}",
                        names=f"{name_a} / {name_b}",
                        reason=why,
                    )
                )
    return found


def _alike(name_a: str, dom_a: set[str], name_b: str, dom_b: set[str]) -> str | None:
    key_a, key_b = normalise_name(name_a), normalise_name(name_b)
    reasons = []
    if key_a and key_a == key_b:
        reasons.append(f"the same name ({key_a!r} normalised)")
    if dom_a & dom_b:
        reasons.append(f"the same domain {sorted(dom_a & dom_b)[0]}")
    return " and ".join(reasons) or None


def _account_domains(account: Mapping[str, Any]) -> set[str]:
    values = (account.get("Website"), account.get("Billing_Email__c"))
    return {d for d in map(domain_of, values) if d}


def _customer_domains(customer: Mapping[str, Any]) -> set[str]:
    values = (
        (customer.get("PrimaryEmailAddr") or {}).get("Address"),
        (customer.get("WebAddr") or {}).get("URI"),
    )
    return {d for d in map(domain_of, values) if d}
