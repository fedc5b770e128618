"""NetSuite REST web services: OAuth 2.0 tokens, SuiteQL and the record API.

The store keeps NetSuite data in SuiteQL's shape (lower-case columns, every value a string,
booleans ``"T"``/``"F"``); the record API translates to and from NetSuite's camelCase record
JSON. An account-wide concurrency gate answers 429 when too many requests are in flight,
the way NetSuite's concurrency governance does.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any
from urllib.parse import unquote

from ps_sandbox import suiteql
from ps_sandbox.catalog import netsuite as catalog
from ps_sandbox.context import SandboxContext
from ps_sandbox.http import Handler, Request, Response, Router, json_response
from ps_sandbox.platforms.common import (
    ApiError,
    add_routes,
    answers_api_errors,
    base_url,
    bearer_accepted,
    token_answer,
)
from ps_sandbox.platforms.netsuite_auth import AccountLogins, LoginRefused
from ps_sandbox.querylang import Condition, time_bounds, timestamp_or_none
from ps_sandbox.store import SandboxStore, from_iso
from ps_sandbox.suiteql import BoundSuiteQL, SuiteQLError

PLATFORM = "netsuite"
TOKEN_PATH = "/services/rest/auth/oauth2/v1/token"
CONCURRENCY_KEY = "netsuite_concurrency_limit"
MAX_PAGE_SIZE = 1000
NEW_ID_BASE = 9_000_000  # ids of records created through the API start here, clear of generated ones
AMOUNT_TOLERANCE = Decimal("0.01")
_RECORD = "/services/rest/record/v1"
_SUITEQL = "/services/rest/query/v1/suiteql"

# Tombstoned store tables -> the record type name ``deletedrecord`` reports.
DELETED_RECORD_TYPES = {"customer": "customer", "job": "job", "transaction": "invoice"}
# What SuiteQL can query: the vendor's catalogue (table -> column -> kind), never our contracts.
SUITEQL_TABLES: dict[str, dict[str, str]] = {name: dict(table.columns) for name, table in catalog.TABLES.items()}
# SuiteQL through REST answers at most the first 100,000 rows of a query; NetSuite help
# "Collection Paging" (section_156414087576): "Without SuiteAnalytics Connect, you can display
# maximum 100 000 results"; salto-io/salto PR #6061: "SuiteQL returns only the first 100K
# items" (re-query with ``id > last`` to read on). Lowered in tests through this store key.
MAX_RESULTS = 100_000
MAX_RESULTS_KEY = "netsuite_suiteql_max_results"
# The account's date format preference (Home > Set Preferences); SuiteQL answers dates in it.
DATE_FORMAT_KEY = "netsuite_date_format"
# The main line of a transaction in ``transactionline`` (one per transaction, the header's line).
MAIN_LINE_ID = "0"

_ERROR_TYPES = {
    400: ("https://www.rfc-editor.org/rfc/rfc9110.html#section-15.5.1", "Bad Request"),
    401: ("https://www.rfc-editor.org/rfc/rfc9110.html#section-15.5.2", "Unauthorized"),
    404: ("https://www.rfc-editor.org/rfc/rfc9110.html#section-15.5.5", "Not Found"),
    429: ("https://www.rfc-editor.org/rfc/rfc6585.html#section-4", "Too Many Requests"),
}


# -- wire helpers ------------------------------------------------------------------------------


class NetSuiteError(ApiError):
    """An error in NetSuite's RFC 9457-style shape; raised inside handlers, answered at the edge."""

    def __init__(self, status: int, detail: str, code: str, path: str | None = None) -> None:
        error_type, title = _ERROR_TYPES[status]
        detail_body: dict[str, Any] = {"detail": detail, "o:errorCode": code}
        if path is not None:
            detail_body["o:errorPath"] = path
        body = {"type": error_type, "title": title, "status": status, "o:errorDetails": [detail_body]}
        super().__init__(status, body, _content_type("error"))


def ns_error(status: int, detail: str, code: str, path: str | None = None) -> Response:
    """The answer of a ``NetSuiteError``, for the places that return rather than raise."""
    return NetSuiteError(status, detail, code, path).response


def _content_type(kind: str) -> dict[str, str]:
    return {"Content-Type": f"application/vnd.oracle.resource+json; type={kind}"}


def _user_error(detail: str, path: str | None = None) -> NetSuiteError:
    return NetSuiteError(400, detail, "USER_ERROR", path)


def _invalid_parameter(detail: str) -> NetSuiteError:
    return NetSuiteError(400, detail, "INVALID_PARAMETER")


def _invalid_content(problem: str) -> NetSuiteError:
    return NetSuiteError(400, f"Invalid content in the request body: {problem}.", "INVALID_CONTENT")


def _not_found() -> NetSuiteError:
    return NetSuiteError(404, "The record instance does not exist. Provide a valid record instance ID.",
                         "NONEXISTENT_ID")


def ns_timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def number_text(value: float) -> str:
    """SuiteQL's rendering of a number: no exponent, no trailing zeros."""
    text = f"{value:.6f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def money(value: Decimal) -> str:
    """Amounts, quantities and rates as the generator writes them: two decimals."""
    return str(value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def _wire_value(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return "T" if value else "F"
    if isinstance(value, int | float):
        return number_text(float(value))
    return str(value)


# -- concurrency governance --------------------------------------------------------------------


class ConcurrencyGate:
    """Middleware counting NetSuite requests in flight; above the limit it answers 429."""

    def __init__(self, limit: Callable[[], int]) -> None:
        self._limit = limit
        self._lock = threading.Lock()
        self.in_flight = 0

    def __call__(self, request: Request, next_handler: Handler) -> Response:
        if request.platform != PLATFORM or request.path.rstrip("/") == TOKEN_PATH:
            return next_handler(request)
        limit = self._limit()
        with self._lock:
            if self.in_flight >= limit:
                return ns_error(429, "Concurrent request limit exceeded. Request blocked.",
                                "CONCURRENCY_LIMIT_EXCEEDED")
            self.in_flight += 1
        try:
            return next_handler(request)
        finally:
            with self._lock:
                self.in_flight -= 1


# -- record types (record API <-> SuiteQL-shaped store docs) ----------------------------------


@dataclass(frozen=True)
class Field:
    api: str  # the record API's camelCase name
    column: str  # the SuiteQL column in the store doc
    kind: str = "text"  # text | ref | bool | date | datetime | number
    ref: str | None = None  # the table a reference must exist in
    required: bool = False
    read_only: bool = False


@dataclass(frozen=True)
class RecordType:
    name: str
    table: str
    fields: tuple[Field, ...]
    has_lines: bool = False
    by_api: dict[str, Field] = field(init=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_api", {f.api: f for f in self.fields})


def _audit(*names: tuple[str, str]) -> tuple[Field, ...]:
    return tuple(Field(api, column, "datetime", read_only=True) for api, column in names)


_ENTITY_AUDIT = _audit(("dateCreated", "datecreated"), ("lastModifiedDate", "lastmodifieddate"))
RECORD_TYPES: dict[str, RecordType] = {
    rt.name: rt
    for rt in (
        RecordType("customer", "customer", (
            Field("entityId", "entityid"),
            Field("companyName", "companyname", required=True),
            Field("externalId", "externalid"),
            Field("subsidiary", "subsidiary", "ref", "subsidiary", required=True),
            Field("currency", "currency", "ref", "currency", required=True),
            Field("isInactive", "isinactive", "bool"),
            *_ENTITY_AUDIT,
        )),
        RecordType("job", "job", (
            Field("entityId", "entityid"),
            Field("companyName", "companyname", required=True),
            Field("externalId", "externalid"),
            Field("parent", "parent", "ref", "customer", required=True),
            Field("subsidiary", "subsidiary", "ref", "subsidiary"),
            Field("currency", "currency", "ref", "currency"),
            Field("entityStatus", "entitystatus"),  # the status name, e.g. "In Progress"
            Field("startDate", "startdate", "date"),
            Field("projectedEndDate", "projectedenddate", "date"),
            *_ENTITY_AUDIT,
        )),
        RecordType("invoice", "transaction", (
            Field("tranId", "tranid"),
            Field("externalId", "externalid"),
            Field("entity", "entity", "ref", "customer", required=True),
            Field("job", "job", "ref", "job"),
            Field("subsidiary", "subsidiary", "ref", "subsidiary", required=True),
            Field("currency", "currency", "ref", "currency", required=True),
            Field("tranDate", "trandate", "date"),
            Field("dueDate", "duedate", "date"),
            Field("memo", "memo"),
            Field("status", "status", read_only=True),
            Field("total", "foreigntotal", "number", read_only=True),
            *_audit(("createdDate", "createddate"), ("lastModifiedDate", "lastmodifieddate")),
        ), has_lines=True),
        RecordType("subsidiary", "subsidiary", (
            Field("name", "name", required=True),
            Field("country", "country"),
            Field("currency", "currency", "ref", "currency", required=True),
            Field("isInactive", "isinactive", "bool"),
            *_audit(("lastModifiedDate", "lastmodifieddate")),
        )),
        RecordType("currency", "currency", (
            Field("name", "name", required=True),
            Field("symbol", "symbol", required=True),
            Field("isBaseCurrency", "isbasecurrency", "bool"),
            Field("exchangeRate", "exchangerate", "number"),
            *_audit(("lastModifiedDate", "lastmodifieddate")),
        )),
    )
}
# The column a reference's ``refName`` comes from, per referenced table.
_REF_NAMES = {"subsidiary": "name", "currency": "name", "customer": "companyname", "job": "companyname"}


def lines_of(store: SandboxStore, transaction_ids: Iterable[str]) -> list[dict]:
    """The live ``transactionline`` rows of the given transactions, in (transaction, line) order.

    Line ids are ``"<transaction>|<line>"``, so each invoice's lines are one primary-key range.
    ``SandboxStore.scan`` has no prefix filter (its ``equals`` would be a full json_extract
    scan per invoice), hence this one narrow read of the store's table.
    """
    sql = ("SELECT body FROM records WHERE platform = ? AND object = 'transactionline' AND deleted = 0 "
           "AND id >= ? AND id < ?")
    rows: list[dict] = []
    for transaction in dict.fromkeys(transaction_ids):
        # '}' is the character after '|', so the range holds exactly this transaction's lines.
        found = store.conn.execute(sql, (PLATFORM, f"{transaction}|", f"{transaction}}}")).fetchall()
        rows.extend(sorted((json.loads(body) for (body,) in found), key=_line_number))
    return rows


def _line_number(line: Mapping[str, Any]) -> float:
    try:
        return float(line.get("linesequencenumber") or line.get("id") or 0)
    except ValueError:
        return 0.0


# -- the API -----------------------------------------------------------------------------------


class NetSuiteApi:
    def __init__(self, ctx: SandboxContext) -> None:
        self.ctx = ctx
        self.store = ctx.store
        self.gate = ConcurrencyGate(self._concurrency_limit)
        self._write_lock = threading.Lock()  # find-then-write (upsert, id sequences) must not interleave
        self.logins = AccountLogins.from_credentials(ctx.config.credentials)

    def register(self, router: Router) -> None:
        router.middleware.append(self.gate)
        router.add("POST", TOKEN_PATH, PLATFORM, self.token)
        routes: list[tuple[str, str, Handler]] = [
            ("POST", _SUITEQL, self.suiteql),
            ("GET", _RECORD + "/{record}", self.list_records),
            ("POST", _RECORD + "/{record}", self.create_record),
            ("GET", _RECORD + "/{record}/{key}", self.get_record),
            ("PATCH", _RECORD + "/{record}/{key}", self.update_record),
            ("PUT", _RECORD + "/{record}/{key}", self.upsert_record),
        ]
        add_routes(router, PLATFORM, routes, self._authenticated)
        router.fallback("/services/rest/", self.unknown_path, platform=PLATFORM, through_middleware=True)

    def unknown_path(self, request: Request, status: int) -> Response:
        """A path NetSuite's REST services do not have: NetSuite answers its RFC 9457-style error
        body (NetSuite help, "Error Handling in REST Web Services", section_156570709583: ``type``,
        ``title``, ``status`` and ``o:errorDetails`` with ``detail`` and ``o:errorCode``)."""
        if status == 405:
            return ns_error(405, f"HTTP method {request.method} is not allowed for {request.path}.",
                            "INVALID_REQUEST")
        return ns_error(404, f"The requested URL {request.path} was not found on this server.", "NONEXISTENT_ID")

    def _concurrency_limit(self) -> int:
        override = self.store.kv_get(CONCURRENCY_KEY)
        return int(override if override is not None else self.ctx.config.netsuite_concurrency_limit)

    # -- auth ----------------------------------------------------------------------------------
    def token(self, request: Request) -> Response:
        """OAuth 2.0 client credentials (M2M): the client authenticates with a JWT assertion signed
        by its mapped certificate's private key, never a client secret. NetSuite help, "POST Request
        to the Token Endpoint and the Access Token Response" (section_162755359851) and "The Request
        Token Structure" (section_162790605110); refusals answer RFC 6749 section 5.2 error bodies."""
        try:
            scope = self.logins.check_client_assertion(request.form(), f"{base_url(request)}{TOKEN_PATH}")
        except LoginRefused as refused:
            return json_response({"error": refused.error}, 400)
        return token_answer(self.ctx.tokens, PLATFORM, expires_in=self.ctx.tokens.ttl_seconds, scope=scope)

    def _authenticated(self, handler: Handler) -> Handler:
        """REST calls carry an access token from the M2M grant (``Bearer``) or a TBA signature
        (``OAuth realm=...``); anything else is NetSuite's INVALID_LOGIN (NetSuite help, "RESTlets
        and REST Web Services Authentication Errors")."""
        handler = answers_api_errors(handler)

        def guarded(request: Request) -> Response:
            if request.header("authorization")[:6].lower() == "oauth ":
                try:
                    self.logins.check_tba(request)
                except LoginRefused:
                    return ns_error(401, "Invalid login attempt.", "INVALID_LOGIN")
            elif not bearer_accepted(request, self.ctx.tokens, PLATFORM):
                return ns_error(401, "Invalid login attempt.", "INVALID_LOGIN")
            return handler(request)

        return guarded

    # -- SuiteQL -------------------------------------------------------------------------------
    def suiteql(self, request: Request) -> Response:
        if "transient" not in request.header("prefer").lower():
            raise NetSuiteError(400, "The 'Prefer' header must be set to 'transient' for SuiteQL queries.",
                                "INVALID_HEADER")
        limit, offset = _paging(request)
        text = _query_text(request)
        date_format = str(self.store.kv_get(DATE_FORMAT_KEY, suiteql.DEFAULT_DATE_FORMAT))
        try:
            bound = suiteql.bind(suiteql.parse(text), SUITEQL_TABLES, date_format)
        except SuiteQLError as exc:
            raise NetSuiteError(400, exc.message, exc.error_code) from exc
        cap = int(self.store.kv_get(MAX_RESULTS_KEY, MAX_RESULTS))
        # Rows past the cap do not exist for this query: totalResults, hasMore and pages stop there.
        total, rows = self._execute(bound, min(limit, max(cap - offset, 0)), offset)
        total = min(total, cap)
        items = [{"links": [], **_item_values(bound.project(row))} for row in rows]
        return self._collection(request, _SUITEQL, items, total, limit, offset)

    def _execute(self, bound: BoundSuiteQL, limit: int, offset: int) -> tuple[int, list[dict]]:
        """(total matches, this page's rows)."""
        if limit <= 0:
            return self._execute(bound, 1, 0)[0], []
        if bound.table == "deletedrecord":
            return _page_in_python(bound, self._deleted_rows(bound), bound.conditions, limit, offset)
        plan = _plan(bound)
        if plan.line_transactions is not None:
            return _page_in_python(bound, lines_of(self.store, plan.line_transactions), plan.residual,
                                   limit, offset)
        descending = _store_order(bound)
        if not plan.residual and descending is not None:
            # Everything the query asks is expressible in the store's index: page in SQLite.
            total = self.store.count(PLATFORM, bound.table, **plan.filters)
            rows = self.store.scan(PLATFORM, bound.table, **plan.filters, descending=descending,
                                   limit=limit, offset=offset)
            return total, rows
        rows = self.store.scan(PLATFORM, bound.table, **plan.filters)
        return _page_in_python(bound, rows, plan.residual, limit, offset)

    def _deleted_rows(self, bound: BoundSuiteQL) -> list[dict]:
        lower, _, upper = time_bounds(
            (c.op, c.literals[0].value) for c in bound.conditions
            if c.field == "deleteddate" and c.op in (">", ">=", "<", "<=")
            and c.literals[0].kind == "datetime"
        )
        start = lower or datetime(1970, 1, 1, tzinfo=UTC)
        end = upper or datetime(9999, 12, 31, tzinfo=UTC)
        return [
            {"recordid": record_id, "type": record_type, "deleteddate": ns_timestamp(from_iso(deleted_at))}
            for table, record_type in DELETED_RECORD_TYPES.items()
            for record_id, deleted_at in self.store.deleted_between(PLATFORM, table, start, end)
        ]

    def _collection(self, request: Request, path: str, items: list[dict], total: int, limit: int,
                    offset: int) -> Response:
        has_more = offset + len(items) < total
        href = f"{base_url(request)}{path}"
        links = [{"rel": "self", "href": f"{href}?limit={limit}&offset={offset}"}]
        if has_more:
            links.append({"rel": "next", "href": f"{href}?limit={limit}&offset={offset + limit}"})
        body = {"links": links, "count": len(items), "hasMore": has_more, "items": items, "offset": offset,
                "totalResults": total}
        return json_response(body, headers=_content_type("collection"))

    # -- record API: reads ---------------------------------------------------------------------
    def list_records(self, request: Request) -> Response:
        record_type = _record_type(request)
        limit, offset = _paging(request)
        total = self.store.count(PLATFORM, record_type.table)
        rows = self.store.scan(PLATFORM, record_type.table, order="id", limit=limit, offset=offset)
        base = f"{base_url(request)}{_RECORD}/{record_type.name}"
        items = [{"links": [{"rel": "self", "href": f"{base}/{row['id']}"}], "id": row["id"]} for row in rows]
        return self._collection(request, f"{_RECORD}/{record_type.name}", items, total, limit, offset)

    def get_record(self, request: Request) -> Response:
        record_type = _record_type(request)
        doc = self._find(record_type, unquote(request.params["key"]))
        if doc is None:
            raise _not_found()
        body = self._to_record(request, record_type, doc)
        return json_response(body, headers=_content_type("singular"))

    def _find(self, record_type: RecordType, key: str) -> dict | None:
        if key.startswith("eid:"):
            found = self.store.scan(PLATFORM, record_type.table, equals={"externalid": key[4:]}, limit=1)
            return found[0] if found else None
        return self.store.get(PLATFORM, record_type.table, key)

    def _to_record(self, request: Request, record_type: RecordType, doc: Mapping[str, Any]) -> dict[str, Any]:
        href = f"{base_url(request)}{_RECORD}/{record_type.name}/{doc['id']}"
        record: dict[str, Any] = {"links": [{"rel": "self", "href": href}], "id": doc["id"]}
        for spec in record_type.fields:
            value = doc.get(spec.column)
            if value not in (None, ""):  # NetSuite leaves empty fields out
                record[spec.api] = self._render(spec, value)
        if record_type.has_lines:  # the item sublist: every line but the main line
            record["item"] = {"items": [_render_line(line) for line in lines_of(self.store, [doc["id"]])
                                        if line.get("mainline") != "T"]}
        return record

    def _render(self, spec: Field, value: Any) -> Any:
        if spec.kind == "ref" and spec.ref is not None:
            target = self.store.get(PLATFORM, spec.ref, str(value)) or {}
            name = target.get(_REF_NAMES[spec.ref])
            return {"id": str(value), "refName": name} if name else {"id": str(value)}
        if spec.kind == "bool":
            return value in ("T", True)
        if spec.kind == "number":
            return float(value)
        return value

    # -- record API: writes --------------------------------------------------------------------
    def create_record(self, request: Request) -> Response:
        record_type = _record_type(request)
        body = _json_object(request)
        with self._write_lock:
            external_id = body.get("externalId")
            if external_id is not None and self._find(record_type, f"eid:{external_id}") is not None:
                raise _user_error(
                    f"A {record_type.name} with externalId '{external_id}' already exists.", "externalId"
                )
            record_id = self._write(record_type, body, existing=None)
        return self._written(request, record_type, record_id)

    def update_record(self, request: Request) -> Response:
        record_type = _record_type(request)
        body = _json_object(request)
        with self._write_lock:
            existing = self._find(record_type, unquote(request.params["key"]))
            if existing is None:
                raise _not_found()
            record_id = self._write(record_type, body, existing=existing)
        return self._written(request, record_type, record_id)

    def upsert_record(self, request: Request) -> Response:
        record_type = _record_type(request)
        key = unquote(request.params["key"])
        if not key.startswith("eid:") or len(key) == 4:
            raise NetSuiteError(400, "Upsert (PUT) needs an external ID in the URL: .../eid:<externalId>.",
                                "INVALID_PARAMETER")
        body = _json_object(request)
        if body.get("externalId", key[4:]) != key[4:]:
            raise _user_error("The externalId in the body does not match the one in the URL.", "externalId")
        body["externalId"] = key[4:]
        with self._write_lock:
            record_id = self._write(record_type, body, existing=self._find(record_type, key))
        return self._written(request, record_type, record_id)

    def _written(self, request: Request, record_type: RecordType, record_id: str) -> Response:
        location = f"{base_url(request)}{_RECORD}/{record_type.name}/{record_id}"
        return Response(status=204, headers={"Location": location})

    def _write(self, record_type: RecordType, body: Mapping[str, Any], existing: dict | None) -> str:
        """Validate ``body`` against the record type and store it; returns the record id."""
        doc = dict(existing) if existing else {}
        doc.update(_doc_changes(record_type, body))
        lines = _parse_lines(body["item"]) if record_type.has_lines and "item" in body else None
        if record_type.has_lines and existing is None and lines is None:
            raise _user_error("You must enter at least one line item for this transaction.", "item")
        self._apply_defaults(record_type, doc)
        self._validate(record_type, doc)
        record_id = str(existing["id"]) if existing else self._new_id(record_type.table)
        now = self.store.now().replace(microsecond=0)  # the wire format keeps whole seconds
        doc.update(id=record_id, lastmodifieddate=ns_timestamp(now))
        if existing is None:
            doc.update(_creation_fields(record_type.name, record_id, doc, ns_timestamp(now)))
        if lines is not None:
            doc["foreigntotal"] = money(sum((line["amount"] for line in lines), Decimal(0)))
            self._replace_lines(record_id, doc, lines, now)
        elif record_type.has_lines:  # a header change shows on the transaction's main line
            self.store.put(PLATFORM, "transactionline", f"{record_id}|{MAIN_LINE_ID}", main_line_doc(record_id, doc),
                           now)
        # SuiteQL has no empty values: a cleared field is simply absent, as in generated docs.
        stored = {column: value for column, value in doc.items() if value is not None}
        self.store.put(PLATFORM, record_type.table, record_id, stored, now)
        return record_id

    def _apply_defaults(self, record_type: RecordType, doc: dict[str, Any]) -> None:
        if record_type.name == "job" and doc.get("parent"):
            parent = self.store.get(PLATFORM, "customer", str(doc["parent"])) or {}
            for column in ("subsidiary", "currency"):  # a project inherits its customer's
                doc[column] = doc.get(column) or parent.get(column)
        if record_type.name in ("customer", "job", "subsidiary"):
            doc["isinactive"] = doc.get("isinactive") or "F"
        if record_type.name == "invoice":
            doc["trandate"] = doc.get("trandate") or self.store.now().date().isoformat()

    def _validate(self, record_type: RecordType, doc: Mapping[str, Any]) -> None:
        for spec in record_type.fields:
            value = doc.get(spec.column)
            if spec.required and value in (None, ""):
                raise _user_error(f"Please enter value(s) for: {spec.api}", spec.api)
            if spec.ref is None or value in (None, ""):
                continue
            if self.store.get(PLATFORM, spec.ref, str(value)) is None:
                raise NetSuiteError(400, f"Invalid {spec.api} reference key {value}.", "INVALID_KEY_OR_REF",
                                    spec.api)

    def _replace_lines(self, transaction_id: str, header: Mapping[str, Any], lines: list[dict],
                       now: datetime) -> None:
        rows = [(f"{transaction_id}|{MAIN_LINE_ID}", now, main_line_doc(transaction_id, header))]
        rows += [(f"{transaction_id}|{n}", now, _line_doc(transaction_id, n, line, header)) for n, line in
                 enumerate(lines, start=1)]
        old = lines_of(self.store, [transaction_id])
        # Write the new lines before dropping leftovers so a reader never sees an empty invoice.
        self.store.put_many(PLATFORM, "transactionline", rows)
        kept = {row_id for row_id, _, _ in rows}
        for line in old:
            line_id = f"{transaction_id}|{line['id']}"
            if line_id not in kept:
                self.store.hard_delete(PLATFORM, "transactionline", line_id, now)

    def _new_id(self, table: str) -> str:
        key = f"netsuite_id_seq:{table}"
        while True:  # never reuse an id the generator already holds
            value = int(self.store.kv_get(key, NEW_ID_BASE)) + 1
            self.store.kv_set(key, value)
            if self.store.get(PLATFORM, table, str(value), include_deleted=True) is None:
                return str(value)


def _creation_fields(record_type: str, record_id: str, doc: Mapping[str, Any], created: str) -> dict:
    """What NetSuite fills in when a record is created (numbering follows the generator's)."""
    if record_type == "customer":
        entity_id = doc.get("entityid") or f"C{record_id} {doc['companyname']}"
        return {"datecreated": created, "entityid": entity_id}
    if record_type == "job":
        return {"datecreated": created, "entityid": doc.get("entityid") or f"PRJ{record_id}"}
    if record_type == "invoice":
        return {"createddate": created, "type": "CustInvc", "status": "Open",
                "tranid": doc.get("tranid") or f"INV-{record_id}"}
    return {}


# -- SuiteQL planning --------------------------------------------------------------------------


@dataclass
class _ScanPlan:
    filters: dict[str, Any] = field(default_factory=dict)  # store.scan/count keyword filters
    residual: list[Condition] = field(default_factory=list)  # conditions left for Python
    line_transactions: list[str] | None = None  # transactionline: read these invoices' lines


def _plan(bound: BoundSuiteQL) -> _ScanPlan:
    """Split the WHERE clause into what the store's indexes answer exactly and the rest.

    ``lastmodifieddate`` is the store's indexed change time; ``id`` is the primary key, as is
    the ``transaction`` prefix of a transaction line's id.
    """
    plan = _ScanPlan()
    times = []
    for cond in bound.conditions:
        is_time = cond.op in (">", ">=", "<=") and all(lit.kind == "datetime" for lit in cond.literals)
        if cond.field == "lastmodifieddate" and is_time:
            times.append((cond.op, cond.literals[0].value))
        elif cond.op in ("=", "IN") and cond.field == "id" and bound.table != "transactionline" \
                and "ids" not in plan.filters:
            plan.filters["ids"] = [_key_text(lit.value) for lit in cond.literals]
        elif cond.op in ("=", "IN") and cond.field == "transaction" and bound.table == "transactionline" \
                and plan.line_transactions is None:
            plan.line_transactions = [_key_text(lit.value) for lit in cond.literals]
        else:
            plan.residual.append(cond)
    lower, inclusive, upper = time_bounds(times)
    if lower is not None:
        plan.filters.update(since=lower, since_inclusive=inclusive)
    if upper is not None:
        plan.filters["until"] = upper
    return plan


def _store_order(bound: BoundSuiteQL) -> bool | None:
    """``descending`` if the store's (change time, id) order serves the ORDER BY, else ``None``."""
    if not bound.order_by:
        return False
    fields = [item.field for item in bound.order_by]
    directions = {item.descending for item in bound.order_by}
    if fields in (["lastmodifieddate"], ["lastmodifieddate", "id"]) and len(directions) == 1:
        return directions.pop()
    return None


def _page_in_python(bound: BoundSuiteQL, rows: list[dict], conditions: Iterable[Condition], limit: int,
                    offset: int) -> tuple[int, list[dict]]:
    conditions = tuple(conditions)
    matched = [row for row in rows if all(suiteql.condition_matches(c, row) for c in conditions)]
    if bound.order_by:
        matched = bound.sort(matched)
    return len(matched), matched[offset:offset + limit]


def _key_text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _item_values(row: Mapping[str, Any]) -> dict[str, str]:
    """SuiteQL answers strings only and leaves NULL columns out of an item."""
    values = ((column.lower(), _wire_value(value)) for column, value in row.items() if column != "links")
    return {column: value for column, value in values if value is not None}


# -- request parsing ---------------------------------------------------------------------------


def _paging(request: Request) -> tuple[int, int]:
    values = {}
    for name, default in (("limit", MAX_PAGE_SIZE), ("offset", 0)):
        text = request.query.get(name, str(default))
        if not text.isdigit():
            raise _invalid_parameter(f"Invalid '{name}' parameter value: {text}. Use a non-negative integer.")
        values[name] = int(text)
    limit, offset = values["limit"], values["offset"]
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise _invalid_parameter(
            f"Invalid 'limit' parameter value: {limit}. The value must be between 1 and {MAX_PAGE_SIZE}."
        )
    if offset % limit:
        raise _invalid_parameter(
            f"Invalid 'offset' parameter value: {offset}. It must be a multiple of the limit ({limit})."
        )
    return limit, offset


def _json_object(request: Request) -> dict[str, Any]:
    try:
        body = request.json()
    except ValueError as exc:
        raise _invalid_content("malformed JSON") from exc
    if not isinstance(body, dict):
        raise _invalid_content("a JSON object is expected")
    return body


def _query_text(request: Request) -> str:
    body = _json_object(request)
    text = body.get("q")
    if not isinstance(text, str) or not text.strip():
        raise _invalid_parameter("The request body must contain a SuiteQL query in the 'q' property.")
    return text


def _record_type(request: Request) -> RecordType:
    record_type = RECORD_TYPES.get(request.params["record"])
    if record_type is None:
        name = request.params["record"]
        raise NetSuiteError(404, f"Record type '{name}' does not exist.", "NONEXISTENT_ID")
    return record_type


# -- record JSON -> store doc ------------------------------------------------------------------


def _doc_changes(record_type: RecordType, body: Mapping[str, Any]) -> dict[str, Any]:
    """The store columns a record JSON body sets (read-only fields are ignored, as NetSuite does)."""
    changes: dict[str, Any] = {}
    for key, value in body.items():
        if key in ("links", "id") or (key == "item" and record_type.has_lines):
            continue
        spec = record_type.by_api.get(key)
        if spec is None:
            raise _user_error(f"Invalid field '{key}' for record type '{record_type.name}'.", key)
        if not spec.read_only:
            changes[spec.column] = _column_value(spec, value)
    return changes


def _column_value(spec: Field, value: Any) -> str | None:
    if value is None:
        return None
    if spec.kind == "ref":
        if not isinstance(value, Mapping) or value.get("id") in (None, ""):
            raise _user_error(f"Field '{spec.api}' must be a reference object with an 'id'.", spec.api)
        return _key_text(value["id"])
    if spec.kind == "bool":
        if not isinstance(value, bool):
            raise _user_error(f"Field '{spec.api}' must be true or false.", spec.api)
        return "T" if value else "F"
    if spec.kind == "number":
        return number_text(float(_decimal(value, spec.api)))
    if spec.kind == "date":
        try:
            return date.fromisoformat(str(value)).isoformat()
        except ValueError as exc:
            raise _user_error(f"Field '{spec.api}' must be a date (YYYY-MM-DD), got {value!r}.",
                              spec.api) from exc
    if spec.kind == "datetime" and timestamp_or_none(value) is None:
        raise _user_error(f"Field '{spec.api}' must be an ISO 8601 datetime, got {value!r}.", spec.api)
    return str(value)


def _decimal(value: Any, path: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise _user_error(f"Field '{path}' must be a number, got {value!r}.", path)
    try:
        number = Decimal(str(value))
    except InvalidOperation as exc:
        raise _user_error(f"Field '{path}' must be a number, got {value!r}.", path) from exc
    if not number.is_finite():
        raise _user_error(f"Field '{path}' must be a finite number.", path)
    return number


def _parse_lines(item: Any) -> list[dict[str, Any]]:
    """Validate an invoice's ``item`` sublist; amounts must equal quantity x rate to the cent."""
    items = item.get("items") if isinstance(item, Mapping) else None
    if not isinstance(items, list) or not items:
        raise _user_error("You must enter at least one line item for this transaction.", "item.items")
    return [_parse_line(index, entry) for index, entry in enumerate(items)]


def _parse_line(index: int, entry: Any) -> dict[str, Any]:
    path, line = f"item.items[{index}]", index + 1
    if not isinstance(entry, Mapping):
        raise _user_error(f"Line {line} must be an object.", path)
    item_ref = entry.get("item")
    if not isinstance(item_ref, Mapping) or item_ref.get("id") in (None, ""):
        raise _user_error(f"Please enter value(s) for: item (line {line}).", f"{path}.item")
    quantity = _decimal(entry.get("quantity"), f"{path}.quantity")
    rate = _decimal(entry.get("rate"), f"{path}.rate")
    expected = (quantity * rate).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    amount = expected if entry.get("amount") is None else _decimal(entry["amount"], f"{path}.amount")
    if abs(amount - expected) > AMOUNT_TOLERANCE:
        raise _user_error(f"Line {line}: amount {amount} does not equal quantity {quantity} x rate {rate} "
                          f"= {expected}.", f"{path}.amount")
    return {"item": _key_text(item_ref["id"]), "description": entry.get("description"), "quantity": quantity,
            "rate": rate, "amount": amount, "custcol_ps_line_key": entry.get("custcol_ps_line_key")}


def main_line_doc(transaction_id: str, header: Mapping[str, Any]) -> dict[str, Any]:
    """A transaction's main line: one ``transactionline`` row per transaction (``mainline = 'T'``,
    id 0) carrying header values such as the subsidiary, which the ``transaction`` table does not
    expose to SuiteQL. See ``ps_sandbox.catalog.netsuite`` and netsuitediagnostics.com,
    "SuiteQL: Transaction Line Mainline" ("Each transaction has exactly one main line")."""
    body = {"transaction": transaction_id, "id": MAIN_LINE_ID, "linesequencenumber": MAIN_LINE_ID,
            "mainline": "T", "taxline": "F", "entity": header.get("entity"), "subsidiary": header.get("subsidiary"),
            "foreignamount": header.get("foreigntotal"), "memo": header.get("memo")}
    return {column: value for column, value in body.items() if value is not None}


def _line_doc(transaction_id: str, number: int, line: Mapping[str, Any], header: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "transaction": transaction_id,
        "id": str(number),
        "linesequencenumber": str(number),
        "mainline": "F",
        "taxline": "F",
        "entity": header.get("entity"),
        "subsidiary": header.get("subsidiary"),
        "item": line["item"],
        "memo": _wire_value(line["description"]),
        "quantity": money(line["quantity"]),
        "rate": money(line["rate"]),
        "foreignamount": money(line["amount"]),
        "custcol_ps_line_key": _wire_value(line["custcol_ps_line_key"]),
    }


def _render_line(line: Mapping[str, Any]) -> dict[str, Any]:
    rendered: dict[str, Any] = {"line": int(_line_number(line)), "item": {"id": line.get("item")}}
    for api, column, convert in (("description", "memo", str), ("quantity", "quantity", float),
                                 ("rate", "rate", float), ("amount", "foreignamount", float),
                                 ("custcol_ps_line_key", "custcol_ps_line_key", str)):
        if line.get(column) not in (None, ""):
            rendered[api] = convert(line[column])
    return rendered


def register(router: Router, ctx: SandboxContext) -> None:
    """Add the NetSuite endpoints and the concurrency gate to ``router``."""
    NetSuiteApi(ctx).register(router)
