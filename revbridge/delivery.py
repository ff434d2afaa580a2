"""Invoice delivery, the pure part: which file is a deal's signed contract, whether QuickBooks
would take it, the upload request, the invoice's link, and what is written back to Salesforce.

- **Signed contract**: a file in Salesforce Files linked to the Opportunity (ContentDocumentLink
  → the document's latest published ContentVersion) whose Title or file name (PathOnClient)
  matches ``delivery.contract_title_pattern`` (default: the word "signed"). The newest one — by
  the latest version's CreatedDate, then Id — is the contract.
- **QuickBooks' limits**: an attachment of at most 100 MB, of a type QuickBooks accepts (ai, csv,
  doc, docx, eps, gif, jpeg, jpg, ods, pages, pdf, png, rtf, tif, txt, xls, xlsx, xml). A file
  outside them is reported by name and never uploaded.
- **Idempotency**: the upload and the send each carry a ``requestid`` derived from what they do
  (invoice + file version; invoice + address), so a retry replays QuickBooks' first answer; the
  retry path also skips files already attached (by FileName) and invoices already e-mailed.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from revbridge.batch import chunk
from revbridge.config_sections import DeliveryConfig
from revbridge.ids import to_18
from revbridge.models import Problem, parse_datetime
from revbridge.plan import Invalid, RealmPlan, RunPlan
from revbridge.soql import quote

MAX_ATTACHMENT_BYTES = 100 * 1024 * 1024
MAX_LINKED_IDS = 500  # Opportunity Ids per ContentDocumentLink query
MAX_RECORDS = 200  # records per composite/sobjects body
# The file types QuickBooks accepts as attachments, by extension, with the content type sent.
ATTACHMENT_TYPES = {
    "ai": "application/postscript",
    "csv": "text/csv",
    "doc": "application/msword",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "eps": "application/postscript",
    "gif": "image/gif",
    "jpeg": "image/jpeg",
    "jpg": "image/jpeg",
    "ods": "application/vnd.oasis.opendocument.spreadsheet",
    "pages": "application/vnd.apple.pages",
    "pdf": "application/pdf",
    "png": "image/png",
    "rtf": "application/rtf",
    "tif": "image/tiff",
    "tiff": "image/tiff",
    "txt": "text/plain",
    "xls": "application/vnd.ms-excel",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "xml": "application/xml",
}
APP_URLS = {
    "production": "https://app.qbo.intuit.com",
    "sandbox": "https://app.sandbox.qbo.intuit.com",
}
UPLOAD_BOUNDARY = "revbridge-attachment-boundary"


class ContractFile(BaseModel):
    """One file linked to an Opportunity: its document's latest published version."""

    model_config = ConfigDict(frozen=True)

    opportunity_id: str
    document_id: str
    version_id: str
    title: str
    path_on_client: str
    extension: str | None = None
    size: int = 0
    created: datetime | None = None

    @property
    def file_name(self) -> str:
        """The name QuickBooks stores (the client path's last part)."""
        return self.path_on_client.replace("\\", "/").rsplit("/", 1)[-1] or self.title

    @property
    def content_type(self) -> str | None:
        """The content type QuickBooks accepts for this file, or None (a type it refuses)."""
        return ATTACHMENT_TYPES.get((self.extension or "").lower())


def contract_files_query(opportunity_ids: Sequence[str]) -> str:
    """The files linked to these Opportunities with their latest version, in one SOQL query
    (ContentDocumentLink must be filtered by LinkedEntityId or ContentDocumentId)."""
    if not opportunity_ids:
        raise ValueError("no Opportunity Ids")
    if len(opportunity_ids) > MAX_LINKED_IDS:
        raise ValueError(f"at most {MAX_LINKED_IDS} Opportunity Ids per query")
    version = "ContentDocument.LatestPublishedVersion"
    fields = [
        "LinkedEntityId",
        "ContentDocumentId",
        f"{version}.Id",
        f"{version}.Title",
        f"{version}.PathOnClient",
        f"{version}.FileExtension",
        f"{version}.ContentSize",
        f"{version}.CreatedDate",
    ]
    ids = ", ".join(quote(i) for i in dict.fromkeys(opportunity_ids))
    return f"SELECT {', '.join(fields)} FROM ContentDocumentLink WHERE LinkedEntityId IN ({ids})"


def parse_contract_files(records: Iterable[Mapping[str, Any]]) -> list[ContractFile]:
    """The query's rows as files (a document without a published version is left out)."""
    files: list[ContractFile] = []
    for row in records:
        latest = (row.get("ContentDocument") or {}).get("LatestPublishedVersion")
        if not latest:
            continue
        files.append(
            ContractFile(
                opportunity_id=to_18(str(row["LinkedEntityId"])),
                document_id=str(row["ContentDocumentId"]),
                version_id=str(latest["Id"]),
                title=str(latest.get("Title") or ""),
                path_on_client=str(latest.get("PathOnClient") or ""),
                extension=latest.get("FileExtension"),
                size=int(latest.get("ContentSize") or 0),
                created=parse_datetime(latest.get("CreatedDate")),
            )
        )
    return files


def is_signed(file: ContractFile, pattern: str) -> bool:
    """Whether a file counts as a signed contract: the pattern is in its Title or file name."""
    found = re.compile(pattern)
    return bool(found.search(file.title) or found.search(file.file_name))


def newest_signed(files: Iterable[ContractFile], pattern: str) -> dict[str, ContractFile]:
    """Opportunity Id (18 characters) → its newest signed contract."""
    best: dict[str, ContractFile] = {}
    for file in files:
        if not is_signed(file, pattern):
            continue
        current = best.get(file.opportunity_id)
        if current is None or _age_key(file) > _age_key(current):
            best[file.opportunity_id] = file
    return best


def _age_key(file: ContractFile) -> tuple[datetime, str]:
    return (file.created or datetime.min.replace(tzinfo=UTC), file.version_id)


def refusal(file: ContractFile, max_bytes: int = MAX_ATTACHMENT_BYTES) -> str | None:
    """Why QuickBooks would refuse the file as an attachment, naming it; None when it would not."""
    if file.content_type is None:
        kind = f".{file.extension}" if file.extension else "without an extension"
        return (
            f"{file.file_name}: QuickBooks does not accept {kind} files as attachments "
            f"(allowed: {', '.join(sorted(ATTACHMENT_TYPES))})"
        )
    if file.size > max_bytes:
        return (
            f"{file.file_name}: {file.size:,} bytes is over QuickBooks' attachment limit of "
            f"{max_bytes // (1024 * 1024)} MB"
        )
    return None


class ContractCheck(BaseModel):
    """Before invoicing: each deal's contract, and the deals without one QuickBooks would take
    (``missing``: Opportunity Id → why); ``hold`` says whether those wait (Needs Review)."""

    model_config = ConfigDict(frozen=True)

    contracts: dict[str, ContractFile]
    missing: dict[str, str]
    hold: bool

    def held(self, opportunity_id: str) -> str | None:
        """Why this deal is held back from invoicing, or None."""
        return self.missing.get(to_18(opportunity_id)) if self.hold else None


def check_contracts(
    opportunity_ids: Iterable[str], files: Iterable[ContractFile], config: DeliveryConfig
) -> ContractCheck:
    """Each deal's newest signed contract, and what is missing (no signed file, or one QuickBooks
    would refuse, named)."""
    contracts = newest_signed(files, config.contract_title_pattern)
    missing: dict[str, str] = {}
    for raw in opportunity_ids:
        opp_id = to_18(raw)
        contract = contracts.get(opp_id)
        if contract is None:
            missing[opp_id] = (
                "no signed contract in Salesforce Files (a file whose title or name matches "
                f"{config.contract_title_pattern!r})"
            )
        elif (why := refusal(contract)) is not None:
            missing[opp_id] = f"signed contract not attachable: {why}"
    return ContractCheck(
        contracts=contracts, missing=missing, hold=config.missing_contract == "hold"
    )


def apply_hold(plan: RunPlan, check: ContractCheck) -> RunPlan:
    """The plan with held deals (no attachable signed contract, ``missing_contract: hold``) moved
    from ready or awaiting approval to the problems, so they are neither invoiced nor sent for
    approval, and come back every run (Needs Review) until the contract is there."""
    if not check.hold or not check.missing:
        return plan
    realms: dict[str, RealmPlan] = {}
    for name, realm_plan in plan.realms.items():
        held = [
            Invalid(
                opportunity=opp,
                problems=(Problem(record_id=opp.id, field="Contract", reason=reason),),
            )
            for opp in (*realm_plan.ready, *realm_plan.approval)
            if (reason := check.held(opp.id)) is not None
        ]
        held_ids = {h.opportunity.id for h in held}
        realms[name] = realm_plan.model_copy(
            update={
                "ready": tuple(o for o in realm_plan.ready if o.id not in held_ids),
                "approval": tuple(o for o in realm_plan.approval if o.id not in held_ids),
                "problems": (*realm_plan.problems, *held),
            }
        )
    return plan.model_copy(update={"realms": realms})


class DeliveryItem(BaseModel):
    """An invoice to deliver: just created (``fresh``), or an earlier one not yet sent."""

    model_config = ConfigDict(frozen=True)

    opportunity_id: str
    name: str = ""
    realm: str
    invoice_id: str
    bill_email: str | None = None
    fresh: bool = True


def undelivered_query(limit: int) -> str:
    """Invoiced Closed Won deals whose invoice was never e-mailed: the next run's retries,
    newest first, at most ``limit``."""
    return (
        "SELECT Id, Name, QB_Invoice_Id__c, QB_Realm__c, Account.Billing_Email__c "
        "FROM Opportunity WHERE StageName = 'Closed Won' AND QB_Sync_Status__c = 'Invoiced' "
        "AND QB_Invoice_Id__c != null AND Invoice_Sent__c = false "
        f"ORDER BY CloseDate DESC, Id LIMIT {int(limit)}"
    )


def undelivered_items(
    records: Iterable[Mapping[str, Any]], realm_keys: Mapping[str, str], skip: Iterable[str] = ()
) -> list[DeliveryItem]:
    """The retry query's rows as items (``realm_keys``: realm id → config name; rows of an
    unknown realm, or in ``skip``, are left out)."""
    skipped = {to_18(i) for i in skip}
    items = []
    for row in records:
        realm = realm_keys.get(str(row.get("QB_Realm__c") or ""))
        if realm is None or to_18(str(row["Id"])) in skipped:
            continue
        items.append(
            DeliveryItem(
                opportunity_id=str(row["Id"]),
                name=str(row.get("Name") or ""),
                realm=realm,
                invoice_id=str(row["QB_Invoice_Id__c"]),
                bill_email=(row.get("Account") or {}).get("Billing_Email__c"),
                fresh=False,
            )
        )
    return items


# ---- QuickBooks requests -----------------------------------------------------------------------


def attachable_metadata(file: ContractFile, invoice_id: str) -> dict[str, Any]:
    """The Attachable sent with the file: linked to the invoice and e-mailed with it."""
    return {
        "AttachableRef": [
            {"EntityRef": {"type": "Invoice", "value": invoice_id}, "IncludeOnSend": True}
        ],
        "FileName": file.file_name,
        "ContentType": file.content_type,
        "Note": f"Signed contract from Salesforce ({file.title})"[:2000],
    }


def upload_body(file: ContractFile, invoice_id: str, data: bytes) -> tuple[str, str]:
    """(multipart body, its Content-Type) for ``POST /upload``: the Attachable as
    ``file_metadata_01`` and the bytes, base64, as ``file_content_01`` (as python-quickbooks
    sends them)."""
    if file.content_type is None:
        raise ValueError(f"{file.file_name}: not a type QuickBooks accepts")
    metadata = json.dumps(attachable_metadata(file, invoice_id))
    encoded = base64.b64encode(data).decode("ascii")
    name = file.file_name.replace('"', "'")
    body = "\r\n".join(
        [
            f"--{UPLOAD_BOUNDARY}",
            'Content-Disposition: form-data; name="file_metadata_01"',
            "Content-Type: application/json",
            "",
            metadata,
            f"--{UPLOAD_BOUNDARY}",
            f'Content-Disposition: form-data; name="file_content_01"; filename="{name}"',
            f"Content-Type: {file.content_type}",
            "Content-Transfer-Encoding: base64",
            "",
            encoded,
            f"--{UPLOAD_BOUNDARY}--",
            "",
        ]
    )
    return body, f"multipart/form-data; boundary={UPLOAD_BOUNDARY}"


def upload_request_id(invoice_id: str, file: ContractFile) -> str:
    """The upload's ``requestid`` (≤ 50 chars): one per invoice and file version."""
    digest = hashlib.sha256(f"{invoice_id}/{file.version_id}".encode()).hexdigest()[:24]
    return f"rb-att-{digest}"


def send_request_id(invoice_id: str, address: str | None) -> str:
    """The send's ``requestid``: a retry after a lost answer replays it, no second e-mail."""
    digest = hashlib.sha256(f"{invoice_id}/{address or ''}".encode()).hexdigest()[:24]
    return f"rb-send-{digest}"


def invoice_url(environment: str, invoice_id: str) -> str:
    """The invoice in the QuickBooks web app (QB_Invoice_URL__c). A sandbox company — the
    ``sandbox`` environment or a sandbox discovery document — lives on app.sandbox.qbo."""
    host = APP_URLS["sandbox" if "sandbox" in environment.lower() else "production"]
    return f"{host}/app/invoice?txnId={invoice_id}"


# ---- outcome and write-back --------------------------------------------------------------------


class Delivery(BaseModel):
    """What delivery did for one invoice. ``problems`` name the deal's file or the fault."""

    model_config = ConfigDict(frozen=True)

    opportunity_id: str
    name: str = ""
    realm: str = ""
    invoice_id: str
    url: str
    attached: str | None = None  # file name now attached (this run or an earlier one)
    sent_to: str | None = None  # address the invoice went to (this run or an earlier one)
    warnings: tuple[str, ...] = ()  # reported, not failures (a missing contract under "warn")
    problems: tuple[str, ...] = ()  # failures: retried next run

    @property
    def sent(self) -> bool:
        return self.sent_to is not None

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        """One line for Slack and the artifact."""
        parts = []
        if self.attached:
            parts.append(f"attached {self.attached}")
        if self.sent_to:
            parts.append(f"sent to {self.sent_to}")
        parts += list(self.warnings) + list(self.problems)
        return "; ".join(parts) or "link written"


def delivery_fields(delivery: Delivery) -> dict[str, Any]:
    """What delivery writes to the Opportunity: the invoice link, and Invoice_Sent__c once sent."""
    fields: dict[str, Any] = {"QB_Invoice_URL__c": delivery.url}
    if delivery.sent:
        fields["Invoice_Sent__c"] = True
    return fields


def merge_delivery(
    bodies: Sequence[Mapping[str, Any]], deliveries: Iterable[Delivery]
) -> list[dict[str, Any]]:
    """The ``composite/sobjects`` PATCH bodies with the delivery fields added to each deal's
    record (one write for outcome and delivery); deals not in ``bodies`` get records of their
    own. Still ≤ 200 records a body, ``allOrNone`` false."""
    records = [dict(r) for body in bodies for r in body["records"]]
    by_id = {to_18(str(r["Id"])): r for r in records}
    for delivery in deliveries:
        key = to_18(delivery.opportunity_id)
        record = by_id.get(key)
        if record is None:
            record = {"attributes": {"type": "Opportunity"}, "Id": delivery.opportunity_id}
            records.append(record)
            by_id[key] = record
        record.update(delivery_fields(delivery))
    return [{"allOrNone": False, "records": part} for part in chunk(records, MAX_RECORDS)]


def delivery_table(deliveries: Iterable[Delivery]) -> str:
    """The run's deliveries as a markdown table (a Prefect artifact)."""
    lines = [
        "| Opportunity | Name | Realm | Invoice | Contract | Sent to | Warnings / problems |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for d in deliveries:
        notes = "; ".join((*d.warnings, *d.problems)).replace("|", "\\|")
        lines.append(
            f"| {d.opportunity_id} | {d.name.replace('|', '/')} | {d.realm} | "
            f"[{d.invoice_id}]({d.url}) | {d.attached or ''} | {d.sent_to or ''} | {notes} |"
        )
    return "\n".join(lines)
