"""Sandbox behaviour around the API: throttling, injected faults, tokens, realms, reset/seed,
unknown routes, call counting, the info section and webhook notifications."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any

import httpx
from quickbooks import QuickBooks
from quickbooks.exceptions import (
    AuthorizationException,
    QuickbooksException,
    SevereException,
    UnsupportedException,
    ValidationException,
)
from quickbooks.objects import CompanyInfo, Customer, Invoice, Item, Payment, PaymentLine, Term
from quickbooks.objects.base import LinkedTxn
from quickbooks.objects.detailline import SalesItemLine, SalesItemLineDetail

from sandbox.demo_company import REALMS
from sandbox.quickbooks import QuickBooksEmulator

FaultCheck = Callable[[type[QuickbooksException], int], AbstractContextManager[Any]]


def named(name: str) -> Customer:
    customer = Customer()
    customer.DisplayName = name
    return customer


def invoice_for(qb: QuickBooks, customer: Customer, amount: int = 100) -> Invoice:
    line = SalesItemLine()
    line.Amount = amount
    line.SalesItemLineDetail = SalesItemLineDetail()
    line.SalesItemLineDetail.ItemRef = Item.filter(Name="Training", qb=qb)[0].to_ref()
    invoice = Invoice()
    invoice.CustomerRef = customer.to_ref()
    invoice.Line = [line]
    return invoice


def api(qb: QuickBooks, path: str) -> str:
    return f"{qb.api_url}/company/{qb.company_id}/{path}"


# ---- throttling ------------------------------------------------------------------------------
def test_requests_per_minute(
    qb: QuickBooks, control: httpx.Client, expect_fault: FaultCheck
) -> None:
    limits = control.post("/_sandbox/limits", json={"requests_per_minute": 3}).json()
    assert limits == {
        "requests_per_minute": 3,
        "concurrent": 10,
        "batch_per_minute": 40,
        "enabled": True,
        "upload_max_bytes": 100 * 1024 * 1024,
    }
    for _ in range(3):
        Term.count(qb=qb)
    with expect_fault(ValidationException, 3001) as caught:
        Term.count(qb=qb)
    assert "ThrottleExceeded" in caught.value.message
    raw = qb.process_request("GET", api(qb, "preferences"), headers={"Accept": "application/json"})
    assert raw.status_code == 429 and "Retry-After" not in raw.headers
    assert raw.json()["Fault"]["type"] == "SERVICE"
    other_realm_still_fine = control.get("/_sandbox/limits").json()["enabled"]
    assert other_realm_still_fine
    control.post("/_sandbox/limits", json={"enabled": False})
    assert Term.count(qb=qb) == 4
    counted = control.get("/_sandbox/calls").json()["by_tenant"][qb.company_id]
    assert counted == 6  # throttled requests are counted too


def test_throttles_are_per_realm(
    qb: QuickBooks, qb_eu: QuickBooks, control: httpx.Client, expect_fault: FaultCheck
) -> None:
    control.post("/_sandbox/limits", json={"requests_per_minute": 1})
    Term.count(qb=qb)
    with expect_fault(ValidationException, 3001):
        Term.count(qb=qb)
    assert Term.count(qb=qb_eu) == 4


def test_batch_requests_per_minute(
    qb: QuickBooks, control: httpx.Client, expect_fault: FaultCheck
) -> None:
    control.post("/_sandbox/limits", json={"batch_per_minute": 1})
    body = '{"BatchItemRequest": [{"bId": "1", "Query": "SELECT COUNT(*) FROM Term"}]}'
    qb.batch_operation(body)
    with expect_fault(ValidationException, 3001):
        qb.batch_operation(body)
    assert Term.count(qb=qb) == 4  # plain requests are unaffected


def test_concurrent_requests(
    qb: QuickBooks, make_client: Callable[[str], QuickBooks], control: httpx.Client,
    expect_fault: FaultCheck,
) -> None:  # fmt: skip
    control.post("/_sandbox/limits", json={"concurrent": 1})
    control.post("/_sandbox/faults", json={"path": "/companyinfo/", "latency_ms": 600})
    slow_client = make_client("us")
    results: list[Any] = []
    slow = threading.Thread(
        target=lambda: results.append(CompanyInfo.get(slow_client.company_id, qb=slow_client))
    )
    slow.start()
    time.sleep(0.25)
    with expect_fault(ValidationException, 3001):
        Term.count(qb=qb)
    slow.join(5)
    assert results and results[0].CompanyName == "Acme Analytics Inc."
    assert Term.count(qb=qb) == 4


def test_bad_limits_are_rejected(control: httpx.Client) -> None:
    assert control.post("/_sandbox/limits", json={"concurrent": 0}).status_code == 400
    assert control.post("/_sandbox/limits", json={"burst": 3}).status_code == 400
    assert control.post("/_sandbox/limits", json=[1]).status_code == 400


# ---- injected faults -------------------------------------------------------------------------
def test_injected_5xx_and_429(
    qb: QuickBooks, control: httpx.Client, expect_fault: FaultCheck
) -> None:
    control.post("/_sandbox/faults", json={"path": "/query$", "status": 503})
    with expect_fault(SevereException, 10000):
        Term.count(qb=qb)
    control.post("/_sandbox/faults", json={"path": "/query$", "status": 500, "count": 2})
    for _ in range(2):
        with expect_fault(SevereException, 10000):
            Term.count(qb=qb)
    control.post("/_sandbox/faults", json={"path": "/query$", "status": 429})
    with expect_fault(ValidationException, 3001):
        Term.count(qb=qb)
    control.post("/_sandbox/faults", json={"status": 502, "body": "<html>Bad Gateway</html>"})
    with expect_fault(QuickbooksException, 10000) as caught:
        Term.count(qb=qb)
    assert "Error reading json response" in caught.value.message
    assert Term.count(qb=qb) == 4


def test_injected_latency_and_expired_token(
    qb: QuickBooks, control: httpx.Client, expect_fault: FaultCheck
) -> None:
    control.post("/_sandbox/faults", json={"path": "/query$", "latency_ms": 250})
    started = time.monotonic()
    Term.count(qb=qb)
    assert time.monotonic() - started >= 0.25
    control.post("/_sandbox/faults", json={"expired_token": True, "tenant": qb.company_id})
    with expect_fault(AuthorizationException, 401) as caught:
        Term.count(qb=qb)
    assert "AuthenticationFailed" in caught.value.detail


# ---- tokens and realms -----------------------------------------------------------------------
def test_expired_access_token_then_refresh(
    qb: QuickBooks,
    make_client: Callable[[str], QuickBooks],
    control: httpx.Client,
    expect_fault: FaultCheck,
) -> None:
    control.post("/_sandbox/tokens", json={"realm_id": qb.company_id, "action": "expire_access"})
    with expect_fault(AuthorizationException, 401) as caught:
        Customer.count(qb=qb)
    assert "Token expired" in caught.value.detail
    assert make_client("us").company_id == qb.company_id
    assert Customer.count(qb=make_client("us")) == 9


def test_token_of_another_realm_is_forbidden(qb: QuickBooks, qb_eu: QuickBooks) -> None:
    qb.company_id = qb_eu.company_id  # US token, EU company
    try:
        Customer.count(qb=qb)
    except QuickbooksException as error:
        assert "ApplicationAuthorizationFailed" in str(error) and error.error_code == 10000
    else:  # pragma: no cover - the assertion above is the test
        raise AssertionError("a token of another realm was accepted")


def test_no_token_is_401(control: httpx.Client, qb: QuickBooks) -> None:
    answer = control.get(f"/v3/company/{qb.company_id}/preferences")
    assert answer.status_code == 401 and "WWW-Authenticate" in answer.headers
    assert answer.json()["fault"]["error"][0]["code"] == "3200"


def test_realms_are_isolated(qb: QuickBooks, qb_eu: QuickBooks) -> None:
    named("Twin Co").save(qb=qb)
    assert Customer.filter(DisplayName="Twin Co", qb=qb_eu) == []
    named("Twin Co").save(qb=qb_eu)  # the same name is fine in another company
    us = invoice_for(qb, Customer.filter(DisplayName="Twin Co", qb=qb)[0]).save(qb=qb)
    eu = invoice_for(qb_eu, Customer.filter(DisplayName="Twin Co", qb=qb_eu)[0]).save(qb=qb_eu)
    assert (us.DocNumber, eu.DocNumber) == ("1004", "1002")
    assert us.CurrencyRef.value == "USD" and eu.CurrencyRef.value == "EUR"
    assert CompanyInfo.get(qb_eu.company_id, qb=qb_eu).CompanyName == "Acme Analytics Europe B.V."


def test_minorversion_is_accepted_at_any_value(qb: QuickBooks) -> None:
    raw = qb.process_request(
        "GET",
        api(qb, "preferences"),
        headers={"Accept": "application/json"},
        params={"minorversion": 4},
    )
    assert raw.status_code == 200 and raw.json()["Preferences"]["Id"] == "1"


# ---- reset and seed --------------------------------------------------------------------------
def test_reset_and_seed(
    make_client: Callable[[str], QuickBooks], control: httpx.Client, expect_fault: FaultCheck
) -> None:
    qb = make_client("us")
    named("Temporary").save(qb=qb)
    control.post("/_sandbox/limits", json={"requests_per_minute": 100})
    assert control.post("/_sandbox/reset").json() == {"ok": True, "profile": "demo"}
    with expect_fault(AuthorizationException, 401):
        Customer.count(qb=qb)  # a reset forgets issued tokens; the info file's still work
    qb = make_client("us")
    assert Customer.filter(DisplayName="Temporary", qb=qb) == []
    assert control.get("/_sandbox/limits").json()["requests_per_minute"] == 500
    assert control.post("/_sandbox/seed", json={"profile": "empty"}).json()["profile"] == "empty"
    qb = make_client("us")
    assert Customer.count(qb=qb) == 0 and Invoice.count(qb=qb) == 0
    assert {t.Name for t in Term.all(qb=qb)} == {"Net 15", "Net 30", "Net 60", "Due on receipt"}
    assert [i.Name for i in Item.all(qb=qb)] == ["Services"]
    customer = named("First Customer").save(qb=qb)
    line = SalesItemLine()
    line.Amount = 10
    line.SalesItemLineDetail = SalesItemLineDetail()
    line.SalesItemLineDetail.ItemRef = Item.all(qb=qb)[0].to_ref()
    invoice = Invoice()
    invoice.CustomerRef, invoice.Line = customer.to_ref(), [line]
    assert invoice.save(qb=qb).DocNumber == "1001"
    assert control.post("/_sandbox/seed", json={"profile": "demo"}).json()["profile"] == "demo"
    assert Customer.count(qb=make_client("us")) == 9
    assert control.post("/_sandbox/seed", json={"profile": "full"}).status_code == 400


def test_refresh_tokens_survive_a_reset(
    qbo_emulator: QuickBooksEmulator,
    qbo_info: dict[str, Any],
    make_client: Callable[[str], QuickBooks],
) -> None:
    qbo_emulator.reset()
    assert qbo_emulator.info(qbo_emulator.base_url, None) == qbo_info
    assert Customer.count(qb=make_client("eu")) == 3


# ---- routing, counting, info -----------------------------------------------------------------
def test_unknown_routes_answer_like_intuit(
    qb: QuickBooks, control: httpx.Client, expect_fault: FaultCheck
) -> None:
    with expect_fault(UnsupportedException, 500) as caught:
        qb.get(api(qb, "spaceship/1"))
    assert "Could not find resource for relative" in caught.value.detail
    raw = qb.process_request("GET", api(qb, "spaceship/1"), headers={"Accept": "application/json"})
    assert raw.status_code == 404
    assert control.get("/nowhere").json()["Fault"]["Error"][0]["Message"] == "Unsupported Operation"
    assert control.get(f"/v3/company/{qb.company_id}/invoice").status_code == 405


def test_calls_are_counted_per_endpoint_and_realm(
    qb: QuickBooks, qb_eu: QuickBooks, qbo_emulator: QuickBooksEmulator
) -> None:
    qbo_emulator.calls.clear()
    globex = Customer.filter(DisplayName="Globex Corp.", qb=qb)[0]
    invoice = invoice_for(qb, globex).save(qb=qb)
    invoice.download_pdf(qb=qb)
    qb.batch_operation('{"BatchItemRequest": []}')
    qb.change_data_capture("Invoice", datetime.now().astimezone().isoformat())
    Customer.count(qb=qb_eu)
    counts = {
        (c["method"], c["endpoint"], c["tenant"]): c["count"]
        for c in qbo_emulator.calls.snapshot()["calls"]
    }
    us, eu = qb.company_id, qb_eu.company_id
    assert counts[("POST", "invoice", us)] == 1
    assert counts[("GET", "invoice/pdf", us)] == 1
    assert counts[("POST", "batch", us)] == 1 and counts[("GET", "cdc", us)] == 1
    assert counts[("POST", "query", us)] == 2 and counts[("POST", "query", eu)] == 1
    assert qbo_emulator.classify("POST", f"/v3/company/{us}/invoice/7/send") == (
        "invoice/send",
        us,
    )
    assert qbo_emulator.classify("POST", "/oauth2/v1/tokens/bearer") == ("token", None)
    assert qbo_emulator.classify("GET", f"/v3/company/{us}/companyinfo/{us}") == (
        "companyinfo",
        us,
    )


def test_info_section(qbo_info: dict[str, Any], qbo_emulator: QuickBooksEmulator) -> None:
    base = qbo_emulator.base_url
    assert qbo_info["discovery_url"] == base + "/.well-known/openid_sandbox_configuration"
    assert qbo_info["api_base"] == base + "/v3"
    assert set(qbo_info) == {
        "discovery_url", "api_base", "client_id", "client_secret", "webhook_verifier_token",
        "realms",
    }  # fmt: skip
    assert {k: v["realm_id"] for k, v in qbo_info["realms"].items()} == {
        r.key: r.realm_id for r in REALMS
    }
    assert all(v["refresh_token"] for v in qbo_info["realms"].values())
    empty = QuickBooksEmulator(profile="empty")
    assert set(empty.info("http://x", None)["realms"]) == {"us", "eu"}
    empty.close()


# ---- webhook notifications -------------------------------------------------------------------
def test_every_committed_write_is_notified(
    qb: QuickBooks, qbo_emulator: QuickBooksEmulator
) -> None:
    seen: list[tuple[str, str, str, str]] = []
    original = qbo_emulator.backend.notify
    qbo_emulator.backend.notify = lambda realm, entity, obj_id, op, when: seen.append(
        (realm, entity, obj_id, op)
    )
    try:
        bob = Customer.filter(DisplayName="Bob's Burgers", qb=qb)[0]
        invoice = invoice_for(qb, bob).save(qb=qb)
        invoice.send(qb=qb)
        pay = Payment()
        pay.CustomerRef, pay.TotalAmt = bob.to_ref(), 100
        line = PaymentLine()
        line.Amount = 100
        link = LinkedTxn()
        link.TxnId, link.TxnType = invoice.Id, "Invoice"
        line.LinkedTxn = [link]
        pay.Line = [line]
        pay = pay.save(qb=qb)
        Invoice.get(invoice.Id, qb=qb).void(qb=qb)
        Invoice.get(invoice.Id, qb=qb).delete(qb=qb)
        with contextlib.suppress(QuickbooksException):
            named("Stark Industries").save(qb=qb)  # a failed write notifies nothing
    finally:
        qbo_emulator.backend.notify = original
    realm = qb.company_id
    assert seen == [
        (realm, "Invoice", invoice.Id, "Create"),
        (realm, "Invoice", invoice.Id, "Emailed"),
        (realm, "Payment", pay.Id, "Create"),
        (realm, "Invoice", invoice.Id, "Update"),  # its balance moved
        (realm, "Invoice", invoice.Id, "Void"),
        (realm, "Payment", pay.Id, "Update"),  # unapplied from the voided invoice
        (realm, "Invoice", invoice.Id, "Delete"),
    ]
