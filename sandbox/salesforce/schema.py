"""The org's objects and fields: one description that describe, SOQL and write validation all read.

Field types are Salesforce's describe types (``string``, ``textarea``, ``email``, ``url``,
``phone``, ``picklist``, ``boolean``, ``date``, ``datetime``, ``currency``, ``double``,
``percent``, ``int``, ``id``, ``reference``). Names are case-insensitive everywhere, as in
Salesforce; ``ObjectDef.field()`` and ``Schema.get()`` resolve them to the canonical spelling.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from sandbox.demo_company import KEY_PREFIX

ACTIVE_CURRENCIES = ("USD", "EUR", "GBP")
CORPORATE_CURRENCY = "USD"

STAGE_PROBABILITY: dict[str, int] = {
    "Prospecting": 10,
    "Qualification": 20,
    "Needs Analysis": 20,
    "Value Proposition": 50,
    "Id. Decision Makers": 60,
    "Perception Analysis": 70,
    "Proposal/Price Quote": 75,
    "Negotiation/Review": 90,
    "Closed Won": 100,
    "Closed Won - Paid": 100,
    "Closed Lost": 0,
}
CLOSED_STAGES = {"Closed Won": True, "Closed Won - Paid": True, "Closed Lost": False}

SOAP_TYPES = {
    "id": "tns:ID",
    "reference": "tns:ID",
    "boolean": "xsd:boolean",
    "date": "xsd:date",
    "datetime": "xsd:dateTime",
    "currency": "xsd:double",
    "double": "xsd:double",
    "percent": "xsd:double",
    "int": "xsd:int",
    "base64": "xsd:base64Binary",
}
TEXT_TYPES = {"string", "textarea", "email", "url", "phone", "picklist", "combobox"}
NUMBER_TYPES = {"currency", "double", "percent", "int"}
ID_TYPES = {"id", "reference"}


@dataclass(frozen=True)
class FieldDef:
    name: str
    label: str
    type: str
    length: int = 0
    precision: int = 0
    scale: int = 0
    nillable: bool = True
    createable: bool = True
    updateable: bool = True
    required: bool = False  # must be given on create (not nillable, not defaulted)
    defaulted: bool = False  # the backend fills it on create when absent
    external_id: bool = False
    unique: bool = False
    picklist: tuple[str, ...] = ()
    restricted: bool = False
    reference_to: tuple[str, ...] = ()
    relationship_name: str | None = None
    calculated: bool = False
    auto_number: bool = False
    name_field: bool = False

    @property
    def custom(self) -> bool:
        return self.name.endswith("__c")

    @property
    def writable(self) -> bool:
        return self.createable or self.updateable

    def describe(self) -> dict[str, Any]:
        """The field's entry in ``sobjects/{Object}/describe``."""
        text = self.type in TEXT_TYPES
        return {
            "aggregatable": self.type != "textarea" or self.length <= 255,
            "autoNumber": self.auto_number,
            "byteLength": self.length * 3 if text or self.type in ID_TYPES else 0,
            "calculated": self.calculated,
            "cascadeDelete": False,
            "caseSensitive": False,
            "createable": self.createable,
            "custom": self.custom,
            "defaultValue": None,
            "defaultedOnCreate": self.defaulted,
            "dependentPicklist": False,
            "digits": self.precision if self.type == "int" else 0,
            "externalId": self.external_id,
            "filterable": not (self.type == "textarea" and self.length > 255)
            and self.type != "base64",
            "groupable": self.type
            not in {"textarea", "currency", "double", "percent", "datetime", "base64"},
            "htmlFormatted": False,
            "idLookup": self.type == "id" or self.external_id or self.name_field,
            "label": self.label,
            "length": self.length if text or self.type in ID_TYPES else 0,
            "name": self.name,
            "nameField": self.name_field,
            "nillable": self.nillable,
            "permissionable": self.nillable and not self.calculated and self.writable,
            "picklistValues": [
                {"active": True, "defaultValue": False, "label": v, "validFor": None, "value": v}
                for v in self.picklist
            ],
            "polymorphicForeignKey": len(self.reference_to) > 1,
            "precision": self.precision if self.type in {"currency", "double", "percent"} else 0,
            "referenceTo": list(self.reference_to),
            "relationshipName": self.relationship_name,
            "restrictedPicklist": self.restricted,
            "scale": self.scale,
            "soapType": SOAP_TYPES.get(self.type, "xsd:string"),
            "sortable": not (self.type == "textarea" and self.length > 255)
            and self.type != "base64",
            "type": self.type,
            "unique": self.unique,
            "updateable": self.updateable,
        }


@dataclass(frozen=True)
class ChildRelationship:
    relationship_name: str
    child_sobject: str
    field: str
    cascade_delete: bool = False

    def describe(self) -> dict[str, Any]:
        return {
            "cascadeDelete": self.cascade_delete,
            "childSObject": self.child_sobject,
            "deprecatedAndHidden": False,
            "field": self.field,
            "junctionIdListNames": [],
            "junctionReferenceTo": [],
            "relationshipName": self.relationship_name,
            "restrictedDelete": False,
        }


@dataclass
class ObjectDef:
    name: str
    label: str
    label_plural: str
    fields: dict[str, FieldDef]
    createable: bool = True
    updateable: bool = True
    deletable: bool = True
    children: list[ChildRelationship] = field(default_factory=list)
    _by_lower: dict[str, FieldDef] = field(default_factory=dict, repr=False)
    _rel_by_lower: dict[str, FieldDef] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._by_lower = {name.lower(): f for name, f in self.fields.items()}
        self._rel_by_lower = {
            f.relationship_name.lower(): f for f in self.fields.values() if f.relationship_name
        }

    @property
    def key_prefix(self) -> str:
        return KEY_PREFIX[self.name]

    @property
    def custom(self) -> bool:
        return self.name.endswith("__c")

    def field(self, name: str) -> FieldDef | None:
        return self._by_lower.get(name.lower())

    def relationship(self, name: str) -> FieldDef | None:
        """The lookup field behind a parent relationship name (``Account`` → ``AccountId``)."""
        return self._rel_by_lower.get(name.lower())

    def child(self, name: str) -> ChildRelationship | None:
        lowered = name.lower()
        return next((c for c in self.children if c.relationship_name.lower() == lowered), None)

    def url(self, version: str) -> str:
        return f"/services/data/v{version}/sobjects/{self.name}"

    def describe_global(self, version: str) -> dict[str, Any]:
        """The object's entry in ``sobjects/`` (describeGlobal)."""
        base = self.url(version)
        return {
            "activateable": False,
            "createable": self.createable,
            "custom": self.custom,
            "customSetting": False,
            "deepCloneable": False,
            "deletable": self.deletable,
            "deprecatedAndHidden": False,
            "feedEnabled": self.name in {"Account", "Contact", "Opportunity", "Contract"},
            "hasSubtypes": False,
            "isInterface": False,
            "isSubtype": False,
            "keyPrefix": self.key_prefix,
            "label": self.label,
            "labelPlural": self.label_plural,
            "layoutable": self.name != "Organization",
            "mergeable": self.name in {"Account", "Contact"},
            "mruEnabled": self.createable,
            "name": self.name,
            "queryable": True,
            "replicateable": True,
            "retrieveable": True,
            "searchable": self.name not in {"RecordType", "Organization", "PricebookEntry"},
            "triggerable": self.createable,
            "undeletable": self.deletable,
            "updateable": self.updateable,
            "urls": {
                "rowTemplate": f"{base}/{{ID}}",
                "defaultValues": f"{base}/defaultValues?recordTypeId&fields",
                "describe": f"{base}/describe",
                "sobject": base,
            },
        }


# ---- field constructors ----------------------------------------------------------------------


def _f(name: str, label: str, type_: str, **kw: Any) -> FieldDef:
    return FieldDef(name=name, label=label, type=type_, **kw)


def text(name: str, label: str, length: int = 255, **kw: Any) -> FieldDef:
    return _f(name, label, "string", length=length, **kw)


def textarea(name: str, label: str, length: int = 32000, **kw: Any) -> FieldDef:
    return _f(name, label, "textarea", length=length, **kw)


def picklist(
    name: str, label: str, values: Iterable[str], length: int = 255, **kw: Any
) -> FieldDef:
    return _f(name, label, "picklist", length=length, picklist=tuple(values), **kw)


def checkbox(name: str, label: str, **kw: Any) -> FieldDef:
    return _f(name, label, "boolean", nillable=False, defaulted=True, **kw)


def number(
    name: str, label: str, type_: str = "double", precision: int = 18, scale: int = 0, **kw: Any
) -> FieldDef:
    return _f(name, label, type_, precision=precision, scale=scale, **kw)


def lookup(
    name: str, label: str, to: str | tuple[str, ...], relationship: str, **kw: Any
) -> FieldDef:
    targets = (to,) if isinstance(to, str) else to
    return _f(
        name,
        label,
        "reference",
        length=18,
        reference_to=targets,
        relationship_name=relationship,
        **kw,
    )


def readonly(f: FieldDef) -> FieldDef:
    return replace(f, createable=False, updateable=False)


def _system_fields(owned: bool, currency: bool) -> list[FieldDef]:
    fields = [
        _f(
            "Id",
            "Record ID",
            "id",
            length=18,
            nillable=False,
            createable=False,
            updateable=False,
            defaulted=True,
        ),
        checkbox("IsDeleted", "Deleted", createable=False, updateable=False),
        _f(
            "CreatedDate",
            "Created Date",
            "datetime",
            nillable=False,
            createable=False,
            updateable=False,
            defaulted=True,
        ),
        lookup(
            "CreatedById",
            "Created By ID",
            "User",
            "CreatedBy",
            nillable=False,
            createable=False,
            updateable=False,
            defaulted=True,
        ),
        _f(
            "LastModifiedDate",
            "Last Modified Date",
            "datetime",
            nillable=False,
            createable=False,
            updateable=False,
            defaulted=True,
        ),
        lookup(
            "LastModifiedById",
            "Last Modified By ID",
            "User",
            "LastModifiedBy",
            nillable=False,
            createable=False,
            updateable=False,
            defaulted=True,
        ),
        _f(
            "SystemModstamp",
            "System Modstamp",
            "datetime",
            nillable=False,
            createable=False,
            updateable=False,
            defaulted=True,
        ),
    ]
    if owned:
        fields.append(
            lookup("OwnerId", "Owner ID", "User", "Owner", nillable=False, defaulted=True)
        )
    if currency:
        fields.append(
            picklist(
                "CurrencyIsoCode",
                "Currency ISO Code",
                ACTIVE_CURRENCIES,
                length=3,
                nillable=False,
                defaulted=True,
                restricted=True,
            )
        )
    return fields


def _object(
    name: str,
    label: str,
    plural: str,
    fields: list[FieldDef],
    *,
    owned: bool = False,
    currency: bool = True,
    **kw: Any,
) -> ObjectDef:
    system = _system_fields(owned, currency)
    ordered = [system[0], *fields, *system[1:]]
    return ObjectDef(name, label, plural, {f.name: f for f in ordered}, **kw)


# ---- the org ---------------------------------------------------------------------------------

_ADDRESS = [
    textarea("{p}Street", "{l} Street", 255),
    text("{p}City", "{l} City", 40),
    text("{p}State", "{l} State/Province", 80),
    text("{p}PostalCode", "{l} Zip/Postal Code", 20),
    text("{p}Country", "{l} Country", 80),
]


def _address(prefix: str, label: str) -> list[FieldDef]:
    return [
        replace(f, name=f.name.format(p=prefix), label=f.label.format(l=label)) for f in _ADDRESS
    ]


INDUSTRIES = (
    "Agriculture",
    "Banking",
    "Consulting",
    "Education",
    "Energy",
    "Entertainment",
    "Finance",
    "Healthcare",
    "Manufacturing",
    "Media",
    "Retail",
    "Technology",
    "Transportation",
    "Other",
)

USER = _object(
    "User",
    "User",
    "Users",
    [
        text("Username", "Username", 80, nillable=False, required=True, unique=True),
        text("FirstName", "First Name", 40),
        text("LastName", "Last Name", 80, nillable=False, required=True),
        readonly(text("Name", "Full Name", 121, name_field=True)),
        _f("Email", "Email", "email", length=128, nillable=False, required=True),
        checkbox("IsActive", "Active"),
        text("Title", "Title", 80),
    ],
    currency=False,
)

RECORD_TYPE = _object(
    "RecordType",
    "Record Type",
    "Record Types",
    [
        text("Name", "Name", 80, nillable=False, name_field=True),
        text("DeveloperName", "Record Type Name", 80, nillable=False),
        picklist(
            "SobjectType",
            "SObject Type Name",
            ("Account", "Opportunity"),
            length=40,
            nillable=False,
        ),
        checkbox("IsActive", "Active"),
        textarea("Description", "Description", 255),
    ],
    currency=False,
    createable=False,
    updateable=False,
    deletable=False,
)

ORGANIZATION = _object(
    "Organization",
    "Organization",
    "Organizations",
    [
        text("Name", "Name", 80, nillable=False, name_field=True),
        checkbox("IsSandbox", "Is Sandbox"),
        picklist(
            "OrganizationType", "Edition", ("Enterprise Edition", "Unlimited Edition"), length=40
        ),
        picklist("DefaultLocaleSidKey", "Locale", ("en_US",), length=40),
        picklist("DefaultCurrencyIsoCode", "Currency", ACTIVE_CURRENCIES, length=3),
    ],
    currency=False,
    createable=False,
    updateable=False,
    deletable=False,
)

PAYMENT_TERMS = ("Net 15", "Net 30", "Net 60", "Due on receipt")


ACCOUNT = _object(
    "Account",
    "Account",
    "Accounts",
    [
        text("Name", "Account Name", 255, nillable=False, required=True, name_field=True),
        _f("Website", "Website", "url", length=255),
        _f("Phone", "Account Phone", "phone", length=40),
        picklist("Industry", "Industry", INDUSTRIES),
        picklist("Type", "Account Type", ("Prospect", "Customer", "Partner", "Other")),
        *_address("Billing", "Billing"),
        *_address("Shipping", "Shipping"),
        textarea("Description", "Account Description"),
        _f("Billing_Email__c", "Billing Email", "email", length=80),
        picklist("Payment_Terms__c", "Payment Terms", PAYMENT_TERMS, restricted=True),
        checkbox("Tax_Exempt__c", "Tax Exempt"),
        text("QB_Customer_Id__c", "QuickBooks Customer Id", 64, external_id=True),
        text("External_Id__c", "External Id", 64, external_id=True, unique=True),
    ],
    owned=True,
    children=[
        ChildRelationship("Contacts", "Contact", "AccountId", cascade_delete=True),
        ChildRelationship("Opportunities", "Opportunity", "AccountId", cascade_delete=True),
        ChildRelationship("Contracts", "Contract", "AccountId", cascade_delete=True),
        ChildRelationship("ContentDocumentLinks", "ContentDocumentLink", "LinkedEntityId", True),
    ],
)

CONTACT = _object(
    "Contact",
    "Contact",
    "Contacts",
    [
        lookup("AccountId", "Account ID", "Account", "Account"),
        text("FirstName", "First Name", 40),
        text("LastName", "Last Name", 80, nillable=False, required=True),
        readonly(text("Name", "Full Name", 121, name_field=True)),
        _f("Email", "Email", "email", length=80),
        _f("Phone", "Business Phone", "phone", length=40),
        text("Title", "Title", 128),
    ],
    owned=True,
)

PRODUCT = _object(
    "Product2",
    "Product",
    "Products",
    [
        text("Name", "Product Name", 255, nillable=False, required=True, name_field=True),
        text("ProductCode", "Product Code", 255),
        picklist("Family", "Product Family", ("Subscription", "Services", "Add-on", "None")),
        checkbox("IsActive", "Active"),
        textarea("Description", "Product Description", 4000),
    ],
    children=[ChildRelationship("PricebookEntries", "PricebookEntry", "Product2Id", True)],
)

PRICEBOOK = _object(
    "Pricebook2",
    "Price Book",
    "Price Books",
    [
        text("Name", "Price Book Name", 255, nillable=False, required=True, name_field=True),
        checkbox("IsActive", "Active"),
        checkbox("IsStandard", "Is Standard Price Book", createable=False, updateable=False),
        textarea("Description", "Description", 255),
    ],
    currency=False,
    children=[
        ChildRelationship("PricebookEntries", "PricebookEntry", "Pricebook2Id", True),
    ],
)

PRICEBOOK_ENTRY = _object(
    "PricebookEntry",
    "Price Book Entry",
    "Price Book Entries",
    [
        readonly(text("Name", "Product Name", 255, name_field=True)),
        lookup(
            "Pricebook2Id",
            "Price Book ID",
            "Pricebook2",
            "Pricebook2",
            nillable=False,
            required=True,
            updateable=False,
        ),
        lookup(
            "Product2Id",
            "Product ID",
            "Product2",
            "Product2",
            nillable=False,
            required=True,
            updateable=False,
        ),
        number("UnitPrice", "List Price", "currency", 18, 2, nillable=False, required=True),
        checkbox("IsActive", "Active"),
        checkbox("UseStandardPrice", "Use Standard Price"),
        readonly(text("ProductCode", "Product Code", 255)),
    ],
)

OPPORTUNITY_STAGES = tuple(STAGE_PROBABILITY)
SYNC_STATUSES = ("Pending", "Awaiting Approval", "Invoiced", "Rejected", "Needs Review", "Error")

OPPORTUNITY = _object(
    "Opportunity",
    "Opportunity",
    "Opportunities",
    [
        text("Name", "Opportunity Name", 120, nillable=False, required=True, name_field=True),
        lookup("AccountId", "Account ID", "Account", "Account"),
        lookup("RecordTypeId", "Record Type ID", "RecordType", "RecordType", defaulted=True),
        picklist(
            "StageName", "Stage", OPPORTUNITY_STAGES, nillable=False, required=True, restricted=True
        ),
        _f("CloseDate", "Close Date", "date", nillable=False, required=True),
        number("Amount", "Amount", "currency", 18, 2),
        number("Probability", "Probability (%)", "percent", 3, 0, defaulted=True),
        checkbox("IsClosed", "Closed", createable=False, updateable=False),
        checkbox("IsWon", "Won", createable=False, updateable=False),
        textarea("Description", "Description"),
        lookup("Pricebook2Id", "Price Book ID", "Pricebook2", "Pricebook2"),
        lookup("ContractId", "Contract ID", "Contract", "Contract"),
        text("QB_Invoice_Id__c", "QuickBooks Invoice Id", 64, external_id=True),
        text("QB_DocNumber__c", "QuickBooks Invoice Number", 64),
        text("QB_Realm__c", "QuickBooks Realm", 64),
        text("QB_Customer_Id__c", "QuickBooks Customer Id", 64),
        _f("QB_Invoice_URL__c", "QuickBooks Invoice URL", "url", length=255),
        text("QB_Approved_By__c", "Invoice Approved By", 255),
        _f("QB_Approved_At__c", "Invoice Approved At", "datetime"),
        picklist("QB_Sync_Status__c", "QuickBooks Sync Status", SYNC_STATUSES, restricted=True),
        textarea("QB_Sync_Error__c", "QuickBooks Sync Error", 32768),
        picklist("Payment_Terms__c", "Payment Terms", PAYMENT_TERMS, restricted=True),
        picklist(
            "Payment_Status__c",
            "Payment Status",
            ("Unpaid", "Partially Paid", "Paid"),
            restricted=True,
        ),
        number("Amount_Paid__c", "Amount Paid", "currency", 16, 2),
        number("Days_Outstanding__c", "Days Outstanding", "double", 6, 0),
        text("Aging_Bucket__c", "Aging Bucket", 32),
        checkbox("Invoice_Sent__c", "Invoice Sent"),
    ],
    owned=True,
    children=[
        ChildRelationship("OpportunityLineItems", "OpportunityLineItem", "OpportunityId", True),
        ChildRelationship("ContentDocumentLinks", "ContentDocumentLink", "LinkedEntityId", True),
    ],
)

OPPORTUNITY_LINE_ITEM = _object(
    "OpportunityLineItem",
    "Opportunity Product",
    "Opportunity Product",
    [
        lookup(
            "OpportunityId",
            "Opportunity ID",
            "Opportunity",
            "Opportunity",
            nillable=False,
            required=True,
            updateable=False,
        ),
        lookup(
            "PricebookEntryId",
            "Price Book Entry ID",
            "PricebookEntry",
            "PricebookEntry",
            required=True,
            updateable=False,
        ),
        readonly(lookup("Product2Id", "Product ID", "Product2", "Product2")),
        readonly(text("ProductCode", "Product Code", 255)),
        readonly(text("Name", "Opportunity Product Name", 376, name_field=True)),
        number("Quantity", "Quantity", "double", 12, 2, nillable=False, required=True),
        number("UnitPrice", "Sales Price", "currency", 18, 2, required=True),
        readonly(number("ListPrice", "List Price", "currency", 18, 2)),
        number("Discount", "Discount", "percent", 18, 2),
        readonly(number("TotalPrice", "Total Price", "currency", 18, 2)),
        textarea("Description", "Line Description", 255),
        _f("ServiceDate", "Date", "date"),
        number("SortOrder", "Sort Order", "int", 9, 0),
    ],
)

CONTRACT = _object(
    "Contract",
    "Contract",
    "Contracts",
    [
        lookup("AccountId", "Account ID", "Account", "Account", nillable=False, required=True),
        picklist(
            "Status",
            "Status",
            ("Draft", "Activated", "Expired"),
            nillable=False,
            defaulted=True,
            restricted=True,
        ),
        _f("StartDate", "Contract Start Date", "date"),
        number("ContractTerm", "Contract Term (months)", "int", 4, 0),
        readonly(_f("EndDate", "Contract End Date", "date", calculated=True)),
        readonly(
            text(
                "ContractNumber",
                "Contract Number",
                30,
                auto_number=True,
                name_field=True,
                nillable=False,
            )
        ),
        textarea("Description", "Description"),
        lookup("Renewal_Product__c", "Renewal Product", "Product2", "Renewal_Product__r"),
        number("Renewal_Quantity__c", "Renewal Quantity", "double", 10, 2),
        number("Renewal_Unit_Price__c", "Renewal Unit Price", "currency", 16, 2),
        _f("Last_Invoice_Date__c", "Last Invoice Date", "date"),
        text("QB_Renewal_Invoice_Id__c", "QuickBooks Renewal Invoice Id", 64),
        _f("Renewal_Reminder_Sent__c", "Renewal Reminder Sent", "date"),
        checkbox("Auto_Renew__c", "Auto Renew"),
    ],
    owned=True,
)

TASK_STATUSES = ("Not Started", "In Progress", "Completed", "Waiting on someone else", "Deferred")

TASK = _object(
    "Task",
    "Task",
    "Tasks",
    [
        text("Subject", "Subject", 255),
        lookup("WhatId", "Related To ID", ("Account", "Opportunity", "Contract"), "What"),
        lookup("WhoId", "Name ID", ("Contact",), "Who"),
        _f("ActivityDate", "Due Date Only", "date"),
        picklist(
            "Status", "Status", TASK_STATUSES, nillable=False, defaulted=True, restricted=True
        ),
        picklist(
            "Priority",
            "Priority",
            ("High", "Normal", "Low"),
            nillable=False,
            defaulted=True,
            restricted=True,
        ),
        textarea("Description", "Description"),
    ],
    owned=True,
)


# ---- Salesforce Files (see sandbox/salesforce/content.py for their rules) ---------------------

# Records a file can be shared with (ContentDocumentLink.LinkedEntityId, FirstPublishLocationId).
FILE_LINK_TARGETS = ("Account", "Contact", "Contract", "Opportunity", "User")

CONTENT_DOCUMENT = _object(
    "ContentDocument",
    "Content Document",
    "Content Documents",
    [
        text("Title", "Title", 255, nillable=False, name_field=True),
        textarea("Description", "Description", 1000),
        readonly(lookup("LatestPublishedVersionId", "Latest Published Version ID",
                        "ContentVersion", "LatestPublishedVersion")),
        readonly(number("ContentSize", "Size", "int", 10, 0)),
        readonly(text("FileType", "File Type", 20)),
        readonly(text("FileExtension", "File Extension", 40)),
        readonly(picklist("PublishStatus", "Publish Status", ("U", "P", "R"), length=40)),
        readonly(checkbox("IsArchived", "Is Archived")),
    ],
    owned=True,
    currency=False,
    createable=False,
    children=[
        ChildRelationship("ContentVersions", "ContentVersion", "ContentDocumentId", True),
        ChildRelationship("ContentDocumentLinks", "ContentDocumentLink", "ContentDocumentId", True),
    ],
)  # fmt: skip

CONTENT_VERSION = _object(
    "ContentVersion",
    "Content Version",
    "Content Versions",
    [
        lookup("ContentDocumentId", "ContentDocument ID", "ContentDocument", "ContentDocument",
               updateable=False, defaulted=True),
        text("Title", "Title", 255, nillable=False, defaulted=True, name_field=True),
        textarea("Description", "Description", 1000),
        text("PathOnClient", "Path On Client", 500, required=True, updateable=False),
        _f("VersionData", "Version Data", "base64", required=True, updateable=False),
        text("ReasonForChange", "Reason For Change", 1000),
        lookup("FirstPublishLocationId", "First Publish Location ID", FILE_LINK_TARGETS,
               "FirstPublishLocation", updateable=False),
        readonly(number("ContentSize", "Size", "int", 10, 0)),
        readonly(text("FileType", "File Type", 20)),
        readonly(text("FileExtension", "File Extension", 40)),
        readonly(checkbox("IsLatest", "Is Latest")),
        readonly(text("VersionNumber", "Version Number", 20)),
        readonly(text("Checksum", "Checksum", 50)),
        picklist("Origin", "Content Origin", ("C", "H"), length=40, defaulted=True),
        picklist("ContentLocation", "Document Location", ("S", "E", "L"), length=40,
                 defaulted=True),
        readonly(picklist("PublishStatus", "Publish Status", ("U", "P", "R"), length=40)),
    ],
    owned=True,
    currency=False,
    deletable=False,
)  # fmt: skip

CONTENT_DOCUMENT_LINK = _object(
    "ContentDocumentLink",
    "Content Document Link",
    "Content Document Links",
    [
        lookup("LinkedEntityId", "Linked Entity ID", FILE_LINK_TARGETS, "LinkedEntity",
               nillable=False, required=True, updateable=False),
        lookup("ContentDocumentId", "ContentDocument ID", "ContentDocument", "ContentDocument",
               nillable=False, required=True, updateable=False),
        picklist("ShareType", "Share Type", ("V", "C", "I"), length=40, nillable=False,
                 defaulted=True, restricted=True),
        picklist("Visibility", "Visibility", ("AllUsers", "InternalUsers", "SharedUsers"),
                 length=40, defaulted=True, restricted=True),
    ],
    currency=False,
)  # fmt: skip


class Schema:
    """All objects of the org, looked up case-insensitively."""

    def __init__(self, objects: Iterable[ObjectDef]) -> None:
        self._objects = {o.name: o for o in objects}
        self._by_lower = {name.lower(): o for name, o in self._objects.items()}

    def get(self, name: str) -> ObjectDef | None:
        return self._by_lower.get(name.lower())

    def __getitem__(self, name: str) -> ObjectDef:
        found = self.get(name)
        if found is None:
            raise KeyError(name)
        return found

    def __iter__(self) -> Iterator[ObjectDef]:
        return iter(self._objects.values())


SCHEMA = Schema(
    [
        ACCOUNT,
        CONTACT,
        CONTENT_DOCUMENT,
        CONTENT_DOCUMENT_LINK,
        CONTENT_VERSION,
        CONTRACT,
        OPPORTUNITY,
        OPPORTUNITY_LINE_ITEM,
        ORGANIZATION,
        PRICEBOOK,
        PRICEBOOK_ENTRY,
        PRODUCT,
        RECORD_TYPE,
        TASK,
        USER,
    ]
)
