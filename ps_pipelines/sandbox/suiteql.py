"""The SuiteQL subset the sandbox's NetSuite ``suiteql`` endpoint understands.

``SELECT cols|* FROM table [WHERE cond (AND cond)*] [ORDER BY col [ASC|DESC], ...]`` with
``cond`` being ``col op literal`` (= != <> < <= > >=), ``col [NOT] IN (lit, ...)`` or
``col IS [NOT] NULL``. Literals: 'string' (Oracle-style '' escapes), numbers,
``TO_TIMESTAMP('2026-10-01 00:00:00', 'YYYY-MM-DD HH24:MI:SS')`` and
``TO_DATE('2026-10-01', 'YYYY-MM-DD')``. Keywords and identifiers are case-insensitive and
answered lower-case, as NetSuite does.

SuiteQL answers every value as a string, so comparison converts the stored string to the
literal's type (number, timestamp or text) the way Oracle's implicit conversion would.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ps_pipelines.sandbox.soql import (
    Condition,
    Literal,
    OrderItem,
    QuerySyntaxError,
    Token,
    TokenStream,
    compare,
    parse_timestamp,
    sort_rows,
    tokenize,
)


class SuiteQLError(Exception):
    """A query NetSuite would reject (answered as 400 with ``o:errorCode``)."""

    def __init__(self, message: str, error_code: str = "INVALID_PARAMETER") -> None:
        super().__init__(message)
        self.message = message
        self.error_code = error_code


_TOKENS = re.compile(
    r"""
    (?P<space>\s+)
    |(?P<number>[+-]?\d+(?:\.\d+)?)
    |(?P<string>'(?:[^']|'')*')
    |(?P<op>!=|<>|<=|>=|=|<|>)
    |(?P<punct>[(),*])
    |(?P<name>[A-Za-z_][A-Za-z0-9_]*)
    """,
    re.VERBOSE,
)
_RESERVED = frozenset(
    {"SELECT", "FROM", "WHERE", "AND", "OR", "NOT", "IN", "IS", "NULL", "ORDER", "BY", "ASC", "DESC",
     "GROUP", "HAVING", "JOIN", "ON"}
)
# Oracle datetime format elements -> strptime directives; anything else in a format is an error.
_FORMAT_ELEMENTS = re.compile(r'YYYY|MM|DD|HH24|MI|SS|"[^"]*"|[-/:., T]')
_STRPTIME = {"YYYY": "%Y", "MM": "%m", "DD": "%d", "HH24": "%H", "MI": "%M", "SS": "%S"}


@dataclass(frozen=True)
class SuiteQLQuery:
    columns: tuple[str, ...]  # empty means ``*``
    table: str
    conditions: tuple[Condition, ...] = ()
    order_by: tuple[OrderItem, ...] = ()


def parse(text: str) -> SuiteQLQuery:
    """Parse a SuiteQL query; names come back lower-cased. Raises ``SuiteQLError``."""
    try:
        return _Parser(TokenStream(tokenize(text, _TOKENS))).query()
    except QuerySyntaxError as exc:
        raise SuiteQLError(
            "Invalid search query. Detailed unprocessed description follows. "
            f"Search error occurred: Invalid or unsupported search. {exc.message} at position {exc.position}."
        ) from exc


class _Parser:
    def __init__(self, stream: TokenStream) -> None:
        self.s = stream

    def _name(self, what: str) -> str:
        return self.s.expect_name(what, _RESERVED).lower()

    def query(self) -> SuiteQLQuery:
        self.s.expect_keyword("SELECT")
        columns = self._columns()
        self.s.expect_keyword("FROM")
        table = self._name("a table name")
        conditions = self._where() if self.s.accept_keyword("WHERE") else ()
        order_by = self._order_by() if self.s.accept_keyword("ORDER") else ()
        self.s.expect_end()
        return SuiteQLQuery(columns, table, conditions, order_by)

    def _columns(self) -> tuple[str, ...]:
        if self.s.accept_punct("*"):
            return ()
        columns = [self._name("a column name")]
        while self.s.accept_punct(","):
            columns.append(self._name("a column name"))
        return tuple(columns)

    def _where(self) -> tuple[Condition, ...]:
        conditions = [self._condition()]
        while self.s.accept_keyword("AND"):
            conditions.append(self._condition())
        if self.s.peek().is_keyword("OR"):
            raise self.s.error("AND (OR is not supported by the sandbox)")
        return tuple(conditions)

    def _condition(self) -> Condition:
        column = self._name("a column name")
        if self.s.accept_keyword("IS"):
            negated = bool(self.s.accept_keyword("NOT"))
            self.s.expect_keyword("NULL")
            return Condition(column, "IS NOT NULL" if negated else "IS NULL", ())
        if self.s.accept_keyword("NOT"):
            self.s.expect_keyword("IN")
            return Condition(column, "NOT IN", self._literal_list())
        if self.s.accept_keyword("IN"):
            return Condition(column, "IN", self._literal_list())
        token = self.s.peek()
        if token.kind != "op":
            raise self.s.error("a comparison operator")
        self.s.advance()
        return Condition(column, "!=" if token.text == "<>" else token.text, (self._literal(),))

    def _literal_list(self) -> tuple[Literal, ...]:
        self.s.expect_punct("(")
        literals = [self._literal()]
        while self.s.accept_punct(","):
            literals.append(self._literal())
        self.s.expect_punct(")")
        return tuple(literals)

    def _literal(self) -> Literal:
        token = self.s.peek()
        if token.kind == "string":
            self.s.advance()
            return Literal("string", _unquote(token.text))
        if token.kind == "number":
            self.s.advance()
            return Literal("number", float(token.text))
        function = self.s.accept_keyword("TO_TIMESTAMP", "TO_DATE")
        if function:
            return Literal("datetime", self._conversion(token))
        raise self.s.error("a literal value")

    def _conversion(self, start: Token) -> datetime:
        self.s.expect_punct("(")
        value = self._string_argument()
        self.s.expect_punct(",")
        fmt = self._string_argument()
        self.s.expect_punct(")")
        try:
            return datetime.strptime(value, _strptime_format(fmt, start.pos)).replace(tzinfo=UTC)
        except ValueError as exc:
            raise QuerySyntaxError(f"{value!r} does not match format {fmt!r}", start.pos) from exc

    def _string_argument(self) -> str:
        token = self.s.peek()
        if token.kind != "string":
            raise self.s.error("a string argument")
        self.s.advance()
        return _unquote(token.text)

    def _order_by(self) -> tuple[OrderItem, ...]:
        self.s.expect_keyword("BY")
        items = [self._order_item()]
        while self.s.accept_punct(","):
            items.append(self._order_item())
        return tuple(items)

    def _order_item(self) -> OrderItem:
        column = self._name("a column name")
        return OrderItem(column, descending=self.s.accept_keyword("ASC", "DESC") == "DESC")


def _unquote(text: str) -> str:
    return text[1:-1].replace("''", "'")


def _strptime_format(fmt: str, position: int) -> str:
    parts, pos = [], 0
    while pos < len(fmt):
        match = _FORMAT_ELEMENTS.match(fmt, pos)
        if match is None:
            raise QuerySyntaxError(f"unsupported datetime format element in {fmt!r}", position)
        element = match.group()
        parts.append(_STRPTIME.get(element, element.strip('"') if element.startswith('"') else element))
        pos = match.end()
    return "".join(parts)


# -- binding and evaluation -------------------------------------------------------------------


@dataclass(frozen=True)
class BoundSuiteQL:
    table: str
    columns: tuple[str, ...]  # the answer's columns; empty means every stored field (``*``)
    conditions: tuple[Condition, ...]
    order_by: tuple[OrderItem, ...]

    def matches(self, row: Mapping[str, Any]) -> bool:
        return all(condition_matches(cond, row) for cond in self.conditions)

    def sort(self, rows: list[dict]) -> list[dict]:
        # Oracle puts NULLs last under ASC (and first under DESC).
        keys = [(_order_key(item.field), item.descending) for item in self.order_by]
        return sort_rows(rows, keys, nulls_first=False)

    def project(self, row: Mapping[str, Any]) -> dict[str, Any]:
        if not self.columns:
            return dict(row)
        return {column: row.get(column) for column in self.columns}


def bind(query: SuiteQLQuery, tables: Mapping[str, Sequence[str]]) -> BoundSuiteQL:
    """Check ``query``'s table and columns against ``tables`` (table -> column names)."""
    if query.table not in tables:
        raise SuiteQLError(
            "Invalid search query. Detailed unprocessed description follows. "
            f"Search error occurred: Record '{query.table}' was not found."
        )
    known = set(tables[query.table])
    used = [*query.columns, *(c.field for c in query.conditions), *(o.field for o in query.order_by)]
    unknown = next((name for name in used if name not in known), None)
    if unknown is not None:
        raise SuiteQLError(
            "Invalid search query. Detailed unprocessed description follows. "
            f"Search error occurred: Field '{unknown}' for record '{query.table}' was not found. "
            f"Reason: NOT_EXPOSED - Unknown identifier '{unknown}'."
        )
    return BoundSuiteQL(query.table, query.columns, query.conditions, query.order_by)


def condition_matches(cond: Condition, row: Mapping[str, Any]) -> bool:
    value = row.get(cond.field)
    if value == "":
        value = None  # NetSuite has no empty strings: an empty field is NULL
    if cond.op == "IS NULL":
        return value is None
    if cond.op == "IS NOT NULL":
        return value is not None
    if cond.op in ("IN", "NOT IN"):
        found = any(compare(convert(value, lit.kind), "=", lit.value) for lit in cond.literals)
        return found if cond.op == "IN" else (value is not None and not found)
    literal = cond.literals[0]
    return compare(convert(value, literal.kind), cond.op, literal.value)


def convert(value: Any, kind: str) -> Any:
    """A stored SuiteQL value (a string) in the type of the literal it is compared with."""
    if value is None:
        return None
    if kind == "number":
        try:
            return float(value)
        except (TypeError, ValueError):
            return None
    if kind == "datetime":
        return parse_timestamp(value)
    return str(value)


def _order_key(column: str) -> Callable[[dict], Any]:
    # Every value is a string; numeric columns (ids, amounts) must still sort as numbers.
    def key(row: dict) -> Any:
        value = row.get(column)
        if value is None or value == "":
            return None
        number = convert(value, "number")
        return (0, number, "") if number is not None else (1, 0.0, str(value))

    return key
