"""Token health checks: one harmless authenticated call per connection, its failure classified.

Never retried as a whole (a refresh that failed for good fails the same way again); the QuickBooks
call itself backs off on transient faults inside ``qbo_call``.
"""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from quickbooks.exceptions import AuthorizationException, QuickbooksException

from blocks.loading import load_block
from blocks.quickbooks import (
    QuickBooksAuthError,
    QuickBooksConnection,
    QuickBooksReauthorizationRequired,
)
from blocks.salesforce import SalesforceCredentials, SalesforceLoginFailed
from revbridge.config import RealmConfig
from revbridge.token_health import QuickBooksProblem, RealmHealth, SalesforceHealth
from tasks.quickbooks import qbo_call

ORGANIZATION_SOQL = "SELECT Id, Name FROM Organization"


@task(cache_policy=NO_CACHE)
def check_quickbooks(realm: str, realm_cfg: RealmConfig) -> RealmHealth:
    """Refresh the realm's token (saving a rotated one) and read CompanyInfo."""
    logger = get_run_logger()
    block = realm_cfg.connection_block
    try:
        connection = load_block(QuickBooksConnection, block)
    except ValueError as exc:
        return RealmHealth(realm, realm_cfg.realm_id, block, None, "unreachable", str(exc))
    problem: QuickBooksProblem
    try:
        body = qbo_call(connection, "GET", f"companyinfo/{connection.realm_id}")
    except QuickBooksReauthorizationRequired as exc:
        problem, detail = "reauthorize", str(exc)
    except QuickBooksAuthError as exc:
        invalid_client = "invalid_client" in str(exc)
        problem, detail = ("app_credentials" if invalid_client else "unreachable"), str(exc)
    except AuthorizationException as exc:  # 401 with a token Intuit had just issued
        problem, detail = "reauthorize", f"QuickBooks {exc.error_code}: {exc.message}"
    except QuickbooksException as exc:
        forbidden = "ApplicationAuthorizationFailed" in f"{exc.message} {exc.detail}"
        problem = "forbidden" if forbidden else "unreachable"
        detail = f"QuickBooks {exc.error_code}: {exc.message}"
    except Exception as exc:
        problem, detail = "unreachable", f"{type(exc).__name__}: {exc}"
    else:
        company = str(body.get("CompanyInfo", {}).get("CompanyName", ""))
        logger.info("QuickBooks realm %s (%s): ok, %s", realm, connection.realm_id, company)
        return RealmHealth(
            realm, connection.realm_id, block, connection.refresh_token_expires_at, company=company
        )
    logger.warning("QuickBooks realm %s (%s): %s: %s", realm, connection.realm_id, problem, detail)
    return RealmHealth(
        realm, connection.realm_id, block, connection.refresh_token_expires_at, problem, detail
    )


@task(cache_policy=NO_CACHE)
def check_salesforce(block: str) -> SalesforceHealth:
    """Log in with a fresh client and read the Organization."""
    logger = get_run_logger()
    try:
        credentials = load_block(SalesforceCredentials, block)
        try:
            credentials.get_client().query(ORGANIZATION_SOQL)
        finally:
            credentials.close()
    except SalesforceLoginFailed as exc:
        logger.warning("Salesforce block %s: login refused: %s", block, exc)
        return SalesforceHealth(block, "login", str(exc))
    except Exception as exc:
        logger.warning("Salesforce block %s: not checked: %s", block, exc)
        return SalesforceHealth(block, "unreachable", f"{type(exc).__name__}: {exc}")
    logger.info("Salesforce block %s: ok", block)
    return SalesforceHealth(block)
