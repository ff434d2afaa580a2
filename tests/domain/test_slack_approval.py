"""The approval request's buttons, their value and the decided message."""

from __future__ import annotations

import uuid

import pytest

from revbridge.slack_approval import (
    APPROVE_ACTION,
    BUTTONS_BLOCK,
    OUTCOME_BLOCK,
    REJECT_ACTION,
    ButtonValue,
    decided_blocks,
    decision_line,
    request_blocks,
)
from sandbox.slack.blockkit import validate_blocks

RUN = uuid.UUID("0b9f7a52-5c1e-4d7a-9d53-2f8a1c3e4b5d")


def test_the_request_has_approve_and_reject_carrying_run_and_deal() -> None:
    blocks = request_blocks("*Approval needed*", ButtonValue(RUN, "0065g000000000vAAA"))
    assert validate_blocks(blocks) == []  # Slack accepts them
    (buttons,) = [b for b in blocks if b["block_id"] == BUTTONS_BLOCK]
    approve, reject = buttons["elements"]
    assert (approve["action_id"], approve["style"]) == (APPROVE_ACTION, "primary")
    assert (reject["action_id"], reject["style"]) == (REJECT_ACTION, "danger")
    assert ButtonValue.decode(approve["value"]) == ButtonValue(RUN, "0065g000000000vAAA")


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "x",
        "[]",
        '{"run": "nope", "deal": "006"}',
        f'{{"run": "{RUN}"}}',
        f'{{"run": "{RUN}", "deal": ""}}',
    ],
)
def test_foreign_values_are_refused(value: object) -> None:
    with pytest.raises(ValueError, match="not an approval button value"):
        ButtonValue.decode(value)


def test_decided_message_drops_the_buttons_and_any_earlier_outcome() -> None:
    blocks = request_blocks("ask", ButtonValue(RUN, "0065g000000000vAAA"))
    once = decided_blocks(blocks, "ask", decision_line("Approve", "a@x.example", "via Slack"))
    twice = decided_blocks(once, "ask", decision_line("Approve", "a@x.example"))
    assert [b["block_id"] for b in twice] == ["approval-request", OUTCOME_BLOCK]
    assert twice[-1]["elements"][0]["text"] == ":white_check_mark: Approved by a@x.example"
    assert validate_blocks(twice) == []
    assert decided_blocks(None, "ask", "x")[0]["text"]["text"] == "ask"


def test_decision_line_escapes_mrkdwn() -> None:
    line = decision_line("Reject", "<b@x.example>", "too & much")
    assert line == ":no_entry_sign: Rejected by &lt;b@x.example&gt; (too &amp; much)"
