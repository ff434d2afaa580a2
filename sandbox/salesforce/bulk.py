"""Volume on demand: many Closed Won deals for backfill tests and benchmarks.

``POST /_sandbox/generate`` ``{"opportunities": 500, "new_account_share": 0.33,
"close_from": "2025-09-01", "close_to": "2025-09-30", "max_amount": 25000, "seed": 1}`` adds
Closed Won Opportunities with line items, spread over both record types (realms). A share of them
belong to brand-new accounts (one deal each: customers QuickBooks has never seen); the rest share a
pool of repeat accounts (a few deals each). Ids continue after the demo seed's, deterministically.
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from sandbox.demo_company import PRODUCTS, REALMS, salesforce_id
from sandbox.salesforce.models import SalesforceBackend
from sandbox.salesforce.seed import STANDARD_PRICEBOOK_ID, record_type_id

FIRST_BULK_ID = 100_000  # far above the demo seed's counters


class GenerateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    opportunities: int = Field(ge=1, le=50_000)
    new_account_share: float = Field(default=0.33, ge=0, le=1)
    close_from: date
    close_to: date
    max_amount: Decimal = Field(default=Decimal("25000"), gt=0)
    seed: int = 1

    @model_validator(mode="after")
    def _ordered(self) -> GenerateRequest:
        if self.close_to < self.close_from:
            raise ValueError("close_to is before close_from")
        return self


def generate(backend: SalesforceBackend, request: GenerateRequest) -> list[str]:
    """Insert the deals; returns their Opportunity Ids."""
    rng = random.Random(request.seed)
    entries = {
        (row["Product2Id"], row["CurrencyIsoCode"]): row["Id"]
        for row in backend.query("SELECT Id, Product2Id, CurrencyIsoCode FROM PricebookEntry")[
            "records"
        ]
    }
    products = [p for p in PRODUCTS if p.qbo_item_name and p.unit_price <= request.max_amount]
    product_ids = {
        row["ProductCode"]: row["Id"]
        for row in backend.query("SELECT Id, ProductCode FROM Product2")["records"]
    }
    owner = backend.query("SELECT Id FROM User WHERE IsActive = true LIMIT 1")["records"][0]["Id"]
    n_new = round(request.opportunities * request.new_account_share)
    n_repeat = request.opportunities - n_new
    repeat_pool = max(1, n_repeat // 4)
    days = (request.close_to - request.close_from).days
    counter = FIRST_BULK_ID + request.seed * 1_000_000  # distinct Ids per seed

    def account(index: int) -> str:
        realm = REALMS[index % len(REALMS)]
        return backend.insert(
            "Account",
            {
                "Name": f"Bulk Customer {index:05d} {'Ltd' if realm.key == 'eu' else 'Inc'}",
                "Website": f"https://bulk{index:05d}-{request.seed}.example",
                "BillingStreet": f"{index} Volume Street",
                "BillingCity": "Springfield" if realm.key == "us" else "Utrecht",
                "BillingPostalCode": f"{10000 + index}",
                "BillingCountry": realm.country,
                "Billing_Email__c": f"ap@bulk{index:05d}-{request.seed}.example",
                "OwnerId": owner,
                "CurrencyIsoCode": realm.currency,
            },
            record_id=salesforce_id("Account", counter + index),
        )

    repeat_accounts = [account(i) for i in range(repeat_pool)]
    ids: list[str] = []
    for n in range(request.opportunities):
        if n < n_new:
            index = repeat_pool + n
            account_id = account(index)
        else:
            index = (n - n_new) % repeat_pool
            account_id = repeat_accounts[index]
        realm = REALMS[index % len(REALMS)]
        close = request.close_from + timedelta(days=rng.randint(0, days))
        stamp = datetime.combine(close, time(17), UTC)
        opp_id = backend.insert(
            "Opportunity",
            {
                "Name": f"Bulk deal {n + 1:05d}",
                "AccountId": account_id,
                "OwnerId": owner,
                "RecordTypeId": record_type_id(realm.record_type),
                "StageName": "Closed Won",
                "CloseDate": close,
                "CurrencyIsoCode": realm.currency,
                "Pricebook2Id": STANDARD_PRICEBOOK_ID,
                "Payment_Terms__c": "Net 30",
            },
            record_id=salesforce_id("Opportunity", counter + n),
            created=stamp,
            modified=stamp,
        )
        total = Decimal(0)
        for sort_order in range(1, rng.randint(1, 3) + 1):
            product = rng.choice(products)
            quantity = rng.randint(1, 5)
            if total + product.unit_price * quantity > request.max_amount:
                quantity = int((request.max_amount - total) // product.unit_price)
                if quantity < 1:
                    break
            total += product.unit_price * quantity
            backend.insert(
                "OpportunityLineItem",
                {
                    "OpportunityId": opp_id,
                    "PricebookEntryId": entries[(product_ids[product.code], realm.currency)],
                    "Quantity": Decimal(quantity),
                    "UnitPrice": product.unit_price,
                    "SortOrder": sort_order,
                },
                record_id=salesforce_id("OpportunityLineItem", counter + n * 4 + sort_order),
                created=stamp,
            )
        backend.set_modified(opp_id, stamp)
        ids.append(opp_id)
    return ids


def generate_json(backend: SalesforceBackend, body: dict[str, Any]) -> dict[str, Any]:
    ids = generate(backend, GenerateRequest.model_validate(body))
    return {"created": len(ids), "first": ids[0], "last": ids[-1]}
