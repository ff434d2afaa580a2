"""sObject CRUD, upsert by external Id, the org's rules, describe and sObject Collections."""

from __future__ import annotations

from typing import Any

import pytest
from simple_salesforce import (
    Salesforce,
    SalesforceMalformedRequest,
    SalesforceMoreThanOneRecord,
    SalesforceResourceNotFound,
)

from sandbox.demo_company import build
from sandbox.salesforce import SalesforceEmulator
from sandbox.salesforce.seed import STANDARD_PRICEBOOK_ID, record_type_id


@pytest.fixture
def ids(emulator: SalesforceEmulator) -> Any:
    return build(emulator.clock.today()).sf_id


def error_of(exc: pytest.ExceptionInfo[Any]) -> dict[str, Any]:
    [error] = exc.value.content
    return dict(error)


# ---- CRUD ------------------------------------------------------------------------------------


def test_create_get_update_delete(sf: Salesforce, emulator: SalesforceEmulator) -> None:
    created = sf.Account.create(
        {
            "Name": "Blue Sun Corp",
            "Website": "https://bluesun.example",
            "Billing_Email__c": "ap@bluesun.example",
        }
    )
    assert created == {"id": created["id"], "success": True, "errors": []}
    account_id = created["id"]
    assert account_id.startswith("001") and len(account_id) == 18
    record = sf.Account.get(account_id)
    assert record["attributes"] == {
        "type": "Account",
        "url": f"/services/data/v62.0/sobjects/Account/{account_id}",
    }
    assert (record["Name"], record["CurrencyIsoCode"], record["IsDeleted"]) == (
        "Blue Sun Corp",
        "USD",
        False,
    )
    assert record["OwnerId"] == record["CreatedById"] == emulator.backend.api_user_id
    assert record["CreatedDate"] == record["SystemModstamp"]

    assert sf.Account.update(account_id[:15], {"BillingCity": "Londinium"}) == 204
    updated = sf.Account.get(account_id, params={"fields": "BillingCity,SystemModstamp"})
    assert list(updated) == ["attributes", "BillingCity", "SystemModstamp"]
    assert updated["BillingCity"] == "Londinium"
    assert updated["SystemModstamp"] >= record["SystemModstamp"]

    assert sf.Account.delete(account_id) == 204
    with pytest.raises(SalesforceResourceNotFound) as gone:
        sf.Account.get(account_id)
    assert error_of(gone) == {
        "errorCode": "NOT_FOUND",
        "message": "The requested resource does not exist",
    }
    with pytest.raises(SalesforceResourceNotFound) as again:
        sf.Account.update(account_id, {"Name": "x"})
    assert error_of(again) == {
        "errorCode": "ENTITY_IS_DELETED",
        "message": "entity is deleted",
        "fields": [],
    }


def test_get_with_an_unknown_field(sf: Salesforce, ids: Any) -> None:
    with pytest.raises(SalesforceMalformedRequest) as err:
        sf.Account.get(ids("globex"), params={"fields": "Name,Foo"})
    assert error_of(err)["errorCode"] == "INVALID_FIELD"
    assert "No such column 'Foo' on entity 'Account'" in error_of(err)["message"]


def test_urls_that_name_no_record(sf: Salesforce, ids: Any) -> None:
    with pytest.raises(SalesforceResourceNotFound) as err:
        sf.Account.get("bogus")
    assert error_of(err)["message"] == (
        "Provided external ID field does not exist or is not accessible: bogus"
    )
    with pytest.raises(SalesforceResourceNotFound):
        sf.Account.get(ids("opp-001"))  # an Opportunity Id on the Account resource
    with pytest.raises(SalesforceMalformedRequest) as wrong_type:
        sf.Account.update(ids("opp-001"), {"Name": "x"})
    assert error_of(wrong_type) == {
        "message": f"Account ID: id value of incorrect type: {ids('opp-001')}",
        "errorCode": "MALFORMED_ID",
        "fields": ["Id"],
    }
    with pytest.raises(SalesforceResourceNotFound):
        sf.Invoice__c.get(ids("globex"))


def opportunity(**fields: Any) -> dict[str, Any]:
    return {"Name": "New deal", "StageName": "Prospecting", "CloseDate": "2030-01-31", **fields}


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            {"Name": "Half a deal"},
            {
                "errorCode": "REQUIRED_FIELD_MISSING",
                "message": "Required fields are missing: [StageName, CloseDate]",
                "fields": ["StageName", "CloseDate"],
            },
        ),
        (
            opportunity(Colour__c="red"),
            {
                "errorCode": "INVALID_FIELD",
                "message": "No such column 'Colour__c' on sobject of type Opportunity",
                "fields": [],
            },
        ),
        (
            opportunity(IsWon=True, IsClosed=False),
            {
                "errorCode": "INVALID_FIELD_FOR_INSERT_UPDATE",
                "message": "Unable to create/update fields: IsWon, IsClosed. Please check the "
                "security settings of this field and verify that it is read/write for your "
                "profile or permission set.",
                "fields": ["IsWon", "IsClosed"],
            },
        ),
        (
            opportunity(AccountId="001bogus"),
            {
                "errorCode": "MALFORMED_ID",
                "message": "Account ID: id value of incorrect type: 001bogus",
                "fields": ["AccountId"],
            },
        ),
        (
            opportunity(AccountId="0015g00000ZZZZZAAA"),
            {
                "errorCode": "INVALID_CROSS_REFERENCE_KEY",
                "message": "invalid cross reference id",
                "fields": [],
            },
        ),
        (
            opportunity(Name="x" * 121),
            {
                "errorCode": "STRING_TOO_LONG",
                "message": f"Opportunity Name: data value too large: {'x' * 121} (max length=120)",
                "fields": ["Name"],
            },
        ),
        (
            opportunity(StageName="Won-ish"),
            {
                "errorCode": "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                "message": "Stage: bad value for restricted picklist field: Won-ish",
                "fields": ["StageName"],
            },
        ),
        (
            opportunity(CurrencyIsoCode="JPY"),
            {
                "errorCode": "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                "message": "Currency ISO Code: bad value for restricted picklist field: JPY",
                "fields": ["CurrencyIsoCode"],
            },
        ),
        (
            opportunity(Amount=1e17),
            {
                "errorCode": "NUMBER_OUTSIDE_VALID_RANGE",
                "message": "Amount: value outside of valid range on numeric field: "
                "100000000000000000.00",
                "fields": ["Amount"],
            },
        ),
        (
            opportunity(CloseDate="next friday"),
            {
                "errorCode": "JSON_PARSER_ERROR",
                "message": "Cannot deserialize instance of date from VALUE_STRING value "
                "next friday or request may be missing a required field at [line:1, column:1]",
            },
        ),
    ],
)
def test_write_errors(sf: Salesforce, body: dict[str, Any], expected: dict[str, Any]) -> None:
    with pytest.raises(SalesforceMalformedRequest) as err:
        sf.Opportunity.create(body)
    assert err.value.status == 400
    assert error_of(err) == expected


def test_reference_to_the_wrong_object_or_a_deleted_record(sf: Salesforce, ids: Any) -> None:
    contact = sf.query("SELECT Id FROM Contact LIMIT 1")["records"][0]["Id"]
    with pytest.raises(SalesforceMalformedRequest) as wrong:
        sf.Opportunity.create(opportunity(AccountId=contact))
    assert error_of(wrong) == {
        "errorCode": "FIELD_INTEGRITY_EXCEPTION",
        "message": f"Account ID: id value of incorrect type: {contact}",
        "fields": ["AccountId"],
    }
    sf.Account.delete(ids("vandelay"))
    with pytest.raises(SalesforceMalformedRequest) as deleted:
        sf.Opportunity.create(opportunity(AccountId=ids("vandelay")))
    assert error_of(deleted)["errorCode"] == "ENTITY_IS_DELETED"
    with pytest.raises(SalesforceMalformedRequest) as record_type:
        sf.Opportunity.create(opportunity(RecordTypeId="0125g0000000099AAA"))
    assert error_of(record_type)["message"] == (
        "Record Type ID: this ID value isn't valid for the user: 0125g0000000099AAA"
    )


def test_email_and_duplicate_external_id(sf: Salesforce) -> None:
    with pytest.raises(SalesforceMalformedRequest) as bad_email:
        sf.Account.create({"Name": "x", "Billing_Email__c": "not-an-email"})
    assert error_of(bad_email) == {
        "errorCode": "INVALID_EMAIL_ADDRESS",
        "message": "Billing Email: invalid email address: not-an-email",
        "fields": ["Billing_Email__c"],
    }
    first = sf.Account.create({"Name": "One", "External_Id__c": "EXT-1"})["id"]
    with pytest.raises(SalesforceMalformedRequest) as duplicate:
        sf.Account.create({"Name": "Two", "External_Id__c": "ext-1"})
    assert error_of(duplicate) == {
        "errorCode": "DUPLICATE_VALUE",
        "message": f"duplicate value found: External_Id__c duplicates value on record with id: "
        f"{first}",
        "fields": [],
    }


# ---- upsert by external Id -------------------------------------------------------------------


def test_upsert_creates_then_updates(sf: Salesforce) -> None:
    created = sf.Account.upsert("External_Id__c/ACME-42", {"Name": "Acme 42"}, raw_response=True)
    assert created.status_code == 201
    body = created.json()
    assert body == {"id": body["id"], "success": True, "errors": [], "created": True}
    updated = sf.Account.upsert(
        "External_Id__c/ACME-42", {"Phone": "+1 555 0142"}, raw_response=True
    )
    assert updated.status_code == 200
    assert updated.json() == {"id": body["id"], "success": True, "errors": [], "created": False}
    found = sf.Account.get_by_custom_id("External_Id__c", "ACME-42")
    assert (found["Id"], found["Name"], found["Phone"]) == (body["id"], "Acme 42", "+1 555 0142")


def test_upsert_and_get_with_several_matches(sf: Salesforce) -> None:
    a = sf.Account.create({"Name": "Twin A", "QB_Customer_Id__c": "77"})["id"]
    b = sf.Account.create({"Name": "Twin B", "QB_Customer_Id__c": "77"})["id"]
    urls = [f"/services/data/v62.0/sobjects/Account/{i}" for i in (a, b)]
    with pytest.raises(SalesforceMoreThanOneRecord) as get_err:
        sf.Account.get_by_custom_id("QB_Customer_Id__c", "77")
    assert (get_err.value.status, get_err.value.content) == (300, urls)
    with pytest.raises(SalesforceMoreThanOneRecord):
        sf.Account.upsert("QB_Customer_Id__c/77", {"Phone": "1"})


def test_external_id_not_found(sf: Salesforce) -> None:
    with pytest.raises(SalesforceResourceNotFound) as missing:
        sf.Account.get_by_custom_id("External_Id__c", "NOPE")
    assert error_of(missing)["errorCode"] == "NOT_FOUND"
    with pytest.raises(SalesforceResourceNotFound) as not_external:
        sf.Account.upsert("Name/Globex", {"Phone": "1"})
    assert error_of(not_external) == {
        "errorCode": "NOT_FOUND",
        "message": "Provided external ID field does not exist or is not accessible: Name",
    }


# ---- the org's rules -------------------------------------------------------------------------


def test_line_items_roll_up_into_the_amount(sf: Salesforce, ids: Any) -> None:
    opp = sf.Opportunity.create(opportunity(AccountId=ids("initech")))["id"]
    before = sf.Opportunity.get(opp)
    assert (before["Amount"], before["Pricebook2Id"], before["Probability"]) == (None, None, 10.0)
    assert before["RecordTypeId"] == record_type_id("US_Sales")  # the default record type
    entry = sf.query(
        "SELECT Id FROM PricebookEntry WHERE ProductCode = 'SEAT-ADD' AND CurrencyIsoCode = 'USD'"
    )["records"][0]["Id"]
    line = sf.OpportunityLineItem.create(
        {
            "OpportunityId": opp,
            "PricebookEntryId": entry,
            "Quantity": 10,
            "UnitPrice": 600,
            "Discount": 15,
        }
    )["id"]
    item = sf.OpportunityLineItem.get(line)
    assert (item["TotalPrice"], item["ListPrice"], item["ProductCode"], item["Name"]) == (
        5100.0,
        600.0,
        "SEAT-ADD",
        "New deal Additional Seat (annual)",
    )
    after = sf.Opportunity.get(opp)
    assert (after["Amount"], after["Pricebook2Id"]) == (5100.0, STANDARD_PRICEBOOK_ID)
    assert after["SystemModstamp"] >= before["SystemModstamp"]
    with pytest.raises(SalesforceMalformedRequest) as amount:
        sf.Opportunity.update(opp, {"Amount": 1})
    assert error_of(amount)["errorCode"] == "FIELD_INTEGRITY_EXCEPTION"
    sf.Opportunity.update(opp, {"Amount": 5100})  # unchanged: fine
    sf.OpportunityLineItem.delete(line)
    assert sf.Opportunity.get(opp)["Amount"] == 0.0
    sf.Opportunity.update(opp, {"Amount": 999.99})  # no products: writable again
    assert sf.Opportunity.get(opp)["Amount"] == 999.99


def test_line_item_must_match_the_opportunity_currency(sf: Salesforce) -> None:
    opp = sf.Opportunity.create(opportunity(CurrencyIsoCode="EUR"))["id"]
    usd = sf.query("SELECT Id FROM PricebookEntry WHERE CurrencyIsoCode = 'USD' LIMIT 1")
    with pytest.raises(SalesforceMalformedRequest) as err:
        sf.OpportunityLineItem.create(
            {
                "OpportunityId": opp,
                "Quantity": 1,
                "UnitPrice": 1,
                "PricebookEntryId": usd["records"][0]["Id"],
            }
        )
    assert error_of(err) == {
        "errorCode": "FIELD_INTEGRITY_EXCEPTION",
        "message": "field integrity exception: PricebookEntryId (pricebook entry currency code "
        "does not match opportunity currency code)",
        "fields": ["PricebookEntryId"],
    }


def test_stage_drives_closed_won_and_probability(sf: Salesforce, ids: Any) -> None:
    opp = ids("opp-ambiguous")
    sf.Opportunity.update(opp, {"StageName": "Closed Won - Paid", "Payment_Status__c": "Paid"})
    row = sf.Opportunity.get(opp)
    assert (row["IsClosed"], row["IsWon"], row["Probability"]) == (True, True, 100.0)
    sf.Opportunity.update(opp, {"StageName": "Closed Lost"})
    row = sf.Opportunity.get(opp)
    assert (row["IsClosed"], row["IsWon"], row["Probability"]) == (True, False, 0.0)


def test_write_back_fields(sf: Salesforce, ids: Any) -> None:
    opp = ids("opp-vendorclash")
    sf.Opportunity.update(
        opp,
        {
            "QB_Invoice_Id__c": "1042",
            "QB_DocNumber__c": "INV-1042",
            "QB_Realm__c": "9341453172461001",
            "QB_Sync_Status__c": "Invoiced",
            "QB_Approved_At__c": "2026-11-23T10:00:00Z",
            "QB_Invoice_URL__c": "https://app.qbo.example/invoice?txnId=1042",
            "Invoice_Sent__c": True,
            "Days_Outstanding__c": 3,
            "Amount_Paid__c": "0",
        },
    )
    row = sf.Opportunity.get(opp)
    assert row["QB_Approved_At__c"] == "2026-11-23T10:00:00.000+0000"
    assert (row["QB_Sync_Status__c"], row["Invoice_Sent__c"], row["Days_Outstanding__c"]) == (
        "Invoiced",
        True,
        3.0,
    )
    assert sf.Opportunity.get_by_custom_id("QB_Invoice_Id__c", "1042")["Id"] == opp


def test_contract_end_date_and_number(sf: Salesforce, ids: Any) -> None:
    contract = sf.Contract.create(
        {"AccountId": ids("hooli"), "StartDate": "2026-01-31", "ContractTerm": 1}
    )["id"]
    row = sf.Contract.get(contract)
    assert (row["EndDate"], row["Status"]) == ("2026-02-27", "Draft")
    assert row["ContractNumber"].isdigit() and len(row["ContractNumber"]) == 8
    with pytest.raises(SalesforceMalformedRequest) as err:
        sf.Contract.update(contract, {"ContractNumber": "1"})
    assert error_of(err)["errorCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"


# ---- describe --------------------------------------------------------------------------------


def test_describe_global_and_object(sf: Salesforce) -> None:
    names = {o["name"]: o for o in sf.describe()["sobjects"]}
    assert {
        "Account",
        "Contact",
        "Opportunity",
        "OpportunityLineItem",
        "Contract",
        "Task",
        "Product2",
        "Pricebook2",
        "PricebookEntry",
        "RecordType",
        "User",
        "Organization",
    } <= set(names)
    assert names["Opportunity"]["keyPrefix"] == "006"
    describe = sf.Opportunity.describe()
    fields = {f["name"]: f for f in describe["fields"]}
    status = fields["QB_Sync_Status__c"]
    assert (status["type"], status["custom"], status["restrictedPicklist"]) == (
        "picklist",
        True,
        True,
    )
    assert [p["value"] for p in status["picklistValues"]] == [
        "Pending",
        "Awaiting Approval",
        "Invoiced",
        "Rejected",
        "Needs Review",
        "Error",
    ]
    assert (fields["AccountId"]["referenceTo"], fields["AccountId"]["relationshipName"]) == (
        ["Account"],
        "Account",
    )
    assert (fields["Amount"]["type"], fields["Amount"]["precision"], fields["Amount"]["scale"]) == (
        "currency",
        18,
        2,
    )
    assert fields["IsWon"]["updateable"] is False
    assert fields["QB_Invoice_Id__c"]["externalId"] is True
    assert fields["QB_Sync_Error__c"]["length"] == 32768
    assert "OpportunityLineItems" in [c["relationshipName"] for c in describe["childRelationships"]]
    assert [r["developerName"] for r in describe["recordTypeInfos"]] == [
        "US_Sales",
        "EU_Sales",
        "Master",
    ]
    account = {f["name"]: f for f in sf.Account.describe()["fields"]}
    assert (account["External_Id__c"]["externalId"], account["External_Id__c"]["unique"]) == (
        True,
        True,
    )
    assert sf.Opportunity.metadata()["objectDescribe"]["name"] == "Opportunity"
    with pytest.raises(SalesforceResourceNotFound):
        sf.Invoice__c.describe()


# ---- sObject Collections -------------------------------------------------------------------


def account(name: str, **fields: Any) -> dict[str, Any]:
    return {"attributes": {"type": "Account"}, "Name": name, **fields}


def test_collection_create_update_retrieve_delete(sf: Salesforce) -> None:
    created = sf.restful(
        "composite/sobjects",
        method="POST",
        json={"allOrNone": False, "records": [account(f"Bulk {n}") for n in range(200)]},
    )
    assert len(created) == 200 and all(r["success"] for r in created)
    new_ids = [r["id"] for r in created]
    updated = sf.restful(
        "composite/sobjects",
        method="PATCH",
        json={
            "records": [
                {"attributes": {"type": "Account"}, "id": new_ids[0], "Phone": "1"},
                {"attributes": {"type": "Account"}, "id": new_ids[1], "Nope__c": "1"},
                {"attributes": {"type": "Account"}, "Phone": "2"},
            ]
        },
    )
    assert updated == [
        {"id": new_ids[0], "success": True, "errors": []},
        {
            "id": new_ids[1],
            "success": False,
            "errors": [
                {
                    "statusCode": "INVALID_FIELD",
                    "message": "No such column 'Nope__c' on sobject of type Account",
                    "fields": [],
                }
            ],
        },
        {
            "success": False,
            "errors": [
                {
                    "statusCode": "MISSING_ARGUMENT",
                    "message": "Id not specified in an update call",
                    "fields": [],
                }
            ],
        },
    ]
    fetched = sf.restful(
        "composite/sobjects/Account",
        params={"ids": f"{new_ids[0]},0015g00000ZZZZZAAA", "fields": "Name,Phone"},
    )
    assert fetched[0]["Phone"] == "1" and fetched[1] is None
    deleted = sf.restful(
        "composite/sobjects",
        method="DELETE",
        params={"ids": ",".join(new_ids[:2]), "allOrNone": "false"},
    )
    assert [r["success"] for r in deleted] == [True, True]
    again = sf.restful("composite/sobjects", method="DELETE", params={"ids": new_ids[0]})
    assert again[0]["errors"][0]["statusCode"] == "ENTITY_IS_DELETED"


def test_collection_per_record_errors_without_all_or_none(
    sf: Salesforce, emulator: SalesforceEmulator
) -> None:
    before = emulator.backend.count("Account")
    results = sf.restful(
        "composite/sobjects",
        method="POST",
        json={
            "records": [
                account("Good"),
                account("Bad", Billing_Email__c="nope"),
                {
                    "attributes": {"type": "Opportunity"},
                    "Name": "Opp",
                    "StageName": "Prospecting",
                    "CloseDate": "soon",
                },
                {"attributes": {"type": "Invoice__c"}, "Name": "?"},
            ]
        },
    )
    assert results[0]["success"] is True
    assert results[1:] == [
        {
            "success": False,
            "errors": [
                {
                    "statusCode": "INVALID_EMAIL_ADDRESS",
                    "message": "Billing Email: invalid email address: nope",
                    "fields": ["Billing_Email__c"],
                }
            ],
        },
        {
            "success": False,
            "errors": [
                {  # one bad value fails its record, not the request
                    "statusCode": "INVALID_TYPE_ON_FIELD_IN_RECORD",
                    "message": "Close Date: value not of required type: soon",
                    "fields": ["CloseDate"],
                }
            ],
        },
        {
            "success": False,
            "errors": [
                {
                    "statusCode": "INVALID_TYPE",
                    "message": "sObject type 'Invoice__c' is not supported.",
                    "fields": [],
                }
            ],
        },
    ]
    assert emulator.backend.count("Account") == before + 1


def test_collection_all_or_none_rolls_back(
    sf: Salesforce, emulator: SalesforceEmulator, ids: Any
) -> None:
    before = emulator.backend.count("Account")
    results = sf.restful(
        "composite/sobjects",
        method="POST",
        json={"allOrNone": True, "records": [account("Kept?"), account("")]},
    )
    assert results == [
        {
            "success": False,
            "errors": [
                {
                    "statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK",
                    "message": "Record rolled back because not all records were valid and the "
                    "request was using AllOrNone header",
                    "fields": [],
                }
            ],
        },
        {
            "success": False,
            "errors": [
                {
                    "statusCode": "REQUIRED_FIELD_MISSING",
                    "message": "Required fields are missing: [Name]",
                    "fields": ["Name"],
                }
            ],
        },
    ]
    assert emulator.backend.count("Account") == before
    opp = ids("opp-ambiguous")
    original = sf.Opportunity.get(opp)
    results = sf.restful(
        "composite/sobjects",
        method="PATCH",
        json={
            "allOrNone": True,
            "records": [
                {"attributes": {"type": "Opportunity"}, "id": opp, "QB_Sync_Status__c": "Invoiced"},
                {
                    "attributes": {"type": "Opportunity"},
                    "id": ids("opp-nolines"),
                    "QB_Sync_Status__c": "Done",
                },
            ],
        },
    )
    assert [r["errors"][0]["statusCode"] for r in results] == [
        "ALL_OR_NONE_OPERATION_ROLLED_BACK",
        "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
    ]
    assert sf.Opportunity.get(opp) == original


def test_collection_limit_is_200(sf: Salesforce) -> None:
    with pytest.raises(SalesforceMalformedRequest) as err:
        sf.restful(
            "composite/sobjects",
            method="POST",
            json={"records": [account(f"n{n}") for n in range(201)]},
        )
    assert error_of(err) == {
        "message": "record limit reached. cannot submit more than 200 records into this call",
        "errorCode": "EXCEEDED_ID_LIMIT",
    }
