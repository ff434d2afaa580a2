"""Bad input, fuzzed with hypothesis, on the pure domain: webhook bodies (malformed, huge, deep),
signatures, and Closed Won records with unicode and control characters in names, negative /
NaN / huge amounts, zero lines and unknown currencies. Each must end in a clear error that names
the record (or the delivery), or in an exact invoice; never in an exception nobody catches.

The example budget is modest so the suite stays fast; ``REVBRIDGE_FUZZ_EXAMPLES=2000`` digs
deeper (the drills benchmark and a nightly run may set it).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import os
import unicodedata
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, event, example, given, settings
from hypothesis import strategies as st

from receiver.qbo import MalformedDelivery, parse_delivery, signature_ok
from revbridge.config import RevbridgeConfig
from revbridge.invoices import InvoiceError, build_invoice
from revbridge.matching import DISPLAY_NAME_MAX, display_name_for
from revbridge.models import Opportunity
from revbridge.routing import route
from revbridge.validate import AMOUNT_TOLERANCE, validate
from sandbox.demo_company import DemoCompany
from tests.domain import demo_records

# Hypothesis warns when the global `random` state moves while it draws an example. Here that is
# never our strategies (they draw only from hypothesis): most likely a thread an earlier test
# of the session left running moves it (Prefect's client jitters its retries with `random`).
# In CI the warning, made an error by the suite's filter, failed a fuzz test on an example
# that then passed.
pytestmark = pytest.mark.filterwarnings("ignore:Do not use the `random` module inside strategies")
EXAMPLES = int(os.environ.get("REVBRIDGE_FUZZ_EXAMPLES", "150"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
TODAY = demo_records.TODAY
TOKEN = "fuzz-verifier-token"
# What flows/closed_won.py catches around Opportunity.from_record (reported as "unreadable").
UNREADABLE = (ValueError, TypeError, KeyError)
INVISIBLE = {"Cc", "Cf", "Cs", "Co", "Cn"}


def sign(body: bytes, token: str = TOKEN) -> str:
    return base64.b64encode(hmac.new(token.encode(), body, hashlib.sha256).digest()).decode()


# ---- webhook bodies --------------------------------------------------------------------------
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=20,
)
entity_names = st.sampled_from(["invoice", "payment", "creditmemo", "customer", "Invoice", ""])
verbs = st.sampled_from(["created", "updated", "deleted", "voided", "merged", "emailed", "x"])
field_values = json_values | st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=30)


@st.composite
def cloudevents(draw: st.DrawFn) -> list[Any]:
    """CloudEvents arrays, each field sometimes well-formed, sometimes anything."""
    events = []
    for _ in range(draw(st.integers(0, 4))):
        event: dict[str, Any] = {
            "specversion": "1.0",
            "id": draw(st.uuids().map(str) | field_values),
            "type": draw(
                st.builds(lambda e, v: f"qbo.{e}.{v}.v1", entity_names, verbs) | field_values
            ),
            "intuitentityid": draw(st.integers(1, 10**6).map(str) | field_values),
            "intuitaccountid": draw(st.just("9341453172461001") | field_values),
            "time": draw(st.just("2026-11-23T10:00:00Z") | field_values),
        }
        for key in draw(st.sets(st.sampled_from(sorted(event)), max_size=2)):
            del event[key]
        events.append(draw(st.just(event) | json_values))
    return events


@st.composite
def legacy_notifications(draw: st.DrawFn) -> dict[str, Any]:
    """``{"eventNotifications": [...]}`` bodies, with any part replaced by anything."""
    entity = {
        "name": draw(st.sampled_from(["Invoice", "Payment", "CreditMemo"]) | field_values),
        "id": draw(st.integers(1, 999).map(str) | field_values),
        "operation": draw(st.sampled_from(["Create", "Update", "Delete", "Void"]) | field_values),
        "lastUpdated": draw(st.just("2026-11-23T10:00:00.000Z") | field_values),
    }
    change_event = draw(st.just({"entities": [entity]}) | json_values)
    notification = draw(
        st.just({"realmId": "9341453172461001", "dataChangeEvent": change_event}) | json_values
    )
    return {"eventNotifications": draw(st.just([notification]) | json_values)}


bodies = (
    st.binary(max_size=300)
    | json_values.map(lambda v: json.dumps(v).encode())
    | cloudevents().map(lambda v: json.dumps(v).encode())
    | legacy_notifications().map(lambda v: json.dumps(v).encode())
)


@FUZZ
@given(body=bodies)
@example(body=b"[" * 2_000)  # deep nesting: well inside the receiver's 1 MB limit
@example(body=b'{"eventNotifications": [{"realmId": "1", "dataChangeEvent": [1]}]}')
@example(body=b'{"eventNotifications": [{"realmId": "1", "dataChangeEvent": "x"}]}')
@example(body=b'[{"id": "1", "type": "qbo.invoice.updated.v1", "intuitaccountid": 1e999}]')
@example(body="[\u2028\ufeff]".encode())
def test_any_body_is_changes_or_a_clear_refusal(body: bytes) -> None:
    """`parse_delivery` answers a list of changes or `MalformedDelivery` (the receiver's 400);
    anything else would be a 500, and Intuit would retry the junk for hours."""
    try:
        changes = parse_delivery(body)
    except MalformedDelivery as exc:
        assert str(exc)
        return
    for change in changes:
        assert change.realm_id and change.entity and change.entity_id and change.operation
        assert json.dumps(change.payload)  # a deployment trigger's parameters: plain JSON
        assert change.resource["prefect.resource.id"].startswith(f"qbo.{change.realm_id}.")
        assert change.event_id == parse_delivery(body)[changes.index(change)].event_id


@FUZZ
@given(
    body=st.binary(max_size=2000),
    token=st.text(min_size=1, max_size=40),
    forged=st.text(max_size=60)
    | st.binary(max_size=40).map(lambda b: base64.b64encode(b).decode()),
)
def test_only_the_real_signature_passes_and_nothing_raises(
    body: bytes, token: str, forged: str
) -> None:
    assert signature_ok(body, sign(body, token), token)
    assert signature_ok(body, f"  {sign(body, token)}\n", token)  # header whitespace
    assume(forged.strip() != sign(body, token))
    assert not signature_ok(body, forged, token)
    assert not signature_ok(body, None, token)
    assert not signature_ok(body, sign(body, token), "")
    assert not signature_ok(body + b" ", sign(body, token), token)


# ---- Closed Won records ----------------------------------------------------------------------
nasty_text = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=60
) | st.sampled_from(
    [
        "",
        "\x00\x01\x1f",
        "\u200b\ufeff\u202e",
        "\uff21\uff43\uff4d\uff45\uff1a\uff23\uff4f\uff52\uff50"  # fullwidth, colon too,
        "Zoë Ltd.\tGmbH\n",
        "a" * 500,
        "株式会社テスト: 東京",
        'O\'Reilly \\ "Media"',
    ]
)
# Salesforce Amount is currency(16, 2): up to 9,999,999,999,999,999.99, and the JSON decoder
# hands it over as a float.
money = st.decimals(
    min_value=Decimal(0),
    max_value=Decimal("9999999999999999.99"),
    places=2,
    allow_nan=False,
    allow_infinity=False,
)
# A name with something visible in it, and whatever else around it.
names = st.tuples(
    nasty_text,
    st.text(alphabet=st.characters(categories=["L", "N"]), min_size=1, max_size=30),
    nasty_text,
).map("".join)
# Not what Salesforce sends, but what a bad record or a proxy could: NaN, infinities, text,
# booleans, nulls, negatives and zero. (Beyond currency(16, 2) Salesforce cannot store a value.)
bad_numbers = st.sampled_from(
    [float("nan"), float("inf"), float("-inf"), "NaN", -0.01, 0, True, "abc", None]
)
currencies = st.sampled_from(["USD", "EUR", "GBP", "XYZ", "usd", "", None, "€", "US Dollar"])


COMPANY = demo_records.company()
WON_KEYS = [o.key for o in COMPANY.opportunities if o.is_won and o.lines]


def rarely(draw: st.DrawFn, bad: st.SearchStrategy[Any], good: Any) -> Any:
    """``good`` mostly (eleven times in twelve), else something drawn from ``bad``."""
    return draw(bad) if draw(st.integers(0, 11)) == 0 else good


@st.composite
def deal_records(draw: st.DrawFn) -> dict[str, Any]:
    """A demo Closed Won record with names, lines, amounts and currency fuzzed: mostly a deal
    that should be invoiced (with odd names and big numbers), sometimes a broken one."""
    record = demo_records.opportunity_record(COMPANY, draw(st.sampled_from(WON_KEYS)))
    record["Name"] = rarely(draw, nasty_text, draw(names | st.just(record["Name"])))
    account = record["Account"]
    account["Name"] = rarely(draw, nasty_text, draw(names | st.just(account["Name"])))
    record["CurrencyIsoCode"] = rarely(draw, currencies, record["CurrencyIsoCode"])
    template = (record["OpportunityLineItems"] or {"records": []})["records"][0]
    lines = []
    for n in range(rarely(draw, st.just(0), draw(st.integers(1, 4)))):
        qty = draw(st.decimals(Decimal("0.01"), Decimal("100000"), places=2))
        qty = rarely(draw, st.sampled_from([Decimal(0), Decimal(-1)]), qty)
        unit = rarely(draw, st.sampled_from([Decimal(-1), Decimal("-0.01")]), draw(money))
        discount = draw(st.none() | st.decimals(Decimal(0), Decimal(100), places=2))
        discount = rarely(draw, st.sampled_from([Decimal(-5), Decimal(120)]), discount)
        gross = qty * unit * (1 - (discount or Decimal(0)) / 100)
        total = rarely(draw, money, gross.quantize(Decimal("0.01")))
        line = {
            **template,
            "Id": f"00k5g00000{n:05d}AAA",
            "Name": draw(names),
            "Description": draw(st.none() | nasty_text),
            "Quantity": float(qty),
            "UnitPrice": float(unit),
            "Discount": float(discount) if discount is not None else None,
            "TotalPrice": float(total),
        }
        if draw(st.booleans()):
            line["Product2"] = {**template["Product2"], "Name": draw(names)}
        for field in rarely(
            draw,
            st.sets(st.sampled_from(["Quantity", "UnitPrice", "TotalPrice"]), min_size=1),
            set(),
        ):
            line[field] = draw(bad_numbers)
        lines.append(line)
    record["OpportunityLineItems"] = (
        {"totalSize": len(lines), "done": rarely(draw, st.just(False), True), "records": lines}
        if lines
        else None
    )
    totals = sum(
        (
            Decimal(str(t))
            for li in lines
            if isinstance(t := li["TotalPrice"], float) and math.isfinite(t)
        ),
        Decimal(0),
    )
    record["Amount"] = rarely(draw, money.map(float) | bad_numbers, float(totals))
    return record


@pytest.fixture(scope="module")
def reference(company: DemoCompany) -> tuple[dict[str, str], dict[str, str]]:
    return demo_records.qbo_items(company), demo_records.qbo_terms(company)


def _visible(text: str) -> bool:
    return not any(unicodedata.category(ch) in INVISIBLE for ch in text)


@FUZZ
@given(record=deal_records())
def test_a_fuzzed_deal_is_invoiced_exactly_or_refused_naming_the_record(
    record: dict[str, Any],
    config: RevbridgeConfig,
    reference: tuple[dict[str, str], dict[str, str]],
) -> None:
    try:
        opp = Opportunity.from_record(record)
    except UNREADABLE:
        event("unreadable")
        return  # the flow reports it as "unreadable" under the record's Id (tests/flows)
    problems = validate(opp, config)
    if problems:
        event(f"refused by validate: {problems[0].field.split('[')[0]}")
        assert all(p.record_id == record["Id"] and p.field and p.reason for p in problems)
        return
    realm = route(opp, config)
    assert isinstance(realm, str)
    items, terms = reference
    try:
        draft = build_invoice(opp, config.realm(realm), "42", items, terms, TODAY)
    except InvoiceError as exc:
        event("refused by build_invoice")
        assert exc.problems and all(p.record_id == record["Id"] for p in exc.problems)
        assert record["Id"] in str(exc)
        return
    event("invoiced")
    # What QuickBooks receives (JSON numbers) adds up to the lines, to the cent; the lines to
    # the Amount within validate's tolerance.
    payload = json.loads(json.dumps(draft.payload()))
    sent = [Decimal(str(line["Amount"])) for line in payload["Line"]]
    assert sum(sent, Decimal(0)) == opp.lines_total, (opp.lines_total, sent)
    assert opp.amount is not None and abs(opp.amount - opp.lines_total) <= AMOUNT_TOLERANCE
    for line in payload["Line"]:
        detail = line["SalesItemLineDetail"]
        qty, unit = Decimal(str(detail["Qty"])), Decimal(str(detail["UnitPrice"]))
        assert qty * unit == Decimal(str(line["Amount"])), line
        assert _visible(line["Description"].replace("\n", ""))
    assert payload["CurrencyRef"]["value"] == config.realm(realm).currency
    assert _visible(payload["CustomerMemo"]["value"])


@FUZZ
@given(name=nasty_text, reserve=st.integers(0, 20))
def test_new_customer_names_are_quickbooks_safe(name: str, reserve: int) -> None:
    display = display_name_for(name, reserve=reserve)
    assert ":" not in display  # QuickBooks' sub-customer separator
    assert len(display) <= DISPLAY_NAME_MAX - reserve
    assert display == display.strip()
    assert _visible(display)


def test_a_line_too_long_for_an_exact_json_number_is_refused_naming_the_record(
    config: RevbridgeConfig, reference: tuple[dict[str, str], dict[str, str]]
) -> None:
    """What the fuzz found: 3 x 23,822,165,496,729.60 less an adjustment to 0.01 needs a
    discount line of -71,466,496,490,188.79, which a JSON (double) number cannot carry; sent as
    is, the invoice would total 0.00."""
    record = demo_records.opportunity_record(COMPANY, WON_KEYS[0])
    line = record["OpportunityLineItems"]["records"][0]
    odd = {**line, "Quantity": 3.0, "UnitPrice": 23822165496729.6, "TotalPrice": 0.01}
    record["OpportunityLineItems"]["records"] = [{**odd, "Discount": None}]
    record["Amount"] = 0.01
    opp = Opportunity.from_record(record)
    assert validate(opp, config) == []
    realm = route(opp, config)
    assert isinstance(realm, str)
    with pytest.raises(InvoiceError) as refused:
        build_invoice(opp, config.realm(realm), "42", *reference, TODAY)
    assert record["Id"] in str(refused.value)
    assert "-71466496490188.79 has more digits than a QuickBooks amount carries" in str(
        refused.value
    )
