"""Token health: what the daily check found per connection, and the alerts it owes (pure).

Each QuickBooks realm is checked by refreshing its token and reading CompanyInfo, Salesforce by
logging in; the flow turns the results into `RealmHealth` / `SalesforceHealth`. `alerts()` says
what to post: a refresh token expiring within ``warn_days`` (Intuit caps every connection at five
years; a token also lapses after ~100 days unused), or a connection that fails, each with the
exact steps to fix it. `due()` keeps it to one post per alert per day.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal

DEFAULT_CONFIG = "config/demo.yaml"

# What went wrong with a QuickBooks realm:
# reauthorize: Intuit refused the refresh token (invalid_grant) or the API refused a fresh access
#   token (401 AuthenticationFailed, 3200): the connection is gone, a person must consent again;
# forbidden: 403 ApplicationAuthorizationFailed (3100): the token is not for this company or lacks
#   the accounting scope: consent again, picking this company;
# app_credentials: invalid_client: the block's client id/secret are wrong;
# unreachable: anything else (network, Intuit down, the block missing): nothing to re-authorize.
QuickBooksProblem = Literal["reauthorize", "forbidden", "app_credentials", "unreachable"]
SalesforceProblem = Literal["login", "unreachable"]


def authorize_command(realm: str, block_name: str | None = None, config: str | None = None) -> str:
    """The command that re-authorizes a realm (a config realm key or a realm id) and stores its
    new tokens in its block."""
    parts = ["python -m deployments.authorize", f"--realm {realm}"]
    if block_name:
        parts.append(f"--block {block_name}")
    if config and config != DEFAULT_CONFIG:
        parts.append(f"--config {config}")
    return " ".join(parts)


@dataclass(frozen=True)
class RealmHealth:
    realm: str  # the config's realm key
    realm_id: str
    block: str
    expires_at: datetime | None  # the refresh token's expiry, as Intuit last reported it
    problem: QuickBooksProblem | None = None
    detail: str = ""  # the error, never a token
    company: str = ""  # CompanyInfo.CompanyName when the call worked


@dataclass(frozen=True)
class SalesforceHealth:
    block: str
    problem: SalesforceProblem | None = None
    detail: str = ""


@dataclass(frozen=True)
class Alert:
    key: str  # one post per key per day
    text: str


def days_left(expires_at: datetime, now: datetime) -> int:
    """Whole days until ``expires_at`` (rounded up: 1 while under a day remains; ≤ 0 once past)."""
    return math.ceil((expires_at - now).total_seconds() / 86400)


def expiring(health: RealmHealth, now: datetime, warn_days: int) -> bool:
    return (
        health.problem is None
        and health.expires_at is not None
        and days_left(health.expires_at, now) <= warn_days
    )


def realm_alert(health: RealmHealth, now: datetime, warn_days: int, config: str) -> Alert | None:
    """The alert a realm owes, if any."""
    command = authorize_command(health.realm, config=config)
    where = f"QuickBooks realm *{health.realm}* ({health.realm_id}, block `{health.block}`)"
    consent = (
        f"Run `{command}` where a browser can reach Intuit; a QuickBooks admin of this company "
        "signs in and clicks Connect, and the new tokens are stored in the block."
    )
    if health.problem is None:
        if not expiring(health, now, warn_days):
            return None
        assert health.expires_at is not None
        left = days_left(health.expires_at, now)
        return Alert(
            f"qbo:{health.realm}:expiry",
            f":hourglass: {where}: the refresh token expires in {left} day"
            f"{'' if left == 1 else 's'} ({health.expires_at:%Y-%m-%d %H:%M} UTC); after that "
            f"every QuickBooks flow of this company stops. Re-authorize before then. {consent}",
        )
    if health.problem == "reauthorize":
        text = (
            f":rotating_light: {where}: Intuit refuses this connection (the refresh token "
            "expired or was revoked, or the app was disconnected in QuickBooks). Every "
            f"QuickBooks flow of this company fails until it is re-authorized. {consent}"
        )
    elif health.problem == "forbidden":
        text = (
            f":rotating_light: {where}: QuickBooks answers 403 ApplicationAuthorizationFailed: "
            "the stored authorization is for another company or lacks the accounting scope. "
            f"Re-authorize and pick this company ({health.realm_id}). {consent}"
        )
    elif health.problem == "app_credentials":
        text = (
            f":rotating_light: {where}: Intuit rejects the app's client id or secret "
            "(invalid_client). Copy them from the Intuit developer portal (your app → Keys & "
            f"credentials, production keys for a live company) into block `{health.block}` "
            "(fields client_id, client_secret); the refresh token stays valid."
        )
    else:
        text = f":warning: {where}: could not be checked: {health.detail}"
    return Alert(f"qbo:{health.realm}:{health.problem}", text)


def salesforce_alert(health: SalesforceHealth) -> Alert | None:
    if health.problem is None:
        return None
    if health.problem == "login":
        return Alert(
            "salesforce:login",
            f":rotating_light: Salesforce login with block `{health.block}` failed: "
            f"{health.detail} Every flow stops at its first Salesforce call until it is fixed.",
        )
    return Alert(
        "salesforce:unreachable",
        f":warning: Salesforce (block `{health.block}`) could not be checked: {health.detail}",
    )


def alerts(
    realms: list[RealmHealth],
    salesforce: SalesforceHealth | None,
    now: datetime,
    warn_days: int,
    config: str = DEFAULT_CONFIG,
) -> list[Alert]:
    found = [realm_alert(r, now, warn_days, config) for r in realms]
    if salesforce is not None:
        found.append(salesforce_alert(salesforce))
    return [a for a in found if a is not None]


def due(found: list[Alert], sent: dict[str, str], today: date) -> list[Alert]:
    """The alerts not yet posted today (``sent``: alert key → ISO date last posted)."""
    return [a for a in found if sent.get(a.key) != today.isoformat()]


def record(sent: dict[str, str], posted: list[Alert], today: date) -> dict[str, str]:
    """The new ``sent`` map: today's posts added, entries older than today dropped."""
    kept = {k: v for k, v in sent.items() if v == today.isoformat()}
    return kept | {a.key: today.isoformat() for a in posted}


def markdown_report(
    realms: list[RealmHealth],
    salesforce: SalesforceHealth | None,
    now: datetime,
    warn_days: int,
) -> str:
    lines = [
        f"# Token health, {now:%Y-%m-%d %H:%M} UTC",
        "",
        f"Alert threshold: {warn_days} days before a refresh token expires.",
        "",
        "| connection | block | status | refresh token expires | detail |",
        "| --- | --- | --- | --- | --- |",
    ]
    for r in realms:
        if r.problem is not None:
            status = f"**{r.problem}**"
        elif expiring(r, now, warn_days):
            status = "**expiring**"
        else:
            status = "ok"
        expires = (
            f"{r.expires_at:%Y-%m-%d} ({days_left(r.expires_at, now)} d)"
            if r.expires_at is not None
            else "unknown"
        )
        detail = r.company if r.problem is None else r.detail
        lines.append(
            f"| QuickBooks {r.realm} ({r.realm_id}) | {r.block} | {status} | {expires} | "
            f"{_cell(detail)} |"
        )
    if salesforce is not None:
        status = "ok" if salesforce.problem is None else f"**{salesforce.problem}**"
        lines.append(
            f"| Salesforce | {salesforce.block} | {status} | n/a | {_cell(salesforce.detail)} |"
        )
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
