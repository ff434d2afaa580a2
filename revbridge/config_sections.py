"""Config sections for reconciliation and customer sync: optional, with defaults. Kept apart from
their domain modules so `revbridge.config` can import them without a cycle."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

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
