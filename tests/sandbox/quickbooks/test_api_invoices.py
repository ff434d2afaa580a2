"""Invoices, credit memos and payments through python-quickbooks: amounts, balances and faults."""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import AbstractContextManager
from decimal import Decimal
from typing import Any

import pytest
from quickbooks import QuickBooks
from quickbooks.exceptions import (
    ObjectNotFoundException,
    QuickbooksException,
    ValidationException,
)
from quickbooks.objects import CreditMemo, Customer, Invoice, Item, Payment, PaymentLine, Term
from quickbooks.objects.base import EmailAddress, LinkedTxn, Ref
from quickbooks.objects.detailline import (
    DiscountLine,
    DiscountLineDetail,
    SalesItemLine,
    SalesItemLineDetail,
)
from quickbooks.objects.tax import TxnTaxDetail

FaultCheck = Callable[[type[QuickbooksException], int], AbstractContextManager[Any]]


def ref(value: str, name: str = "") -> Ref:
    r = Ref()
    r.value, r.name = value, name
    return r


def item_line(item: Item, qty: int, price: Any, amount: Any = None, tax: str = "") -> SalesItemLine:
    line = SalesItemLine()
    line.Amount = amount if amount is not None else Decimal(str(price)) * qty
    line.SalesItemLineDetail = SalesItemLineDetail()
    line.SalesItemLineDetail.ItemRef = item.to_ref()
    line.SalesItemLineDetail.Qty = qty
    line.SalesItemLineDetail.UnitPrice = price
    if tax:
        line.SalesItemLineDetail.TaxCodeRef = ref(tax)
    return line


def item_named(qb: QuickBooks, name: str) -> Item:
    return Item.filter(Name=name, qb=qb)[0]


def customer_named(qb: QuickBooks, name: str) -> Customer:
    quoted = name.replace("'", "\\'")
    return Customer.where(f"DisplayName = '{quoted}' AND Active IN (true, false)", qb=qb)[0]


def new_invoice(customer: Customer, *lines: Any) -> Invoice:
    invoice = Invoice()
    invoice.CustomerRef = customer.to_ref()
    invoice.Line = list(lines)
    return invoice


@pytest.fixture
def platform(qb: QuickBooks) -> Item:
    return item_named(qb, "Platform Subscription")


@pytest.fixture
def seat(qb: QuickBooks) -> Item:
    return item_named(qb, "Additional Seat")


@pytest.fixture
def globex(qb: QuickBooks) -> Customer:
    return customer_named(qb, "Globex Corp.")


def num(value: Any) -> Decimal:
    return Decimal(str(value))


# ---- invoices --------------------------------------------------------------------------------
def test_invoice_totals_docnumber_and_due_date(
    qb: QuickBooks, platform: Item, seat: Item, globex: Customer
) -> None:
    discount = DiscountLine()
    discount.DiscountLineDetail = DiscountLineDetail()
    discount.DiscountLineDetail.PercentBased = True
    discount.DiscountLineDetail.DiscountPercent = 10
    invoice = new_invoice(globex, item_line(platform, 1, 12000), item_line(seat, 5, "600.00"))
    invoice.Line.append(discount)
    invoice.SalesTermRef = Term.filter(Name="Net 15", qb=qb)[0].to_ref()
    invoice.TxnDate = "2026-11-02"
    saved = invoice.save(qb=qb)
    assert saved.DocNumber == "1004"  # demo history holds 1001-1003 in the US company
    details = [line.DetailType for line in saved.Line]
    assert details == [
        "SalesItemLineDetail",
        "SalesItemLineDetail",
        "SubTotalLineDetail",
        "DiscountLineDetail",
    ]
    assert num(saved.Line[2].Amount) == Decimal("15000")
    assert num(saved.Line[3].Amount) == Decimal("1500")
    assert num(saved.TotalAmt) == num(saved.Balance) == Decimal("13500")
    assert saved.DueDate == "2026-11-17" and saved.SalesTermRef.name == "Net 15"
    assert saved.CurrencyRef.value == "USD" and saved.CustomerRef.name == "Globex Corp."
    assert saved.Line[0].SalesItemLineDetail.ItemRef.name == "Platform Subscription"
    second = new_invoice(globex, item_line(platform, 1, 12000))
    second.TxnDate = "2026-11-02"
    second = second.save(qb=qb)
    assert second.DocNumber == "1005"
    assert second.DueDate == "2026-12-02"  # the company's default terms: Net 30
    assert float(customer_named(qb, "Globex Corp.").Balance) == 25500.0


def test_us_sales_tax(qb: QuickBooks, platform: Item, globex: Customer) -> None:
    invoice = new_invoice(globex, item_line(platform, 1, 1000, tax="TAX"))
    invoice.TxnTaxDetail = TxnTaxDetail()
    invoice.TxnTaxDetail.TxnTaxCodeRef = ref("2")
    saved = invoice.save(qb=qb)
    assert num(saved.TxnTaxDetail.TotalTax) == Decimal("82.50")
    assert num(saved.TotalAmt) == Decimal("1082.50")
    untaxed = new_invoice(globex, item_line(platform, 1, 1000)).save(qb=qb)
    assert num(untaxed.TxnTaxDetail.TotalTax) == 0
    assert untaxed.Line[0].SalesItemLineDetail.TaxCodeRef.value == "NON"


def test_eu_vat_and_foreign_currency(qb_eu: QuickBooks) -> None:
    platform = item_named(qb_eu, "Platform Subscription")
    muller = customer_named(qb_eu, "Müller und Söhne")
    vat = new_invoice(muller, item_line(platform, 1, 12000, tax="3")).save(qb=qb_eu)
    assert num(vat.TxnTaxDetail.TotalTax) == Decimal("2520")
    assert num(vat.TotalAmt) == Decimal("14520") and vat.CurrencyRef.value == "EUR"
    assert num(vat.ExchangeRate) == 1
    dollars = Customer()
    dollars.DisplayName, dollars.CurrencyRef = "Yankee Imports", ref("USD")
    dollars = dollars.save(qb=qb_eu)
    foreign = new_invoice(dollars, item_line(platform, 1, 1000)).save(qb=qb_eu)
    assert foreign.CurrencyRef.value == "USD"
    assert num(foreign.ExchangeRate) == Decimal("0.925926")  # 1 USD in EUR (1.08 USD per EUR)
    assert num(foreign.HomeTotalAmt) == Decimal("925.93")


def test_currency_must_match_the_customer(
    qb: QuickBooks, platform: Item, globex: Customer, expect_fault: FaultCheck
) -> None:
    invoice = new_invoice(globex, item_line(platform, 1, 100))
    invoice.CurrencyRef = ref("EUR")
    with expect_fault(QuickbooksException, 6000):
        invoice.save(qb=qb)


def test_invoice_validation_faults(
    qb: QuickBooks, platform: Item, globex: Customer, expect_fault: FaultCheck
) -> None:
    with expect_fault(ValidationException, 2020):
        new_invoice(globex).save(qb=qb)  # no lines
    nocustomer = Invoice()
    nocustomer.Line = [item_line(platform, 1, 100)]
    with expect_fault(ValidationException, 2020):
        nocustomer.save(qb=qb)
    no_item = item_line(platform, 1, 100)
    no_item.SalesItemLineDetail.ItemRef = None
    with expect_fault(ValidationException, 2020):
        new_invoice(globex, no_item).save(qb=qb)
    with expect_fault(QuickbooksException, 6070):
        new_invoice(globex, item_line(platform, 2, 100, amount=150)).save(qb=qb)
    ghost = item_line(platform, 1, 100)
    ghost.SalesItemLineDetail.ItemRef = ref("98765")
    with expect_fault(ValidationException, 2500):
        new_invoice(globex, ghost).save(qb=qb)
    bad_term = new_invoice(globex, item_line(platform, 1, 100))
    bad_term.SalesTermRef = ref("555")
    with expect_fault(ValidationException, 2500):
        bad_term.save(qb=qb)
    # failed saves use up no document number
    assert new_invoice(globex, item_line(platform, 1, 100)).save(qb=qb).DocNumber == "1004"


def test_inactive_customer_is_object_not_found(
    qb: QuickBooks, platform: Item, expect_fault: FaultCheck
) -> None:
    duff = customer_named(qb, "Duff Brewing (inactive)")
    with expect_fault(ObjectNotFoundException, 610) as caught:
        new_invoice(duff, item_line(platform, 1, 100)).save(qb=qb)
    assert "made inactive" in caught.value.detail


def test_duplicate_docnumber_is_6140(
    qb: QuickBooks, platform: Item, globex: Customer, expect_fault: FaultCheck
) -> None:
    first = new_invoice(globex, item_line(platform, 1, 100))
    first.DocNumber = "SF-0001"
    saved = first.save(qb=qb)
    again = new_invoice(globex, item_line(platform, 1, 100))
    again.DocNumber = "SF-0001"
    with expect_fault(QuickbooksException, 6140) as caught:
        again.save(qb=qb)
    assert f"TxnType=Invoice with TxnId={saved.Id}" in caught.value.detail


def test_python_quickbooks_zero_defaults_and_string_decimals(
    qb: QuickBooks, platform: Item, globex: Customer
) -> None:
    """SalesItemLineDetail defaults Qty/UnitPrice to 0 and DecimalEncoder writes strings."""
    line = SalesItemLine()
    line.Amount = Decimal("250.00")
    line.SalesItemLineDetail = SalesItemLineDetail()
    line.SalesItemLineDetail.ItemRef = platform.to_ref()
    saved = new_invoice(globex, line).save(qb=qb)
    assert num(saved.TotalAmt) == Decimal("250")


def test_update_void_delete(
    qb: QuickBooks, platform: Item, globex: Customer, expect_fault: FaultCheck
) -> None:
    saved = new_invoice(globex, item_line(platform, 1, 500)).save(qb=qb)
    saved.PrivateNote = "Opportunity 006xx"
    updated = saved.save(qb=qb)
    assert updated.SyncToken == "1" and num(updated.TotalAmt) == 500
    saved.SyncToken = "0"
    with expect_fault(QuickbooksException, 5010):
        saved.save(qb=qb)
    current = Invoice.get(updated.Id, qb=qb)
    current.void(qb=qb)
    voided = Invoice.get(updated.Id, qb=qb)
    assert num(voided.TotalAmt) == num(voided.Balance) == 0
    assert voided.PrivateNote.startswith("Voided") and voided.SyncToken == "2"
    assert float(customer_named(qb, "Globex Corp.").Balance) == 0
    voided.delete(qb=qb)
    with expect_fault(ObjectNotFoundException, 610) as caught:
        Invoice.get(updated.Id, qb=qb)
    assert "deleted" in caught.value.detail


def test_send_and_pdf(qb: QuickBooks, platform: Item, expect_fault: FaultCheck) -> None:
    bob = customer_named(qb, "Bob's Burgers")
    invoice = new_invoice(bob, item_line(platform, 1, 100)).save(qb=qb)
    assert invoice.BillEmail.Address == "linda@bobsburgers.example"
    sent = invoice.send(qb=qb)["Invoice"]
    assert sent["EmailStatus"] == "EmailSent" and sent["DeliveryInfo"]["DeliveryType"] == "Email"
    resent = invoice.send(qb=qb, send_to="owner@bobsburgers.example")["Invoice"]
    assert resent["BillEmail"]["Address"] == "owner@bobsburgers.example"
    assert Invoice.get(invoice.Id, qb=qb).email_sent
    pdf = invoice.download_pdf(qb=qb)
    assert pdf.startswith(b"%PDF-1.4") and pdf.rstrip().endswith(b"%%EOF")
    assert b"INVOICE " + invoice.DocNumber.encode() in pdf
    globex = customer_named(qb, "Globex Corp.")  # no e-mail address on file
    silent = new_invoice(globex, item_line(platform, 1, 100)).save(qb=qb)
    with expect_fault(ValidationException, 2020):
        silent.send(qb=qb)
    with expect_fault(QuickbooksException, 6000):
        silent.send(qb=qb, send_to="not-an-address")


def test_sparse_update_keeps_lines(qb: QuickBooks, platform: Item, globex: Customer) -> None:
    saved = new_invoice(globex, item_line(platform, 3, 100)).save(qb=qb)
    url = f"{qb.api_url}/company/{qb.company_id}/invoice"
    body = {"Id": saved.Id, "SyncToken": saved.SyncToken, "sparse": True, "PrivateNote": "x"}
    after = qb.post(url, json.dumps(body))["Invoice"]
    assert after["PrivateNote"] == "x" and after["TotalAmt"] == 300
    assert after["Line"][0]["SalesItemLineDetail"]["Qty"] == 3


# ---- payments and credit memos ---------------------------------------------------------------
def payment(customer: Customer, total: Any, *applications: tuple[Any, Any]) -> Payment:
    pay = Payment()
    pay.CustomerRef = customer.to_ref()
    pay.TotalAmt = total
    for txn, amount in applications:
        line = PaymentLine()
        line.Amount = amount
        link = LinkedTxn()
        link.TxnId, link.TxnType = txn.Id, type(txn).qbo_object_name
        line.LinkedTxn = [link]
        pay.Line.append(line)
    return pay


def test_payment_across_invoices(
    qb: QuickBooks, platform: Item, globex: Customer, expect_fault: FaultCheck
) -> None:
    a = new_invoice(globex, item_line(platform, 1, 1000)).save(qb=qb)
    b = new_invoice(globex, item_line(platform, 1, 500)).save(qb=qb)
    paid = payment(globex, 1300, (a, 1000), (b, 200)).save(qb=qb)
    assert num(paid.UnappliedAmt) == 100
    a, b = Invoice.get(a.Id, qb=qb), Invoice.get(b.Id, qb=qb)
    assert (num(a.Balance), num(b.Balance)) == (0, 300)
    assert [t.TxnId for t in b.LinkedTxn] == [paid.Id] and b.LinkedTxn[0].TxnType == "Payment"
    assert b.SyncToken == "1"  # a payment changes the invoice it is applied to
    assert float(customer_named(qb, "Globex Corp.").Balance) == 200.0  # 300 open - 100 credit
    with expect_fault(QuickbooksException, 6000):
        payment(globex, 400, (b, 400)).save(qb=qb)  # more than the open balance
    bluth_invoice = Invoice.where("DocNumber = '1001'", qb=qb)[0]
    with expect_fault(QuickbooksException, 6000):
        payment(globex, 10, (bluth_invoice, 10)).save(qb=qb)  # another customer's invoice
    with expect_fault(ValidationException, 2020):
        payment(globex, None).save(qb=qb)


def test_void_and_delete_payment_restore_balances(
    qb: QuickBooks, platform: Item, globex: Customer
) -> None:
    invoice = new_invoice(globex, item_line(platform, 1, 1000)).save(qb=qb)
    first = payment(globex, 600, (invoice, 600)).save(qb=qb)
    assert num(Invoice.get(invoice.Id, qb=qb).Balance) == 400
    Payment.get(first.Id, qb=qb).void(qb=qb)
    voided = Payment.get(first.Id, qb=qb)
    assert num(voided.TotalAmt) == 0 and voided.PrivateNote == "Voided"
    assert num(Invoice.get(invoice.Id, qb=qb).Balance) == 1000
    second = payment(globex, 1000, (invoice, 1000)).save(qb=qb)
    assert num(Invoice.get(invoice.Id, qb=qb).Balance) == 0
    Payment.get(second.Id, qb=qb).delete(qb=qb)
    restored = Invoice.get(invoice.Id, qb=qb)
    assert num(restored.Balance) == 1000 and not restored.LinkedTxn


def test_deleting_a_paid_invoice_unapplies_the_payment(
    qb: QuickBooks, platform: Item, globex: Customer
) -> None:
    invoice = new_invoice(globex, item_line(platform, 1, 800)).save(qb=qb)
    paid = payment(globex, 800, (invoice, 800)).save(qb=qb)
    Invoice.get(invoice.Id, qb=qb).delete(qb=qb)
    after = Payment.get(paid.Id, qb=qb)
    assert num(after.UnappliedAmt) == 800 and after.Line == []
    assert float(customer_named(qb, "Globex Corp.").Balance) == -800.0


def test_credit_memo_applied_through_a_payment(
    qb: QuickBooks, platform: Item, globex: Customer
) -> None:
    invoice = new_invoice(globex, item_line(platform, 1, 1000)).save(qb=qb)
    memo = CreditMemo()
    memo.CustomerRef = globex.to_ref()
    memo.Line = [item_line(platform, 1, 250)]
    memo = memo.save(qb=qb)
    assert num(memo.RemainingCredit) == num(memo.TotalAmt) == 250
    assert CreditMemo.get(memo.Id, qb=qb).DocNumber == "1005"  # sales forms share numbering
    assert float(customer_named(qb, "Globex Corp.").Balance) == 750.0
    applied = payment(globex, 0, (invoice, 250), (memo, 250)).save(qb=qb)
    assert num(applied.UnappliedAmt) == 0
    assert num(Invoice.get(invoice.Id, qb=qb).Balance) == 750
    assert num(CreditMemo.get(memo.Id, qb=qb).RemainingCredit) == 0
    assert float(customer_named(qb, "Globex Corp.").Balance) == 750.0


def test_customer_currency_is_fixed_once_it_has_transactions(
    qb: QuickBooks, platform: Item, expect_fault: FaultCheck
) -> None:
    customer = Customer()
    customer.DisplayName = "Currency Co"
    customer = customer.save(qb=qb)
    customer.CurrencyRef = ref("EUR")
    moved = customer.save(qb=qb)
    assert moved.CurrencyRef.value == "EUR"
    new_invoice(moved, item_line(platform, 1, 10)).save(qb=qb)
    moved = Customer.get(moved.Id, qb=qb)
    moved.CurrencyRef = ref("USD")
    with expect_fault(QuickbooksException, 6000):
        moved.save(qb=qb)


def test_invoice_email_defaults_from_customer(qb: QuickBooks, platform: Item) -> None:
    customer = Customer()
    customer.DisplayName = "Mail Co"
    customer.PrimaryEmailAddr = EmailAddress()
    customer.PrimaryEmailAddr.Address = "ap@mail.example"
    customer = customer.save(qb=qb)
    invoice = new_invoice(customer, item_line(platform, 1, 10)).save(qb=qb)
    assert invoice.BillEmail.Address == "ap@mail.example"
