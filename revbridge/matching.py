"""Find the QuickBooks customer for a Salesforce Account, or decide to create one.

Rules, in order (the first that decides wins):

1. **linked**: a candidate whose Notes carry ``Salesforce Account Id: <Id>`` (15- or 18-character
   Ids compare on their 15-character prefix), or whose Id equals Account.QB_Customer_Id__c.
2. **domain**: the account's billing-email or website domain equals a candidate's
   PrimaryEmailAddr or WebAddr domain (free-mail domains ignored); two candidates → review.
3. **fuzzy**: names normalised (casefold, accents, punctuation, legal forms) and scored with
   rapidfuzz's WRatio against DisplayName and CompanyName. One candidate ≥ ``fuzzy_accept`` with
   no runner-up at ≥ ``fuzzy_review`` → fuzzy; any candidate ≥ ``fuzzy_review`` otherwise → review.
4. **new**: a DisplayName that collides with no customer, vendor or employee (case-insensitive),
   with ``matching.suffix`` appended on a collision, or review when ``name_collision: review``.

A match on an inactive customer, on a customer linked to another Salesforce Account, or on a
customer billed in another currency goes to review instead: QuickBooks would refuse the invoice
or it would land on the wrong books.

Candidates are QuickBooks Customer JSON dicts (include inactive ones: query with
``Active IN (true, false)``); ``taken_names`` are the Vendor and Employee DisplayNames (customer
names are added from the candidates).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict
from rapidfuzz import fuzz

from revbridge.config import MatchingConfig
from revbridge.ids import same_record
from revbridge.models import Account
from revbridge.text import clean_text, domain_of, name_key, normalise_name

MatchKind = Literal["linked", "domain", "fuzzy", "new", "review"]

NOTES_MARKER = "Salesforce Account Id:"
_NOTES_ID = re.compile(r"Salesforce Account Id:\s*([0-9A-Za-z]{15}(?:[0-9A-Za-z]{3})?)\b")
PENDING_ID = "(new in this run)"  # Id of a customer `match_accounts` has decided to create
DISPLAY_NAME_MAX = 100  # well inside QuickBooks' limits for DisplayName and CompanyName
_COLON = re.compile(r"\s*:\s*")
_DIGITS = re.compile(r"\d+")


class Candidate(BaseModel):
    """A QuickBooks customer considered for an account (listed on review decisions)."""

    model_config = ConfigDict(frozen=True)

    customer_id: str
    display_name: str
    score: float | None = None


class CustomerMatch(BaseModel):
    """The decision for one account. ``customer_id`` is set for linked/domain/fuzzy;
    ``display_name`` is the matched customer's name, or the name to create for "new"."""

    model_config = ConfigDict(frozen=True)

    kind: MatchKind
    reason: str
    customer_id: str | None = None
    display_name: str | None = None
    score: float | None = None
    candidates: tuple[Candidate, ...] = ()

    @property
    def resolved(self) -> bool:
        """True when an invoice can go to an existing customer right away."""
        return self.kind in {"linked", "domain", "fuzzy"}


def match_customer(
    account: Account,
    candidates: Sequence[Mapping[str, Any]],
    taken_names: Iterable[str] = (),
    settings: MatchingConfig | None = None,
    *,
    currency: str | None = None,
) -> CustomerMatch:
    """Decide which customer ``account`` is (see the module docstring for the rules).

    ``currency``: the deal's currency; a matched customer billed in another one goes to review.
    """
    settings = settings or MatchingConfig()

    # (1) linked by the stored Salesforce Account Id or by QB_Customer_Id__c
    linked = [
        c
        for c in candidates
        if (account.qb_customer_id and str(c.get("Id")) == account.qb_customer_id)
        or any(same_record(found, account.id) for found in _linked_ids(c))
    ]
    if len(linked) == 1:
        return _accept("linked", linked[0], account, currency, "linked by Salesforce Account Id")
    if len(linked) > 1:
        return _review(
            "several QuickBooks customers are linked to this Salesforce Account",
            [_candidate(c) for c in linked],
        )

    # (2) same email/website domain
    free = {d.lower() for d in settings.free_mail_domains}
    domains = {
        d for d in (domain_of(account.billing_email), domain_of(account.website)) if d
    } - free
    if domains:
        by_domain = [c for c in candidates if _domains(c) & domains]
        if len(by_domain) == 1:
            shared = sorted(_domains(by_domain[0]) & domains)[0]
            return _accept("domain", by_domain[0], account, currency, f"same domain {shared}")
        if len(by_domain) > 1:
            return _review(
                f"{len(by_domain)} QuickBooks customers share the domain "
                f"{', '.join(sorted(domains))}",
                [_candidate(c) for c in by_domain],
            )

    # (3) fuzzy name
    target = normalise_name(account.name)
    scored = sorted(
        ((_score(target, c), index, c) for index, c in enumerate(candidates)),
        key=lambda row: (-row[0], row[1]),
    )
    plausible = [(s, c) for s, _, c in scored if s >= settings.fuzzy_review]
    if plausible:
        best_score, best = plausible[0]
        if best_score >= settings.fuzzy_accept and len(plausible) == 1:
            return _accept(
                "fuzzy", best, account, currency, f"name similarity {best_score:.0f}", best_score
            )
        return _review(
            f"{len(plausible)} QuickBooks customers have a similar name"
            if len(plausible) > 1
            else f"similar name ({best_score:.0f}) but below the accept threshold",
            [_candidate(c, s) for s, c in plausible],
        )

    # (4) a new customer, under a name QuickBooks will accept
    return new_customer_match(account, candidates, taken_names, settings)


def match_accounts(
    accounts: Iterable[Account],
    candidates: Sequence[Mapping[str, Any]],
    taken_names: Sequence[str] = (),
    settings: MatchingConfig | None = None,
    *,
    currency: str | None = None,
) -> dict[str, CustomerMatch]:
    """`match_customer` for several accounts of one realm, keyed by Account Id.

    Each account is matched once. A customer decided "new" joins the candidates (with Id
    `PENDING_ID`) for the accounts after it: its name is taken, and a second Salesforce account
    that looks like the same company (same domain, similar name) goes to review instead of
    becoming a duplicate customer.
    """
    pool = list(candidates)
    decisions: dict[str, CustomerMatch] = {}
    for account in accounts:
        if account.id in decisions:
            continue
        decision = match_customer(account, pool, taken_names, settings, currency=currency)
        if decision.kind == "new" and decision.display_name:
            pending = new_customer_payload(account, decision.display_name, currency, None)
            pool.append({"Id": PENDING_ID, "Active": True, **pending})
        decisions[account.id] = decision
    return decisions


def new_customer_match(
    account: Account,
    candidates: Sequence[Mapping[str, Any]],
    taken_names: Iterable[str],
    settings: MatchingConfig,
) -> CustomerMatch:
    """Rule (4): the DisplayName to create, avoiding QuickBooks' 6240 duplicate-name fault."""
    owners = {name_key(str(c.get("DisplayName") or "")): "customer" for c in candidates}
    owners.update({name_key(n): "vendor or employee" for n in taken_names})
    owners.pop("", None)
    base = display_name_for(account.name)
    if not base:
        return _review("the account name is empty: no DisplayName to create", [])
    if name_key(base) not in owners:
        return CustomerMatch(kind="new", reason="no matching customer", display_name=base)
    clash = f"{base!r} is taken by a {owners[name_key(base)]} in QuickBooks"
    if settings.name_collision == "review":
        return _review(f"no matching customer, and {clash}", [])
    stem = display_name_for(account.name, reserve=len(settings.suffix) + 4)
    name = f"{stem}{settings.suffix}"
    counter = 2
    while name_key(name) in owners:
        name = f"{stem}{settings.suffix} {counter}"
        counter += 1
    return CustomerMatch(
        kind="new", reason=f"no matching customer; {clash}, so {name!r}", display_name=name
    )


def display_name_for(name: str, *, reserve: int = 0) -> str:
    """A QuickBooks-safe DisplayName: clean text, no colon (QuickBooks' sub-customer separator),
    short enough to take ``reserve`` more characters."""
    text = _COLON.sub(" - ", clean_text(name)).strip(" -")
    return text[: DISPLAY_NAME_MAX - reserve].rstrip()


def new_customer_payload(
    account: Account, display_name: str, currency: str | None, terms_ref: str | None
) -> dict[str, Any]:
    """The QuickBooks Customer to create for ``account``. Its Notes carry the Salesforce Account
    Id, so the next run finds it by rule (1) whatever its name becomes."""
    payload: dict[str, Any] = {
        "DisplayName": display_name,
        "CompanyName": display_name_for(account.name) or display_name,
        "Notes": f"{NOTES_MARKER} {account.id}",
    }
    if account.billing_email:
        payload["PrimaryEmailAddr"] = {"Address": account.billing_email}
    if account.website:
        website = account.website
        payload["WebAddr"] = {"URI": website if "://" in website else f"https://{website}"}
    if account.phone:
        payload["PrimaryPhone"] = {"FreeFormNumber": account.phone}
    address = _bill_addr(account)
    if address:
        payload["BillAddr"] = address
    if currency:
        payload["CurrencyRef"] = {"value": currency}
    if terms_ref:
        payload["SalesTermRef"] = {"value": terms_ref}
    return payload


def _bill_addr(account: Account) -> dict[str, str]:
    lines = [ln for ln in (account.billing_street or "").split("\n") if ln.strip()]
    if len(lines) > 5:
        lines = [*lines[:4], ", ".join(lines[4:])]
    address = {f"Line{i}": line for i, line in enumerate(lines, start=1)}
    for key, value in (
        ("City", account.billing_city),
        ("CountrySubDivisionCode", account.billing_state),
        ("PostalCode", account.billing_postal_code),
        ("Country", account.billing_country),
    ):
        if value:
            address[key] = value
    return address


def _accept(
    kind: MatchKind,
    customer: Mapping[str, Any],
    account: Account,
    currency: str | None,
    reason: str,
    score: float | None = None,
) -> CustomerMatch:
    name = str(customer.get("DisplayName") or "")
    found = _candidate(customer, score)
    if customer.get("Active") is False:
        return _review(f"{reason}: customer {name!r} is inactive in QuickBooks", [found])
    others = [i for i in _linked_ids(customer) if not same_record(i, account.id)]
    if kind != "linked" and others:
        return _review(
            f"{reason}: customer {name!r} is linked to another Salesforce Account {others[0]}",
            [found],
        )
    theirs = (customer.get("CurrencyRef") or {}).get("value")
    if currency and theirs and theirs != currency:
        return _review(
            f"{reason}: customer {name!r} is billed in {theirs}, the deal is in {currency}",
            [found],
        )
    return CustomerMatch(
        kind=kind,
        reason=f"{reason}: {name}",
        customer_id=str(customer["Id"]),
        display_name=name,
        score=score,
    )


def _review(reason: str, candidates: list[Candidate]) -> CustomerMatch:
    return CustomerMatch(kind="review", reason=reason, candidates=tuple(candidates))


def _candidate(customer: Mapping[str, Any], score: float | None = None) -> Candidate:
    return Candidate(
        customer_id=str(customer.get("Id")),
        display_name=str(customer.get("DisplayName") or ""),
        score=None if score is None else round(score, 1),
    )


def _linked_ids(customer: Mapping[str, Any]) -> list[str]:
    return _NOTES_ID.findall(str(customer.get("Notes") or ""))


def _domains(customer: Mapping[str, Any]) -> set[str]:
    email = (customer.get("PrimaryEmailAddr") or {}).get("Address")
    web = (customer.get("WebAddr") or {}).get("URI")
    return {d for d in (domain_of(email), domain_of(web)) if d}


def _score(target: str, customer: Mapping[str, Any]) -> float:
    """Name similarity 0..100. Names whose numbers differ ("Store 12" and "Store 13", "Unit 3
    Ltd" and "Unit 7 Ltd") are different companies however alike the rest: they score 0."""
    if not target:
        return 0.0
    names = {customer.get("DisplayName"), customer.get("CompanyName")}
    keys = {normalise_name(str(n)) for n in names if n}
    numbers = _DIGITS.findall(target)
    return max(
        (
            fuzz.WRatio(target, k, processor=None)
            for k in keys
            if k and _DIGITS.findall(k) == numbers
        ),
        default=0.0,
    )
