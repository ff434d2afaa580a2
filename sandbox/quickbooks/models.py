"""The QuickBooks Online backend: per-realm company state and the rules of the v3 API.

State is keyed by realm id. Objects are kept in their JSON form (amounts as ``Decimal``); what is
not part of that form (applications of payments, void flags, update times, attachment bytes,
requestid replays) lives beside them in ``Company``. One ``threading.RLock`` guards everything:
handlers run in a thread pool and the webhook dispatcher reads nothing back.

Rules kept, as QuickBooks keeps them:

- names: ``DisplayName`` is unique, case-insensitively, across Customer, Vendor and Employee
  (6240); Item, Account, PaymentMethod and Term names are unique per entity (6240);
- updates need the current ``SyncToken`` (5010 otherwise); ``sparse: true`` merges the sent
  fields, a full update replaces every writable field; read-only input (Balance, TotalAmt,
  MetaData, ...) and ``""`` are ignored, decimals may come as strings;
- sales documents (Invoice, CreditMemo): Amount = Qty x UnitPrice per line (6070), discount
  (percent or amount), a computed SubTotal line, simple sales tax (US: lines coded ``TAX`` at the
  realm's rate; EU: the rate of each line's numeric code), currency = the customer's, exchange
  rate from a fixed table for a foreign currency, DocNumber auto-assigned or unique (6140), due
  date from the sales term;
- payments apply to several invoices and credit memos, partially; invoice Balance, credit memo
  RemainingCredit, payment UnappliedAmt and customer Balance follow every create, update, void
  and delete; an invoice whose balance moves gets a new SyncToken, as in QuickBooks;
- every committed create, update, delete, void and e-mail of a webhook entity is reported to
  ``notify``; deletes leave a tombstone for CDC.
"""

from __future__ import annotations

import copy
import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from sandbox.core.clock import Clock
from sandbox.quickbooks import exceptions as exc
from sandbox.quickbooks import query as qbql
from sandbox.quickbooks.exceptions import QBOFault, render_time

Notify = Callable[[str, str, str, str, datetime], None]
JSON = dict[str, Any]

CENT = Decimal("0.01")
RATE_PLACES = Decimal("0.000001")
BATCH_LIMIT = 30
CDC_MAX_DAYS = 30
CDC_MAX_OBJECTS = 1000
REQUEST_ID_MAX = 50
FIRST_DOC_NUMBER = 1001

# Units of USD per unit of each currency: the sandbox's fixed rate table.
USD_PER_UNIT = {
    "USD": Decimal("1"),
    "EUR": Decimal("1.08"),
    "GBP": Decimal("1.27"),
    "CAD": Decimal("0.73"),
}
CURRENCY_NAMES = {
    "USD": "United States Dollar",
    "EUR": "Euro",
    "GBP": "British Pound Sterling",
    "CAD": "Canadian Dollar",
}

# What QuickBooks accepts as an attachment (AI, CSV, DOC, DOCX, EPS, GIF, JPEG, JPG, ODS, PAGES,
# PDF, PNG, RTF, TIF, TXT, XLS, XLSX, XML), up to 100 MB.
UPLOAD_CONTENT_TYPES = frozenset(
    {
        "application/postscript", "text/csv", "application/msword",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "image/gif", "image/jpeg", "image/jpg", "image/pjpeg",
        "application/vnd.oasis.opendocument.spreadsheet", "application/vnd.apple.pages",
        "application/x-iwork-pages-sffpages", "application/pdf", "image/png",
        "application/rtf", "text/rtf", "image/tiff", "text/plain", "application/vnd.ms-excel",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "text/xml",
        "application/xml",
    }
)  # fmt: skip
UPLOAD_MAX_BYTES = 100 * 1024 * 1024
ATTACHABLE_TARGETS = frozenset(
    {"Invoice", "Payment", "CreditMemo", "Customer", "Vendor", "Employee", "Item", "Account"}
)

# Top-level input QuickBooks computes or owns: ignored when sent.
READ_ONLY = frozenset(
    {
        "Id", "SyncToken", "sparse", "domain", "MetaData", "status", "time", "Balance",
        "BalanceWithJobs", "TotalAmt", "HomeBalance", "HomeTotalAmt", "FullyQualifiedName",
        "Level", "UnappliedAmt", "RemainingCredit", "CurrentBalance",
        "CurrentBalanceWithSubAccounts", "LinkedTxn", "DeliveryInfo", "InvoiceLink", "Size",
        "FileAccessUri", "TempDownloadUri", "ThumbnailFileAccessUri",
        "ThumbnailTempDownloadUri", "Classification",
    }
)  # fmt: skip

_META = ("MetaData.CreateTime", "MetaData.LastUpdatedTime")


@dataclass(frozen=True)
class EntitySpec:
    """What the API allows on one entity."""

    name: str
    filterable: frozenset[str]  # lower-case property paths usable in WHERE / ORDER BY
    kind: str = "list"  # "name" | "list" | "txn" | "singleton" | "readonly" | "attachable"
    deletable: bool = False
    voidable: bool = False
    has_active: bool = False  # queries without an Active filter return active rows only
    name_field: str | None = None  # unique per entity (6240), e.g. Item.Name
    dup_phrase: str = ""
    id_base: int = 0


def _props(*names: str) -> frozenset[str]:
    return frozenset(n.lower() for n in (*names, *_META))


SPECS: dict[str, EntitySpec] = {
    spec.name.lower(): spec
    for spec in (
        EntitySpec(
            "Customer",
            _props(
                "Id", "DisplayName", "GivenName", "FamilyName", "MiddleName", "CompanyName",
                "PrimaryEmailAddr", "Active", "Balance", "FullyQualifiedName", "Job",
                "ParentRef", "Title", "Suffix", "PrintOnCheckName",
            ),
            kind="name", has_active=True, dup_phrase="customer, vendor or employee",
        ),
        EntitySpec(
            "Vendor",
            _props("Id", "DisplayName", "GivenName", "FamilyName", "MiddleName", "CompanyName",
                   "Active", "Balance", "Title", "Suffix", "PrintOnCheckName"),
            kind="name", has_active=True, dup_phrase="customer, vendor or employee",
        ),
        EntitySpec(
            "Employee",
            _props("Id", "DisplayName", "GivenName", "FamilyName", "MiddleName", "Active",
                   "EmployeeNumber", "PrintOnCheckName"),
            kind="name", has_active=True, dup_phrase="customer, vendor or employee",
        ),
        EntitySpec(
            "Item", _props("Id", "Name", "Active", "Type", "Sku", "FullyQualifiedName"),
            has_active=True, name_field="Name", dup_phrase="product or service",
        ),
        EntitySpec(
            "Invoice",
            _props("Id", "DocNumber", "TxnDate", "DueDate", "CustomerRef", "Balance",
                   "TotalAmt", "DepartmentRef", "ClassRef", "EmailStatus"),
            kind="txn", deletable=True, voidable=True,
        ),
        EntitySpec(
            "Payment",
            _props("Id", "TxnDate", "CustomerRef", "TotalAmt", "PaymentRefNum",
                   "UnappliedAmt"),
            kind="txn", deletable=True, voidable=True,
        ),
        EntitySpec(
            "CreditMemo",
            _props("Id", "DocNumber", "TxnDate", "CustomerRef", "TotalAmt", "Balance",
                   "RemainingCredit"),
            kind="txn", deletable=True,
        ),
        EntitySpec("Term", _props("Id", "Name", "Active", "Type", "DueDays"),
                   has_active=True, name_field="Name", dup_phrase="term"),
        EntitySpec("TaxCode", _props("Id", "Name", "Active", "Taxable"), kind="readonly",
                   has_active=True),
        EntitySpec("TaxRate", _props("Id", "Name", "Active", "RateValue"), kind="readonly",
                   has_active=True),
        EntitySpec(
            "Account",
            _props("Id", "Name", "AccountType", "AccountSubType", "Classification", "Active",
                   "FullyQualifiedName", "CurrentBalance", "SubAccount", "ParentRef"),
            has_active=True, name_field="Name", dup_phrase="account",
        ),
        EntitySpec("PaymentMethod", _props("Id", "Name", "Active", "Type"), has_active=True,
                   name_field="Name", dup_phrase="payment method"),
        EntitySpec(
            "Attachable",
            _props("Id", "FileName", "Note", "Category", "ContentType",
                   "AttachableRef.EntityRef.Type", "AttachableRef.EntityRef.value",
                   "AttachableRef.EntityRef"),
            kind="attachable", deletable=True, id_base=5_000_000_000,
        ),
        EntitySpec("CompanyInfo", _props("Id", "CompanyName"), kind="singleton"),
        EntitySpec("Preferences", _props("Id"), kind="singleton"),
        EntitySpec("CompanyCurrency", _props("Id", "Code", "Name", "Active"),
                   kind="readonly", has_active=True),
        EntitySpec("ExchangeRate",
                   _props("SourceCurrencyCode", "TargetCurrencyCode", "AsOfDate"),
                   kind="readonly"),
    )
}  # fmt: skip
TXN_ENTITIES = ("Invoice", "Payment", "CreditMemo")
NAME_ENTITIES = ("Customer", "Vendor", "Employee")


def spec_for(entity: str) -> EntitySpec | None:
    return SPECS.get(entity.lower())


# ---- small helpers ---------------------------------------------------------------------------
def money(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def dec(value: Any, name: str) -> Decimal | None:
    """A decimal from what clients send (number or string); None when absent."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise exc.invalid_value(name, value, "not a number")
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise exc.invalid_value(name, value, "not a number") from None
    if not number.is_finite():
        raise exc.invalid_value(name, value, "not a number")
    return number


def clean(value: Any) -> Any:
    """Drop ``""``, ``None`` and empty containers, recursively (python-quickbooks sends them
    for every unset field)."""
    if isinstance(value, dict):
        out = {k: clean(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if v not in (None, "", [], {})}
    if isinstance(value, list):
        items = [clean(v) for v in value]
        return [v for v in items if v not in (None, "", [], {})]
    return value


# ... except where the entity takes it as input.
WRITABLE_EXCEPTIONS = {"Payment": frozenset({"TotalAmt"})}


def writable(data: JSON, entity: str = "") -> JSON:
    keep = WRITABLE_EXCEPTIONS.get(entity, frozenset())
    return {k: v for k, v in clean(data).items() if k not in READ_ONLY or k in keep}


def truthy(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() == "true")


def ref_id(ref: Any) -> str | None:
    if isinstance(ref, dict) and ref.get("value") not in (None, ""):
        return str(ref["value"])
    if isinstance(ref, (str, int)) and str(ref):
        return str(ref)
    return None


def _date(value: Any, name: str) -> date | None:
    if value in (None, ""):
        return None
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        raise exc.invalid_value(name, value, "not a date (yyyy-MM-dd)") from None


def _email_ok(address: str) -> bool:
    return re.fullmatch(r"[^@\s,;]+@[^@\s,;]+\.[^@\s,;]+", address) is not None


def dumps(body: Any) -> bytes:
    """JSON as QuickBooks writes it: decimals as numbers."""

    def default(value: Any) -> Any:
        if isinstance(value, Decimal):
            return int(value) if value == value.to_integral_value() else float(value)
        raise TypeError(f"not JSON serializable: {type(value).__name__}")

    return json.dumps(body, default=default, ensure_ascii=False, separators=(",", ":")).encode()


def loads(raw: bytes | str) -> Any:
    return json.loads(raw, parse_float=Decimal)


# ---- state -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class RealmInfo:
    key: str
    realm_id: str
    company_name: str
    currency: str
    country: str
    email: str


@dataclass
class Replay:
    """A write answered under a requestid: replayed byte for byte."""

    status: int
    body: bytes
    media_type: str


@dataclass
class UploadPart:
    """One part of a multipart upload."""

    name: str
    content_type: str
    data: bytes
    filename: str | None = None


@dataclass
class Company:
    info: RealmInfo
    objects: dict[str, dict[str, JSON]] = field(default_factory=dict)
    updated: dict[tuple[str, str], datetime] = field(default_factory=dict)
    tombstones: dict[tuple[str, str], datetime] = field(default_factory=dict)
    counters: dict[str, int] = field(default_factory=dict)
    next_doc_number: int = FIRST_DOC_NUMBER
    # txn id (invoice or credit memo) → payment id → amount applied
    applied: dict[str, dict[str, Decimal]] = field(default_factory=dict)
    voided: set[tuple[str, str]] = field(default_factory=set)
    files: dict[str, bytes] = field(default_factory=dict)
    replays: dict[str, Replay] = field(default_factory=dict)

    @property
    def home_currency(self) -> str:
        return self.info.currency

    def table(self, entity: str) -> dict[str, JSON]:
        return self.objects.setdefault(entity, {})

    def find(self, entity: str, obj_id: str | None) -> JSON | None:
        return None if obj_id is None else self.table(entity).get(str(obj_id))

    def by_name(self, entity: str, name: str) -> JSON | None:
        spec = SPECS[entity.lower()]
        key = spec.name_field or "DisplayName"
        folded = name.strip().casefold()
        return next(
            (
                o
                for o in self.table(entity).values()
                if str(o.get(key, "")).strip().casefold() == folded
            ),
            None,
        )

    def new_id(self, entity: str) -> str:
        # transactions share one id sequence, as do customers, vendors and employees
        counter = "txn" if entity in TXN_ENTITIES else "name" if entity in NAME_ENTITIES else entity
        self.counters[counter] = self.counters.get(counter, 0) + 1
        spec = SPECS.get(entity.lower())
        return str((spec.id_base if spec else 0) + self.counters[counter])


@dataclass
class _Events:
    """Webhook events of one operation, reported once it committed."""

    items: list[tuple[str, str, str]] = field(default_factory=list)

    def add(self, entity: str, obj_id: str, operation: str) -> None:
        self.items.append((entity, obj_id, operation))


class QuickBooksBackend:
    """Every realm's company; the public methods are what the HTTP handlers call."""

    def __init__(
        self,
        clock: Clock,
        notify: Notify | None = None,
        base_url: Callable[[], str] = lambda: "",
    ) -> None:
        self.clock = clock
        self.notify = notify
        self.base_url = base_url
        self.upload_max_bytes = UPLOAD_MAX_BYTES
        self.companies: dict[str, Company] = {}
        self.lock = threading.RLock()
        self._pinned: datetime | None = None  # seeding history at past times

    # ---- lifecycle ---------------------------------------------------------------------------
    def load(self, profile: str) -> None:
        from sandbox.quickbooks.seed import seed

        with self.lock:
            self.companies = {}
            seed(self, profile)

    def add_company(self, info: RealmInfo) -> Company:
        with self.lock:
            company = Company(info)
            self.companies[info.realm_id] = company
            return company

    def realm_ids(self) -> list[str]:
        with self.lock:
            return list(self.companies)

    def company(self, realm_id: str) -> Company:
        company = self.companies.get(realm_id)
        if company is None:
            raise exc.object_not_found()
        return company

    def now(self) -> datetime:
        return self._pinned or self.clock.now()

    def today(self) -> date:
        return self.now().astimezone(exc.COMPANY_TZ).date()

    # ---- requestid replays -------------------------------------------------------------------
    def replay(self, realm_id: str, request_id: str) -> Replay | None:
        with self.lock:
            company = self.companies.get(realm_id)
            return company.replays.get(request_id) if company else None

    def remember(self, realm_id: str, request_id: str, replay: Replay) -> None:
        with self.lock:
            company = self.companies.get(realm_id)
            if company is not None:
                company.replays.setdefault(request_id, replay)

    # ---- reads -------------------------------------------------------------------------------
    def get(self, realm_id: str, entity: str, obj_id: str) -> JSON:
        with self.lock:
            company = self.company(realm_id)
            spec = self._spec(entity)
            if spec.name == "CompanyInfo" and obj_id == realm_id:
                obj_id = "1"
            if spec.name == "ExchangeRate":
                raise exc.unsupported_operation("Read")
            obj = self._rows(company, spec).get(str(obj_id))
            if obj is None:
                raise exc.object_not_found((spec.name, str(obj_id)) in company.tombstones)
            return obj

    def singleton(self, realm_id: str, entity: str) -> JSON:
        with self.lock:
            return next(iter(self.company(realm_id).table(entity).values()))

    def exchange_rate(self, realm_id: str, source: str | None, as_of: str | None) -> JSON:
        with self.lock:
            company = self.company(realm_id)
            if not source:
                raise exc.required_param("sourcecurrencycode")
            code = source.upper()
            if code not in USD_PER_UNIT:
                raise exc.invalid_reference(f"SourceCurrencyCode {source}")
            day = _date(as_of, "asofdate") or self.today()
            return self._exchange_rate_obj(company, code, day)

    def query(self, realm_id: str, text: str) -> JSON:
        """The ``QueryResponse`` object of a query."""
        with self.lock:
            return self._query(self.company(realm_id), text)

    def cdc(self, realm_id: str, entities: str | None, changed_since: str | None) -> JSON:
        """The ``CDCResponse`` list."""
        with self.lock:
            company = self.company(realm_id)
            if not entities:
                raise exc.required_param("entities")
            if not changed_since:
                raise exc.required_param("changedSince")
            since = self._parse_moment(changed_since, "changedSince")
            if since < self.now() - timedelta(days=CDC_MAX_DAYS):
                raise exc.unsupported_operation(
                    f"cdc with changedSince date {changed_since} which is older than fixed days"
                )
            names = []
            for raw in entities.split(","):
                spec = spec_for(raw.strip())
                if spec is None or spec.kind in ("readonly",):
                    raise exc.invalid_value("entities", raw.strip(), "unsupported entity")
                names.append(spec.name)
            budget = CDC_MAX_OBJECTS
            answers: list[JSON] = []
            for name in names:
                rows = self._changes(company, name, since)[: max(budget, 0)]
                budget -= len(rows)
                if rows:
                    answers.append(
                        {
                            name: rows,
                            "startPosition": 1,
                            "maxResults": len(rows),
                            "totalCount": len(rows),
                        }
                    )
                else:
                    answers.append({})
            return {"QueryResponse": answers}

    def file(self, realm_id: str, obj_id: str) -> tuple[bytes, str, str]:
        """(bytes, content type, file name) of an uploaded attachment."""
        with self.lock:
            company = self.company(realm_id)
            obj = company.find("Attachable", obj_id)
            if obj is None or obj_id not in company.files:
                raise exc.object_not_found()
            return (
                company.files[obj_id],
                str(obj.get("ContentType", "application/octet-stream")),
                str(obj.get("FileName", obj_id)),
            )

    # ---- writes ------------------------------------------------------------------------------
    def save(
        self,
        realm_id: str,
        entity: str,
        body: Any,
        operation: str | None = None,
        include: str | None = None,
    ) -> JSON:
        """``POST /{entity}[?operation=...&include=...]``: create, update, delete or void."""
        with self.lock:
            company = self.company(realm_id)
            spec = self._spec(entity)
            if not isinstance(body, dict):
                raise exc.bad_request(f"Invalid request body for {spec.name}: expected an object")
            events = _Events()
            op = (operation or "").lower()
            if op == "delete":
                result = self._delete(company, spec, body, events)
            elif op == "void" or (op == "update" and (include or "").lower() == "void"):
                result = self._void(company, spec, body, events)
            elif op not in ("", "create", "update"):
                raise exc.unsupported_operation(op)
            elif op == "update" and body.get("Id") in (None, ""):
                raise exc.required_param("Id")
            elif body.get("Id") not in (None, "") and op != "create":
                result = self._update(company, spec, body, events)
            else:
                result = self._create(company, spec, body, events)
            self._emit(company, events)
            return result

    def send(self, realm_id: str, obj_id: str, send_to: str | None) -> JSON:
        """``POST /invoice/{id}/send[?sendTo=]``: e-mail the invoice."""
        with self.lock:
            company = self.company(realm_id)
            invoice = company.find("Invoice", obj_id)
            if invoice is None:
                raise exc.object_not_found(("Invoice", obj_id) in company.tombstones)
            address = send_to or (invoice.get("BillEmail") or {}).get("Address")
            if not address:
                raise exc.required_param("BillEmail")
            if not all(_email_ok(a.strip()) for a in address.split(",")):
                raise exc.business_validation(
                    f"Email Address is invalid: {address}", "BillEmail.Address"
                )
            invoice["BillEmail"] = {"Address": address}
            invoice["EmailStatus"] = "EmailSent"
            invoice["DeliveryInfo"] = {
                "DeliveryType": "Email",
                "DeliveryTime": render_time(self.now(), millis=False),
            }
            events = _Events()
            self._touch(company, "Invoice", invoice, events, "Emailed")
            self._emit(company, events)
            return invoice

    def batch(self, realm_id: str, body: Any) -> list[JSON]:
        """``POST /batch``: each item processed on its own; at most 30."""
        with self.lock:
            company = self.company(realm_id)
            items = body.get("BatchItemRequest") if isinstance(body, dict) else None
            if not isinstance(items, list):
                raise exc.required_param("BatchItemRequest")
            if len(items) > BATCH_LIMIT:
                raise exc.batch_too_large(len(items), BATCH_LIMIT)
            answers = []
            for item in items:
                answers.append(self._batch_item(company, item))
            return answers

    def upload(self, realm_id: str, parts: list[UploadPart]) -> list[JSON]:
        """``POST /upload``: each file part (with its ``file_metadata_NN``) → an Attachable."""
        with self.lock:
            company = self.company(realm_id)
            metadata = {
                p.name.removeprefix("file_metadata_"): p
                for p in parts
                if p.name.startswith("file_metadata_")
            }
            answers: list[JSON] = []
            faults: list[QBOFault] = []
            for part in parts:
                if not part.name.startswith("file_content_"):
                    continue
                suffix = part.name.removeprefix("file_content_")
                try:
                    answers.append(
                        {"Attachable": self._upload_one(company, part, metadata.get(suffix))}
                    )
                except QBOFault as fault:
                    faults.append(fault)
                    answers.append({"Fault": fault.fault()})
            if not answers:
                raise exc.required_param("file_content_01")
            if len(faults) == len(answers):
                raise faults[0]  # nothing was stored: the request itself failed
            return answers

    # ---- internals: dispatch -----------------------------------------------------------------
    def _spec(self, entity: str) -> EntitySpec:
        spec = spec_for(entity)
        if spec is None:
            raise exc.unsupported_operation(f"{entity}")
        return spec

    def _rows(self, company: Company, spec: EntitySpec) -> dict[str, JSON]:
        if spec.name == "ExchangeRate":
            return {
                code: self._exchange_rate_obj(company, code, self.today())
                for code in USD_PER_UNIT
                if code != company.home_currency
            }
        return company.table(spec.name)

    def _emit(self, company: Company, events: _Events) -> None:
        if self.notify is None:
            return
        when = self.now()
        for entity, obj_id, operation in events.items:
            self.notify(company.info.realm_id, entity, obj_id, operation, when)

    def _batch_item(self, company: Company, item: Any) -> JSON:
        if not isinstance(item, dict):
            return {"Fault": exc.bad_request("BatchItemRequest must be an object").fault()}
        bid = item.get("bId")
        try:
            if "Query" in item:
                answer: JSON = {"QueryResponse": self._query(company, str(item["Query"]))}
            else:
                names = [k for k in item if spec_for(k) is not None]
                if len(names) != 1:
                    raise exc.required_param("BatchItemRequest entity")
                spec = self._spec(names[0])
                op = str(item.get("operation") or "create").lower()
                void = str(item.get("optionsData") or "").lower() == "void"
                answer = {
                    spec.name: self.save(
                        company.info.realm_id,
                        spec.name,
                        item[names[0]],
                        operation="void" if void else op,
                    )
                }
        except QBOFault as fault:
            answer = {"Fault": fault.fault()}
        answer["bId"] = bid
        return answer

    def _create(self, company: Company, spec: EntitySpec, body: JSON, events: _Events) -> JSON:
        if spec.kind in ("readonly", "singleton"):
            raise exc.unsupported_operation("Create")
        data = writable(body, spec.name)
        obj = self._build(company, spec, data, None)
        obj_id = company.new_id(spec.name)
        now = self.now()
        stamp = render_time(now, millis=False)
        obj = {
            **obj,
            "Id": obj_id,
            "SyncToken": "0",
            "domain": "QBO",
            "sparse": False,
            "MetaData": {"CreateTime": stamp, "LastUpdatedTime": stamp},
        }
        company.table(spec.name)[obj_id] = obj
        company.updated[(spec.name, obj_id)] = now
        events.add(spec.name, obj_id, "Create")
        self._after_write(company, spec, None, obj, events)
        return obj

    def _current(self, company: Company, spec: EntitySpec, body: JSON) -> JSON:
        obj_id = str(body.get("Id"))
        if spec.kind == "singleton" and obj_id == company.info.realm_id:
            obj_id = "1"
        existing = company.find(spec.name, obj_id)
        if existing is None:
            raise exc.object_not_found((spec.name, obj_id) in company.tombstones)
        token = body.get("SyncToken")
        if token in (None, ""):
            raise exc.required_param("SyncToken")
        if str(token).strip() != existing["SyncToken"]:
            raise exc.stale_object()
        return existing

    def _update(self, company: Company, spec: EntitySpec, body: JSON, events: _Events) -> JSON:
        if spec.kind == "readonly":
            raise exc.unsupported_operation("Update")
        existing = self._current(company, spec, body)
        if (spec.name, existing["Id"]) in company.voided:
            raise exc.business_validation("You can't edit a voided transaction.")
        data = writable(body, spec.name)
        if spec.kind == "singleton":
            data = _deep_merge(writable(existing, spec.name), data)
        elif truthy(body.get("sparse")):
            data = {**writable(existing, spec.name), **data}
        obj = self._build(company, spec, data, existing)
        obj = {
            **obj,
            "Id": existing["Id"],
            "SyncToken": existing["SyncToken"],
            "domain": "QBO",
            "sparse": False,
            "MetaData": dict(existing["MetaData"]),
        }
        company.table(spec.name)[existing["Id"]] = obj
        self._touch(company, spec.name, obj, events, "Update")
        self._after_write(company, spec, existing, obj, events)
        return company.table(spec.name)[existing["Id"]]

    def _touch(
        self, company: Company, entity: str, obj: JSON, events: _Events, operation: str
    ) -> None:
        """A new SyncToken and LastUpdatedTime for a changed object, and its webhook."""
        now = self.now()
        obj["SyncToken"] = str(int(obj["SyncToken"]) + 1)
        obj.setdefault("MetaData", {})["LastUpdatedTime"] = render_time(now, millis=False)
        company.updated[(entity, obj["Id"])] = now
        events.add(entity, obj["Id"], operation)

    def _delete(self, company: Company, spec: EntitySpec, body: JSON, events: _Events) -> JSON:
        if not spec.deletable:
            raise exc.unsupported_operation("Delete")
        existing = self._current(company, spec, body)
        obj_id = existing["Id"]
        del company.table(spec.name)[obj_id]
        company.updated.pop((spec.name, obj_id), None)
        company.tombstones[(spec.name, obj_id)] = self.now()
        company.voided.discard((spec.name, obj_id))
        company.files.pop(obj_id, None)
        events.add(spec.name, obj_id, "Delete")
        self._after_write(company, spec, existing, None, events)
        return {"domain": "QBO", "status": "Deleted", "Id": obj_id}

    def _void(self, company: Company, spec: EntitySpec, body: JSON, events: _Events) -> JSON:
        if not spec.voidable:
            raise exc.unsupported_operation("Void")
        existing = self._current(company, spec, body)
        obj = copy.deepcopy(existing)
        for line in obj.get("Line", []):
            line["Amount"] = Decimal("0")
        obj["TotalAmt"] = Decimal("0")
        note = str(existing.get("PrivateNote") or "")
        obj["PrivateNote"] = "Voided" if not note else f"Voided - {note}"
        if spec.name == "Invoice":
            obj["Balance"] = Decimal("0")
            if "HomeBalance" in obj:
                obj["HomeBalance"] = obj["HomeTotalAmt"] = Decimal("0")
            obj["TxnTaxDetail"] = {"TotalTax": Decimal("0")}
        else:
            obj["UnappliedAmt"] = Decimal("0")
        company.table(spec.name)[obj["Id"]] = obj
        company.voided.add((spec.name, obj["Id"]))
        self._touch(company, spec.name, obj, events, "Void")
        self._after_write(company, spec, existing, obj, events)
        return company.table(spec.name)[obj["Id"]]

    # ---- internals: per-entity rules ---------------------------------------------------------
    def _build(self, company: Company, spec: EntitySpec, data: JSON, existing: JSON | None) -> JSON:
        builder = {
            "Customer": self._build_name,
            "Vendor": self._build_name,
            "Employee": self._build_name,
            "Item": self._build_item,
            "Invoice": self._build_sales_doc,
            "CreditMemo": self._build_sales_doc,
            "Payment": self._build_payment,
            "Term": self._build_term,
            "Account": self._build_account,
            "PaymentMethod": self._build_payment_method,
            "Attachable": self._build_attachable,
            "CompanyInfo": self._build_singleton,
            "Preferences": self._build_singleton,
        }[spec.name]
        return builder(company, spec, data, existing)

    def _check_unique(
        self, company: Company, spec: EntitySpec, name: str, existing: JSON | None
    ) -> None:
        entities = NAME_ENTITIES if spec.kind == "name" else (spec.name,)
        for entity in entities:
            clash = company.by_name(entity, name)
            if clash is not None and not (
                entity == spec.name and existing and clash["Id"] == existing["Id"]
            ):
                raise exc.duplicate_name(spec.dup_phrase, clash["Id"])

    def _ref(
        self, company: Company, entity: str, ref: Any, label: str, *, active: bool = True
    ) -> JSON:
        """The object a reference points at: 2500 when unknown or (``active``) inactive."""
        obj = company.find(entity, ref_id(ref))
        if obj is None:
            raise exc.invalid_reference(f"{label} {entity} element id {ref_id(ref)} not found")
        if active and obj.get("Active") is False:
            raise exc.invalid_reference()
        return obj

    @staticmethod
    def _named_ref(obj: JSON, name_key: str = "Name") -> JSON:
        return {"value": obj["Id"], "name": obj.get(name_key, "")}

    def _currency(self, company: Company, ref: Any) -> str:
        code = (ref_id(ref) or company.home_currency).upper()
        active = {c["Code"] for c in company.table("CompanyCurrency").values() if c.get("Active")}
        if code != company.home_currency and code not in active:
            raise exc.invalid_reference(
                f"CurrencyRef {code} is not an active currency of the company"
            )
        return code

    def _rate(self, company: Company, code: str) -> Decimal:
        return (USD_PER_UNIT[code] / USD_PER_UNIT[company.home_currency]).quantize(RATE_PLACES)

    def _build_name(
        self, company: Company, spec: EntitySpec, data: JSON, existing: JSON | None
    ) -> JSON:
        parts = [data.get(k) for k in ("Title", "GivenName", "MiddleName", "FamilyName", "Suffix")]
        display = str(data.get("DisplayName") or " ".join(str(p) for p in parts if p)).strip()
        if not display:
            raise exc.no_name_provided()
        if ":" in display:
            raise exc.business_validation("A name can't contain a colon (:).", "DisplayName")
        self._check_unique(company, spec, display, existing)
        obj = {**data, "DisplayName": display, "Active": data.get("Active", True) is not False}
        obj["PrintOnCheckName"] = data.get("PrintOnCheckName") or data.get("CompanyName") or display
        if spec.name == "Customer":
            obj["FullyQualifiedName"] = display
            code = self._currency(company, data.get("CurrencyRef"))
            if existing is not None:
                before = ref_id(existing.get("CurrencyRef")) or company.home_currency
                if code != before and self._has_transactions(company, existing["Id"]):
                    raise exc.business_validation(
                        "You can't change the currency of a customer that has transactions.",
                        "CurrencyRef",
                    )
            obj["CurrencyRef"] = {"value": code, "name": CURRENCY_NAMES[code]}
            if data.get("SalesTermRef"):
                obj["SalesTermRef"] = self._named_ref(
                    self._ref(company, "Term", data["SalesTermRef"], "SalesTermRef")
                )
            if data.get("PaymentMethodRef"):
                method = self._ref(
                    company, "PaymentMethod", data["PaymentMethodRef"], "PaymentMethodRef"
                )
                obj["PaymentMethodRef"] = self._named_ref(method)
            obj.setdefault("Job", False)
            obj.setdefault("BillWithParent", False)
            obj.setdefault("Taxable", company.info.country == "US")
            obj.setdefault("PreferredDeliveryMethod", "Print")
            balance = existing.get("Balance", Decimal("0")) if existing else Decimal("0")
            obj["Balance"] = obj["BalanceWithJobs"] = balance
        elif spec.name == "Vendor":
            code = self._currency(company, data.get("CurrencyRef"))
            obj["CurrencyRef"] = {"value": code, "name": CURRENCY_NAMES[code]}
            obj["Balance"] = existing.get("Balance", Decimal("0")) if existing else Decimal("0")
            obj.setdefault("Vendor1099", False)
        return obj

    def _has_transactions(self, company: Company, customer_id: str) -> bool:
        return any(
            ref_id(t.get("CustomerRef")) == customer_id
            for entity in TXN_ENTITIES
            for t in company.table(entity).values()
        )

    def _unique_name(
        self,
        company: Company,
        spec: EntitySpec,
        data: JSON,
        existing: JSON | None,
        *,
        hierarchical: bool = False,
    ) -> str:
        """The record's Name: required, unique in its list; in hierarchical lists (items,
        accounts) a colon is the sub-item separator, so a name may not contain one."""
        name = str(data.get("Name") or "").strip()
        if not name:
            raise exc.required_param("Name")
        if hierarchical and ":" in name:
            raise exc.business_validation("A name can't contain a colon (:).", "Name")
        self._check_unique(company, spec, name, existing)
        return name

    def _build_item(
        self, company: Company, spec: EntitySpec, data: JSON, existing: JSON | None
    ) -> JSON:
        name = self._unique_name(company, spec, data, existing, hierarchical=True)
        item_type = str(data.get("Type") or "Service")
        if item_type not in ("Service", "NonInventory", "Inventory"):
            raise exc.invalid_value("Type", item_type, "use Service, NonInventory or Inventory")
        obj = {**data, "Name": name, "FullyQualifiedName": name, "Type": item_type}
        obj["Active"] = data.get("Active", True) is not False
        obj["UnitPrice"] = dec(data.get("UnitPrice"), "UnitPrice") or Decimal("0")
        if not data.get("IncomeAccountRef"):
            raise exc.required_param("IncomeAccountRef")
        obj["IncomeAccountRef"] = self._named_ref(
            self._ref(company, "Account", data["IncomeAccountRef"], "IncomeAccountRef")
        )
        for key in ("ExpenseAccountRef", "AssetAccountRef"):
            if data.get(key):
                obj[key] = self._named_ref(self._ref(company, "Account", data[key], key))
        if item_type == "Inventory":
            for key in ("AssetAccountRef", "InvStartDate"):
                if not data.get(key):
                    raise exc.required_param(key)
            obj["TrackQtyOnHand"] = True
            obj["QtyOnHand"] = dec(data.get("QtyOnHand"), "QtyOnHand") or Decimal("0")
        else:
            obj["TrackQtyOnHand"] = False
            obj.pop("QtyOnHand", None)
        obj.setdefault("Taxable", False)
        obj.setdefault("SubItem", False)
        return obj

    def _build_term(
        self, company: Company, spec: EntitySpec, data: JSON, existing: JSON | None
    ) -> JSON:
        name = self._unique_name(company, spec, data, existing)
        obj = {**data, "Name": name, "Active": data.get("Active", True) is not False}
        if data.get("DayOfMonthDue") not in (None, ""):
            obj["Type"] = "DATE_DRIVEN"
        else:
            due = dec(data.get("DueDays"), "DueDays")
            if due is None:
                raise exc.required_param("DueDays")
            obj["Type"], obj["DueDays"] = "STANDARD", int(due)
        return obj

    def _build_account(
        self, company: Company, spec: EntitySpec, data: JSON, existing: JSON | None
    ) -> JSON:
        name = self._unique_name(company, spec, data, existing, hierarchical=True)
        account_type = data.get("AccountType") or _TYPE_OF_SUBTYPE.get(
            str(data.get("AccountSubType"))
        )
        if not account_type:
            raise exc.account_type_missing()
        if account_type not in ACCOUNT_TYPES:
            raise exc.invalid_value("AccountType", account_type)
        classification, default_subtype = ACCOUNT_TYPES[account_type]
        code = self._currency(company, data.get("CurrencyRef"))
        obj = {
            **data,
            "Name": name,
            "FullyQualifiedName": name,
            "AccountType": account_type,
            "AccountSubType": data.get("AccountSubType") or default_subtype,
            "Classification": classification,
            "Active": data.get("Active", True) is not False,
            "SubAccount": False,
            "CurrencyRef": {"value": code, "name": CURRENCY_NAMES[code]},
            "CurrentBalance": existing.get("CurrentBalance", Decimal("0"))
            if existing
            else Decimal("0"),
        }
        obj["CurrentBalanceWithSubAccounts"] = obj["CurrentBalance"]
        return obj

    def _build_payment_method(
        self, company: Company, spec: EntitySpec, data: JSON, existing: JSON | None
    ) -> JSON:
        name = self._unique_name(company, spec, data, existing)
        kind = str(data.get("Type") or "NON_CREDIT_CARD")
        if kind not in ("CREDIT_CARD", "NON_CREDIT_CARD"):
            raise exc.invalid_value("Type", kind, "use CREDIT_CARD or NON_CREDIT_CARD")
        return {**data, "Name": name, "Type": kind, "Active": data.get("Active", True) is not False}

    def _build_singleton(
        self, company: Company, spec: EntitySpec, data: JSON, existing: JSON | None
    ) -> JSON:
        return data

    def _build_attachable(
        self, company: Company, spec: EntitySpec, data: JSON, existing: JSON | None
    ) -> JSON:
        if not data.get("Note") and not data.get("FileName"):
            raise exc.required_param("Note")
        obj = dict(data)
        refs = []
        for ref in data.get("AttachableRef", []):
            entity_ref = ref.get("EntityRef") or {}
            kind = str(entity_ref.get("type") or "")
            spec_ref = spec_for(kind)
            if spec_ref is None or spec_ref.name not in ATTACHABLE_TARGETS:
                raise exc.attachable_ref_type(kind or "<none>")
            self._ref(company, spec_ref.name, entity_ref, "AttachableRef.EntityRef", active=False)
            refs.append(
                {
                    **ref,
                    "EntityRef": {"type": spec_ref.name, "value": str(entity_ref["value"])},
                    "IncludeOnSend": bool(ref.get("IncludeOnSend", False)),
                }
            )
        if refs:
            obj["AttachableRef"] = refs
        if existing is not None:
            for key in ("FileName", "ContentType", "Size", "FileAccessUri", "TempDownloadUri"):
                if key in existing:
                    obj[key] = existing[key]
        return obj

    # ---- sales documents (Invoice, CreditMemo) -----------------------------------------------
    def _customer(self, company: Company, data: JSON) -> JSON:
        if not data.get("CustomerRef"):
            raise exc.required_param("CustomerRef")
        customer = company.find("Customer", ref_id(data["CustomerRef"]))
        if customer is None:
            raise exc.invalid_reference(f"Names element id {ref_id(data['CustomerRef'])} not found")
        if customer.get("Active") is False:
            raise exc.object_not_found()
        return customer

    def _txn_currency(self, company: Company, data: JSON, customer: JSON) -> tuple[str, Decimal]:
        code = ref_id(customer.get("CurrencyRef")) or company.home_currency
        sent = ref_id(data.get("CurrencyRef"))
        if sent and sent.upper() != code:
            raise exc.business_validation(
                f"The currency of the transaction ({sent.upper()}) must be the same as the "
                f"currency of the customer ({code}).",
                "CurrencyRef",
            )
        if code == company.home_currency:
            return code, Decimal("1")
        given = dec(data.get("ExchangeRate"), "ExchangeRate")
        # python-quickbooks always sends ExchangeRate 1: only another value is a choice.
        rate = (
            given if given not in (None, Decimal("0"), Decimal("1")) else self._rate(company, code)
        )
        return code, rate

    def _build_sales_doc(
        self, company: Company, spec: EntitySpec, data: JSON, existing: JSON | None
    ) -> JSON:
        customer = self._customer(company, data)
        code, rate = self._txn_currency(company, data, customer)
        lines_in = data.get("Line") or []
        if not isinstance(lines_in, list) or not lines_in:
            raise exc.required_param("Line")
        lines: list[JSON] = []
        subtotal = Decimal("0")
        taxable: dict[str, Decimal] = {}
        discount_in: JSON | None = None
        number = 0
        for raw in lines_in:
            if not isinstance(raw, dict):
                raise exc.invalid_value("Line", raw)
            kind = raw.get("DetailType")
            if kind == "SubTotalLineDetail":
                continue
            if kind == "DiscountLineDetail":
                discount_in = raw
                continue
            number += 1
            if kind == "SalesItemLineDetail":
                line, tax_code = self._sales_line(company, raw, number)
                subtotal += line["Amount"]
                if tax_code is not None:
                    taxable[tax_code] = taxable.get(tax_code, Decimal("0")) + line["Amount"]
            elif kind in ("DescriptionOnly", "DescriptionLineDetail"):
                line = {**raw, "DetailType": "DescriptionOnly", "Amount": Decimal("0")}
                line.setdefault("DescriptionLineDetail", {})
            elif not kind:
                raise exc.required_param("Line.DetailType")
            else:
                raise exc.invalid_value("Line.DetailType", kind)
            line.update({"Id": str(number), "LineNum": number})
            lines.append(line)
        if not any(line["DetailType"] == "SalesItemLineDetail" for line in lines):
            raise exc.required_param("Line.SalesItemLineDetail")
        lines.append(
            {"Amount": subtotal, "DetailType": "SubTotalLineDetail", "SubTotalLineDetail": {}}
        )
        discount = Decimal("0")
        if discount_in is not None:
            line, discount = self._discount_line(company, discount_in, subtotal)
            lines.append(line)
        apply_after = (
            truthy(data.get("ApplyTaxAfterDiscount")) or data.get("ApplyTaxAfterDiscount") is True
        )
        tax_detail, tax = self._tax(
            company, data, taxable, subtotal, discount if apply_after else Decimal("0")
        )
        total = subtotal - discount + tax
        obj: JSON = {k: v for k, v in data.items() if k not in ("Line", "TxnTaxDetail")}
        obj.update(
            {
                "CustomerRef": {"value": customer["Id"], "name": customer["DisplayName"]},
                "CurrencyRef": {"value": code, "name": CURRENCY_NAMES[code]},
                "ExchangeRate": rate,
                "Line": lines,
                "TxnTaxDetail": tax_detail,
                "TotalAmt": total,
                "TxnDate": (_date(data.get("TxnDate"), "TxnDate") or self.today()).isoformat(),
                "ApplyTaxAfterDiscount": apply_after,
                "PrintStatus": data.get("PrintStatus", "NotSet"),
                "EmailStatus": data.get("EmailStatus", "NotSet"),
                "GlobalTaxCalculation": data.get("GlobalTaxCalculation", "TaxExcluded"),
            }
        )
        if code != company.home_currency:
            obj["HomeTotalAmt"] = money(total * rate)
        if customer.get("PrimaryEmailAddr") and not data.get("BillEmail"):
            obj["BillEmail"] = {"Address": customer["PrimaryEmailAddr"].get("Address")}
        if customer.get("BillAddr") and not data.get("BillAddr"):
            obj["BillAddr"] = customer["BillAddr"]
        if spec.name == "Invoice":
            self._due_date(company, obj, data, customer)
            obj.setdefault("Deposit", Decimal("0"))
            obj.setdefault("AllowIPNPayment", False)
            obj.setdefault("AllowOnlinePayment", False)
            obj.setdefault("AllowOnlineCreditCardPayment", False)
            obj.setdefault("AllowOnlineACHPayment", False)
            if existing and existing.get("DeliveryInfo"):
                obj["DeliveryInfo"] = existing["DeliveryInfo"]
        # last: an automatic number is used up only by a document that is stored
        obj["DocNumber"] = self._doc_number(company, spec.name, data.get("DocNumber"), existing)
        # balances and LinkedTxn are filled in by _refresh_txn once stored
        return obj

    def _sales_line(self, company: Company, raw: JSON, number: int) -> tuple[JSON, str | None]:
        detail = raw.get("SalesItemLineDetail") or {}
        if not detail.get("ItemRef"):
            raise exc.required_param("Line.SalesItemLineDetail.ItemRef")
        item = self._ref(company, "Item", detail["ItemRef"], "ItemRef")
        qty = dec(detail.get("Qty"), "Qty")
        price = dec(detail.get("UnitPrice"), "UnitPrice")
        amount = dec(raw.get("Amount"), "Amount")
        qty = None if qty == 0 and amount else qty  # python-quickbooks sends 0 for "not set"
        price = None if price == 0 and amount else price
        if amount is None:
            if qty is None or price is None:
                raise exc.required_param("Line.Amount")
            amount = money(qty * price)
        elif qty is not None and price is not None:
            if abs(money(qty * price) - amount) > CENT / 2:
                raise exc.amount_calculation(amount)
        elif price is not None and price != 0:
            qty = amount / price
        elif qty is not None and qty != 0:
            price = amount / qty
        out_detail: JSON = {
            k: v
            for k, v in detail.items()
            if k not in ("ItemRef", "Qty", "UnitPrice", "TaxCodeRef")
        }
        out_detail["ItemRef"] = self._named_ref(item)
        if item.get("IncomeAccountRef"):
            out_detail["ItemAccountRef"] = item["IncomeAccountRef"]
        if qty is not None:
            out_detail["Qty"] = qty
        if price is not None:
            out_detail["UnitPrice"] = price
        tax_code = self._line_tax_code(company, detail.get("TaxCodeRef"))
        if tax_code is not None or company.info.country == "US":
            out_detail["TaxCodeRef"] = {"value": tax_code or "NON"}
        line = {
            **{k: v for k, v in raw.items() if k in ("Description", "LineNum", "CustomField")},
            "Amount": money(amount),
            "DetailType": "SalesItemLineDetail",
            "SalesItemLineDetail": out_detail,
        }
        if "Description" not in line and item.get("Description"):
            line["Description"] = item["Description"]
        taxable = (
            tax_code if tax_code and self._tax_rate_of(company, tax_code) is not None else None
        )
        return line, taxable

    def _line_tax_code(self, company: Company, ref: Any) -> str | None:
        code = ref_id(ref)
        if code is None:
            return None
        if company.find("TaxCode", code) is None:
            raise exc.invalid_reference(f"TaxCodeRef TaxCode element id {code} not found")
        return code

    def _tax_rate_of(self, company: Company, code: str) -> list[JSON] | None:
        """The tax rates a line code stands for (None: not taxable)."""
        tax_code = company.find("TaxCode", code)
        if tax_code is None or not tax_code.get("Taxable"):
            return None
        details = (tax_code.get("SalesTaxRateList") or {}).get("TaxRateDetail") or []
        if company.info.country == "US" and code == "TAX":
            return []  # the rate comes from the transaction's tax code
        return [company.table("TaxRate")[ref_id(d["TaxRateRef"]) or ""] for d in details]

    def _tax(
        self,
        company: Company,
        data: JSON,
        taxable: dict[str, Decimal],
        subtotal: Decimal,
        discount: Decimal,
    ) -> tuple[JSON, Decimal]:
        sent = data.get("TxnTaxDetail") or {}
        txn_code_id = ref_id(sent.get("TxnTaxCodeRef"))
        share = (subtotal - discount) / subtotal if subtotal and discount else Decimal("1")
        by_rate: dict[str, Decimal] = {}
        detail: JSON = {}
        for code, base in taxable.items():
            rates = self._tax_rate_of(company, code) or []
            if company.info.country == "US" and code == "TAX":
                txn_code = company.find("TaxCode", txn_code_id or company_default_tax_code(company))
                if txn_code is None:
                    raise exc.invalid_reference(
                        f"TxnTaxCodeRef TaxCode element id {txn_code_id} not found"
                    )
                detail["TxnTaxCodeRef"] = {"value": txn_code["Id"]}
                rates = [
                    company.table("TaxRate")[ref_id(d["TaxRateRef"]) or ""]
                    for d in (txn_code.get("SalesTaxRateList") or {}).get("TaxRateDetail", [])
                ]
            for rate in rates:
                by_rate[rate["Id"]] = by_rate.get(rate["Id"], Decimal("0")) + base * share
        lines = []
        total = Decimal("0")
        for rate_id, base in by_rate.items():
            rate = company.table("TaxRate")[rate_id]
            amount = money(base * rate["RateValue"] / 100)
            total += amount
            lines.append(
                {
                    "Amount": amount,
                    "DetailType": "TaxLineDetail",
                    "TaxLineDetail": {
                        "TaxRateRef": {"value": rate_id},
                        "PercentBased": True,
                        "TaxPercent": rate["RateValue"],
                        "NetAmountTaxable": money(base),
                    },
                }
            )
        detail["TotalTax"] = total
        if lines:
            detail["TaxLine"] = lines
        return detail, total

    def _discount_line(
        self, company: Company, raw: JSON, subtotal: Decimal
    ) -> tuple[JSON, Decimal]:
        detail = raw.get("DiscountLineDetail") or {}
        account = company.by_name("Account", "Discounts given")
        out: JSON = {
            "PercentBased": bool(detail.get("PercentBased")),
            "DiscountAccountRef": self._named_ref(account) if account else {},
        }
        percent = dec(detail.get("DiscountPercent"), "DiscountPercent")
        amount = dec(raw.get("Amount"), "Amount")
        if out["PercentBased"]:
            if percent is None:
                raise validation_discount()
            out["DiscountPercent"] = percent
            amount = money(subtotal * percent / 100)
        elif amount is None or amount == 0:
            if percent is None:
                raise validation_discount()
            out.update({"PercentBased": True, "DiscountPercent": percent})
            amount = money(subtotal * percent / 100)
        amount = money(amount)
        if amount > subtotal:
            raise exc.business_validation(
                "The discount can't be more than the subtotal.", "Line.Amount"
            )
        return {
            "Amount": amount,
            "DetailType": "DiscountLineDetail",
            "DiscountLineDetail": out,
        }, amount

    def _doc_number(self, company: Company, entity: str, sent: Any, existing: JSON | None) -> str:
        if sent not in (None, ""):
            doc = str(sent)
            if len(doc) > 21:
                raise exc.invalid_value("DocNumber", doc, "at most 21 characters")
            for other in company.table(entity).values():
                if other.get("DocNumber") == doc and not (
                    existing and other["Id"] == existing["Id"]
                ):
                    raise exc.duplicate_doc_number(doc, entity, other["Id"])
            return doc
        if existing and existing.get("DocNumber"):
            return str(existing["DocNumber"])
        taken = {
            str(o.get("DocNumber"))
            for e in ("Invoice", "CreditMemo")
            for o in company.table(e).values()
        }
        while str(company.next_doc_number) in taken:
            company.next_doc_number += 1
        doc = str(company.next_doc_number)
        company.next_doc_number += 1
        return doc

    def _due_date(self, company: Company, obj: JSON, data: JSON, customer: JSON) -> None:
        term_ref = (
            data.get("SalesTermRef") or customer.get("SalesTermRef") or default_terms(company)
        )
        term = self._ref(company, "Term", term_ref, "SalesTermRef") if term_ref else None
        if term is not None:
            obj["SalesTermRef"] = self._named_ref(term)
        due = _date(data.get("DueDate"), "DueDate")
        if due is None:
            txn_date = date.fromisoformat(obj["TxnDate"])
            days = int(term.get("DueDays", 0)) if term and term.get("Type") == "STANDARD" else 0
            due = txn_date + timedelta(days=days)
        obj["DueDate"] = due.isoformat()

    # ---- payments ----------------------------------------------------------------------------
    def _build_payment(
        self, company: Company, spec: EntitySpec, data: JSON, existing: JSON | None
    ) -> JSON:
        customer = self._customer(company, data)
        code, rate = self._txn_currency(company, data, customer)
        total = dec(data.get("TotalAmt"), "TotalAmt")
        if total is None:
            raise exc.required_param("TotalAmt")
        if total < 0:
            raise exc.business_validation("The payment amount can't be negative.", "TotalAmt")
        previous = self._applications_of(company, existing["Id"]) if existing else {}
        lines = []
        applied = Decimal("0")
        for raw in data.get("Line") or []:
            amount = dec(raw.get("Amount"), "Line.Amount")
            if amount is None:
                raise exc.required_param("Line.Amount")
            links = raw.get("LinkedTxn") or []
            if not links:
                raise exc.required_param("Line.LinkedTxn")
            link = links[0]
            txn_type = str(link.get("TxnType") or "")
            if txn_type not in ("Invoice", "CreditMemo"):
                raise exc.invalid_value(
                    "Line.LinkedTxn.TxnType", txn_type, "use Invoice or CreditMemo"
                )
            txn_id = str(link.get("TxnId") or "")
            target = company.find(txn_type, txn_id)
            if target is None:
                raise exc.invalid_reference(f"LinkedTxn {txn_type} element id {txn_id} not found")
            if ref_id(target.get("CustomerRef")) != customer["Id"]:
                raise exc.business_validation(
                    f"{txn_type} {target.get('DocNumber', txn_id)} belongs to another customer.",
                    "Line.LinkedTxn",
                )
            if (txn_type, txn_id) in company.voided:
                raise exc.business_validation(f"{txn_type} {txn_id} is voided.", "Line.LinkedTxn")
            key = "Balance" if txn_type == "Invoice" else "RemainingCredit"
            open_amount = Decimal(str(target.get(key, 0))) + previous.get(txn_id, Decimal("0"))
            if amount > open_amount:
                raise exc.business_validation(
                    f"The amount applied to {txn_type} {target.get('DocNumber', txn_id)} "
                    f"({money(amount)}) is more than its open balance ({money(open_amount)}).",
                    "Line.Amount",
                )
            applied += amount if txn_type == "Invoice" else -amount
            lines.append(
                {
                    "Amount": money(amount),
                    "LinkedTxn": [{"TxnId": txn_id, "TxnType": txn_type}],
                }
            )
        unapplied = total - applied
        if unapplied < 0:
            raise exc.business_validation(
                "The amount applied to transactions is more than the payment total.", "TotalAmt"
            )
        obj = {k: v for k, v in data.items() if k not in ("Line",)}
        deposit = data.get("DepositToAccountRef") or self._account_ref(company, "Undeposited Funds")
        obj.update(
            {
                "CustomerRef": {"value": customer["Id"], "name": customer["DisplayName"]},
                "CurrencyRef": {"value": code, "name": CURRENCY_NAMES[code]},
                "ExchangeRate": rate,
                "TotalAmt": money(total),
                "UnappliedAmt": money(unapplied),
                "Line": lines,
                "TxnDate": (_date(data.get("TxnDate"), "TxnDate") or self.today()).isoformat(),
                "DepositToAccountRef": self._named_ref(
                    self._ref(company, "Account", deposit, "DepositToAccountRef")
                ),
                "ARAccountRef": self._named_ref(
                    self._ref(
                        company,
                        "Account",
                        data.get("ARAccountRef")
                        or self._account_ref(company, "Accounts Receivable (A/R)"),
                        "ARAccountRef",
                    )
                ),
                "ProcessPayment": False,
            }
        )
        if data.get("PaymentMethodRef"):
            obj["PaymentMethodRef"] = self._named_ref(
                self._ref(company, "PaymentMethod", data["PaymentMethodRef"], "PaymentMethodRef")
            )
        return obj

    @staticmethod
    def _account_ref(company: Company, name: str) -> JSON | None:
        account = company.by_name("Account", name)
        return {"value": account["Id"]} if account else None

    def _applications_of(self, company: Company, payment_id: str) -> dict[str, Decimal]:
        return {
            txn_id: amounts[payment_id]
            for txn_id, amounts in company.applied.items()
            if payment_id in amounts
        }

    # ---- after a write: applications, balances -----------------------------------------------
    def _after_write(
        self,
        company: Company,
        spec: EntitySpec,
        old: JSON | None,
        new: JSON | None,
        events: _Events,
    ) -> None:
        customers = {ref_id(o.get("CustomerRef")) for o in (old, new) if o}
        if spec.name == "Payment":
            payment_id = (new or old or {})["Id"]
            touched = set(self._applications_of(company, payment_id))
            for amounts in company.applied.values():
                amounts.pop(payment_id, None)
            if new is not None and ("Payment", payment_id) not in company.voided:
                for line in new.get("Line", []):
                    link = line["LinkedTxn"][0]
                    company.applied.setdefault(link["TxnId"], {})[payment_id] = line["Amount"]
                    touched.add(link["TxnId"])
            for txn_id in sorted(touched):
                for entity in ("Invoice", "CreditMemo"):
                    target = company.find(entity, txn_id)
                    if target is not None:
                        self._refresh_txn(company, entity, target)
                        self._touch(company, entity, target, events, "Update")
        elif spec.name in ("Invoice", "CreditMemo"):
            txn_id = (new or old or {})["Id"]
            gone = new is None or (spec.name, txn_id) in company.voided
            if gone:
                self._unlink(company, txn_id, events)
            if new is not None:
                self._refresh_txn(company, spec.name, new)
        for customer_id in customers - {None}:
            self._refresh_customer(company, str(customer_id))

    def _unlink(self, company: Company, txn_id: str, events: _Events) -> None:
        """A deleted or voided invoice / credit memo releases the payments applied to it."""
        for payment_id in sorted(company.applied.pop(txn_id, {})):
            payment = company.find("Payment", payment_id)
            if payment is None:
                continue
            payment["Line"] = [
                ln for ln in payment.get("Line", []) if ln["LinkedTxn"][0]["TxnId"] != txn_id
            ]
            applied = sum(
                (
                    ln["Amount"] if ln["LinkedTxn"][0]["TxnType"] == "Invoice" else -ln["Amount"]
                    for ln in payment["Line"]
                ),
                Decimal("0"),
            )
            payment["UnappliedAmt"] = money(Decimal(str(payment["TotalAmt"])) - applied)
            self._touch(company, "Payment", payment, events, "Update")

    def _refresh_txn(self, company: Company, entity: str, obj: JSON) -> None:
        applied = company.applied.get(obj["Id"], {})
        paid = sum(applied.values(), Decimal("0"))
        voided = (entity, obj["Id"]) in company.voided
        balance = Decimal("0") if voided else money(Decimal(str(obj["TotalAmt"])) - paid)
        links = [{"TxnId": pid, "TxnType": "Payment"} for pid in sorted(applied, key=int)]
        if links:
            obj["LinkedTxn"] = links
        else:
            obj.pop("LinkedTxn", None)
        obj["Balance"] = balance
        if entity == "CreditMemo":
            obj["RemainingCredit"] = balance
        elif "HomeTotalAmt" in obj:
            obj["HomeBalance"] = money(balance * Decimal(str(obj["ExchangeRate"])))

    def _refresh_customer(self, company: Company, customer_id: str) -> None:
        customer = company.find("Customer", customer_id)
        if customer is None:
            return
        balance = Decimal("0")
        for entity in TXN_ENTITIES:
            for txn in company.table(entity).values():
                if ref_id(txn.get("CustomerRef")) != customer_id:
                    continue
                if entity == "Invoice":
                    balance += Decimal(str(txn.get("Balance", 0)))
                elif entity == "Payment":
                    balance -= Decimal(str(txn.get("UnappliedAmt", 0)))
                else:
                    balance -= Decimal(str(txn.get("RemainingCredit", 0)))
        customer["Balance"] = customer["BalanceWithJobs"] = money(balance)

    # ---- attachments -------------------------------------------------------------------------
    def _upload_one(self, company: Company, part: UploadPart, meta_part: UploadPart | None) -> JSON:
        content_type = part.content_type.split(";")[0].strip().lower()
        if content_type not in UPLOAD_CONTENT_TYPES:
            raise exc.business_validation(
                f"The file type {content_type or '<none>'} is not supported. Supported types: ai, "
                "csv, doc, docx, eps, gif, jpeg, jpg, ods, pages, pdf, png, rtf, tif, txt, xls, "
                "xlsx, xml.",
                "ContentType",
            )
        if len(part.data) > self.upload_max_bytes:
            raise exc.upload_too_large(len(part.data), self.upload_max_bytes)
        sent: Any = {}
        if meta_part is not None:
            try:
                sent = loads(meta_part.data) if meta_part.data.strip() else {}
            except ValueError:
                raise exc.upload_metadata_type("text", meta_part.name) from None
            if isinstance(sent, dict) and isinstance(sent.get("Attachable"), dict):
                sent = sent["Attachable"]
            if not isinstance(sent, dict):
                raise exc.upload_metadata_type(type(sent).__name__, meta_part.name)
        metadata = writable(sent)
        metadata["FileName"] = metadata.get("FileName") or part.filename or "attachment"
        metadata["ContentType"] = content_type
        events = _Events()
        obj = self._create(company, SPECS["attachable"], metadata, events)
        obj["Size"] = Decimal(len(part.data))
        obj["FileAccessUri"] = f"/v3/company/{company.info.realm_id}/download/{obj['Id']}"
        obj["TempDownloadUri"] = (
            f"{self.base_url()}/_sandbox/files/{company.info.realm_id}/{obj['Id']}"
        )
        company.files[obj["Id"]] = part.data
        self._emit(company, events)
        return obj

    # ---- queries -----------------------------------------------------------------------------
    def _query(self, company: Company, text: str) -> JSON:
        parsed = qbql.parse(text)
        spec = spec_for(parsed.entity)
        if spec is None:
            raise exc.query_validation_error(f"Entity '{parsed.entity}' is not supported")
        for prop in parsed.properties():
            if prop.lower() not in spec.filterable:
                raise exc.query_validation_error(f"property '{prop}' is not queryable")
        rows = list(self._rows(company, spec).values())
        if spec.has_active and not parsed.mentions("Active"):
            rows = [r for r in rows if r.get("Active", True) is not False]
        rows = [r for r in rows if parsed.matches(r)]
        if parsed.count:
            return {"totalCount": len(rows)}
        rows.sort(key=qbql.sort_key("Id"))
        for prop, descending in reversed(parsed.order):
            rows.sort(key=qbql.sort_key(prop), reverse=descending)
        start = parsed.start_position - 1
        page = rows[start : start + parsed.max_results]
        if parsed.fields is not None:
            wanted = {f.lower() for f in parsed.fields}
            page = [
                {
                    **{k: v for k, v in r.items() if k.lower() in wanted or k == "Id"},
                    "domain": "QBO",
                    "sparse": True,
                }
                for r in page
            ]
        if not page:
            return {}
        return {spec.name: page, "startPosition": parsed.start_position, "maxResults": len(page)}

    def _changes(self, company: Company, entity: str, since: datetime) -> list[JSON]:
        rows: list[tuple[datetime, JSON]] = []
        for obj_id, obj in company.table(entity).items():
            when = company.updated.get((entity, obj_id))
            if when is not None and when >= since:
                rows.append((when, obj))
        for (name, obj_id), when in company.tombstones.items():
            if name == entity and when >= since:
                stamp = render_time(when, millis=False)
                rows.append(
                    (
                        when,
                        {
                            "domain": "QBO",
                            "status": "Deleted",
                            "Id": obj_id,
                            "MetaData": {"LastUpdatedTime": stamp},
                        },
                    )
                )
        rows.sort(key=lambda pair: pair[0])
        return [obj for _, obj in rows]

    def _parse_moment(self, text: str, name: str) -> datetime:
        try:
            moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace(" ", "+"))
        except ValueError:
            raise exc.invalid_value(name, text, "not a date-time (yyyy-MM-ddTHH:mm:ssZ)") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=exc.COMPANY_TZ)
        return moment

    def _exchange_rate_obj(self, company: Company, code: str, day: date) -> JSON:
        return {
            "SourceCurrencyCode": code,
            "TargetCurrencyCode": company.home_currency,
            "Rate": self._rate(company, code),
            "AsOfDate": day.isoformat(),
            "SyncToken": "0",
            "domain": "QBO",
            "sparse": False,
            "MetaData": {"LastUpdatedTime": render_time(self.now(), millis=False)},
        }

    # ---- seeding (seed.py) -------------------------------------------------------------------
    def put(self, company: Company, entity: str, obj: JSON, when: datetime) -> JSON:
        """Store a reference object as it is (seed data), stamped ``when``."""
        obj_id = str(obj.get("Id") or company.new_id(entity))
        stamp = render_time(when, millis=False)
        stored = {
            **obj,
            "Id": obj_id,
            "SyncToken": "0",
            "domain": "QBO",
            "sparse": False,
            "MetaData": {"CreateTime": stamp, "LastUpdatedTime": stamp},
        }
        company.table(entity)[obj_id] = stored
        company.updated[(entity, obj_id)] = when
        return stored

    def seed_create(self, company: Company, entity: str, data: JSON, when: datetime) -> JSON:
        """Create through the API rules (seed history), stamped ``when``, without webhooks."""
        self._pinned = when
        try:
            return self._create(company, SPECS[entity.lower()], data, _Events())
        finally:
            self._pinned = None


def _deep_merge(base: JSON, update: JSON) -> JSON:
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def validation_discount() -> QBOFault:
    return exc.validation(
        "Discount Line missing required info.",
        "Discount amount or percent should be provided.",
        6090,
    )


def default_terms(company: Company) -> JSON | None:
    prefs = next(iter(company.table("Preferences").values()), {})
    ref = (prefs.get("SalesFormsPrefs") or {}).get("DefaultTerms")
    return ref if ref_id(ref) else None


def company_default_tax_code(company: Company) -> str:
    prefs = next(iter(company.table("Preferences").values()), {})
    return str((prefs.get("TaxPrefs") or {}).get("TaxGroupCodeRef", {}).get("value", ""))


# AccountType → (Classification, default AccountSubType)
ACCOUNT_TYPES: dict[str, tuple[str, str]] = {
    "Bank": ("Asset", "Checking"),
    "Other Current Asset": ("Asset", "OtherCurrentAssets"),
    "Fixed Asset": ("Asset", "OtherFixedAssets"),
    "Other Asset": ("Asset", "OtherLongTermAssets"),
    "Accounts Receivable": ("Asset", "AccountsReceivable"),
    "Equity": ("Equity", "OpeningBalanceEquity"),
    "Expense": ("Expense", "OtherMiscellaneousServiceCost"),
    "Other Expense": ("Expense", "OtherMiscellaneousExpense"),
    "Cost of Goods Sold": ("Expense", "SuppliesMaterialsCogs"),
    "Accounts Payable": ("Liability", "AccountsPayable"),
    "Credit Card": ("Liability", "CreditCard"),
    "Long Term Liability": ("Liability", "OtherLongTermLiabilities"),
    "Other Current Liability": ("Liability", "OtherCurrentLiabilities"),
    "Income": ("Revenue", "ServiceFeeIncome"),
    "Other Income": ("Revenue", "OtherMiscellaneousIncome"),
}
_TYPE_OF_SUBTYPE = {
    "Checking": "Bank",
    "Savings": "Bank",
    "UndepositedFunds": "Other Current Asset",
    "Inventory": "Other Current Asset",
    "AccountsReceivable": "Accounts Receivable",
    "AccountsPayable": "Accounts Payable",
    "ServiceFeeIncome": "Income",
    "SalesOfProductIncome": "Income",
    "DiscountsRefundsGiven": "Income",
    "SuppliesMaterialsCogs": "Cost of Goods Sold",
    "OpeningBalanceEquity": "Equity",
    "GlobalTaxPayable": "Other Current Liability",
}
