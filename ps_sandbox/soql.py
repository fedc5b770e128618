"""The SOQL subset the sandbox's Salesforce ``query`` endpoint understands.

``SELECT f1, f2 FROM Object [WHERE cond (AND cond)*] [ORDER BY f [ASC|DESC], ...] [LIMIT n]``
with ``cond`` being ``field op literal`` (= != <> < <= > >=) or ``field [NOT] IN (lit, ...)``;
``SELECT COUNT() FROM ...``; parent relationship fields (``Account.Name``) anywhere a field may
stand; and the relative date literals (``TODAY``, ``LAST_N_DAYS:7``, ...).

References (SOQL and SOSL Reference, developer.salesforce.com/docs/atlas.en-us.soql_sosl.meta/):
"Date Formats and Date Literals in WHERE" (``sforce_api_calls_soql_select_dateformats.htm``),
"COUNT()" (``sforce_api_calls_soql_select_count.htm``) and "Using Relationship Queries"
(``sforce_api_calls_soql_relationships_query_using.htm``).

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
from datetime import UTC, date, datetime, timedelta
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
    |(?P<nliteral>[A-Za-z_]+:\d+)
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

# Date literals ("Date Formats and Date Literals in WHERE"): each names a range of whole days
# relative to today, [first day, day after the last). Days are in the querying user's time zone
# and weeks start on Sunday (the en_US locale); the sandbox's run-as user works in UTC.
_DATE_LITERALS = frozenset({"YESTERDAY", "TODAY", "TOMORROW", "LAST_WEEK", "THIS_WEEK", "NEXT_WEEK",
                            "LAST_MONTH", "THIS_MONTH", "NEXT_MONTH", "LAST_90_DAYS", "NEXT_90_DAYS",
                            "THIS_YEAR", "LAST_YEAR", "NEXT_YEAR"})
_N_DATE_LITERALS = frozenset({"LAST_N_DAYS", "NEXT_N_DAYS", "N_DAYS_AGO", "LAST_N_WEEKS", "NEXT_N_WEEKS"})


@dataclass(frozen=True)
class SoqlQuery:
    fields: tuple[str, ...]  # empty for ``SELECT COUNT()``
    sobject: str
    conditions: tuple[Condition, ...] = ()
    order_by: tuple[OrderItem, ...] = ()
    limit: int | None = None
    count: bool = False  # ``SELECT COUNT() FROM ...``: the answer is totalSize alone


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
        return SoqlQuery(select.names, select.source, select.conditions, select.order_by, limit,
                         count=not select.names)

    def _select_list(self) -> tuple[str, ...]:
        # ``COUNT()`` stands alone in the SELECT list ("COUNT()" in the SOQL reference).
        if self.s.peek().is_keyword("COUNT"):
            self.s.advance()
            self.s.expect_punct("(")
            if not self.s.accept_punct(")"):
                raise self.s.error("')' (the sandbox supports COUNT() but not COUNT(fieldName))")
            return ()
        return self._column_list()

    @staticmethod
    def _unquote(text: str) -> str:
        return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(1)), text[1:-1])

    def _dialect_literal(self, token: Token) -> Literal | None:
        if token.kind == "nliteral":
            name, _, number = token.text.partition(":")
            if name.upper() not in _N_DATE_LITERALS:
                raise QuerySyntaxError(f"unknown date literal {token.text!r}", token.pos)
            self.s.advance()
            return Literal("dateliteral", (name.upper(), int(number)))
        if token.kind == "name" and token.text.upper() in _DATE_LITERALS:
            self.s.advance()
            return Literal("dateliteral", (token.text.upper(), None))
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
    """One SObject field: canonical spelling and the type it compares as (id, string, double, boolean,
    date, datetime). ``id`` fields compare exactly; ``string`` fields case-insensitively.

    A lookup field names the object it points to and its relationship name (``AccountId`` ->
    ``Account``), through which a query reaches the parent's fields (``Account.Name``).
    """

    name: str
    type: str
    reference_to: str | None = None
    relationship_name: str | None = None


@dataclass(frozen=True)
class ParentPath:
    """How a parent relationship field (``Account.Owner.Name``) is reached: the lookup fields to
    follow, each with the object it points to, then the field read on the last parent."""

    steps: tuple[tuple[FieldInfo, str], ...]  # (lookup field, object it points to), child first
    field: FieldInfo  # on the last parent

    @property
    def relationship_names(self) -> tuple[str, ...]:
        return tuple(str(lookup.relationship_name) for lookup, _ in self.steps)


@dataclass(frozen=True)
class BoundCondition:
    field: FieldInfo
    op: str  # = != < <= > >= IN NOT IN, or OUTSIDE (a date literal's complement: values = start, end)
    values: tuple[Any, ...]  # literal values, already in the comparable form of ``field.type``

    def matches(self, record: Mapping[str, Any]) -> bool:
        value = comparable(self.field.type, record.get(self.field.name))
        if self.op in ("IN", "NOT IN"):
            return in_list(self.op, value, value in self.values)
        if self.op == "OUTSIDE":
            return value is not None and (compare(value, "<", self.values[0]) or compare(value, ">=", self.values[1]))
        target = self.values[0]
        if target is None:  # ``= null`` / ``!= null`` are the only meaningful null tests
            return (value is None) if self.op == "=" else (value is not None and self.op == "!=")
        return compare(value, self.op, target)


@dataclass(frozen=True)
class BoundQuery:
    sobject: str
    fields: tuple[FieldInfo, ...]  # parent fields are named by their path, e.g. ``Account.Name``
    conditions: tuple[BoundCondition, ...]
    order_by: tuple[tuple[FieldInfo, bool], ...]
    limit: int | None
    count: bool = False
    parents: Mapping[str, ParentPath] | None = None  # path name -> how to read it

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


def bind(query: SoqlQuery, objects: Mapping[str, Mapping[str, FieldInfo]], today: date | None = None) -> BoundQuery:
    """Resolve ``query`` against ``objects`` (object name -> lower-cased field name -> info).

    Object and field names are case-insensitive; the answer uses their canonical spelling.
    ``today`` anchors the relative date literals (the sandbox's clock; the wall clock if None).
    """
    sobject = _resolve_object(query.sobject, objects)
    parents: dict[str, ParentPath] = {}

    def field(name: str) -> FieldInfo:
        if "." in name:
            path = _parent_path(sobject, name, objects)
            canonical = ".".join((*path.relationship_names, path.field.name))
            parents[canonical] = path
            return FieldInfo(canonical, path.field.type)
        return _field(sobject, objects[sobject], name)

    fields = tuple(field(name) for name in query.fields)
    seen: set[str] = set()
    for info in fields:
        if info.name in seen:
            raise SoqlError(f"duplicate field selected: {info.name}", "MALFORMED_QUERY")
        seen.add(info.name)
    anchor = today or date.today()
    conditions = tuple(bound for c in query.conditions for bound in _bind_condition(field(c.field), c, anchor))
    order_by = tuple((field(item.field), item.descending) for item in query.order_by)
    return BoundQuery(sobject, fields, conditions, order_by, query.limit, query.count, parents)


def _field(sobject: str, catalogue: Mapping[str, FieldInfo], name: str) -> FieldInfo:
    info = catalogue.get(name.lower())
    if info is None:
        raise SoqlError(f"No such column '{name}' on entity '{sobject}'. If you are attempting to use a "
                        "custom field, be sure to append the '__c' after the custom field name. Please "
                        "reference your WSDL or the describe call for the appropriate names.", "INVALID_FIELD")
    return info


def _parent_path(sobject: str, name: str, objects: Mapping[str, Mapping[str, FieldInfo]]) -> ParentPath:
    """``Account.Name`` from Opportunity: the relationship names are the lookup fields'
    ``relationshipName`` (custom ones end in ``__r``), case-insensitive like every name."""
    *relationships, last = name.split(".")
    steps: list[tuple[FieldInfo, str]] = []
    current = sobject
    for relationship in relationships:
        lookup = next((info for info in objects[current].values()
                       if info.relationship_name and info.relationship_name.lower() == relationship.lower()), None)
        if lookup is None or lookup.reference_to not in objects:
            raise SoqlError(f"Didn't understand relationship '{relationship}' in field path. If you are attempting "
                            "to use a custom relationship, be sure to append the '__r' after the custom "
                            "relationship name.", "INVALID_FIELD")
        current = lookup.reference_to
        steps.append((lookup, current))
    return ParentPath(tuple(steps), _field(current, objects[current], last))


def _resolve_object(name: str, objects: Mapping[str, Any]) -> str:
    for candidate in objects:
        if candidate.lower() == name.lower():
            return candidate
    raise SoqlError(f"sObject type '{name}' is not supported. If you are attempting to use a custom object, be "
                    "sure to append the '__c' after the entity name.", "INVALID_TYPE")


def _bind_condition(info: FieldInfo, cond: Condition, today: date) -> list[BoundCondition]:
    expected = _LITERAL_KIND[info.type]
    for literal in cond.literals:
        if literal.kind == "null":
            if cond.op not in ("=", "!=", "IN", "NOT IN"):
                raise SoqlError(f"invalid operator on null for field '{info.name}'", "MALFORMED_QUERY")
            continue
        if literal.kind == "dateliteral" and expected in ("date", "datetime"):
            continue
        if literal.kind != expected:
            quoting = "be enclosed in quotes" if expected == "string" else "not be enclosed in quotes"
            raise SoqlError(f"value of filter criterion for field '{info.name}' must be of type "
                            f"{_TYPE_LABEL[info.type]} and should {quoting}", "INVALID_FIELD")
    ranges = [lit for lit in cond.literals if lit.kind == "dateliteral"]
    if ranges:
        if cond.op in ("IN", "NOT IN"):
            raise SoqlError("the sandbox supports date literals with comparison operators only", "MALFORMED_QUERY")
        start, end = (_range_bound(info.type, day) for day in date_literal_range(*ranges[0].value, today))
        return _range_conditions(info, cond.op, start, end)
    values = tuple(_literal_comparable(info.type, literal) for literal in cond.literals)
    return [BoundCondition(info, cond.op, values)]


def _range_bound(field_type: str, day: date) -> date | datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC) if field_type == "datetime" else day


def _range_conditions(info: FieldInfo, op: str, start: Any, end: Any) -> list[BoundCondition]:
    """A comparison with a date literal, which names the range [start, end): ``=`` means within
    it, ``<`` before its start, ``>`` after its end ("Date Formats and Date Literals in WHERE")."""
    if op == "=":
        return [BoundCondition(info, ">=", (start,)), BoundCondition(info, "<", (end,))]
    if op == "!=":
        return [BoundCondition(info, "OUTSIDE", (start, end))]
    bound = {"<": ("<", start), "<=": ("<", end), ">": (">=", end), ">=": (">=", start)}[op]
    return [BoundCondition(info, bound[0], (bound[1],))]


def date_literal_range(name: str, n: int | None, today: date) -> tuple[date, date]:
    """The days a date literal covers, as [first, day after the last).

    ``LAST_N_DAYS:n`` covers today and the n days before it (Salesforce answers today's rows for
    ``LAST_N_DAYS:1``), ``NEXT_N_DAYS:n`` the n days after today, ``N_DAYS_AGO:n`` the one day n
    days back; weeks start on Sunday.
    """
    day = timedelta(days=1)
    sunday = today - timedelta(days=(today.weekday() + 1) % 7)
    month = today.replace(day=1)
    if name == "YESTERDAY":
        return today - day, today
    if name == "TODAY":
        return today, today + day
    if name == "TOMORROW":
        return today + day, today + 2 * day
    if name in ("LAST_WEEK", "THIS_WEEK", "NEXT_WEEK"):
        shift = {"LAST_WEEK": -1, "THIS_WEEK": 0, "NEXT_WEEK": 1}[name]
        first = sunday + timedelta(weeks=shift)
        return first, first + timedelta(weeks=1)
    if name in ("LAST_MONTH", "THIS_MONTH", "NEXT_MONTH"):
        first = _add_months(month, {"LAST_MONTH": -1, "THIS_MONTH": 0, "NEXT_MONTH": 1}[name])
        return first, _add_months(first, 1)
    if name in ("LAST_YEAR", "THIS_YEAR", "NEXT_YEAR"):
        year = today.year + {"LAST_YEAR": -1, "THIS_YEAR": 0, "NEXT_YEAR": 1}[name]
        return date(year, 1, 1), date(year + 1, 1, 1)
    if name == "LAST_90_DAYS":
        n, name = 90, "LAST_N_DAYS"
    if name == "NEXT_90_DAYS":
        n, name = 90, "NEXT_N_DAYS"
    count = int(n or 0)
    if name == "LAST_N_DAYS":
        return today - count * day, today + day
    if name == "NEXT_N_DAYS":
        return today + day, today + (count + 1) * day
    if name == "N_DAYS_AGO":
        return today - count * day, today - (count - 1) * day
    if name == "LAST_N_WEEKS":
        return sunday - timedelta(weeks=count), sunday
    if name == "NEXT_N_WEEKS":
        return sunday + timedelta(weeks=1), sunday + timedelta(weeks=count + 1)
    raise SoqlError(f"unknown date literal {name}", "MALFORMED_QUERY")


def _add_months(first_of_month: date, months: int) -> date:
    index = first_of_month.year * 12 + first_of_month.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


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
