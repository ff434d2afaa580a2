from __future__ import annotations

import pytest

from revbridge.ids import is_salesforce_id, same_record, to_18
from revbridge.text import clean_text, domain_of, name_key, normalise_name
from sandbox.demo_company import salesforce_id


@pytest.mark.parametrize(
    ("name", "normal"),
    [
        ("Globex Corporation", "globex"),
        ("Globex Corp.", "globex"),
        ("Cyberdyne Systems Inc", "cyberdyne systems"),
        ("Van der Berg Logistiek B.V.", "van der berg logistiek"),
        ("Müller & Söhne GmbH", "muller sohne"),
        ("Milano Moda S.p.A.", "milano moda"),
        ("Iberia Datos S.L.", "iberia datos"),
        ("O'Reilly Media", "oreilly media"),
        ("O\u2019Reilly Media", "oreilly media"),
        ("The Bluth Company", "bluth"),
        ("Wiener Werkstätte GmbH & Co. KG", "wiener werkstatte"),
        ("Inc.", "inc"),  # nothing but a legal form: kept rather than emptied
        ("\x00", ""),
    ],
)
def test_normalise_name(name: str, normal: str) -> None:
    assert normalise_name(name) == normal


def test_clean_text() -> None:
    assert clean_text(None) == ""
    assert clean_text(" a\u200b b\x00\n\tc ") == "a b c"
    assert clean_text("line 1 \r\n\x01line  2\n", multiline=True) == "line 1\nline 2"
    assert clean_text("Cafe\u0301") == "Café"  # NFC
    assert name_key("  Stark   INDUSTRIES ") == "stark industries"


@pytest.mark.parametrize(
    ("value", "domain"),
    [
        ("ap@Hooli.example", "hooli.example"),
        ("https://www.hooli.example/about", "hooli.example"),
        ("www.hooli.example", "hooli.example"),
        ("hooli.example", "hooli.example"),
        ("HTTP://WWW.HOOLI.EXAMPLE.", "hooli.example"),
        ("not a domain", None),
        ("", None),
        (None, None),
    ],
)
def test_domain_of(value: str | None, domain: str | None) -> None:
    assert domain_of(value) == domain


def test_salesforce_ids() -> None:
    eighteen = salesforce_id("Opportunity", 11)
    fifteen = eighteen[:15]
    assert to_18(fifteen) == eighteen
    assert to_18(eighteen) == eighteen
    assert is_salesforce_id(eighteen) and is_salesforce_id(fifteen)
    assert not is_salesforce_id(eighteen[:15] + "ZZZ")  # wrong checksum
    assert not is_salesforce_id("006' OR Id != '")
    assert same_record(eighteen, fifteen)
    assert same_record(eighteen, eighteen.lower())  # 18s are case-safe
    assert not same_record(fifteen, fifteen.lower())  # 15s are case-sensitive
    with pytest.raises(ValueError, match="not a Salesforce Id"):
        to_18("short")
