"""Runs a parsed SOQL query against the org's records, with Salesforce's errors and JSON shapes.

``compile_query`` resolves every name against the schema (INVALID_TYPE, INVALID_FIELD,
INVALID_QUERY_FILTER_OPERATOR, MALFORMED_QUERY) and checks literal types; ``CompiledQuery.run``
filters, sorts and renders records: parent relationships nest as objects (null when the lookup
is empty), child subqueries as ``{totalSize, done, records}`` (null when empty).
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Protocol

from sandbox.salesforce.content import blob_url
from sandbox.salesforce.ids import normalize_id, object_of
from sandbox.salesforce.schema import ID_TYPES, NUMBER_TYPES, FieldDef, ObjectDef, Schema
from sandbox.salesforce.soql import (
    And,
    Comparison,
    Condition,
    CountExpr,
    FieldRef,
    Literal,
    Not,
    Or,
    OrderItem,
    Query,
    SoqlError,
    SubQuery,
    format_error,
    parse,
    unescape,
)
from sandbox.salesforce.values import render

MAX_OFFSET = 2000

Record = dict[str, Any]


class RecordSource(Protocol):
    """What a query reads: the backend's records (native values, canonical field names)."""

    def rows(self, sobject: str, include_deleted: bool) -> Iterable[Record]: ...

    def find(self, record_id: str) -> tuple[str, Record] | None:
        """A live (not deleted) record of any type by its 18-character Id."""


@dataclass(frozen=True)
class Page:
    total_size: int
    records: list[dict[str, Any]]


# ---- field paths -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ResolvedPath:
    """``Opportunity.Account.Name`` from OpportunityLineItem: the lookups walked, then a field."""

    lookups: tuple[FieldDef, ...]
    field: FieldDef
    names: tuple[str, ...]  # canonical relationship names, then the field name

    def value(self, record: Record, source: RecordSource) -> Any:
        current = record
        for lookup in self.lookups:
            parent = _parent(current, lookup, source)
            if parent is None:
                return None
            current = parent
        return current.get(self.field.name)


def _parent(record: Record | None, lookup: FieldDef, source: RecordSource) -> Record | None:
    if record is None:
        return None
    ref = record.get(lookup.name)
    if ref is None:
        return None
    found = source.find(ref)
    return found[1] if found is not None else None


def _invalid_field(text: str, ref: FieldRef, detail: str) -> SoqlError:
    return SoqlError("INVALID_FIELD", format_error(text, ref.line, ref.column, detail))


def no_such_column(name: str, entity: str) -> str:
    return (
        f"No such column '{name}' on entity '{entity}'. If you are attempting to use a custom "
        "field, be sure to append the '__c' after the custom field name. Please reference your "
        "WSDL or the describe call for the appropriate names."
    )


def resolve_path(schema: Schema, obj: ObjectDef, ref: FieldRef, text: str) -> ResolvedPath:
    lookups: list[FieldDef] = []
    names: list[str] = []
    current = obj
    for step in ref.path[:-1]:
        lookup = current.relationship(step)
        if lookup is None:
            raise _invalid_field(
                text,
                ref,
                f"Didn't understand relationship '{step}' in field path. If you are attempting "
                "to use a custom relationship, be sure to append the '__r' after the custom "
                "relationship name. Please reference your WSDL or the describe call for the "
                "appropriate names.",
            )
        last = ref.path[-1]
        targets = [schema[t] for t in lookup.reference_to]
        current = next((t for t in targets if t.field(last) is not None), targets[0])
        lookups.append(lookup)
        names.append(lookup.relationship_name or step)
    final = current.field(ref.path[-1])
    if final is None:
        raise _invalid_field(text, ref, no_such_column(ref.path[-1], current.name))
    return ResolvedPath(tuple(lookups), final, (*names, final.name))


# ---- WHERE -----------------------------------------------------------------------------------

Predicate = Callable[[Record], bool]


def _filter_error(text: str, lit: Literal, detail: str) -> SoqlError:
    return SoqlError(
        "INVALID_QUERY_FILTER_OPERATOR", format_error(text, lit.line, lit.column, detail)
    )


def _type_word(f: FieldDef) -> str:
    if f.type == "datetime":
        return "dateTime"
    if f.type == "int":
        return "integer"
    if f.type in NUMBER_TYPES:
        return "double"
    return "boolean" if f.type == "boolean" else f.type


def _month_range(year: int, month: int) -> tuple[date, date]:
    start = date(year, month, 1)
    following = date(year + month // 12, month % 12 + 1, 1)
    return start, following - timedelta(days=1)


def date_literal_range(name: str, n: int | None, today: date) -> tuple[date, date]:
    """The inclusive day range a date literal stands for (UTC days)."""
    day = timedelta(days=1)
    if name == "TODAY":
        return today, today
    if name == "YESTERDAY":
        return today - day, today - day
    if name == "TOMORROW":
        return today + day, today + day
    if name == "THIS_MONTH":
        return _month_range(today.year, today.month)
    if name == "LAST_MONTH":
        prev = today.replace(day=1) - day
        return _month_range(prev.year, prev.month)
    if name == "NEXT_MONTH":
        nxt = _month_range(today.year, today.month)[1] + day
        return _month_range(nxt.year, nxt.month)
    assert n is not None
    if name == "LAST_N_DAYS":
        return today - timedelta(days=n), today
    return today + day, today + timedelta(days=n)  # NEXT_N_DAYS


@dataclass(frozen=True)
class _Range:
    """A date literal resolved for one field: values in [low, high)."""

    low: Any
    high: Any


class _Compiler:
    def __init__(self, schema: Schema, text: str, today: date) -> None:
        self.schema = schema
        self.text = text
        self.today = today

    def literal(self, f: FieldDef, lit: Literal) -> Any:
        """The literal as a value comparable with the field's stored values."""
        if lit.kind == "null":
            return None
        kind = f.type
        if kind in ID_TYPES:
            if lit.kind != "string":
                raise self._quote_error(f, lit, quoted=True)
            normalized = normalize_id(lit.value)
            if normalized is None:
                raise _filter_error(self.text, lit, f"invalid ID field: {lit.value}")
            return normalized
        if kind == "boolean":
            if lit.kind != "boolean":
                raise self._quote_error(f, lit, quoted=False)
            return lit.value
        if kind in NUMBER_TYPES:
            if lit.kind != "number":
                raise self._quote_error(f, lit, quoted=False)
            return lit.value
        if kind in {"date", "datetime"}:
            if lit.kind == "date_literal":
                name, n = lit.value
                low, high = date_literal_range(name, n, self.today)
                if kind == "date":
                    return _Range(low, high + timedelta(days=1))
                return _Range(_midnight(low), _midnight(high + timedelta(days=1)))
            if lit.kind != kind:
                raise self._quote_error(f, lit, quoted=False)
            return lit.value
        if lit.kind != "string":
            raise self._quote_error(f, lit, quoted=True)
        return lit.value.casefold()

    def _quote_error(self, f: FieldDef, lit: Literal, *, quoted: bool) -> SoqlError:
        enclosed = "should be enclosed in quotes" if quoted else "should not be enclosed in quotes"
        return _filter_error(
            self.text,
            lit,
            f"value of filter criterion for field '{f.name}' must be of type {_type_word(f)} "
            f"and {enclosed}",
        )

    def condition(self, obj: ObjectDef, cond: Condition, source: RecordSource) -> Predicate:
        if isinstance(cond, And):
            parts = [self.condition(obj, c, source) for c in cond.items]
            return lambda r: all(p(r) for p in parts)
        if isinstance(cond, Or):
            parts = [self.condition(obj, c, source) for c in cond.items]
            return lambda r: any(p(r) for p in parts)
        if isinstance(cond, Not):
            inner = self.condition(obj, cond.item, source)
            return lambda r: not inner(r)
        return self.comparison(obj, cond, source)

    def comparison(self, obj: ObjectDef, cmp: Comparison, source: RecordSource) -> Predicate:
        path = resolve_path(self.schema, obj, cmp.field, self.text)
        f = path.field
        text_like = f.type not in ID_TYPES | NUMBER_TYPES | {"boolean", "date", "datetime"}

        def read(record: Record) -> Any:
            value = path.value(record, source)
            return value.casefold() if text_like and isinstance(value, str) else value

        if cmp.op == "LIKE":
            assert isinstance(cmp.value, Literal)
            if cmp.value.kind != "string":
                raise self._quote_error(f, cmp.value, quoted=True)
            pattern = _like_regex(cmp.value.raw[1:-1])
            return lambda r: (
                (v := path.value(r, source)) is not None and bool(pattern.fullmatch(str(v)))
            )
        if cmp.op in {"IN", "NOT IN"}:
            assert isinstance(cmp.value, tuple)
            wanted = [self.literal(f, lit) for lit in cmp.value]
            negate = cmp.op == "NOT IN"
            return lambda r: any(_equals(read(r), w) for w in wanted) != negate
        assert isinstance(cmp.value, Literal)
        target = self.literal(f, cmp.value)
        return _operator(cmp.op, read, target)


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)


def _equals(value: Any, target: Any) -> bool:
    if isinstance(target, _Range):
        return value is not None and target.low <= value < target.high
    return bool(value == target)


_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "<": operator.lt,
    ">": operator.gt,
    "<=": operator.le,
    ">=": operator.ge,
}


def _operator(op: str, read: Callable[[Record], Any], target: Any) -> Predicate:
    if op == "=":
        return lambda r: _equals(read(r), target)
    if op == "!=":
        return lambda r: not _equals(read(r), target)
    if target is None:
        return lambda r: False
    bound = target
    if isinstance(target, _Range):  # a date literal: compare with the edge of its range
        op, bound = {
            "<": ("<", target.low),
            ">": (">=", target.high),
            "<=": ("<", target.high),
            ">=": (">=", target.low),
        }[op]
    compare = _COMPARE[op]
    return lambda r: (value := read(r)) is not None and compare(value, bound)


def _like_regex(body: str) -> re.Pattern[str]:
    pattern = unescape(body, keep_like_escapes=True)
    out: list[str] = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern) and pattern[i + 1] in "%_":
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        out.append(".*" if ch == "%" else "." if ch == "_" else re.escape(ch))
        i += 1
    return re.compile("".join(out), re.IGNORECASE | re.DOTALL)


# ---- ORDER BY --------------------------------------------------------------------------------


def _sorted(
    records: list[Record], keys: list[tuple[ResolvedPath, OrderItem]], source: RecordSource
) -> list[Record]:
    rows = list(records)
    for path, item in reversed(keys):
        # Null rows sort in a group of their own, placed so that ``reverse`` leaves them where
        # NULLS FIRST/LAST asks.
        null_group = (
            (2 if item.nulls_last else 0) if not item.descending else (0 if item.nulls_last else 2)
        )

        def key(record: Record, path: ResolvedPath = path, null_group: int = null_group) -> Any:
            value = path.value(record, source)
            if value is None:
                return (null_group, "")
            if isinstance(value, str):
                return (1, value.casefold())
            return (1, value)

        rows.sort(key=key, reverse=item.descending)
    return rows


# ---- SELECT ----------------------------------------------------------------------------------


@dataclass
class _Node:
    """The select list as a tree: plain fields, parent relationships and child subqueries."""

    obj: ObjectDef
    items: list[tuple[str, Any]] = field(default_factory=list)  # (kind, payload)
    parents: dict[str, _Node] = field(default_factory=dict)

    def add_path(self, schema: Schema, path: ResolvedPath, lookups: tuple[FieldDef, ...]) -> None:
        if not lookups:
            if not any(k == "field" and p.name == path.field.name for k, p in self.items):
                self.items.append(("field", path.field))
            return
        lookup = lookups[0]
        name = lookup.relationship_name or lookup.name
        if name not in self.parents:
            target = schema[lookup.reference_to[0]]
            self.parents[name] = _Node(target)
            self.items.append(("parent", lookup))
        self.parents[name].add_path(schema, path, lookups[1:])


@dataclass
class _Child:
    relationship: str
    child: ObjectDef
    parent_field: str
    node: _Node
    where: Predicate | None
    order: list[tuple[ResolvedPath, OrderItem]]
    limit: int | None


@dataclass
class CompiledQuery:
    query: Query
    obj: ObjectDef
    source: RecordSource
    version: str
    node: _Node
    children: dict[str, _Child]
    where: Predicate | None
    order: list[tuple[ResolvedPath, OrderItem]]
    count_only: bool = False
    aggregates: list[tuple[str, ResolvedPath]] = field(default_factory=list)
    _by_parent: dict[str, dict[str, list[Record]]] = field(default_factory=dict)

    def run(self, include_deleted: bool = False) -> Page:
        self._by_parent.clear()
        rows = [
            r
            for r in self.source.rows(self.obj.name, include_deleted)
            if self.where is None or self.where(r)
        ]
        if self.count_only:
            return Page(_window(len(rows), self.query), [])
        if self.aggregates:
            result: dict[str, Any] = {"attributes": {"type": "AggregateResult"}}
            for alias, path in self.aggregates:
                result[alias] = sum(1 for r in rows if path.value(r, self.source) is not None)
            return Page(1, [result])
        rows = _sorted(rows, self.order, self.source)
        start = self.query.offset or 0
        stop = None if self.query.limit is None else start + self.query.limit
        rows = rows[start:stop]
        return Page(len(rows), [self._render(self.node, r) for r in rows])

    def _render(self, node: _Node, record: Record) -> dict[str, Any]:
        sobject = object_of(record["Id"]) or node.obj.name
        out: dict[str, Any] = {
            "attributes": {
                "type": sobject,
                "url": f"/services/data/v{self.version}/sobjects/{sobject}/{record['Id']}",
            }
        }
        for kind, payload in node.items:
            if kind == "field" and payload.type == "base64":  # the blob's URL, not its bytes
                out[payload.name] = blob_url(self.version, sobject, record["Id"], payload.name)
            elif kind == "field":
                out[payload.name] = render(payload, record.get(payload.name))
            elif kind == "parent":
                name = payload.relationship_name
                parent = _parent(record, payload, self.source)
                out[name] = None if parent is None else self._render(node.parents[name], parent)
            else:
                out[payload] = self._render_children(self.children[payload], record)
        return out

    def _render_children(self, spec: _Child, record: Record) -> dict[str, Any] | None:
        if spec.relationship not in self._by_parent:
            grouped: dict[str, list[Record]] = {}
            for row in self.source.rows(spec.child.name, False):
                parent_id = row.get(spec.parent_field)
                if parent_id is not None and (spec.where is None or spec.where(row)):
                    grouped.setdefault(parent_id, []).append(row)
            self._by_parent[spec.relationship] = grouped
        rows = self._by_parent[spec.relationship].get(record["Id"], [])
        rows = _sorted(rows, spec.order, self.source)[: spec.limit]
        if not rows:
            return None
        return {
            "totalSize": len(rows),
            "done": True,
            "records": [self._render(spec.node, r) for r in rows],
        }


def _window(count: int, query: Query) -> int:
    count = max(count - (query.offset or 0), 0)
    return count if query.limit is None else min(count, query.limit)


def compile_query(
    text: str, schema: Schema, source: RecordSource, today: date, version: str
) -> CompiledQuery:
    """Parse and resolve ``text``; raises SoqlError with Salesforce's code and message."""
    query = parse(text)
    obj = schema.get(query.sobject)
    if obj is None:
        raise SoqlError(
            "INVALID_TYPE",
            format_error(
                text,
                query.sobject_line,
                query.sobject_column,
                f"sObject type '{query.sobject}' is not supported. If you are attempting to use "
                "a custom object, be sure to append the '__c' after the entity name. Please "
                "reference your WSDL or the describe call for the appropriate names.",
            ),
        )
    if query.offset is not None and query.offset > MAX_OFFSET:
        raise SoqlError(
            "NUMBER_OUTSIDE_VALID_RANGE", f"Maximum SOQL offset allowed is {MAX_OFFSET}"
        )
    compiler = _Compiler(schema, text, today)
    node = _Node(obj)
    children: dict[str, _Child] = {}
    counts = [item for item in query.select if isinstance(item, CountExpr)]
    plain = [item for item in query.select if not isinstance(item, CountExpr)]
    compiled = CompiledQuery(query, obj, source, version, node, children, None, [])
    if counts:
        _compile_counts(compiled, counts, plain, schema, text)
    for item in plain:
        if isinstance(item, FieldRef):
            path = resolve_path(schema, obj, item, text)
            node.add_path(schema, path, path.lookups)
        else:
            spec = _compile_child(compiler, obj, item, source)
            children[spec.relationship] = spec
            node.items.append(("child", spec.relationship))
    if query.where is not None:
        compiled.where = compiler.condition(obj, query.where, source)
    compiled.order = [(resolve_path(schema, obj, o.field, text), o) for o in query.order]
    return compiled


def _compile_counts(
    compiled: CompiledQuery, counts: list[CountExpr], plain: list[Any], schema: Schema, text: str
) -> None:
    bare = [c for c in counts if c.field is None]
    if bare and (len(counts) > 1 or plain):
        c = bare[0]
        raise SoqlError(
            "MALFORMED_QUERY",
            format_error(text, c.line, c.column, "COUNT() cannot be used with other fields"),
        )
    if bare:
        compiled.count_only = True
        return
    if plain:
        first = plain[0]
        name = first.text if isinstance(first, FieldRef) else first.relationship
        raise SoqlError(
            "MALFORMED_QUERY",
            format_error(
                text, first.line, first.column, f"Field must be grouped or aggregated: {name}"
            ),
        )
    unnamed = 0
    for c in counts:
        assert c.field is not None
        path = resolve_path(schema, compiled.obj, c.field, text)
        alias = c.alias
        if alias is None:
            alias, unnamed = f"expr{unnamed}", unnamed + 1
        compiled.aggregates.append((alias, path))


def _compile_child(
    compiler: _Compiler, obj: ObjectDef, sub: SubQuery, source: RecordSource
) -> _Child:
    rel = obj.child(sub.relationship)
    if rel is None:
        raise SoqlError(
            "INVALID_TYPE",
            format_error(
                compiler.text,
                sub.line,
                sub.column,
                f"Didn't understand relationship '{sub.relationship}' in FROM part of query call. "
                "If you are attempting to use a custom relationship, be sure to append the '__r' "
                "after the custom relationship name. Please reference your WSDL or the describe "
                "call for the appropriate names.",
            ),
        )
    child_obj = compiler.schema[rel.child_sobject]
    node = _Node(child_obj)
    for ref in sub.fields:
        path = resolve_path(compiler.schema, child_obj, ref, compiler.text)
        node.add_path(compiler.schema, path, path.lookups)
    where = compiler.condition(child_obj, sub.where, source) if sub.where is not None else None
    order = [
        (resolve_path(compiler.schema, child_obj, o.field, compiler.text), o) for o in sub.order
    ]
    return _Child(rel.relationship_name, child_obj, rel.field, node, where, order, sub.limit)


__all__ = [
    "CompiledQuery",
    "Page",
    "RecordSource",
    "SoqlError",
    "compile_query",
    "date_literal_range",
    "no_such_column",
]
