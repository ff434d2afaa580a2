from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from revbridge.config import ConfigError, RevbridgeConfig, load_config, parse_config
from sandbox.demo_company import PRODUCTS, REALMS
from tests.domain.demo_records import CONFIG_DIR

MINIMAL = """
salesforce_block: salesforce
slack: {block: slack}
realms:
  us:
    realm_id: "1"
    connection_block: qbo-us
    currency: USD
"""


def _errors(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(text)
    return info.value.errors


def test_demo_config_matches_the_demo_company(config: RevbridgeConfig) -> None:
    assert list(config.realms) == ["us", "eu"]
    for realm in REALMS:
        cfg = config.realm(realm.key)
        assert cfg.realm_id == realm.realm_id
        assert cfg.record_types == [realm.record_type]
        assert cfg.currency == realm.currency
        mapped = {code: ref.name for code, ref in cfg.item_map.items()}
        assert mapped == {p.code: p.qbo_item_name for p in PRODUCTS if p.qbo_item_name}
        assert "LEGACY-ADDON" not in cfg.item_map
    assert config.realm("us").tax_code == "NON"
    assert config.realm("eu").tax_code is None
    assert config.approval.threshold == Decimal("25000")
    assert config.routing.default is None


def test_example_config_loads() -> None:
    config = load_config(CONFIG_DIR / "revbridge.example.yaml")
    assert config.realm("eu").item_map["SEAT-ADD"].id == "12"
    assert config.realm("us").item_map["IMPL-STD"].name == "Implementation"


def test_loads_from_a_path_string_and_from_text(tmp_path: Path) -> None:
    path = tmp_path / "rb.yaml"
    path.write_text(MINIMAL, encoding="utf-8")
    assert load_config(str(path)) == load_config(MINIMAL) == load_config(path)


def test_defaults() -> None:
    config = load_config(MINIMAL)
    assert config.approval.timeout_hours == 168
    assert config.matching.fuzzy_accept == 92
    assert config.matching.fuzzy_review == 80
    assert config.matching.name_collision == "suffix"
    assert config.matching.suffix == " (Customer)"
    assert "gmail.com" in config.matching.free_mail_domains
    assert config.post_closed_stage == "Closed Won - Paid"
    assert config.customer_sync.fields["payment_terms"] == "quickbooks"


def test_unknown_field_names_its_path() -> None:
    text = MINIMAL + "    item_map:\n      SEAT-ADD: {itme: Additional Seat}\n"
    assert _errors(text) == ["realms.us.item_map.SEAT-ADD: unknown field 'itme'"]


def test_unknown_top_level_and_section_fields() -> None:
    errors = _errors(MINIMAL + "aproval: {}\nmatching: {fuzzy: 3}\n")
    assert "(top level): unknown field 'aproval'" in errors
    assert "matching: unknown field 'fuzzy'" in errors


def test_missing_and_malformed_values_name_their_paths() -> None:
    text = """
realms:
  eu:
    connection_block: qbo-eu
    currency: euro
approval: {threshold: lots}
"""
    errors = _errors(text)
    assert "realms.eu.realm_id: required field missing" in errors
    assert any(e.startswith("realms.eu.currency: String should match pattern") for e in errors)
    assert any(e.startswith("approval.threshold: ") for e in errors)


def test_item_ref_needs_exactly_one_of_name_or_id() -> None:
    both = _errors(MINIMAL + "    item_map:\n      X: {name: A, id: '1'}\n")
    none = _errors(MINIMAL + "    item_map:\n      X: {}\n")
    assert both == none == ["realms.us.item_map.X: give exactly one of 'name' or 'id'"]


def test_numbers_where_ids_are_expected_are_accepted() -> None:
    config = load_config(MINIMAL.replace('"1"', "12345") + "    item_map:\n      X: {id: 7}\n")
    assert config.realm("us").realm_id == "12345"
    assert config.realm("us").item_map["X"].id == "7"


def test_cross_checks() -> None:
    text = """
salesforce_block: sf
slack: {block: slack}
realms:
  us: {realm_id: "1", connection_block: a, currency: USD, record_types: [S], owners: [A@x.io]}
  eu: {realm_id: "1", connection_block: b, currency: EUR, record_types: [S], owners: [a@X.io]}
routing: {default: apac}
matching: {fuzzy_accept: 70, fuzzy_review: 80}
"""
    errors = _errors(text)
    assert "matching: fuzzy_review must not exceed fuzzy_accept" in errors
    # the model-level checks run once the sections are valid
    errors = _errors(text.replace("fuzzy_accept: 70", "fuzzy_accept: 90"))
    assert errors == [
        "routing.default: unknown realm 'apac'",
        "realms.eu.record_types: 'S' is already routed to realm 'us'",
        "realms.eu.owners: 'a@X.io' is already routed to realm 'us'",
        "realms.us.realm_id: 1 is used by two realms",
        "realms.eu.realm_id: 1 is used by two realms",
    ]


def test_yaml_errors_and_wrong_shapes() -> None:
    assert _errors("realms: [unclosed")[0].startswith("not valid YAML")
    assert _errors("- a list") == ["the top level must be a mapping with at least a 'realms' key"]
    assert _errors("salesforce_block: sf\nslack: {block: s}\nrouting: {}") == [
        "realms: required field missing"
    ]
    # YAML 1.1 reads NO as false: a tax code must be quoted, and the error says where
    assert _errors(MINIMAL + "    tax_code: NO\n") == [
        "realms.us.tax_code: Input should be a valid string"
    ]


def test_config_error_message_lists_every_error() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config({"realms": {}, "bogus": 1})
    message = str(info.value)
    assert message.startswith("invalid revbridge config:")
    assert "(top level): unknown field 'bogus'" in message
    assert "realms: Dictionary should have at least 1 item" in message


def test_realm_lookup_names_the_known_realms(config: RevbridgeConfig) -> None:
    with pytest.raises(KeyError, match="known: us, eu"):
        config.realm("apac")


def test_approval_helpers() -> None:
    config = load_config(
        MINIMAL + "approval: {thresholds: {EUR: 20000}, approvers: [Priya@Example.com]}\n"
    )
    assert config.approval.threshold_for("EUR") == Decimal("20000")
    assert config.approval.threshold_for("USD") == Decimal("25000")
    assert config.approval.threshold_for(None) == Decimal("25000")
    assert config.approval.is_approver("priya@example.com")
    assert not config.approval.is_approver("mallory@example.com")
    assert not config.approval.is_approver(None)


def test_the_blocks_to_load_are_named() -> None:
    text = MINIMAL.replace("salesforce_block: salesforce\n", "").replace(
        "slack: {block: slack}\n", ""
    )
    assert _errors(text) == [
        "salesforce_block: required field missing",
        "slack: required field missing",
    ]
