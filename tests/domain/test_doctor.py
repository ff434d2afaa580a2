"""The doctor's checks over crafted answers (no I/O)."""

from __future__ import annotations

from typing import Any

import pytest

from revbridge import doctor as d
from revbridge.config import RevbridgeConfig, parse_config

US = "9341453172461001"


def make_config(**realm_us: Any) -> RevbridgeConfig:
    us = {
        "realm_id": US,
        "connection_block": "qbo-us",
        "record_types": ["US_Sales"],
        "currency": "USD",
        "item_map": {"PLAT": "Platform", "SEAT": {"id": "7"}},
        "tax_code": "NON",
        "default_terms": "Net 30",
        **realm_us,
    }
    return parse_config(
        {
            "salesforce_block": "sf",
            "realms": {
                "us": us,
                "eu": {
                    "realm_id": "2",
                    "connection_block": "qbo-eu",
                    "record_types": ["EU_Sales"],
                    "currency": "EUR",
                },
            },
            "slack": {"block": "slack"},
        }
    )


def field(name: str, updateable: bool = True, picklist: list[str] | None = None) -> dict[str, Any]:
    values = [{"value": v, "active": True} for v in picklist or []]
    return {"name": name, "updateable": updateable, "picklistValues": values}


def describe(*fields: dict[str, Any]) -> dict[str, Any]:
    return {"fields": list(fields)}


def full_describes() -> dict[str, dict[str, Any]]:
    return {obj: describe(*map(field, names)) for obj, names in d.WRITTEN_FIELDS.items()}


# ---- secrets, auth ---------------------------------------------------------------------------
def test_redact_hides_every_secret_and_bounds_the_length() -> None:
    text = "login failed for s3cretPass with token s3cretPassTOKEN\n and more"
    assert d.redact(text, ["s3cretPass", "s3cretPassTOKEN", ""]) == (
        "login failed for *** with token *** and more"
    )
    assert len(d.redact("x" * 1000, [])) == d.DETAIL_MAX
    row = d.failure("auth", "slack", "bad token xoxb-123456", ["xoxb-123456"])
    assert row == d.Row("auth", "slack", "blocker", "bad token ***")


def test_auth_rows_name_what_answered() -> None:
    org = {"Id": "00D1", "Name": "Acme", "IsSandbox": True}
    assert d.salesforce_auth(org).detail == "Acme (00D1, sandbox org)"
    company = {"CompanyInfo": {"Id": "1", "CompanyName": "Acme Inc."}}
    assert d.quickbooks_auth("us", US, company).detail == f"Acme Inc. (realm {US})"
    slack = {"user": "revbridge", "user_id": "U1", "team": "Acme"}
    assert d.slack_auth(slack).detail == "bot revbridge (U1) in Acme"


def test_a_connection_block_for_another_realm_is_a_blocker() -> None:
    assert d.realm_block_matches("us", US, US) is None
    row = d.realm_block_matches("us", US, "42")
    assert row is not None and row.status == "blocker"
    assert row.detail == f"realms.us.realm_id is {US} but its connection block is for realm 42"


# ---- fields ------------------------------------------------------------------------------------
def test_every_written_field_present_and_updateable_is_ok() -> None:
    rows = d.check_fields(full_describes())
    assert [(r.target, r.status) for r in rows] == [
        ("salesforce Opportunity", "ok"),
        ("salesforce Account", "ok"),
        ("salesforce Contract", "ok"),
        ("salesforce Task", "ok"),
    ]
    assert rows[0].detail == "15 written fields exist, updateable"


def test_missing_and_read_only_fields_are_blockers_naming_them() -> None:
    describes = full_describes()
    describes["Opportunity"] = describe(
        *(field(n) for n in d.WRITTEN_FIELDS["Opportunity"] if n != "Aging_Bucket__c"),
    )
    describes["Account"] = describe(
        field("Billing_Email__c"), field("Payment_Terms__c", updateable=False)
    )
    del describes["Contract"]
    del describes["Task"]
    rows = {r.target: r for r in d.check_fields(describes)}
    assert rows["salesforce Opportunity"].detail == "missing: Aging_Bucket__c"
    assert rows["salesforce Account"].detail == (
        "missing: Tax_Exempt__c; not updateable by the integration user: Payment_Terms__c"
    )
    assert rows["salesforce Contract"].detail == "Contract could not be described"
    assert rows["salesforce Task"].detail == "Task could not be described"
    assert {r.status for r in rows.values()} == {"blocker"}


def test_terms_picklists_keep_active_values_only() -> None:
    terms = field("Payment_Terms__c", picklist=["Net 30", "Net 45"])
    terms["picklistValues"].append({"value": "Net 90", "active": False})
    describes = {"Opportunity": describe(terms), "Account": describe(field("Name"))}
    assert d.picklist_values(describes) == {"Opportunity.Payment_Terms__c": ["Net 30", "Net 45"]}


# ---- record types ------------------------------------------------------------------------------
def record_type(name: str, active: bool = True) -> dict[str, Any]:
    return {"DeveloperName": name, "IsActive": active}


def test_every_active_record_type_must_route() -> None:
    config = make_config()
    types = [record_type("US_Sales"), record_type("EU_Sales"), record_type("Partner")]
    types.append(record_type("Old_Sales", active=False))
    rows = {r.target: r for r in d.check_record_types(types, config)}
    assert rows["record type US_Sales"].detail == "→ realm us"
    assert rows["record type EU_Sales"].status == "ok"
    partner = rows["record type Partner"]
    assert partner.status == "blocker" and partner.detail.startswith("routes to no realm")
    assert "record type Old_Sales" not in rows  # inactive: no deal can carry it


def test_routing_default_catches_the_rest_and_owner_routing_is_mentioned() -> None:
    default = make_config().model_copy(
        update={"routing": make_config().routing.model_copy(update={"default": "us"})}
    )
    (row,) = [
        r for r in d.check_record_types([record_type("Partner")], default) if "Partner" in r.target
    ]
    assert row.status == "ok" and row.detail == "→ realm us (routing.default)"
    owners = make_config(owners=["sam@acme.example"])
    (row,) = [
        r for r in d.check_record_types([record_type("Partner")], owners) if "Partner" in r.target
    ]
    assert row.status == "blocker" and row.detail.endswith(
        "only deals of the listed owners will route"
    )


def test_a_configured_record_type_that_salesforce_lacks_is_a_warning() -> None:
    config = make_config(record_types=["US_Sale"])
    types = [record_type("US_Sales"), record_type("EU_Sales", active=False)]
    rows = [r for r in d.check_record_types(types, config) if r.target.startswith("realm")]
    assert [(r.target, r.status) for r in rows] == [("realm us", "warn"), ("realm eu", "warn")]
    assert (
        rows[0].detail == "realms.us.record_types: 'US_Sale' is an unknown Opportunity record type"
    )
    assert rows[1].detail.endswith("'EU_Sales' is an inactive Opportunity record type")


# ---- QuickBooks reference data -----------------------------------------------------------------
ITEMS = [
    {"Id": "3", "Name": "platform", "Active": True},  # names compare case-insensitively
    {"Id": "7", "Name": "Seat", "Active": True},
]


def test_mapped_items_exist_and_are_active() -> None:
    realm = make_config().realms["us"]
    assert d.check_items("us", realm, ITEMS) == [
        d.ok("items", "quickbooks us", "2 mapped items exist, active")
    ]


def test_missing_and_inactive_items_are_blockers_naming_the_entry() -> None:
    realm = make_config(item_map={"PLAT": "Platform", "SEAT": {"id": "7"}, "X": "Gone"}).realms[
        "us"
    ]
    items = [{"Id": "3", "Name": "Platform", "Active": False}, {"Id": "8", "Name": "Seat"}]
    rows = d.check_items("us", realm, items)
    assert [(r.status, r.detail) for r in rows] == [
        ("blocker", "item_map.PLAT: 'Platform' is inactive"),
        ("blocker", "item_map.SEAT: Id 7 does not exist"),
        ("blocker", "item_map.X: 'Gone' does not exist"),
    ]


def test_an_empty_item_map_is_a_warning() -> None:
    (row,) = d.check_items("us", make_config(item_map={}).realms["us"], ITEMS)
    assert row.status == "warn"


TERMS = [
    {"Id": "1", "Name": "Net 30", "Active": True},
    {"Id": "2", "Name": "Net 15", "Active": False},
]


def test_default_terms_and_picklist_values_must_be_active_terms() -> None:
    realm = make_config().realms["us"]
    assert d.check_terms("us", realm, TERMS, {"Opportunity.Payment_Terms__c": ["Net 30"]}) == [
        d.ok("terms", "quickbooks us", "1 terms exist, active")
    ]
    picklists = {
        "Opportunity.Payment_Terms__c": ["Net 30", "Net 15", "Net 60"],
        "Account.Payment_Terms__c": ["Net 60"],
    }
    rows = d.check_terms("us", realm, TERMS, picklists)
    assert [(r.status, r.detail) for r in rows] == [
        ("blocker", "Opportunity.Payment_Terms__c: 'Net 15' is inactive"),
        (
            "blocker",
            "Opportunity.Payment_Terms__c and Account.Payment_Terms__c: 'Net 60' does not exist",
        ),
    ]


def test_a_realm_without_default_terms_is_warned_and_a_missing_default_blocks() -> None:
    (row,) = d.check_terms("us", make_config(default_terms=None).realms["us"], TERMS, {})
    assert row.status == "warn" and "empty Payment_Terms__c" in row.detail
    (row,) = d.check_terms("us", make_config(default_terms="Net 45").realms["us"], TERMS, {})
    assert row == d.blocker("terms", "quickbooks us", "default_terms: 'Net 45' does not exist")


@pytest.mark.parametrize(
    ("codes", "status", "detail"),
    [
        ([{"Id": "NON", "Name": "NON", "Active": True}], "ok", "NON exists, active"),
        (
            [{"Id": "NON", "Name": "NON", "Active": False}],
            "blocker",
            "tax_code: Id NON is inactive",
        ),
        ([{"Id": "TAX", "Name": "TAX"}], "blocker", "tax_code: Id NON does not exist"),
    ],
)
def test_the_tax_code_exists_and_is_active(
    codes: list[dict[str, Any]], status: str, detail: str
) -> None:
    (row,) = d.check_tax_code("us", make_config().realms["us"], codes)
    assert (row.status, row.detail) == (status, detail)


def test_no_tax_code_is_fine() -> None:
    (row,) = d.check_tax_code("eu", make_config().realms["eu"], [])
    assert row.status == "ok"


# ---- Slack -------------------------------------------------------------------------------------
LISTED = [{"id": "C1", "name": "revops-alerts"}, {"id": "C2", "name": "sales-wins"}]


def test_channels_resolve_by_name_or_id() -> None:
    assert d.resolve_channel("#revops-alerts", LISTED) == "C1"
    assert d.resolve_channel("sales-wins", LISTED) == "C2"
    assert d.resolve_channel("C0123ABC", LISTED) == "C0123ABC"
    assert d.resolve_channel("#nowhere", LISTED) is None
    assert list(d.configured_channels(make_config().slack)) == [
        "alerts_channel",
        "approvals_channel",
        "wins_channel",
    ]


def test_channel_reachability_and_membership() -> None:
    member = {"id": "C1", "name": "revops-alerts", "is_member": True}
    assert d.check_channel("alerts_channel", "#revops-alerts", member).status == "ok"
    missing = d.check_channel("alerts_channel", "#revops", None)
    assert (missing.status, missing.detail) == ("blocker", "#revops: channel not found")
    archived = {**member, "is_archived": True}
    assert d.check_channel("wins_channel", "#x", archived).status == "blocker"
    outside = {**member, "is_member": False}
    posted = d.check_channel("approvals_channel", "#x", outside)
    assert posted.status == "blocker" and "the flows post here" in posted.detail
    unposted = d.check_channel("wins_channel", "#x", outside)
    assert unposted.status == "warn" and "not a member" in unposted.detail


# ---- environments ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("environment", "api_base", "expected"),
    [
        ("production", None, "production"),
        ("sandbox", None, "sandbox"),
        ("production", "https://sandbox-quickbooks.api.intuit.com/v3", "sandbox"),
        ("sandbox", "https://quickbooks.api.intuit.com/v3", "production"),
        ("http://127.0.0.1:9/.well-known/openid_sandbox_configuration", None, "local"),
        ("production", "http://localhost:8080/v3", "local"),
        ("https://idp.example/.well-known/openid_sandbox_configuration", None, "sandbox"),
        ("production", "https://proxy.example/v3", "unknown"),
    ],
)
def test_qbo_environment(environment: str, api_base: str | None, expected: str) -> None:
    assert d.qbo_environment(environment, api_base) == expected


def test_a_realm_that_looks_like_the_other_environment_is_warned() -> None:
    sandboxy = "4620816365123456789"
    row = d.check_environment("us", sandboxy, "production", None)
    assert row.status == "warn" and "looks like an Intuit sandbox company" in row.detail
    row = d.check_environment("us", US, "sandbox", None)
    assert row.status == "warn" and "looks like a production company" in row.detail
    row = d.check_environment("us", US, "production", None, "Sandbox Company_US_1")
    assert row.status == "warn"
    assert d.check_environment("us", US, "production", None).status == "ok"
    assert d.check_environment("us", "9130350000000001", "sandbox", None).status == "ok"


def test_environment_and_api_base_that_disagree_are_warned() -> None:
    row = d.check_environment(
        "us", US, "production", "https://sandbox-quickbooks.api.intuit.com/v3"
    )
    assert row.detail == "environment is production but api_base is sandbox"
    local = d.check_environment("us", US, "sandbox", "http://127.0.0.1:5000/v3")
    assert local.status == "ok" and "not checked" in local.detail
    assert d.check_environment("us", US, "production", "https://x.example/v3").status == "warn"


def test_a_sandbox_org_wired_to_production_quickbooks_is_warned() -> None:
    assert d.check_org_pairing(True, {"us": "sandbox", "eu": "local"}) is None
    row = d.check_org_pairing(True, {"us": "production", "eu": "sandbox"})
    assert (
        row is not None and row.detail == "a sandbox Salesforce org with us (production) QuickBooks"
    )
    assert d.check_org_pairing(False, {"us": "sandbox"}) is not None


# ---- output ------------------------------------------------------------------------------------
def test_table_puts_blockers_first_and_exit_code_follows_them() -> None:
    rows = [
        d.ok("auth", "slack", "fine"),
        d.warn("slack", "slack.wins_channel", "not a member"),
        d.blocker("items", "quickbooks us", "item_map.X: 'Y' does not exist"),
    ]
    table = d.render_table(rows)
    lines = table.splitlines()
    assert lines[0].split() == ["STATUS", "CHECK", "TARGET", "DETAIL"]
    assert [line.split()[0] for line in lines[2:5]] == ["BLOCKER", "WARN", "OK"]
    assert lines[-1] == "1 ok, 1 warn, 1 blocker: NOT ready: fix the blockers"
    assert d.exit_code(rows) == 1
    assert d.exit_code(rows[:2]) == 0
    assert d.summary(rows[:2]).endswith("ready")
    assert rows[0].as_dict() == {
        "check": "auth",
        "target": "slack",
        "status": "ok",
        "detail": "fine",
    }
