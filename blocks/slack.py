"""``SlackConnection``: the Slack bot token and channels revbridge posts to.

prefect-slack's ``SlackCredentials`` (0.4) has no ``base_url`` and hands out an async client, so
revbridge does not depend on it: this block builds a synchronous ``slack_sdk.WebClient`` with a
configurable API base URL (the sandbox's Slack emulator, or the real ``https://slack.com/api/``),
retrying 429 answers after their ``Retry-After`` and dropped connections once.
"""

from __future__ import annotations

from prefect.blocks.core import Block
from pydantic import Field, HttpUrl, PrivateAttr, SecretStr, field_validator
from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
)

SLACK_API = "https://slack.com/api/"


class SlackConnection(Block):
    """Slack bot token, API base URL and the channels revbridge posts to.

    Examples:
        Load the block and post to its default channel:
        ```python
        from blocks import SlackConnection

        slack_connection = SlackConnection.load("BLOCK_NAME")
        client = slack_connection.get_client()
        client.chat_postMessage(channel=slack_connection.default_channel, text="Hello")
        ```
    """

    _block_type_name = "Slack Connection"
    _logo_url = HttpUrl(
        "https://cdn.sanity.io/images/3ugk85nk/production/"
        "c1965ecbf8704ee1ea20d77786de9a41ce1087d1-500x500.png"
    )
    _documentation_url = HttpUrl("https://tools.slack.dev/python-slack-sdk/web/")

    token: SecretStr = Field(
        description="Bot user OAuth token (xoxb-...) of the Slack app that posts the messages.",
    )
    base_url: str = Field(
        default=SLACK_API,
        description="Base URL of the Slack Web API; the sandbox's Slack emulator in tests.",
    )
    default_channel: str = Field(
        default="#revops-alerts",
        description="Channel (name or id) for summaries and failure alerts.",
    )
    approvals_channel: str = Field(
        default="#finance-approvals",
        description="Channel (name or id) where invoices awaiting approval are announced.",
    )
    signing_secret: SecretStr | None = Field(
        default=None,
        description=(
            "Signing secret of the Slack app, to verify interactivity requests; optional."
        ),
    )
    max_rate_limit_retries: int = Field(
        default=3,
        ge=0,
        le=10,
        description="How many times a call answered 429 is retried after its Retry-After.",
    )

    _client: WebClient | None = PrivateAttr(default=None)

    @field_validator("base_url")
    @classmethod
    def _trailing_slash(cls, value: str) -> str:
        return value if value.endswith("/") else value + "/"

    def get_client(self) -> WebClient:
        """A ``slack_sdk.WebClient`` for this bot (built once per block instance)."""
        if self._client is None:
            self._client = WebClient(
                token=self.token.get_secret_value(),
                base_url=self.base_url,
                retry_handlers=[
                    ConnectionErrorRetryHandler(),
                    RateLimitErrorRetryHandler(max_retry_count=self.max_rate_limit_retries),
                ],
            )
        return self._client
