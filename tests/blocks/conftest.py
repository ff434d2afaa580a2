from __future__ import annotations

import uuid

import pytest


@pytest.fixture
def block_name() -> str:
    """A block document name no other test uses."""
    return f"test-{uuid.uuid4().hex[:12]}"
