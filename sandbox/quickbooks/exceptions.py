"""QuickBooks Online faults, rendered as the accounting service renders them.

Every fault is ``{"Fault": {"Error": [{"Message", "Detail", "code", "element"}], "type"},
"time"}`` with the HTTP status Intuit uses. python-quickbooks picks its exception class by
``int(code)`` (1-499 AuthorizationException, 500-599 UnsupportedException, 610
ObjectNotFoundException, 600-1999 GeneralException, 2000-4999 ValidationException, 10000+
SevereException), so the codes here are the real ones.

Messages and details are Intuit's own wording where it is published or widely logged (5010,
6240, 6140, 610, 2500, 2020, 4000, 4001, 6070, 3001, 500, 10000); where Intuit's exact
wording is not known the detail keeps its ``Business Validation Error: ...`` shape (noted per
factory).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

# QuickBooks Online stamps times in the company's zone; both demo companies use Pacific time,
# as Intuit's sandbox companies do.
COMPANY_TZ = ZoneInfo("America/Los_Angeles")

INACTIVE_HINT = (
    "Something you're trying to use has been made inactive. Check the fields with accounts, "
    "customers, items, vendors or employees."
)


def render_time(when: datetime, millis: bool = True) -> str:
    """``2026-11-23T02:00:00.123-08:00`` (response ``time``) or without millis (MetaData)."""
    local = when.astimezone(COMPANY_TZ)
    text = local.strftime("%Y-%m-%dT%H:%M:%S")
    if millis:
        text += f".{local.microsecond // 1000:03d}"
    offset = local.strftime("%z")
    return f"{text}{offset[:3]}:{offset[3:]}"


@dataclass
class QBOError:
    message: str
    detail: str
    code: str
    element: str = ""

    def render(self) -> dict[str, str]:
        return {
            "Message": self.message,
            "Detail": self.detail,
            "code": self.code,
            "element": self.element,
        }


@dataclass
class QBOFault(Exception):
    """A fault answer; raised by the backend, rendered by the handlers (and inside batches)."""

    status: int
    errors: list[QBOError] = field(default_factory=list)
    type: str = "ValidationFault"

    def __post_init__(self) -> None:
        super().__init__(self.errors[0].detail if self.errors else self.type)

    def fault(self) -> dict[str, Any]:
        """The ``Fault`` object alone (what a batch item carries)."""
        return {"Error": [e.render() for e in self.errors], "type": self.type}

    def body(self, now: datetime) -> dict[str, Any]:
        return {"Fault": self.fault(), "time": render_time(now)}


def _fault(
    status: int, message: str, detail: str, code: int, kind: str, element: str = ""
) -> QBOFault:
    return QBOFault(status, [QBOError(message, detail, str(code), element)], kind)


def validation(message: str, detail: str, code: int, element: str = "") -> QBOFault:
    return _fault(400, message, detail, code, "ValidationFault", element)


# ---- general ---------------------------------------------------------------------------------
def object_not_found(deleted: bool = False) -> QBOFault:
    """610: an Id that does not exist (or a deleted transaction)."""
    detail = "Another user has deleted this transaction." if deleted else INACTIVE_HINT
    return validation("Object Not Found", f"Object Not Found : {detail}", 610)


def unsupported_operation(detail: str) -> QBOFault:
    """500: an operation or resource the service does not have."""
    return validation("Unsupported Operation", f"Operation {detail} is not supported.", 500)


def unknown_resource(path: str, url: str, status: int = 404) -> QBOFault:
    """A path the API does not have (rendered with 404, or 405 for a wrong method)."""
    fault = unsupported_operation(
        f"Could not find resource for relative : {path} of full path: {url}"
    )
    fault.status = status
    return fault


def batch_too_large(count: int, limit: int) -> QBOFault:
    return validation(
        "Batch size exceeds allowed limit",
        f"The batch size for the batch request or BatchItemRequest is too big. The batch limit "
        f"size is {limit}. Supplied: {count}",
        1040,
    )


# ---- validation (2000-4999) -------------------------------------------------------------------
def required_param(name: str) -> QBOFault:
    return validation(
        "Required param missing, need to supply the required value for the API",
        f"Required parameter {name} is missing in the request",
        2020,
        name,
    )


def invalid_reference(kind: str | None = None) -> QBOFault:
    """2500; ``kind`` names the reference when it points at nothing (e.g. ``ItemRef``)."""
    detail = INACTIVE_HINT if kind is None else f"{kind} does not exist: {INACTIVE_HINT}"
    return validation("Invalid Reference Id", f"Invalid Reference Id : {detail}", 2500, kind or "")


def invalid_value(name: str, value: Any, why: str = "") -> QBOFault:
    detail = f"Property Name:{name} specified is unsupported or invalid"
    if why:
        detail = f"{detail}: {why}"
    return validation(
        "Request has invalid or unsupported property", f"{detail} (supplied: {value!s})", 2010, name
    )


def bad_request(detail: str) -> QBOFault:
    """2000: a body that is not the JSON (or text) the endpoint expects."""
    return validation("Request has invalid or unsupported property", detail, 2000)


def query_parser_error(detail: str) -> QBOFault:
    return validation("Error parsing query", f"QueryParserError: {detail}", 4000)


def query_validation_error(detail: str) -> QBOFault:
    return validation("Invalid query", f"QueryValidationError: {detail}", 4001)


def throttled() -> QBOFault:
    """3001, HTTP 429 (Intuit's gateway answers with a SERVICE fault; no Retry-After header)."""
    return _fault(
        429,
        "message=ThrottleExceeded; errorCode=003001; statusCode=429",
        "The request limit was reached.  Try again later",
        3001,
        "SERVICE",
    )


# ---- specific (5000-9999) ---------------------------------------------------------------------
def stale_object(user: str = "API API") -> QBOFault:
    return validation(
        "Stale Object Error",
        f"Stale Object Error : You and {user} were working on this at the same time. {user} "
        "finished before you did, so your work was not saved.",
        5010,
    )


def business_validation(detail: str, element: str = "") -> QBOFault:
    """6000. Intuit's wording for the detail is approximated where it is not published."""
    return validation(
        "A business validation error has occurred while processing your request",
        f"Business Validation Error: {detail}",
        6000,
        element,
    )


def request_id_too_long(request_id: str) -> QBOFault:
    return business_validation(
        "You cannot enter more than 50 characters in the request_id field. You tried entering "
        f"{request_id[:10]}..., which is {len(request_id)} characters."
    )


def account_type_missing() -> QBOFault:
    return validation(
        "Invalid Account.AccountType && Account.SubType",
        "Either an Account.AccountType or an Account.AccountSubType must be specified",
        6010,
    )


def upload_too_large(size: int, limit: int) -> QBOFault:
    return validation(
        "Upload request size exceeds allowed limit",
        f"The file upload request should not exceed {limit // (1024 * 1024)}MB in size. The "
        f"current request size is {size}",
        6030,
    )


def upload_metadata_type(supplied: str, part: str) -> QBOFault:
    return validation(
        "The file metadata must be of Attachable type",
        f"The file metadata submitted must be of Attachable type. Supplied Type: {supplied}, "
        f"request parameter: {part}.",
        6040,
    )


def attachable_ref_type(kind: str) -> QBOFault:
    return validation(
        "The entity reference type is unsupported for Attachable",
        f"The entity reference type {kind} is unsupported for Attachable",
        6050,
    )


def amount_calculation(supplied: Any) -> QBOFault:
    return validation(
        "Amount calculation incorrect in the request",
        f"Amount is not equal to Qty * UnitPrice. Supplied value:{supplied}",
        6070,
    )


def no_name_provided() -> QBOFault:
    return validation(
        "No Name Provided",
        "Title, GivenName, MiddleName, FamilyName, DisplayName, Suffix - one of these must be "
        "non-empty",
        6080,
    )


def duplicate_doc_number(doc_number: str, txn_type: str, txn_id: str) -> QBOFault:
    return validation(
        "Duplicate Document Number Error",
        "Duplicate Document Number Error : You must specify a different number. This number has "
        f"already been used. DocNumber={doc_number} is assigned to TxnType={txn_type} with "
        f"TxnId={txn_id}",
        6140,
    )


def duplicate_name(kinds: str, existing_id: str) -> QBOFault:
    """6240; ``kinds`` is Intuit's phrase: "customer, vendor or employee", "product or service",
    "account", "payment method", "term"."""
    return validation(
        "Duplicate Name Exists Error",
        f"The name supplied already exists. : Another {kinds} is already using this name. "
        f"Please use a different name. Id={existing_id}",
        6240,
    )


# ---- severe (10000+) --------------------------------------------------------------------------
def system_fault(status: int = 500) -> QBOFault:
    return _fault(
        status,
        "An application error has occurred while processing your request",
        "System Failure Error: An unexpected error occurred while accessing or saving your data. "
        "Please wait a few minutes and try again. If the problem persists, contact customer "
        "support.",
        10000,
        "SystemFault",
    )


def service_unavailable() -> QBOFault:
    return _fault(
        503,
        "Service Unavailable",
        "The service is temporarily unavailable. Please try again later.",
        10000,
        "SystemFault",
    )
