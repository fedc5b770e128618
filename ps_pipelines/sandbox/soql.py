"""The SOQL subset the sandbox's Salesforce ``query`` endpoint understands.

``SELECT f1, f2 FROM Object [WHERE cond (AND cond)*] [ORDER BY f [ASC|DESC], ...] [LIMIT n]``
with ``cond`` being ``field op literal`` (= != <> < <= > >=) or ``field [NOT] IN (lit, ...)``.

A tokenizer plus a recursive-descent parser, then a binding step that resolves field names
against an object's field catalogue and checks literal types the way Salesforce does (a
quoted value against a dateTime field is an error there, so it is an error here too).

The token stream, condition and comparison helpers at the top are shared with
``suiteql.py``: the two dialects differ in literals and functions, not in structure.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

# ---------------------------------------------------------------------------------------------
# Shared toolkit (also used by suiteql.py)
# ---------------------------------------------------------------------------------------------


class QuerySyntaxError(ValueError):
    """A query that does not parse; ``position`` is the character offset of the problem."""

    def __init__(self, message: str, position: int) -> None:
        super().__init__(message)
        self.message = message
        self.position = position


@dataclass(frozen=True)
class Token:
    kind: str  # the lexer group name: name, string, number, op, punct, ... or "end"
    text: str
    pos: int

    def is_keyword(self, *words: str) -> bool:
        return self.kind == "name" and self.text.upper() in words


def tokenize(text: str, pattern: re.Pattern[str]) -> list[Token]:
    """Split ``text`` with a master regex of named groups; group ``space`` is skipped."""
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        match = pattern.match(text, pos)
        if match is None or match.end() == pos:
            raise QuerySyntaxError(f"unexpected character {text[pos]!r}", pos)
        if match.lastgroup != "space":
            tokens.append(Token(match.lastgroup or "", match.group(), pos))
        pos = match.end()
    tokens.append(Token("end", "", len(text)))
    return tokens


class TokenStream:
    """Cursor over tokens with the accept/expect helpers a recursive-descent parser needs."""

    def __init__(self, tokens: Sequence[Token]) -> None:
        self._tokens = tokens
        self._index = 0

    def peek(self) -> Token:
        return self._tokens[self._index]

    def advance(self) -> Token:
        token = self._tokens[self._index]
        if token.kind != "end":
            self._index += 1
        return token

    def error(self, expected: str) -> QuerySyntaxError:
        token = self.peek()
        found = "end of query" if token.kind == "end" else repr(token.text)
        return QuerySyntaxError(f"expecting {expected}, unexpected token: {found}", token.pos)

    def accept_keyword(self, *words: str) -> str | None:
        if self.peek().is_keyword(*words):
            return self.advance().text.upper()
        return None

    def expect_keyword(self, word: str) -> None:
        if not self.accept_keyword(word):
            raise self.error(f"'{word}'")

    def accept_punct(self, char: str) -> bool:
        if self.peek().kind == "punct" and self.peek().text == char:
            self.advance()
            return True
        return False

    def expect_punct(self, char: str) -> None:
        if not self.accept_punct(char):
            raise self.error(f"'{char}'")

    def expect_name(self, what: str, reserved: Iterable[str] = ()) -> str:
        token = self.peek()
        if token.kind != "name" or token.text.upper() in reserved:
            raise self.error(what)
        return self.advance().text

    def expect_end(self) -> None:
        if self.peek().kind != "end":
            raise self.error("end of query")


@dataclass(frozen=True)
class Literal:
    kind: str  # string, number, boolean, null, date, datetime
    value: Any


@dataclass(frozen=True)
class Condition:
    field: str
    op: str  # = != < <= > >= IN NOT IN (SuiteQL adds IS NULL / IS NOT NULL)
    literals: tuple[Literal, ...]


@dataclass(frozen=True)
class OrderItem:
    field: str
    descending: bool = False


_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "=": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
COMPARISON_OPERATORS = frozenset(_COMPARE)


def compare(left: Any, op: str, right: Any) -> bool:
    """SQL-style comparison: anything against a missing value is false."""
    if left is None or right is None:
        return False
    try:
        return _COMPARE[op](left, right)
    except TypeError:  # e.g. a malformed stored value against a typed literal
        return False


SortKey = tuple[Callable[[dict], Any], bool]


def sort_rows(rows: list[dict], keys: Sequence[SortKey], nulls_first: bool) -> list[dict]:
    """Multi-key sort; each key is ``(value_of(row), descending)``. Nulls sort as the lowest value
    when ``nulls_first`` (so they come last under DESC), else as the highest."""

    def wrap(value_of: Callable[[dict], Any]) -> Callable[[dict], tuple]:
        def key(row: dict) -> tuple:
            value = value_of(row)
            if value is None:
                return (0 if nulls_first else 2,)
            return (1, value)

        return key

    # Python's sort is stable, so sorting by the last key first yields the combined order.
    for value_of, descending in reversed(keys):
        rows.sort(key=wrap(value_of), reverse=descending)
    return rows


def parse_timestamp(text: Any) -> datetime | None:
    """A stored timestamp or date string as an aware UTC datetime (``None`` if it is not one)."""
    if not isinstance(text, str) or not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def time_bounds(comparisons: Iterable[tuple[str, datetime]]) -> tuple[datetime | None, bool, datetime | None]:
    """The tightest ``(lower, lower_inclusive, upper)`` window that ``(op, moment)`` comparisons on
    one timestamp column imply; ``upper`` is inclusive, so a ``<`` bound only narrows it."""
    lower: datetime | None = None
    inclusive = True
    upper: datetime | None = None
    for op, value in comparisons:
        if op in (">=", ">") and (lower is None or value > lower or (value == lower and op == ">")):
            lower, inclusive = value, op == ">="
        elif op in ("<=", "<") and (upper is None or value < upper):
            upper = value
    return lower, inclusive, upper


# ---------------------------------------------------------------------------------------------
# SOQL
# ---------------------------------------------------------------------------------------------


class SoqlError(Exception):
    """A query Salesforce would reject; ``error_code`` is its REST ``errorCode``."""

    def __init__(self, message: str, error_code: str) -> None:
        super().__init__(message)
        self.message = message
        self.error_code = error_code


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
        return _Parser(TokenStream(tokenize(text, _SOQL_TOKENS))).query()
    except QuerySyntaxError as exc:
        raise SoqlError(f"{exc.message} at position {exc.position}", "MALFORMED_QUERY") from exc


class _Parser:
    def __init__(self, stream: TokenStream) -> None:
        self.s = stream

    def query(self) -> SoqlQuery:
        self.s.expect_keyword("SELECT")
        fields = self._field_list()
        self.s.expect_keyword("FROM")
        sobject = self.s.expect_name("an object name", _RESERVED)
        conditions = self._where() if self.s.accept_keyword("WHERE") else ()
        order_by = self._order_by() if self.s.accept_keyword("ORDER") else ()
        limit = self._limit() if self.s.accept_keyword("LIMIT") else None
        self.s.expect_end()
        return SoqlQuery(fields, sobject, conditions, order_by, limit)

    def _field_list(self) -> tuple[str, ...]:
        fields = [self.s.expect_name("a field name", _RESERVED)]
        while self.s.accept_punct(","):
            fields.append(self.s.expect_name("a field name", _RESERVED))
        return tuple(fields)

    def _where(self) -> tuple[Condition, ...]:
        conditions = [self._condition()]
        while self.s.accept_keyword("AND"):
            conditions.append(self._condition())
        if self.s.peek().is_keyword("OR"):
            raise self.s.error("AND (OR is not supported by the sandbox)")
        return tuple(conditions)

    def _condition(self) -> Condition:
        field = self.s.expect_name("a field name", _RESERVED)
        if self.s.accept_keyword("NOT"):
            self.s.expect_keyword("IN")
            return Condition(field, "NOT IN", self._literal_list())
        if self.s.accept_keyword("IN"):
            return Condition(field, "IN", self._literal_list())
        token = self.s.peek()
        if token.kind != "op":
            raise self.s.error("a comparison operator")
        self.s.advance()
        op = "!=" if token.text == "<>" else token.text
        return Condition(field, op, (self._literal(),))

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
        raise self.s.error("a literal value")

    def _order_by(self) -> tuple[OrderItem, ...]:
        self.s.expect_keyword("BY")
        items = [self._order_item()]
        while self.s.accept_punct(","):
            items.append(self._order_item())
        return tuple(items)

    def _order_item(self) -> OrderItem:
        field = self.s.expect_name("a field name", _RESERVED)
        direction = self.s.accept_keyword("ASC", "DESC")
        return OrderItem(field, descending=direction == "DESC")

    def _limit(self) -> int:
        token = self.s.peek()
        if token.kind != "number" or not token.text.isdigit():
            raise self.s.error("a non-negative integer")
        self.s.advance()
        return int(token.text)


def _unquote(text: str) -> str:
    body = text[1:-1]
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(1)), body)


def _parse_date(token: Token) -> date:
    try:
        return date.fromisoformat(token.text)
    except ValueError as exc:
        raise QuerySyntaxError(f"invalid date {token.text!r}", token.pos) from exc


def _parse_datetime(token: Token) -> datetime:
    moment = parse_timestamp(token.text)
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
            found = value in self.values
            return found if self.op == "IN" else (value is not None and not found)
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
    return parse_timestamp(value)
