"""Salesforce Files on the emulator, through simple-salesforce: ContentVersion inserts create the
document and its links, new versions move IsLatest, VersionData reads back the bytes, and
ContentDocumentLink queries need their Id filter."""

from __future__ import annotations

import base64

import pytest
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest, SalesforceResourceNotFound

from sandbox.demo_company import REFUSED_CONTRACT, build
from sandbox.salesforce import SalesforceEmulator
from sandbox.salesforce.content import LINK_RESTRICTION


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _opp(emulator: SalesforceEmulator, key: str = "opp-001") -> str:
    return build(emulator.clock.today()).sf_id(key)


def test_a_content_version_insert_creates_the_document_and_its_links(
    sf: Salesforce, emulator: SalesforceEmulator
) -> None:
    opp = _opp(emulator)
    data = b"%PDF-1.4 signed order form"
    created = sf.ContentVersion.create(
        {
            "Title": "Order Form (signed)",
            "PathOnClient": "C:\\Users\\ava\\Order Form signed.PDF",
            "VersionData": _b64(data),
            "FirstPublishLocationId": opp,
        }
    )
    version = sf.ContentVersion.get(created["id"])
    assert (version["FileExtension"], version["FileType"], version["ContentSize"]) == (
        "pdf",
        "PDF",
        len(data),
    )
    assert (version["IsLatest"], version["VersionNumber"]) == (True, "1")
    assert version["VersionData"].endswith(f"/sobjects/ContentVersion/{created['id']}/VersionData")
    document = sf.ContentDocument.get(version["ContentDocumentId"])
    assert document["LatestPublishedVersionId"] == created["id"]
    assert document["Title"] == "Order Form (signed)"
    links = sf.query(
        "SELECT LinkedEntityId, ShareType FROM ContentDocumentLink "
        f"WHERE ContentDocumentId = '{version['ContentDocumentId']}'"
    )["records"]
    owner = emulator.backend.api_user_id
    assert {(r["LinkedEntityId"], r["ShareType"]) for r in links} == {(opp, "V"), (owner, "I")}
    assert sf.ContentVersion.get_base64(created["id"], base64_field="VersionData") == data


def test_a_new_version_becomes_the_latest(sf: Salesforce, emulator: SalesforceEmulator) -> None:
    first = sf.ContentVersion.create(
        {
            "PathOnClient": "contract.pdf",
            "VersionData": _b64(b"v1"),
            "FirstPublishLocationId": _opp(emulator),
        }
    )
    document_id = sf.ContentVersion.get(first["id"])["ContentDocumentId"]
    second = sf.ContentVersion.create(
        {
            "PathOnClient": "contract-signed.docx",
            "VersionData": _b64(b"v2!"),
            "ContentDocumentId": document_id,
            "ReasonForChange": "countersigned",
        }
    )
    rows = sf.query(
        "SELECT Id, VersionNumber, IsLatest, Title FROM ContentVersion "
        f"WHERE ContentDocumentId = '{document_id}' ORDER BY VersionNumber"
    )["records"]
    assert [(r["Id"], r["VersionNumber"], r["IsLatest"]) for r in rows] == [
        (first["id"], "1", False),
        (second["id"], "2", True),
    ]
    latest = sf.query(
        "SELECT ContentDocument.LatestPublishedVersion.Title, "
        "ContentDocument.LatestPublishedVersion.FileType, ContentDocument.ContentSize "
        f"FROM ContentDocumentLink WHERE LinkedEntityId = '{_opp(emulator)}' "
        f"AND ContentDocumentId = '{document_id}'"
    )["records"][0]["ContentDocument"]
    assert latest["LatestPublishedVersion"] == {
        "attributes": latest["LatestPublishedVersion"]["attributes"],
        "Title": "contract-signed",
        "FileType": "WORD_X",
    }
    assert latest["ContentSize"] == 3


def test_content_document_link_queries_need_an_id_filter(
    sf: Salesforce, emulator: SalesforceEmulator
) -> None:
    for soql in (
        "SELECT Id FROM ContentDocumentLink",
        "SELECT Id FROM ContentDocumentLink WHERE ShareType = 'V'",
        f"SELECT Id FROM ContentDocumentLink WHERE LinkedEntityId != '{_opp(emulator)}'",
    ):
        with pytest.raises(SalesforceMalformedRequest) as err:
            sf.query(soql)
        assert err.value.content == [{"message": LINK_RESTRICTION, "errorCode": "MALFORMED_QUERY"}]
    ok = sf.query(
        f"SELECT Id FROM ContentDocumentLink WHERE LinkedEntityId IN ('{_opp(emulator)}') "
        "AND ShareType = 'V'"
    )
    assert ok["totalSize"] >= 1


def test_bad_inserts_and_reads(sf: Salesforce, emulator: SalesforceEmulator) -> None:
    with pytest.raises(SalesforceMalformedRequest) as err:
        sf.ContentVersion.create({"PathOnClient": "a.pdf"})
    assert err.value.content[0]["errorCode"] == "REQUIRED_FIELD_MISSING"
    assert "VersionData" in err.value.content[0]["message"]
    with pytest.raises(SalesforceMalformedRequest) as err:
        sf.ContentVersion.create({"PathOnClient": "a.pdf", "VersionData": "not base64!"})
    assert err.value.content[0]["errorCode"] == "JSON_PARSER_ERROR"
    with pytest.raises(SalesforceMalformedRequest) as err:
        sf.ContentDocument.create({"Title": "x"})
    assert err.value.content[0]["errorCode"] == "INVALID_TYPE_FOR_OPERATION"
    created = sf.ContentVersion.create({"PathOnClient": "a.txt", "VersionData": _b64(b"a")})
    with pytest.raises(SalesforceMalformedRequest) as err:
        sf.ContentVersion.update(created["id"], {"VersionData": _b64(b"b")})
    assert err.value.content[0]["errorCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"
    document_id = sf.ContentVersion.get(created["id"])["ContentDocumentId"]
    link = {"ContentDocumentId": document_id, "LinkedEntityId": _opp(emulator)}
    sf.ContentDocumentLink.create(link)
    with pytest.raises(SalesforceMalformedRequest) as err:
        sf.ContentDocumentLink.create(link)
    assert err.value.content[0]["errorCode"] == "DUPLICATE_VALUE"
    with pytest.raises(SalesforceResourceNotFound):
        sf.ContentVersion.get_base64("068000000000000AAA", base64_field="VersionData")
    # deleting the document takes its versions and links with it
    sf.ContentDocument.delete(document_id)
    with pytest.raises(SalesforceResourceNotFound):
        sf.ContentVersion.get(created["id"])
    gone = sf.query(f"SELECT Id FROM ContentDocumentLink WHERE ContentDocumentId = '{document_id}'")
    assert gone["totalSize"] == 0


def test_describe_and_the_demo_seed(sf: Salesforce, emulator: SalesforceEmulator) -> None:
    fields = {f["name"]: f for f in sf.ContentVersion.describe()["fields"]}
    data = fields["VersionData"]
    assert (data["type"], data["soapType"], data["filterable"], data["updateable"]) == (
        "base64",
        "xsd:base64Binary",
        False,
        False,
    )
    assert fields["FirstPublishLocationId"]["polymorphicForeignKey"] is True
    children = {c["relationshipName"] for c in sf.Opportunity.describe()["childRelationships"]}
    assert "ContentDocumentLinks" in children
    company = build(emulator.clock.today())
    opp = company.sf_id(REFUSED_CONTRACT)
    files = sf.query(
        "SELECT ContentDocument.LatestPublishedVersion.PathOnClient, "
        "ContentDocument.FileExtension FROM ContentDocumentLink "
        f"WHERE LinkedEntityId = '{opp}'"
    )["records"]
    paths = [f["ContentDocument"]["LatestPublishedVersion"]["PathOnClient"] for f in files]
    assert any(p.endswith("-signed.zip") for p in paths), paths
    with_files = sum(1 for f in company.files if f.path_on_client.endswith("-signed.pdf"))
    assert with_files >= 20
