"""Parse and evaluate QuickBooks Online queries (grammar in ``query.lark``).

``parse`` turns ``SELECT ... FROM Entity WHERE ... ORDERBY ... STARTPOSITION n MAXRESULTS n``
into a ``Query``; a syntax error raises a 4000 ``QueryParserError`` fault worded like Intuit's
(``Encountered "OR" at line 1, column 40.``). Evaluation is generic over the JSON objects the
backend stores: ``Query.matches`` filters, ``sort_key`` orders; the backend decides which
properties an entity lets you filter on.

Comparisons follow QuickBooks: string equality and LIKE are case-insensitive, references
(``CustomerRef``) compare by their ``value``, ``PrimaryEmailAddr`` by its address, numbers
numerically (``Balance > '0.0'`` works), dates and datetimes chronologically (a datetime
without an offset is company time).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from functools import cache
from pathlib import Path
from typing import Any

from lark import Lark, Token, Transformer, UnexpectedCharacters, UnexpectedInput, UnexpectedToken

from sandbox.quickbooks import exceptions as exc

MAX_RESULTS_LIMIT = 1000
DEFAULT_MAX_RESULTS = 100

_KEYWORD_NAMES = {
    "SELECT": "select",
    "FROM": "from",
    "WHERE": "where",
    "AND": "and",
    "IN": "in",
    "LIKE": "like",
    "COUNT": "count",
    "ORDER_BY": "orderby",
    "STARTPOSITION": "startposition",
    "MAXRESULTS": "maxresults",
    "NAME": "<ID>",
    "STRING": "<STRING>",
    "NUMBER": "<INTEGER>",
    "COMP_OP": "<OPERATOR>",
    "COMMA": ",",
    "LPAR": "(",
    "RPAR": ")",
    "STAR": "*",
    "DIRECTION": "asc",
}


@dataclass(frozen=True)
class Condition:
    prop: str
    op: str  # "=", "<", ">", "<=", ">=", "IN", "LIKE"
    values: tuple[Any, ...]

    def test(self, obj: dict[str, Any]) -> bool:
        stored = lookup(obj, self.prop)
        if stored is None:
            return False
        if self.op == "IN":
            return any(_compare(stored, v) == 0 for v in self.values)
        if self.op == "LIKE":
            return _like(str(_scalar(stored)), str(self.values[0]))
        order = _compare(stored, self.values[0])
        if order is None:
            return False
        return {
            "=": order == 0,
            "<": order < 0,
            ">": order > 0,
            "<=": order <= 0,
            ">=": order >= 0,
        }[self.op]


@dataclass
class Query:
    entity: str
    count: bool = False
    fields: list[str] | None = None  # None: every property (SELECT *)
    conditions: list[Condition] = field(default_factory=list)
    order: list[tuple[str, bool]] = field(default_factory=list)  # (property, descending)
    start_position: int = 1
    max_results: int = DEFAULT_MAX_RESULTS

    def properties(self) -> list[str]:
        """Every property the query filters or sorts on (what the backend validates)."""
        return [c.prop for c in self.conditions] + [p for p, _ in self.order]

    def mentions(self, prop: str) -> bool:
        return any(c.prop.lower() == prop.lower() for c in self.conditions)

    def matches(self, obj: dict[str, Any]) -> bool:
        return all(c.test(obj) for c in self.conditions)


class _ToQuery(Transformer[Token, Query]):
    def start(self, items: list[Any]) -> Query:
        _, projection, _, entity, *rest = items
        query = Query(entity=str(entity))
        kind, fields = projection
        query.count = kind == "count"
        query.fields = fields if kind == "fields" else None
        for item in rest:
            if item is None:
                continue
            tag, payload = item
            if tag == "where":
                query.conditions = payload
            elif tag == "order":
                query.order = payload
            elif tag == "start":
                query.start_position = max(1, int(payload))
            elif tag == "max":
                query.max_results = int(payload)
        return query

    def count(self, _: list[Any]) -> tuple[str, None]:
        return "count", None

    def star(self, _: list[Any]) -> tuple[str, None]:
        return "star", None

    def fields(self, props: list[str]) -> tuple[str, list[str]]:
        return "fields", props

    def where_clause(self, items: list[Any]) -> tuple[str, list[Condition]]:
        return "where", [i for i in items if isinstance(i, Condition)]

    def compare(self, items: list[Any]) -> Condition:
        prop, op, value = items
        return Condition(prop, str(op), (value,))

    def in_list(self, items: list[Any]) -> Condition:
        prop, _, *values = items
        return Condition(prop, "IN", tuple(values))

    def like(self, items: list[Any]) -> Condition:
        prop, _, pattern = items
        return Condition(prop, "LIKE", (_unquote(str(pattern)),))

    def order(self, items: list[Any]) -> tuple[str, list[tuple[str, bool]]]:
        return "order", [i for i in items if isinstance(i, tuple)]

    def sort(self, items: list[Any]) -> tuple[str, bool]:
        prop = items[0]
        descending = len(items) > 1 and str(items[1]).lower() == "desc"
        return prop, descending

    def start_position(self, items: list[Any]) -> tuple[str, str]:
        return "start", str(items[1])

    def max_results(self, items: list[Any]) -> tuple[str, str]:
        return "max", str(items[1])

    def prop(self, names: list[Token]) -> str:
        return ".".join(str(n) for n in names)

    def string(self, items: list[Token]) -> str:
        return _unquote(str(items[0]))

    def number(self, items: list[Token]) -> Decimal:
        return Decimal(str(items[0]))

    def true(self, _: list[Token]) -> bool:
        return True

    def false(self, _: list[Token]) -> bool:
        return False


@cache
def _parser() -> Lark:
    grammar = (Path(__file__).parent / "query.lark").read_text()
    return Lark(grammar, parser="lalr", lexer="contextual")


def parse(text: str) -> Query:
    """A ``Query``, or a 4000 QueryParserError fault (or 4001 for MAXRESULTS over 1000)."""
    source = text.strip().rstrip(";")
    if not source:
        raise exc.query_parser_error('Encountered "<EOF>" at line 0, column 0.')
    try:
        tree = _parser().parse(source)
    except UnexpectedInput as error:
        raise exc.query_parser_error(_describe(error, source)) from None
    query = _ToQuery().transform(tree)
    if query.max_results > MAX_RESULTS_LIMIT:
        raise exc.query_validation_error(
            f"value {query.max_results} is too large. Max allowed value is {MAX_RESULTS_LIMIT}"
        )
    if query.max_results < 1:
        raise exc.query_validation_error(f"value {query.max_results} is too small")
    return query


def _describe(error: UnexpectedInput, source: str) -> str:
    line, column = error.line, error.column
    if isinstance(error, UnexpectedToken):
        found = "<EOF>" if error.token.type == "$END" else str(error.token.value)
        expected = sorted({_KEYWORD_NAMES.get(t, t.lower()) for t in error.expected})
    elif isinstance(error, UnexpectedCharacters):
        position = error.pos_in_stream or 0
        found = source[position] if position < len(source) else "<EOF>"
        expected = sorted({_KEYWORD_NAMES.get(t, t.lower()) for t in error.allowed or ()})
    else:  # pragma: no cover - lark raises only the two above for LALR
        found, expected = "?", []
    detail = f'Encountered " {found} "{found} "" at line {line}, column {column}.'
    if expected:
        detail += "\nWas expecting one of:\n" + "\n".join(f'    "{e}" ...' for e in expected)
    return detail


def _unquote(literal: str) -> str:
    return re.sub(r"\\(.)", r"\1", literal[1:-1])


# ---- evaluation ------------------------------------------------------------------------------
def lookup(obj: dict[str, Any], prop: str) -> Any:
    """A property by dotted path, case-insensitively (``MetaData.LastUpdatedTime``)."""
    current: Any = obj
    for part in prop.split("."):
        if isinstance(current, list):  # AttachableRef.EntityRef.value: any element
            current = current[0] if current else None
        if not isinstance(current, dict):
            return None
        key = next((k for k in current if k.lower() == part.lower()), None)
        if key is None:
            return None
        current = current[key]
    return current


def _scalar(value: Any) -> Any:
    """References compare by value, e-mail addresses by address, currencies by code."""
    if isinstance(value, dict):
        for key in ("value", "Address", "FreeFormNumber", "URI"):
            if key in value:
                return value[key]
        return None
    return value


_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?$")


def _as_datetime(text: str) -> datetime | None:
    if not _DATETIME.match(text):
        return None
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=exc.COMPANY_TZ)
    return parsed


def _as_decimal(value: Any) -> Decimal | None:
    if isinstance(value, bool):
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def _compare(stored: Any, literal: Any) -> int | None:
    """-1/0/1 ordering of a stored value against a query literal, or None if incomparable."""
    left = _scalar(stored)
    if left is None:
        return None
    if isinstance(left, bool) or isinstance(literal, bool):
        right_bool = literal if isinstance(literal, bool) else str(literal).lower() == "true"
        return 0 if bool(left) == right_bool else 1
    if isinstance(left, (int, float, Decimal)):
        right_num = _as_decimal(literal)
        left_num = _as_decimal(left)
        if right_num is None or left_num is None:
            return None
        return (left_num > right_num) - (left_num < right_num)
    left_text, right_text = str(left), str(literal)
    left_dt, right_dt = _as_datetime(left_text), _as_datetime(right_text)
    if left_dt is not None and (right_dt is not None or _DATE.match(right_text)):
        right_value = right_dt or datetime.fromisoformat(right_text).replace(tzinfo=exc.COMPANY_TZ)
        return (left_dt > right_value) - (left_dt < right_value)
    if _DATE.match(left_text) and (_DATE.match(right_text) or right_dt is not None):
        left_day = date.fromisoformat(left_text)
        right_day = (
            right_dt.astimezone(exc.COMPANY_TZ).date()
            if right_dt
            else date.fromisoformat(right_text)
        )
        return (left_day > right_day) - (left_day < right_day)
    left_num, right_num = _as_decimal(left_text), _as_decimal(right_text)
    if left_num is not None and right_num is not None:  # Ids: '9' < '10'
        return (left_num > right_num) - (left_num < right_num)
    a, b = left_text.casefold(), right_text.casefold()
    return (a > b) - (a < b)


def _like(text: str, pattern: str) -> bool:
    regex = ".*".join(re.escape(part) for part in pattern.split("%"))
    return re.fullmatch(regex, text, flags=re.IGNORECASE | re.DOTALL) is not None


def sort_key(prop: str) -> Any:
    """A key function ordering objects by ``prop`` (missing values first, as QuickBooks does)."""

    def key(obj: dict[str, Any]) -> tuple[int, Any]:
        value = _scalar(lookup(obj, prop))
        if value is None:
            return (0, "")
        if isinstance(value, bool):
            return (1, int(value))
        number = _as_decimal(value)
        if number is not None:
            return (2, number)
        moment = _as_datetime(str(value))
        if moment is not None:
            return (3, moment.timestamp())
        return (4, str(value).casefold())

    return key
