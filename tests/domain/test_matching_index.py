"""The indexed candidate pool decides exactly as a scan over every candidate would, and does not
score every candidate for every account."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rapidfuzz import fuzz, process

from revbridge import matching
from revbridge.ids import same_record
from revbridge.matching import CandidatePool, match_accounts, match_customer
from revbridge.models import Account
from revbridge.text import domain_of, normalise_name

_DIGITS = re.compile(r"\d+")
_ID_15 = "001Ab00000Xy"  # + three characters: a 15-character Account Id

names = st.lists(
    st.sampled_from(["Acme", "ACME", "Globex", "Glob", "Store", "12", "7", "Inc", "GmbH", "the"]),
    min_size=0,
    max_size=4,
).map(" ".join)
ids = st.sampled_from(["aAa", "AAA", "bbb", "Bbb"])
domains = st.sampled_from([None, "acme.example", "www.acme.example", "globex.example"])


@st.composite
def candidates(draw: st.DrawFn) -> dict[str, Any]:
    candidate: dict[str, Any] = {"Id": str(draw(st.integers(1, 6))), "Active": True}
    if display := draw(names):
        candidate["DisplayName"] = display
    if company := draw(st.one_of(st.none(), names)):
        candidate["CompanyName"] = company
    if linked := draw(st.one_of(st.none(), ids)):
        suffix = draw(st.sampled_from(["", "QAA", "qaa"]))
        candidate["Notes"] = f"Salesforce Account Id: {_ID_15}{linked}{suffix}"
    if email := draw(domains):
        candidate["PrimaryEmailAddr"] = {"Address": f"ap@{email}"}
    if web := draw(domains):
        candidate["WebAddr"] = {"URI": f"https://{web}/"}
    return candidate


@st.composite
def accounts(draw: st.DrawFn) -> Account:
    email = draw(domains)
    return Account(
        id=f"{_ID_15}{draw(ids)}{draw(st.sampled_from(['', 'QAA']))}",
        name=draw(names),
        billing_email=f"x@{email}" if email else None,
        website=draw(domains),
        qb_customer_id=draw(st.one_of(st.none(), st.sampled_from(["1", "2", "9"]))),
    )


def _scan_similar(
    target: str, pool: list[Mapping[str, Any]], cutoff: float
) -> list[tuple[float, str]]:
    """Rule (3) as one WRatio call per candidate name (the pre-index implementation)."""
    scored = []
    for index, candidate in enumerate(pool):
        keys = {
            normalise_name(str(n))
            for n in (candidate.get("DisplayName"), candidate.get("CompanyName"))
            if n
        }
        numbers = _DIGITS.findall(target)
        score = max(
            (
                fuzz.WRatio(target, k, processor=None)
                for k in keys
                if k and target and _DIGITS.findall(k) == numbers
            ),
            default=0.0,
        )
        scored.append((score, index, candidate))
    scored.sort(key=lambda row: (-row[0], row[1]))
    return [(s, str(c["Id"])) for s, _, c in scored if s >= cutoff]


@settings(max_examples=150, deadline=None)
@given(
    pool=st.lists(candidates(), max_size=8),
    account=accounts(),
    cutoff=st.sampled_from([0.0, 50.0, 80.0, 95.0]),
)
def test_index_finds_what_a_scan_finds(
    pool: list[dict[str, Any]], account: Account, cutoff: float
) -> None:
    indexed = CandidatePool(pool)
    linked = [
        c
        for c in pool
        if (account.qb_customer_id and str(c.get("Id")) == account.qb_customer_id)
        or any(same_record(found, account.id) for found in matching._linked_ids(c))
    ]
    assert indexed.linked(account) == linked

    wanted = {d for d in (domain_of(account.billing_email), domain_of(account.website)) if d}
    assert indexed.by_domain(wanted) == [c for c in pool if matching._domains(c) & wanted]

    target = normalise_name(account.name)
    found = [(s, str(c["Id"])) for s, c in indexed.similar(target, cutoff)]
    assert found == _scan_similar(target, pool, cutoff)


@settings(max_examples=60, deadline=None)
@given(pool=st.lists(candidates(), max_size=6), batch=st.lists(accounts(), max_size=6))
def test_match_accounts_equals_matching_one_by_one(
    pool: list[dict[str, Any]], batch: list[Account]
) -> None:
    """One pool grown with each "new" customer decides as a fresh scan of the grown list."""
    grown = list(pool)
    expected = {}
    for account in batch:
        if account.id in expected:
            continue
        decision = match_customer(account, grown, ["Acme Inc"], currency="USD")
        if decision.kind == "new" and decision.display_name:
            body = matching.new_customer_payload(account, decision.display_name, "USD", None)
            grown.append({"Id": matching.PENDING_ID, "Active": True, **body})
        expected[account.id] = decision
    assert match_accounts(batch, pool, ["Acme Inc"], currency="USD") == expected


def test_fuzzy_pass_only_scores_names_with_the_same_numbers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """2,000 accounts against 2,000 customers whose names carry numbers: each account's fuzzy
    pass sees only the names with its numbers, not all 2,000+ (the pre-index cost was
    accounts times candidates)."""
    seen: list[int] = []
    extract = process.extract

    def counting(query: str, choices: list[str], **kwargs: Any) -> Any:
        seen.append(len(choices))
        return extract(query, choices, **kwargs)

    monkeypatch.setattr(matching.process, "extract", counting)
    customers = [
        {"Id": str(n), "DisplayName": f"Bulk Customer {n:05d} Ltd", "Active": True}
        for n in range(2000)
    ]
    batch = [
        Account(id=f"001Ab{n:010d}", name=f"Bulk Customer {n:05d} Limited")
        for n in range(1000, 3000)
    ]
    decisions = match_accounts(batch, customers, [])
    assert [decisions[a.id].kind for a in batch[:3]] == ["fuzzy"] * 3
    assert decisions[batch[-1].id].kind == "new"
    assert len(seen) == 1000 and max(seen) == 1  # accounts 2000..2999 have no same-number name
