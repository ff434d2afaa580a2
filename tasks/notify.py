"""Direct messages to record owners: found in Slack by e-mail, else named in a channel."""

from __future__ import annotations

from typing import TYPE_CHECKING

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from slack_sdk.errors import SlackApiError

from revbridge.report import escape_slack

if TYPE_CHECKING:
    from blocks.slack import SlackConnection

NOT_FOUND = frozenset({"users_not_found", "user_not_found"})


@task(cache_policy=NO_CACHE)
def notify_owners(
    slack: SlackConnection, messages: list[tuple[str | None, str | None, str]], fallback: str
) -> list[str | None]:
    """Send each ``(owner email, owner name, text)`` to its owner's DM; an owner without a Slack
    account (or without an e-mail) is named in the ``fallback`` channel instead.

    Returns where each message went (a user id or the fallback channel), None where Slack
    refused it. No task retries: a retry would send the messages already delivered again (the
    client itself waits out 429s)."""
    client = slack.get_client()
    logger = get_run_logger()
    users: dict[str, str | None] = {}
    sent: list[str | None] = []
    for email, name, text in messages:
        key = (email or "").casefold()
        try:
            if email and key not in users:
                try:
                    users[key] = client.users_lookupByEmail(email=email)["user"]["id"]
                except SlackApiError as exc:
                    if exc.response.get("error") not in NOT_FOUND:
                        raise
                    users[key] = None
            user = users.get(key)
            if user:
                client.chat_postMessage(channel=user, text=text)
                sent.append(user)
            else:
                who = escape_slack(name or email or "unknown owner")
                client.chat_postMessage(channel=fallback, text=f"For {who} (not in Slack): {text}")
                sent.append(fallback)
        except SlackApiError as exc:
            logger.error("Slack refused the message for %s: %s", email or name, exc)
            sent.append(None)
    logger.info("Slack: %s of %s owner message(s) sent", sum(1 for s in sent if s), len(sent))
    return sent
