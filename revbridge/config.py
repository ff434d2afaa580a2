"""The revbridge configuration: one reviewable YAML file, one pydantic model.

``load_config(path_or_text)`` returns a `RevbridgeConfig` or raises `ConfigError`, whose messages
name the bad key path, e.g. ``realms.eu.item_map.SEAT-ADD: unknown field 'itme'``.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from revbridge.config_sections import (
    CustomerSyncConfig,
    DeliveryConfig,
    ReconciliationConfig,
    RemindersConfig,
    TokenHealthConfig,
)
from revbridge.text import name_key

DEFAULT_FREE_MAIL_DOMAINS = (
    "gmail.com", "googlemail.com", "yahoo.com", "yahoo.co.uk", "ymail.com", "hotmail.com",
    "outlook.com", "live.com", "msn.com", "icloud.com", "me.com", "mac.com", "aol.com",
    "proton.me", "protonmail.com", "gmx.de", "gmx.net", "web.de", "t-online.de", "orange.fr",
    "free.fr", "laposte.net", "libero.it", "mail.com", "yandex.ru", "zoho.com", "fastmail.com",
)  # fmt: skip


class ConfigError(ValueError):
    """An invalid configuration; ``errors`` holds one "key.path: reason" line per problem."""

    def __init__(self, errors: list[str]) -> None:
        self.errors = errors
        super().__init__("invalid revbridge config:\n" + "\n".join(f"  - {e}" for e in errors))


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ItemRef(_Section):
    """A QuickBooks Item, by Name (resolved to its Id at run time) or by Id."""

    name: str | None = Field(default=None, description="QuickBooks Item.Name")
    id: str | None = Field(default=None, description="QuickBooks Item.Id")

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        return {"name": data} if isinstance(data, str) else data

    @field_validator("id", mode="before")
    @classmethod
    def _id_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @model_validator(mode="after")
    def _exactly_one(self) -> ItemRef:
        if (self.name is None) == (self.id is None):
            raise ValueError("give exactly one of 'name' or 'id'")
        return self


class RealmConfig(_Section):
    """One QuickBooks company and the deals routed to it."""

    realm_id: str = Field(pattern=r"^\d+$", description="QuickBooks company (realm) id")
    connection_block: str = Field(
        min_length=1, description="name of the Prefect QuickBooksConnection block"
    )
    record_types: list[str] = Field(
        default_factory=list, description="Opportunity RecordType.DeveloperName routed here"
    )
    owners: list[str] = Field(
        default_factory=list, description="Opportunity owner emails routed here (after types)"
    )
    currency: str = Field(pattern=r"^[A-Z]{3}$", description="the company's home currency")
    other_currencies: list[Annotated[str, Field(pattern=r"^[A-Z]{3}$")]] = Field(
        default_factory=list,
        description="foreign currencies deals may be invoiced in (QuickBooks multicurrency on); "
        "amounts stay in the deal's currency and QuickBooks supplies the exchange rate",
    )
    item_map: dict[str, ItemRef] = Field(
        default_factory=dict, description="Salesforce ProductCode → QuickBooks Item"
    )
    tax_code: str | None = Field(default=None, description="TaxCodeRef value for every line")
    default_terms: str | None = Field(
        default=None, description="QuickBooks Term name when Payment_Terms__c is empty"
    )

    @field_validator("realm_id", mode="before")
    @classmethod
    def _realm_id_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    def accepts(self, currency: str) -> bool:
        """Whether deals in ``currency`` may be invoiced in this company."""
        return currency == self.currency or currency in self.other_currencies

    def item_for(self, product_code: str | None) -> ItemRef | None:
        """The QuickBooks item a Salesforce ProductCode maps to, if any."""
        return self.item_map.get(product_code) if product_code else None


class RoutingConfig(_Section):
    default: str | None = Field(
        default=None, description="realm for deals no record type or owner routes; none → error"
    )


class ApprovalConfig(_Section):
    threshold: Decimal = Field(default=Decimal("25000"), ge=0)
    thresholds: dict[str, Decimal] = Field(
        default_factory=dict, description="per-currency thresholds overriding `threshold`"
    )
    approvers: list[str] = Field(default_factory=list, description="emails allowed to decide")
    timeout_hours: int = Field(default=168, gt=0)

    def threshold_for(self, currency: str | None) -> Decimal:
        """The approval threshold for deals in ``currency`` (no conversion between currencies)."""
        return self.thresholds.get(currency or "", self.threshold)

    def is_approver(self, email: str | None) -> bool:
        return bool(email) and name_key(email or "") in {name_key(a) for a in self.approvers}


class MatchingConfig(_Section):
    fuzzy_accept: float = Field(default=92, ge=0, le=100)
    fuzzy_review: float = Field(default=80, ge=0, le=100)
    free_mail_domains: list[str] = Field(default_factory=lambda: list(DEFAULT_FREE_MAIL_DOMAINS))
    name_collision: Literal["suffix", "review"] = "suffix"
    suffix: str = " (Customer)"
    currency_mismatch: Literal["review", "per_currency"] = Field(
        default="review",
        description="a deal whose customer is billed in another currency: 'review' holds it for "
        "a human; 'per_currency' bills it to (or creates) that account's customer in the deal's "
        "currency, named with the currency as suffix, e.g. 'Globex (EUR)'",
    )

    @model_validator(mode="after")
    def _ordered(self) -> MatchingConfig:
        if self.fuzzy_review > self.fuzzy_accept:
            raise ValueError("fuzzy_review must not exceed fuzzy_accept")
        if self.name_collision == "suffix" and not self.suffix.strip():
            raise ValueError("suffix must not be blank when name_collision is 'suffix'")
        return self


class SlackConfig(_Section):
    block: str = Field(description="name of the SlackConnection block")
    alerts_channel: str = "#revops-alerts"
    approvals_channel: str = "#finance-approvals"
    wins_channel: str = "#sales-wins"


class RevbridgeConfig(_Section):
    """The whole configuration. Realm order is significant only for reports."""

    salesforce_block: str = Field(description="name of the SalesforceCredentials block")
    realms: dict[str, RealmConfig] = Field(min_length=1)
    routing: RoutingConfig = Field(default_factory=RoutingConfig)
    approval: ApprovalConfig = Field(default_factory=ApprovalConfig)
    matching: MatchingConfig = Field(default_factory=MatchingConfig)
    slack: SlackConfig
    post_closed_stage: str = "Closed Won - Paid"
    reconciliation: ReconciliationConfig = Field(default_factory=ReconciliationConfig)
    customer_sync: CustomerSyncConfig = Field(default_factory=CustomerSyncConfig)
    delivery: DeliveryConfig = Field(default_factory=DeliveryConfig)
    reminders: RemindersConfig = Field(default_factory=RemindersConfig)
    token_health: TokenHealthConfig = Field(default_factory=TokenHealthConfig)

    @model_validator(mode="after")
    def _consistent(self) -> RevbridgeConfig:
        errors: list[str] = []
        if self.routing.default is not None and self.routing.default not in self.realms:
            errors.append(f"routing.default: unknown realm '{self.routing.default}'")
        seen: dict[tuple[str, str], str] = {}
        for name, realm in self.realms.items():
            for kind, values in (("record_types", realm.record_types), ("owners", realm.owners)):
                for value in values:
                    key = (kind, value if kind == "record_types" else name_key(value))
                    if key in seen and seen[key] != name:
                        errors.append(
                            f"realms.{name}.{kind}: '{value}' is already routed to realm "
                            f"'{seen[key]}'"
                        )
                    seen[key] = name
        ids = [r.realm_id for r in self.realms.values()]
        for name, realm in self.realms.items():
            if ids.count(realm.realm_id) > 1:
                errors.append(f"realms.{name}.realm_id: {realm.realm_id} is used by two realms")
        for name in self.reminders.digest_channels:
            if name not in self.realms:
                errors.append(f"reminders.digest_channels: unknown realm '{name}'")
        if errors:
            raise ValueError("\n".join(errors))
        return self

    def realm(self, name: str) -> RealmConfig:
        """The realm called ``name`` (KeyError names the known ones)."""
        try:
            return self.realms[name]
        except KeyError:
            raise KeyError(f"unknown realm {name!r} (known: {', '.join(self.realms)})") from None


def load_config(source: str | Path) -> RevbridgeConfig:
    """Load and check a config from a file (a `Path`, or a str ending in .yaml/.yml) or from
    YAML text (any other str)."""
    if isinstance(source, Path) or (
        "\n" not in source and source.strip().endswith((".yaml", ".yml"))
    ):
        text = Path(source).read_text(encoding="utf-8")
    else:
        text = source
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError([f"not valid YAML: {exc}"]) from exc
    if not isinstance(data, dict):
        raise ConfigError(["the top level must be a mapping with at least a 'realms' key"])
    return parse_config(data)


def parse_config(data: dict[str, Any]) -> RevbridgeConfig:
    """Check an already-parsed mapping (what `load_config` does after reading YAML)."""
    try:
        return RevbridgeConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError([line for e in exc.errors() for line in _describe(e)]) from None


def _describe(error: Any) -> list[str]:
    loc = [str(part) for part in error["loc"]]
    path = ".".join(loc)
    kind = error["type"]
    if kind == "extra_forbidden":
        parent = ".".join(loc[:-1]) or "(top level)"
        return [f"{parent}: unknown field '{loc[-1]}'"]
    if kind == "missing":
        return [f"{path}: required field missing"]
    message = str(error["ctx"]["error"]) if kind == "value_error" else error["msg"]
    return [f"{path}: {line}" if path else line for line in message.splitlines()]
