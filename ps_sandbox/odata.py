"""The OData v4 URL conventions the Dynamics 365 emulation answers: ``$filter``, ``$orderby``,
``$select``, key predicates, and ``$batch`` multipart bodies.

Built on ``querylang``'s tokenizer, token cursor, comparison and sort rules (the SOQL and SuiteQL
dialects share them); only OData's own grammar lives here. What Dynamics 365 Finance and
Operations supports is narrower than the OData standard, per "Open Data Protocol (OData)"
(learn.microsoft.com/en-us/dynamics365/fin-ops-core/dev-itpro/data-entities/odata):

- operators ``eq ne gt ge lt le and or not`` and grouping with parentheses;
- "Contains" as a wildcard in a string equality (``Name eq '*retail*'``), not as a function;
- ``has`` and ``in`` are not supported (refused here, as there);
- enums as ``Microsoft.Dynamics.DataEntities.NoYes'Yes'``, compared with ``eq``/``ne`` only.

The arithmetic operators (``add sub mul div mod``) are documented too but not emulated: a
query using them is refused with a message saying so.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from ps_sandbox.querylang import (
    Literal,
    QuerySyntaxError,
    Token,
    TokenStream,
    compare,
    sort_rows,
    timestamp_or_none,
    tokenize,
)

_TOKENS = re.compile(r"""
    (?P<space>\s+)
  | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2}))
  | (?P<date>\d{4}-\d{2}-\d{2})
  | (?P<number>-?\d+(\.\d+)?([eE][+-]?\d+)?[mMdDlL]?)
  | (?P<enum>[A-Za-z_][\w.]*'(?:[^']|'')*')
  | (?P<string>'(?:[^']|'')*')
  | (?P<name>[A-Za-z_$][\w]*)
  | (?P<punct>[(),=])
""", re.VERBOSE)

COMPARISONS = {"eq": "=", "ne": "!=", "gt": ">", "ge": ">=", "lt": "<", "le": "<="}
_UNSUPPORTED = {"has", "in"}  # documented as not supported
_ARITHMETIC = {"add", "sub", "mul", "div", "divby", "mod"}


class ODataError(ValueError):
    """A query option the service refuses (answered 400 with the OData error body)."""


@dataclass(frozen=True)
class Comparison:
    field: str
    op: str  # one of COMPARISONS' values
    literal: Literal


@dataclass(frozen=True)
class BoolOp:
    op: str  # and, or, not
    operands: tuple[Any, ...]


Expression = Comparison | BoolOp


def _unquote(text: str) -> str:
    return text[1:-1].replace("''", "'")


def literal_of(token: Token) -> Literal:
    """A literal token's value (raises ``QuerySyntaxError`` for anything else)."""
    if token.kind == "string":
        return Literal("string", _unquote(token.text))
    if token.kind == "number":
        try:
            return Literal("number", Decimal(token.text.rstrip("mMdDlL")))
        except InvalidOperation:
            raise QuerySyntaxError(f"invalid number {token.text!r}", token.pos) from None
    if token.kind in ("datetime", "date"):
        moment = timestamp_or_none(token.text if token.kind == "datetime" else f"{token.text}T00:00:00Z")
        if moment is None:
            raise QuerySyntaxError(f"invalid date-time {token.text!r}", token.pos)
        return Literal("datetime", moment)
    if token.kind == "enum":
        return Literal("enum", _unquote(token.text[token.text.index("'"):]))
    if token.kind == "name" and token.text in ("true", "false"):
        return Literal("boolean", token.text == "true")
    if token.kind == "name" and token.text == "null":
        return Literal("null", None)
    raise QuerySyntaxError(f"expecting a literal value, unexpected token: {token.text or 'end'!r}", token.pos)


class FilterParser:
    """Recursive descent: ``or`` binds loosest, then ``and``, then ``not``."""

    def __init__(self, text: str) -> None:
        self.s = TokenStream(tokenize(text, _TOKENS))

    def parse(self) -> Expression:
        expression = self._or()
        self.s.expect_end()
        return expression

    def _or(self) -> Expression:
        left = self._and()
        while self.s.accept_keyword("OR"):
            left = BoolOp("or", (left, self._and()))
        return left

    def _and(self) -> Expression:
        left = self._not()
        while self.s.accept_keyword("AND"):
            left = BoolOp("and", (left, self._not()))
        return left

    def _not(self) -> Expression:
        if self.s.accept_keyword("NOT"):
            return BoolOp("not", (self._not(),))
        if self.s.accept_punct("("):
            inner = self._or()
            self.s.expect_punct(")")
            return inner
        return self._comparison()

    def _comparison(self) -> Comparison:
        name = self.s.expect_name("a property name")
        if self.s.peek().kind == "punct" and self.s.peek().text == "(":
            raise ODataError(f"The function '{name}' is not supported; use a wildcard ('*text*') in an eq "
                             "comparison for Contains.")
        word = self.s.peek()
        operator = word.text.lower() if word.kind == "name" else ""
        if operator in _UNSUPPORTED:
            raise ODataError(f"The operator '{operator}' is not supported.")
        if operator in _ARITHMETIC:
            raise ODataError(f"The arithmetic operator '{operator}' is not supported by the sandbox.")
        if operator not in COMPARISONS:
            raise self.s.error("a comparison operator (eq, ne, gt, ge, lt, le)")
        self.s.advance()
        literal = literal_of(self.s.advance())
        if literal.kind == "enum" and operator not in ("eq", "ne"):
            raise ODataError("Enum values can only be compared with eq and ne.")
        return Comparison(name, COMPARISONS[operator], literal)


def parse_filter(text: str) -> Expression:
    try:
        return FilterParser(text).parse()
    except QuerySyntaxError as exc:
        raise ODataError(f"Syntax error at position {exc.position} in '{text}': {exc.message}") from None


def fields_of(expression: Expression) -> Iterable[str]:
    if isinstance(expression, Comparison):
        yield expression.field
        return
    for operand in expression.operands:
        yield from fields_of(operand)


# -- evaluation -------------------------------------------------------------------------------------

# A record value in the form comparisons need: numbers as Decimal, date-times aware, text folded.
Coerce = Callable[[str, Any], Any]


def comparable(value: Any) -> Any:
    """A wire value (or literal) as comparisons see it. Text compares case-insensitively: F&O runs
    on SQL Server with a case-insensitive collation [UNVERIFIED for every column]."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float | Decimal):
        return Decimal(str(value))
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if isinstance(value, str):
        moment = timestamp_or_none(value) if len(value) >= 20 and value[4:5] == "-" and "T" in value else None
        return moment if moment is not None else value.casefold()
    return value


def _wildcard(pattern: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(part) for part in pattern.split("*")), re.DOTALL)


def matches(expression: Expression, record: Mapping[str, Any]) -> bool:
    if isinstance(expression, BoolOp):
        if expression.op == "not":
            return not matches(expression.operands[0], record)
        results = (matches(operand, record) for operand in expression.operands)
        return all(results) if expression.op == "and" else any(results)
    value = comparable(record.get(expression.field))
    literal = expression.literal
    if literal.kind == "null":
        return (value is None) == (expression.op == "=")
    target = comparable(literal.value)
    if literal.kind == "string" and "*" in literal.value and expression.op in ("=", "!="):
        # [ODATA]: "Contains ... implemented as a wildcard character".
        found = isinstance(value, str) and _wildcard(target).fullmatch(value) is not None
        return found if expression.op == "=" else not found
    return compare(value, expression.op, target)


def order_rows(rows: list[dict], orderby: str, known: Iterable[str]) -> list[dict]:
    """``$orderby=Name [asc|desc], ...``; nulls sort first ascending, as SQL Server sorts them."""
    keys = []
    names = set(known)
    for item in orderby.split(","):
        parts = item.split()
        if not parts or len(parts) > 2 or (len(parts) == 2 and parts[1].lower() not in ("asc", "desc")):
            raise ODataError(f"Syntax error in $orderby: '{orderby}'.")
        if parts[0] not in names:
            raise ODataError(f"Could not find a property named '{parts[0]}' on the entity type.")
        name = parts[0]
        keys.append((lambda row, name=name: comparable(row.get(name)), len(parts) == 2 and parts[1].lower() == "desc"))
    return sort_rows(rows, keys, nulls_first=True)


# -- key predicates --------------------------------------------------------------------------------

_RESOURCE = re.compile(r"^(?P<name>[A-Za-z_][\w]*)(?:\((?P<key>.*)\))?$", re.DOTALL)


def split_resource(segment: str) -> tuple[str, str | None]:
    """``CustomersV3(dataAreaId='usmf',CustomerAccount='X')`` -> (``CustomersV3``, the key text)."""
    match = _RESOURCE.match(segment)
    if match is None:
        raise ODataError(f"Resource not found for the segment '{segment}'.")
    return match.group("name"), match.group("key")


def parse_key(text: str, keys: tuple[str, ...]) -> dict[str, Any]:
    """A key predicate's values by property. Every key property must be named, except that a
    single-property key may be given bare (``Currencies('USD')``) [ODATA]."""
    try:
        s = TokenStream(tokenize(text, _TOKENS))
        if len(keys) == 1 and s.peek().kind != "name":
            values = {keys[0]: literal_of(s.advance()).value}
            s.expect_end()
        else:
            values = {}
            while True:
                name = s.expect_name("a key property name")
                s.expect_punct("=")
                values[name] = literal_of(s.advance()).value
                if not s.accept_punct(","):
                    break
            s.expect_end()
    except QuerySyntaxError as exc:
        raise ODataError(f"Bad key predicate '({text})': {exc.message}") from None
    if set(values) != set(keys):
        raise ODataError(f"The key predicate must name every key property: {', '.join(keys)}.")
    return values


def key_literal(value: Any) -> str:
    """A key value as a key predicate spells it."""
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    return str(value)


# -- $batch (multipart/mixed) ---------------------------------------------------------------------


@dataclass
class Part:
    headers: dict[str, str]  # lower-cased names
    body: bytes


@dataclass
class BatchRequest:
    method: str
    url: str
    headers: dict[str, str]
    body: bytes
    content_id: str | None


def boundary_of(content_type: str) -> str | None:
    match = re.search(r'boundary="?([^";]+)"?', content_type, re.IGNORECASE)
    return match.group(1) if match else None


def _split_head(data: bytes) -> tuple[list[str], bytes]:
    for separator in (b"\r\n\r\n", b"\n\n"):
        head, found, rest = data.partition(separator)
        if found:
            return head.decode().splitlines(), rest
    return data.decode().splitlines(), b""


def _headers(lines: Iterable[str]) -> dict[str, str]:
    headers = {}
    for line in lines:
        name, colon, value = line.partition(":")
        if colon:
            headers[name.strip().lower()] = value.strip()
    return headers


def split_multipart(body: bytes, boundary: str) -> list[Part]:
    """The parts of a multipart body (RFC 2046): each delimiter line is ``--boundary``."""
    delimiter = b"--" + boundary.encode()
    chunks = body.split(delimiter)
    if len(chunks) < 2:
        raise ODataError("The batch body holds no part with the boundary of its Content-Type.")
    parts = []
    for chunk in chunks[1:]:
        if chunk.startswith(b"--"):
            break  # the close delimiter
        chunk = chunk.removeprefix(b"\r\n").removeprefix(b"\n")
        chunk = chunk.removesuffix(b"\r\n").removesuffix(b"\n")  # the CRLF belongs to the next delimiter
        head, rest = _split_head(chunk)
        parts.append(Part(_headers(head), rest))
    return parts


def http_request_of(part: Part) -> BatchRequest:
    """An ``application/http`` part as the request it carries."""
    lines, body = _split_head(part.body)
    if not lines:
        raise ODataError("An application/http part holds no request line.")
    request_line = lines[0].split()
    if len(request_line) < 2:
        raise ODataError(f"Bad request line in a batch part: {lines[0]!r}")
    return BatchRequest(request_line[0].upper(), request_line[1], _headers(lines[1:]), body,
                        part.headers.get("content-id"))


def http_part(status: int, reason: str, headers: Mapping[str, str], body: bytes,
              content_id: str | None = None) -> bytes:
    """One response as an ``application/http`` part (headers and body included)."""
    head = ["Content-Type: application/http", "Content-Transfer-Encoding: binary"]
    if content_id is not None:
        head.append(f"Content-ID: {content_id}")
    inner = [f"HTTP/1.1 {status} {reason}", *(f"{name}: {value}" for name, value in headers.items())]
    return ("\r\n".join(head) + "\r\n\r\n" + "\r\n".join(inner) + "\r\n\r\n").encode() + body


def multipart(boundary: str, parts: Iterable[bytes]) -> bytes:
    out = b"".join(b"--" + boundary.encode() + b"\r\n" + part + b"\r\n" for part in parts)
    return out + b"--" + boundary.encode() + b"--\r\n"
