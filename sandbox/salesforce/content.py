"""Salesforce Files, as the org keeps them: ContentVersion → ContentDocument → ContentDocumentLink.

- Inserting a ContentVersion without ``ContentDocumentId`` creates its ContentDocument (title,
  owner, ``LatestPublishedVersionId``) and links it to the owner (ShareType ``I``) and to
  ``FirstPublishLocationId`` when given (ShareType ``V``). With ``ContentDocumentId`` it is the
  document's next version: ``VersionNumber`` counts up, ``IsLatest`` moves to it and the document
  takes its title, size and type.
- ``FileExtension`` is the lower-cased extension of ``PathOnClient``; ``FileType`` Salesforce's
  name for it (``PDF``, ``WORD_X``, ``ZIP``, ``EXE``, ... else ``UNKNOWN``); ``ContentSize`` the
  byte count; ``Checksum`` the MD5 of the bytes; ``Title`` defaults to the file name without its
  extension.
- ``VersionData`` is written as base64 and read back from its blob URL
  (``GET /services/data/vXX.X/sobjects/ContentVersion/{id}/VersionData``, the raw bytes): queries
  and record reads show that URL, never the content.
- A query on ContentDocumentLink must filter on ContentDocumentId, LinkedEntityId (or Id) with
  ``=`` or ``IN``, at the top level of its WHERE (Salesforce's "Implementation restriction").

The backend (`sandbox.salesforce.models.SalesforceBackend`) calls these under its lock.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

from sandbox.salesforce.exceptions import ApiError, RecordError
from sandbox.salesforce.soql import And, Comparison, Condition

if TYPE_CHECKING:
    from sandbox.salesforce.models import SalesforceBackend
    from sandbox.salesforce.query import Record
    from sandbox.salesforce.schema import ObjectDef

# Blob fields and the objects that have them: GET sobjects/{Object}/{id}/{field} answers the bytes.
BLOB_FIELDS = {"ContentVersion": "VersionData"}
BLOB_CONTENT_TYPE = "application/octetstream"  # what Salesforce answers for blob reads

LINK_RESTRICTION = (
    "Implementation restriction: ContentDocumentLink requires a filter by a single Id on "
    "ContentDocumentId or LinkedEntityId using the equals operator or multiple Id's using the "
    "IN operator."
)
_LINK_FILTER_FIELDS = frozenset({"id", "contentdocumentid", "linkedentityid"})

FILE_TYPES = {
    "pdf": "PDF", "doc": "WORD", "docx": "WORD_X", "xls": "EXCEL", "xlsx": "EXCEL_X",
    "ppt": "POWER_POINT", "pptx": "POWER_POINT_X", "csv": "CSV", "txt": "TEXT", "rtf": "RTF",
    "xml": "XML", "html": "HTML", "htm": "HTML", "png": "PNG", "jpg": "JPG", "jpeg": "JPEG",
    "gif": "GIF", "tif": "TIFF", "tiff": "TIFF", "bmp": "BMP", "zip": "ZIP", "exe": "EXE",
    "mp4": "MP4", "mov": "MOV", "json": "JSON", "odt": "ODT", "ods": "ODS", "pages": "PAGES",
}  # fmt: skip


def file_type(extension: str | None) -> str:
    """Salesforce's FileType for a file extension (``UNKNOWN`` when it has no name for it)."""
    return FILE_TYPES.get((extension or "").lower(), "UNKNOWN")


def split_name(path_on_client: str) -> tuple[str, str | None]:
    """(file name without extension, lower-cased extension or None) of a client path."""
    name = path_on_client.replace("\\", "/").rsplit("/", 1)[-1]
    stem, dot, extension = name.rpartition(".")
    if not dot or not stem or not extension:
        return name, None
    return stem, extension.lower()


def blob_url(version: str, sobject: str, record_id: str, field: str) -> str:
    """Where a blob field is read: what queries and record reads show instead of the bytes."""
    return f"/services/data/v{version}/sobjects/{sobject}/{record_id}/{field}"


# ---- ContentVersion rules --------------------------------------------------------------------


def version_rules(backend: SalesforceBackend, record: Record, old: Record | None) -> None:
    """Derived fields of a new version, and the ContentDocument of a first version."""
    if old is not None:
        return  # only Title, Description and ReasonForChange change after insert
    path, data = record.get("PathOnClient"), record.get("VersionData")
    if path is None or data is None:
        return  # REQUIRED_FIELD_MISSING follows
    stem, extension = split_name(path)
    record.update(
        Title=record.get("Title") or stem,
        FileExtension=extension,
        FileType=file_type(extension),
        ContentSize=len(data),
        Checksum=hashlib.md5(data, usedforsecurity=False).hexdigest(),
        IsLatest=True,
        PublishStatus="P",
        Origin=record.get("Origin") or "C",
        ContentLocation=record.get("ContentLocation") or "S",
    )
    document_id = record.get("ContentDocumentId")
    if document_id is None:
        record["ContentDocumentId"] = backend.insert(
            "ContentDocument",
            {"Title": record["Title"], "OwnerId": record["OwnerId"], "PublishStatus": "P"},
        )
        record["VersionNumber"] = "1"
        return
    versions = [
        v for v in backend.rows("ContentVersion", False) if v["ContentDocumentId"] == document_id
    ]
    record["VersionNumber"] = str(len(versions) + 1)


def version_saved(backend: SalesforceBackend, record: Record) -> None:
    """After a version is stored: it becomes the document's latest (a first version is also
    linked to its owner and its first publish location); a new title reaches the document."""
    document = backend.find(record["ContentDocumentId"])
    if document is None or not record["IsLatest"]:
        return
    _, doc = document
    now = backend.now()
    if doc["LatestPublishedVersionId"] != record["Id"]:
        for other in list(backend.rows("ContentVersion", False)):
            if other["ContentDocumentId"] == doc["Id"] and other["Id"] != record["Id"]:
                backend._put("ContentVersion", {**other, "IsLatest": False})
        if record["VersionNumber"] == "1":
            _link(backend, doc["Id"], record["OwnerId"], "I")
            if record.get("FirstPublishLocationId"):
                _link(backend, doc["Id"], record["FirstPublishLocationId"], "V")
    backend._put(
        "ContentDocument",
        {
            **doc,
            "LatestPublishedVersionId": record["Id"],
            "Title": record["Title"],
            "ContentSize": record["ContentSize"],
            "FileType": record["FileType"],
            "FileExtension": record["FileExtension"],
            "LastModifiedDate": now,
            "SystemModstamp": now,
        },
    )


def _link(backend: SalesforceBackend, document_id: str, entity_id: str, share_type: str) -> None:
    backend.insert(
        "ContentDocumentLink",
        {
            "ContentDocumentId": document_id,
            "LinkedEntityId": entity_id,
            "ShareType": share_type,
            "Visibility": "AllUsers",
        },
    )


def link_rules(backend: SalesforceBackend, record: Record, old: Record | None) -> None:
    """A document is linked to a record at most once; defaults as Salesforce sets them."""
    record["ShareType"] = record.get("ShareType") or "V"
    record["Visibility"] = record.get("Visibility") or "AllUsers"
    if old is not None:
        return
    for other in backend.rows("ContentDocumentLink", False):
        if (other["ContentDocumentId"], other["LinkedEntityId"]) == (
            record["ContentDocumentId"],
            record["LinkedEntityId"],
        ):
            raise RecordError(
                "DUPLICATE_VALUE",
                f"duplicate value found: <unknown> duplicates value on record with id: "
                f"{other['Id']}",
            )


# ---- reads -----------------------------------------------------------------------------------


def check_link_query(sobject: str, where: Condition | None) -> None:
    """Refuse a ContentDocumentLink query without an Id filter, as Salesforce does (400
    MALFORMED_QUERY, a plain message without the row/column layout)."""
    if sobject != "ContentDocumentLink":
        return
    conditions: tuple[Condition, ...] = ()
    if isinstance(where, And):
        conditions = where.items
    elif where is not None:
        conditions = (where,)
    if not any(_is_id_filter(c) for c in conditions):
        raise ApiError(400, "MALFORMED_QUERY", LINK_RESTRICTION)


def _is_id_filter(condition: Condition) -> bool:
    return (
        isinstance(condition, Comparison)
        and len(condition.field.path) == 1
        and condition.field.path[0].lower() in _LINK_FILTER_FIELDS
        and condition.op in {"=", "IN"}
    )


def blob_field(obj: ObjectDef, field: str) -> str:
    """The canonical name of ``obj``'s blob field ``field`` (404 NOT_FOUND when it has none)."""
    name = BLOB_FIELDS.get(obj.name)
    if name is None or name.lower() != field.lower():
        raise ApiError.not_found()
    return name
