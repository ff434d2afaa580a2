"""Seed profiles of the Slack workspace.

"empty": the bot user and #general (the bot is a member, as when the app is installed there).
"demo": plus the people of ``sandbox.demo_company.USERS`` (their ``slack_user_id`` and email) and
#revops-alerts, #finance-approvals, #sales-wins, #finance-ops. Everyone is in every channel; the
bot is in all but #sales-wins, so posting there answers ``not_in_channel`` until it joins.
"""

from __future__ import annotations

from sandbox.demo_company import USERS
from sandbox.slack.models import BOT_USER_ID, Channel, SlackBackend, SlackUser

GENERAL = "C07GENERAL"
DEMO_CHANNELS: dict[str, tuple[str, str]] = {
    # id: (name, purpose)
    "C07REVOPS1": ("revops-alerts", "Sync failures and anything revbridge needs a human for"),
    "C07FINAPPR": ("finance-approvals", "Invoices above the approval threshold wait here"),
    "C07SALESWN": ("sales-wins", "Closed-won deals"),
    "C07FINOPS1": ("finance-ops", "Daily AR aging and reconciliation reports"),
}
BOT_NOT_MEMBER = frozenset({"C07SALESWN"})


def load(backend: SlackBackend, profile: str) -> None:
    backend.clear()
    people: set[str] = set()
    if profile == "demo":
        for user in USERS:
            backend.add_user(
                SlackUser(
                    id=user.slack_user_id,
                    name=user.email.split("@", 1)[0],
                    real_name=user.name,
                    email=user.email,
                    title=user.title,
                    first_name=user.first_name,
                    last_name=user.last_name,
                )
            )
            people.add(user.slack_user_id)
    backend.add_channel(
        Channel(
            GENERAL,
            "general",
            people | {BOT_USER_ID},
            is_general=True,
            purpose="This is the one channel that will always include everyone.",
        )
    )
    if profile == "demo":
        for channel_id, (name, purpose) in DEMO_CHANNELS.items():
            members = set(people)
            if channel_id not in BOT_NOT_MEMBER:
                members.add(BOT_USER_ID)
            backend.add_channel(Channel(channel_id, name, members, purpose=purpose))
