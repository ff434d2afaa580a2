"""Every reason a closed-won deal cannot become an invoice, as a list of `Problem`s."""

from __future__ import annotations

import re
from decimal import Decimal

from revbridge.config import RevbridgeConfig
from revbridge.models import Opportunity, Problem
from revbridge.routing import route

AMOUNT_TOLERANCE = Decimal("0.01")
# Salesforce currency and number fields hold at most 16 digits before the decimal point; a larger
# value cannot be a real amount (and would not survive QuickBooks' rounding exactly).
MAX_DIGITS = Decimal(10) ** 16
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def validate(opp: Opportunity, config: RevbridgeConfig, realm: str | None = None) -> list[Problem]:
    """All problems with ``opp`` (empty: it can be invoiced). ``realm`` is the routed realm;
    when omitted the deal is routed here and an unroutable deal is one of the problems.

    Already-invoiced deals (QB_Invoice_Id__c set) are not problems: the planner skips them.
    """
    problems: list[Problem] = []

    def problem(field: str, reason: str) -> None:
        problems.append(Problem(record_id=opp.id, field=field, reason=reason))

    if realm is None:
        routed = route(opp, config)
        if isinstance(routed, Problem):
            problems.append(routed)
        else:
            realm = routed
    realm_cfg = config.realm(realm) if realm else None

    if not opp.name:
        problem("Name", "Opportunity.Name is empty (or only control characters)")
    if opp.close_date is None:
        problem("CloseDate", "CloseDate is empty")

    account = opp.account
    if account is None:
        problem("Account", "the opportunity has no Account")
    else:
        if not account.name:
            problem("Account.Name", "Account.Name is empty (or only control characters)")
        for field, value in (
            ("BillingStreet", account.billing_street),
            ("BillingCity", account.billing_city),
            ("BillingCountry", account.billing_country),
            ("Billing_Email__c", account.billing_email),
        ):
            if not value:
                problem(f"Account.{field}", f"Account.{field} is empty")
        if account.billing_email and not _EMAIL.match(account.billing_email):
            problem(
                "Account.Billing_Email__c",
                f"Account.Billing_Email__c {account.billing_email!r} is not an email address",
            )

    if not opp.line_items:
        problem("OpportunityLineItems", "no line items: refusing a zero-line invoice")
    elif not opp.line_items_complete:
        problem(
            "OpportunityLineItems",
            f"only {len(opp.line_items)} line items were returned (more exist): refusing a "
            "partial invoice",
        )

    if opp.amount is None or opp.amount <= 0:
        problem("Amount", f"Amount must be greater than 0 (is {opp.amount})")
    elif opp.amount >= MAX_DIGITS:
        problem("Amount", f"Amount {opp.amount} has more than 16 digits before the decimal point")
    elif (
        opp.line_items
        and all(li.total_price is not None for li in opp.line_items)
        and abs(opp.amount - opp.lines_total) > AMOUNT_TOLERANCE
    ):
        problem(
            "Amount",
            f"Amount {opp.amount} differs from the sum of line totals {opp.lines_total}",
        )

    for index, line in enumerate(opp.line_items):
        where = f"OpportunityLineItems[{index}]"
        label = f"line {index + 1} ({line.label})"
        if line.quantity is None or line.quantity <= 0:
            problem(f"{where}.Quantity", f"{label}: Quantity must be greater than 0")
        if line.unit_price is None or line.unit_price < 0:
            problem(f"{where}.UnitPrice", f"{label}: UnitPrice must be 0 or more")
        if not 0 <= line.discount_pct <= 100:
            problem(f"{where}.Discount", f"{label}: Discount must be between 0 and 100")
        if line.total_price is None:
            problem(f"{where}.TotalPrice", f"{label}: TotalPrice is empty")
        sizes: tuple[tuple[str, Decimal | None], ...] = (
            ("Quantity", line.quantity),
            ("UnitPrice", line.unit_price),
            ("TotalPrice", line.total_price),
        )
        for name, number in sizes:
            if number is not None and abs(number) >= MAX_DIGITS:
                problem(
                    f"{where}.{name}",
                    f"{label}: {name} {number} has more than 16 digits before the decimal point",
                )
        if not line.product_name and not line.product_code:
            problem(f"{where}.Name", f"{label}: the product has no name")
        if realm_cfg is not None:
            if not line.product_code:
                problem(f"{where}.ProductCode", f"{label}: the product has no ProductCode")
            elif realm_cfg.item_for(line.product_code) is None:
                problem(
                    f"{where}.ProductCode",
                    f"product {line.label} has no QuickBooks item in realm {realm}",
                )

    if realm_cfg is not None:
        if opp.currency and not realm_cfg.accepts(opp.currency):
            accepted = ", ".join([realm_cfg.currency, *realm_cfg.other_currencies])
            problem(
                "CurrencyIsoCode",
                f"currency {opp.currency} is not one realm {realm} invoices in ({accepted}); "
                "add it to the realm's other_currencies if the QuickBooks company has it",
            )
        if not opp.payment_terms and not realm_cfg.default_terms:
            problem(
                "Payment_Terms__c",
                f"Payment_Terms__c is empty and realm {realm} has no default_terms",
            )
    return problems
