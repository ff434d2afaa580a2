"""Slack tasks through slack-sdk (the block's client retries 429s by itself)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from prefect import get_run_logger, task

from tasks.faults import io_task_options

if TYPE_CHECKING:
    from blocks.slack import SlackConnection


@task(**io_task_options(2, 10))
def post_message(
    slack: SlackConnection,
    text: str,
    *,
    channel: str | None = None,
    blocks: list[dict[str, Any]] | None = None,
) -> dict[str, str]:
    """Post to a channel (the block's default when none is given); returns channel id and ts."""
    target = channel or slack.default_channel
    if not target:
        raise ValueError("no Slack channel given and the Slack block has no default_channel")
    response = slack.get_client().chat_postMessage(channel=target, text=text, blocks=blocks)
    get_run_logger().info("Slack: posted to %s (ts %s)", target, response["ts"])
    return {"channel": str(response["channel"]), "ts": str(response["ts"])}
