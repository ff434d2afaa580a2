"""Thin HTTP handlers: read the request, call the backend, render Salesforce's answer.

Every REST call under ``/services/data/v{NN.N}/`` goes through ``SalesforceApi.data``: version
check (404), session check (401 INVALID_SESSION_ID), daily limit (403 REQUEST_LIMIT_EXCEEDED),
route and method (404/405), then the handler, whose answer carries ``Sforce-Limit-Info``.
"""

from __future__ import annotations

import base64
import binascii
import json
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote
from xml.sax.saxutils import escape

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from sandbox.demo_company import ORG_ID
from sandbox.salesforce.content import BLOB_CONTENT_TYPE
from sandbox.salesforce.exceptions import (
    NOT_FOUND,
    SESSION_EXPIRED,
    ApiError,
    LoginFault,
    OAuthError,
    sf_json,
)
from sandbox.salesforce.models import API_VERSIONS, DEFAULT_BATCH_SIZE, SalesforceBackend
from sandbox.salesforce.urls import VERSIONED, allowed_methods, resolve

RELEASES = {
    50: "Winter '21",
    51: "Spring '21",
    52: "Summer '21",
    53: "Winter '22",
    54: "Spring '22",
    55: "Summer '22",
    56: "Winter '23",
    57: "Spring '23",
    58: "Summer '23",
    59: "Winter '24",
    60: "Spring '24",
    61: "Summer '24",
    62: "Winter '25",
    63: "Spring '25",
    64: "Summer '25",
}


@dataclass
class Call:
    """One REST call, as the handlers see it."""

    method: str
    version: str
    rest: str  # the path after ``/services/data/v{NN.N}/``
    groups: dict[str, str]
    params: dict[str, str]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        if not self.body.strip():
            return {}
        try:
            return json.loads(self.body)
        except json.JSONDecodeError as exc:
            where = f"[line:{exc.lineno}, column:{exc.colno}]"
            text = self.body.decode(errors="replace")
            if exc.pos >= len(text):
                detail = f"Unexpected end-of-input at {where}"
            else:
                char = text[exc.pos]
                detail = (
                    f"Unexpected character ('{char}' (code {ord(char)})): expected a valid value "
                    f"(number, String, array, object, 'true', 'false' or 'null') at {where}"
                )
            raise ApiError(400, "JSON_PARSER_ERROR", detail) from None

    def json_object(self) -> dict[str, Any]:
        data = self.json()
        if not isinstance(data, dict):
            raise ApiError(
                400,
                "JSON_PARSER_ERROR",
                "Cannot deserialize instance of SObject from START_ARRAY value [line:1, column:1]",
            )
        return data


def _flag(value: Any) -> bool:
    return value is True or str(value).lower() == "true"


class SalesforceApi:
    """The handlers of one emulator; ``base_url`` is the instance URL it is reached at."""

    def __init__(self, backend: SalesforceBackend, base_url: Callable[[Request], str]) -> None:
        self.backend = backend
        self.base_url = base_url

    # ---- /services/data ----------------------------------------------------------------------
    async def data(self, request: Request) -> Response:
        raw_path = request.scope.get("raw_path") or request.url.path.encode()
        path = raw_path.decode("latin-1").split("?", 1)[0]
        if path.rstrip("/") == "/services/data":
            if request.method != "GET":
                return method_not_allowed(request.method, ["GET"])
            return sf_json(self.versions())
        found = VERSIONED.match(path)
        if found is None or found.group("version") not in API_VERSIONS:
            return sf_json(NOT_FOUND, 404)
        call = Call(
            method=request.method,
            version=found.group("version"),
            rest=found.group("rest") or "",
            groups={},
            params=dict(request.query_params),
            headers={k.lower(): v for k, v in request.headers.items()},
            body=await request.body(),
        )
        # the backend's lock may wait on a long query: keep it off the event loop
        return await run_in_threadpool(self._handle, call)

    def _handle(self, call: Call) -> Response:
        """Session, daily limit, route, then the handler; every answer carries the usage."""
        scheme, _, token = call.headers.get("authorization", "").partition(" ")
        if scheme.lower() not in {"bearer", "oauth"} or not token.strip():
            return sf_json(SESSION_EXPIRED, 401)
        if self.backend.session_for(token.strip()) is None:
            return sf_json(SESSION_EXPIRED, 401)
        try:
            headers = {"Sforce-Limit-Info": self.backend.count_api_call()}
        except ApiError as exc:
            return sf_json(exc.body, exc.status, {"Sforce-Limit-Info": self.backend.limit_info()})
        hit = resolve(call.method, call.rest)
        if hit is None:
            methods = allowed_methods(call.rest)
            if methods:
                response = method_not_allowed(call.method, methods)
            else:
                response = sf_json(NOT_FOUND, 404)
        else:
            route, call.groups = hit
            handler: Callable[[Call], Response] = getattr(self, route.handler)
            try:
                response = handler(call)
            except ApiError as exc:
                response = sf_json(exc.body, exc.status)
        response.headers.update(headers)
        return response

    def versions(self) -> list[dict[str, str]]:
        return [
            {"label": RELEASES[int(float(v))], "url": f"/services/data/v{v}", "version": v}
            for v in API_VERSIONS
        ]

    # ---- REST handlers (run in a worker thread) ------------------------------------------------
    def resources(self, call: Call) -> Response:
        base = f"/services/data/v{call.version}"
        names = ("sobjects", "query", "queryAll", "limits", "composite")
        return sf_json({name: f"{base}/{name}" for name in names})

    def query(self, call: Call, include_deleted: bool = False) -> Response:
        soql = call.params.get("q")
        if not soql:
            raise ApiError(400, "MALFORMED_QUERY", "A query string has to be specified")
        return sf_json(
            self.backend.query(
                soql,
                include_deleted=include_deleted,
                batch_size=_batch_size(call.headers),
                version=call.version,
            )
        )

    def query_all(self, call: Call) -> Response:
        return self.query(call, include_deleted=True)

    def query_more(self, call: Call) -> Response:
        return sf_json(self.backend.query_more(call.groups["locator"], call.version))

    def describe_global(self, call: Call) -> Response:
        return sf_json(self.backend.describe_global(call.version))

    def describe(self, call: Call) -> Response:
        return sf_json(self.backend.describe(call.groups["sobject"], call.version))

    def sobject(self, call: Call) -> Response:
        sobject = call.groups["sobject"]
        if call.method == "GET":
            return sf_json(self.backend.sobject_info(sobject, call.version))
        new_id = self.backend.create(sobject, call.json_object())
        return sf_json({"id": new_id, "success": True, "errors": []}, 201)

    def record(self, call: Call) -> Response:
        sobject, record_id = call.groups["sobject"], call.groups["record_id"]
        if call.method == "GET":
            return sf_json(
                self.backend.retrieve(sobject, record_id, call.params.get("fields"), call.version)
            )
        if call.method == "PATCH":
            self.backend.update(sobject, record_id, call.json_object())
        else:
            self.backend.delete(sobject, record_id)
        return Response(status_code=204)

    def blob(self, call: Call) -> Response:
        groups = call.groups
        data = self.backend.blob(groups["sobject"], groups["record_id"], groups["field"])
        return Response(data, media_type=BLOB_CONTENT_TYPE)

    def external(self, call: Call) -> Response:
        sobject, field, value = (call.groups[k] for k in ("sobject", "field", "value"))
        if call.method == "GET":
            return sf_json(self.backend.get_by_external_id(sobject, field, value, call.version))
        record_id, created = self.backend.upsert(
            sobject, field, value, call.json_object(), call.version
        )
        body = {"id": record_id, "success": True, "errors": [], "created": created}
        return sf_json(body, 201 if created else 200)

    def collection(self, call: Call) -> Response:
        if call.method == "DELETE":
            ids = [i for i in call.params.get("ids", "").split(",") if i]
            return sf_json(self.backend.collection_delete(ids, _flag(call.params.get("allOrNone"))))
        data = call.json_object()
        records = data.get("records")
        if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
            raise ApiError(
                400,
                "JSON_PARSER_ERROR",
                "Cannot deserialize instance of List<SObject> from records",
            )
        all_or_none = _flag(data.get("allOrNone"))
        if call.method == "POST":
            return sf_json(self.backend.collection_create(records, all_or_none))
        return sf_json(self.backend.collection_update(records, all_or_none))

    def collection_retrieve(self, call: Call) -> Response:
        if call.method == "GET":
            ids = [i for i in call.params.get("ids", "").split(",") if i]
            fields = [f for f in call.params.get("fields", "").split(",") if f]
        else:
            data = call.json_object()
            ids, fields = list(data.get("ids") or []), list(data.get("fields") or [])
        return sf_json(
            self.backend.collection_retrieve(call.groups["sobject"], ids, fields, call.version)
        )

    def limits(self, call: Call) -> Response:
        return sf_json(self.backend.limits())

    # ---- /services/oauth2 ----------------------------------------------------------------------
    async def token(self, request: Request) -> Response:
        form = dict(request.query_params)
        form.update(parse_qsl((await request.body()).decode("utf-8", "replace")))
        try:
            body = self.backend.oauth_token(form, _basic_auth(request), self.base_url(request))
        except OAuthError as exc:
            return exc.response()
        return sf_json(body)

    async def revoke(self, request: Request) -> Response:
        form = dict(request.query_params)
        form.update(parse_qsl((await request.body()).decode("utf-8", "replace")))
        if not self.backend.revoke(form.get("token", "")):
            return OAuthError(
                "unsupported_token_type", "this token type is not supported"
            ).response()
        return Response(status_code=200)

    # ---- /services/Soap/u/{version} ------------------------------------------------------------
    async def soap_login(self, request: Request) -> Response:
        version = request.path_params["version"]
        try:
            if version not in API_VERSIONS:
                raise LoginFault(
                    "UNSUPPORTED_API_VERSION",
                    f"Invalid Api version specified on URL: {version}",
                    "UnexpectedErrorFault",
                )
            username, password = _login_fields(await request.body())
            session = self.backend.soap_login(username, password)
        except LoginFault as fault:
            return fault.response()
        base = self.base_url(request)
        user = self.backend.record(session.user_id) or {}
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>'
            '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
            'xmlns="urn:partner.soap.sforce.com" '
            'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
            "<soapenv:Body><loginResponse><result>"
            f"<metadataServerUrl>{base}/services/Soap/m/{version}/{ORG_ID}</metadataServerUrl>"
            "<passwordExpired>false</passwordExpired><sandbox>false</sandbox>"
            f"<serverUrl>{base}/services/Soap/u/{version}/{ORG_ID}</serverUrl>"
            f"<sessionId>{session.token}</sessionId>"
            f"<userId>{session.user_id}</userId>"
            "<userInfo>"
            "<currencySymbol>$</currencySymbol>"
            "<orgDefaultCurrencyIsoCode>USD</orgDefaultCurrencyIsoCode>"
            "<organizationId>" + ORG_ID + "</organizationId>"
            "<organizationMultiCurrency>true</organizationMultiCurrency>"
            "<organizationName>Acme Analytics</organizationName>"
            "<sessionSecondsValid>"
            f"{int(self.backend.session_timeout.total_seconds())}</sessionSecondsValid>"
            f"<userEmail>{escape(str(user.get('Email') or ''))}</userEmail>"
            f"<userFullName>{escape(str(user.get('Name') or ''))}</userFullName>"
            f"<userId>{session.user_id}</userId>"
            "<userLanguage>en_US</userLanguage><userLocale>en_US</userLocale>"
            f"<userName>{escape(str(user.get('Username') or ''))}</userName>"
            "<userTimeZone>Etc/UTC</userTimeZone><userType>Standard</userType>"
            "</userInfo></result></loginResponse></soapenv:Body></soapenv:Envelope>"
        )
        return Response(body, media_type="text/xml;charset=UTF-8")


def method_not_allowed(method: str, allowed: list[str]) -> Response:
    message = f"HTTP Method '{method}' not allowed."
    if allowed:
        message += f" Allowed are {','.join(allowed)}"
    headers = {"Allow": ", ".join(allowed)} if allowed else None
    return sf_json([{"errorCode": "METHOD_NOT_ALLOWED", "message": message}], 405, headers)


def _batch_size(headers: dict[str, str]) -> int:
    """``Sforce-Query-Options: batchSize=N`` (Salesforce keeps N within 200..2000)."""
    for option in headers.get("sforce-query-options", "").split(","):
        name, _, value = option.strip().partition("=")
        if name.strip().lower() == "batchsize" and value.strip().isdigit():
            return int(value)
    return DEFAULT_BATCH_SIZE


def _basic_auth(request: Request) -> tuple[str, str] | None:
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, _, secret = base64.b64decode(encoded).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return unquote(user), unquote(secret)


def _login_fields(body: bytes) -> tuple[str | None, str | None]:
    """username and password of a partner ``login`` envelope."""
    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        raise LoginFault(
            "UNKNOWN_EXCEPTION", "Unable to parse the login request", "UnexpectedErrorFault"
        ) from None
    values: dict[str, str | None] = {}
    for element in root.iter():
        local = element.tag.rsplit("}", 1)[-1]
        if local in {"username", "password"}:
            values[local] = element.text
    return values.get("username"), values.get("password")
