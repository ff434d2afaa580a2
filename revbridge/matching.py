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

Cost: `CandidatePool` indexes the candidates once per realm (Ids, linked Account Ids, domains,
names grouped by their numbers), so an account costs dictionary lookups plus one C-level WRatio
pass over the names that share its numbers (``rapidfuzz.process.extract`` with
``score_cutoff``), not a Python loop over every candidate. Decisions are the same as a scan's.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict
from rapidfuzz import fuzz, process

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
    return CandidatePool(candidates, taken_names).match(account, settings, currency=currency)


def match_accounts(
    accounts: Iterable[Account],
    candidates: Sequence[Mapping[str, Any]],
    taken_names: Sequence[str] = (),
    settings: MatchingConfig | None = None,
    *,
    currency: str | None = None,
) -> dict[str, CustomerMatch]:
    """`match_customer` for several accounts of one realm, keyed by Account Id.

    Each account is matched once, against one `CandidatePool` built once. A customer decided
    "new" joins the pool (with Id `PENDING_ID`) for the accounts after it: its name is taken, and
    a second Salesforce account that looks like the same company (same domain, similar name) goes
    to review instead of becoming a duplicate customer.
    """
    pool = CandidatePool(candidates, taken_names)
    decisions: dict[str, CustomerMatch] = {}
    for account in accounts:
        if account.id in decisions:
            continue
        decision = pool.match(account, settings, currency=currency)
        if decision.kind == "new" and decision.display_name:
            pending = new_customer_payload(account, decision.display_name, currency, None)
            pool.add({"Id": PENDING_ID, "Active": True, **pending})
        decisions[account.id] = decision
    return decisions


class CandidatePool:
    """The candidates of one realm, indexed for the rules, so matching an account costs lookups
    and one C-level fuzzy pass instead of a Python loop over every candidate:

    - linked: by Id, and by the first 15 characters (casefolded) of each Salesforce Account Id
      in the Notes;
    - domain: by each email/website domain;
    - fuzzy: the normalised DisplayName/CompanyName keys, grouped by the numbers in them (only
      names with the same numbers may match), scored with ``rapidfuzz.process.extract`` (WRatio,
      ``score_cutoff=fuzzy_review``): the same scores as one ``fuzz.WRatio`` call per name;
    - new: the taken names (customers', vendors' and employees').

    Candidates are only appended (`add`), keeping their order: ties and review lists come out in
    the order the candidates were given, as a scan would list them.
    """

    def __init__(
        self, candidates: Iterable[Mapping[str, Any]] = (), taken_names: Iterable[str] = ()
    ) -> None:
        self.candidates: list[Mapping[str, Any]] = []
        self._by_id: dict[str, list[int]] = {}
        self._by_link: dict[str, list[tuple[int, str]]] = {}
        self._by_domain: dict[str, list[int]] = {}
        self._names: dict[tuple[str, ...], tuple[list[str], list[int]]] = {}
        self._owners = {name_key(n): "vendor or employee" for n in taken_names}
        self._owners.pop("", None)
        for candidate in candidates:
            self.add(candidate)

    def add(self, candidate: Mapping[str, Any]) -> None:
        """Append one candidate (an existing customer, or one decided "new" in this run)."""
        index = len(self.candidates)
        self.candidates.append(candidate)
        self._by_id.setdefault(str(candidate.get("Id")), []).append(index)
        for found in _linked_ids(candidate):
            self._by_link.setdefault(found[:15].casefold(), []).append((index, found))
        for domain in _domains(candidate):
            self._by_domain.setdefault(domain, []).append(index)
        names = {candidate.get("DisplayName"), candidate.get("CompanyName")}
        for key in {normalise_name(str(n)) for n in names if n}:
            if key:
                keys, owners = self._names.setdefault(tuple(_DIGITS.findall(key)), ([], []))
                keys.append(key)
                owners.append(index)
        taken = name_key(str(candidate.get("DisplayName") or ""))
        if taken:
            self._owners.setdefault(taken, "customer")  # a vendor or employee holding it wins

    @property
    def owners(self) -> Mapping[str, str]:
        """name_key → who holds that name in QuickBooks (a vendor or employee over a customer)."""
        return self._owners

    def linked(self, account: Account) -> list[Mapping[str, Any]]:
        """Rule (1): candidates whose Id is QB_Customer_Id__c or whose Notes name the account."""
        found: set[int] = set()
        if account.qb_customer_id:
            found.update(self._by_id.get(account.qb_customer_id, ()))
        for index, linked_id in self._by_link.get(account.id[:15].casefold(), ()):
            if same_record(linked_id, account.id):
                found.add(index)
        return [self.candidates[i] for i in sorted(found)]

    def by_domain(self, domains: set[str]) -> list[Mapping[str, Any]]:
        """Rule (2): candidates with any of these email/website domains."""
        found = {i for d in domains for i in self._by_domain.get(d, ())}
        return [self.candidates[i] for i in sorted(found)]

    def similar(self, target: str, cutoff: float) -> list[tuple[float, Mapping[str, Any]]]:
        """Rule (3): (score, candidate) for every candidate scoring ≥ ``cutoff`` against the
        normalised name ``target``, best first, ties in candidate order. A candidate's score is
        the best WRatio of its names; names whose numbers differ from the target's score 0."""
        best: dict[int, float] = {}
        group = self._names.get(tuple(_DIGITS.findall(target))) if target else None
        if group is not None:
            keys, owners = group
            for _, score, position in process.extract(
                target, keys, scorer=fuzz.WRatio, processor=None, score_cutoff=cutoff, limit=None
            ):
                index = owners[position]
                best[index] = max(score, best.get(index, 0.0))
        if cutoff <= 0:  # everything is "plausible"; unscored candidates score 0
            best = {i: best.get(i, 0.0) for i in range(len(self.candidates))}
        ranked = sorted(best.items(), key=lambda item: (-item[1], item[0]))
        return [(score, self.candidates[i]) for i, score in ranked if score >= cutoff]

    def match(
        self,
        account: Account,
        settings: MatchingConfig | None = None,
        *,
        currency: str | None = None,
    ) -> CustomerMatch:
        """`match_customer` against this pool."""
        settings = settings or MatchingConfig()

        # (1) linked by the stored Salesforce Account Id or by QB_Customer_Id__c
        linked = self.linked(account)
        if len(linked) == 1:
            return _accept(
                "linked", linked[0], account, currency, "linked by Salesforce Account Id"
            )
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
            by_domain = self.by_domain(domains)
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
        plausible = self.similar(normalise_name(account.name), settings.fuzzy_review)
        if plausible:
            best_score, best = plausible[0]
            if best_score >= settings.fuzzy_accept and len(plausible) == 1:
                return _accept(
                    "fuzzy",
                    best,
                    account,
                    currency,
                    f"name similarity {best_score:.0f}",
                    best_score,
                )
            return _review(
                f"{len(plausible)} QuickBooks customers have a similar name"
                if len(plausible) > 1
                else f"similar name ({best_score:.0f}) but below the accept threshold",
                [_candidate(c, s) for s, c in plausible],
            )

        # (4) a new customer, under a name QuickBooks will accept
        return _new_customer(account, self.owners, settings)


def new_customer_match(
    account: Account,
    candidates: Sequence[Mapping[str, Any]],
    taken_names: Iterable[str],
    settings: MatchingConfig,
) -> CustomerMatch:
    """Rule (4): the DisplayName to create, avoiding QuickBooks' 6240 duplicate-name fault."""
    return _new_customer(account, CandidatePool(candidates, taken_names).owners, settings)


def _new_customer(
    account: Account, owners: Mapping[str, str], settings: MatchingConfig
) -> CustomerMatch:
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
