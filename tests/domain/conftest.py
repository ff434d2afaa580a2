from __future__ import annotations

import pytest

from revbridge.config import RevbridgeConfig, load_config
from revbridge.models import Opportunity
from sandbox.demo_company import DemoCompany
from tests.domain import demo_records


@pytest.fixture(scope="session")
def company() -> DemoCompany:
    return demo_records.company()


@pytest.fixture(scope="session")
def config() -> RevbridgeConfig:
    return load_config(demo_records.CONFIG_DIR / "demo.yaml")


@pytest.fixture(scope="session")
def won(company: DemoCompany) -> dict[str, Opportunity]:
    """Every closed-won demo deal, parsed, keyed by its demo key (opp-001, opp-nolines...)."""
    keys = [o.key for o in company.opportunities if o.is_won]
    records = demo_records.closed_won_records(company)
    return {key: Opportunity.from_record(r) for key, r in zip(keys, records, strict=True)}
