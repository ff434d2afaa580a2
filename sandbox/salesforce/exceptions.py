"""Salesforce's errors, rendered as Salesforce renders them.

- REST: an HTTP status and a JSON list ``[{"message", "errorCode", "fields"?}]``.
- sObject Collections: per record ``{"statusCode", "message", "fields"}`` inside HTTP 200.
- OAuth: HTTP 400 ``{"error", "error_description"}``.
- SOAP login: HTTP 500 with a ``soapenv:Fault`` carrying ``sf:exceptionCode``.
"""

from __future__ import annotations

import json
from typing import Any
from xml.sax.saxutils import escape

from starlette.responses import Response

JSON_CONTENT_TYPE = "application/json;charset=UTF-8"

SESSION_EXPIRED = [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]
NOT_FOUND = [{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}]
REQUEST_LIMIT_EXCEEDED = [
    {"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}
]
ROLLED_BACK_MESSAGE = (
    "Record rolled back because not all records were valid and the request was using AllOrNone "
    "header"
)

# The body Salesforce sends for a status when nothing more specific applies (injected faults).
DEFAULT_BODIES: dict[int, list[dict[str, Any]]] = {
    400: [{"errorCode": "INVALID_INPUT", "message": "Invalid request"}],
    401: SESSION_EXPIRED,
    403: REQUEST_LIMIT_EXCEEDED,
    404: NOT_FOUND,
    500: [
        {
            "errorCode": "UNKNOWN_EXCEPTION",
            "message": "An unexpected error occurred. Please include this ErrorId if you "
            "contact support: 1739214578-23417 (-1412853937)",
        }
    ],
    502: [{"errorCode": "SERVER_UNAVAILABLE", "message": "Bad gateway. Please try again later."}],
    503: [
        {
            "errorCode": "SERVER_UNAVAILABLE",
            "message": "Server temporarily unavailable. Please try again later.",
        }
    ],
}


def sf_json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON answer with Salesforce's content type."""
    return Response(
        json.dumps(body, ensure_ascii=False, separators=(",", ":")),
        status_code=status,
        headers=headers,
        media_type=JSON_CONTENT_TYPE,
    )


def default_body(status: int) -> list[dict[str, Any]]:
    return DEFAULT_BODIES.get(status, DEFAULT_BODIES[500])


class RecordError(Exception):
    """One DML error on one record (REQUIRED_FIELD_MISSING, INVALID_FIELD, ...)."""

    def __init__(self, code: str, message: str, fields: list[str] | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.fields = list(fields or [])

    def rest(self) -> dict[str, Any]:
        return {"message": self.message, "errorCode": self.code, "fields": self.fields}

    def collection(self) -> dict[str, Any]:
        return {"statusCode": self.code, "message": self.message, "fields": self.fields}


class ApiError(Exception):
    """A whole request refused: an HTTP status and Salesforce's JSON body."""

    def __init__(self, status: int, code: str = "", message: str = "", body: Any = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.body = body if body is not None else [{"message": message, "errorCode": code}]

    @classmethod
    def from_record(cls, error: RecordError) -> ApiError:
        return cls(400, body=[error.rest()])

    @classmethod
    def not_found(cls, message: str | None = None) -> ApiError:
        if message is None:
            return cls(404, body=NOT_FOUND)
        return cls(404, body=[{"errorCode": "NOT_FOUND", "message": message}])


class OAuthError(Exception):
    """``POST /services/oauth2/token`` refused: 400 ``{"error", "error_description"}``."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description

    def response(self) -> Response:
        return sf_json({"error": self.error, "error_description": self.description}, 400)


class LoginFault(Exception):
    """A partner SOAP login refused (``INVALID_LOGIN`` and friends)."""

    def __init__(self, code: str, message: str, fault_type: str = "LoginFault") -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.fault_type = fault_type

    def response(self) -> Response:
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>'
            '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
            'xmlns:sf="urn:fault.partner.soap.sforce.com" '
            'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
            "<soapenv:Body><soapenv:Fault>"
            f"<faultcode>sf:{self.code}</faultcode>"
            f"<faultstring>{self.code}: {escape(self.message)}</faultstring>"
            f'<detail><sf:{self.fault_type} xsi:type="sf:{self.fault_type}">'
            f"<sf:exceptionCode>{self.code}</sf:exceptionCode>"
            f"<sf:exceptionMessage>{escape(self.message)}</sf:exceptionMessage>"
            f"</sf:{self.fault_type}></detail>"
            "</soapenv:Fault></soapenv:Body></soapenv:Envelope>"
        )
        return Response(body, status_code=500, media_type="text/xml;charset=UTF-8")
