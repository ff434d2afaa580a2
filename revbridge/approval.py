"""Big deals wait for a human: the threshold rule and the decision record.

The Prefect RunInput (the form an approver fills in) lives in the flows; this is the plain data.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from pydantic import BaseModel, ConfigDict

from revbridge.config import RevbridgeConfig
from revbridge.ids import to_18
from revbridge.invoices import InvoiceDraft
from revbridge.models import Opportunity


def needs_approval(deal: Opportunity | InvoiceDraft, config: RevbridgeConfig) -> bool:
    """Whether the deal's amount exceeds the approval threshold for its currency.

    The threshold is compared in the deal's own currency (no exchange rates): set per-currency
    thresholds in ``approval.thresholds`` when the currencies differ much in value.
    """
    amount: Decimal | None = deal.total if isinstance(deal, InvoiceDraft) else deal.amount
    currency: str | None = deal.currency
    if amount is None:
        return False
    return amount > config.approval.threshold_for(currency)


def approval_key(opp_id: str) -> str:
    """A Prefect pause/suspend key for the deal: lowercase letters, digits and dashes. The
    18-character Id is case-safe, so lowercasing it keeps keys unique."""
    return f"approval-{to_18(opp_id).lower()}"


class ApprovalDecision(BaseModel):
    """What an approver decided about one deal."""

    model_config = ConfigDict(frozen=True)

    approved: bool
    approver: str
    comment: str = ""
    decided_at: datetime
