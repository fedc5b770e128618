"""The SOQL subset the sandbox's Salesforce ``query`` endpoint understands.

``SELECT f1, f2 FROM Object [WHERE cond (AND cond)*] [ORDER BY f [ASC|DESC], ...] [LIMIT n]``
with ``cond`` being ``field op literal`` (= != <> < <= > >=) or ``field [NOT] IN (lit, ...)``.

The grammar shared with SuiteQL comes from ``querylang``; this module adds SOQL's tokens and
literals (backslash escapes, bare dates and dateTimes, TRUE/FALSE/NULL) and ``LIMIT``, then a
binding step that resolves field names against an object's field catalogue and checks literal
types the way Salesforce does (a quoted value against a dateTime field is an error there, so it
is an error here too).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from ps_sandbox.querylang import (
    ClauseParser,
    Condition,
    Literal,
    OrderItem,
    QueryError,
    QuerySyntaxError,
    Token,
    compare,
    in_list,
    sort_rows,
    timestamp_or_none,
)


class SoqlError(QueryError):
    """A query Salesforce would reject; ``error_code`` is its REST ``errorCode``."""


_SOQL_TOKENS = re.compile(
    r"""
    (?P<space>\s+)
    |(?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2}))
    |(?P<date>\d{4}-\d{2}-\d{2})
    |(?P<number>[+-]?\d+(?:\.\d+)?)
    |(?P<string>'(?:[^'\\]|\\.)*')
    |(?P<op>!=|<>|<=|>=|=|<|>)
    |(?P<punct>[(),])
    |(?P<name>[A-Za-z_][A-Za-z0-9_.]*)
    """,
    re.VERBOSE,
)
_RESERVED = frozenset(
    {"SELECT", "FROM", "WHERE", "AND", "OR", "NOT", "IN", "ORDER", "BY", "ASC", "DESC", "LIMIT", "NULL",
     "TRUE", "FALSE", "LIKE", "GROUP", "HAVING", "OFFSET"}
)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f"}


@dataclass(frozen=True)
class SoqlQuery:
    fields: tuple[str, ...]
    sobject: str
    conditions: tuple[Condition, ...] = ()
    order_by: tuple[OrderItem, ...] = ()
    limit: int | None = None


def parse(text: str) -> SoqlQuery:
    """Parse a SOQL query; raises ``SoqlError`` with ``MALFORMED_QUERY`` on bad syntax."""
    try:
        return _Parser(text).query()
    except QuerySyntaxError as exc:
        raise SoqlError(f"{exc.message} at position {exc.position}", "MALFORMED_QUERY") from exc


class _Parser(ClauseParser):
    token_pattern = _SOQL_TOKENS
    reserved = _RESERVED

    def query(self) -> SoqlQuery:
        select = self.select()
        limit = self._limit() if self.s.accept_keyword("LIMIT") else None
        self.s.expect_end()
        return SoqlQuery(select.names, select.source, select.conditions, select.order_by, limit)

    @staticmethod
    def _unquote(text: str) -> str:
        return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(1)), text[1:-1])

    def _dialect_literal(self, token: Token) -> Literal | None:
        if token.kind == "date":
            self.s.advance()
            return Literal("date", _parse_date(token))
        if token.kind == "datetime":
            self.s.advance()
            return Literal("datetime", _parse_datetime(token))
        keyword = self.s.accept_keyword("TRUE", "FALSE", "NULL")
        if keyword == "NULL":
            return Literal("null", None)
        if keyword:
            return Literal("boolean", keyword == "TRUE")
        return None

    def _limit(self) -> int:
        token = self.s.peek()
        if token.kind != "number" or not token.text.isdigit():
            raise self.s.error("a non-negative integer")
        self.s.advance()
        return int(token.text)


def _parse_date(token: Token) -> date:
    try:
        return date.fromisoformat(token.text)
    except ValueError as exc:
        raise QuerySyntaxError(f"invalid date {token.text!r}", token.pos) from exc


def _parse_datetime(token: Token) -> datetime:
    moment = timestamp_or_none(token.text)
    if moment is None:
        raise QuerySyntaxError(f"invalid dateTime {token.text!r}", token.pos)
    return moment


# -- binding: resolve names, check types, evaluate -------------------------------------------

# Salesforce field type -> the literal kind a filter on it must use.
_LITERAL_KIND = {"id": "string", "string": "string", "double": "number", "boolean": "boolean", "date": "date",
                 "datetime": "datetime"}
_TYPE_LABEL = {"id": "id", "string": "string", "double": "double", "boolean": "boolean", "date": "date",
               "datetime": "dateTime"}


@dataclass(frozen=True)
class FieldInfo:
    """One SObject field: canonical spelling and Salesforce type (id, string, double, boolean, date,
    datetime). ``id`` fields compare exactly; ``string`` fields case-insensitively."""

    name: str
    type: str


@dataclass(frozen=True)
class BoundCondition:
    field: FieldInfo
    op: str
    values: tuple[Any, ...]  # literal values, already in the comparable form of ``field.type``

    def matches(self, record: Mapping[str, Any]) -> bool:
        value = comparable(self.field.type, record.get(self.field.name))
        if self.op in ("IN", "NOT IN"):
            return in_list(self.op, value, value in self.values)
        target = self.values[0]
        if target is None:  # ``= null`` / ``!= null`` are the only meaningful null tests
            return (value is None) if self.op == "=" else (value is not None and self.op == "!=")
        return compare(value, self.op, target)


@dataclass(frozen=True)
class BoundQuery:
    sobject: str
    fields: tuple[FieldInfo, ...]
    conditions: tuple[BoundCondition, ...]
    order_by: tuple[tuple[FieldInfo, bool], ...]
    limit: int | None

    def matches(self, record: Mapping[str, Any]) -> bool:
        return all(cond.matches(record) for cond in self.conditions)

    def sort(self, records: list[dict]) -> list[dict]:
        keys = [(_value_getter(info), descending) for info, descending in self.order_by]
        return sort_rows(records, keys, nulls_first=True)

    def conditions_on(self, field_name: str) -> list[BoundCondition]:
        return [c for c in self.conditions if c.field.name == field_name]

    def project(self, record: Mapping[str, Any]) -> dict[str, Any]:
        return {info.name: record.get(info.name) for info in self.fields}


def _value_getter(info: FieldInfo) -> Callable[[dict], Any]:
    return lambda record: comparable(info.type, record.get(info.name))


def bind(query: SoqlQuery, objects: Mapping[str, Mapping[str, FieldInfo]]) -> BoundQuery:
    """Resolve ``query`` against ``objects`` (object name -> lower-cased field name -> info).

    Object and field names are case-insensitive; the answer uses their canonical spelling.
    """
    sobject = _resolve_object(query.sobject, objects)
    catalogue = objects[sobject]

    def field(name: str) -> FieldInfo:
        info = catalogue.get(name.lower())
        if info is None:
            raise SoqlError(f"No such column '{name}' on entity '{sobject}'. If you are attempting to use a "
                            "custom field, be sure to append the '__c' after the custom field name.",
                            "INVALID_FIELD")
        return info

    fields = tuple(field(name) for name in query.fields)
    seen: set[str] = set()
    for info in fields:
        if info.name in seen:
            raise SoqlError(f"duplicate field selected: {info.name}", "MALFORMED_QUERY")
        seen.add(info.name)
    conditions = tuple(_bind_condition(field(c.field), c) for c in query.conditions)
    order_by = tuple((field(item.field), item.descending) for item in query.order_by)
    return BoundQuery(sobject, fields, conditions, order_by, query.limit)


def _resolve_object(name: str, objects: Mapping[str, Any]) -> str:
    for candidate in objects:
        if candidate.lower() == name.lower():
            return candidate
    raise SoqlError(f"sObject type '{name}' is not supported.", "INVALID_TYPE")


def _bind_condition(info: FieldInfo, cond: Condition) -> BoundCondition:
    expected = _LITERAL_KIND[info.type]
    for literal in cond.literals:
        if literal.kind == "null":
            if cond.op not in ("=", "!=", "IN", "NOT IN"):
                raise SoqlError(f"invalid operator on null for field '{info.name}'", "MALFORMED_QUERY")
            continue
        if literal.kind != expected:
            quoting = "be enclosed in quotes" if expected == "string" else "not be enclosed in quotes"
            raise SoqlError(f"value of filter criterion for field '{info.name}' must be of type "
                            f"{_TYPE_LABEL[info.type]} and should {quoting}", "INVALID_FIELD")
    values = tuple(_literal_comparable(info.type, literal) for literal in cond.literals)
    return BoundCondition(info, cond.op, values)


def _literal_comparable(field_type: str, literal: Literal) -> Any:
    if literal.value is None:
        return None
    if field_type == "string":
        return literal.value.casefold()
    return literal.value


def comparable(field_type: str, value: Any) -> Any:
    """A stored field value in the form its type compares by (SOQL text matching is
    case-insensitive); unparseable stored values become ``None``."""
    if value is None:
        return None
    try:
        if field_type == "id":
            return str(value)
        if field_type == "string":
            return str(value).casefold()
        if field_type == "double":
            return float(value)
        if field_type == "boolean":
            return value if isinstance(value, bool) else str(value).lower() == "true"
        if field_type == "date":
            return date.fromisoformat(str(value)[:10])
    except ValueError:
        return None
    return timestamp_or_none(value)
