"""The SuiteQL subset the sandbox's NetSuite ``suiteql`` endpoint understands.

``SELECT cols|* FROM table [WHERE cond (AND cond)*] [ORDER BY col [ASC|DESC], ...]`` with
``cond`` being ``col op literal`` (= != <> < <= > >=), ``col [NOT] IN (lit, ...)``,
``col IS [NOT] NULL`` or ``col LIKE 'pattern'`` (``%`` any run, ``_`` one character,
case-sensitive as in Oracle). Literals: 'string' (Oracle-style '' escapes), numbers,
``TO_TIMESTAMP('2026-10-01 00:00:00', 'YYYY-MM-DD HH24:MI:SS')`` and
``TO_DATE('2026-10-01', 'YYYY-MM-DD')``. Keywords and identifiers are case-insensitive and
answered lower-case, as NetSuite does. The grammar shared with SOQL comes from ``querylang``.

Wherever a column may stand (select list, WHERE, ORDER BY), ``TO_CHAR(col, 'format')`` may
stand instead, with Oracle's format elements YYYY, MM, DD, HH24, MI, SS, separators and
"quoted" literals; a select item may be named with ``[AS] alias``. An unnamed expression is
answered as ``expr1``, ``expr2``, ... .

SuiteQL answers every value as a string, so comparison converts the stored string to the
literal's type (number, timestamp or text) the way Oracle's implicit conversion would.

Dates and datetimes are answered in the account's date format preference (``M/D/YYYY`` by
default), a datetime cut to its date, unless the query formats them itself with ``TO_CHAR``:
that is why public SuiteQL connectors select ``TO_CHAR(lastmodifieddate, 'YYYY-MM-DD
HH24:MI:SS')`` (e.g. salto-io/salto PR #3308, "support different time formats in user
accounts"; NetSuite help "Using Datetime Fields", section_157305090645: only the REST record
service answers ISO 8601). Stored values stay ISO 8601 in UTC (the sandbox account's time zone).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
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


class SuiteQLError(QueryError):
    """A query NetSuite would reject (answered as 400 with ``o:errorCode``)."""

    def __init__(self, message: str, error_code: str = "INVALID_PARAMETER") -> None:
        super().__init__(message, error_code)


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
    {"SELECT", "FROM", "WHERE", "AND", "OR", "NOT", "IN", "IS", "NULL", "LIKE", "ORDER", "BY", "ASC", "DESC",
     "GROUP", "HAVING", "JOIN", "ON", "AS"}
)
# Oracle datetime format elements -> strptime directives; anything else in a format is an error.
_FORMAT_ELEMENTS = re.compile(r'YYYY|MM|DD|HH24|MI|SS|"[^"]*"|[-/:., T]', re.IGNORECASE)
_STRPTIME = {"YYYY": "%Y", "MM": "%m", "DD": "%d", "HH24": "%H", "MI": "%M", "SS": "%S"}
# How an expression column is keyed in conditions, sort items and select items.
_TO_CHAR_KEY = re.compile(r"^to_char\((\w+), '(.*)'\)$", re.DOTALL)
# Date format preferences (Home > Set Preferences > Date Format) the sandbox account can have.
DATE_FORMATS = {"M/D/YYYY": "{m}/{d}/{y}", "D/M/YYYY": "{d}/{m}/{y}", "MM/DD/YYYY": "{mm}/{dd}/{y}",
                "DD/MM/YYYY": "{dd}/{mm}/{y}", "DD.MM.YYYY": "{dd}.{mm}.{y}", "YYYY-MM-DD": "{y}-{mm}-{dd}"}
DEFAULT_DATE_FORMAT = "M/D/YYYY"


@dataclass(frozen=True)
class SuiteQLQuery:
    columns: tuple[str, ...]  # empty means ``*``; a TO_CHAR item is keyed ``to_char(col, 'fmt')``
    table: str
    conditions: tuple[Condition, ...] = ()
    order_by: tuple[OrderItem, ...] = ()
    names: tuple[str, ...] = ()  # the answer's name of each select item (alias, column or exprN)


def parse(text: str) -> SuiteQLQuery:
    """Parse a SuiteQL query; names come back lower-cased. Raises ``SuiteQLError``."""
    try:
        return _Parser(text).query()
    except QuerySyntaxError as exc:
        raise SuiteQLError(
            "Invalid search query. Detailed unprocessed description follows. "
            f"Search error occurred: Invalid or unsupported search. {exc.message} at position {exc.position}."
        ) from exc


class _Parser(ClauseParser):
    token_pattern = _TOKENS
    reserved = _RESERVED
    column_word = "a column name"
    source_word = "a table name"

    def query(self) -> SuiteQLQuery:
        self._aliases: list[str] = []
        select = self.select()
        self.s.expect_end()
        return SuiteQLQuery(select.names, select.source, select.conditions, select.order_by, tuple(self._aliases))

    def _name(self, what: str) -> str:
        return super()._name(what).lower()

    def _column(self) -> str:
        if self.s.peek().is_keyword("TO_CHAR"):
            start = self.s.advance()
            self.s.expect_punct("(")
            column = self._name(self.column_word)
            self.s.expect_punct(",")
            fmt = self._string_argument()
            self.s.expect_punct(")")
            _strptime_format(fmt, start.pos)  # only the supported format elements
            return f"to_char({column}, '{fmt}')"
        return super()._column()

    def _select_item(self) -> str:
        item = self._column()
        named = self.s.accept_keyword("AS") or (self.s.peek().kind == "name"
                                                 and self.s.peek().text.upper() not in self.reserved)
        if named:
            self._aliases.append(self._name("an alias"))
        elif _TO_CHAR_KEY.match(item) is None:
            self._aliases.append(item)
        else:  # an unnamed expression is answered as exprN
            self._aliases.append(f"expr{sum(1 for a in self._aliases if a.startswith('expr')) + 1}")
        return item

    @staticmethod
    def _unquote(text: str) -> str:
        return text[1:-1].replace("''", "'")

    def _select_list(self) -> tuple[str, ...]:
        return () if self.s.accept_punct("*") else self._comma_separated(self._select_item)

    def _dialect_condition(self, column: str) -> Condition | None:
        if self.s.accept_keyword("LIKE"):
            return Condition(column, "LIKE", (Literal("string", self._string_argument()),))
        if not self.s.accept_keyword("IS"):
            return None
        negated = bool(self.s.accept_keyword("NOT"))
        self.s.expect_keyword("NULL")
        return Condition(column, "IS NOT NULL" if negated else "IS NULL", ())

    def _dialect_literal(self, token: Token) -> Literal | None:
        if self.s.accept_keyword("TO_TIMESTAMP", "TO_DATE"):
            return Literal("datetime", self._conversion(token))
        return None

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
        return self._unquote(token.text)


def _strptime_format(fmt: str, position: int) -> str:
    parts, pos = [], 0
    while pos < len(fmt):
        match = _FORMAT_ELEMENTS.match(fmt, pos)
        if match is None:
            raise QuerySyntaxError(f"unsupported datetime format element in {fmt!r}", position)
        element = match.group()
        if element.startswith('"'):
            parts.append(element.strip('"').replace("%", "%%"))
        else:
            parts.append(_STRPTIME.get(element.upper(), element))
        pos = match.end()
    return "".join(parts)


# -- binding and evaluation -------------------------------------------------------------------


@dataclass(frozen=True)
class BoundSuiteQL:
    table: str
    columns: tuple[str, ...]  # the answer's columns; empty means every stored field (``*``)
    conditions: tuple[Condition, ...]
    order_by: tuple[OrderItem, ...]
    names: tuple[str, ...] = ()  # the answer's name of each column (defaults to the column)
    kinds: Mapping[str, str] | None = None  # column -> catalogue kind (date, datetime, ...)
    date_format: str = DEFAULT_DATE_FORMAT

    def matches(self, row: Mapping[str, Any]) -> bool:
        return all(condition_matches(cond, row) for cond in self.conditions)

    def sort(self, rows: list[dict]) -> list[dict]:
        # Oracle puts NULLs last under ASC (and first under DESC).
        keys = [(_order_key(item.field), item.descending) for item in self.order_by]
        return sort_rows(rows, keys, nulls_first=False)

    def project(self, row: Mapping[str, Any]) -> dict[str, Any]:
        """The answer's item: plain dates and datetimes in the account's date format."""
        if not self.columns:  # ``*``: every catalogued column the row has
            return {column: self._answer(column, value) for column, value in row.items()
                    if self.kinds is None or column in self.kinds}
        names = self.names or self.columns
        return {name: self._answer(column, value_of(row, column)) for name, column in zip(names, self.columns,
                                                                                          strict=True)}

    def _answer(self, column: str, value: Any) -> Any:
        kind = (self.kinds or {}).get(column)
        if kind in ("date", "datetime") and value not in (None, ""):
            return display_date(value, self.date_format)
        return value


def bind(query: SuiteQLQuery, tables: Mapping[str, Sequence[str] | Mapping[str, str]],
         date_format: str = DEFAULT_DATE_FORMAT) -> BoundSuiteQL:
    """Check ``query``'s table and columns against ``tables`` (table -> column names, or
    column -> kind when the catalogue knows the kinds)."""
    if query.table not in tables:
        raise SuiteQLError(
            "Invalid search query. Detailed unprocessed description follows. "
            f"Search error occurred: Record '{query.table}' was not found."
        )
    catalogue = tables[query.table]
    known = set(catalogue)
    used = [*query.columns, *(c.field for c in query.conditions), *(o.field for o in query.order_by)]
    unknown = next((column_of(name) for name in used if column_of(name) not in known), None)
    if unknown is not None:
        raise SuiteQLError(
            "Invalid search query. Detailed unprocessed description follows. "
            f"Search error occurred: Field '{unknown}' for record '{query.table}' was not found. "
            f"Reason: NOT_EXPOSED - Unknown identifier '{unknown}'."
        )
    kinds = dict(catalogue) if isinstance(catalogue, Mapping) else None
    return BoundSuiteQL(query.table, query.columns, query.conditions, query.order_by, query.names, kinds,
                        date_format)


def column_of(key: str) -> str:
    """The catalogue column behind a select/condition/sort key (``to_char(col, ...)`` -> col)."""
    match = _TO_CHAR_KEY.match(key)
    return match.group(1) if match else key


def value_of(row: Mapping[str, Any], key: str) -> Any:
    """A row's value for a key: the stored string, or ``TO_CHAR`` of it."""
    match = _TO_CHAR_KEY.match(key)
    if match is None:
        return row.get(key)
    return to_char(row.get(match.group(1)), match.group(2))


def to_char(value: Any, fmt: str) -> str | None:
    """Oracle ``TO_CHAR(datetime, fmt)`` of a stored ISO value (numbers and text pass through)."""
    if value is None or value == "":
        return None
    moment = timestamp_or_none(value)
    if moment is None:
        return str(value)
    return moment.strftime(_strptime_format(fmt, 0))


def display_date(value: Any, date_format: str = DEFAULT_DATE_FORMAT) -> str:
    """A stored ISO date or datetime in the account's date format (a datetime loses its time)."""
    moment = timestamp_or_none(value)
    if moment is None:
        return str(value)
    day = moment.date()
    pattern = DATE_FORMATS.get(date_format, DATE_FORMATS[DEFAULT_DATE_FORMAT])
    return pattern.format(y=f"{day.year:04d}", m=day.month, d=day.day, mm=f"{day.month:02d}", dd=f"{day.day:02d}")


def condition_matches(cond: Condition, row: Mapping[str, Any]) -> bool:
    value = value_of(row, cond.field)
    if value == "":
        value = None  # NetSuite has no empty strings: an empty field is NULL
    if cond.op == "IS NULL":
        return value is None
    if cond.op == "IS NOT NULL":
        return value is not None
    if cond.op == "LIKE":
        return value is not None and like_pattern(cond.literals[0].value).fullmatch(str(value)) is not None
    if cond.op in ("IN", "NOT IN"):
        found = any(compare(convert(value, lit.kind), "=", lit.value) for lit in cond.literals)
        return in_list(cond.op, value, found)
    literal = cond.literals[0]
    return compare(convert(value, literal.kind), cond.op, literal.value)


@functools.lru_cache(maxsize=256)
def like_pattern(pattern: str) -> re.Pattern[str]:
    """A LIKE pattern as a regex: ``%`` is any run of characters, ``_`` exactly one."""
    parts = "".join(".*" if ch == "%" else "." if ch == "_" else re.escape(ch) for ch in pattern)
    return re.compile(parts, re.DOTALL)


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
        return timestamp_or_none(value)
    return str(value)


def _order_key(column: str) -> Callable[[dict], Any]:
    # Every value is a string; numeric columns (ids, amounts) must still sort as numbers.
    def key(row: dict) -> Any:
        value = value_of(row, column)
        if value is None or value == "":
            return None
        number = convert(value, "number")
        return (0, number, "") if number is not None else (1, 0.0, str(value))

    return key
