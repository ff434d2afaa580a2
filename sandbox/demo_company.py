"""The demo company both seeds load: one deterministic description, so that the Salesforce org and
the QuickBooks companies agree (record types → realms, products → items, accounts → customers).

Pure data. Dates are relative to ``today`` so the demo always has fresh closed-won deals,
renewals at T+7 and invoices of every age. Dirt is deliberate: near-duplicate names, a customer
only findable by email domain, an ambiguous match, a name taken by a QuickBooks vendor, an
account with no billing address, a deal with no line items, a product with no QuickBooks item,
unicode and apostrophes.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from functools import cache
from typing import Any

_CHECKSUM_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

ORG_ID_15 = "00D5g00000Rb7Qx"

# Salesforce key prefixes (first three characters of an Id).
KEY_PREFIX = {
    "Account": "001",
    "Contact": "003",
    "Opportunity": "006",
    "User": "005",
    "RecordType": "012",
    "Product2": "01t",
    "Pricebook2": "01s",
    "PricebookEntry": "01u",
    "OpportunityLineItem": "00k",
    "Contract": "800",
    "Task": "00T",
    "ContentDocument": "069",
    "ContentVersion": "068",
    "ContentDocumentLink": "06A",
    "Organization": "00D",
}


def salesforce_checksum(id15: str) -> str:
    """The three-character case-safe suffix Salesforce appends to a 15-character Id."""
    suffix = ""
    for chunk in range(3):
        bits = 0
        for i, ch in enumerate(id15[chunk * 5 : chunk * 5 + 5]):
            if "A" <= ch <= "Z":
                bits |= 1 << i
        suffix += _CHECKSUM_ALPHABET[bits]
    return suffix


def salesforce_id(sobject: str, n: int, pod: str = "5g") -> str:
    """The n-th 18-character Id of an object type: prefix + pod + base-62 counter + checksum."""
    prefix = KEY_PREFIX[sobject]
    digits = ""
    value = n
    for _ in range(12 - len(pod)):
        digits = _BASE62[value % 62] + digits
        value //= 62
    id15 = f"{prefix}{pod}{digits}"
    return id15 + salesforce_checksum(id15)


ORG_ID = ORG_ID_15 + salesforce_checksum(ORG_ID_15)


@dataclass(frozen=True)
class Realm:
    key: str
    realm_id: str
    company_name: str
    record_type: str  # Opportunity RecordType.DeveloperName routed to this realm
    record_type_label: str
    currency: str
    country: str
    email: str


@dataclass(frozen=True)
class User:
    key: str
    first_name: str
    last_name: str
    email: str
    slack_user_id: str
    title: str

    @property
    def name(self) -> str:
        return f"{self.first_name} {self.last_name}"


@dataclass(frozen=True)
class Product:
    code: str  # Product2.ProductCode
    name: str
    family: str
    unit_price: Decimal
    qbo_item_name: str | None  # None: no QuickBooks item exists (an unmapped product)
    qbo_item_type: str = "Service"


@dataclass(frozen=True)
class Account:
    key: str
    name: str
    website: str | None
    billing_street: str | None
    billing_city: str | None
    billing_state: str | None
    billing_postal_code: str | None
    billing_country: str | None
    phone: str | None
    billing_email: str | None  # Billing_Email__c and the billing Contact's Email
    contact_first: str
    contact_last: str
    owner_key: str
    realm_key: str
    industry: str = "Technology"


@dataclass(frozen=True)
class QboCustomer:
    """A customer already in a QuickBooks company before revbridge runs."""

    realm_key: str
    display_name: str
    company_name: str
    email: str | None
    account_key: str | None = None  # set: Notes carry "Salesforce Account Id: <id>"
    balance_note: str = ""
    active: bool = True


@dataclass(frozen=True)
class QboName:
    """A Vendor or Employee: its DisplayName shares the Customer namespace (6240 on a clash)."""

    realm_key: str
    kind: str  # "Vendor" | "Employee"
    display_name: str


@dataclass(frozen=True)
class LineItem:
    product_code: str
    quantity: int
    unit_price: Decimal
    discount_pct: Decimal = Decimal("0")

    @property
    def total(self) -> Decimal:
        gross = self.unit_price * self.quantity
        return (gross * (1 - self.discount_pct / 100)).quantize(Decimal("0.01"))


@dataclass(frozen=True)
class Opportunity:
    key: str
    name: str
    account_key: str
    owner_key: str
    realm_key: str
    stage: str
    close_date: date
    payment_terms: str  # Payment_Terms__c: a QuickBooks Term name
    lines: tuple[LineItem, ...]
    description: str = ""

    @property
    def amount(self) -> Decimal:
        return sum((li.total for li in self.lines), Decimal("0"))

    @property
    def is_won(self) -> bool:
        return self.stage == "Closed Won"


@dataclass(frozen=True)
class Contract:
    key: str
    account_key: str
    owner_key: str
    realm_key: str
    start_date: date
    term_months: int
    renewal_lines: tuple[LineItem, ...]  # one line: Contract.Renewal_Product__c/Quantity/Unit_Price
    status: str = "Activated"

    @property
    def end_date(self) -> date:
        return _add_months(self.start_date, self.term_months) - timedelta(days=1)

    @property
    def renewal_date(self) -> date:
        return self.end_date + timedelta(days=1)


@dataclass(frozen=True)
class ContractFile:
    """A file in Salesforce Files on an Opportunity (one ContentVersion, linked to the deal)."""

    key: str
    opportunity_key: str
    title: str
    path_on_client: str
    content: bytes
    created: date


@dataclass(frozen=True)
class DemoCompany:
    today: date
    realms: tuple[Realm, ...]
    users: tuple[User, ...]
    products: tuple[Product, ...]
    accounts: tuple[Account, ...]
    qbo_customers: tuple[QboCustomer, ...]
    qbo_names: tuple[QboName, ...]
    opportunities: tuple[Opportunity, ...]
    contracts: tuple[Contract, ...]
    payment_terms: tuple[str, ...] = ("Net 15", "Net 30", "Net 60", "Due on receipt")
    files: tuple[ContractFile, ...] = ()  # Salesforce Files on Opportunities (signed contracts)
    ids: dict[str, str] = field(default_factory=dict)  # key → Salesforce Id, filled below

    def sf_id(self, key: str) -> str:
        """The Salesforce Id of an account, user, product, opportunity or contract key."""
        return self.ids[key]

    def realm(self, key: str) -> Realm:
        return next(r for r in self.realms if r.key == key)

    def account(self, key: str) -> Account:
        return next(a for a in self.accounts if a.key == key)

    def product(self, code: str) -> Product:
        return next(p for p in self.products if p.code == code)


def _add_months(d: date, months: int) -> date:
    month = d.month - 1 + months
    year = d.year + month // 12
    month = month % 12 + 1
    day = min(
        d.day, [31, 29 if year % 4 == 0 else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1]
    )
    return date(year, month, day)


REALMS = (
    Realm(
        "us",
        "9341453172461001",
        "Acme Analytics Inc.",
        "US_Sales",
        "US Sales",
        "USD",
        "US",
        "billing@acme-analytics.example",
    ),
    Realm(
        "eu",
        "9341453172461002",
        "Acme Analytics Europe B.V.",
        "EU_Sales",
        "EU Sales",
        "EUR",
        "NL",
        "facturen@acme-analytics.example",
    ),
)

USERS = (
    User(
        "ava", "Ava", "Chen", "ava.chen@acme-analytics.example", "U07AVACHEN", "Account Executive"
    ),
    User(
        "marcus",
        "Marcus",
        "Webb",
        "marcus.webb@acme-analytics.example",
        "U07MWEBB01",
        "Account Executive",
    ),
    User(
        "sofia",
        "Sofia",
        "Rossi",
        "sofia.rossi@acme-analytics.example",
        "U07SROSSI1",
        "Account Executive",
    ),
    User(
        "liam",
        "Liam",
        "O'Brien",
        "liam.obrien@acme-analytics.example",
        "U07LOBRIEN",
        "Sales Director",
    ),
    User(
        "priya",
        "Priya",
        "Nair",
        "priya.nair@acme-analytics.example",
        "U07PNAIR01",
        "Finance Controller",
    ),
    User(
        "integration",
        "Integration",
        "User",
        "integration@acme-analytics.example",
        "U07INTEGR8",
        "API Only",
    ),
)

PRODUCTS = (
    Product(
        "PLAT-ANNUAL",
        "Platform Subscription (annual)",
        "Subscription",
        Decimal("12000.00"),
        "Platform Subscription",
    ),
    Product(
        "SEAT-ADD", "Additional Seat (annual)", "Subscription", Decimal("600.00"), "Additional Seat"
    ),
    Product("IMPL-STD", "Implementation Package", "Services", Decimal("5000.00"), "Implementation"),
    Product("TRAIN-DAY", "Training Day", "Services", Decimal("1500.00"), "Training"),
    Product(
        "SUPPORT-PREM",
        "Premium Support (annual)",
        "Subscription",
        Decimal("3000.00"),
        "Premium Support",
    ),
    Product(
        "CONN-DATA",
        "Data Connector",
        "Add-on",
        Decimal("2400.00"),
        "Data Connector",
        "NonInventory",
    ),
    Product("LEGACY-ADDON", "Legacy Reporting Add-on", "Add-on", Decimal("900.00"), None),
)

# (key, name, domain, street, city, state, postal, country, phone, contact, owner, realm)
_ACCOUNTS: tuple[tuple[Any, ...], ...] = (
    (
        "globex",
        "Globex Corporation",
        "globex.example",
        "4 Globex Plaza",
        "Springfield",
        "OR",
        "97477",
        "US",
        "+1 541 555 0100",
        "Hank Scorpio",
        "ava",
        "us",
    ),
    (
        "initech",
        "Initech",
        "initech.example",
        "1 Initech Way",
        "Austin",
        "TX",
        "73301",
        "US",
        "+1 512 555 0101",
        "Bill Lumbergh",
        "ava",
        "us",
    ),
    (
        "umbrella",
        "Umbrella Corp",
        "umbrella.example",
        "500 Hive Rd",
        "Raccoon City",
        "MO",
        "65201",
        "US",
        "+1 573 555 0102",
        "Albert Wesker",
        "marcus",
        "us",
    ),
    (
        "umbrella-dup",
        "Umbrella Corporation",
        "umbrella.example",
        "500 Hive Road",
        "Raccoon City",
        "MO",
        "65201",
        "US",
        "+1 573 555 0102",
        "Albert Wesker",
        "marcus",
        "us",
    ),
    (
        "hooli",
        "Hooli",
        "hooli.example",
        "1 Hooli Campus",
        "Palo Alto",
        "CA",
        "94301",
        "US",
        "+1 650 555 0103",
        "Gavin Belson",
        "ava",
        "us",
    ),
    (
        "stark",
        "Stark Industries",
        "stark.example",
        "10880 Malibu Point",
        "Malibu",
        "CA",
        "90265",
        "US",
        "+1 310 555 0104",
        "Pepper Potts",
        "marcus",
        "us",
    ),
    (
        "wayne",
        "Wayne Enterprises",
        "wayne.example",
        "1007 Mountain Dr",
        "Gotham",
        "NJ",
        "07001",
        "US",
        "+1 201 555 0105",
        "Lucius Fox",
        "ava",
        "us",
    ),
    (
        "oreilly",
        "O'Reilly Media",
        "oreilly.example",
        "1005 Gravenstein Hwy N",
        "Sebastopol",
        "CA",
        "95472",
        "US",
        "+1 707 555 0106",
        "Tim O'Reilly",
        "marcus",
        "us",
    ),
    (
        "nakatomi",
        "Nakatomi Trading",
        "nakatomi.example",
        None,
        None,
        None,
        None,
        None,
        "+1 213 555 0107",
        "Joseph Takagi",
        "marcus",
        "us",
    ),
    (
        "cyberdyne",
        "Cyberdyne Systems",
        "cyberdyne.example",
        "18144 El Camino Real",
        "Sunnyvale",
        "CA",
        "94087",
        "US",
        "+1 408 555 0108",
        "Miles Dyson",
        "ava",
        "us",
    ),
    (
        "soylent",
        "Soylent Foods",
        "soylent.example",
        "12 Green St",
        "New York",
        "NY",
        "10001",
        "US",
        "+1 212 555 0109",
        "Sol Roth",
        "marcus",
        "us",
    ),
    (
        "tyrell",
        "Tyrell Corp",
        "tyrell.example",
        "2019 Tyrell Pyramid",
        "Los Angeles",
        "CA",
        "90012",
        "US",
        "+1 323 555 0110",
        "Eldon Tyrell",
        "ava",
        "us",
    ),
    (
        "vandelay",
        "Vandelay Industries",
        "vandelay.example",
        "129 W 81st St",
        "New York",
        "NY",
        "10024",
        "US",
        "+1 212 555 0111",
        "Art Vandelay",
        "marcus",
        "us",
    ),
    (
        "dunder",
        "Dunder Mifflin",
        "dundermifflin.example",
        "1725 Slough Ave",
        "Scranton",
        "PA",
        "18503",
        "US",
        "+1 570 555 0112",
        "Michael Scott",
        "ava",
        "us",
    ),
    (
        "pied",
        "Pied Piper",
        "piedpiper.example",
        "5230 Newell Rd",
        "Palo Alto",
        "CA",
        "94303",
        "US",
        "+1 650 555 0113",
        "Richard Hendricks",
        "ava",
        "us",
    ),
    (
        "acmewidgets",
        "Acme Widgets LLC",
        "acmewidgets.example",
        "77 Roadrunner Ln",
        "Tucson",
        "AZ",
        "85701",
        "US",
        "+1 520 555 0114",
        "Wile Coyote",
        "marcus",
        "us",
    ),
    (
        "massive",
        "Massive Dynamic",
        "massivedynamic.example",
        "1 Massive Plaza",
        "New York",
        "NY",
        "10013",
        "US",
        "+1 212 555 0115",
        "Nina Sharp",
        "ava",
        "us",
    ),
    (
        "oscorp",
        "Oscorp",
        "oscorp.example",
        "Oscorp Tower",
        "New York",
        "NY",
        "10017",
        "US",
        "+1 212 555 0116",
        "Norman Osborn",
        "marcus",
        "us",
    ),
    (
        "muller",
        "Müller & Söhne GmbH",
        "mueller-soehne.example",
        "Königstraße 12",
        "Stuttgart",
        "BW",
        "70173",
        "DE",
        "+49 711 555 0120",
        "Jürgen Müller",
        "sofia",
        "eu",
    ),
    (
        "lumiere",
        "Lumière Éditions SARL",
        "lumiere.example",
        "8 Rue de Rivoli",
        "Paris",
        "IDF",
        "75004",
        "FR",
        "+33 1 55 55 01 21",
        "Amélie Poulain",
        "sofia",
        "eu",
    ),
    (
        "vanderberg",
        "Van der Berg Logistiek B.V.",
        "vdberg.example",
        "Keizersgracht 100",
        "Amsterdam",
        "NH",
        "1015 CW",
        "NL",
        "+31 20 555 0122",
        "Sanne van der Berg",
        "liam",
        "eu",
    ),
    (
        "nordlys",
        "Nordlys Energi AS",
        "nordlys.example",
        "Karl Johans gate 1",
        "Oslo",
        "OS",
        "0154",
        "NO",
        "+47 22 55 01 23",
        "Ingrid Solberg",
        "liam",
        "eu",
    ),
    (
        "iberia",
        "Iberia Datos S.L.",
        "iberiadatos.example",
        "Calle de Alcalá 45",
        "Madrid",
        "MD",
        "28014",
        "ES",
        "+34 91 555 0124",
        "Lucía Fernández",
        "sofia",
        "eu",
    ),
    (
        "dublin",
        "Liffey Analytics Ltd",
        "liffey.example",
        "22 Grafton St",
        "Dublin",
        "D",
        "D02 X285",
        "IE",
        "+353 1 555 0125",
        "Siobhán Murphy",
        "liam",
        "eu",
    ),
    (
        "wiener",
        "Wiener Werkstätte KG",
        "wiener-ww.example",
        "Stephansplatz 3",
        "Wien",
        "W",
        "1010",
        "AT",
        "+43 1 555 0126",
        "Franz Huber",
        "sofia",
        "eu",
    ),
    (
        "milano",
        "Milano Moda S.p.A.",
        "milanomoda.example",
        "Via Montenapoleone 8",
        "Milano",
        "MI",
        "20121",
        "IT",
        "+39 02 555 0127",
        "Giulia Bianchi",
        "liam",
        "eu",
    ),
)

QBO_CUSTOMERS = (
    # found by the stored Salesforce Account Id (Notes), despite a different name
    QboCustomer(
        "us", "Wayne Ent.", "Wayne Enterprises, Inc.", "ap@wayne.example", account_key="wayne"
    ),
    QboCustomer(
        "eu",
        "Müller und Söhne",
        "Müller & Söhne GmbH",
        "buchhaltung@mueller-soehne.example",
        account_key="muller",
    ),
    # found only by the billing email domain
    QboCustomer("us", "Hooli XYZ", "Hooli XYZ Inc", "payables@hooli.example"),
    # found by fuzzy name
    QboCustomer("us", "Globex Corp.", "Globex Corp.", None),
    QboCustomer("us", "Cyberdyne Systems Inc", "Cyberdyne Systems Inc", None),
    QboCustomer("eu", "Van der Berg Logistiek", "Van der Berg Logistiek B.V.", None),
    # ambiguous: two plausible matches for "Initech" → human review
    QboCustomer("us", "Initech LLC", "Initech LLC", "finance@initech-llc.example"),
    QboCustomer(
        "us", "Initech Holdings LLC", "Initech Holdings LLC", "ar@initech-holdings.example"
    ),
    # unrelated customers, an inactive one, and one with an apostrophe
    QboCustomer("us", "Bluth Company", "Bluth Company", "gob@bluth.example"),
    QboCustomer("us", "Los Pollos Hermanos", "Los Pollos Hermanos", "gus@pollos.example"),
    QboCustomer("us", "Duff Brewing (inactive)", "Duff Brewing", None, active=False),
    QboCustomer("us", "Bob's Burgers", "Bob's Burgers", "linda@bobsburgers.example"),
    QboCustomer("eu", "Fjord Fisk AS", "Fjord Fisk AS", "post@fjordfisk.example"),
)

QBO_NAMES = (
    QboName("us", "Vendor", "Stark Industries"),  # an account named like a vendor → 6240 if naive
    QboName("us", "Vendor", "Amazon Web Services"),
    QboName("us", "Employee", "Ava Chen"),
    QboName("eu", "Vendor", "KPN Zakelijk"),
)

_STAGES_OPEN = ("Prospecting", "Qualification", "Proposal/Price Quote", "Negotiation/Review")


def _lines(rng: random.Random, big: bool, eu: bool) -> tuple[LineItem, ...]:
    catalog = {p.code: p for p in PRODUCTS}
    lines = [LineItem("PLAT-ANNUAL", 2 if big else 1, catalog["PLAT-ANNUAL"].unit_price)]
    seats = rng.choice([0, 5, 10, 15]) * (3 if big else 1)
    if seats:
        lines.append(
            LineItem(
                "SEAT-ADD",
                seats,
                catalog["SEAT-ADD"].unit_price,
                Decimal(rng.choice(["0", "0", "10", "15"])),
            )
        )
    if big or rng.random() < 0.25:
        lines.append(LineItem("IMPL-STD", 1, catalog["IMPL-STD"].unit_price))
    if rng.random() < 0.3:
        lines.append(LineItem("TRAIN-DAY", rng.randint(1, 3), catalog["TRAIN-DAY"].unit_price))
    if big and rng.random() < 0.6:
        lines.append(LineItem("SUPPORT-PREM", 1, catalog["SUPPORT-PREM"].unit_price))
    if not eu and rng.random() < 0.2:
        lines.append(LineItem("CONN-DATA", 1, catalog["CONN-DATA"].unit_price))
    return tuple(lines)


# Closed Won deals with no signed contract in Salesforce Files (with the deals that have no
# file, `_contract_files` leaves out every sixth), and the one whose contract is a .zip, a type
# QuickBooks refuses as an attachment.
NO_CONTRACT = frozenset({"opp-nolines", "opp-ambiguous"})
REFUSED_CONTRACT = "opp-vendorclash"


def _contract_pdf(title: str, opp: Opportunity, account: Account) -> bytes:
    """A small, valid one-page PDF standing in for a signed order form."""
    text = f"{title}: {account.name}, {opp.name}, closing {opp.close_date.isoformat()}"
    text = text.encode("latin-1", "replace").decode("latin-1").replace("(", "[").replace(")", "]")
    stream = f"BT /F1 11 Tf 50 760 Td ({text}) Tj ET".encode("latin-1")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = b"%PDF-1.4\n"
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return out


def _contract_files(
    opportunities: list[Opportunity], accounts: tuple[Account, ...]
) -> tuple[ContractFile, ...]:
    """Signed order forms on most Closed Won deals, deterministic and independent of the random
    draws above: every sixth deal and `NO_CONTRACT` have none, every fourth also carries an
    older unsigned proposal, every fifth a newer unsigned draft (the newest *signed* file is the
    contract), `REFUSED_CONTRACT` has its signed contract as a .zip."""
    by_key = {a.key: a for a in accounts}
    files: list[ContractFile] = []
    won = [o for o in opportunities if o.stage == "Closed Won"]
    for i, opp in enumerate(won):
        if opp.key in NO_CONTRACT or (i % 6 == 5 and opp.key != REFUSED_CONTRACT):
            continue
        account = by_key[opp.account_key]
        slug = "".join(c if c.isalnum() else "-" for c in account.name).strip("-")
        if i % 4 == 0:
            files.append(
                ContractFile(
                    f"{opp.key}-proposal",
                    opp.key,
                    f"Proposal - {account.name}",
                    f"Proposal-{slug}.pdf",
                    _contract_pdf("Proposal", opp, account),
                    opp.close_date - timedelta(days=20),
                )
            )
        title = f"Order Form - {account.name} (signed)"
        if opp.key == REFUSED_CONTRACT:
            files.append(
                ContractFile(
                    f"{opp.key}-signed",
                    opp.key,
                    title,
                    f"Order-Form-{slug}-signed.zip",
                    b"PK\x05\x06" + bytes(18),  # an empty zip archive
                    opp.close_date - timedelta(days=1),
                )
            )
            continue
        files.append(
            ContractFile(
                f"{opp.key}-signed",
                opp.key,
                title,
                f"Order-Form-{slug}-signed.pdf",
                _contract_pdf("Order Form (signed)", opp, account),
                opp.close_date - timedelta(days=1),
            )
        )
        if i % 5 == 0:
            files.append(
                ContractFile(
                    f"{opp.key}-draft",
                    opp.key,
                    f"Order Form - {account.name} (draft for renewal)",
                    f"Order-Form-{slug}-draft.docx",
                    b"PK\x03\x04 draft",
                    opp.close_date,
                )
            )
    return tuple(files)


@cache
def build(today: date) -> DemoCompany:
    """The demo company as of ``today`` (deterministic for a given date)."""
    rng = random.Random(20261123)
    accounts = tuple(
        Account(
            key=k,
            name=n,
            website=f"https://www.{d}" if d else None,
            billing_street=st,
            billing_city=c,
            billing_state=s,
            billing_postal_code=p,
            billing_country=co,
            phone=ph,
            billing_email=f"ap@{d}" if d else None,
            contact_first=ct.split(" ", 1)[0],
            contact_last=ct.split(" ", 1)[1],
            owner_key=o,
            realm_key=r,
        )
        for (k, n, d, st, c, s, p, co, ph, ct, o, r) in _ACCOUNTS
    )
    opportunities: list[Opportunity] = []
    n = 0
    for acct in accounts:
        eu = acct.realm_key == "eu"
        for _ in range(rng.choice([1, 2, 2, 3])):
            n += 1
            won = rng.random() < 0.6
            big = rng.random() < 0.2
            stage = "Closed Won" if won else rng.choice((*_STAGES_OPEN, "Closed Lost"))
            close = (
                today - timedelta(days=rng.randint(1, 120))
                if won or stage == "Closed Lost"
                else today + timedelta(days=rng.randint(5, 90))
            )
            opportunities.append(
                Opportunity(
                    key=f"opp-{n:03d}",
                    name=f"{acct.name} — {'Enterprise' if big else 'Team'} {close.year}",
                    account_key=acct.key,
                    owner_key=acct.owner_key,
                    realm_key=acct.realm_key,
                    stage=stage,
                    close_date=close,
                    payment_terms=rng.choice(["Net 30", "Net 30", "Net 15", "Net 60"]),
                    lines=_lines(rng, big, eu),
                )
            )
    # Deliberately awkward closed-won deals, closed yesterday.
    y = today - timedelta(days=1)
    plat = PRODUCTS[0].unit_price
    opportunities += [
        Opportunity(
            "opp-nolines",
            "Soylent Foods — verbal yes, no products",
            "soylent",
            "marcus",
            "us",
            "Closed Won",
            y,
            "Net 30",
            (),
        ),
        Opportunity(
            "opp-unmapped",
            "Tyrell Corp — legacy add-on",
            "tyrell",
            "ava",
            "us",
            "Closed Won",
            y,
            "Net 30",
            (LineItem("PLAT-ANNUAL", 1, plat), LineItem("LEGACY-ADDON", 2, Decimal("900.00"))),
        ),
        Opportunity(
            "opp-nobilling",
            "Nakatomi Trading — Team",
            "nakatomi",
            "marcus",
            "us",
            "Closed Won",
            y,
            "Net 30",
            (LineItem("PLAT-ANNUAL", 1, plat),),
        ),
        Opportunity(
            "opp-vendorclash",
            "Stark Industries — Enterprise",
            "stark",
            "marcus",
            "us",
            "Closed Won",
            y,
            "Net 30",
            (LineItem("PLAT-ANNUAL", 3, plat), LineItem("IMPL-STD", 1, Decimal("5000.00"))),
        ),
        Opportunity(
            "opp-ambiguous",
            "Initech — Team renewal",
            "initech",
            "ava",
            "us",
            "Closed Won",
            y,
            "Net 15",
            (LineItem("PLAT-ANNUAL", 1, plat),),
        ),
        Opportunity(
            "opp-big-eu",
            "Milano Moda — Enterprise",
            "milano",
            "liam",
            "eu",
            "Closed Won",
            y,
            "Net 60",
            (LineItem("PLAT-ANNUAL", 3, plat), LineItem("SUPPORT-PREM", 1, Decimal("3000.00"))),
        ),
    ]
    contracts: list[Contract] = []
    renew_offsets = [7, 7, 3, 7, 12, 30, -20, 45, 7, 90]
    for i, acct in enumerate(a for a in accounts if a.key not in {"umbrella-dup", "nakatomi"}):
        if i >= len(renew_offsets):
            break
        renewal = today + timedelta(days=renew_offsets[i])
        start = _add_months(renewal, -12)
        contracts.append(
            Contract(
                key=f"ctr-{i + 1:03d}",
                account_key=acct.key,
                owner_key=acct.owner_key,
                realm_key=acct.realm_key,
                start_date=start,
                term_months=12,
                renewal_lines=(LineItem("PLAT-ANNUAL", 1, plat),),
            )
        )
    company = DemoCompany(
        today=today,
        realms=REALMS,
        users=USERS,
        products=PRODUCTS,
        accounts=accounts,
        qbo_customers=QBO_CUSTOMERS,
        qbo_names=QBO_NAMES,
        opportunities=tuple(opportunities),
        contracts=tuple(contracts),
        files=_contract_files(opportunities, accounts),
    )
    for kind, keys in (
        ("User", [u.key for u in USERS]),
        ("Account", [a.key for a in accounts]),
        ("Product2", [p.code for p in PRODUCTS]),
        ("Opportunity", [o.key for o in opportunities]),
        ("Contract", [c.key for c in contracts]),
    ):
        for i, key in enumerate(keys, start=1):
            company.ids[key] = salesforce_id(kind, i)
    return company
