"""Preflight: ``python -m deployments.doctor [--config PATH] [--json]``.

Checks everything before go-live and on demand, read-only: every connection authenticates
(Salesforce Organization, QuickBooks CompanyInfo per realm, Slack ``auth.test``); Salesforce has
the fields the flows write (describe); every active Opportunity record type routes to a realm;
every mapped QuickBooks Item, Term and tax code exists and is active in its realm (one batch of
queries per realm); every configured Slack channel exists and has the bot in it; a realm that
looks like the wrong Intuit environment is flagged. Prints a table (or JSON) and exits 1 when
any row is a blocker, else 0. Blocks are loaded from the Prefect API (``PREFECT_API_URL``).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

from prefect.blocks.core import Block
from prefect.settings import get_current_settings
from pydantic import SecretStr
from quickbooks.exceptions import QuickbooksException
from simple_salesforce.exceptions import SalesforceError
from slack_sdk.errors import SlackApiError

from blocks.loading import load_block
from blocks.quickbooks import QuickBooksConnection
from blocks.salesforce import SalesforceCredentials
from blocks.slack import SlackConnection
from revbridge import doctor as checks
from revbridge.config import ConfigError, RealmConfig, RevbridgeConfig, load_config
from revbridge.doctor import Row
from tasks.quickbooks import qbo_batch_queries, qbo_call

DEFAULT_CONFIG = "config/demo.yaml"
ORGANIZATION_SOQL = "SELECT Id, Name, IsSandbox, OrganizationType FROM Organization"
RECORD_TYPE_SOQL = (
    "SELECT Id, DeveloperName, Name, IsActive FROM RecordType WHERE SobjectType = 'Opportunity'"
)
REFERENCE_QUERIES = {
    "Item": "SELECT * FROM Item WHERE Active IN (true, false)",
    "Term": "SELECT * FROM Term WHERE Active IN (true, false)",
    "TaxCode": "SELECT * FROM TaxCode WHERE Active IN (true, false)",
}

B = TypeVar("B", bound=Block)


class Doctor:
    """Runs every check for one config; ``rows`` collects the results."""

    def __init__(self, config: RevbridgeConfig) -> None:
        self.config = config
        self.rows: list[Row] = []
        self.blocks: list[Block] = []
        self.picklists: dict[str, list[str]] = {}  # terms picklists, once Salesforce is read

    # ---- helpers ---------------------------------------------------------------------------------
    def _error(self, exc: BaseException) -> str:
        if isinstance(exc, SlackApiError):
            return f"Slack answered {exc.response.get('error')!r}"
        if isinstance(exc, SalesforceError) and isinstance(exc.content, list):
            errors = "; ".join(f"{e.get('errorCode')}: {e.get('message')}" for e in exc.content)
            return f"Salesforce {exc.status} ({type(exc).__name__}): {errors}"
        if isinstance(exc, QuickbooksException):
            return f"QuickBooks {exc.error_code}: {exc.message} {exc.detail or ''}"
        return f"{type(exc).__name__}: {exc}"

    def _fail(self, check: str, target: str, exc: BaseException) -> None:
        self.rows.append(checks.failure(check, target, self._error(exc), self._secrets()))

    def _secrets(self) -> set[str]:
        """Every secret of the loaded blocks, as they are now (refresh tokens rotate)."""
        return {
            value.get_secret_value()
            for block in self.blocks
            for value in vars(block).values()
            if isinstance(value, SecretStr)
        }

    def _load(self, cls: type[B], name: str, target: str) -> B | None:
        try:
            block = load_block(cls, name)
        except Exception as exc:
            self._fail("connection", target, exc)
            if get_current_settings().api.url is None:
                self.rows.append(
                    checks.warn(
                        "connection",
                        target,
                        "no PREFECT_API_URL: blocks were looked up in a temporary local server",
                    )
                )
            return None
        self.blocks.append(block)
        return block

    # ---- checks ----------------------------------------------------------------------------------
    def run(self) -> list[Row]:
        is_sandbox_org = self.salesforce()
        environments = {
            name: env
            for name, realm in self.config.realms.items()
            if (env := self.realm(name, realm))
        }
        if is_sandbox_org is not None:
            pairing = checks.check_org_pairing(is_sandbox_org, environments)
            if pairing:
                self.rows.append(pairing)
        self.slack()
        return self.rows

    def salesforce(self) -> bool | None:
        """Auth, fields and record types; whether the org is a sandbox (None: not known)."""
        later = ("fields", "routing")
        credentials = self._load(SalesforceCredentials, self.config.salesforce_block, "salesforce")
        if credentials is None:
            self.rows += [checks.skipped(c, "salesforce", "no Salesforce block") for c in later]
            return None
        try:
            return self._salesforce_checks(credentials)
        finally:
            credentials.close()

    def _salesforce_checks(self, credentials: SalesforceCredentials) -> bool | None:
        later = ("fields", "routing")
        try:
            sf = credentials.get_client()
            org = sf.query(ORGANIZATION_SOQL)["records"][0]
        except Exception as exc:
            self._fail("auth", "salesforce", exc)
            self.rows += [checks.skipped(c, "salesforce", "Salesforce auth failed") for c in later]
            return None
        self.rows.append(checks.salesforce_auth(org))
        describes: dict[str, dict[str, Any]] = {}
        for sobject in checks.WRITTEN_FIELDS:
            try:
                describes[sobject] = getattr(sf, sobject).describe()
            except Exception as exc:
                self._fail("fields", f"salesforce {sobject}", exc)
        described = {k: v for k, v in checks.WRITTEN_FIELDS.items() if k in describes}
        self.rows += checks.check_fields(describes, described)
        self.picklists = checks.picklist_values(describes)
        try:
            record_types = sf.query_all(RECORD_TYPE_SOQL)["records"]
        except Exception as exc:
            self._fail("routing", "salesforce RecordType", exc)
        else:
            self.rows += checks.check_record_types(record_types, self.config)
        return bool(org.get("IsSandbox"))

    def realm(self, name: str, realm: RealmConfig) -> checks.Environment | None:
        """Auth, environment, items, terms and tax code of one realm; its environment."""
        target = f"quickbooks {name}"
        later = ("items", "terms", "tax code")
        connection = self._load(QuickBooksConnection, realm.connection_block, target)
        if connection is None:
            self.rows += [checks.skipped(c, target, "no connection block") for c in later]
            return None
        mismatch = checks.realm_block_matches(name, realm.realm_id, connection.realm_id)
        if mismatch:
            self.rows.append(mismatch)
        try:
            info = qbo_call(connection, "GET", f"companyinfo/{connection.realm_id}")
        except Exception as exc:
            self._fail("auth", target, exc)
            self.rows += [checks.skipped(c, target, "QuickBooks auth failed") for c in later]
            return None
        self.rows.append(checks.quickbooks_auth(name, connection.realm_id, info))
        company = info.get("CompanyInfo", {}).get("CompanyName")
        self.rows.append(
            checks.check_environment(
                name, connection.realm_id, connection.environment, connection.api_base, company
            )
        )
        try:
            reference = self._reference(connection)
        except Exception as exc:
            self._fail("items", target, exc)
            self.rows += [checks.skipped(c, target, "reference query failed") for c in later[1:]]
        else:
            self.rows += checks.check_items(name, realm, reference["Item"])
            self.rows += checks.check_terms(name, realm, reference["Term"], self.picklists)
            self.rows += checks.check_tax_code(name, realm, reference["TaxCode"])
        return checks.qbo_environment(connection.environment, connection.api_base)

    def _reference(self, connection: QuickBooksConnection) -> dict[str, list[dict[str, Any]]]:
        """Items, terms and tax codes (active or not) in one batch request."""
        return qbo_batch_queries(connection, REFERENCE_QUERIES)

    def slack(self) -> None:
        channels = checks.configured_channels(self.config.slack)
        slack = self._load(SlackConnection, self.config.slack.block, "slack")
        if slack is None:
            self.rows.append(checks.skipped("slack", "slack channels", "no Slack block"))
            return
        client = slack.get_client()
        try:
            self.rows.append(checks.slack_auth(client.auth_test().data))  # type: ignore[arg-type]
        except Exception as exc:
            self._fail("auth", "slack", exc)
            self.rows.append(checks.skipped("slack", "slack channels", "Slack auth failed"))
            return
        try:
            listed = _list_channels(client.conversations_list)
        except Exception as exc:
            self._fail("slack", "slack conversations.list", exc)
            listed = []
        for purpose, configured in channels.items():
            channel_id = checks.resolve_channel(configured, listed)
            channel = None
            if channel_id is not None:
                try:
                    channel = client.conversations_info(channel=channel_id)["channel"]
                except SlackApiError as exc:
                    if exc.response.get("error") != "channel_not_found":
                        self._fail("slack", f"slack.{purpose}", exc)
                        continue
            self.rows.append(checks.check_channel(purpose, configured, channel))


def _list_channels(conversations_list: Callable[..., Any]) -> list[dict[str, Any]]:
    """Every channel the bot can see; public only when it may not list private ones."""
    try:
        pages = conversations_list(types="public_channel,private_channel", limit=1000)
        return [c for page in pages for c in page["channels"]]
    except SlackApiError as exc:
        if exc.response.get("error") != "missing_scope":
            raise
    pages = conversations_list(types="public_channel", limit=1000)
    return [c for page in pages for c in page["channels"]]


def run_doctor(config_path: str) -> list[Row]:
    """Every row for the config at ``config_path`` (a bad config is one blocker row)."""
    try:
        config = load_config(config_path)
    except (ConfigError, OSError) as exc:
        return [checks.blocker("config", config_path, str(exc))]
    return Doctor(config).run()


def render(rows: Sequence[Row], as_json: bool) -> str:
    if as_json:
        return json.dumps(
            {
                "rows": [r.as_dict() for r in rows],
                "blockers": sum(1 for r in rows if r.status == "blocker"),
                "warnings": sum(1 for r in rows if r.status == "warn"),
                "exit_code": checks.exit_code(rows),
            },
            indent=2,
        )
    return checks.render_table(rows)


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m deployments.doctor", description="revbridge preflight checks"
    )
    parser.add_argument("--config", default=DEFAULT_CONFIG, help="revbridge config file")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(list(argv) if argv is not None else None)
    rows = run_doctor(args.config)
    print(render(rows, args.json))
    return checks.exit_code(rows)


if __name__ == "__main__":
    sys.exit(main())
