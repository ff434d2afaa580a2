"""The Salesforce org the emulator serves: records, rules, sessions, limits and query cursors.

One org (``ORG_ID``), one API user (the integration user). Every public method takes the lock:
starlette runs the handlers in a thread pool. Errors are raised as ``ApiError`` (whole request),
``RecordError`` (one record), ``OAuthError`` or ``LoginFault``; the handlers render them.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sandbox.core.clock import Clock
from sandbox.demo_company import ORG_ID, ORG_ID_15
from sandbox.salesforce import content
from sandbox.salesforce.exceptions import (
    REQUEST_LIMIT_EXCEEDED,
    ROLLED_BACK_MESSAGE,
    ApiError,
    LoginFault,
    OAuthError,
    RecordError,
)
from sandbox.salesforce.ids import new_id, normalize_id, object_of
from sandbox.salesforce.query import Record, compile_query
from sandbox.salesforce.schema import (
    CLOSED_STAGES,
    CORPORATE_CURRENCY,
    SCHEMA,
    STAGE_PROBABILITY,
    TEXT_TYPES,
    FieldDef,
    ObjectDef,
)
from sandbox.salesforce.soql import SoqlError
from sandbox.salesforce.values import (
    BadValue,
    coerce,
    number_fits,
    render,
    truncate_ms,
    valid_email,
)

API_VERSIONS = tuple(f"{v}.0" for v in range(50, 65))
DEFAULT_DAILY_API_LIMIT = 100_000
COLLECTION_LIMIT = 200
RETRIEVE_LIMIT = 2000
DEFAULT_BATCH_SIZE = 2000
MIN_BATCH_SIZE = 200
MAX_OPEN_CURSORS = 10
RUNTIME_ID_START = 100_000  # Ids the API assigns start here; seeds use small counters


@dataclass(frozen=True)
class Credentials:
    """The fixed sandbox login (SANDBOX_CONTRACT.md's info-file keys)."""

    username: str = "integration@acme-analytics.example"
    password: str = "SandboxPassw0rd"
    security_token: str = "RbSandboxSecurityTok3n24"
    client_id: str = "3MVG9revbridgeSandboxConnectedAppConsumerKey.AcmeAnalytics0000000000000000001"
    client_secret: str = "5F1E0C3B9A2D4E6F8A7B9C0D1E2F3A4B5C6D7E8F9A0B1C2D3E4F5A6B7C8D9E0F"


@dataclass
class Session:
    token: str
    user_id: str
    issued_at: datetime  # on the sandbox clock (the token answer's ``issued_at``)
    last_used: float  # time.monotonic(): moving the sandbox clock does not end sessions


@dataclass
class _Cursor:
    records: list[dict[str, Any]]
    batch_size: int


def _rolled_back() -> RecordError:
    return RecordError("ALL_OR_NONE_OPERATION_ROLLED_BACK", ROLLED_BACK_MESSAGE)


def _bad_type(error: BadValue) -> RecordError:
    return RecordError(
        "INVALID_TYPE_ON_FIELD_IN_RECORD",
        f"{error.field.label}: value not of required type: {error.raw}",
        [error.field.name],
    )


def _parser_error(error: BadValue) -> ApiError:
    raw = error.raw if isinstance(error.raw, str) else repr(error.raw)
    return ApiError(
        400,
        "JSON_PARSER_ERROR",
        f"Cannot deserialize instance of {error.java_type} from VALUE_STRING value {raw} or "
        "request may be missing a required field at [line:1, column:1]",
    )


class SalesforceBackend:
    """State and rules of the emulated org."""

    def __init__(self, clock: Clock | None = None) -> None:
        self.clock = clock or Clock()
        self.credentials = Credentials()
        self.session_timeout = timedelta(hours=2)
        self.daily_api_limit = DEFAULT_DAILY_API_LIMIT
        self._lock = threading.RLock()
        # Called with (sobject, before, after) of every record a write call changed, once the
        # call committed (sandbox.salesforce.outbound evaluates its workflow rule there).
        self.on_commit: Callable[[list[tuple[str, Record | None, Record | None]]], None] | None
        self.on_commit = None
        self._changed: dict[tuple[str, str], Record | None] | None = None
        self._sessions: dict[str, Session] = {}
        self._refresh_tokens: set[str] = set()
        self.clear()

    # ---- lifecycle ---------------------------------------------------------------------------
    def clear(self) -> None:
        """Drop every record, cursor and counter. Sessions and refresh tokens survive (as a
        caller's cached client would expect); ``expire_sessions()`` ends those."""
        with self._lock:
            self._records: dict[str, dict[str, Record]] = {o.name: {} for o in SCHEMA}
            self._index: dict[str, str] = {}
            self._counters: dict[str, int] = {}
            self._contract_number = 100
            self._cursors: OrderedDict[str, _Cursor] = OrderedDict()
            self._cursor_counter = 0
            self._journal: dict[tuple[str, str], Record | None] | None = None
            self._api_used = 0
            self._api_day = self.clock.today()
            self.api_user_id = ""

    def now(self) -> datetime:
        return truncate_ms(self.clock.now())

    # ---- auth --------------------------------------------------------------------------------
    def _new_session(self) -> Session:
        token = f"{ORG_ID_15}!AQ" + secrets.token_urlsafe(72).replace("-", ".").replace("_", "")
        session = Session(token, self.api_user_id, self.clock.now(), time.monotonic())
        self._sessions[token] = session
        return session

    def session_for(self, token: str) -> Session | None:
        """The live session of an access token (and mark it used), or None."""
        with self._lock:
            session = self._sessions.get(token)
            if session is None:
                return None
            now = time.monotonic()
            if now - session.last_used > self.session_timeout.total_seconds():
                del self._sessions[token]
                return None
            session.last_used = now
            return session

    def expire_sessions(self) -> None:
        """Invalidate every access token (as an admin's "expire all sessions")."""
        with self._lock:
            self._sessions.clear()

    def issue_refresh_token(self) -> str:
        """A refresh token, as a web-server OAuth flow would have handed the caller once."""
        with self._lock:
            token = f"5Aep861{secrets.token_urlsafe(60).replace('-', '.').replace('_', '')}"
            self._refresh_tokens.add(token)
            return token

    def revoke(self, token: str) -> bool:
        with self._lock:
            found = self._sessions.pop(token, None) is not None or token in self._refresh_tokens
            self._refresh_tokens.discard(token)
            return found

    def _check_password(self, username: str | None, password: str | None) -> bool:
        creds = self.credentials
        return (
            username is not None
            and username.lower() == creds.username.lower()
            and password == creds.password + creds.security_token
        )

    def soap_login(self, username: str | None, password: str | None) -> Session:
        """Partner SOAP ``login``: the password carries the security token appended."""
        with self._lock:
            if not self._check_password(username, password):
                raise LoginFault(
                    "INVALID_LOGIN",
                    "Invalid username, password, security token; or user locked out.",
                )
            return self._new_session()

    def oauth_token(
        self, form: Mapping[str, str], basic: tuple[str, str] | None, instance_url: str
    ) -> dict[str, Any]:
        """``POST /services/oauth2/token`` for the password, client_credentials and
        refresh_token grants."""
        with self._lock:
            creds = self.credentials
            grant = form.get("grant_type")
            client_id, client_secret = basic or (form.get("client_id"), form.get("client_secret"))
            if grant not in {"password", "client_credentials", "refresh_token"}:
                raise OAuthError("unsupported_grant_type", "grant type not supported")
            if client_id != creds.client_id:
                raise OAuthError("invalid_client_id", "client identifier invalid")
            secret_ok = client_secret == creds.client_secret
            if grant == "refresh_token":
                if client_secret is not None and not secret_ok:
                    raise OAuthError("invalid_client", "invalid client credentials")
                if form.get("refresh_token") not in self._refresh_tokens:
                    raise OAuthError("invalid_grant", "expired access/refresh token")
            elif not secret_ok:
                raise OAuthError("invalid_client", "invalid client credentials")
            elif grant == "password" and not self._check_password(
                form.get("username"), form.get("password")
            ):
                raise OAuthError("invalid_grant", "authentication failure")
            session = self._new_session()
            identity = f"{instance_url}/id/{ORG_ID}/{session.user_id}"
            issued = str(int(session.issued_at.timestamp() * 1000))
            signature = base64.b64encode(
                hmac.new(
                    creds.client_secret.encode(), (identity + issued).encode(), hashlib.sha256
                ).digest()
            ).decode()
            body: dict[str, Any] = {
                "access_token": session.token,
                "instance_url": instance_url,
                "id": identity,
                "token_type": "Bearer",
                "issued_at": issued,
                "signature": signature,
            }
            if grant == "client_credentials":
                body["scope"] = "api"
            return body

    # ---- API usage ---------------------------------------------------------------------------
    def count_api_call(self) -> str:
        """Count one REST call against the daily limit; the ``Sforce-Limit-Info`` value.

        Raises 403 REQUEST_LIMIT_EXCEEDED once the limit is used up.
        """
        with self._lock:
            today = self.clock.today()
            if today != self._api_day:
                self._api_day, self._api_used = today, 0
            if self._api_used >= self.daily_api_limit:
                raise ApiError(403, body=REQUEST_LIMIT_EXCEEDED)
            self._api_used += 1
            return self.limit_info()

    def limit_info(self) -> str:
        with self._lock:
            return f"api-usage={self._api_used}/{self.daily_api_limit}"

    @property
    def api_used(self) -> int:
        return self._api_used

    def set_api_used(self, used: int) -> None:
        """Set today's count of API calls (tests of the daily limit)."""
        with self._lock:
            self._api_used = max(used, 0)

    def limits(self) -> dict[str, dict[str, int]]:
        with self._lock:
            stored = sum(
                1 for rows in self._records.values() for r in rows.values() if not r["IsDeleted"]
            )

            def pair(maximum: int, used: int = 0) -> dict[str, int]:
                return {"Max": maximum, "Remaining": max(maximum - used, 0)}

            return {
                "ConcurrentAsyncGetReportInstances": pair(200),
                "ConcurrentSyncReportRuns": pair(20),
                "DailyApiRequests": pair(self.daily_api_limit, self._api_used),
                "DailyAsyncApexExecutions": pair(250_000),
                "DailyBulkApiBatches": pair(15_000),
                "DailyBulkV2QueryFileStorageMB": pair(976_562),
                "DailyBulkV2QueryJobs": pair(10_000),
                "DailyStreamingApiEvents": pair(1_000_000),
                "DataStorageMB": pair(1024, stored * 2 // 1024),
                "FileStorageMB": pair(1024),
                "HourlyODataCallout": pair(20_000),
                "HourlyTimeBasedWorkflow": pair(1000),
                "SingleEmail": pair(5000),
            }

    # ---- record access for queries (RecordSource) --------------------------------------------
    def rows(self, sobject: str, include_deleted: bool) -> Iterable[Record]:
        return [r for r in self._records[sobject].values() if include_deleted or not r["IsDeleted"]]

    def find(self, record_id: str) -> tuple[str, Record] | None:
        sobject = self._index.get(record_id)
        if sobject is None:
            return None
        record = self._records[sobject][record_id]
        return None if record["IsDeleted"] else (sobject, record)

    def record(self, record_id: str) -> Record | None:
        """A copy of a stored record (deleted ones included), for tests and seeds."""
        with self._lock:
            normalized = normalize_id(record_id)
            sobject = self._index.get(normalized or "")
            if sobject is None or normalized is None:
                return None
            return dict(self._records[sobject][normalized])

    def set_modified(self, record_id: str, when: datetime) -> None:
        """Set a record's LastModifiedDate and SystemModstamp (seeds; watermark tests)."""
        with self._lock:
            normalized = normalize_id(record_id) or ""
            sobject = self._index[normalized]
            stamp = truncate_ms(when)
            record = self._records[sobject][normalized]
            self._put(sobject, {**record, "LastModifiedDate": stamp, "SystemModstamp": stamp})

    def count(self, sobject: str, include_deleted: bool = False) -> int:
        with self._lock:
            return len(list(self.rows(SCHEMA[sobject].name, include_deleted)))

    # ---- describe ----------------------------------------------------------------------------
    def object_def(self, sobject: str) -> ObjectDef:
        obj = SCHEMA.get(sobject)
        if obj is None:
            raise ApiError.not_found()
        return obj

    def describe_global(self, version: str) -> dict[str, Any]:
        return {
            "encoding": "UTF-8",
            "maxBatchSize": COLLECTION_LIMIT,
            "sobjects": [o.describe_global(version) for o in sorted(SCHEMA, key=lambda o: o.name)],
        }

    def sobject_info(self, sobject: str, version: str) -> dict[str, Any]:
        obj = self.object_def(sobject)
        return {"objectDescribe": obj.describe_global(version), "recentItems": []}

    def describe(self, sobject: str, version: str) -> dict[str, Any]:
        with self._lock:
            obj = self.object_def(sobject)
            base = obj.url(version)
            result = obj.describe_global(version)
            result.update(
                {
                    "actionOverrides": [],
                    "childRelationships": [c.describe() for c in obj.children],
                    "compactLayoutable": obj.createable,
                    "fields": [f.describe() for f in obj.fields.values()],
                    "listviewable": None,
                    "lookupLayoutable": None,
                    "namedLayoutInfos": [],
                    "networkScopeFieldName": None,
                    "recordTypeInfos": self._record_type_infos(obj, base),
                    "searchLayoutable": True,
                    "sobjectDescribeOption": "FULL",
                    "supportedScopes": [
                        {"label": "All " + obj.label_plural.lower(), "name": "everything"}
                    ],
                }
            )
            result["urls"] = {
                **result["urls"],
                "layouts": f"{base}/describe/layouts",
                "compactLayouts": f"{base}/describe/compactLayouts",
            }
            return result

    def _record_type_infos(self, obj: ObjectDef, base: str) -> list[dict[str, Any]]:
        def info(
            rt_id: str, name: str, developer_name: str, master: bool, default: bool
        ) -> dict[str, Any]:
            return {
                "active": True,
                "available": True,
                "defaultRecordTypeMapping": default,
                "developerName": developer_name,
                "master": master,
                "name": name,
                "recordTypeId": rt_id,
                "urls": {"layout": f"{base}/describe/layouts/{rt_id}"},
            }

        types = self._record_types(obj.name)
        infos = [
            info(rt["Id"], rt["Name"], rt["DeveloperName"], False, i == 0)
            for i, rt in enumerate(types)
        ]
        infos.append(info("012000000000000AAA", "Master", "Master", True, not types))
        return infos

    def _record_types(self, sobject: str) -> list[Record]:
        return [
            r
            for r in self._records["RecordType"].values()
            if r["SobjectType"] == sobject and r["IsActive"] and not r["IsDeleted"]
        ]

    # ---- rendering ---------------------------------------------------------------------------
    def render_record(self, obj: ObjectDef, record: Record, version: str) -> dict[str, Any]:
        """A record with every field, as ``GET sobjects/{Object}/{id}`` answers."""
        out: dict[str, Any] = {
            "attributes": {"type": obj.name, "url": f"{obj.url(version)}/{record['Id']}"}
        }
        for f in obj.fields.values():
            if f.type == "base64":
                out[f.name] = content.blob_url(version, obj.name, record["Id"], f.name)
            else:
                out[f.name] = render(f, record.get(f.name))
        return out

    def blob(self, sobject: str, record_id: str, field: str) -> bytes:
        """``GET sobjects/{Object}/{id}/{BlobField}``: the bytes (ContentVersion.VersionData)."""
        with self._lock:
            obj = self.object_def(sobject)
            name = content.blob_field(obj, field)
            return bytes(self._target(obj, record_id, write=False)[name])

    # ---- queries -----------------------------------------------------------------------------
    def query(
        self,
        soql: str,
        *,
        include_deleted: bool = False,
        batch_size: int = DEFAULT_BATCH_SIZE,
        version: str = "62.0",
    ) -> dict[str, Any]:
        """Run SOQL; the first page (``done``, ``totalSize``, ``nextRecordsUrl``, ``records``)."""
        with self._lock:
            try:
                compiled = compile_query(soql, SCHEMA, self, self.clock.today(), version)
                content.check_link_query(compiled.obj.name, compiled.query.where)
                page = compiled.run(include_deleted)
            except SoqlError as exc:
                raise ApiError(400, exc.code, exc.message) from None
            size = min(max(batch_size, MIN_BATCH_SIZE), DEFAULT_BATCH_SIZE)
            if len(page.records) <= size:
                return {"totalSize": page.total_size, "done": True, "records": page.records}
            self._cursor_counter += 1
            # a query locator looks like an Id with key prefix 01g
            locator = "01g" + new_id("Organization", self._cursor_counter)[3:]
            self._cursors[locator] = _Cursor(page.records, size)
            while len(self._cursors) > MAX_OPEN_CURSORS:
                self._cursors.popitem(last=False)
            return self._page(locator, 0, version)

    def query_more(self, locator: str, version: str) -> dict[str, Any]:
        """The page a ``nextRecordsUrl`` (``<locator>-<position>``) points at."""
        with self._lock:
            key, _, position = locator.rpartition("-")
            if key not in self._cursors or not position.isdigit():
                raise ApiError(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
            self._cursors.move_to_end(key)
            return self._page(key, int(position), version)

    def _page(self, locator: str, start: int, version: str) -> dict[str, Any]:
        cursor = self._cursors[locator]
        stop = start + cursor.batch_size
        body: dict[str, Any] = {
            "totalSize": len(cursor.records),
            "done": stop >= len(cursor.records),
        }
        if not body["done"]:
            body["nextRecordsUrl"] = f"/services/data/v{version}/query/{locator}-{stop}"
        body["records"] = cursor.records[start:stop]
        return body

    # ---- single-record REST --------------------------------------------------------------------
    def _target(self, obj: ObjectDef, raw_id: str, *, write: bool) -> Record:
        """The record a ``sobjects/{Object}/{id}`` URL names, or the REST error for it."""
        normalized = normalize_id(raw_id)
        if normalized is None:
            raise ApiError.not_found(
                f"Provided external ID field does not exist or is not accessible: {raw_id}"
            )
        if object_of(normalized) != obj.name:
            if write:
                raise ApiError.from_record(
                    RecordError(
                        "MALFORMED_ID",
                        f"{obj.label} ID: id value of incorrect type: {raw_id}",
                        ["Id"],
                    )
                )
            raise ApiError.not_found()
        record = self._records[obj.name].get(normalized)
        if record is None:
            raise ApiError.not_found()
        if record["IsDeleted"]:
            if write:
                raise ApiError(
                    404,
                    body=[
                        {
                            "errorCode": "ENTITY_IS_DELETED",
                            "message": "entity is deleted",
                            "fields": [],
                        }
                    ],
                )
            raise ApiError.not_found()
        return record

    def retrieve(
        self, sobject: str, record_id: str, fields: str | None, version: str
    ) -> dict[str, Any]:
        with self._lock:
            obj = self.object_def(sobject)
            record = self._target(obj, record_id, write=False)
            if not fields:
                return self.render_record(obj, record, version)
            soql = f"SELECT {fields} FROM {obj.name} WHERE Id = '{record['Id']}'"
            try:
                page = compile_query(soql, SCHEMA, self, self.clock.today(), version).run()
            except SoqlError as exc:
                raise ApiError(400, exc.code, exc.message) from None
            return page.records[0]

    def create(self, sobject: str, body: Mapping[str, Any]) -> str:
        """``POST sobjects/{Object}``; the new Id."""
        with self._write():
            obj = self.object_def(sobject)
            try:
                return self._create(obj, body)
            except BadValue as exc:
                raise _parser_error(exc) from None
            except RecordError as exc:
                raise ApiError.from_record(exc) from None

    def update(self, sobject: str, record_id: str, body: Mapping[str, Any]) -> None:
        """``PATCH sobjects/{Object}/{id}``."""
        with self._write():
            obj = self.object_def(sobject)
            record = self._target(obj, record_id, write=True)
            try:
                self._update(obj, record, body)
            except BadValue as exc:
                raise _parser_error(exc) from None
            except RecordError as exc:
                raise ApiError.from_record(exc) from None

    def delete(self, sobject: str, record_id: str) -> None:
        """``DELETE sobjects/{Object}/{id}`` (to the recycle bin: queryAll still sees it)."""
        with self._write():
            obj = self.object_def(sobject)
            record = self._target(obj, record_id, write=True)
            try:
                self._delete(obj, record)
            except RecordError as exc:
                raise ApiError.from_record(exc) from None

    def _external_matches(
        self, obj: ObjectDef, field_name: str, value: str
    ) -> tuple[FieldDef, list[Record]]:
        f = obj.field(field_name)
        if f is None or not (f.external_id or f.name == "Id"):
            raise ApiError.not_found(
                f"Provided external ID field does not exist or is not accessible: {field_name}"
            )
        if f.name == "Id":
            normalized = normalize_id(value)
            found = self.find(normalized) if normalized else None
            return f, [found[1]] if found and found[0] == obj.name else []
        wanted = value.casefold()
        return f, [
            r
            for r in self.rows(obj.name, False)
            if isinstance(r.get(f.name), str) and r[f.name].casefold() == wanted
        ]

    def _more_than_one(self, obj: ObjectDef, matches: list[Record], version: str) -> ApiError:
        return ApiError(300, body=[f"{obj.url(version)}/{r['Id']}" for r in matches])

    def get_by_external_id(
        self, sobject: str, field_name: str, value: str, version: str
    ) -> dict[str, Any]:
        with self._lock:
            obj = self.object_def(sobject)
            _, matches = self._external_matches(obj, field_name, value)
            if not matches:
                raise ApiError.not_found()
            if len(matches) > 1:
                raise self._more_than_one(obj, matches, version)
            return self.render_record(obj, matches[0], version)

    def upsert(
        self, sobject: str, field_name: str, value: str, body: Mapping[str, Any], version: str
    ) -> tuple[str, bool]:
        """``PATCH sobjects/{Object}/{ExternalIdField}/{value}``: (id, created)."""
        with self._write():
            obj = self.object_def(sobject)
            f, matches = self._external_matches(obj, field_name, value)
            if len(matches) > 1:
                raise self._more_than_one(obj, matches, version)
            data = {k: v for k, v in body.items() if k.lower() != f.name.lower()}
            try:
                if matches:
                    self._update(obj, matches[0], data)
                    return matches[0]["Id"], False
                if f.name == "Id":
                    raise ApiError.not_found()
                return self._create(obj, {**data, f.name: value}), True
            except BadValue as exc:
                raise _parser_error(exc) from None
            except RecordError as exc:
                raise ApiError.from_record(exc) from None

    # ---- sObject Collections -------------------------------------------------------------------
    def _collection(
        self, items: list[Any], all_or_none: bool, one: Callable[[Any], dict[str, Any]]
    ) -> list[dict[str, Any]]:
        if len(items) > COLLECTION_LIMIT:
            raise ApiError(
                400,
                "EXCEEDED_ID_LIMIT",
                "record limit reached. cannot submit more than 200 records into this call",
            )
        if not all_or_none:
            return [one(item) for item in items]
        with self._transaction() as journal:
            results = [one(item) for item in items]
            if all(r["success"] for r in results):
                return results
            journal.rollback()
        return [
            r
            if not r["success"]
            else {**r, "success": False, "errors": [_rolled_back().collection()]}
            for r in results
        ]

    def collection_create(
        self, records: list[Mapping[str, Any]], all_or_none: bool
    ) -> list[dict[str, Any]]:
        def one(raw: Mapping[str, Any]) -> dict[str, Any]:
            try:
                obj = self._typed(raw)
                new = self._create(obj, raw)
            except BadValue as exc:
                return {"success": False, "errors": [_bad_type(exc).collection()]}
            except RecordError as exc:
                return {"success": False, "errors": [exc.collection()]}
            return {"id": new, "success": True, "errors": []}

        with self._write():
            results = self._collection(records, all_or_none, one)
            return [{k: v for k, v in r.items() if k != "id" or r["success"]} for r in results]

    def collection_update(
        self, records: list[Mapping[str, Any]], all_or_none: bool
    ) -> list[dict[str, Any]]:
        def one(raw: Mapping[str, Any]) -> dict[str, Any]:
            given = raw.get("Id", raw.get("id"))
            result: dict[str, Any] = {"id": given} if isinstance(given, str) else {}
            try:
                obj, record = self._update_target(raw, given)
                result["id"] = record["Id"]
                self._update(obj, record, raw)
            except BadValue as exc:
                return {**result, "success": False, "errors": [_bad_type(exc).collection()]}
            except RecordError as exc:
                return {**result, "success": False, "errors": [exc.collection()]}
            return {**result, "success": True, "errors": []}

        with self._write():
            return self._collection(records, all_or_none, one)

    def collection_delete(self, ids: list[str], all_or_none: bool) -> list[dict[str, Any]]:
        def one(raw_id: str) -> dict[str, Any]:
            normalized = normalize_id(raw_id)
            try:
                if normalized is None:
                    raise RecordError("MALFORMED_ID", f"malformed id {raw_id}")
                sobject = self._index.get(normalized)
                if sobject is None:
                    raise RecordError("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id")
                record = self._records[sobject][normalized]
                if record["IsDeleted"]:
                    raise RecordError("ENTITY_IS_DELETED", "entity is deleted")
                self._delete(SCHEMA[sobject], record)
            except RecordError as exc:
                return {"id": normalized or raw_id, "success": False, "errors": [exc.collection()]}
            return {"id": normalized, "success": True, "errors": []}

        with self._write():
            return self._collection(ids, all_or_none, one)

    def collection_retrieve(
        self, sobject: str, ids: list[str], fields: list[str], version: str
    ) -> list[dict[str, Any] | None]:
        with self._lock:
            obj = self.object_def(sobject)
            if not fields:
                raise ApiError(400, "INVALID_FIELD", "The 'fields' parameter is required")
            if len(ids) > RETRIEVE_LIMIT:
                raise ApiError(
                    400,
                    "EXCEEDED_ID_LIMIT",
                    f"record limit reached. cannot retrieve more than {RETRIEVE_LIMIT}"
                    " records in this call",
                )
            soql = f"SELECT {', '.join(fields)} FROM {obj.name}"
            try:
                compiled = compile_query(soql, SCHEMA, self, self.clock.today(), version)
            except SoqlError as exc:
                raise ApiError(400, exc.code, exc.message) from None
            rendered = {r["attributes"]["url"].rsplit("/", 1)[1]: r for r in compiled.run().records}
            out: list[dict[str, Any] | None] = []
            for raw in ids:
                normalized = normalize_id(raw)
                if normalized is None:
                    raise ApiError(400, "MALFORMED_ID", f"malformed id {raw}")
                out.append(rendered.get(normalized))
            return out

    def _typed(self, raw: Mapping[str, Any]) -> ObjectDef:
        attributes = raw.get("attributes")
        sobject = attributes.get("type") if isinstance(attributes, Mapping) else None
        if not sobject:
            raise RecordError("INVALID_TYPE", "sObject type must be set in attributes.type")
        obj = SCHEMA.get(str(sobject))
        if obj is None:
            raise RecordError("INVALID_TYPE", f"sObject type '{sobject}' is not supported.")
        return obj

    def _update_target(self, raw: Mapping[str, Any], given: Any) -> tuple[ObjectDef, Record]:
        if not isinstance(given, str) or not given:
            raise RecordError("MISSING_ARGUMENT", "Id not specified in an update call")
        attributes = raw.get("attributes")
        named = attributes.get("type") if isinstance(attributes, Mapping) else None
        normalized = normalize_id(given)
        obj = SCHEMA.get(str(named)) if named else None
        label = obj.label if obj else "Record"
        if normalized is None or (obj is not None and object_of(normalized) != obj.name):
            raise RecordError(
                "MALFORMED_ID", f"{label} ID: id value of incorrect type: {given}", ["Id"]
            )
        sobject = self._index.get(normalized)
        if sobject is None:
            raise RecordError("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id")
        record = self._records[sobject][normalized]
        if record["IsDeleted"]:
            raise RecordError("ENTITY_IS_DELETED", "entity is deleted")
        return SCHEMA[sobject], record

    # ---- transactions ------------------------------------------------------------------------
    @contextmanager
    def _transaction(self) -> Iterator[_Journal]:
        outer = self._journal
        self._journal = {}
        journal = _Journal(self, self._journal)
        try:
            yield journal
        finally:
            self._journal = outer

    @contextmanager
    def _write(self) -> Iterator[None]:
        """The lock, for a write call; the outermost one reports its changes to ``on_commit``
        (a rolled-back record compares equal to its before image and fires nothing)."""
        with self._lock:
            if self.on_commit is None or self._changed is not None:
                yield
                return
            self._changed = {}
            try:
                yield
            finally:
                changed, self._changed = self._changed, None
                changes = [
                    (sobject, before, self._records[sobject].get(record_id))
                    for (sobject, record_id), before in changed.items()
                ]
                self.on_commit([c for c in changes if c[1] != c[2]])

    def _put(self, sobject: str, record: Record) -> None:
        key = (sobject, record["Id"])
        if self._changed is not None and key not in self._changed:
            self._changed[key] = self._records[sobject].get(record["Id"])
        if self._journal is not None and key not in self._journal:
            old = self._records[sobject].get(record["Id"])
            self._journal[key] = copy.copy(old) if old is not None else None
        self._records[sobject][record["Id"]] = record
        self._index[record["Id"]] = sobject

    def _restore(self, entries: dict[tuple[str, str], Record | None]) -> None:
        for (sobject, record_id), old in entries.items():
            if old is None:
                self._records[sobject].pop(record_id, None)
                self._index.pop(record_id, None)
            else:
                self._records[sobject][record_id] = old

    # ---- writes ------------------------------------------------------------------------------
    def _values(self, obj: ObjectDef, body: Mapping[str, Any], creating: bool) -> dict[str, Any]:
        """The written fields, typed; unknown and read-only fields are refused."""
        values: dict[str, Any] = {}
        readonly: list[str] = []
        for key, raw in body.items():
            if key == "attributes":
                continue
            f = obj.field(key)
            if f is None:
                raise RecordError(
                    "INVALID_FIELD", f"No such column '{key}' on sobject of type {obj.name}"
                )
            if f.name == "Id":
                if creating:
                    raise RecordError(
                        "INVALID_FIELD", "cannot specify Id in an insert call", ["Id"]
                    )
                continue
            if not (f.createable if creating else f.updateable):
                readonly.append(f.name)
                continue
            values[f.name] = coerce(f, raw)
        if readonly:
            raise RecordError(
                "INVALID_FIELD_FOR_INSERT_UPDATE",
                f"Unable to create/update fields: {', '.join(readonly)}. Please check the security "
                "settings of this field and verify that it is read/write for your profile or "
                "permission set.",
                readonly,
            )
        for name, value in values.items():
            values[name] = self._checked(obj.fields[name], value)
        return values

    def _checked(self, f: FieldDef, value: Any) -> Any:
        """Length, e-mail, picklist, range and reference checks of one typed value."""
        if value is None:
            return None
        if f.type in TEXT_TYPES:
            if len(value) > f.length:
                raise RecordError(
                    "STRING_TOO_LONG",
                    f"{f.label}: data value too large: {value} (max length={f.length})",
                    [f.name],
                )
            if f.type == "email" and not valid_email(value):
                raise RecordError(
                    "INVALID_EMAIL_ADDRESS", f"{f.label}: invalid email address: {value}", [f.name]
                )
            if f.restricted and value not in f.picklist:
                raise RecordError(
                    "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                    f"{f.label}: bad value for restricted picklist field: {value}",
                    [f.name],
                )
        elif f.type in {"currency", "double", "percent", "int"}:
            if not number_fits(f, value):
                raise RecordError(
                    "NUMBER_OUTSIDE_VALID_RANGE",
                    f"{f.label}: value outside of valid range on numeric field: {value}",
                    [f.name],
                )
        elif f.type == "reference":
            return self._reference(f, value)
        return value

    def _reference(self, f: FieldDef, value: str) -> str:
        normalized = normalize_id(value)
        if normalized is None:
            raise RecordError(
                "MALFORMED_ID", f"{f.label}: id value of incorrect type: {value}", [f.name]
            )
        if object_of(normalized) not in f.reference_to:
            raise RecordError(
                "FIELD_INTEGRITY_EXCEPTION",
                f"{f.label}: id value of incorrect type: {value}",
                [f.name],
            )
        sobject = self._index.get(normalized)
        target = self._records[sobject].get(normalized) if sobject else None
        if f.name == "RecordTypeId" and (
            target is None or target["IsDeleted"] or not target["IsActive"]
        ):
            raise RecordError(
                "INVALID_CROSS_REFERENCE_KEY",
                f"{f.label}: this ID value isn't valid for the user: {value}",
                [f.name],
            )
        if target is None:
            raise RecordError("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id")
        if target["IsDeleted"]:
            raise RecordError("ENTITY_IS_DELETED", "entity is deleted", [f.name])
        return normalized

    def _create(self, obj: ObjectDef, body: Mapping[str, Any]) -> str:
        if not obj.createable:
            raise RecordError("INVALID_TYPE_FOR_OPERATION", "entity type cannot be inserted")
        values = self._values(obj, body, creating=True)
        self._counters[obj.name] = self._counters.get(obj.name, RUNTIME_ID_START) + 1
        return self.insert(obj.name, values, record_id=new_id(obj.name, self._counters[obj.name]))

    def insert(
        self,
        sobject: str,
        values: Mapping[str, Any],
        *,
        record_id: str | None = None,
        created: datetime | None = None,
        modified: datetime | None = None,
    ) -> str:
        """Store a new record from typed values, running the object's rules (seeds use this
        directly, with their own Ids and timestamps)."""
        with self._write():
            obj = SCHEMA[sobject]
            if record_id is None:
                self._counters[obj.name] = self._counters.get(obj.name, RUNTIME_ID_START) + 1
                record_id = new_id(obj.name, self._counters[obj.name])
            record: Record = dict.fromkeys(obj.fields)
            record.update(self._defaults(obj))
            record.update(values)
            record["Id"] = record_id
            self._apply_rules(obj, record, None, set(values))
            self._require(obj, record)
            self._unique(obj, record)
            created = truncate_ms(created) if created else self.now()
            stamp = truncate_ms(modified) if modified else created
            record.update(
                {
                    "IsDeleted": False,
                    "CreatedDate": created,
                    "CreatedById": self.api_user_id,
                    "LastModifiedDate": stamp,
                    "LastModifiedById": self.api_user_id,
                    "SystemModstamp": stamp,
                }
            )
            self._put(obj.name, record)
            self._after_save(obj, record)
            return record_id

    def _defaults(self, obj: ObjectDef) -> dict[str, Any]:
        values: dict[str, Any] = {f.name: False for f in obj.fields.values() if f.type == "boolean"}
        if "OwnerId" in obj.fields:
            values["OwnerId"] = self.api_user_id
        if "CurrencyIsoCode" in obj.fields:
            values["CurrencyIsoCode"] = CORPORATE_CURRENCY
        if obj.name == "User":
            values["IsActive"] = True
        if obj.name == "Contract":
            values["Status"] = "Draft"
        if obj.name == "Task":
            values.update(Status="Not Started", Priority="Normal")
        if obj.name == "Opportunity":
            types = self._record_types("Opportunity")
            values["RecordTypeId"] = types[0]["Id"] if types else None
        return values

    def _update(self, obj: ObjectDef, current: Record, body: Mapping[str, Any]) -> None:
        if not obj.updateable:
            raise RecordError("INVALID_TYPE_FOR_OPERATION", "entity type cannot be updated")
        values = self._values(obj, body, creating=False)
        record = dict(current)
        record.update(values)
        self._apply_rules(obj, record, current, set(values))
        self._require(obj, record)
        self._unique(obj, record)
        now = self.now()
        record.update(LastModifiedDate=now, LastModifiedById=self.api_user_id, SystemModstamp=now)
        self._put(obj.name, record)
        self._after_save(obj, record)

    def _delete(self, obj: ObjectDef, record: Record, *, cascading: bool = False) -> None:
        if not obj.deletable and not cascading:  # a ContentVersion goes with its document
            raise RecordError("INVALID_TYPE_FOR_OPERATION", "entity type cannot be deleted")
        if obj.name == "Pricebook2" and record["IsStandard"]:
            raise RecordError(
                "STANDARD_PRICEBOOK_DELETE_NOT_ALLOWED", "The standard price book cannot be deleted"
            )
        now = self.now()
        deleted = {
            **record,
            "IsDeleted": True,
            "LastModifiedDate": now,
            "SystemModstamp": now,
            "LastModifiedById": self.api_user_id,
        }
        self._put(obj.name, deleted)
        for rel in obj.children:
            if rel.cascade_delete:
                for child in list(self.rows(rel.child_sobject, False)):
                    if child.get(rel.field) == record["Id"]:
                        self._delete(SCHEMA[rel.child_sobject], child, cascading=True)
        if obj.name == "OpportunityLineItem" and not cascading:
            self._roll_up(record["OpportunityId"])

    def _require(self, obj: ObjectDef, record: Record) -> None:
        missing = [
            f.name
            for f in obj.fields.values()
            if (f.required or (not f.nillable and f.writable)) and record.get(f.name) is None
        ]
        if missing:
            raise RecordError(
                "REQUIRED_FIELD_MISSING",
                f"Required fields are missing: [{', '.join(missing)}]",
                missing,
            )

    def _unique(self, obj: ObjectDef, record: Record) -> None:
        for f in obj.fields.values():
            value = record.get(f.name)
            if not f.unique or value is None:
                continue
            for other in self.rows(obj.name, False):
                if (
                    other["Id"] != record["Id"]
                    and str(other.get(f.name) or "").casefold() == str(value).casefold()
                ):
                    raise RecordError(
                        "DUPLICATE_VALUE",
                        f"duplicate value found: {f.name} duplicates value on record with id: "
                        f"{other['Id']}",
                    )

    # ---- object rules ------------------------------------------------------------------------
    def _apply_rules(
        self, obj: ObjectDef, record: Record, old: Record | None, written: set[str]
    ) -> None:
        rule = getattr(self, f"_rules_{obj.name.lower()}", None)
        if rule is not None:
            rule(record, old, written)

    def _rules_user(self, record: Record, old: Record | None, written: set[str]) -> None:
        record["Name"] = " ".join(p for p in (record["FirstName"], record["LastName"]) if p)

    _rules_contact = _rules_user

    def _rules_opportunity(self, record: Record, old: Record | None, written: set[str]) -> None:
        stage = record["StageName"]
        if (
            stage in STAGE_PROBABILITY
            and "Probability" not in written
            and (old is None or old["StageName"] != stage)
        ):
            record["Probability"] = Decimal(STAGE_PROBABILITY[stage])
        record["IsClosed"] = stage in CLOSED_STAGES
        record["IsWon"] = CLOSED_STAGES.get(stage, False)
        if old is not None and self._line_items(record["Id"]):
            if "Amount" in written and record["Amount"] != old["Amount"]:
                raise RecordError(
                    "FIELD_INTEGRITY_EXCEPTION",
                    "field integrity exception: Amount (an opportunity with products takes its "
                    "amount from its products)",
                    ["Amount"],
                )
            if record["CurrencyIsoCode"] != old["CurrencyIsoCode"]:
                raise RecordError(
                    "FIELD_INTEGRITY_EXCEPTION",
                    "field integrity exception: CurrencyIsoCode (an opportunity with products "
                    "cannot change its currency)",
                    ["CurrencyIsoCode"],
                )

    def _rules_opportunitylineitem(
        self, record: Record, old: Record | None, written: set[str]
    ) -> None:
        opp_found = self.find(record["OpportunityId"] or "")
        entry_found = self.find(record["PricebookEntryId"] or "")
        if opp_found is None or entry_found is None:
            return  # REQUIRED_FIELD_MISSING follows
        opp, entry = opp_found[1], entry_found[1]
        if old is None:
            problem = None
            if not entry["IsActive"]:
                problem = "pricebook entry is inactive"
            elif opp["Pricebook2Id"] not in (None, entry["Pricebook2Id"]):
                problem = (
                    "pricebook entry is in a different pricebook than the one assigned "
                    "to the opportunity"
                )
            elif entry["CurrencyIsoCode"] != opp["CurrencyIsoCode"]:
                problem = "pricebook entry currency code does not match opportunity currency code"
            if problem:
                raise RecordError(
                    "FIELD_INTEGRITY_EXCEPTION",
                    f"field integrity exception: PricebookEntryId ({problem})",
                    ["PricebookEntryId"],
                )
        if record["Quantity"] is not None and record["Quantity"] == 0:
            raise RecordError(
                "FIELD_INTEGRITY_EXCEPTION",
                "field integrity exception: Quantity (quantity must be nonzero)",
                ["Quantity"],
            )
        product = self._records["Product2"][entry["Product2Id"]]
        record.update(
            Product2Id=entry["Product2Id"],
            ProductCode=product["ProductCode"],
            Name=f"{opp['Name']} {product['Name']}"[:376],
            ListPrice=entry["UnitPrice"],
            CurrencyIsoCode=opp["CurrencyIsoCode"],
        )
        if record["Quantity"] is not None and record["UnitPrice"] is not None:
            discount = record["Discount"] or Decimal(0)
            gross = record["UnitPrice"] * record["Quantity"]
            record["TotalPrice"] = (gross * (1 - discount / 100)).quantize(
                Decimal("0.01"), rounding=ROUND_HALF_UP
            )

    def _rules_pricebookentry(self, record: Record, old: Record | None, written: set[str]) -> None:
        product = self.find(record["Product2Id"] or "")
        book = self.find(record["Pricebook2Id"] or "")
        if product is None or book is None:
            return
        record["Name"] = product[1]["Name"]
        record["ProductCode"] = product[1]["ProductCode"]
        if old is not None:
            return
        for other in self.rows("PricebookEntry", False):
            if (other["Pricebook2Id"], other["Product2Id"], other["CurrencyIsoCode"]) == (
                record["Pricebook2Id"],
                record["Product2Id"],
                record["CurrencyIsoCode"],
            ):
                raise RecordError(
                    "DUPLICATE_VALUE", "This price definition already exists in this price book"
                )
        if not book[1]["IsStandard"] and not any(
            e["Product2Id"] == record["Product2Id"]
            and e["CurrencyIsoCode"] == record["CurrencyIsoCode"]
            and self._records["Pricebook2"][e["Pricebook2Id"]]["IsStandard"]
            for e in self.rows("PricebookEntry", False)
        ):
            raise RecordError(
                "STANDARD_PRICE_NOT_DEFINED", "No standard price defined for this product"
            )

    def _rules_contentversion(self, record: Record, old: Record | None, written: set[str]) -> None:
        content.version_rules(self, record, old)

    def _rules_contentdocumentlink(
        self, record: Record, old: Record | None, written: set[str]
    ) -> None:
        content.link_rules(self, record, old)

    def _rules_contract(self, record: Record, old: Record | None, written: set[str]) -> None:
        if old is None:
            self._contract_number += 1
            record["ContractNumber"] = f"{self._contract_number:08d}"
        start, term = record["StartDate"], record["ContractTerm"]
        record["EndDate"] = _add_months(start, term) - timedelta(days=1) if start and term else None

    # ---- after save --------------------------------------------------------------------------
    def _after_save(self, obj: ObjectDef, record: Record) -> None:
        if obj.name == "OpportunityLineItem":
            opp = self._records["Opportunity"][record["OpportunityId"]]
            if opp["Pricebook2Id"] is None:
                self._put(
                    "Opportunity",
                    {
                        **opp,
                        "Pricebook2Id": self._records["PricebookEntry"][record["PricebookEntryId"]][
                            "Pricebook2Id"
                        ],
                    },
                )
            self._roll_up(record["OpportunityId"])
        elif obj.name == "ContentVersion":
            content.version_saved(self, record)
        elif obj.name == "Opportunity":
            items = self._line_items(record["Id"])
            if items:
                self._roll_up(record["Id"], stamp=False)

    def _line_items(self, opportunity_id: str) -> list[Record]:
        return [
            r
            for r in self.rows("OpportunityLineItem", False)
            if r["OpportunityId"] == opportunity_id
        ]

    def _roll_up(self, opportunity_id: str, *, stamp: bool = True) -> None:
        """Amount = the sum of the line items' TotalPrice; a change to the products bumps the
        parent's LastModifiedDate and SystemModstamp, as Salesforce's roll-up does."""
        opp = self._records["Opportunity"].get(opportunity_id)
        if opp is None or opp["IsDeleted"]:
            return
        items = self._line_items(opportunity_id)
        total = sum((i["TotalPrice"] or Decimal(0) for i in items), Decimal("0.00"))
        updated = {**opp, "Amount": total}
        if stamp:
            now = self.now()
            updated.update(
                LastModifiedDate=now, SystemModstamp=now, LastModifiedById=self.api_user_id
            )
        self._put("Opportunity", updated)


class _Journal:
    """The undo log of one allOrNone call."""

    def __init__(
        self, backend: SalesforceBackend, entries: dict[tuple[str, str], Record | None]
    ) -> None:
        self._backend = backend
        self._entries = entries

    def rollback(self) -> None:
        self._backend._restore(self._entries)
        self._entries.clear()


def _add_months(day: date, months: int) -> date:
    month = day.month - 1 + months
    year = day.year + month // 12
    month = month % 12 + 1
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    days = [31, 29 if leap else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1]
    return date(year, month, min(day.day, days))


__all__ = ["API_VERSIONS", "Credentials", "SalesforceBackend", "Session"]
