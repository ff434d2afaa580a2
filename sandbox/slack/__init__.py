"""Slack Web API emulator (``SlackEmulator``): chat, conversations, users and auth methods."""

from sandbox.slack.emulator import SlackEmulator
from sandbox.slack.models import BOT_TOKEN, BOT_USER_ID, SIGNING_SECRET, TEAM_ID, SlackBackend

__all__ = ["BOT_TOKEN", "BOT_USER_ID", "SIGNING_SECRET", "TEAM_ID", "SlackBackend", "SlackEmulator"]
