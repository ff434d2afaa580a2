"""Prefect's block standard checks, and secrets kept out of every rendering, for every block."""

from __future__ import annotations

import pytest
from prefect.blocks.core import Block
from prefect.testing.standard_test_suites import BlockStandardTestSuite
from pydantic import SecretStr

import blocks
from blocks import QuickBooksConnection, SalesforceCredentials, SlackConnection

SECRETS = ("sekret-pw-0451", "sekret-tok-9923", "sekret-cs-7781", "sekret-rt-5512")


class _Offline(BlockStandardTestSuite):
    @pytest.mark.skip(reason="downloads the logo over the network; the test suite runs offline")
    def test_has_a_valid_image(self, block: type[Block]) -> None: ...


class TestSalesforceCredentials(_Offline):
    @pytest.fixture
    def block(self) -> type[Block]:
        return SalesforceCredentials


class TestQuickBooksConnection(_Offline):
    @pytest.fixture
    def block(self) -> type[Block]:
        return QuickBooksConnection


class TestSlackConnection(_Offline):
    @pytest.fixture
    def block(self) -> type[Block]:
        return SlackConnection


def _examples() -> list[Block]:
    return [
        SalesforceCredentials(
            auth_flow="soap",
            username="integration@acme-analytics.example",
            password=SECRETS[0],
            security_token=SECRETS[1],
            consumer_key="3MVG9-key",
            consumer_secret=SECRETS[2],
        ),
        QuickBooksConnection(
            client_id="AB-client",
            client_secret=SECRETS[2],
            realm_id="9341453172461001",
            refresh_token=SECRETS[3],
        ),
        SlackConnection(token=SECRETS[1], signing_secret=SECRETS[0]),
    ]


@pytest.mark.parametrize("block", _examples(), ids=lambda b: type(b).__name__)
def test_secrets_never_rendered(block: Block) -> None:
    renderings = [repr(block), str(block), block.model_dump_json(), str(block.model_dump())]
    for text in renderings:
        assert not any(secret in text for secret in SECRETS), text
    secret_fields = [
        name for name in type(block).model_fields if isinstance(getattr(block, name), SecretStr)
    ]
    assert secret_fields
    assert all(block.model_dump(mode="json")[name] == "**********" for name in secret_fields)


def test_module_exports_every_block_for_registration() -> None:
    # `prefect block register -m blocks` registers the Block subclasses among these attributes.
    found = {name for name in dir(blocks) if Block.is_block_class(getattr(blocks, name, None))}
    assert found == {"QuickBooksConnection", "SalesforceCredentials", "SlackConnection"}


def test_salesforce_flow_validation_names_what_is_missing() -> None:
    with pytest.raises(ValueError, match="missing: security_token"):
        SalesforceCredentials(auth_flow="soap", username="u", password="p")
    with pytest.raises(ValueError, match="missing: consumer_key, consumer_secret"):
        SalesforceCredentials(auth_flow="password", username="u", password="p")
    with pytest.raises(ValueError, match="needs a My Domain"):
        SalesforceCredentials(auth_flow="client_credentials", consumer_key="k", consumer_secret="s")
    ok = SalesforceCredentials(
        auth_flow="client_credentials",
        domain="https://acme.my.salesforce.com/",
        consumer_key="k",
        consumer_secret="s",
        api_version="v62.0",
    )
    assert ok.domain == "acme.my" and ok.login_host == "https://acme.my.salesforce.com"
    assert ok.api_version == "62.0"


def test_quickbooks_environment_validation() -> None:
    common = {"client_id": "c", "client_secret": "s", "realm_id": "1", "refresh_token": "r"}
    assert QuickBooksConnection(**common, environment="sandbox").environment == "sandbox"
    url = "http://127.0.0.1:9/.well-known/openid_sandbox_configuration"
    assert QuickBooksConnection(**common, environment=url).environment == url
    with pytest.raises(ValueError, match="environment must be one of"):
        QuickBooksConnection(**common, environment="staging")
    with pytest.raises(ValueError):
        QuickBooksConnection(**common, minorversion=65)
