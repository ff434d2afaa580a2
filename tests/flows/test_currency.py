"""Multi-currency: the deal's CurrencyIsoCode decides the customer's currency; an existing
customer is never switched to another currency (QuickBooks forbids it once it has transactions)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

from blocks.sandbox import SandboxBlocks
from flows.closed_won import closed_won_to_invoice
from revbridge.reconcile import invoices_frame
from sandbox.core.server import Sandbox
from sandbox.demo_company import build
from tests.flows.conftest import demo_config
from tests.flows.test_closed_won import customers, invoices, opportunities

MULLER_EUR = "Müller und Söhne"  # the demo EU company's customer, billed in EUR


def _config(tmp_path: Path, mode: str) -> str:
    def edit(config: dict[str, Any]) -> None:
        config["matching"]["currency_mismatch"] = mode
        config["realms"]["eu"]["other_currencies"] = ["GBP", "USD"]

    return demo_config(tmp_path / f"{mode}.yaml", edit)


def _deal_in_gbp(fresh: Sandbox, blocks: SandboxBlocks) -> str:
    """A new Closed Won deal in GBP for Müller (EU company; its customer is billed in EUR).
    Salesforce fixes a deal's currency once it has products, so it is quoted in GBP from the
    start, from the price book's GBP entry."""
    company = build(fresh.clock.today())
    sf = blocks.salesforce.get_client()
    record_type = sf.query("SELECT Id FROM RecordType WHERE DeveloperName = 'EU_Sales'")
    entry = sf.query(
        "SELECT Id, Pricebook2Id FROM PricebookEntry WHERE Product2.ProductCode = 'PLAT-ANNUAL' "
        "AND CurrencyIsoCode = 'GBP'"
    )["records"][0]
    opp_id = sf.Opportunity.create(
        {
            "Name": "Müller und Söhne — UK subsidiary",
            "AccountId": company.sf_id("muller"),
            "RecordTypeId": record_type["records"][0]["Id"],
            "CurrencyIsoCode": "GBP",
            "StageName": "Negotiation/Review",
            "CloseDate": fresh.clock.today().isoformat(),
            "Pricebook2Id": entry["Pricebook2Id"],
        }
    )["id"]
    sf.OpportunityLineItem.create(
        {"OpportunityId": opp_id, "PricebookEntryId": entry["Id"], "Quantity": 2, "UnitPrice": 9525}
    )
    sf.Opportunity.update(opp_id, {"StageName": "Closed Won"})
    return str(opp_id)


def test_a_currency_mismatch_goes_to_review_and_changes_nothing(
    fresh: Sandbox, blocks: SandboxBlocks, tmp_path: Path
) -> None:
    opp_id = _deal_in_gbp(fresh, blocks)
    before = {c["Id"]: c for c in customers(blocks, "eu")}

    state = closed_won_to_invoice(
        opportunity_ids=[opp_id], config_path=_config(tmp_path, "review"), return_state=True
    )

    assert state.is_completed()
    opp = opportunities(blocks)[opp_id]
    assert opp["QB_Sync_Status__c"] == "Needs Review"
    assert (
        f"customer {MULLER_EUR!r} is billed in EUR, the deal is in GBP" in opp["QB_Sync_Error__c"]
    )
    assert not [i for i in invoices(blocks, "eu") if opp_id in i["PrivateNote"]]
    assert {c["Id"]: c for c in customers(blocks, "eu")} == before


def test_per_currency_mode_bills_a_customer_in_the_deal_currency(
    fresh: Sandbox, blocks: SandboxBlocks, tmp_path: Path
) -> None:
    opp_id = _deal_in_gbp(fresh, blocks)
    eur_deal = build(fresh.clock.today()).sf_id("opp-038")  # Müller's own deal, in EUR
    config_path = _config(tmp_path, "per_currency")

    # one run, one account, a deal in each currency
    assert closed_won_to_invoice(
        opportunity_ids=[eur_deal, opp_id], config_path=config_path, return_state=True
    ).is_completed()

    opps = opportunities(blocks)
    opp = opps[opp_id]
    assert opp["QB_Sync_Status__c"] == "Invoiced", opp["QB_Sync_Error__c"]
    by_id = {c["Id"]: c for c in customers(blocks, "eu")}
    gbp = by_id[opp["QB_Customer_Id__c"]]
    assert gbp["CurrencyRef"]["value"] == "GBP"
    assert gbp["DisplayName"] == "Müller & Söhne GmbH"  # the account's name: it is free
    assert f"Salesforce Account Id: {build(fresh.clock.today()).sf_id('muller')}" in gbp["Notes"]
    eur = next(c for c in by_id.values() if c["DisplayName"] == MULLER_EUR)
    assert eur["CurrencyRef"]["value"] == "EUR"  # untouched
    assert opps[eur_deal]["QB_Sync_Status__c"] == "Invoiced", opps[eur_deal]["QB_Sync_Error__c"]
    assert opps[eur_deal]["QB_Customer_Id__c"] == eur["Id"]

    [invoice] = [i for i in invoices(blocks, "eu") if opp_id in i["PrivateNote"]]
    assert invoice["CurrencyRef"]["value"] == "GBP"
    assert Decimal(str(invoice["TotalAmt"])) == Decimal("19050.00")  # the deal's own currency
    rate = Decimal(str(invoice["ExchangeRate"]))  # supplied by QuickBooks, GBP → EUR
    assert rate == (Decimal("1.27") / Decimal("1.08")).quantize(rate)
    # reconciliation compares in the company's home currency
    frame = invoices_frame("eu", [invoice])
    home = (Decimal("19050.00") * rate).quantize(Decimal("0.01"))
    assert frame["total_home"].iloc[0] == float(home)

    # a second GBP deal of the same account finds that customer again (linked, by currency)
    blocks.salesforce.get_client().Opportunity.update(opp_id, {"QB_Invoice_Id__c": None})
    assert closed_won_to_invoice(
        opportunity_ids=[opp_id], config_path=config_path, return_state=True
    ).is_completed()
    assert [c["Id"] for c in customers(blocks, "eu") if c["CurrencyRef"]["value"] == "GBP"] == [
        gbp["Id"]
    ]
    assert opportunities(blocks)[opp_id]["QB_Invoice_Id__c"] == invoice["Id"]
