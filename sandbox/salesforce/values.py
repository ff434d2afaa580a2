"""Field values: the JSON Salesforce sends back, and parsing what callers write.

Stored values are native Python: ``str``, ``bool``, ``Decimal`` (currency, double, percent),
``int``, ``date``, aware ``datetime`` (UTC, millisecond precision) and ``None``.
"""

from __future__ import annotations

import base64
import binascii
import re
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from sandbox.salesforce.schema import NUMBER_TYPES, TEXT_TYPES, FieldDef
from sandbox.salesforce.soql import parse_datetime_literal

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class BadValue(Exception):
    """A written value that cannot be read as the field's type."""

    def __init__(self, field: FieldDef, raw: Any, java_type: str) -> None:
        super().__init__(f"{field.name}: {raw!r}")
        self.field = field
        self.raw = raw
        self.java_type = java_type


def truncate_ms(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(microsecond=moment.microsecond // 1000 * 1000)


def format_datetime(moment: datetime) -> str:
    """``2026-11-23T10:00:00.000+0000``, as the REST API writes datetimes."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}+0000"


def render(field: FieldDef, value: Any) -> Any:
    """The JSON form of a stored value."""
    if value is None:
        return None
    if field.type == "datetime":
        return format_datetime(value)
    if field.type == "date":
        return value.isoformat()
    if field.type == "int":
        return int(value)
    if field.type in {"currency", "double", "percent"}:
        return float(value)
    return value


def parse_date(raw: str) -> date | None:
    """A date field accepts ``YYYY-MM-DD`` and a datetime, whose date part it keeps."""
    text = raw.strip()
    if not re.match(r"^\d{4}-\d{2}-\d{2}(?:$|[TZ+-])", text):
        return None
    try:
        return date.fromisoformat(text[:10])
    except ValueError:
        return None


def parse_datetime(raw: str) -> datetime | None:
    """ISO-8601 with a zone (``Z``, ``+0000``, ``+00:00``), or a bare date (midnight UTC)."""
    text = raw.strip()
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        try:
            return datetime.fromisoformat(text).replace(tzinfo=UTC)
        except ValueError:
            return None
    parsed = parse_datetime_literal(text)
    if parsed is None:
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
    return truncate_ms(parsed)


def _decimal(raw: Any) -> Decimal | None:
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int | float):
        return Decimal(str(raw))
    if isinstance(raw, str):
        try:
            value = Decimal(raw.strip())
        except InvalidOperation:
            return None
        return value if value.is_finite() else None
    return None


def coerce(field: FieldDef, raw: Any) -> Any:
    """Read a written JSON value as ``field``'s type; raises BadValue when it cannot.

    Range, length, picklist and reference checks come later (they have their own errors).
    """
    if raw is None:
        return False if field.type == "boolean" else None
    kind = field.type
    if kind in TEXT_TYPES:
        if isinstance(raw, dict | list):
            raise BadValue(field, raw, "String")
        value = str(raw).lower() if isinstance(raw, bool) else str(raw)
        return value or None
    if kind == "boolean":
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, str) and raw.lower() in {"true", "false"}:
            return raw.lower() == "true"
        raise BadValue(field, raw, "boolean")
    if kind in NUMBER_TYPES:
        if raw == "":
            return None
        number = _decimal(raw)
        if number is None:
            raise BadValue(field, raw, "int" if kind == "int" else "double")
        if kind == "int":
            if number != number.to_integral_value():
                raise BadValue(field, raw, "int")
            return int(number)
        return number.quantize(Decimal(1).scaleb(-field.scale), rounding=ROUND_HALF_UP)
    if kind == "date":
        parsed_date = parse_date(raw) if isinstance(raw, str) else None
        if parsed_date is None:
            if raw == "":
                return None
            raise BadValue(field, raw, "date")
        return parsed_date
    if kind == "datetime":
        parsed = parse_datetime(raw) if isinstance(raw, str) else None
        if parsed is None:
            if raw == "":
                return None
            raise BadValue(field, raw, "datetime")
        return parsed
    if kind in {"id", "reference"}:
        if not isinstance(raw, str):
            raise BadValue(field, raw, "String")
        return raw.strip() or None
    if kind == "base64":  # stored as bytes, read back from the blob URL (see content.py)
        if not isinstance(raw, str):
            raise BadValue(field, raw, "base64Binary")
        try:
            return base64.b64decode("".join(raw.split()), validate=True)
        except (binascii.Error, ValueError):
            raise BadValue(field, raw[:100], "base64Binary") from None
    raise BadValue(field, raw, "String")  # pragma: no cover - every schema type is handled


def number_fits(field: FieldDef, value: Decimal | int) -> bool:
    """Whether a number has at most ``precision - scale`` digits before the point."""
    whole = abs(int(value))
    return len(str(whole)) <= max(field.precision - field.scale, 1)


def valid_email(value: str) -> bool:
    return _EMAIL.match(value) is not None
