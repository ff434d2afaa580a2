from __future__ import annotations

from typing import Any

import pytest

from revbridge.config import MatchingConfig, RevbridgeConfig
from revbridge.matching import (
    PENDING_ID,
    CustomerMatch,
    display_name_for,
    match_accounts,
    match_customer,
    new_customer_payload,
)
from revbridge.models import Account
from sandbox.demo_company import DemoCompany
from tests.domain import demo_records


def _account(company: DemoCompany, key: str, **changes: Any) -> Account:
    record = demo_records.account_record(company, key)
    record.update(changes)
    return Account.from_record(record)


def _match(
    company: DemoCompany,
    config: RevbridgeConfig,
    key: str,
    candidates: list[dict[str, Any]] | None = None,
    **changes: Any,
) -> CustomerMatch:
    realm = company.account(key).realm_key
    return match_customer(
        _account(company, key, **changes),
        demo_records.qbo_customers(company, realm) if candidates is None else candidates,
        demo_records.qbo_taken_names(company, realm),
        config.matching,
        currency=company.realm(realm).currency,
    )


@pytest.mark.parametrize(
    ("key", "kind", "display_name"),
    [
        ("wayne", "linked", "Wayne Ent."),
        ("muller", "linked", "Müller und Söhne"),
        ("hooli", "domain", "Hooli XYZ"),
        ("globex", "fuzzy", "Globex Corp."),
        ("cyberdyne", "fuzzy", "Cyberdyne Systems Inc"),
        ("vanderberg", "fuzzy", "Van der Berg Logistiek"),
        ("initech", "review", None),
        ("stark", "new", "Stark Industries (Customer)"),
        ("umbrella", "new", "Umbrella Corp"),
        ("oreilly", "new", "O'Reilly Media"),
        ("lumiere", "new", "Lumière Éditions SARL"),
    ],
)
def test_demo_expectations(
    company: DemoCompany, config: RevbridgeConfig, key: str, kind: str, display_name: str | None
) -> None:
    match = _match(company, config, key)
    assert (match.kind, match.display_name) == (kind, display_name), match.reason
    assert match.resolved == (kind in {"linked", "domain", "fuzzy"})
    if match.resolved:
        assert match.customer_id is not None
    else:
        assert match.customer_id is None


def test_initech_review_lists_both_candidates(
    company: DemoCompany, config: RevbridgeConfig
) -> None:
    match = _match(company, config, "initech")
    assert match.reason == "2 QuickBooks customers have a similar name"
    assert [(c.display_name, c.score) for c in match.candidates] == [
        ("Initech LLC", 100.0),
        ("Initech Holdings LLC", 90.0),
    ]


def test_stark_reason_names_the_clash(company: DemoCompany, config: RevbridgeConfig) -> None:
    match = _match(company, config, "stark")
    assert "'Stark Industries' is taken by a vendor or employee" in match.reason


def test_linked_by_15_character_id_in_notes(company: DemoCompany, config: RevbridgeConfig) -> None:
    notes = f"Imported.\nSalesforce Account Id: {company.sf_id('oreilly')[:15]}"
    customer = {"Id": "77", "DisplayName": "Somebody Else", "Active": True, "Notes": notes}
    match = _match(company, config, "oreilly", [customer])
    assert (match.kind, match.customer_id) == ("linked", "77")


def test_linked_by_qb_customer_id(company: DemoCompany, config: RevbridgeConfig) -> None:
    customers = demo_records.qbo_customers(company, "us")
    bluth = next(c for c in customers if c["DisplayName"] == "Bluth Company")
    match = _match(company, config, "oreilly", customers, QB_Customer_Id__c=bluth["Id"])
    assert (match.kind, match.display_name) == ("linked", "Bluth Company")


def test_two_linked_customers_need_review(company: DemoCompany, config: RevbridgeConfig) -> None:
    notes = f"Salesforce Account Id: {company.sf_id('oreilly')}"
    customers = [
        {"Id": "1", "DisplayName": "A", "Notes": notes},
        {"Id": "2", "DisplayName": "B", "Notes": notes},
    ]
    match = _match(company, config, "oreilly", customers)
    assert match.kind == "review"
    assert [c.customer_id for c in match.candidates] == ["1", "2"]


def test_inactive_match_goes_to_review(company: DemoCompany, config: RevbridgeConfig) -> None:
    customers = demo_records.qbo_customers(company, "us")
    match = _match(company, config, "soylent", customers, Name="Duff Brewing")
    assert match.kind == "review"
    assert "customer 'Duff Brewing (inactive)' is inactive in QuickBooks" in match.reason


def test_other_currency_goes_to_review(company: DemoCompany, config: RevbridgeConfig) -> None:
    customers = demo_records.qbo_customers(company, "us")
    for customer in customers:
        customer["CurrencyRef"] = {"value": "CAD"}
    match = _match(company, config, "wayne", customers)
    assert match.kind == "review"
    assert match.reason.endswith("is billed in CAD, the deal is in USD")


def test_customer_linked_to_another_account_is_not_taken(
    company: DemoCompany, config: RevbridgeConfig
) -> None:
    customers = demo_records.qbo_customers(company, "us")
    match = _match(company, config, "globex", customers, Name="Wayne Ent.")
    assert match.kind == "review"
    assert "is linked to another Salesforce Account" in match.reason


def test_free_mail_domains_are_ignored(company: DemoCompany, config: RevbridgeConfig) -> None:
    customers = [{"Id": "5", "DisplayName": "Zed", "PrimaryEmailAddr": {"Address": "z@gmail.com"}}]
    match = _match(
        company, config, "oreilly", customers, Billing_Email__c="tim@gmail.com", Website=None
    )
    assert match.kind == "new"


def test_domain_by_website_and_shared_domain_review(
    company: DemoCompany, config: RevbridgeConfig
) -> None:
    one = {"Id": "5", "DisplayName": "ORM", "WebAddr": {"URI": "http://oreilly.example"}}
    two = {
        "Id": "6",
        "DisplayName": "ORM Books",
        "PrimaryEmailAddr": {"Address": "b@oreilly.example"},
    }
    match = _match(company, config, "oreilly", [one])
    assert (match.kind, match.customer_id, match.reason) == (
        "domain",
        "5",
        "same domain oreilly.example: ORM",
    )
    match = _match(company, config, "oreilly", [one, two])
    assert match.kind == "review"
    assert match.reason == "2 QuickBooks customers share the domain oreilly.example"


def test_a_single_plausible_name_below_accept_is_review(
    company: DemoCompany, config: RevbridgeConfig
) -> None:
    customers = [{"Id": "9", "DisplayName": "Stark Industries Holdings Group"}]
    match = _match(company, config, "stark", customers)
    assert match.kind == "review"
    assert "below the accept threshold" in match.reason


def test_collision_review_mode(company: DemoCompany, config: RevbridgeConfig) -> None:
    settings = MatchingConfig(name_collision="review")
    match = match_customer(
        _account(company, "stark"), [], demo_records.qbo_taken_names(company, "us"), settings
    )
    assert match.kind == "review"
    assert match.reason == (
        "no matching customer, and 'Stark Industries' is taken by a vendor or employee in "
        "QuickBooks"
    )


def test_suffix_counts_up_until_free() -> None:
    account = Account(id="0015g0000000006AAA", name="Stark Industries")
    taken = ["STARK INDUSTRIES", "stark industries (customer)", "Stark Industries (Customer) 2"]
    match = match_customer(account, [], taken)
    assert match.display_name == "Stark Industries (Customer) 3"


def test_new_customer_name_is_safe_for_quickbooks() -> None:
    assert display_name_for("ACME: West\x00 ") == "ACME - West"
    long = "x" * 300
    assert len(display_name_for(long)) == 100
    account = Account(id="0015g0000000006AAA", name=long)
    match = match_customer(account, [], ["x" * 100])
    assert match.display_name is not None
    assert len(match.display_name) <= 100 and match.display_name.endswith(" (Customer)")
    empty = match_customer(Account(id="0015g0000000006AAA", name=""), [], [])
    assert empty.kind == "review"


def test_match_accounts_avoids_duplicates_within_a_run(
    company: DemoCompany, config: RevbridgeConfig
) -> None:
    keys = ["umbrella", "umbrella-dup", "umbrella", "hooli"]
    accounts = [_account(company, key) for key in keys]
    decisions = match_accounts(
        accounts,
        demo_records.qbo_customers(company, "us"),
        demo_records.qbo_taken_names(company, "us"),
        config.matching,
        currency="USD",
    )
    assert list(decisions) == [company.sf_id(k) for k in ("umbrella", "umbrella-dup", "hooli")]
    assert decisions[company.sf_id("umbrella")].display_name == "Umbrella Corp"
    dup = decisions[company.sf_id("umbrella-dup")]
    assert dup.kind == "review"
    assert "linked to another Salesforce Account" in dup.reason
    assert dup.candidates[0].customer_id == PENDING_ID
    assert decisions[company.sf_id("hooli")].kind == "domain"


def test_match_accounts_never_creates_two_customers_with_one_name() -> None:
    first = Account(id="0015g000000000AAAQ", name="Acme", billing_email="a@one.example")
    second = Account(id="0015g000000000BAAQ", name="ACME", billing_email="b@two.example")
    decisions = match_accounts([first, second], [], [])
    assert [d.kind for d in decisions.values()] == ["new", "review"]
    assert decisions[second.id].candidates[0].display_name == "Acme"


def test_new_customer_payload(company: DemoCompany) -> None:
    account = _account(company, "oreilly", BillingStreet="1005 Gravenstein Hwy N\nBuilding B")
    payload = new_customer_payload(account, "O'Reilly Media", "USD", "3")
    assert payload == {
        "DisplayName": "O'Reilly Media",
        "CompanyName": "O'Reilly Media",
        "Notes": f"Salesforce Account Id: {company.sf_id('oreilly')}",
        "PrimaryEmailAddr": {"Address": "ap@oreilly.example"},
        "WebAddr": {"URI": "https://www.oreilly.example"},
        "PrimaryPhone": {"FreeFormNumber": "+1 707 555 0106"},
        "BillAddr": {
            "Line1": "1005 Gravenstein Hwy N",
            "Line2": "Building B",
            "City": "Sebastopol",
            "CountrySubDivisionCode": "CA",
            "PostalCode": "95472",
            "Country": "US",
        },
        "CurrencyRef": {"value": "USD"},
        "SalesTermRef": {"value": "3"},
    }
    # the created customer is found again by rule (1), whatever its name
    created = {"Id": "99", "Active": True, **payload, "DisplayName": "Renamed by finance"}
    again = match_customer(account, [created], [])
    assert (again.kind, again.customer_id) == ("linked", "99")


def test_payload_without_optional_fields() -> None:
    account = Account(
        id="0015g000000000AAAQ",
        name="Bare",
        website="bare.example",
        billing_street="1\n2\n3\n4\n5\n6\n7",
    )
    payload = new_customer_payload(account, "Bare", None, None)
    assert payload["WebAddr"] == {"URI": "https://bare.example"}
    assert payload["BillAddr"]["Line5"] == "5, 6, 7"
    assert "CurrencyRef" not in payload and "SalesTermRef" not in payload


def test_names_that_differ_in_their_numbers_are_different_companies() -> None:
    from revbridge.matching import match_customer
    from revbridge.models import Account

    store_12 = {"Id": "1", "DisplayName": "Bulk Customer 00012 Ltd", "Active": True}
    account = Account(id="0015g0000000001AAA", name="Bulk Customer 00013 Ltd")
    assert match_customer(account, [store_12]).kind == "new"
    same = Account(id="0015g0000000002AAA", name="Bulk Customer 00012 Limited")
    assert match_customer(same, [store_12]).kind == "fuzzy"
