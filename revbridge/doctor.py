"""Preflight checks (``python -m deployments.doctor``): pure functions over what was fetched.

Each check turns answers already read from Salesforce, QuickBooks and Slack (and the config) into
`Row`s ``{check, target, status, detail}`` with status ``ok``, ``warn`` or ``blocker``. Nothing
here does I/O; `deployments.doctor` fetches and calls these. Any run with a blocker must not go
live: `exit_code` is 1 then.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal
from urllib.parse import urlparse

from revbridge.config import RealmConfig, RevbridgeConfig, SlackConfig

Status = Literal["ok", "warn", "blocker"]

# The Salesforce fields the flows write, per object: each must exist and be updateable.
WRITTEN_FIELDS: dict[str, tuple[str, ...]] = {
    "Opportunity": (
        "QB_Invoice_Id__c", "QB_DocNumber__c", "QB_Realm__c", "QB_Customer_Id__c",
        "QB_Sync_Status__c", "QB_Sync_Error__c", "QB_Approved_By__c", "QB_Approved_At__c",
        "Payment_Status__c", "Amount_Paid__c", "Days_Outstanding__c", "Aging_Bucket__c",
        "Payment_Terms__c", "QB_Invoice_URL__c", "Invoice_Sent__c",
    ),
    "Account": ("Billing_Email__c", "Payment_Terms__c", "Tax_Exempt__c"),
    "Contract": (
        "Last_Invoice_Date__c", "QB_Renewal_Invoice_Id__c", "Renewal_Product__c",
        "Renewal_Quantity__c", "Renewal_Unit_Price__c", "Renewal_Reminder_Sent__c",
    ),
    "Task": ("Subject", "WhatId", "OwnerId", "ActivityDate", "Status", "Priority"),
}  # fmt: skip
# Picklists whose values become QuickBooks Term names.
TERMS_PICKLISTS: tuple[tuple[str, str], ...] = (
    ("Opportunity", "Payment_Terms__c"),
    ("Account", "Payment_Terms__c"),
)
# Intuit sandbox company ids often start like this (a heuristic, hence only ever a warn).
SANDBOX_REALM_PREFIXES = ("4620816365", "9130")
SANDBOX_COMPANY_NAME_PREFIX = "Sandbox Company"
# Slack channels a flow posts to: the bot must be a member (it has no chat:write.public).
POSTED_CHANNELS = frozenset({"alerts_channel", "approvals_channel"})
DETAIL_MAX = 300

Environment = Literal["production", "sandbox", "local", "unknown"]


@dataclass(frozen=True)
class Row:
    """One line of the doctor's table."""

    check: str
    target: str
    status: Status
    detail: str

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


def ok(check: str, target: str, detail: str) -> Row:
    return Row(check, target, "ok", detail)


def warn(check: str, target: str, detail: str) -> Row:
    return Row(check, target, "warn", detail)


def blocker(check: str, target: str, detail: str) -> Row:
    return Row(check, target, "blocker", detail)


# ---- secrets and errors ----------------------------------------------------------------------
def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret value replaced by ``***`` and cut to `DETAIL_MAX` characters."""
    for secret in sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True):
        text = text.replace(secret, "***")
    text = " ".join(text.split())
    return text if len(text) <= DETAIL_MAX else text[: DETAIL_MAX - 1] + "…"


def failure(check: str, target: str, error: str, secrets: Iterable[str] = ()) -> Row:
    """A blocker for a call that failed, with its reason and never a secret."""
    return blocker(check, target, redact(error, secrets))


def skipped(check: str, target: str, because: str) -> Row:
    """A check that could not run because an earlier one failed (that one is the blocker)."""
    return warn(check, target, f"not checked: {because}")


# ---- authentication ----------------------------------------------------------------------------
def salesforce_auth(organization: Mapping[str, Any]) -> Row:
    """The Organization row a logged-in client read."""
    kind = "sandbox org" if organization.get("IsSandbox") else "production org"
    name = organization.get("Name") or "(unnamed)"
    return ok("auth", "salesforce", f"{name} ({organization.get('Id')}, {kind})")


def quickbooks_auth(realm: str, realm_id: str, company_info: Mapping[str, Any]) -> Row:
    """The CompanyInfo a realm's client read."""
    info = company_info.get("CompanyInfo", company_info)
    name = info.get("CompanyName") or "(unnamed)"
    return ok("auth", f"quickbooks {realm}", f"{name} (realm {realm_id})")


def slack_auth(answer: Mapping[str, Any]) -> Row:
    """``auth.test``'s answer."""
    return ok(
        "auth",
        "slack",
        f"bot {answer.get('user')} ({answer.get('user_id')}) in {answer.get('team')}",
    )


def realm_block_matches(realm: str, config_realm_id: str, block_realm_id: str) -> Row | None:
    """A blocker when the realm's connection block is for another company."""
    if config_realm_id == block_realm_id:
        return None
    return blocker(
        "config",
        f"quickbooks {realm}",
        f"realms.{realm}.realm_id is {config_realm_id} but its connection block is for realm "
        f"{block_realm_id}",
    )


# ---- Salesforce fields ---------------------------------------------------------------------------
def check_fields(
    describes: Mapping[str, Mapping[str, Any]],
    written: Mapping[str, Sequence[str]] = WRITTEN_FIELDS,
) -> list[Row]:
    """Every written field exists on its object and is updateable (one row per object)."""
    rows: list[Row] = []
    for sobject, names in written.items():
        target = f"salesforce {sobject}"
        describe = describes.get(sobject)
        if describe is None:
            rows.append(blocker("fields", target, f"{sobject} could not be described"))
            continue
        fields = {f["name"]: f for f in describe.get("fields", [])}
        missing = [n for n in names if n not in fields]
        locked = [n for n in names if n in fields and not fields[n].get("updateable")]
        problems = []
        if missing:
            problems.append(f"missing: {', '.join(missing)}")
        if locked:
            problems.append(f"not updateable by the integration user: {', '.join(locked)}")
        if problems:
            rows.append(blocker("fields", target, "; ".join(problems)))
        else:
            rows.append(ok("fields", target, f"{len(names)} written fields exist, updateable"))
    return rows


def picklist_values(describes: Mapping[str, Mapping[str, Any]]) -> dict[str, list[str]]:
    """The active values of each terms picklist, by ``Object.Field`` (absent when not found)."""
    found: dict[str, list[str]] = {}
    for sobject, field_name in TERMS_PICKLISTS:
        for field in (describes.get(sobject) or {}).get("fields", []):
            if field["name"] == field_name:
                found[f"{sobject}.{field_name}"] = [
                    str(v["value"]) for v in field.get("picklistValues", []) if v.get("active")
                ]
    return found


# ---- record types ------------------------------------------------------------------------------
def check_record_types(
    record_types: Sequence[Mapping[str, Any]], config: RevbridgeConfig
) -> list[Row]:
    """Every active Opportunity record type routes to a realm; every configured one exists."""
    rows: list[Row] = []
    by_name = {str(r.get("DeveloperName")): r for r in record_types}
    for name, record in by_name.items():
        if not record.get("IsActive", True):
            continue
        target = f"record type {name}"
        routed = next((k for k, r in config.realms.items() if name in r.record_types), None)
        if routed is not None:
            rows.append(ok("routing", target, f"→ realm {routed}"))
        elif config.routing.default is not None:
            rows.append(
                ok("routing", target, f"→ realm {config.routing.default} (routing.default)")
            )
        else:
            by_owner = any(r.owners for r in config.realms.values())
            rows.append(
                blocker(
                    "routing",
                    target,
                    "routes to no realm (not in any realms.*.record_types, no routing.default)"
                    + ("; only deals of the listed owners will route" if by_owner else ""),
                )
            )
    for realm_name, realm in config.realms.items():
        for name in realm.record_types:
            configured = by_name.get(name)
            if configured is None or not configured.get("IsActive", True):
                state = "inactive" if configured is not None else "unknown"
                rows.append(
                    warn(
                        "routing",
                        f"realm {realm_name}",
                        f"realms.{realm_name}.record_types: {name!r} is an {state} Opportunity "
                        "record type",
                    )
                )
    return rows


# ---- QuickBooks reference data -----------------------------------------------------------------
def _find(rows: Sequence[Mapping[str, Any]], *, name: str | None, id_: str | None) -> Any:
    if id_ is not None:
        return next((r for r in rows if str(r.get("Id")) == id_), None)
    assert name is not None
    exact = next((r for r in rows if r.get("Name") == name), None)
    folded = name.casefold()
    return exact or next((r for r in rows if str(r.get("Name", "")).casefold() == folded), None)


def _existing(
    check: str,
    realm: str,
    what: str,
    rows: Sequence[Mapping[str, Any]],
    *,
    name: str | None = None,
    id_: str | None = None,
) -> Row | None:
    """A blocker when the named (or Id'd) row is missing or inactive, else None."""
    found = _find(rows, name=name, id_=id_)
    label = f"Id {id_}" if id_ is not None else repr(name)
    target = f"quickbooks {realm}"
    if found is None:
        return blocker(check, target, f"{what}: {label} does not exist")
    if found.get("Active") is False:
        return blocker(check, target, f"{what}: {label} is inactive")
    return None


def check_items(
    realm: str, realm_cfg: RealmConfig, items: Sequence[Mapping[str, Any]]
) -> list[Row]:
    """Every item_map target exists in the realm and is active."""
    if not realm_cfg.item_map:
        return [
            warn("items", f"quickbooks {realm}", "item_map is empty: every deal goes to review")
        ]
    rows = [
        row
        for code, ref in realm_cfg.item_map.items()
        if (row := _existing("items", realm, f"item_map.{code}", items, name=ref.name, id_=ref.id))
    ]
    return rows or [
        ok("items", f"quickbooks {realm}", f"{len(realm_cfg.item_map)} mapped items exist, active")
    ]


def check_terms(
    realm: str,
    realm_cfg: RealmConfig,
    terms: Sequence[Mapping[str, Any]],
    picklists: Mapping[str, Sequence[str]],
) -> list[Row]:
    """default_terms and every Payment_Terms__c picklist value exist as active Terms."""
    wanted: dict[str, list[str]] = {}
    if realm_cfg.default_terms:
        wanted.setdefault(realm_cfg.default_terms, []).append("default_terms")
    for source, values in picklists.items():
        for value in values:
            wanted.setdefault(value, []).append(source)
    rows = [
        row
        for name, sources in wanted.items()
        if (row := _existing("terms", realm, " and ".join(sources), terms, name=name))
    ]
    if realm_cfg.default_terms is None:
        rows.append(
            warn(
                "terms",
                f"quickbooks {realm}",
                "no default_terms: deals with an empty Payment_Terms__c go to review",
            )
        )
    return rows or [ok("terms", f"quickbooks {realm}", f"{len(wanted)} terms exist, active")]


def check_tax_code(
    realm: str, realm_cfg: RealmConfig, tax_codes: Sequence[Mapping[str, Any]]
) -> list[Row]:
    """The realm's tax_code (a TaxCodeRef value: the TaxCode's Id) exists and is active."""
    code = realm_cfg.tax_code
    target = f"quickbooks {realm}"
    if code is None:
        return [ok("tax code", target, "no tax_code configured (lines carry none)")]
    problem = _existing("tax code", realm, "tax_code", tax_codes, id_=code)
    return [problem] if problem else [ok("tax code", target, f"{code} exists, active")]


# ---- Slack -------------------------------------------------------------------------------------
def configured_channels(slack: SlackConfig) -> dict[str, str]:
    """The config's channels by purpose (``alerts_channel`` → ``#revops-alerts``)."""
    return {
        "alerts_channel": slack.alerts_channel,
        "approvals_channel": slack.approvals_channel,
        "wins_channel": slack.wins_channel,
    }


def resolve_channel(configured: str, listed: Sequence[Mapping[str, Any]]) -> str | None:
    """A channel id (``C…``/``G…`` given as is) or the id of the listed channel with that name."""
    bare = configured.strip().removeprefix("#")
    if bare[:1] in ("C", "G") and bare.isupper() and bare.isalnum():
        return bare
    return next((str(c["id"]) for c in listed if c.get("name") == bare.lower()), None)


def check_channel(purpose: str, configured: str, channel: Mapping[str, Any] | None) -> Row:
    """One configured channel: it exists, is not archived, and the bot is a member.

    Not a member: a blocker for a channel the flows post to (the bot has no
    ``chat:write.public``, so posts fail with ``not_in_channel``), a warn for the others."""
    target = f"slack.{purpose}"
    if channel is None:
        return blocker("slack", target, f"{configured}: channel not found")
    name = f"#{channel.get('name')} ({channel.get('id')})"
    if channel.get("is_archived"):
        return blocker("slack", target, f"{name} is archived")
    if not channel.get("is_member"):
        invite = "the bot is not a member: /invite it (or conversations.join)"
        if purpose in POSTED_CHANNELS:
            return blocker("slack", target, f"{name}: {invite}; the flows post here")
        return warn("slack", target, f"{name}: {invite}; no flow posts here yet")
    return ok("slack", target, f"{name}: reachable, bot is a member")


# ---- environments ------------------------------------------------------------------------------
def _is_loopback(url: str) -> bool:
    host = urlparse(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def qbo_environment(environment: str, api_base: str | None) -> Environment:
    """Which Intuit environment a QuickBooksConnection talks to, judged by its settings."""
    if (api_base and _is_loopback(api_base)) or _is_loopback(environment):
        return "local"
    if api_base:
        host = urlparse(api_base).hostname or ""
        if host.startswith("sandbox-quickbooks."):
            return "sandbox"
        if host == "quickbooks.api.intuit.com":
            return "production"
        return "unknown"
    if environment in ("sandbox", "production"):
        return environment  # type: ignore[return-value]
    return "sandbox" if "sandbox" in environment else "unknown"


def looks_like_sandbox_realm(realm_id: str, company_name: str | None = None) -> bool:
    return realm_id.startswith(SANDBOX_REALM_PREFIXES) or (company_name or "").startswith(
        SANDBOX_COMPANY_NAME_PREFIX
    )


def check_environment(
    realm: str,
    realm_id: str,
    environment: str,
    api_base: str | None,
    company_name: str | None = None,
) -> Row:
    """Heuristic: a sandbox connection with a production-looking realm, or the reverse."""
    target = f"quickbooks {realm}"
    env = qbo_environment(environment, api_base)
    if api_base and environment in ("sandbox", "production"):
        by_base = qbo_environment("unknown", api_base)
        if by_base in ("sandbox", "production") and by_base != environment:
            return warn(
                "environment", target, f"environment is {environment} but api_base is {by_base}"
            )
    if env == "local":
        return ok("environment", target, "local emulator (loopback): not checked")
    if env == "unknown":
        return warn("environment", target, "environment not recognised (custom api_base/URL)")
    sandboxy = looks_like_sandbox_realm(realm_id, company_name)
    hint = f"realm {realm_id}" + (f", {company_name!r}" if company_name else "")
    if env == "sandbox" and not sandboxy:
        return warn(
            "environment",
            target,
            f"sandbox connection but {hint} looks like a production company (heuristic)",
        )
    if env == "production" and sandboxy:
        return warn(
            "environment",
            target,
            f"production connection but {hint} looks like an Intuit sandbox company (heuristic)",
        )
    return ok("environment", target, f"{env}: {hint}")


def check_org_pairing(is_sandbox_org: bool, environments: Mapping[str, Environment]) -> Row | None:
    """A Salesforce sandbox wired to production QuickBooks (or the reverse) is worth a look."""
    expected = "sandbox" if is_sandbox_org else "production"
    other = [r for r, env in environments.items() if env in ("sandbox", "production")]
    odd = [r for r in other if environments[r] != expected]
    if not odd:
        return None
    org = "a sandbox" if is_sandbox_org else "a production"
    return warn(
        "environment",
        "salesforce",
        f"{org} Salesforce org with {', '.join(f'{r} ({environments[r]})' for r in odd)} "
        "QuickBooks",
    )


# ---- output ------------------------------------------------------------------------------------
def exit_code(rows: Iterable[Row]) -> int:
    return 1 if any(r.status == "blocker" for r in rows) else 0


def summary(rows: Sequence[Row]) -> str:
    counts = {s: sum(1 for r in rows if r.status == s) for s in ("ok", "warn", "blocker")}
    verdict = "NOT ready: fix the blockers" if counts["blocker"] else "ready"
    return f"{counts['ok']} ok, {counts['warn']} warn, {counts['blocker']} blocker: {verdict}"


def render_table(rows: Sequence[Row]) -> str:
    """A plain-text table, blockers first, then warns, then the rest in check order."""
    order = {"blocker": 0, "warn": 1, "ok": 2}
    ordered = sorted(rows, key=lambda r: order[r.status])
    header = ("STATUS", "CHECK", "TARGET", "DETAIL")
    cells = [header] + [(r.status.upper(), r.check, r.target, r.detail) for r in ordered]
    widths = [max(len(c[i]) for c in cells) for i in range(3)]
    lines = ["  ".join(c[i].ljust(widths[i]) for i in range(3)) + "  " + c[3] for c in cells]
    lines.insert(1, "  ".join("-" * w for w in widths) + "  " + "-" * len(header[3]))
    return "\n".join(line.rstrip() for line in lines) + "\n\n" + summary(rows)
