"""SOQL text → a small syntax tree (``Query``), with Salesforce's MALFORMED_QUERY messages.

Parsing knows nothing of the org's schema; ``sandbox.salesforce.query`` resolves fields, checks
literal types and runs the query. Every syntax error is a ``SoqlError`` whose message looks like
Salesforce's: the offending line, a caret, ``ERROR at Row:r:Column:c`` and the reason.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

__all__ = [
    "And",
    "Comparison",
    "CountExpr",
    "FieldRef",
    "Literal",
    "Not",
    "Or",
    "OrderItem",
    "Query",
    "SoqlError",
    "SubQuery",
    "format_error",
    "parse",
]


class SoqlError(Exception):
    """A query Salesforce would refuse: ``code`` is its errorCode, ``message`` its message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def format_error(text: str, line: int, column: int, detail: str) -> str:
    """Salesforce's query error layout: the line, a caret under the column, the position."""
    lines = text.splitlines() or [""]
    shown = lines[line - 1] if 0 < line <= len(lines) else lines[-1]
    return f"\n{shown}\n{' ' * (column - 1)}^\nERROR at Row:{line}:Column:{column}\n{detail}"


# ---- the tree --------------------------------------------------------------------------------


@dataclass(frozen=True)
class FieldRef:
    path: tuple[str, ...]
    line: int
    column: int

    @property
    def text(self) -> str:
        return ".".join(self.path)


@dataclass(frozen=True)
class Literal:
    """A value in a WHERE clause. ``kind``: string, number, boolean, null, date, datetime,
    date_literal (``value`` is ``(name, n)``, n None but for the N_DAYS forms)."""

    kind: str
    value: Any
    raw: str
    line: int
    column: int


@dataclass(frozen=True)
class Comparison:
    field: FieldRef
    op: str  # = != < > <= >= IN NOT IN LIKE
    value: Literal | tuple[Literal, ...]


@dataclass(frozen=True)
class And:
    items: tuple[Condition, ...]


@dataclass(frozen=True)
class Or:
    items: tuple[Condition, ...]


@dataclass(frozen=True)
class Not:
    item: Condition


Condition = Comparison | And | Or | Not


@dataclass(frozen=True)
class OrderItem:
    field: FieldRef
    descending: bool
    nulls_last: bool


@dataclass(frozen=True)
class CountExpr:
    field: FieldRef | None  # None: COUNT()
    alias: str | None
    line: int
    column: int


@dataclass(frozen=True)
class SubQuery:
    relationship: str
    fields: tuple[FieldRef, ...]
    where: Condition | None
    order: tuple[OrderItem, ...]
    limit: int | None
    line: int
    column: int


SelectItem = FieldRef | CountExpr | SubQuery


@dataclass(frozen=True)
class Query:
    text: str
    select: tuple[SelectItem, ...]
    sobject: str
    sobject_line: int
    sobject_column: int
    where: Condition | None = None
    order: tuple[OrderItem, ...] = ()
    limit: int | None = None
    offset: int | None = None


# ---- parsing ---------------------------------------------------------------------------------

_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f", "'": "'", '"': '"', "\\": "\\"}
_DATETIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,3}))?(Z|[+-]\d{2}:?\d{2})"
)


def unescape(body: str, *, keep_like_escapes: bool = False) -> str:
    """Decode SOQL string escapes; ``\\%`` and ``\\_`` stay escaped for LIKE patterns."""
    out: list[str] = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch == "\\" and i + 1 < len(body):
            nxt = body[i + 1]
            if nxt in "%_":
                out.append("\\" + nxt if keep_like_escapes else nxt)
            elif nxt == "u" and i + 5 < len(body):
                out.append(chr(int(body[i + 2 : i + 6], 16)))
                i += 4
            else:
                out.append(_ESCAPES.get(nxt, nxt))
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def parse_datetime_literal(raw: str) -> datetime | None:
    m = _DATETIME.fullmatch(raw)
    if m is None:
        return None
    zone = m.group(8)
    if zone != "Z" and ":" not in zone:
        zone = zone[:3] + ":" + zone[3:]
    millis = (m.group(7) or "0").ljust(3, "0")
    iso = f"{raw[:19]}.{millis}{'+00:00' if zone == 'Z' else zone}"
    try:
        return datetime.fromisoformat(iso)
    except ValueError:
        return None


def _pos(token: Token) -> tuple[int, int]:
    return int(token.line or 1), int(token.column or 1)


@v_args(inline=True)
class _ToTree(Transformer[Token, Any]):
    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    # select
    def start(self, select: list[SelectItem], sobject: Token, *clauses: Any) -> Query:
        parts: dict[str, Any] = {}
        for clause in clauses:
            if clause is not None:
                parts[clause[0]] = clause[1]
        line, column = _pos(sobject)
        return Query(self.text, tuple(select), str(sobject), line, column, **parts)

    def select_list(self, *items: SelectItem) -> list[SelectItem]:
        return list(items)

    def field_list(self, *items: FieldRef) -> tuple[FieldRef, ...]:
        return items

    def field_ref(self, *names: Token) -> FieldRef:
        line, column = _pos(names[0])
        return FieldRef(tuple(str(n) for n in names), line, column)

    def count_expr(self, keyword: Token, field: FieldRef | None, alias: Token | None) -> CountExpr:
        line, column = _pos(keyword)
        return CountExpr(field, str(alias) if alias is not None else None, line, column)

    def subquery(
        self, fields: tuple[FieldRef, ...], relationship: Token, *clauses: Any
    ) -> SubQuery:
        parts: dict[str, Any] = {"where": None, "order": (), "limit": None}
        for clause in clauses:
            if clause is not None:
                parts[clause[0]] = clause[1]
        line, column = _pos(relationship)
        return SubQuery(str(relationship), fields, line=line, column=column, **parts)

    # clauses
    def where_clause(self, condition: Condition) -> tuple[str, Condition]:
        return ("where", condition)

    def order_clause(self, *items: OrderItem) -> tuple[str, tuple[OrderItem, ...]]:
        return ("order", items)

    def order_item(self, field: FieldRef, *rest: Token) -> OrderItem:
        words = {t.type: str(t).upper() for t in rest}
        descending = words.get("DIRECTION") == "DESC"
        nulls_last = words.get("NULLS_POSITION", "LAST" if descending else "FIRST") == "LAST"
        return OrderItem(field, descending, nulls_last)

    def limit_clause(self, value: Token) -> tuple[str, int]:
        return ("limit", int(value))

    def offset_clause(self, value: Token) -> tuple[str, int]:
        return ("offset", int(value))

    # conditions
    def and_chain(self, *items: Condition) -> And:
        return And(items)

    def or_chain(self, *items: Condition) -> Or:
        return Or(items)

    def negation(self, item: Condition) -> Not:
        return Not(item)

    def compare(self, field: FieldRef, op: Token, value: Literal) -> Comparison:
        return Comparison(field, "!=" if str(op) == "<>" else str(op), value)

    def in_list(self, field: FieldRef, values: tuple[Literal, ...]) -> Comparison:
        return Comparison(field, "IN", values)

    def not_in_list(self, field: FieldRef, values: tuple[Literal, ...]) -> Comparison:
        return Comparison(field, "NOT IN", values)

    def like(self, field: FieldRef, value: Literal) -> Comparison:
        return Comparison(field, "LIKE", value)

    def values(self, *items: Literal) -> tuple[Literal, ...]:
        return items

    # literals
    def _lit(self, kind: str, value: Any, token: Token) -> Literal:
        line, column = _pos(token)
        return Literal(kind, value, str(token), line, column)

    def string(self, token: Token) -> Literal:
        return self._lit("string", unescape(str(token)[1:-1]), token)

    def number(self, token: Token) -> Literal:
        return self._lit("number", Decimal(str(token)), token)

    def datetime(self, token: Token) -> Literal:
        value = parse_datetime_literal(str(token))
        if value is None:
            raise SoqlError("MALFORMED_QUERY", self._bad_value(token, "datetime"))
        return self._lit("datetime", value, token)

    def date(self, token: Token) -> Literal:
        try:
            value = date.fromisoformat(str(token))
        except ValueError:
            raise SoqlError("MALFORMED_QUERY", self._bad_value(token, "date")) from None
        return self._lit("date", value, token)

    def n_date_literal(self, token: Token) -> Literal:
        name, n = str(token).split(":")
        return self._lit("date_literal", (name.upper(), int(n)), token)

    def date_literal(self, token: Token) -> Literal:
        return self._lit("date_literal", (str(token).upper(), None), token)

    def true(self, token: Token) -> Literal:
        return self._lit("boolean", True, token)

    def false(self, token: Token) -> Literal:
        return self._lit("boolean", False, token)

    def null(self, token: Token) -> Literal:
        return self._lit("null", None, token)

    def _bad_value(self, token: Token, kind: str) -> str:
        line, column = _pos(token)
        return format_error(self.text, line, column, f"invalid {kind}: {token}")


@cache
def _parser() -> Lark:
    grammar = (Path(__file__).with_name("soql.lark")).read_text()
    return Lark(grammar, parser="lalr", lexer="contextual", maybe_placeholders=True)


def parse(text: str) -> Query:
    """Parse one SOQL query; raises ``SoqlError`` (MALFORMED_QUERY) on a syntax error."""
    try:
        tree = _parser().parse(text)
    except UnexpectedInput as exc:
        raise SoqlError("MALFORMED_QUERY", _syntax_message(text, exc)) from None
    try:
        result: Query = _ToTree(text).transform(tree)
    except Exception as exc:  # lark wraps errors raised in callbacks
        inner = getattr(exc, "orig_exc", exc)
        if isinstance(inner, SoqlError):
            raise inner from None
        raise
    return result


def _syntax_message(text: str, exc: UnexpectedInput) -> str:
    if isinstance(exc, UnexpectedCharacters):
        line, column = exc.line, exc.column
        detail = f"line {line}:{column - 1} no viable alternative at character '{exc.char}'"
        return format_error(text, line, column, detail)
    if isinstance(exc, UnexpectedEOF) or (
        isinstance(exc, UnexpectedToken) and exc.token.type == "$END"
    ):
        lines = text.splitlines() or [""]
        line = len(lines)
        return format_error(text, line, len(lines[-1]) + 1, "unexpected token: '<EOF>'")
    assert isinstance(exc, UnexpectedToken)
    return format_error(text, exc.line, exc.column, f"unexpected token: '{exc.token}'")
