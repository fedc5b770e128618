"""Salesforce REST API (v61.0 wire format; any ``vNN.N`` path is accepted).

OAuth client-credentials tokens, SOQL ``query``/``queryAll`` with server-side cursors
(``nextRecordsUrl``), ``getDeleted``, sObject get/update and upsert by external id, and
the daily API request allowance reported in ``Sforce-Limit-Info``.

Store bodies hold only SObject fields; ``attributes`` is added on the way out. Cursors
snapshot the ordered id list at query time, so paging through a result neither skips nor
repeats a row while the data changes underneath (records on later pages still show their
current values, as in Salesforce).
"""

from __future__ import annotations

import base64
import itertools
import re
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

from ps_pipelines.lib.contracts import salesforce as contracts
from ps_sandbox import soql
from ps_sandbox.context import SandboxContext
from ps_sandbox.generate import sf_checksum
from ps_sandbox.http import Handler, Request, Response, Router, json_response
from ps_sandbox.platforms.common import (
    add_routes,
    base_url,
    bearer_accepted,
    client_matches,
    parse_timestamp,
    token_answer,
)
from ps_sandbox.querylang import time_bounds
from ps_sandbox.soql import BoundQuery, FieldInfo, SoqlError
from ps_sandbox.store import from_iso

PLATFORM = "salesforce"
API_VERSION = "v61.0"
KEY_PREFIXES = {"Account": "001", "Contact": "003", "Opportunity": "006", "Contract": "800"}
USAGE_KEY = "salesforce_api_usage"  # kv: {"day": "YYYY-MM-DD", "used": n}
LIMIT_KEY = "salesforce_daily_api_limit"
DEFAULT_BATCH_SIZE, MIN_BATCH_SIZE = 2000, 200
CURSOR_TTL_SECONDS = 15 * 60  # Salesforce releases an idle query cursor after 15 minutes
MAX_OPEN_CURSORS = 50  # beyond this the least recently used cursor is released

_DATA = "/services/data/{version}"
_VERSION = re.compile(r"^v\d+\.\d$")
_SYSTEM_FIELDS = ("Id", "IsDeleted", "CreatedDate", "SystemModstamp", "LastModifiedDate")
_CHANGE_FIELDS = ("SystemModstamp", "LastModifiedDate")
_FORMULA_FIELDS = {"Opportunity": ("IsWon", "IsClosed"), "Contract": ("ContractNumber",)}
_CREATE_DEFAULTS = {"CurrencyIsoCode": "USD"}  # the org's corporate currency fills it in Salesforce
_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_DTYPE_TO_TYPE = {"float64": "double", "boolean": "boolean", "datetime64[ns]": "date",
                  "datetime64[ns, UTC]": "datetime"}


# -- object catalogue --------------------------------------------------------------------------


@dataclass(frozen=True)
class SObjectType:
    name: str
    prefix: str
    fields: dict[str, FieldInfo]  # lower-cased name -> info
    required: tuple[str, ...]  # needed to create a record
    read_only: frozenset[str]  # system and formula fields a client cannot write


def _sobject_type(contract: Any) -> SObjectType:
    # Exactly the contract's fields (only Account carries LastModifiedDate), as the generator writes.
    columns = contract.schema.columns
    fields: dict[str, FieldInfo] = {}
    for name in contract.source_fields:
        field_type = "id" if name == "Id" else _DTYPE_TO_TYPE.get(str(columns[name.lower()].dtype), "string")
        fields[name.lower()] = FieldInfo(name, field_type)
    read_only = frozenset((*_SYSTEM_FIELDS, *_FORMULA_FIELDS.get(contract.source_object, ())))
    required = tuple(
        info.name for key, info in fields.items()
        if columns[key].required and info.name not in read_only and info.name not in _CREATE_DEFAULTS
    )
    name = contract.source_object
    return SObjectType(name, KEY_PREFIXES[name], fields, required, read_only)


def sobject_types() -> dict[str, SObjectType]:
    """The sObjects the sandbox serves, with fields taken from the data contracts."""
    return {contract.source_object: _sobject_type(contract) for contract in contracts.ALL}


# -- wire helpers ------------------------------------------------------------------------------


def sf_timestamp(moment: datetime) -> str:
    """Salesforce's dateTime wire format: ``2026-10-01T12:34:56.000+0000``."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"


def sf_error(status: int, message: str, code: str, fields: tuple[str, ...] = ()) -> Response:
    return json_response([{"message": message, "errorCode": code, "fields": list(fields)}], status)


def _not_found() -> Response:
    return sf_error(404, "The requested resource does not exist", "NOT_FOUND")


def record_id(prefix: str, sequence: int) -> str:
    """An 18-character id: prefix, a sandbox marker, a base-62 counter and the case checksum."""
    digits = ""
    while True:
        sequence, rem = divmod(sequence, 62)
        digits = _BASE62[rem] + digits
        if not sequence:
            break
    short = f"{prefix}5X{digits:0>10}"
    return short + sf_checksum(short)


def _batch_size(request: Request) -> int | None:
    match = re.search(r"batchSize\s*=\s*(\d+)", request.header("sforce-query-options"))
    if match is None:
        return None
    return max(MIN_BATCH_SIZE, min(DEFAULT_BATCH_SIZE, int(match.group(1))))


# -- query cursors -----------------------------------------------------------------------------


@dataclass
class Cursor:
    sobject: str
    fields: tuple[FieldInfo, ...]
    ids: list[str]  # the result's order, fixed when the query ran
    batch_size: int
    touched: float = field(default_factory=time.monotonic)


class CursorRegistry:
    """Open query cursors by locator id, released after ``ttl`` idle seconds."""

    def __init__(self, ttl: float = CURSOR_TTL_SECONDS, capacity: int = MAX_OPEN_CURSORS) -> None:
        self.ttl, self.capacity = ttl, capacity
        self._cursors: OrderedDict[str, Cursor] = OrderedDict()
        self._lock = threading.Lock()
        self._sequence = itertools.count(1)

    def open(self, cursor: Cursor) -> str:
        with self._lock:
            self._expire()
            locator = f"01g5X{next(self._sequence):010d}{secrets.token_hex(2).upper()[:3]}"
            self._cursors[locator] = cursor
            while len(self._cursors) > self.capacity:
                self._cursors.popitem(last=False)
        return locator

    def get(self, locator: str) -> Cursor | None:
        with self._lock:
            self._expire()
            cursor = self._cursors.get(locator)
            if cursor is not None:
                cursor.touched = time.monotonic()
                self._cursors.move_to_end(locator)
        return cursor

    def _expire(self) -> None:
        deadline = time.monotonic() - self.ttl
        for locator in [key for key, cursor in self._cursors.items() if cursor.touched < deadline]:
            del self._cursors[locator]


# -- the API -----------------------------------------------------------------------------------


class SalesforceApi:
    def __init__(self, ctx: SandboxContext) -> None:
        self.ctx = ctx
        self.store = ctx.store
        self.types = sobject_types()
        self.catalogue = {name: t.fields for name, t in self.types.items()}
        self.cursors = CursorRegistry()
        self._lock = threading.Lock()  # serializes the usage counter and id sequences

    def register(self, router: Router) -> None:
        router.add("POST", "/services/oauth2/token", PLATFORM, self.token)
        routes: list[tuple[str, str, Handler]] = [
            ("GET", "/query", self.query),
            ("GET", "/queryAll", self.query_all),
            ("GET", "/query/{locator}", self.query_more),
            ("GET", "/queryAll/{locator}", self.query_more),
            ("GET", "/sobjects/{sobject}/deleted", self.get_deleted),
            ("GET", "/sobjects/{sobject}/{record_id}", self.get_record),
            ("PATCH", "/sobjects/{sobject}/{record_id}", self.update_record),
            ("GET", "/sobjects/{sobject}/{id_field}/{value}", self.get_by_external_id),
            ("PATCH", "/sobjects/{sobject}/{id_field}/{value}", self.upsert_record),
        ]
        add_routes(router, PLATFORM, routes, self._data_endpoint, prefix=_DATA)

    # -- auth and API allowance --------------------------------------------------------------
    def token(self, request: Request) -> Response:
        form = {**request.query, **request.form()}
        grant = form.get("grant_type")
        if grant not in ("client_credentials", "refresh_token"):
            return json_response({"error": "unsupported_grant_type",
                                  "error_description": "grant type not supported"}, 400)
        # The client's id and secret come as parameters here, never as HTTP Basic.
        client = form.get("client_id", ""), form.get("client_secret", "")
        valid = client_matches(client, self.ctx.config.credentials[PLATFORM])
        if not valid or (grant == "refresh_token" and not form.get("refresh_token")):
            return json_response(
                {"error": "invalid_client", "error_description": "Invalid client credentials"}, 400
            )
        base = base_url(request)
        return token_answer(
            self.ctx.tokens, PLATFORM,
            instance_url=base,
            id=f"{base}/id/00D5X0000000001EAA/0055X0000000001AAA",
            issued_at=str(int(time.time() * 1000)),
            signature=base64.b64encode(secrets.token_bytes(32)).decode(),
        )

    def _data_endpoint(self, handler: Handler) -> Handler:
        def guarded(request: Request) -> Response:
            if not _VERSION.match(request.params.get("version", "")):
                return _not_found()
            if not bearer_accepted(request, self.ctx.tokens, PLATFORM):
                return sf_error(401, "Session expired or invalid", "INVALID_SESSION_ID")
            allowed, used, limit = self._consume_api_request()
            response = handler(request) if allowed else \
                sf_error(403, "TotalRequests Limit exceeded.", "REQUEST_LIMIT_EXCEEDED")
            response.headers["Sforce-Limit-Info"] = f"api-usage={used}/{limit}"
            return response

        return guarded

    def _consume_api_request(self) -> tuple[bool, int, int]:
        """Count one request against today's (sandbox clock) allowance: (allowed, used, limit)."""
        override = self.store.kv_get(LIMIT_KEY)
        limit = int(override if override is not None else self.ctx.config.salesforce_daily_api_limit)
        day = self.store.now().date().isoformat()
        with self._lock:
            usage = self.store.kv_get(USAGE_KEY) or {}
            used = int(usage.get("used", 0)) if usage.get("day") == day else 0
            if used >= limit:
                return False, used, limit
            used += 1
            self.store.kv_set(USAGE_KEY, {"day": day, "used": used})
        return True, used, limit

    # -- SOQL ----------------------------------------------------------------------------------
    def query(self, request: Request) -> Response:
        return self._run_query(request, include_deleted=False)

    def query_all(self, request: Request) -> Response:
        return self._run_query(request, include_deleted=True)

    def _run_query(self, request: Request, include_deleted: bool) -> Response:
        text = request.query.get("q", "").strip()
        if not text:
            return sf_error(400, "A query string has to be specified", "MALFORMED_QUERY")
        try:
            bound = soql.bind(soql.parse(text), self.catalogue)
        except SoqlError as exc:
            return sf_error(400, exc.message, exc.error_code)
        records = self._execute(bound, include_deleted)
        cursor = Cursor(bound.sobject, bound.fields, [r["Id"] for r in records],
                        _batch_size(request) or DEFAULT_BATCH_SIZE)
        first = records[:cursor.batch_size]
        return self._page(request, cursor, first, offset=0)

    def query_more(self, request: Request) -> Response:
        cursor_id, _, offset_text = unquote(request.params["locator"]).rpartition("-")
        cursor = self.cursors.get(cursor_id)
        if cursor is None or not offset_text.isdigit() or int(offset_text) > len(cursor.ids):
            return sf_error(400, "invalid query locator", "INVALID_QUERY_LOCATOR")
        offset = int(offset_text)
        chunk = cursor.ids[offset:offset + (_batch_size(request) or cursor.batch_size)]
        # Current values, deleted or not: the row was part of the result when the query ran.
        rows = self.store.scan(PLATFORM, cursor.sobject, ids=chunk, include_deleted=True)
        current = {row["Id"]: row for row in rows}
        records = [current[rid] for rid in chunk if rid in current]
        return self._page(request, cursor, records, offset, cursor_id, consumed=len(chunk))

    def _execute(self, bound: BoundQuery, include_deleted: bool) -> list[dict]:
        scanned = self.store.scan(PLATFORM, bound.sobject, include_deleted=include_deleted,
                                  **self._scan_filters(bound))
        records = [record for record in scanned if bound.matches(record)]
        if bound.order_by and not _store_order_suffices(bound):
            records = bound.sort(records)
        return records if bound.limit is None else records[:bound.limit]

    @staticmethod
    def _scan_filters(bound: BoundQuery) -> dict[str, Any]:
        """Narrow the store scan by its change-time index and ids; every condition is still
        applied in Python afterwards, so this only has to be a superset.

        The store's change time is the record's SystemModstamp, and LastModifiedDate (Account
        only) never exceeds it, so a lower bound on either field is a lower bound on the index.
        """
        lower, inclusive, _ = time_bounds(
            (c.op, c.values[0]) for c in bound.conditions
            if c.field.name in _CHANGE_FIELDS and c.op in (">", ">=")
        )
        _, _, upper = time_bounds(
            (c.op, c.values[0]) for c in bound.conditions_on("SystemModstamp") if c.op in ("<", "<=")
        )
        filters: dict[str, Any] = {}
        if lower is not None:
            filters.update(since=lower, since_inclusive=inclusive)
        if upper is not None:
            filters["until"] = upper
        for cond in bound.conditions_on("Id"):
            if cond.op in ("=", "IN"):
                filters["ids"] = [v for v in cond.values if v is not None]
        return filters

    def _page(self, request: Request, cursor: Cursor, records: list[dict], offset: int,
              cursor_id: str | None = None, consumed: int | None = None) -> Response:
        version = request.params["version"]
        next_offset = offset + (len(records) if consumed is None else consumed)
        body: dict[str, Any] = {"totalSize": len(cursor.ids), "done": next_offset >= len(cursor.ids)}
        if not body["done"]:
            cursor_id = cursor_id or self.cursors.open(cursor)
            # queryAll cursors are also continued under /query/, as Salesforce answers them.
            body["nextRecordsUrl"] = f"/services/data/{version}/query/{cursor_id}-{next_offset}"
        body["records"] = [self._with_attributes(version, cursor.sobject, record, cursor.fields)
                           for record in records]
        return json_response(body)

    @staticmethod
    def _with_attributes(version: str, sobject: str, record: Mapping[str, Any],
                         fields: tuple[FieldInfo, ...] | None = None) -> dict[str, Any]:
        attributes = {"type": sobject, "url": f"/services/data/{version}/sobjects/{sobject}/{record['Id']}"}
        values = {info.name: record.get(info.name) for info in fields} if fields is not None else dict(record)
        return {"attributes": attributes, **values}

    # -- getDeleted ----------------------------------------------------------------------------
    def get_deleted(self, request: Request) -> Response:
        sobject = self._sobject(request)
        if sobject is None:
            return _not_found()
        window = _replication_window(request)
        if isinstance(window, Response):
            return window
        start, end = window
        deleted = self.store.deleted_between(PLATFORM, sobject.name, start, end)
        earliest = self.store.deleted_between(PLATFORM, sobject.name, datetime(1970, 1, 1, tzinfo=UTC), end)
        covered = min(end, self.store.now()).replace(second=0, microsecond=0)
        return json_response({
            "deletedRecords": [{"id": rid, "deletedDate": sf_timestamp(from_iso(at))} for rid, at in deleted],
            "earliestDateAvailable": sf_timestamp(from_iso(earliest[0][1]) if earliest else start),
            "latestDateCovered": sf_timestamp(covered),
        })

    # -- records -------------------------------------------------------------------------------
    def get_record(self, request: Request) -> Response:
        sobject = self._sobject(request)
        if sobject is None:
            return _not_found()
        record = self.store.get(PLATFORM, sobject.name, unquote(request.params["record_id"]))
        if record is None:
            return _not_found()
        return json_response(self._with_attributes(request.params["version"], sobject.name, record))

    def get_by_external_id(self, request: Request) -> Response:
        sobject = self._sobject(request)
        id_field = self._external_id_field(sobject, request.params["id_field"]) if sobject else None
        if sobject is None or id_field is None:
            return _not_found()
        matches = self._find_by(sobject, id_field, unquote(request.params["value"]))
        if len(matches) != 1:
            return _not_found() if not matches else self._multiple_choices(request, sobject, matches)
        return json_response(self._with_attributes(request.params["version"], sobject.name, matches[0]))

    def update_record(self, request: Request) -> Response:
        sobject = self._sobject(request)
        if sobject is None:
            return _not_found()
        record_key = unquote(request.params["record_id"])
        existing = self.store.get(PLATFORM, sobject.name, record_key, include_deleted=True)
        if existing is None:
            return _not_found()
        if existing.get("IsDeleted"):
            return sf_error(404, "entity is deleted", "ENTITY_IS_DELETED")
        changes = self._changes(sobject, request)
        if isinstance(changes, Response):
            return changes
        self._save(sobject, {**existing, **changes}, created=False)
        return Response(status=204)

    def upsert_record(self, request: Request) -> Response:
        sobject = self._sobject(request)
        if sobject is None:
            return _not_found()
        id_field = self._external_id_field(sobject, request.params["id_field"])
        if id_field is None:
            return sf_error(404, "Provided external ID field does not exist or is not accessible: "
                            f"{request.params['id_field']}", "NOT_FOUND")
        changes = self._changes(sobject, request, allow=(id_field,))
        if isinstance(changes, Response):
            return changes
        value = unquote(request.params["value"])
        matches = self._find_by(sobject, id_field, value)
        if len(matches) > 1:
            return self._multiple_choices(request, sobject, matches)
        if matches:
            self._save(sobject, {**matches[0], **changes, id_field: matches[0][id_field]}, created=False)
            return Response(status=204)
        if id_field == "Id":
            return _not_found()
        return self._create(sobject, {**changes, id_field: value})

    def _create(self, sobject: SObjectType, values: dict[str, Any]) -> Response:
        missing = [name for name in sobject.required if values.get(name) in (None, "")]
        if missing:
            return sf_error(400, f"Required fields are missing: [{', '.join(missing)}]",
                            "REQUIRED_FIELD_MISSING", tuple(missing))
        record = {info.name: None for info in sobject.fields.values()}
        record.update({k: v for k, v in _CREATE_DEFAULTS.items() if k.lower() in sobject.fields})
        record.update(values)
        record["Id"] = self._new_id(sobject)
        if sobject.name == "Contract":
            record["ContractNumber"] = f"{self._next_sequence('salesforce_contract_number'):08d}"
        self._save(sobject, record, created=True)
        return json_response({"id": record["Id"], "success": True, "errors": [], "created": True}, 201)

    def _save(self, sobject: SObjectType, record: dict[str, Any], created: bool) -> None:
        now = self.store.now()
        now = now.replace(microsecond=now.microsecond // 1000 * 1000)  # the wire keeps milliseconds
        stamp = sf_timestamp(now)
        for name in _CHANGE_FIELDS:
            if name.lower() in sobject.fields:
                record[name] = stamp
        if created:
            record["CreatedDate"], record["IsDeleted"] = stamp, False
        if sobject.name == "Opportunity":  # formula fields follow the stage
            stage = str(record.get("StageName") or "")
            record["IsClosed"], record["IsWon"] = stage.startswith("Closed"), stage == "Closed Won"
        self.store.put(PLATFORM, sobject.name, record["Id"], record, now)

    def _changes(self, sobject: SObjectType, request: Request,
                 allow: tuple[str, ...] = ()) -> dict[str, Any] | Response:
        """The request body's fields under their canonical names, or the error Salesforce sends."""
        try:
            body = request.json()
        except ValueError:
            return sf_error(400, "Unexpected character in request body", "JSON_PARSER_ERROR")
        if not isinstance(body, dict):
            return sf_error(400, "Request body must be a JSON object", "JSON_PARSER_ERROR")
        body.pop("attributes", None)
        unknown = [key for key in body if key.lower() not in sobject.fields]
        if unknown:
            return sf_error(400, f"No such column '{unknown[0]}' on sobject of type {sobject.name}",
                            "INVALID_FIELD", tuple(unknown))
        changes = {sobject.fields[key.lower()].name: value for key, value in body.items()}
        locked = [name for name in changes if name in sobject.read_only and name not in allow]
        if locked:
            return sf_error(400, f"Unable to create/update fields: {', '.join(locked)}. Please check the "
                            "security settings of this field and verify that it is read/write for your "
                            "profile or permission set.", "INVALID_FIELD_FOR_INSERT_UPDATE", tuple(locked))
        return changes

    def _sobject(self, request: Request) -> SObjectType | None:
        name = request.params["sobject"].lower()
        return next((t for key, t in self.types.items() if key.lower() == name), None)

    @staticmethod
    def _external_id_field(sobject: SObjectType, name: str) -> str | None:
        info = sobject.fields.get(name.lower())
        # Id and custom fields act as external ids; standard fields cannot be one.
        return info.name if info is not None and (info.name == "Id" or info.name.endswith("__c")) else None

    def _find_by(self, sobject: SObjectType, id_field: str, value: str) -> list[dict]:
        if id_field == "Id":
            record = self.store.get(PLATFORM, sobject.name, value)
            return [record] if record else []
        return self.store.scan(PLATFORM, sobject.name, equals={id_field: value}, limit=2)

    def _multiple_choices(self, request: Request, sobject: SObjectType, matches: list[dict]) -> Response:
        version = request.params["version"]
        urls = [f"/services/data/{version}/sobjects/{sobject.name}/{match['Id']}" for match in matches]
        return json_response(urls, 300)

    def _new_id(self, sobject: SObjectType) -> str:
        while True:  # skip ids the generator (or an earlier run) already used
            candidate = record_id(sobject.prefix, self._next_sequence(f"salesforce_id_seq:{sobject.name}"))
            if self.store.get(PLATFORM, sobject.name, candidate, include_deleted=True) is None:
                return candidate

    def _next_sequence(self, key: str) -> int:
        with self._lock:
            value = int(self.store.kv_get(key, 0)) + 1
            self.store.kv_set(key, value)
        return value


def _store_order_suffices(bound: BoundQuery) -> bool:
    """The store already returns rows by (SystemModstamp, Id) ascending."""
    wanted = [(info.name, descending) for info, descending in bound.order_by]
    return wanted in ([("SystemModstamp", False)], [("SystemModstamp", False), ("Id", False)])


def _replication_window(request: Request) -> tuple[datetime, datetime] | Response:
    bounds = []
    for name in ("start", "end"):
        text = request.query.get(name)
        if not text:
            return sf_error(400, f"Missing required parameter: {name}", "MISSING_ARGUMENT")
        try:
            bounds.append(parse_timestamp(text))
        except ValueError:
            return sf_error(400, f"Invalid {name} date: {text}", "INVALID_REPLICATION_DATE")
    start, end = bounds
    if end < start:
        return sf_error(400, "end date must be after start date", "INVALID_REPLICATION_DATE")
    return start, end


def register(router: Router, ctx: SandboxContext) -> None:
    """Add the Salesforce endpoints to ``router``."""
    SalesforceApi(ctx).register(router)
