"""Blocks pointed at a running sandbox, built from its info file (SANDBOX_CONTRACT.md).

info = json.loads(Path("sandbox-info.json").read_text())
blocks = blocks_from_info(info)
sf = blocks.salesforce.get_client()
qb = blocks.quickbooks["us"].get_client()
names = save_all(blocks)  # {"salesforce": "sandbox-salesforce", ...}
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from blocks.quickbooks import QuickBooksConnection
from blocks.salesforce import AuthFlow, SalesforceCredentials
from blocks.slack import SlackConnection
from tasks.locks import ensure_invoicing_lock

# The redirect URI the sandbox's QuickBooks app has registered (used only by the authorize flow).
SANDBOX_QBO_REDIRECT_URI = "http://127.0.0.1:8765/callback"
# A My Domain for the client credentials flow (Salesforce offers it there only); its logins go to
# the emulator like every other login host's.
SANDBOX_MY_DOMAIN = "revbridge-sandbox.my"


@dataclass(frozen=True)
class SandboxBlocks:
    salesforce: SalesforceCredentials
    quickbooks: dict[str, QuickBooksConnection]  # realm key ("us", "eu") → connection
    slack: SlackConnection


def blocks_from_info(
    info: Mapping[str, Any], *, salesforce_auth_flow: AuthFlow = "password"
) -> SandboxBlocks:
    """The sandbox's Salesforce, QuickBooks (one per realm) and Slack blocks."""
    return SandboxBlocks(
        salesforce=salesforce_from_info(info["salesforce"], auth_flow=salesforce_auth_flow),
        quickbooks=quickbooks_from_info(info["quickbooks"]),
        slack=slack_from_info(info["slack"]),
    )


def salesforce_from_info(
    section: Mapping[str, Any], *, auth_flow: AuthFlow = "password"
) -> SalesforceCredentials:
    """Credentials for the Salesforce emulator; its logins go to ``instance_url``."""
    return SalesforceCredentials(
        auth_flow=auth_flow,
        domain=SANDBOX_MY_DOMAIN if auth_flow == "client_credentials" else "login",
        username=section["username"],
        password=section["password"],
        security_token=section["security_token"],
        consumer_key=section["client_id"],
        consumer_secret=section["client_secret"],
        api_version=section.get("api_version", "62.0"),
        login_url_override=section["instance_url"],
        ca_bundle=section.get("ca_bundle"),
    )


def quickbooks_from_info(section: Mapping[str, Any]) -> dict[str, QuickBooksConnection]:
    """One connection per realm key of the QuickBooks emulator."""
    return {
        key: QuickBooksConnection(
            client_id=section["client_id"],
            client_secret=section["client_secret"],
            realm_id=realm["realm_id"],
            environment=section["discovery_url"],
            refresh_token=realm["refresh_token"],
            redirect_uri=section.get("redirect_uri", SANDBOX_QBO_REDIRECT_URI),
            api_base=section["api_base"],
        )
        for key, realm in section["realms"].items()
    }


def slack_from_info(section: Mapping[str, Any]) -> SlackConnection:
    return SlackConnection(
        token=section["token"],
        base_url=section["base_url"],
        signing_secret=section.get("signing_secret"),
    )


def save_all(blocks: SandboxBlocks, prefix: str = "sandbox") -> dict[str, str]:
    """Save every block under a stable name (``<prefix>-salesforce``, ``<prefix>-quickbooks-us``,
    ``<prefix>-slack``), overwriting older versions, and create each realm's token lock and
    invoicing lock (global concurrency limits of 1). Returns {"salesforce" | "quickbooks-<key>"
    | "slack": block name}."""
    names: dict[str, str] = {}
    blocks.salesforce.save(_name(prefix, "salesforce"), overwrite=True)
    names["salesforce"] = _name(prefix, "salesforce")
    for key, connection in blocks.quickbooks.items():
        name = _name(prefix, f"quickbooks-{key}")
        connection.save(name, overwrite=True)
        connection.ensure_token_lock()
        ensure_invoicing_lock(connection.realm_id)
        names[f"quickbooks-{key}"] = name
    blocks.slack.save(_name(prefix, "slack"), overwrite=True)
    names["slack"] = _name(prefix, "slack")
    return names


def _name(prefix: str, part: str) -> str:
    """Block document names allow lowercase letters, digits and dashes."""
    return re.sub(r"[^a-z0-9-]+", "-", f"{prefix}-{part}".lower()).strip("-")
