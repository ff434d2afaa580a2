"""The Slack side of an approval: the request's Approve / Reject buttons, what a click carries,
and the message once decided.

A button's ``value`` carries the approval flow run id and the deal id (compact JSON); the
receiver (receiver/slack.py) turns a verified click from an approver into the same input the
Prefect UI form gives (`flows.approval.ApprovalInput`).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any, Literal

from revbridge.report import escape_slack

APPROVE_ACTION = "revbridge_approval_approve"
REJECT_ACTION = "revbridge_approval_reject"
DECISIONS: dict[str, Literal["Approve", "Reject"]] = {
    APPROVE_ACTION: "Approve",
    REJECT_ACTION: "Reject",
}
REQUEST_BLOCK = "approval-request"
BUTTONS_BLOCK = "approval-buttons"
OUTCOME_BLOCK = "approval-outcome"
VIA_SLACK = "via Slack"  # the comment of a decision taken with a button


@dataclass(frozen=True)
class ButtonValue:
    """What an Approve / Reject button carries."""

    flow_run_id: uuid.UUID
    opportunity_id: str

    def encode(self) -> str:
        return json.dumps(
            {"run": str(self.flow_run_id), "deal": self.opportunity_id}, separators=(",", ":")
        )

    @classmethod
    def decode(cls, value: Any) -> ButtonValue:
        """The value of a clicked button; `ValueError` when it is not one of ours."""
        try:
            data = json.loads(value)
            return cls(uuid.UUID(str(data["run"])), _nonempty(data["deal"]))
        except (TypeError, KeyError, ValueError, AttributeError) as exc:
            raise ValueError(f"not an approval button value: {value!r}") from exc


def _nonempty(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError("deal id missing")
    return value


def request_blocks(text: str, value: ButtonValue) -> list[dict[str, Any]]:
    """The approval request: its text, then Approve / Reject."""
    encoded = value.encode()
    return [
        {"type": "section", "block_id": REQUEST_BLOCK, "text": {"type": "mrkdwn", "text": text}},
        {
            "type": "actions",
            "block_id": BUTTONS_BLOCK,
            "elements": [
                _button("Approve", APPROVE_ACTION, encoded, "primary"),
                _button("Reject", REJECT_ACTION, encoded, "danger"),
            ],
        },
    ]


def _button(label: str, action_id: str, value: str, style: str) -> dict[str, Any]:
    return {
        "type": "button",
        "action_id": action_id,
        "text": {"type": "plain_text", "text": label, "emoji": True},
        "value": value,
        "style": style,
    }


def decided_blocks(blocks: list[dict[str, Any]] | None, text: str, line: str) -> list[Any]:
    """The request's blocks without its buttons (and any earlier outcome), ending with ``line``;
    from ``text`` alone when the message had no blocks."""
    kept = [
        b
        for b in (blocks or [])
        if isinstance(b, dict) and b.get("block_id") not in (BUTTONS_BLOCK, OUTCOME_BLOCK)
    ]
    if not kept:
        kept = [
            {"type": "section", "block_id": REQUEST_BLOCK, "text": {"type": "mrkdwn", "text": text}}
        ]
    outcome = {
        "type": "context",
        "block_id": OUTCOME_BLOCK,
        "elements": [{"type": "mrkdwn", "text": line}],
    }
    return [*kept, outcome]


def decision_line(decision: str, approver: str, comment: str = "") -> str:
    """``:white_check_mark: Approved by x`` / ``:no_entry_sign: Rejected by x`` (+ comment)."""
    mark, verb = (
        (":white_check_mark:", "Approved")
        if decision == "Approve"
        else (":no_entry_sign:", "Rejected")
    )
    line = f"{mark} {verb} by {escape_slack(approver)}"
    return line + (f" ({escape_slack(comment)})" if comment else "")
