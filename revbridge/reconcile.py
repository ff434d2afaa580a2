"""Monthly reconciliation: Salesforce Closed Won against QuickBooks invoiced, per month, realm and
customer, with every difference explained. Pure pandas: records in, DataFrames out.

The flow reads (`flows/reconcile.py`):

- won deals with CloseDate in the month, plus the deals the month's invoices name (any stage);
- per realm, invoices with TxnDate in the month, plus the invoices the month's deals name
  (QB_Invoice_Id__c), and the payments and credit memos that touch them.

`deals_frame`, `invoices_frame` and `applications_frame` turn those records into frames;
`reconcile` joins deals and invoices on the PrivateNote marker (the Opportunity Id; a deal's
QB_Invoice_Id__c as fallback for an invoice without one) and explains each row in ``reason``:

- ``missing invoice`` — a won deal with no invoice (with its QB_Sync_Status__c: awaiting
  approval, needs review and why, error, not synced yet);
- ``invoice deleted`` — the deal names an invoice QuickBooks no longer has;
- ``invoice without a deal`` — no marker, or a marker naming a deal that is not won;
- ``amount mismatch`` — the deal amount against the invoice net of tax, in the realm's home
  currency (HomeTotalAmt where QuickBooks gives one, else TotalAmt times ExchangeRate);
- ``invoiced in advance`` / ``invoiced late`` — TxnDate in another month than CloseDate;
- ``partially paid``, ``credited`` (a credit memo applied to the invoice, or one carrying the
  deal's marker), ``voided``.

Amounts are floats rounded to cents (sums of a month's invoices, far inside a float's precision);
two amounts differ when they are more than half a cent apart.
"""

from __future__ import annotations

import base64
import io
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pandas as pd

from revbridge.ids import is_salesforce_id, to_18
from revbridge.invoices import opportunity_id_from_invoice
from revbridge.soql import MAX_IDS, quote
from revbridge.text import clean_text

TOLERANCE = 0.005
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")

DEAL_FIELDS = (
    "Id", "Name", "Amount", "CurrencyIsoCode", "CloseDate", "StageName", "QB_Invoice_Id__c",
    "QB_Realm__c", "QB_Sync_Status__c", "QB_Sync_Error__c", "Account.Name", "Owner.Name",
    "RecordType.DeveloperName",
)  # fmt: skip
DEAL_COLUMNS = (
    "opportunity_id", "opportunity", "account", "owner", "realm", "stage", "close_date",
    "amount", "currency", "qb_invoice_id", "sync_status", "sync_error",
)  # fmt: skip
INVOICE_COLUMNS = (
    "realm", "invoice_id", "doc_number", "txn_date", "customer", "marker", "currency",
    "exchange_rate", "total", "net_home", "total_home", "open_home", "voided",
)  # fmt: skip
APPLICATION_COLUMNS = ("realm", "invoice_id", "marker", "kind", "document", "amount_home")
DETAIL_COLUMNS = (
    "month", "realm", "customer", "opportunity_id", "opportunity", "owner", "stage",
    "close_date", "invoice_id", "doc_number", "txn_date", "home_currency", "won_home",
    "invoiced_home", "paid_home", "credited_home", "open_home", "difference", "status",
    "reason",
)  # fmt: skip
SUMMARY_COLUMNS = (
    "month", "realm", "customer", "home_currency", "deals", "won_home", "invoices",
    "invoiced_home", "paid_home", "credited_home", "difference", "discrepancies",
)  # fmt: skip


# ---- queries ---------------------------------------------------------------------------------
def won_deals_query(first: date, last: date, won_stages: Sequence[str]) -> str:
    """The month's won deals (Closed Won and the post-closed stage) in one SOQL query."""
    stages = ", ".join(quote(s) for s in dict.fromkeys(won_stages))
    return (
        f"SELECT {', '.join(DEAL_FIELDS)} FROM Opportunity WHERE StageName IN ({stages}) "
        f"AND CloseDate >= {first.isoformat()} AND CloseDate <= {last.isoformat()} "
        "ORDER BY CloseDate, Id"
    )


def deals_by_id_query(ids: Sequence[str]) -> str:
    """Deals named by invoices of the month (any stage), at most `MAX_IDS` per query."""
    wanted = [i for i in dict.fromkeys(ids) if is_salesforce_id(i)]
    if not wanted or len(wanted) > MAX_IDS:
        raise ValueError(f"give 1 to {MAX_IDS} valid Opportunity Ids, got {len(wanted)}")
    return (
        f"SELECT {', '.join(DEAL_FIELDS)} FROM Opportunity "
        f"WHERE Id IN ({', '.join(quote(i) for i in wanted)})"
    )


# ---- months ----------------------------------------------------------------------------------
def parse_month(month: str) -> tuple[date, date]:
    """The first and last day of a ``YYYY-MM`` month; ValueError names the bad value."""
    found = _MONTH.match(month.strip()) if isinstance(month, str) else None
    if not found or not 1 <= int(found.group(2)) <= 12:
        raise ValueError(f"month must look like YYYY-MM (e.g. 2026-10), got {month!r}")
    first = date(int(found.group(1)), int(found.group(2)), 1)
    following = (first + timedelta(days=32)).replace(day=1)
    return first, following - timedelta(days=1)


def previous_month(today: date) -> str:
    """The month before ``today``'s, as ``YYYY-MM`` (the schedule's default)."""
    last = today.replace(day=1) - timedelta(days=1)
    return f"{last.year:04d}-{last.month:02d}"


# ---- records → frames ------------------------------------------------------------------------
def deals_frame(
    records: Iterable[Mapping[str, Any]],
    realm_ids: Mapping[str, str],
    record_types: Mapping[str, str],
) -> pd.DataFrame:
    """Opportunity records (see `flows.reconcile` for the fields) as a deals frame.

    ``realm_ids``: QuickBooks realm id → realm name (a deal invoiced before names its realm in
    QB_Realm__c); ``record_types``: RecordType.DeveloperName → realm name (where it would go)."""
    rows = []
    for record in records:
        realm = realm_ids.get(str(record.get("QB_Realm__c") or ""))
        if realm is None:
            record_type = (record.get("RecordType") or {}).get("DeveloperName")
            realm = record_types.get(str(record_type or ""), "")
        rows.append(
            {
                "opportunity_id": _id18(record.get("Id")),
                "opportunity": clean_text(record.get("Name")),
                "account": clean_text((record.get("Account") or {}).get("Name")),
                "owner": clean_text((record.get("Owner") or {}).get("Name")),
                "realm": realm,
                "stage": record.get("StageName") or "",
                "close_date": record.get("CloseDate"),
                "amount": _number(record.get("Amount")),
                "currency": record.get("CurrencyIsoCode") or "",
                "qb_invoice_id": str(record.get("QB_Invoice_Id__c") or "") or None,
                "sync_status": record.get("QB_Sync_Status__c") or "",
                "sync_error": clean_text(record.get("QB_Sync_Error__c")),
            }
        )
    frame = _frame(rows, DEAL_COLUMNS)
    frame["close_date"] = pd.to_datetime(frame["close_date"], errors="coerce")
    return frame.drop_duplicates("opportunity_id")


def invoices_frame(realm: str, invoices: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """QuickBooks Invoice JSON of one realm as an invoices frame (home-currency amounts)."""
    rows = []
    for invoice in invoices:
        rate = _number(invoice.get("ExchangeRate"), 1.0) or 1.0
        total = _number(invoice.get("TotalAmt"))
        tax = _number((invoice.get("TxnTaxDetail") or {}).get("TotalTax"))
        total_home = _number(invoice.get("HomeTotalAmt"), total * rate)
        balance = _number(invoice.get("Balance"))
        rows.append(
            {
                "realm": realm,
                "invoice_id": str(invoice.get("Id")),
                "doc_number": str(invoice.get("DocNumber") or ""),
                "txn_date": invoice.get("TxnDate"),
                "customer": clean_text((invoice.get("CustomerRef") or {}).get("name")),
                "marker": _marker(invoice),
                "currency": (invoice.get("CurrencyRef") or {}).get("value") or "",
                "exchange_rate": rate,
                "total": total,
                "net_home": round(total_home - tax * rate, 2),
                "total_home": round(total_home, 2),
                "open_home": round(_number(invoice.get("HomeBalance"), balance * rate), 2),
                "voided": is_voided(invoice),
            }
        )
    frame = _frame(rows, INVOICE_COLUMNS)
    frame["txn_date"] = pd.to_datetime(frame["txn_date"], errors="coerce")
    return frame.drop_duplicates(["realm", "invoice_id"])


def applications_frame(
    realm: str,
    payments: Iterable[Mapping[str, Any]],
    credit_memos: Iterable[Mapping[str, Any]],
) -> pd.DataFrame:
    """What settled each invoice: cash (``payment``) and credit (``credit``), home currency.

    QuickBooks applies a credit memo through a payment whose lines link the invoice (+) and the
    credit memo (-): the credit goes to that payment's invoices in line order, the rest of each
    line is cash. A credit memo whose PrivateNote carries a deal's marker is credited to that
    deal in full instead (applied or not)."""
    memos = {str(m.get("Id")): m for m in credit_memos}
    marked = {memo_id for memo_id, m in memos.items() if _marker(m)}
    rows: list[dict[str, Any]] = []
    for memo_id in sorted(marked):
        memo = memos[memo_id]
        rate = _number(memo.get("ExchangeRate"), 1.0) or 1.0
        rows.append(
            _application(
                realm, None, _marker(memo), "credit", _doc("credit memo", memo), memo, rate
            )
        )
    for payment in payments:
        if is_voided(payment):
            continue
        rate = _number(payment.get("ExchangeRate"), 1.0) or 1.0
        invoices: list[tuple[str, float]] = []
        credit = 0.0
        credit_docs: list[str] = []
        for line in payment.get("Line") or []:
            link = (line.get("LinkedTxn") or [{}])[0]
            amount = _number(line.get("Amount"))
            if link.get("TxnType") == "Invoice":
                invoices.append((str(link.get("TxnId")), amount))
            elif link.get("TxnType") == "CreditMemo" and str(link.get("TxnId")) not in marked:
                credit += amount
                linked = memos.get(str(link.get("TxnId"))) or {"Id": link.get("TxnId")}
                credit_docs.append(_doc("credit memo", linked))
        for invoice_id, amount in invoices:
            credited = min(credit, amount)
            credit -= credited
            if credited > TOLERANCE:
                document = ", ".join(credit_docs)
                rows.append(
                    _application(realm, invoice_id, None, "credit", document, credited, rate)
                )
            if amount - credited > TOLERANCE:
                document = _doc("payment", payment)
                rows.append(
                    _application(
                        realm, invoice_id, None, "payment", document, amount - credited, rate
                    )
                )
    return _frame(rows, APPLICATION_COLUMNS)


def is_voided(document: Mapping[str, Any]) -> bool:
    """QuickBooks marks a voided transaction by its PrivateNote ("Voided" / "Voided - …")."""
    return str(document.get("PrivateNote") or "").startswith("Voided")


# ---- the reconciliation ----------------------------------------------------------------------
@dataclass(frozen=True)
class Reconciliation:
    month: str
    details: pd.DataFrame  # one row per deal and/or invoice, DETAIL_COLUMNS
    summary: pd.DataFrame  # one row per realm and customer, SUMMARY_COLUMNS

    @property
    def discrepancies(self) -> pd.DataFrame:
        return self.details[self.details["status"] == "discrepancy"]

    def totals(self) -> pd.DataFrame:
        """Won, invoiced and difference per realm (and home currency)."""
        if self.summary.empty:
            return pd.DataFrame(
                columns=["realm", "home_currency", "won_home", "invoiced_home", "difference"]
            )
        grouped = self.summary.groupby(["realm", "home_currency"], as_index=False)[
            ["won_home", "invoiced_home", "difference", "discrepancies"]
        ].sum()
        return grouped.round(2)


def reconcile(
    month: str,
    deals: pd.DataFrame,
    invoices: pd.DataFrame,
    applications: pd.DataFrame,
    home_currency: Mapping[str, str],
    won_stages: Sequence[str] = ("Closed Won",),
) -> Reconciliation:
    """Join and explain. ``deals`` may hold more than the month's deals (those the month's
    invoices name) and ``invoices`` more than the month's invoices (those the month's deals
    name): a row belongs to the month when its deal closed in it or its invoice is dated in it.
    ``home_currency``: realm → the company's home currency."""
    first, last = parse_month(month)
    start, end = pd.Timestamp(first), pd.Timestamp(last)
    deals = deals if len(deals.columns) else _frame([], DEAL_COLUMNS)
    invoices = invoices.copy() if len(invoices.columns) else _frame([], INVOICE_COLUMNS)
    applications = applications if len(applications.columns) else _frame([], APPLICATION_COLUMNS)

    # the join key: the marker, else a deal that names the invoice in QB_Invoice_Id__c
    named = {
        (realm, invoice_id): opp_id
        for realm, invoice_id, opp_id in zip(
            deals["realm"], deals["qb_invoice_id"], deals["opportunity_id"], strict=True
        )
        if _present(invoice_id)
    }
    invoices["key"] = pd.Series(
        [
            marker if _present(marker) else named.get((realm, invoice_id))
            for realm, invoice_id, marker in zip(
                invoices["realm"], invoices["invoice_id"], invoices["marker"], strict=True
            )
        ],
        index=invoices.index,
        dtype=object,
    )
    invoices = _with_settlement(invoices, applications)

    merged = deals.merge(
        invoices,
        how="outer",
        left_on="opportunity_id",
        right_on="key",
        suffixes=("_deal", "_invoice"),
        indicator=True,
    )
    merged["realm"] = merged["realm_deal"].where(
        merged["realm_deal"].fillna("") != "", merged["realm_invoice"]
    )
    merged["realm"] = merged["realm"].fillna("")
    deal_in = merged["close_date"].between(start, end) & merged["stage"].isin(won_stages)
    invoice_in = merged["txn_date"].between(start, end)
    merged = merged[deal_in | invoice_in].copy()
    merged["deal_in_month"] = deal_in[merged.index]
    merged["invoice_in_month"] = invoice_in[merged.index]

    merged["voided"] = merged["voided"].astype(object).where(merged["voided"].notna(), False)
    merged["voided"] = merged["voided"].astype(bool)
    # a deal with no realm is counted in its own currency
    merged["home_currency"] = (
        merged["realm"].map(dict(home_currency)).fillna(merged["currency_deal"]).fillna("")
    )
    merged["won_home"] = [
        _deal_home(amount, currency, home, invoice_currency, rate)
        for amount, currency, home, invoice_currency, rate in zip(
            merged["amount"],
            merged["currency_deal"],
            merged["home_currency"],
            merged["currency_invoice"],
            merged["exchange_rate"],
            strict=True,
        )
    ]
    merged["reason"] = [
        "; ".join(_reasons(row, start, end, tuple(won_stages))) for row in merged.to_dict("records")
    ]
    merged["status"] = merged["reason"].map(lambda r: "discrepancy" if r else "matched")
    merged["invoiced_home"] = merged["net_home"].where(~merged["voided"], 0.0)
    merged["difference"] = (
        merged["won_home"].where(merged["deal_in_month"], 0.0).fillna(0.0)
        - merged["invoiced_home"].where(merged["invoice_in_month"], 0.0).fillna(0.0)
    ).round(2)
    merged["customer"] = merged["account"].where(
        merged["account"].fillna("") != "", merged["customer"]
    )
    merged["month"] = month
    details = merged.copy()
    details["opportunity_id"] = details["opportunity_id"].fillna(details["key"])
    details = details[list(DETAIL_COLUMNS)].fillna(
        {"customer": "", "opportunity": "", "owner": "", "stage": "", "invoice_id": ""}
    )
    details = details.sort_values(["realm", "customer", "close_date", "txn_date"], kind="stable")
    details = details.reset_index(drop=True)
    return Reconciliation(month=month, details=details, summary=_summary(merged, month))


def _with_settlement(invoices: pd.DataFrame, applications: pd.DataFrame) -> pd.DataFrame:
    """Add paid_home and credited_home to each invoice (credit marked for a deal joins by key)."""
    amounts: dict[tuple[str, str, str], float] = {}
    documents: dict[tuple[str, str], list[str]] = {}
    for app in applications.to_dict("records"):
        target = (
            f"invoice:{app['invoice_id']}"
            if _present(app["invoice_id"])
            else f"marker:{app['marker']}"
        )
        slot = (app["realm"], target, app["kind"])
        amounts[slot] = amounts.get(slot, 0.0) + app["amount_home"]
        if app["kind"] == "credit":
            documents.setdefault((app["realm"], target), []).append(app["document"])
    paid, credited, credit_docs = [], [], []
    for realm, invoice_id, key in zip(
        invoices["realm"], invoices["invoice_id"], invoices["key"], strict=True
    ):
        targets = [f"invoice:{invoice_id}"] + ([f"marker:{key}"] if _present(key) else [])
        paid.append(round(amounts.get((realm, targets[0], "payment"), 0.0), 2))
        credited.append(round(sum(amounts.get((realm, t, "credit"), 0.0) for t in targets), 2))
        docs = [d for t in targets for d in documents.get((realm, t), [])]
        credit_docs.append(", ".join(dict.fromkeys(docs)))
    return invoices.assign(paid_home=paid, credited_home=credited, credit_docs=credit_docs)


def _reasons(
    row: Mapping[str, Any], start: pd.Timestamp, end: pd.Timestamp, won_stages: tuple[str, ...]
) -> list[str]:
    has_deal = row["_merge"] in ("both", "left_only")
    has_invoice = row["_merge"] in ("both", "right_only")
    won = has_deal and row["stage"] in won_stages
    money = row["home_currency"]
    if has_deal and not has_invoice:
        if _present(row.get("qb_invoice_id")):
            return [f"invoice deleted: QuickBooks has no invoice Id {row['qb_invoice_id']}"]
        return [_missing(row)]
    if not won:
        if not _present(row.get("marker")):
            return ["invoice without a deal: no Opportunity marker on the invoice"]
        stage = row["stage"] if has_deal else "not found in Salesforce"
        return [f"invoice without a deal: Opportunity {row['key']} is {stage}"]
    reasons: list[str] = []
    if row["voided"]:
        return [f"voided: invoice #{row['doc_number']} was voided; the deal is not invoiced"]
    won_home, net = row["won_home"], row["net_home"]
    if not _present(won_home):
        reasons.append(
            f"amount mismatch: the deal is in {row['currency_deal']}, the invoice in "
            f"{row['currency_invoice']}"
        )
    elif abs(won_home - net) > TOLERANCE:
        reasons.append(
            f"amount mismatch: deal {money} {won_home:,.2f}, invoiced {money} {net:,.2f} "
            "(net of tax)"
        )
    close, txn = row["close_date"], row["txn_date"]
    if _present(close) and _present(txn) and close.to_period("M") != txn.to_period("M"):
        when = "in advance" if txn < close else "late"
        reasons.append(
            f"invoiced {when}: TxnDate {txn.date().isoformat()}, "
            f"CloseDate {close.date().isoformat()}"
        )
    if row["credited_home"] > TOLERANCE:
        reasons.append(f"credited: {money} {row['credited_home']:,.2f} ({row['credit_docs']})")
    if row["paid_home"] > TOLERANCE and row["open_home"] > TOLERANCE:
        reasons.append(
            f"partially paid: {money} {row['paid_home']:,.2f} paid, "
            f"{money} {row['open_home']:,.2f} open"
        )
    return reasons


def _missing(row: Mapping[str, Any]) -> str:
    status = str(row.get("sync_status")) if _present(row.get("sync_status")) else ""
    error = str(row.get("sync_error")) if _present(row.get("sync_error")) else ""
    if not row.get("realm"):
        why = "no QuickBooks company for its record type"
    elif status == "Awaiting Approval":
        why = "awaiting finance approval"
    elif status in ("Needs Review", "Error", "Rejected"):
        why = status.lower() + (f" — {error}" if error else "")
    elif status:
        why = f"sync status {status}"
    else:
        why = "not synced yet"
    return f"missing invoice: {why}"


def _summary(merged: pd.DataFrame, month: str) -> pd.DataFrame:
    if merged.empty:
        return _frame([], SUMMARY_COLUMNS)
    work = merged.assign(
        deals=merged["deal_in_month"].astype(int),
        invoices=(merged["invoice_in_month"] & ~merged["voided"]).astype(int),
        won_home=merged["won_home"].where(merged["deal_in_month"], 0.0).fillna(0.0),
        invoiced_home=merged["invoiced_home"].where(merged["invoice_in_month"], 0.0).fillna(0.0),
        paid_home=merged["paid_home"].fillna(0.0),
        credited_home=merged["credited_home"].fillna(0.0),
        discrepancies=(merged["status"] == "discrepancy").astype(int),
        customer=merged["customer"].fillna(""),
    )
    summed = [
        c for c in SUMMARY_COLUMNS if c not in ("month", "realm", "customer", "home_currency")
    ]
    summary = work.groupby(["realm", "customer", "home_currency"], as_index=False)[summed].sum()
    summary["month"] = month
    numeric = ["won_home", "invoiced_home", "paid_home", "credited_home", "difference"]
    summary[numeric] = summary[numeric].round(2)
    return summary[list(SUMMARY_COLUMNS)].reset_index(drop=True)


# ---- reports ---------------------------------------------------------------------------------
def table_rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """A frame as JSON-safe rows (dates as ISO text, NaN as None) for a Prefect table artifact."""
    out = frame.copy()
    for column in out.columns:
        if pd.api.types.is_datetime64_any_dtype(out[column]):
            out[column] = out[column].dt.strftime("%Y-%m-%d")
    out = out.astype(object).where(out.notna(), None)
    return [{str(k): v for k, v in row.items()} for row in out.to_dict("records")]


def to_csv(frame: pd.DataFrame) -> str:
    return frame.to_csv(index=False, date_format="%Y-%m-%d", float_format="%.2f")


def chart_png(rec: Reconciliation) -> bytes:
    """A bar chart of won against invoiced per realm (in each realm's home currency)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    totals = rec.totals()
    fig, ax = plt.subplots(figsize=(6, 3), dpi=80)
    try:
        labels = [
            f"{r} ({c})" for r, c in zip(totals["realm"], totals["home_currency"], strict=True)
        ]
        positions = range(len(labels))
        ax.bar([p - 0.2 for p in positions], totals["won_home"], width=0.4, label="Closed Won")
        ax.bar([p + 0.2 for p in positions], totals["invoiced_home"], width=0.4, label="Invoiced")
        ax.set_xticks(list(positions), labels or [])
        ax.set_title(f"Closed Won vs invoiced, {rec.month}")
        ax.legend()
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png")
    finally:
        plt.close(fig)
    return buffer.getvalue()


def markdown_report(rec: Reconciliation, chart: bytes | None, csv_location: str | None) -> str:
    """The run's markdown artifact: totals per realm, the chart (a PNG data URI: the Prefect UI
    renders it inline), the CSV's location, and every discrepancy with its reason."""
    lines = [f"# Reconciliation {rec.month}", ""]
    totals = rec.totals()
    if totals.empty:
        lines.append("_No won deals and no invoices in this month._")
    else:
        lines += [
            "| Realm | Currency | Closed Won | Invoiced | Difference | Discrepancies |",
            "|---|---|---:|---:|---:|---:|",
        ]
        for row in totals.to_dict("records"):
            lines.append(
                f"| {_cell(row['realm'])} | {row['home_currency']} | {row['won_home']:,.2f} | "
                f"{row['invoiced_home']:,.2f} | {row['difference']:,.2f} | "
                f"{int(row['discrepancies'])} |"
            )
    if chart:
        encoded = base64.b64encode(chart).decode()
        lines += ["", f"![Closed Won vs invoiced](data:image/png;base64,{encoded})"]
    if csv_location:
        lines += ["", f"Full detail (CSV): `{csv_location}`"]
    issues = rec.discrepancies
    lines += ["", f"## Discrepancies ({len(issues)})", ""]
    if issues.empty:
        lines.append("_None: every won deal is invoiced in its month for its amount._")
    else:
        lines += ["| Realm | Customer | Opportunity | Invoice | Reason |", "|---|---|---|---|---|"]
        for row in issues.to_dict("records"):
            invoice = f"#{row['doc_number']} (Id {row['invoice_id']})" if row["invoice_id"] else ""
            lines.append(
                f"| {_cell(row['realm'])} | {_cell(row['customer'])} | "
                f"{_cell(row['opportunity'] or row['opportunity_id'])} | {invoice} | "
                f"{_cell(row['reason'])} |"
            )
    return "\n".join(lines)


def slack_text(rec: Reconciliation, csv_location: str | None = None) -> str:
    """A short mrkdwn summary: totals per realm and the discrepancies counted by kind."""
    from revbridge.report import escape_slack

    lines = [f"*Reconciliation {rec.month}*"]
    for row in rec.totals().to_dict("records"):
        lines.append(
            f"• {escape_slack(str(row['realm']) or '(no realm)')}: won "
            f"{row['home_currency']} {row['won_home']:,.2f}, invoiced "
            f"{row['home_currency']} {row['invoiced_home']:,.2f}, "
            f"{int(row['discrepancies'])} discrepanc{'y' if row['discrepancies'] == 1 else 'ies'}"
        )
    kinds = reason_counts(rec)
    if kinds:
        lines.append("Reasons: " + ", ".join(f"{k} {v}" for k, v in kinds.items()))
    if len(lines) == 1:
        lines.append("Nothing won and nothing invoiced this month.")
    if csv_location:
        lines.append(f"CSV: `{escape_slack(csv_location)}`")
    return "\n".join(lines)


def reason_counts(rec: Reconciliation) -> dict[str, int]:
    """How often each kind of reason (the text before its colon) occurs."""
    counts: dict[str, int] = {}
    for reason in rec.details["reason"]:
        for part in filter(None, str(reason).split("; ")):
            kind = part.split(":", 1)[0]
            counts[kind] = counts.get(kind, 0) + 1
    return dict(sorted(counts.items()))


# ---- helpers ---------------------------------------------------------------------------------
def _frame(rows: list[dict[str, Any]], columns: Sequence[str]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=list(columns))


def _number(value: Any, default: float = 0.0) -> float:
    if value is None or value == "":
        return default
    try:
        return float(value)
    except (TypeError, ValueError):
        return default


def _id18(value: Any) -> str:
    text = str(value or "")
    return to_18(text) if is_salesforce_id(text) else text


def _marker(document: Mapping[str, Any]) -> str | None:
    found = opportunity_id_from_invoice(document)
    return _id18(found) if found else None


def _doc(kind: str, document: Mapping[str, Any]) -> str:
    number = document.get("DocNumber") or document.get("PaymentRefNum")
    return f"{kind} #{number}" if number else f"{kind} Id {document.get('Id')}"


def _application(
    realm: str,
    invoice_id: str | None,
    marker: str | None,
    kind: str,
    document: str,
    amount: float | Mapping[str, Any],
    rate: float,
) -> dict[str, Any]:
    value = _number(amount.get("TotalAmt")) if isinstance(amount, Mapping) else amount
    return {
        "realm": realm,
        "invoice_id": invoice_id,
        "marker": marker,
        "kind": kind,
        "document": document,
        "amount_home": round(value * rate, 2),
    }


def _deal_home(amount: Any, currency: Any, home: str, invoice_currency: Any, rate: Any) -> float:
    """A deal amount in the realm's home currency: as is, or at its invoice's exchange rate
    when the invoice is in the deal's currency; NaN when there is no way to convert it."""
    if not _present(amount):
        return float("nan")
    if not _present(currency) or currency == home:
        return round(float(amount), 2)
    if currency == invoice_currency and _present(rate):
        return round(float(amount) * float(rate), 2)
    return float("nan")


def _present(value: Any) -> bool:
    """Not None, NaN, NaT or empty text (what an outer join leaves in a missing cell)."""
    if value is None or (isinstance(value, str) and not value):
        return False
    return not (isinstance(value, float | pd.Timestamp) or value is pd.NaT) or not pd.isna(value)


def _cell(value: Any) -> str:
    text = str(value if value is not None else "").replace("\\", "\\\\").replace("|", "\\|")
    return " ".join(text.split())
