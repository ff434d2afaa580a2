"""Which QuickBooks company (realm) a deal is invoiced in."""

from __future__ import annotations

from revbridge.config import RevbridgeConfig
from revbridge.models import Opportunity, Problem
from revbridge.text import name_key


def route(opp: Opportunity, config: RevbridgeConfig) -> str | Problem:
    """The realm name for ``opp``: by RecordType.DeveloperName, then by owner email, then
    ``routing.default``; a `Problem` when none applies."""
    if opp.record_type:
        for name, realm in config.realms.items():
            if opp.record_type in realm.record_types:
                return name
    owner_email = name_key(opp.owner.email) if opp.owner and opp.owner.email else None
    if owner_email:
        for name, realm in config.realms.items():
            if owner_email in {name_key(e) for e in realm.owners}:
                return name
    if config.routing.default:
        return config.routing.default
    owner = (opp.owner.email if opp.owner else None) or "(none)"
    return Problem(
        record_id=opp.id,
        field="RecordType.DeveloperName",
        reason=(
            f"no realm for record type {opp.record_type or '(none)'} or owner {owner}, "
            "and routing.default is not set"
        ),
    )
