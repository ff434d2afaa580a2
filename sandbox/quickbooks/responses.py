"""Thin HTTP handlers of the QuickBooks Online v3 API (rules live in ``models``).

Every ``/v3/company/{realmId}/...`` request is checked the way Intuit's gateway does: the bearer
token must be valid for the realm (401 / 403 bodies from ``oauth.auth_fault``). Writes may carry
``?requestid=`` (at most 50 characters): the first successful answer is kept and a replay in the
same realm gets it back byte for byte without touching anything. ``?minorversion=`` is accepted
on every call and ignored (the emulator speaks minor version 75; lower versions are treated as
75, as Intuit does since 2025).
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from sandbox.core.clock import Clock
from sandbox.quickbooks import exceptions as exc
from sandbox.quickbooks.exceptions import QBOFault, render_time
from sandbox.quickbooks.models import (
    REQUEST_ID_MAX,
    QuickBooksBackend,
    Replay,
    UploadPart,
    dumps,
    loads,
    spec_for,
)
from sandbox.quickbooks.oauth import TokenStore, auth_fault, bearer_token

API = "/v3/company/{realm}"
JSON_TYPE = "application/json;charset=UTF-8"

Handler = Callable[[Request, str, bytes], Response]


def intuit_headers() -> dict[str, str]:
    """The ``intuit_tid`` Intuit puts on every answer (support quotes it)."""
    return {"intuit_tid": secrets.token_hex(16)}


def fault_response(fault: QBOFault, now: Any) -> Response:
    return Response(
        dumps(fault.body(now)), fault.status, media_type=JSON_TYPE, headers=intuit_headers()
    )


def auth_response(problem: str, authorization: str | None, now: Any) -> Response:
    status, body = auth_fault(problem, token=bearer_token(authorization), now=now)
    headers = intuit_headers()
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="Intuit", error="invalid_token"'
    return JSONResponse(body, status_code=status, headers=headers)


class QuickBooksResponses:
    def __init__(self, backend: QuickBooksBackend, tokens: TokenStore, clock: Clock) -> None:
        self.backend = backend
        self.tokens = tokens
        self.clock = clock

    def routes(self) -> list[BaseRoute]:
        api = self._api
        return [
            Route(API + "/query", api(self.query), methods=["GET", "POST"]),
            Route(API + "/batch", api(self.batch), methods=["POST"]),
            Route(API + "/cdc", api(self.cdc), methods=["GET"]),
            Route(API + "/upload", api(self.upload), methods=["POST"]),
            Route(API + "/preferences", api(self.preferences), methods=["GET"]),
            Route(API + "/exchangerate", api(self.exchange_rate), methods=["GET"]),
            Route(API + "/invoice/{id}/send", api(self.send), methods=["POST"]),
            Route(API + "/invoice/{id}/pdf", api(self.pdf), methods=["GET"]),
            Route(API + "/{entity}/{id}", api(self.read), methods=["GET"]),
            Route(API + "/{entity}", api(self.write), methods=["POST"]),
            Route("/_sandbox/files/{realm}/{id}", self.file, methods=["GET"]),
        ]

    # ---- plumbing ----------------------------------------------------------------------------
    def _api(self, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            realm_id = request.path_params["realm"]
            authorization = request.headers.get("authorization")
            problem = self.tokens.check_access(authorization, realm_id)
            if problem is not None:
                return auth_response(problem, authorization, self.clock.now())
            raw = await request.body()
            request_id = request.query_params.get("requestid")
            remember = request.method == "POST" and request_id is not None
            # Under the backend lock: a requestid is checked, the write done, its answer
            # rendered and remembered in one step, whatever else runs meanwhile.
            with self.backend.lock:
                try:
                    if remember and request_id is not None:
                        if len(request_id) > REQUEST_ID_MAX:
                            raise exc.request_id_too_long(request_id)
                        replay = self.backend.replay(realm_id, request_id)
                        if replay is not None:
                            return Response(
                                replay.body,
                                replay.status,
                                media_type=replay.media_type,
                                headers=intuit_headers(),
                            )
                    response = handler(request, realm_id, raw)
                except QBOFault as fault:
                    return fault_response(fault, self.clock.now())
                if remember and request_id is not None and response.status_code == 200:
                    self.backend.remember(
                        realm_id,
                        request_id,
                        Replay(
                            response.status_code, bytes(response.body), response.media_type or ""
                        ),
                    )
            return response

        return endpoint

    def ok(self, payload: dict[str, Any]) -> Response:
        body = {**payload, "time": render_time(self.clock.now())}
        return Response(dumps(body), 200, media_type=JSON_TYPE, headers=intuit_headers())

    @staticmethod
    def json_body(raw: bytes) -> Any:
        try:
            return loads(raw) if raw.strip() else {}
        except ValueError as error:
            raise exc.bad_request(f"Error parsing JSON request body: {error}") from None

    @staticmethod
    def unknown(request: Request) -> QBOFault:
        return exc.unknown_resource(request.url.path, str(request.url))

    # ---- endpoints ---------------------------------------------------------------------------
    def query(self, request: Request, realm_id: str, raw: bytes) -> Response:
        text = request.query_params.get("query")
        if request.method == "POST" and raw.strip():
            text = raw.decode("utf-8", "replace")
        return self.ok({"QueryResponse": self.backend.query(realm_id, text or "")})

    def read(self, request: Request, realm_id: str, raw: bytes) -> Response:
        spec = spec_for(request.path_params["entity"])
        if spec is None:
            raise self.unknown(request)
        obj = self.backend.get(realm_id, spec.name, request.path_params["id"])
        return self.ok({spec.name: obj})

    def write(self, request: Request, realm_id: str, raw: bytes) -> Response:
        spec = spec_for(request.path_params["entity"])
        if spec is None:
            raise self.unknown(request)
        params = request.query_params
        result = self.backend.save(
            realm_id,
            spec.name,
            self.json_body(raw),
            operation=params.get("operation"),
            include=params.get("include"),
        )
        return self.ok({spec.name: result})

    def batch(self, request: Request, realm_id: str, raw: bytes) -> Response:
        answers = self.backend.batch(realm_id, self.json_body(raw))
        return self.ok({"BatchItemResponse": answers})

    def cdc(self, request: Request, realm_id: str, raw: bytes) -> Response:
        params = request.query_params
        changes = self.backend.cdc(realm_id, params.get("entities"), params.get("changedSince"))
        return self.ok({"CDCResponse": [changes]})

    def preferences(self, request: Request, realm_id: str, raw: bytes) -> Response:
        return self.ok({"Preferences": self.backend.singleton(realm_id, "Preferences")})

    def exchange_rate(self, request: Request, realm_id: str, raw: bytes) -> Response:
        params = request.query_params
        rate = self.backend.exchange_rate(
            realm_id, params.get("sourcecurrencycode"), params.get("asofdate")
        )
        return self.ok({"ExchangeRate": rate})

    def send(self, request: Request, realm_id: str, raw: bytes) -> Response:
        invoice = self.backend.send(
            realm_id, request.path_params["id"], request.query_params.get("sendTo")
        )
        return self.ok({"Invoice": invoice})

    def pdf(self, request: Request, realm_id: str, raw: bytes) -> Response:
        invoice = self.backend.get(realm_id, "Invoice", request.path_params["id"])
        company = self.backend.singleton(realm_id, "CompanyInfo")
        return Response(
            invoice_pdf(str(company["CompanyName"]), invoice),
            200,
            media_type="application/pdf",
            headers={
                **intuit_headers(),
                "Content-Disposition": f'attachment; filename="Invoice_{invoice["DocNumber"]}.pdf"',
            },
        )

    def upload(self, request: Request, realm_id: str, raw: bytes) -> Response:
        limit = self.backend.upload_max_bytes
        if len(raw) > limit:
            raise exc.upload_too_large(len(raw), limit)
        parts = parse_multipart(raw, request.headers.get("content-type", ""))
        return self.ok({"AttachableResponse": self.backend.upload(realm_id, parts)})

    async def file(self, request: Request) -> Response:
        """``TempDownloadUri`` of an uploaded attachment (a sandbox stand-in for Intuit's
        short-lived download links)."""
        try:
            data, content_type, name = self.backend.file(
                request.path_params["realm"], request.path_params["id"]
            )
        except QBOFault as fault:
            return fault_response(fault, self.clock.now())
        return Response(
            data,
            media_type=content_type,
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )


# ---- multipart -------------------------------------------------------------------------------
def parse_multipart(body: bytes, content_type: str) -> list[UploadPart]:
    """The parts of a multipart/form-data body. Tolerates what python-quickbooks sends (bare
    ``\\n`` line ends, ``Content-Transfer-Encoding: base64``) as well as RFC 7578 bodies."""
    match = re.search(r'boundary="?([^";]+)"?', content_type)
    if not content_type.lower().startswith("multipart/") or match is None:
        raise exc.bad_request("Content-Type must be multipart/form-data with a boundary")
    delimiter = b"--" + match.group(1).encode()
    parts: list[UploadPart] = []
    for chunk in body.split(delimiter)[1:]:
        if chunk.startswith(b"--"):
            break
        chunk = chunk[2:] if chunk.startswith(b"\r\n") else chunk.lstrip(b"\n")
        head, content = _split_head(chunk)
        headers = {}
        for line in head.decode("utf-8", "replace").splitlines():
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if content.endswith(b"\r\n"):
            content = content[:-2]
        elif content.endswith(b"\n"):
            content = content[:-1]
        disposition = headers.get("content-disposition", "")
        field = re.search(r'\bname="([^"]*)"', disposition)
        filename = re.search(r'\bfilename="([^"]*)"', disposition)
        if headers.get("content-transfer-encoding", "").lower() == "base64":
            try:
                content = base64.b64decode(b"".join(content.split()), validate=True)
            except (binascii.Error, ValueError):
                raise exc.bad_request("Invalid base64 content in the upload") from None
        parts.append(
            UploadPart(
                name=field.group(1) if field else "",
                content_type=headers.get("content-type", "application/octet-stream"),
                data=content,
                filename=filename.group(1) if filename else None,
            )
        )
    return parts


def _split_head(chunk: bytes) -> tuple[bytes, bytes]:
    crlf, lf = chunk.find(b"\r\n\r\n"), chunk.find(b"\n\n")
    if crlf != -1 and (lf == -1 or crlf <= lf):
        return chunk[:crlf], chunk[crlf + 4 :]
    if lf != -1:
        return chunk[:lf], chunk[lf + 2 :]
    return chunk, b""


# ---- invoice PDF -----------------------------------------------------------------------------
def invoice_pdf(company_name: str, invoice: dict[str, Any]) -> bytes:
    """A small, valid one-page PDF of the invoice (Helvetica, WinAnsi text)."""
    currency = (invoice.get("CurrencyRef") or {}).get("value", "")
    lines = [
        company_name,
        "",
        f"INVOICE {invoice.get('DocNumber', '')}",
        f"Bill to: {(invoice.get('CustomerRef') or {}).get('name', '')}",
        f"Date: {invoice.get('TxnDate', '')}    Due: {invoice.get('DueDate', '')}",
        "",
    ]
    for line in invoice.get("Line", []):
        if line.get("DetailType") == "SalesItemLineDetail":
            detail = line["SalesItemLineDetail"]
            lines.append(
                f"{detail['ItemRef'].get('name', '')}  {detail.get('Qty', '')} x "
                f"{detail.get('UnitPrice', '')} = {line['Amount']}"
            )
        elif line.get("DetailType") == "DiscountLineDetail":
            lines.append(f"Discount  -{line['Amount']}")
    tax = (invoice.get("TxnTaxDetail") or {}).get("TotalTax", 0)
    lines += [
        "",
        f"Tax: {tax}",
        f"Total: {invoice.get('TotalAmt', '')} {currency}",
        f"Balance due: {invoice.get('Balance', '')} {currency}",
    ]
    text = "".join(f"({_pdf_text(line)}) Tj T* " for line in lines)
    stream = f"BT /F1 11 Tf 14 TL 72 760 Td {text}ET".encode("latin-1", "replace")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
        b"/Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, obj in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + obj + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


def _pdf_text(text: str) -> str:
    safe = text.encode("latin-1", "replace").decode("latin-1")
    return safe.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
