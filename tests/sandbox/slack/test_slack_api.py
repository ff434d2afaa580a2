"""The Slack emulator driven by the real slack_sdk.WebClient."""

from __future__ import annotations

import time

import httpx
import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler

from sandbox.demo_company import USERS
from tests.sandbox.slack.conftest import SlackSandbox

REVOPS = "C07REVOPS1"
SALES_WINS = "C07SALESWN"
AVA = next(u for u in USERS if u.key == "ava")


def _error(exc: pytest.ExceptionInfo[SlackApiError]) -> str:
    return str(exc.value.response["error"])


# ---- auth ------------------------------------------------------------------------------------
def test_auth_test_identifies_the_bot(slack: SlackSandbox) -> None:
    answer = slack.client().auth_test()
    assert answer.status_code == 200
    assert answer["ok"] is True
    assert answer["user_id"] == slack.info["bot_user_id"]
    assert answer["team_id"] == slack.info["team_id"]
    assert answer["url"] == "https://acme-analytics.slack.com/"
    assert answer["bot_id"].startswith("B")


def test_missing_and_wrong_tokens(slack: SlackSandbox) -> None:
    with pytest.raises(SlackApiError) as exc:
        slack.client(token="").auth_test()
    assert _error(exc) == "not_authed"
    assert exc.value.response.status_code == 200
    with pytest.raises(SlackApiError) as exc:
        slack.client(token="xoxb-not-a-real-token").chat_postMessage(channel=REVOPS, text="x")
    assert _error(exc) == "invalid_auth"
    assert slack.messages() == []


def test_token_as_form_argument_but_not_in_a_json_body(slack: SlackSandbox) -> None:
    # slack_sdk always sends the header, so these two use raw HTTP.
    url = slack.info["base_url"] + "chat.postMessage"
    form = {"token": slack.info["token"], "channel": "#revops-alerts", "text": "form post"}
    assert httpx.post(url, data=form).json()["ok"] is True
    body = httpx.post(url, json=form).json()
    assert body == {"ok": False, "error": "not_authed"}
    assert [m["text"] for m in slack.messages()] == ["form post"]


# ---- chat.postMessage --------------------------------------------------------------------------
def test_post_by_id_and_by_name_with_increasing_ts(slack: SlackSandbox) -> None:
    client = slack.client()
    answers = [
        client.chat_postMessage(channel=ref, text=f"via {ref}")
        for ref in (REVOPS, "#revops-alerts", "revops-alerts")
    ]
    assert {a["channel"] for a in answers} == {REVOPS}
    stamps = [a["ts"] for a in answers]
    assert stamps == sorted(stamps) and len(set(stamps)) == 3
    assert all(len(ts.split(".")[1]) == 6 for ts in stamps)
    message = answers[0]["message"]
    assert message["type"] == "message"
    assert message["text"] == f"via {REVOPS}"
    assert message["user"] == slack.info["bot_user_id"]
    assert message["ts"] == answers[0]["ts"]
    logged = slack.messages("#revops-alerts")
    assert [m["ts"] for m in logged] == stamps
    assert logged[0]["channel"] == REVOPS and logged[0]["channel_name"] == "revops-alerts"
    assert slack.messages("finance-ops") == []


def test_post_blocks_with_fallback_text(slack: SlackSandbox) -> None:
    blocks = [
        {"type": "header", "text": {"type": "plain_text", "text": "Invoice 1042 created"}},
        {"type": "section", "text": {"type": "mrkdwn", "text": "*Globex* — $24,000.00"}},
        {"type": "divider"},
        {
            "type": "actions",
            "elements": [
                {
                    "type": "button",
                    "text": {"type": "plain_text", "text": "Approve"},
                    "style": "primary",
                    "action_id": "approve",
                    "value": "006xx",
                }
            ],
        },
    ]
    answer = slack.client().chat_postMessage(channel=REVOPS, text="Invoice 1042", blocks=blocks)
    assert answer["message"]["blocks"] == blocks
    (logged,) = slack.messages(REVOPS)
    assert logged["blocks"] == blocks and logged["text"] == "Invoice 1042"


def test_thread_replies(slack: SlackSandbox) -> None:
    client = slack.client()
    parent = client.chat_postMessage(channel=REVOPS, text="Daily sync: 2 failures")
    reply = client.chat_postMessage(channel=REVOPS, text="failure 1", thread_ts=parent["ts"])
    assert reply["message"]["thread_ts"] == parent["ts"]
    # A reply to a reply threads under the parent, as Slack does.
    second = client.chat_postMessage(channel=REVOPS, text="failure 2", thread_ts=reply["ts"])
    assert second["message"]["thread_ts"] == parent["ts"]
    logged = {m["text"]: m for m in slack.messages(REVOPS)}
    assert logged["Daily sync: 2 failures"]["reply_count"] == 2
    assert logged["failure 2"]["thread_ts"] == parent["ts"]
    link = client.chat_getPermalink(channel=REVOPS, message_ts=reply["ts"])["permalink"]
    assert link == (
        f"https://acme-analytics.slack.com/archives/{REVOPS}/p{reply['ts'].replace('.', '')}"
        f"?thread_ts={parent['ts']}&cid={REVOPS}"
    )


def test_post_to_a_user_id_opens_a_direct_message(slack: SlackSandbox) -> None:
    answer = slack.client().chat_postMessage(channel=AVA.slack_user_id, text="Your deal closed")
    assert answer["channel"].startswith("D")
    (logged,) = slack.messages(AVA.slack_user_id)
    assert logged["im_user"] == AVA.slack_user_id and logged["channel_name"] is None


def test_post_errors(slack: SlackSandbox) -> None:
    client = slack.client()
    with pytest.raises(SlackApiError) as exc:
        client.chat_postMessage(channel="#no-such-channel", text="x")
    assert _error(exc) == "channel_not_found"
    with pytest.raises(SlackApiError) as exc:
        client.chat_postMessage(channel="#sales-wins", text="x")
    assert _error(exc) == "not_in_channel"
    with pytest.raises(SlackApiError) as exc:
        client.chat_postMessage(channel=REVOPS, text="x" * 40_001)
    assert _error(exc) == "msg_too_long"
    with (
        pytest.warns(UserWarning, match="top-level `text` argument is missing"),
        pytest.raises(SlackApiError) as exc,
    ):
        client.chat_postMessage(channel=REVOPS, text="")
    assert _error(exc) == "no_text"
    with pytest.raises(SlackApiError) as exc:
        client.chat_postMessage(channel=REVOPS, text="x", blocks="[{not json")
    assert _error(exc) == "invalid_blocks_format"
    assert slack.messages() == []


def test_not_in_channel_until_joined(slack: SlackSandbox) -> None:
    client = slack.client()
    info = client.conversations_info(channel=SALES_WINS)["channel"]
    assert info["name"] == "sales-wins" and info["is_member"] is False
    joined = client.conversations_join(channel=SALES_WINS)
    assert joined["channel"]["is_member"] is True
    assert "warning" not in joined
    again = client.conversations_join(channel=SALES_WINS)
    assert again["warning"] == "already_in_channel"
    assert client.chat_postMessage(channel="#sales-wins", text="Globex closed!")["ok"]


@pytest.mark.parametrize(
    ("blocks", "expected"),
    [
        (
            [{"type": "divider"}] * 51,
            ["no more than 50 items allowed [json-pointer:/blocks]"],
        ),
        (
            [{"type": "divider"}, {"type": "sections", "text": {"type": "mrkdwn", "text": "x"}}],
            ["unsupported type: sections [json-pointer:/blocks/1/type]"],
        ),
        (
            [{"type": "section", "text": {"type": "mrkdwn", "text": "a" * 3001}}],
            [
                "failed to match all allowed schemas [json-pointer:/blocks/0/text]",
                "must be less than 3001 characters [json-pointer:/blocks/0/text/text]",
            ],
        ),
        (
            [{"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}],
            [
                "failed to match all allowed schemas [json-pointer:/blocks/0/text]",
                "must be less than 151 characters [json-pointer:/blocks/0/text/text]",
            ],
        ),
        (
            [{"type": "section"}],
            ["must define either `text` or `fields` [json-pointer:/blocks/0]"],
        ),
        (
            [
                {
                    "type": "section",
                    "fields": [{"type": "mrkdwn", "text": str(n)} for n in range(11)],
                }
            ],
            ["no more than 10 items allowed [json-pointer:/blocks/0/fields]"],
        ),
        (
            [{"type": "context", "elements": []}],
            ["must provide at least 1 items [json-pointer:/blocks/0/elements]"],
        ),
        (
            [
                {"type": "divider", "block_id": "dup"},
                {"type": "divider", "block_id": "dup"},
            ],
            ["duplicate block_id: dup [json-pointer:/blocks/1/block_id]"],
        ),
    ],
    ids=[
        "too-many",
        "unknown-type",
        "section-3001",
        "header-151",
        "empty-section",
        "fields-11",
        "empty-context",
        "duplicate-block-id",
    ],
)
def test_invalid_blocks(slack: SlackSandbox, blocks: list[dict], expected: list[str]) -> None:
    with pytest.raises(SlackApiError) as exc:
        slack.client().chat_postMessage(channel=REVOPS, text="fallback", blocks=blocks)
    body = exc.value.response
    assert body["error"] == "invalid_blocks"
    assert body["errors"] == expected
    assert body["response_metadata"]["messages"] == [f"[ERROR] {e}" for e in expected]


def test_section_at_the_limit_is_accepted(slack: SlackSandbox) -> None:
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "a" * 3000}}] * 50
    assert slack.client().chat_postMessage(channel=REVOPS, text="long", blocks=blocks)["ok"]


# ---- chat.update, chat.postEphemeral, chat.getPermalink ----------------------------------------
def test_update_replaces_text_and_keeps_or_replaces_blocks(slack: SlackSandbox) -> None:
    client = slack.client()
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "Awaiting approval"}}]
    posted = client.chat_postMessage(channel=REVOPS, text="Awaiting approval", blocks=blocks)
    updated = client.chat_update(channel=REVOPS, ts=posted["ts"], text="Approved by Priya")
    assert updated["ts"] == posted["ts"] and updated["text"] == "Approved by Priya"
    assert updated["message"]["blocks"] == blocks  # blocks not given: kept, as Slack does
    assert updated["message"]["edited"]["user"] == slack.info["bot_user_id"]
    new_blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": ":white_check_mark:"}}]
    client.chat_update(channel=REVOPS, ts=posted["ts"], text="Approved", blocks=new_blocks)
    (logged,) = slack.messages(REVOPS)
    assert logged["text"] == "Approved" and logged["blocks"] == new_blocks
    assert logged["edited"] is not None


def test_update_errors(slack: SlackSandbox) -> None:
    client = slack.client()
    posted = client.chat_postMessage(channel=REVOPS, text="x")
    with pytest.raises(SlackApiError) as exc:
        client.chat_update(channel=REVOPS, ts="1.000001", text="y")
    assert _error(exc) == "message_not_found"
    with pytest.raises(SlackApiError) as exc:  # chat.update wants the channel id
        client.chat_update(channel="#revops-alerts", ts=posted["ts"], text="y")
    assert _error(exc) == "channel_not_found"
    with pytest.raises(SlackApiError) as exc:
        client.chat_update(channel=REVOPS, ts=posted["ts"], text="y" * 40_001)
    assert _error(exc) == "msg_too_long"


def test_ephemeral_messages(slack: SlackSandbox) -> None:
    client = slack.client()
    answer = client.chat_postEphemeral(
        channel="#finance-approvals", user=AVA.slack_user_id, text="Only you can see this"
    )
    assert set(answer.data) == {"ok", "message_ts"}
    (logged,) = slack.messages("finance-approvals")
    assert logged["ephemeral_user"] == AVA.slack_user_id
    with pytest.raises(SlackApiError) as exc:  # ephemeral messages have no permalink
        client.chat_getPermalink(channel="C07FINAPPR", message_ts=answer["message_ts"])
    assert _error(exc) == "message_not_found"
    with pytest.raises(SlackApiError) as exc:
        client.chat_postEphemeral(channel="#finance-approvals", user="U0NOBODY00", text="x")
    assert _error(exc) == "user_not_in_channel"


def test_permalink(slack: SlackSandbox) -> None:
    client = slack.client()
    posted = client.chat_postMessage(channel=REVOPS, text="x")
    answer = client.chat_getPermalink(channel=REVOPS, message_ts=posted["ts"])
    assert answer["channel"] == REVOPS
    assert answer["permalink"].endswith(f"/archives/{REVOPS}/p{posted['ts'].replace('.', '')}")
    with pytest.raises(SlackApiError) as exc:
        client.chat_getPermalink(channel="C0NOTHERE", message_ts=posted["ts"])
    assert _error(exc) == "channel_not_found"


# ---- conversations.* ---------------------------------------------------------------------------
def test_conversations_list_pages_with_cursors(slack: SlackSandbox) -> None:
    client = slack.client()
    first = client.conversations_list(limit=2)
    assert len(first["channels"]) == 2
    assert first["response_metadata"]["next_cursor"]
    names = [c["name"] for page in client.conversations_list(limit=2) for c in page["channels"]]
    assert sorted(names) == [
        "finance-approvals",
        "finance-ops",
        "general",
        "revops-alerts",
        "sales-wins",
    ]
    channels = {c["name"]: c for c in client.conversations_list(limit=1000)["channels"]}
    assert channels["sales-wins"]["is_member"] is False
    assert channels["revops-alerts"]["is_member"] is True
    assert channels["general"]["is_general"] is True
    assert channels["revops-alerts"]["num_members"] == len(USERS) + 1
    with pytest.raises(SlackApiError) as exc:
        client.conversations_list(cursor="bm90LWEtY3Vyc29y")
    assert _error(exc) == "invalid_cursor"


def test_conversations_info(slack: SlackSandbox) -> None:
    client = slack.client()
    channel = client.conversations_info(channel=REVOPS, include_num_members=True)["channel"]
    assert channel["id"] == REVOPS and channel["name"] == "revops-alerts"
    assert channel["is_channel"] is True and channel["is_private"] is False
    assert channel["num_members"] == len(USERS) + 1
    with pytest.raises(SlackApiError) as exc:  # conversations.info takes ids, not names
        client.conversations_info(channel="#revops-alerts")
    assert _error(exc) == "channel_not_found"


# ---- users.* -----------------------------------------------------------------------------------
def test_users_lookup_by_email_and_info(slack: SlackSandbox) -> None:
    client = slack.client()
    user = client.users_lookupByEmail(email=AVA.email.upper())["user"]
    assert user["id"] == AVA.slack_user_id
    assert user["profile"]["email"] == AVA.email
    assert user["real_name"] == "Ava Chen" and user["is_bot"] is False
    assert client.users_info(user=AVA.slack_user_id)["user"]["name"] == "ava.chen"
    bot = client.users_info(user=slack.info["bot_user_id"])["user"]
    assert bot["is_bot"] is True
    with pytest.raises(SlackApiError) as exc:
        client.users_lookupByEmail(email="nobody@acme-analytics.example")
    assert _error(exc) == "users_not_found"
    with pytest.raises(SlackApiError) as exc:
        client.users_info(user="U0NOBODY00")
    assert _error(exc) == "user_not_found"


# ---- rate limits and faults --------------------------------------------------------------------
def test_configured_rate_limit_answers_429_and_the_sdk_retries(slack: SlackSandbox) -> None:
    limits = slack.control.post(
        "/_sandbox/limits", json={"method": "chat.postMessage", "limit": 1, "window_seconds": 1}
    ).json()["limits"]
    assert limits == {"chat.postMessage": {"limit": 1, "window_seconds": 1.0}}
    client = slack.client()
    client.chat_postMessage(channel=REVOPS, text="first")
    with pytest.raises(SlackApiError) as exc:
        client.chat_postMessage(channel=REVOPS, text="second")
    assert exc.value.response.status_code == 429
    assert _error(exc) == "ratelimited"
    assert exc.value.response.headers["Retry-After"] == "1"
    client.auth_test()  # other methods are not limited
    patient = slack.client(retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=2)])
    started = time.monotonic()
    assert patient.chat_postMessage(channel=REVOPS, text="third")["ok"]
    assert time.monotonic() - started >= 0.5
    assert [m["text"] for m in slack.messages()] == ["first", "third"]
    slack.control.delete("/_sandbox/limits")
    assert slack.control.get("/_sandbox/limits").json()["limits"] == {}


def test_injected_faults(slack: SlackSandbox) -> None:
    slack.control.post(
        "/_sandbox/faults",
        json={"path": "chat.postMessage", "status": 429, "headers": {"Retry-After": "0"}},
    )
    patient = slack.client(retry_handlers=[RateLimitErrorRetryHandler()])
    assert patient.chat_postMessage(channel=REVOPS, text="after a 429")["ok"]
    slack.control.post("/_sandbox/faults", json={"path": "auth.test", "status": 503})
    with pytest.raises(SlackApiError) as exc:
        slack.client().auth_test()
    assert exc.value.response.status_code == 503
    assert _error(exc) == "internal_error"
    slack.control.post("/_sandbox/faults", json={"path": "auth.test", "expired_token": True})
    with pytest.raises(SlackApiError) as exc:
        slack.client().auth_test()
    assert _error(exc) == "invalid_auth"
    assert slack.client().auth_test()["ok"]


def test_unknown_method(slack: SlackSandbox) -> None:
    with pytest.raises(SlackApiError) as exc:
        slack.client().api_call("chat.noSuchThing")
    assert exc.value.response.status_code == 404
    assert exc.value.response.data == {
        "ok": False,
        "error": "unknown_method",
        "req_method": "chat.noSuchThing",
    }


# ---- control endpoints -------------------------------------------------------------------------
def test_calls_are_counted_per_method(slack: SlackSandbox) -> None:
    client = slack.client()
    client.auth_test()
    client.chat_postMessage(channel=REVOPS, text="a")
    client.chat_postMessage(channel=REVOPS, text="b")
    calls = slack.control.get("/_sandbox/calls").json()
    by_endpoint = {row["endpoint"]: row["count"] for row in calls["calls"]}
    assert by_endpoint == {"auth.test": 1, "chat.postMessage": 2}


def test_clearing_messages_and_the_empty_seed(slack: SlackSandbox) -> None:
    client = slack.client()
    client.chat_postMessage(channel=REVOPS, text="a")
    assert slack.control.delete("/_sandbox/messages").json()["messages"] == []
    assert slack.messages() == []
    slack.control.post("/_sandbox/seed", json={"profile": "empty"}).raise_for_status()
    names = [c["name"] for c in client.conversations_list()["channels"]]
    assert names == ["general"]
    assert client.chat_postMessage(channel="#general", text="hello")["ok"]
    with pytest.raises(SlackApiError) as exc:
        client.chat_postMessage(channel="#revops-alerts", text="x")
    assert _error(exc) == "channel_not_found"
    with pytest.raises(SlackApiError) as exc:
        client.users_lookupByEmail(email=AVA.email)
    assert _error(exc) == "users_not_found"


def test_info_section(slack: SlackSandbox) -> None:
    info = slack.info
    assert info["base_url"] == slack.base_url + "/api/"
    assert info["token"].startswith("xoxb-")
    assert len(info["signing_secret"]) == 32
