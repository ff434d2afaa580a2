"""The Slack workspace backend: users, channels, messages, rate limits; every rule lives here.

One workspace (team) with one bot user whose token is ``BOT_TOKEN``. All state is guarded by an
RLock because the HTTP handlers run concurrently. Errors are raised as ``SlackError`` with the
codes Slack answers (HTTP 200 + ``{"ok": false, "error": ...}``).
"""

from __future__ import annotations

import base64
import json
import math
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from sandbox.core.clock import Clock
from sandbox.slack.blockkit import validate_blocks
from sandbox.slack.exceptions import SlackError, invalid_arguments, rate_limited

TEAM_ID = "T07ACMEANL"
TEAM_NAME = "Acme Analytics"
TEAM_DOMAIN = "acme-analytics"
BOT_USER_ID = "U07REVBRDG"
BOT_ID = "B07REVBRDG"
APP_ID = "A07REVBRDG"
BOT_NAME = "revbridge"
BOT_TOKEN = "xoxb-7000000001-7000000002-SandboxRevbridgeBotTok"
SIGNING_SECRET = "5a7d0c3e9b1f4a6e8d2c7b0a9f3e1d4c"

MAX_TEXT = 40_000  # characters of ``text``; beyond it msg_too_long
MAX_ATTACHMENTS = 100
CREATED = 1_700_000_000  # when the seeded workspace's channels were created


@dataclass
class SlackUser:
    id: str
    name: str  # the handle, e.g. "ava.chen"
    real_name: str
    email: str | None
    title: str = ""
    first_name: str = ""
    last_name: str = ""
    is_bot: bool = False
    bot_id: str | None = None
    deleted: bool = False

    def to_api(self) -> dict[str, Any]:
        profile: dict[str, Any] = {
            "title": self.title,
            "phone": "",
            "skype": "",
            "real_name": self.real_name,
            "real_name_normalized": self.real_name,
            "display_name": "" if self.is_bot else self.name,
            "display_name_normalized": "" if self.is_bot else self.name,
            "first_name": self.first_name,
            "last_name": self.last_name,
            "status_text": "",
            "status_emoji": "",
            "team": TEAM_ID,
        }
        if self.email is not None:
            profile["email"] = self.email
        if self.bot_id is not None:
            profile["bot_id"] = self.bot_id
            profile["api_app_id"] = APP_ID
        return {
            "id": self.id,
            "team_id": TEAM_ID,
            "name": self.name,
            "deleted": self.deleted,
            "color": "9f69e7",
            "real_name": self.real_name,
            "tz": "America/Los_Angeles",
            "tz_label": "Pacific Standard Time",
            "tz_offset": -28800,
            "profile": profile,
            "is_admin": False,
            "is_owner": False,
            "is_primary_owner": False,
            "is_restricted": False,
            "is_ultra_restricted": False,
            "is_bot": self.is_bot,
            "is_app_user": False,
            "updated": CREATED,
            "has_2fa": False,
        }


@dataclass
class Channel:
    id: str
    name: str | None  # None for a direct message (im)
    members: set[str] = field(default_factory=set)
    is_private: bool = False
    is_general: bool = False
    is_archived: bool = False
    im_user: str | None = None  # the other party of a direct message
    topic: str = ""
    purpose: str = ""

    @property
    def is_im(self) -> bool:
        return self.im_user is not None

    def to_api(self, viewer: str, *, num_members: bool = False) -> dict[str, Any]:
        if self.is_im:
            return {
                "id": self.id,
                "created": CREATED,
                "is_im": True,
                "is_org_shared": False,
                "user": self.im_user,
                "is_user_deleted": False,
                "priority": 0,
            }
        data: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "is_channel": not self.is_private,
            "is_group": self.is_private,
            "is_im": False,
            "is_mpim": False,
            "is_private": self.is_private,
            "created": CREATED,
            "is_archived": self.is_archived,
            "is_general": self.is_general,
            "unlinked": 0,
            "name_normalized": self.name,
            "is_shared": False,
            "is_org_shared": False,
            "is_pending_ext_shared": False,
            "pending_shared": [],
            "context_team_id": TEAM_ID,
            "updated": CREATED * 1000,
            "parent_conversation": None,
            "creator": BOT_USER_ID,
            "is_ext_shared": False,
            "shared_team_ids": [TEAM_ID],
            "pending_connected_team_ids": [],
            "is_member": viewer in self.members,
            "topic": {"value": self.topic, "creator": "", "last_set": 0},
            "purpose": {"value": self.purpose, "creator": "", "last_set": 0},
            "previous_names": [],
        }
        if num_members:
            data["num_members"] = len(self.members)
        return data


@dataclass
class Message:
    channel: str
    ts: str
    user: str
    text: str
    blocks: list[Any] | None = None
    attachments: list[Any] | None = None
    thread_ts: str | None = None
    ephemeral_user: str | None = None  # set: only this user sees it (chat.postEphemeral)
    edited: dict[str, str] | None = None
    reply_count: int = 0
    reply_users: list[str] = field(default_factory=list)
    latest_reply: str | None = None
    metadata: dict[str, Any] | None = None

    def to_api(self) -> dict[str, Any]:
        """The ``message`` object of a chat.* answer, as Slack shows a bot's message."""
        data: dict[str, Any] = {
            "user": self.user,
            "type": "message",
            "ts": self.ts,
            "bot_id": BOT_ID,
            "app_id": APP_ID,
            "text": self.text,
            "team": TEAM_ID,
            "bot_profile": {
                "id": BOT_ID,
                "app_id": APP_ID,
                "name": BOT_NAME,
                "icons": {},
                "deleted": False,
                "updated": CREATED,
                "team_id": TEAM_ID,
            },
        }
        if self.blocks:
            data["blocks"] = self.blocks
        if self.attachments:
            data["attachments"] = self.attachments
        if self.metadata:
            data["metadata"] = self.metadata
        if self.edited:
            data["edited"] = dict(self.edited)
        if self.thread_ts is not None:
            data["thread_ts"] = self.thread_ts
            if self.thread_ts != self.ts:
                data["parent_user_id"] = self.user
        if self.reply_count:
            data["reply_count"] = self.reply_count
            data["reply_users"] = list(self.reply_users)
            data["reply_users_count"] = len(self.reply_users)
            data["latest_reply"] = self.latest_reply
        return data


@dataclass(frozen=True)
class RateLimit:
    """At most ``limit`` calls of one method per ``window_seconds`` (real time)."""

    limit: int
    window_seconds: float


class RateLimiter:
    """Sliding-window limits per API method, configured through ``/_sandbox/limits``."""

    def __init__(self) -> None:
        self._limits: dict[str, RateLimit] = {}
        self._seen: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def configure(self, method: str, limit: RateLimit | None) -> None:
        with self._lock:
            self._seen.pop(method, None)
            if limit is None:
                self._limits.pop(method, None)
            else:
                self._limits[method] = limit

    def clear(self) -> None:
        with self._lock:
            self._limits.clear()
            self._seen.clear()

    def snapshot(self) -> dict[str, dict[str, float]]:
        with self._lock:
            return {
                m: {"limit": rl.limit, "window_seconds": rl.window_seconds}
                for m, rl in sorted(self._limits.items())
            }

    def check(self, method: str) -> None:
        """Count one call of ``method``; raise 429 ``ratelimited`` when over its limit."""
        with self._lock:
            rule = self._limits.get(method)
            if rule is None:
                return
            now = time.monotonic()
            seen = self._seen.setdefault(method, deque())
            while seen and now - seen[0] >= rule.window_seconds:
                seen.popleft()
            if len(seen) >= rule.limit:
                wait = rule.window_seconds - (now - seen[0]) if seen else rule.window_seconds
                raise rate_limited(max(1, math.ceil(wait)))
            seen.append(now)


class SlackBackend:
    """The state of one Slack workspace."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.limits = RateLimiter()
        self._lock = threading.RLock()
        self.users: dict[str, SlackUser] = {}
        self.channels: dict[str, Channel] = {}
        self._messages: list[Message] = []  # every message, in posting order
        self._last_ts_us = 0

    # ---- lifecycle ---------------------------------------------------------------------------
    def clear(self) -> None:
        with self._lock:
            self.users.clear()
            self.channels.clear()
            self._messages.clear()
            self.limits.clear()
            self.add_user(
                SlackUser(BOT_USER_ID, BOT_NAME, "revbridge", None, is_bot=True, bot_id=BOT_ID)
            )

    def add_user(self, user: SlackUser) -> None:
        with self._lock:
            self.users[user.id] = user

    def add_channel(self, channel: Channel) -> None:
        with self._lock:
            self.channels[channel.id] = channel

    # ---- auth --------------------------------------------------------------------------------
    def authenticate(self, token: str | None) -> SlackUser:
        if not token:
            raise SlackError("not_authed")
        if token != BOT_TOKEN:
            raise SlackError("invalid_auth")
        return self.users[BOT_USER_ID]

    def auth_test(self) -> dict[str, Any]:
        return {
            "url": f"https://{TEAM_DOMAIN}.slack.com/",
            "team": TEAM_NAME,
            "user": BOT_NAME,
            "team_id": TEAM_ID,
            "user_id": BOT_USER_ID,
            "bot_id": BOT_ID,
            "is_enterprise_install": False,
        }

    # ---- lookups -----------------------------------------------------------------------------
    def _channel_by_id(self, channel_id: str | None, viewer: str) -> Channel:
        """A conversation by its id; private ones the viewer is not in do not exist for it."""
        channel = self.channels.get(channel_id or "")
        if channel is None or (channel.is_private and viewer not in channel.members):
            raise SlackError("channel_not_found")
        return channel

    def _channel_for_posting(self, ref: str | None, viewer: str) -> Channel:
        """chat.postMessage's ``channel``: an id (C…/G…/D…), a name ("#x" or "x"), or a user id
        (U…/W…), which posts in the app's direct message with that user."""
        if not ref:
            raise SlackError("channel_not_found")
        if ref in self.channels:
            return self._channel_by_id(ref, viewer)
        if ref[0] in "UW" and ref in self.users:
            return self._im_with(ref)
        name = ref[1:] if ref.startswith("#") else ref
        for channel in self.channels.values():
            if channel.name == name:
                return self._channel_by_id(channel.id, viewer)
        raise SlackError("channel_not_found")

    def _im_with(self, user_id: str) -> Channel:
        im_id = "D" + user_id[1:]
        if im_id not in self.channels:
            self.channels[im_id] = Channel(im_id, None, {BOT_USER_ID, user_id}, im_user=user_id)
        return self.channels[im_id]

    def _next_ts(self) -> str:
        now_us = int(self.clock.now().timestamp() * 1_000_000)
        self._last_ts_us = max(now_us, self._last_ts_us + 1)
        return f"{self._last_ts_us // 1_000_000}.{self._last_ts_us % 1_000_000:06d}"

    def _find(self, channel: Channel, ts: str | None) -> Message:
        for message in self._messages:
            if message.channel == channel.id and message.ts == ts and not message.ephemeral_user:
                return message
        raise SlackError("message_not_found")

    # ---- chat.* ------------------------------------------------------------------------------
    def post_message(self, viewer: str, args: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            channel = self._channel_for_posting(args.get("channel"), viewer)
            content = _content(args)
            _require_content(content)
            self._check_can_post(channel, viewer)
            thread_ts = args.get("thread_ts") or None
            parent = self._thread_parent(channel, str(thread_ts)) if thread_ts else None
            message = Message(
                channel=channel.id,
                ts=self._next_ts(),
                user=viewer,
                text=content["text"] or "",
                blocks=content["blocks"],
                attachments=content["attachments"],
                thread_ts=parent.ts if parent else (str(thread_ts) if thread_ts else None),
                metadata=content["metadata"],
            )
            if parent is not None:
                parent.thread_ts = parent.ts
                parent.reply_count += 1
                parent.latest_reply = message.ts
                if viewer not in parent.reply_users:
                    parent.reply_users.append(viewer)
            self._messages.append(message)
            return {"channel": channel.id, "ts": message.ts, "message": message.to_api()}

    def _thread_parent(self, channel: Channel, thread_ts: str) -> Message | None:
        """The message a reply threads under: a reply's ts means its parent. An unknown ts is
        accepted (Slack answers ok; the reply is then visible in no thread)."""
        for message in self._messages:
            if message.channel == channel.id and message.ts == thread_ts:
                if message.thread_ts and message.thread_ts != message.ts:
                    return self._thread_parent(channel, message.thread_ts)
                return message
        return None

    def _check_can_post(self, channel: Channel, viewer: str) -> None:
        if channel.is_archived:
            raise SlackError("is_archived")
        if viewer not in channel.members:
            raise SlackError("not_in_channel")

    def update_message(self, viewer: str, args: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            channel = self._channel_by_id(args.get("channel"), viewer)
            message = self._find(channel, args.get("ts"))
            content = _content(args)
            _require_content(content)
            if content["text"] is not None:
                message.text = content["text"]
            if content["blocks"] is not None or "blocks" in args:
                message.blocks = content["blocks"] or None
            if content["attachments"] is not None or "attachments" in args:
                message.attachments = content["attachments"] or None
            if content["metadata"] is not None:
                message.metadata = content["metadata"]
            message.edited = {"user": viewer, "ts": self._next_ts()}
            return {
                "channel": channel.id,
                "ts": message.ts,
                "text": message.text,
                "message": message.to_api(),
            }

    def post_ephemeral(self, viewer: str, args: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            channel = self._channel_for_posting(args.get("channel"), viewer)
            user = args.get("user")
            if not user:
                raise invalid_arguments("user")
            content = _content(args)
            _require_content(content)
            self._check_can_post(channel, viewer)
            if user not in channel.members:
                raise SlackError("user_not_in_channel")
            message = Message(
                channel=channel.id,
                ts=self._next_ts(),
                user=viewer,
                text=content["text"] or "",
                blocks=content["blocks"],
                attachments=content["attachments"],
                thread_ts=str(args["thread_ts"]) if args.get("thread_ts") else None,
                ephemeral_user=str(user),
            )
            self._messages.append(message)
            return {"message_ts": message.ts}

    def permalink(self, viewer: str, args: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            channel = self._channel_by_id(args.get("channel"), viewer)
            message = self._find(channel, args.get("message_ts"))
            link = (
                f"https://{TEAM_DOMAIN}.slack.com/archives/{channel.id}/"
                f"p{message.ts.replace('.', '')}"
            )
            if message.thread_ts and message.thread_ts != message.ts:
                link += f"?thread_ts={message.thread_ts}&cid={channel.id}"
            return {"channel": channel.id, "permalink": link}

    def interaction_target(
        self, channel_ref: str, ts: str, user_id: str
    ) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        """(channel ``{id, name}``, message, user) of a click on a message, as an interaction
        payload shows them; the clicking user must see the channel (be a member)."""
        with self._lock:
            user = self.users.get(user_id)
            if user is None or user.deleted or user.is_bot:
                raise SlackError("user_not_found")
            channel = self._channel_for_posting(channel_ref, user_id)
            if user_id not in channel.members:
                raise SlackError("not_in_channel")
            message = self._find(channel, ts)
            where = {"id": channel.id, "name": channel.name or "directmessage"}
            return where, message.to_api(), user.to_api()

    # ---- conversations.* ---------------------------------------------------------------------
    def list_conversations(self, viewer: str, args: dict[str, Any]) -> dict[str, Any]:
        types = {t.strip() for t in str(args.get("types") or "public_channel").split(",")}
        unknown = types - {"public_channel", "private_channel", "mpim", "im"}
        if unknown:
            raise SlackError("invalid_types")
        limit = _int_arg(args, "limit", 100)
        if not 1 <= limit <= 1000:
            limit = 100 if limit < 1 else 1000
        exclude_archived = _flag(args.get("exclude_archived"))
        with self._lock:
            visible = [
                c
                for c in sorted(self.channels.values(), key=lambda c: c.id)
                if _kind(c) in types
                and not (c.is_private and viewer not in c.members)
                and not (exclude_archived and c.is_archived)
            ]
            start = 0
            cursor = args.get("cursor")
            if cursor:
                after = _decode_cursor(str(cursor))
                ids = [c.id for c in visible]
                if after not in ids:
                    raise SlackError("invalid_cursor")
                start = ids.index(after)
            page = visible[start : start + limit]
            rest = visible[start + limit :]
            return {
                "channels": [c.to_api(viewer, num_members=True) for c in page],
                "response_metadata": {"next_cursor": _encode_cursor(rest[0].id) if rest else ""},
            }

    def conversation_info(self, viewer: str, args: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            channel = self._channel_by_id(args.get("channel"), viewer)
            return {
                "channel": channel.to_api(
                    viewer, num_members=_flag(args.get("include_num_members"))
                )
            }

    def join(self, viewer: str, args: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            channel = self._channel_by_id(args.get("channel"), viewer)
            if channel.is_im:
                raise SlackError("method_not_supported_for_channel_type")
            if channel.is_archived:
                raise SlackError("is_archived")
            answer: dict[str, Any] = {}
            if viewer in channel.members:
                answer = {
                    "warning": "already_in_channel",
                    "response_metadata": {"warnings": ["already_in_channel"]},
                }
            channel.members.add(viewer)
            return {"channel": channel.to_api(viewer), **answer}

    # ---- users.* -----------------------------------------------------------------------------
    def lookup_by_email(self, args: dict[str, Any]) -> dict[str, Any]:
        email = str(args.get("email") or "").strip().lower()
        if not email:
            raise invalid_arguments("email")
        with self._lock:
            for user in self.users.values():
                if user.email and user.email.lower() == email and not user.deleted:
                    return {"user": user.to_api()}
        raise SlackError("users_not_found")

    def user_info(self, args: dict[str, Any]) -> dict[str, Any]:
        user_id = args.get("user")
        if not user_id:
            raise invalid_arguments("user")
        with self._lock:
            user = self.users.get(str(user_id))
            if user is None:
                raise SlackError("user_not_found")
            return {"user": user.to_api()}

    # ---- observability -----------------------------------------------------------------------
    def messages(self, channel: str | None = None) -> list[dict[str, Any]]:
        """Every message posted, updated or sent ephemerally, oldest first (``GET
        /_sandbox/messages``); ``channel`` filters by channel id, name (with or without "#"), or
        for direct messages the other user's id."""
        with self._lock:
            rows = []
            for m in self._messages:
                ch = self.channels[m.channel]
                if channel is not None and channel not in {
                    ch.id,
                    ch.name,
                    f"#{ch.name}",
                    ch.im_user,
                }:
                    continue
                rows.append(
                    {
                        "channel": ch.id,
                        "channel_name": ch.name,
                        "ts": m.ts,
                        "thread_ts": m.thread_ts,
                        "user": m.user,
                        "text": m.text,
                        "blocks": m.blocks,
                        "attachments": m.attachments,
                        "metadata": m.metadata,
                        "ephemeral_user": m.ephemeral_user,
                        "edited": m.edited,
                        "reply_count": m.reply_count,
                        "im_user": ch.im_user,
                    }
                )
            return rows

    def clear_messages(self) -> None:
        with self._lock:
            self._messages.clear()


# ---- argument helpers ---------------------------------------------------------------------
def _content(args: dict[str, Any]) -> dict[str, Any]:
    """text / blocks / attachments / metadata of a chat.* call, validated as Slack does."""
    text = args.get("text")
    if text is not None and not isinstance(text, str):
        text = str(text)
    if text is not None and len(text) > MAX_TEXT:
        raise SlackError("msg_too_long")
    blocks = _json_list(args.get("blocks"), "invalid_blocks_format")
    if blocks:
        errors = validate_blocks(blocks)
        if errors:
            raise SlackError("invalid_blocks", messages=errors)
    attachments = _json_list(args.get("attachments"), "invalid_attachments")
    if attachments and len(attachments) > MAX_ATTACHMENTS:
        raise SlackError("too_many_attachments")
    metadata = args.get("metadata")
    if isinstance(metadata, str):
        try:
            metadata = json.loads(metadata)
        except ValueError:
            raise SlackError("invalid_metadata_format") from None
    return {
        "text": text,
        "blocks": blocks or None,
        "attachments": attachments or None,
        "metadata": metadata if isinstance(metadata, dict) else None,
    }


def _require_content(content: dict[str, Any]) -> None:
    if not (content["text"] or "").strip() and not content["blocks"] and not content["attachments"]:
        raise SlackError("no_text")


def _json_list(value: Any, error: str) -> list[Any] | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise SlackError(error) from None
    if not isinstance(value, list):
        raise SlackError(error)
    return value


def _flag(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in {"1", "true", "yes"}


def _int_arg(args: dict[str, Any], name: str, default: int) -> int:
    raw = args.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except (TypeError, ValueError):
        raise SlackError("invalid_limit" if name == "limit" else "invalid_arguments") from None


def _kind(channel: Channel) -> str:
    if channel.is_im:
        return "im"
    return "private_channel" if channel.is_private else "public_channel"


def _encode_cursor(channel_id: str) -> str:
    return base64.b64encode(f"team:{channel_id}".encode()).decode()


def _decode_cursor(cursor: str) -> str:
    try:
        raw = base64.b64decode(cursor.encode(), validate=True).decode()
    except (ValueError, UnicodeDecodeError):
        raise SlackError("invalid_cursor") from None
    return raw.removeprefix("team:")
