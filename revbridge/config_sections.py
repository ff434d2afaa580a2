"""Config sections for reconciliation and customer sync: optional, with defaults. Kept apart from
their domain modules so `revbridge.config` can import them without a cycle."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

Owner = Literal["salesforce", "quickbooks"]
FieldName = Literal["name", "billing_address", "contact", "email", "payment_terms", "tax"]
DEFAULT_OWNERS: dict[FieldName, Owner] = {
    "name": "salesforce",
    "billing_address": "salesforce",
    "contact": "salesforce",
    "email": "salesforce",
    "payment_terms": "quickbooks",
    "tax": "quickbooks",
}


class ReconciliationConfig(BaseModel):
    """The ``reconciliation`` section."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    report_dir: str = Field(
        default="reports", description="where each month's CSV and chart are written"
    )
    slack_channel: str | None = Field(
        default=None, description="channel for the summary (default: slack.alerts_channel)"
    )


class CustomerSyncConfig(BaseModel):
    """The ``customer_sync`` section: which system owns each customer field."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    fields: dict[FieldName, Owner] = Field(
        default_factory=lambda: dict(DEFAULT_OWNERS),
        description="field → the system that owns it; a field left out is not synced",
    )
    report_dir: str = Field(default="reports", description="where the cleanse audit CSV goes")


TaskPriority = Literal["High", "Normal", "Low"]
TASK_SUBJECT_FIELDS = {"invoice": "#1045", "days": 91, "customer": "Globex", "name": "Globex"}


class RemindersConfig(BaseModel):
    """The ``reminders`` section: renewal payment reminders, Salesforce Tasks for invoices long
    past due, and per-realm Slack digests (`revbridge.reminders`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    days_after_due: int | None = Field(
        default=10,
        ge=1,
        description="an unpaid renewal invoice is e-mailed again (once) this many days after its "
        "due date (the renewal date); null: no reminders",
    )
    escalate_days: int | None = Field(
        default=90,
        ge=1,
        description="an invoice more than this many days past due (90: the 90+ aging bucket) gets "
        "one Salesforce Task for its owner; null: no Tasks",
    )
    task_subject: str = Field(
        default="Collect overdue invoice {invoice} ({days} days past due)",
        min_length=1,
        max_length=180,
        description="the Task's Subject; {invoice}, {days}, {customer} and {name} (the deal or "
        "contract) are filled in, and a marker that finds the Task again is appended",
    )
    task_priority: TaskPriority = "High"
    task_due_days: int = Field(
        default=3, ge=0, description="the Task's due date (ActivityDate): days after it is created"
    )
    digest_channels: dict[str, str] = Field(
        default_factory=dict,
        description="realm name → Slack channel: that realm gets ONE daily digest there instead of "
        "a message per invoice to each owner",
    )

    @field_validator("task_subject")
    @classmethod
    def _subject_fields(cls, value: str) -> str:
        try:
            value.format(**TASK_SUBJECT_FIELDS)
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(
                f"unknown placeholder or bad braces ({exc}); use {{invoice}}, {{days}}, "
                "{customer} or {name}"
            ) from None
        return value

    @field_validator("digest_channels")
    @classmethod
    def _channels(cls, value: dict[str, str]) -> dict[str, str]:
        blank = [realm for realm, channel in value.items() if not channel.strip()]
        if blank:
            raise ValueError(f"blank channel for realm(s): {', '.join(blank)}")
        return value


class DeliveryConfig(BaseModel):
    """The ``delivery`` section: the signed contract attached to each new invoice, the invoice
    e-mailed through QuickBooks, its link written to the Opportunity. Off by default: each
    costs API calls per invoice (a Salesforce file read and a QuickBooks upload; one send)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    attach_contract: bool = Field(
        default=False,
        description="upload the deal's newest signed contract (Salesforce Files) to the invoice",
    )
    missing_contract: Literal["warn", "hold"] = Field(
        default="warn",
        description="a deal without a signed contract QuickBooks would take: 'warn' invoices it "
        "and says so; 'hold' leaves it uninvoiced as Needs Review until the contract is there",
    )
    contract_title_pattern: str = Field(
        default=r"(?i)\bsigned\b",
        description="a file is a signed contract when this regular expression is found in its "
        "Title or its file name (PathOnClient)",
    )
    send_invoice: bool = Field(
        default=False, description="e-mail each new invoice to the account's billing e-mail"
    )
    retry_limit: int = Field(
        default=50,
        ge=0,
        description="at most this many invoiced-but-undelivered deals are retried per run",
    )

    @field_validator("contract_title_pattern")
    @classmethod
    def _regex(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a regular expression: {exc}") from None
        return value


class TokenHealthConfig(BaseModel):
    """The ``token_health`` section: the daily check of every connection's credentials."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    warn_days: int = Field(
        default=14,
        ge=1,
        le=365,
        description="alert when a QuickBooks refresh token expires within this many days",
    )
    slack_channel: str | None = Field(
        default=None, description="channel for token alerts (default: slack.alerts_channel)"
    )
