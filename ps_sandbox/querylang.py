"""What the sandbox's two query dialects, SOQL (``soql.py``) and SuiteQL (``suiteql.py``), share.

Both are ``SELECT names FROM source [WHERE cond (AND cond)*] [ORDER BY name [ASC|DESC], ...]``
with ``cond`` being ``name op literal`` or ``name [NOT] IN (literal, ...)``: they differ in
tokens, literals, extra condition forms and how names and values bind, not in structure. So
the tokenizer, the token cursor, the clause grammar (``ClauseParser``), the comparison and
sort rules live here once, and each dialect module keeps only what is its own.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

_T = TypeVar("_T")


class QueryError(Exception):
    """A query the platform rejects; ``error_code`` is the platform's own code for why."""

    def __init__(self, message: str, error_code: str) -> None:
        super().__init__(message)
        self.message = message
        self.error_code = error_code


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
    kind: str  # string, number, boolean, null, date, datetime (OData adds enum)
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


@dataclass(frozen=True)
class Select:
    """The clauses every dialect has, as parsed; a dialect's query type adds its own."""

    names: tuple[str, ...]
    source: str
    conditions: tuple[Condition, ...]
    order_by: tuple[OrderItem, ...]


class ClauseParser:
    """Recursive descent over the grammar both dialects share.

    A dialect subclass says how its text splits into tokens (``token_pattern``), how names are
    spelled (``_name``), how its quoted strings unescape (``_unquote``), which literals besides
    strings and numbers it has (``_dialect_literal``), which condition forms besides comparisons
    and IN lists (``_dialect_condition``) and what may be selected (``_select_list``).
    """

    token_pattern: re.Pattern[str]  # the dialect's master regex (see ``tokenize``)
    reserved: frozenset[str] = frozenset()
    column_word = "a field name"  # what an error calls a selected/filtered name
    source_word = "an object name"  # ... and the name after FROM

    def __init__(self, text: str) -> None:
        self.s = TokenStream(tokenize(text, self.token_pattern))

    # -- dialect hooks ---------------------------------------------------------------------------
    def _name(self, what: str) -> str:
        return self.s.expect_name(what, self.reserved)

    @staticmethod
    def _unquote(text: str) -> str:
        raise NotImplementedError

    def _dialect_literal(self, token: Token) -> Literal | None:
        return None

    def _dialect_condition(self, column: str) -> Condition | None:
        return None

    def _select_list(self) -> tuple[str, ...]:
        return self._column_list()

    # -- the shared grammar ------------------------------------------------------------------------
    def select(self) -> Select:
        """``SELECT ... FROM ... [WHERE ...] [ORDER BY ...]``; the caller parses what follows."""
        self.s.expect_keyword("SELECT")
        names = self._select_list()
        self.s.expect_keyword("FROM")
        source = self._name(self.source_word)
        conditions = self._where() if self.s.accept_keyword("WHERE") else ()
        order_by = self._order_by() if self.s.accept_keyword("ORDER") else ()
        return Select(names, source, conditions, order_by)

    def _column(self) -> str:
        return self._name(self.column_word)

    def _column_list(self) -> tuple[str, ...]:
        return self._comma_separated(self._column)

    def _comma_separated(self, parse_one: Callable[[], _T]) -> tuple[_T, ...]:
        items = [parse_one()]
        while self.s.accept_punct(","):
            items.append(parse_one())
        return tuple(items)

    def _where(self) -> tuple[Condition, ...]:
        conditions = [self._condition()]
        while self.s.accept_keyword("AND"):
            conditions.append(self._condition())
        if self.s.peek().is_keyword("OR"):
            raise self.s.error("AND (OR is not supported by the sandbox)")
        return tuple(conditions)

    def _condition(self) -> Condition:
        column = self._column()
        special = self._dialect_condition(column)
        if special is not None:
            return special
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
        literals = self._comma_separated(self._literal)
        self.s.expect_punct(")")
        return literals

    def _literal(self) -> Literal:
        token = self.s.peek()
        if token.kind == "string":
            self.s.advance()
            return Literal("string", self._unquote(token.text))
        if token.kind == "number":
            self.s.advance()
            return Literal("number", float(token.text))
        literal = self._dialect_literal(token)
        if literal is None:
            raise self.s.error("a literal value")
        return literal

    def _order_by(self) -> tuple[OrderItem, ...]:
        self.s.expect_keyword("BY")
        return self._comma_separated(self._order_item)

    def _order_item(self) -> OrderItem:
        column = self._column()
        return OrderItem(column, descending=self.s.accept_keyword("ASC", "DESC") == "DESC")


# -- evaluation ------------------------------------------------------------------------------------

_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "=": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


def compare(left: Any, op: str, right: Any) -> bool:
    """SQL-style comparison: anything against a missing value is false."""
    if left is None or right is None:
        return False
    try:
        return _COMPARE[op](left, right)
    except TypeError:  # e.g. a malformed stored value against a typed literal
        return False


def in_list(op: str, value: Any, found: bool) -> bool:
    """``IN`` / ``NOT IN`` given whether ``value`` is among the literals: as in SQL, a missing
    value is not ``NOT IN`` any list."""
    return found if op == "IN" else (value is not None and not found)


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


def timestamp_or_none(text: Any) -> datetime | None:
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
