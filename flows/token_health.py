"""Token health (daily).

1. Per QuickBooks company: load its connection block, refresh the token (a rotated one is saved,
   through the write-ahead journal) and read CompanyInfo; note the refresh token's expiry as
   Intuit reported it (``x_refresh_token_expires_in``).
2. Salesforce: log in with the configured block and read the Organization.
3. Decide (pure, `revbridge.token_health`): a refresh token expiring within
   ``token_health.warn_days`` (14) days, or a connection that fails, owes an alert naming the exact
   fix: the `python -m deployments.authorize` command line for QuickBooks, the block field and
   the INVALID_LOGIN / invalid_grant causes for Salesforce.
4. Post each alert to Slack at most once a day (posted keys kept in a Prefect Variable), publish
   the status table as an artifact; the run fails when a connection does.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact
from prefect.states import Completed, Failed, State

from blocks.loading import load_block
from blocks.slack import SlackConnection
from revbridge.config import load_config
from revbridge.token_health import DEFAULT_CONFIG, alerts, due, markdown_report, record
from tasks.slack import post_message
from tasks.state import read_state, write_state
from tasks.tokens import check_quickbooks, check_salesforce

STATE_VARIABLE = "revbridge-token-health"
ARTIFACT_KEY = "token-health"


@flow(name="token-health", log_prints=False)
def token_health(
    config_path: str = DEFAULT_CONFIG,
    warn_days: int | None = None,
    now: datetime | None = None,
) -> State[Any]:
    """Check every QuickBooks and Salesforce connection; alert in Slack, once a day, about a
    refresh token expiring within ``warn_days`` (default: the config's token_health.warn_days)
    and about any connection that fails, with the steps to fix it."""
    logger = get_run_logger()
    now = now or datetime.now(UTC)
    config = load_config(config_path)
    warn = warn_days or config.token_health.warn_days

    realms = [check_quickbooks(name, realm) for name, realm in config.realms.items()]
    salesforce = check_salesforce(config.salesforce_block)

    found = alerts(realms, salesforce, now, warn, config_path)
    state = read_state(STATE_VARIABLE) or {}
    sent: dict[str, str] = dict(state.get("sent", {}))
    to_post = due(found, sent, now.date())
    posted = []
    try:
        if to_post:
            slack = load_block(SlackConnection, config.slack.block)
            channel = config.token_health.slack_channel or config.slack.alerts_channel
            for alert in to_post:
                post_message(slack, alert.text, channel=channel)
                posted.append(alert)
    finally:  # what did go out is not posted again today, even when a later post failed
        write_state(STATE_VARIABLE, {"sent": record(sent, posted, now.date())})
    logger.info(
        "%s alerts (%s posted, %s already posted today)",
        len(found),
        len(posted),
        len(found) - len(posted),
    )
    create_markdown_artifact(
        key=ARTIFACT_KEY,
        markdown=markdown_report(realms, salesforce, now, warn),
        description=f"Token health at {now:%Y-%m-%d %H:%M} UTC",
    )

    broken = [f"QuickBooks {r.realm}: {r.problem}" for r in realms if r.problem] + (
        [f"Salesforce: {salesforce.problem}"] if salesforce.problem else []
    )
    counts = {
        "checked": len(realms) + 1,
        "failing": len(broken),
        "alerts": len(found),
        "posted": len(posted),
    }
    if broken:
        return Failed(message="; ".join(broken), data=counts)
    return Completed(message=", ".join(f"{k}: {v}" for k, v in counts.items()), data=counts)
