"""Salesforce REST API (v61.0 wire format; any ``vNN.N`` path is accepted).

OAuth client-credentials tokens, SOQL ``query``/``queryAll`` with server-side cursors
(``nextRecordsUrl``), ``getUpdated``, ``getDeleted``, sObject get/update/delete and upsert by external id,
Describe Global, sObject Describe, Limits, and the org's request limits: the daily API request
allowance (reported in ``Sforce-Limit-Info``) and the concurrent long-running request limit.

The org's objects and fields come from ``ps_sandbox.catalog.salesforce`` (Salesforce's documented
standard objects plus the firm's custom fields), never from the pipeline's contracts. Managed
packages the org has installed (``SandboxConfig.salesforce_packages``) add theirs: Certinia PSA's
``pse__`` objects (``ps_sandbox.catalog.certinia``) are served by this same implementation.

Vendor documents behind the rules here, all in the REST API Developer Guide
(developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/) unless noted:
"Status Codes and Error Responses" (``errorcodes.htm``), "Describe Global"
(``resources_describeGlobal.htm``), "sObject Describe" (``resources_sobject_describe.htm``),
"Limits" (``resources_limits.htm``), "sObject Rows" (``resources_sobject_retrieve.htm``: GET,
PATCH, DELETE), "sObject Rows by External ID" (``resources_sobject_upsert.htm``), "Query" /
"QueryAll" (``resources_query.htm``, ``resources_queryall.htm``), "sObject Get Deleted"
(``resources_getdeleted.htm``), "Sforce-Limit-Info" (``headers_api_usage.htm``); and
"API Request Limits and Allocations" (Salesforce Developer Limits and Allocations Quick
Reference, ``salesforce_app_limits_platform_api.htm``).

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
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import unquote

from ps_sandbox import soql
from ps_sandbox.catalog import certinia
from ps_sandbox.catalog import salesforce as catalog
from ps_sandbox.context import SandboxContext
from ps_sandbox.generate import add_months, sf_checksum
from ps_sandbox.http import Handler, Request, Response, Router, json_response
from ps_sandbox.platforms.common import (
    add_routes,
    base_url,
    bearer_accepted,
    client_authenticated,
    parse_timestamp,
    same_secret,
    token_answer,
)
from ps_sandbox.querylang import time_bounds
from ps_sandbox.soql import BoundQuery, FieldInfo, SoqlError
from ps_sandbox.store import from_iso

PLATFORM = "salesforce"
API_VERSION = "v61.0"
USAGE_KEY = "salesforce_api_usage"  # kv: {"day": "YYYY-MM-DD", "used": n}
LIMIT_KEY = "salesforce_daily_api_limit"
# The concurrent long-running request limit ("API Request Limits and Allocations": 25 requests
# of 20 seconds or longer at once in a production org); kv overrides let a test shrink both.
CONCURRENT_LIMIT_KEY = "salesforce_concurrent_long_running_limit"
LONG_RUNNING_KEY = "salesforce_long_running_seconds"
CONCURRENT_LIMIT, LONG_RUNNING_SECONDS = 25, 20.0
DEFAULT_BATCH_SIZE, MIN_BATCH_SIZE = 2000, 200
CURSOR_TTL_SECONDS = 15 * 60  # Salesforce releases an idle query cursor after 15 minutes
MAX_OPEN_CURSORS = 50  # beyond this the least recently used cursor is released
# The two REQUEST_LIMIT_EXCEEDED messages Salesforce answers (with 403) for these limits.
DAILY_LIMIT_MESSAGE = "TotalRequests Limit exceeded."
CONCURRENT_LIMIT_MESSAGE = "ConcurrentPerOrgLongTxn Limit exceeded."

_DATA = "/services/data/{version}"
_VERSION = re.compile(r"^v\d+\.\d$")
_CHANGE_FIELDS = ("SystemModstamp", "LastModifiedDate")
_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
# describe ``type`` -> how SOQL compares the field (``soql.FieldInfo.type``); the rest compare as text.
_SOQL_TYPES = {"id": "id", "reference": "id", "currency": "double", "double": "double", "percent": "double",
               "int": "double", "boolean": "boolean", "date": "date", "datetime": "datetime"}
# Values Salesforce fills in on create when the request leaves them out (describe's
# ``defaultedOnCreate``; Object Reference: the org's corporate currency, the running user as
# owner, a new contract's Draft status, an unchecked checkbox).
_CREATE_DEFAULTS: dict[str, Any] = {"CurrencyIsoCode": "USD", "OwnerId": catalog.RUN_AS_USER_ID,
                                    "Status": "Draft", "HasOptedOutOfEmail": False}
_PARENT_IDS = "__parents__"  # where a query's working copy of a record keeps the parents it looked up
# Auto-number fields Salesforce assigns on create: object -> (field, display format).
_AUTO_NUMBERS = {"Contract": ("ContractNumber", "{:08d}"),
                 **{name: ("Name", text) for name, text in certinia.AUTO_NUMBERS.items()}}
_STATUS_CODES = {"Draft": "Draft", "In Approval Process": "InApproval", "Activated": "Activated",
                 "Expired": "Expired", "Terminated": "Terminated"}


# -- object catalogue --------------------------------------------------------------------------


@dataclass(frozen=True)
class SObjectType:
    spec: catalog.SObjectSpec
    fields: dict[str, FieldInfo]  # lower-cased name -> info
    required: tuple[str, ...]  # needed to create a record
    read_only: frozenset[str]  # system, formula and auto-number fields a client cannot write

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def prefix(self) -> str:
        return self.spec.key_prefix


def _field_info(spec: catalog.FieldSpec) -> FieldInfo:
    target = spec.reference_to[0] if spec.reference_to else None
    return FieldInfo(spec.name, _SOQL_TYPES.get(spec.type, "string"), target, spec.relationship_name)


def _sobject_type(spec: catalog.SObjectSpec) -> SObjectType:
    fields = {f.name.lower(): _field_info(f) for f in spec.fields}
    required = tuple(f.name for f in spec.fields if f.required_on_create)
    read_only = frozenset(f.name for f in spec.fields if not f.createable and not f.updateable)
    return SObjectType(spec, fields, required, read_only)


def org_sobjects(packages: tuple[str, ...] = ()) -> dict[str, catalog.SObjectSpec]:
    """The org's objects: the standard ones, plus those of each managed package installed."""
    unknown = set(packages) - {certinia.PACKAGE}
    if unknown:
        raise ValueError(f"unknown Salesforce package(s): {', '.join(sorted(unknown))}")
    objects = dict(catalog.SOBJECTS)
    return certinia.install(objects) if certinia.PACKAGE in packages else objects


def sobject_types(packages: tuple[str, ...] = ()) -> dict[str, SObjectType]:
    """The sObjects the sandbox's org serves, from its catalogue."""
    return {name: _sobject_type(spec) for name, spec in org_sobjects(packages).items()}


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
    parents: dict[str, soql.ParentPath] = field(default_factory=dict)  # relationship fields selected
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


# -- the concurrent long-running request limit -------------------------------------------------


class LongRunningGate:
    """Middleware for the org's concurrent long-running request limit ("API Request Limits and
    Allocations": requests running 20 seconds or longer count; past the limit "the API returns a
    REQUEST_LIMIT_EXCEEDED exception code" and new requests are refused until fewer run). The REST
    API answers that with 403 ("Status Codes and Error Responses")."""

    def __init__(self, settings: Callable[[], tuple[int, float]]) -> None:
        self._settings = settings  # () -> (limit, seconds after which a request is long-running)
        self._lock = threading.Lock()
        self._started: dict[int, float] = {}
        self._keys = itertools.count()

    def __call__(self, request: Request, next_handler: Handler) -> Response:
        if request.platform != PLATFORM or not request.path.startswith("/services/data/"):
            return next_handler(request)
        limit, threshold = self._settings()
        now = time.monotonic()
        with self._lock:
            if sum(1 for started in self._started.values() if now - started >= threshold) >= limit:
                return sf_error(403, CONCURRENT_LIMIT_MESSAGE, "REQUEST_LIMIT_EXCEEDED")
            key = next(self._keys)
            self._started[key] = now
        try:
            return next_handler(request)
        finally:
            with self._lock:
                del self._started[key]


# -- the API -----------------------------------------------------------------------------------


class SalesforceApi:
    def __init__(self, ctx: SandboxContext) -> None:
        self.ctx = ctx
        self.store = ctx.store
        self.types = sobject_types(tuple(ctx.config.salesforce_packages))
        self.catalogue = {name: t.fields for name, t in self.types.items()}
        self.cursors = CursorRegistry()
        self._lock = threading.Lock()  # serializes the usage counter and id sequences
        self.long_running = LongRunningGate(self._concurrency_settings)

    def _concurrency_settings(self) -> tuple[int, float]:
        limit, seconds = self.store.kv_get(CONCURRENT_LIMIT_KEY), self.store.kv_get(LONG_RUNNING_KEY)
        return (int(limit) if limit is not None else CONCURRENT_LIMIT,
                float(seconds) if seconds is not None else LONG_RUNNING_SECONDS)

    def register(self, router: Router) -> None:
        # Outermost middleware: a request counts as running from the moment it arrives, so time a
        # fault injector spends on a slow answer counts towards "long-running" as it would there.
        router.middleware.insert(0, self.long_running)
        router.add("POST", "/services/oauth2/token", PLATFORM, self.token)
        routes: list[tuple[str, str, Handler]] = [
            ("GET", "", self.resources),
            ("GET", "/limits", self.limits),
            ("GET", "/query", self.query),
            ("GET", "/queryAll", self.query_all),
            ("GET", "/query/{locator}", self.query_more),
            ("GET", "/queryAll/{locator}", self.query_more),
            ("GET", "/sobjects", self.describe_global),
            ("GET", "/sobjects/{sobject}", self.basic_information),
            ("GET", "/sobjects/{sobject}/describe", self.describe),
            ("GET", "/sobjects/{sobject}/deleted", self.get_deleted),
            ("GET", "/sobjects/{sobject}/updated", self.get_updated),
            ("GET", "/sobjects/{sobject}/{record_id}", self.get_record),
            ("PATCH", "/sobjects/{sobject}/{record_id}", self.update_record),
            ("DELETE", "/sobjects/{sobject}/{record_id}", self.delete_record),
            ("GET", "/sobjects/{sobject}/{id_field}/{value}", self.get_by_external_id),
            ("PATCH", "/sobjects/{sobject}/{id_field}/{value}", self.upsert_record),
        ]
        add_routes(router, PLATFORM, routes, self._data_endpoint, prefix=_DATA)
        # Anything else under the org's REST and OAuth paths answers in Salesforce's own error
        # shape ("Status Codes and Error Responses"), not the router's generic one.
        for prefix in ("/services/data/", "/services/oauth2/"):
            router.fallback(prefix, self._unmatched, platform=PLATFORM)

    # -- auth and API allowance --------------------------------------------------------------
    def token(self, request: Request) -> Response:
        """OAuth 2.0 client credentials flow ("OAuth 2.0 Client Credentials Flow for
        Server-to-Server Integration", Salesforce Help ``remoteaccess_oauth_client_credentials_flow``).

        The client authenticates with its consumer key and secret either as form parameters or
        by HTTP Basic (RFC 6749 section 2.3.1; simple-salesforce sends Basic). A refused client
        gets the token endpoint's OAuth error body with status 400.
        """
        form = {**request.query, **request.form()}
        grant = form.get("grant_type")
        if grant not in ("client_credentials", "refresh_token"):
            return json_response({"error": "unsupported_grant_type",
                                  "error_description": "grant type not supported"}, 400)
        creds = self.ctx.config.credentials[PLATFORM]
        client = request.basic_credentials
        client_id = form["client_id"] if "client_id" in form else (client[0] if client else None)
        if not same_secret(client_id, creds.get("client_id")):
            return json_response({"error": "invalid_client_id", "error_description": "client identifier invalid"},
                                 400)
        if not client_authenticated(request, form, creds) or (
                grant == "refresh_token" and not form.get("refresh_token")):
            return json_response({"error": "invalid_client", "error_description": "invalid client credentials"},
                                 400)
        base = base_url(request)
        return token_answer(
            self.ctx.tokens, PLATFORM,
            instance_url=base,
            id=f"{base}/id/{catalog.ORG_ID}/{catalog.RUN_AS_USER_ID}",
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
            # "API Request Limits and Allocations": past the org's total allocation every call is
            # refused with REQUEST_LIMIT_EXCEEDED, which the REST API answers as 403
            # ("Status Codes and Error Responses"), never 429.
            response = handler(request) if allowed else \
                sf_error(403, DAILY_LIMIT_MESSAGE, "REQUEST_LIMIT_EXCEEDED")
            response.headers["Sforce-Limit-Info"] = f"api-usage={used}/{limit}"
            return response

        return guarded

    def _unmatched(self, request: Request, status: int) -> Response:
        if request.path.startswith("/services/data/") and not bearer_accepted(request, self.ctx.tokens, PLATFORM):
            return sf_error(401, "Session expired or invalid", "INVALID_SESSION_ID")
        if status == 405:
            return sf_error(405, f"HTTP Method '{request.method}' not allowed.", "METHOD_NOT_ALLOWED")
        return _not_found()

    def _daily_limit(self) -> int:
        override = self.store.kv_get(LIMIT_KEY)
        return int(override if override is not None else self.ctx.config.salesforce_daily_api_limit)

    def _consume_api_request(self) -> tuple[bool, int, int]:
        """Count one request against today's (sandbox clock) allowance: (allowed, used, limit)."""
        limit = self._daily_limit()
        with self._lock:
            used = self._used_today()
            if used >= limit:
                return False, used, limit
            used += 1
            self.store.kv_set(USAGE_KEY, {"day": self.store.now().date().isoformat(), "used": used})
        return True, used, limit

    def _used_today(self) -> int:
        usage = self.store.kv_get(USAGE_KEY) or {}
        return int(usage.get("used", 0)) if usage.get("day") == self.store.now().date().isoformat() else 0

    # -- resources, limits, describe -----------------------------------------------------------
    def resources(self, request: Request) -> Response:
        """"Resources by Version": the resources this version serves, by name."""
        root = f"/services/data/{request.params['version']}"
        names = ("limits", "query", "queryAll", "sobjects")
        return json_response({name: f"{root}/{name}" for name in names})

    def limits(self, request: Request) -> Response:
        """"Limits": every org limit as ``{"Max": n, "Remaining": n}``; the daily API request
        allocation is ``DailyApiRequests`` (this very call already counted)."""
        limit = self._daily_limit()
        body: dict[str, Any] = {
            "ConcurrentAsyncGetReportInstances": {"Max": 200, "Remaining": 200},
            "ConcurrentSyncReportRuns": {"Max": 20, "Remaining": 20},
            "DailyApiRequests": {"Max": limit, "Remaining": max(0, limit - self._used_today())},
            "DailyAsyncApexExecutions": {"Max": 250000, "Remaining": 250000},
            "DailyBulkApiBatches": {"Max": 15000, "Remaining": 15000},
            "DailyBulkV2QueryJobs": {"Max": 10000, "Remaining": 10000},
            "DataStorageMB": {"Max": 1024, "Remaining": 1024},
            "FileStorageMB": {"Max": 1024, "Remaining": 1024},
            "HourlyODataCallout": {"Max": 10000, "Remaining": 10000},
            "SingleEmail": {"Max": 5000, "Remaining": 5000},
        }
        return json_response(body)

    def describe_global(self, request: Request) -> Response:
        """"Describe Global": the org's objects with their object-level properties and URLs."""
        version = request.params["version"]
        return json_response({
            "encoding": "UTF-8",
            "maxBatchSize": 200,
            "sobjects": [_object_properties(t.spec, version) for t in self.types.values()],
        })

    def basic_information(self, request: Request) -> Response:
        """"sObject Basic Information": the object's properties and recently viewed items."""
        sobject = self._sobject(request)
        if sobject is None:
            return _not_found()
        return json_response({"objectDescribe": _object_properties(sobject.spec, request.params["version"]),
                              "recentItems": []})

    def describe(self, request: Request) -> Response:
        """"sObject Describe": every field with its type and properties, child relationships,
        record types and URLs."""
        sobject = self._sobject(request)
        if sobject is None:
            return _not_found()
        version = request.params["version"]
        children = [
            {"cascadeDelete": False, "childSObject": child.name, "deprecatedAndHidden": False, "field": f.name,
             "junctionIdListNames": [], "junctionReferenceTo": [],
             "relationshipName": child.label_plural.replace(" ", "") + ("__r" if f.custom else ""),
             "restrictedDelete": False}
            for child in (t.spec for t in self.types.values()) for f in child.fields
            if sobject.name in f.reference_to and f.name not in ("CreatedById", "LastModifiedById", "OwnerId")
        ]
        return json_response({
            **_object_properties(sobject.spec, version),
            "actionOverrides": [],
            "childRelationships": children,
            "compactLayoutable": True,
            "fields": [_field_properties(f, sobject.name) for f in sobject.spec.fields],
            "listviewable": None,
            "lookupLayoutable": None,
            "namedLayoutInfos": [],
            "networkScopeFieldName": None,
            "recordTypeInfos": [{"active": True, "available": True, "defaultRecordTypeMapping": True,
                                 "developerName": "Master", "master": True, "name": "Master",
                                 "recordTypeId": "012000000000000AAA",
                                 "urls": {"layout": f"/services/data/{version}/sobjects/{sobject.name}/describe/"
                                                    "layouts/012000000000000AAA"}}],
            "searchLayoutable": True,
            "supportedScopes": [{"label": "All " + sobject.spec.label_plural.lower(), "name": "everything"},
                                {"label": "My " + sobject.spec.label_plural.lower(), "name": "mine"}],
        })

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
            bound = soql.bind(soql.parse(text), self.catalogue, today=self.store.now().date())
        except SoqlError as exc:
            return sf_error(400, exc.message, exc.error_code)
        records = self._execute(bound, include_deleted)
        if bound.count:
            # "COUNT()": the number of matching rows is the answer's totalSize; no records.
            return json_response({"totalSize": len(records), "done": True, "records": []})
        cursor = Cursor(bound.sobject, bound.fields, [r["Id"] for r in records],
                        _batch_size(request) or DEFAULT_BATCH_SIZE, dict(bound.parents or {}))
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
        records = [self._with_parents(current[rid], cursor.parents) for rid in chunk if rid in current]
        return self._page(request, cursor, records, offset, cursor_id, consumed=len(chunk))

    def _execute(self, bound: BoundQuery, include_deleted: bool) -> list[dict]:
        scanned = self.store.scan(PLATFORM, bound.sobject, include_deleted=include_deleted,
                                  **self._scan_filters(bound))
        if bound.parents:
            scanned = [self._with_parents(record, bound.parents) for record in scanned]
        records = [record for record in scanned if bound.matches(record)]
        if bound.order_by and not _store_order_suffices(bound):
            records = bound.sort(records)
        return records if bound.limit is None else records[:bound.limit]

    def _with_parents(self, record: dict, parents: Mapping[str, soql.ParentPath] | None) -> dict:
        """A copy of ``record`` carrying each parent relationship field under its path name
        (``Account.Name``), read from the parent records it looks up (None past a blank lookup)."""
        if not parents:
            return record
        enriched = dict(record)
        chains: dict[str, list[tuple[str, str] | None]] = {}
        for name, path in parents.items():
            current: dict | None = record
            chain: list[tuple[str, str] | None] = []
            for lookup, target in path.steps:
                parent_id = current.get(lookup.name) if current else None
                current = self.store.get(PLATFORM, target, str(parent_id)) if parent_id else None
                chain.append((target, current["Id"]) if current else None)
            enriched[name] = current.get(path.field.name) if current else None
            chains[name] = chain
        enriched[_PARENT_IDS] = chains
        return enriched

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
        if fields is None:
            return {"attributes": attributes, **{k: v for k, v in record.items() if k != _PARENT_IDS}}
        values: dict[str, Any] = {}
        for info in fields:
            if "." not in info.name:
                values[info.name] = record.get(info.name)
                continue
            # "Using Relationship Queries": a parent's fields come back nested under the
            # relationship name, each level with its own attributes; a blank lookup is null.
            *relationships, leaf = info.name.split(".")
            ids = record.get(_PARENT_IDS, {}).get(info.name, ())
            node: dict[str, Any] | None = values
            for depth, relationship in enumerate(relationships):
                if node is None:
                    break
                parent = ids[depth] if depth < len(ids) else None
                if parent is None:
                    node.setdefault(relationship, None)
                    node = None
                    break
                if node.get(relationship) is None:
                    node[relationship] = {"attributes": {
                        "type": parent[0], "url": f"/services/data/{version}/sobjects/{parent[0]}/{parent[1]}"}}
                node = node[relationship]
            if node is not None:
                node[leaf] = record.get(info.name)
        return {"attributes": attributes, **values}

    # -- getDeleted ----------------------------------------------------------------------------
    def get_updated(self, request: Request) -> Response:
        """"sObject Get Updated" (``resources_getupdated.htm``): the ids of the object's records
        changed (created or updated; not deleted: those are getDeleted's) between ``start`` and
        ``end``, and ``latestDateCovered``, the last moment the answer is complete for."""
        sobject = self._sobject(request)
        if sobject is None:
            return _not_found()
        window = _replication_window(request)
        if isinstance(window, Response):
            return window
        start, end = window
        covered = min(end, self.store.now()).replace(second=0, microsecond=0)
        return json_response({"ids": self.store.ids_changed_between(PLATFORM, sobject.name, start, covered),
                              "latestDateCovered": sf_timestamp(covered)})

    def get_deleted(self, request: Request) -> Response:
        sobject = self._sobject(request)
        if sobject is None:
            return _not_found()
        window = _replication_window(request)
        if isinstance(window, Response):
            return window
        start, end = window
        # "sObject Get Deleted": "Deleted records are written to a delete log which this resource
        # accesses": records moved to the recycle bin (soft deletes, still visible to queryAll)
        # as well as purged ones.
        deleted = sorted(
            [*self.store.deleted_between(PLATFORM, sobject.name, start, end),
             *self.store.soft_deleted_between(PLATFORM, sobject.name, start, end)],
            key=lambda entry: (entry[1], entry[0]))
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

    def delete_record(self, request: Request) -> Response:
        """"sObject Rows" DELETE: 204 and no body; the record moves to the recycle bin, where
        queryAll still reads it with IsDeleted = true, and the delete log (getDeleted) lists it."""
        sobject = self._sobject(request)
        if sobject is None:
            return _not_found()
        existing = self.store.get(PLATFORM, sobject.name, unquote(request.params["record_id"]),
                                  include_deleted=True)
        if existing is None:
            return _not_found()
        if existing.get("IsDeleted"):
            return sf_error(404, "entity is deleted", "ENTITY_IS_DELETED")
        record = {**existing, "IsDeleted": True}
        moment = self._stamp(sobject, record)
        self.store.soft_delete(PLATFORM, sobject.name, record["Id"], record, moment)
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
        record.update(certinia.create_defaults(sobject.spec))
        record.update(values)
        record["Id"] = self._new_id(sobject)
        auto = _AUTO_NUMBERS.get(sobject.name)
        if auto is not None:
            field_name, text = auto
            record[field_name] = text.format(self._next_sequence(catalog.AUTO_NUMBER_KEY.format(sobject.name)))
        self._save(sobject, record, created=True)
        return json_response({"id": record["Id"], "success": True, "errors": [], "created": True}, 201)

    def _stamp(self, sobject: SObjectType, record: dict[str, Any]) -> datetime:
        """Set the audit fields of a change by the run-as user; returns the change time."""
        now = self.store.now()
        now = now.replace(microsecond=now.microsecond // 1000 * 1000)  # the wire keeps milliseconds
        stamp = sf_timestamp(now)
        for name in _CHANGE_FIELDS:
            if name.lower() in sobject.fields:
                record[name] = stamp
        record["LastModifiedById"] = catalog.RUN_AS_USER_ID
        return now

    def _save(self, sobject: SObjectType, record: dict[str, Any], created: bool) -> None:
        now = self._stamp(sobject, record)
        if created:
            record["CreatedDate"], record["IsDeleted"] = sf_timestamp(now), False
            record["CreatedById"] = catalog.RUN_AS_USER_ID
        _derive(sobject.name, record)
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
        # "sObject Rows by External ID": the Id, or a field defined as an External ID in the org.
        spec = sobject.spec.field(name)
        return spec.name if spec is not None and (spec.name == "Id" or spec.external_id) else None

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


def _derive(sobject: str, record: dict[str, Any]) -> None:
    """Fields Salesforce computes on save (Object Reference): an opportunity's closed/won flags
    follow its stage and its expected revenue is amount x probability; a contact's Name joins its
    name parts; a contract's end date is its start plus its term in months, and its status
    category follows its status."""
    if sobject == "Opportunity":
        stage = str(record.get("StageName") or "")
        record["IsClosed"], record["IsWon"] = stage.startswith("Closed"), stage == "Closed Won"
        amount, probability = record.get("Amount"), record.get("Probability")
        both = amount is not None and probability is not None
        record["ExpectedRevenue"] = float(amount) * float(probability) / 100 if both else None
    elif sobject == "Contact":
        record["Name"] = " ".join(str(p) for p in (record.get("FirstName"), record.get("LastName")) if p)
    elif sobject == "Contract":
        start, term = record.get("StartDate"), record.get("ContractTerm")
        if start and term is not None:
            record["EndDate"] = (add_months(date.fromisoformat(str(start)[:10]), int(term))
                                 - timedelta(days=1)).isoformat()
        if record.get("Status") in _STATUS_CODES:
            record["StatusCode"] = _STATUS_CODES[record["Status"]]
    else:
        certinia.derive(sobject, record)


def _object_properties(spec: catalog.SObjectSpec, version: str) -> dict[str, Any]:
    """The object-level properties "Describe Global" lists and "sObject Describe" starts with."""
    root = f"/services/data/{version}/sobjects/{spec.name}"
    return {
        "activateable": False, "associateEntityType": None, "associateParentEntity": None,
        "createable": True, "custom": spec.custom, "customSetting": False, "deepCloneable": False,
        "deletable": True, "deprecatedAndHidden": False, "feedEnabled": True, "hasSubtypes": False,
        "isInterface": False, "isSubtype": False, "keyPrefix": spec.key_prefix, "label": spec.label,
        "labelPlural": spec.label_plural, "layoutable": True, "mergeable": spec.name in ("Account", "Contact"),
        "mruEnabled": True, "name": spec.name, "queryable": True, "replicateable": True, "retrieveable": True,
        "searchable": True, "triggerable": True, "undeletable": True, "updateable": True,
        "urls": {"compactLayouts": f"{root}/describe/compactLayouts", "rowTemplate": f"{root}/{{ID}}",
                 "approvalLayouts": f"{root}/describe/approvalLayouts", "describe": f"{root}/describe",
                 "quickActions": f"{root}/quickActions", "layouts": f"{root}/describe/layouts", "sobject": root},
    }


def _field_properties(spec: catalog.FieldSpec, sobject: str) -> dict[str, Any]:
    """One entry of "sObject Describe"'s ``fields``, with the properties a client reads."""
    numeric = spec.type in ("currency", "double", "percent")
    auto_number = _AUTO_NUMBERS.get(sobject, ("",))[0] == spec.name
    textual = catalog.SOAP_TYPES[spec.type] == "xsd:string"
    return {
        "aggregatable": spec.type not in ("textarea",), "autoNumber": auto_number,
        "byteLength": spec.length * 3 if textual or spec.type in ("id", "reference") else 0,
        "calculated": spec.calculated, "calculatedFormula": None, "cascadeDelete": False,
        "caseSensitive": False, "compoundFieldName": None, "controllerName": None,
        "createable": spec.createable, "custom": spec.custom, "defaultValue": None,
        "defaultValueFormula": None, "defaultedOnCreate": spec.defaulted_on_create,
        "dependentPicklist": False, "deprecatedAndHidden": False, "digits": 9 if spec.type == "int" else 0,
        "displayLocationInDecimal": False, "encrypted": False, "externalId": spec.external_id,
        "extraTypeInfo": None, "filterable": spec.type != "textarea" or spec.length <= 255,
        "filteredLookupInfo": None, "groupable": spec.type not in ("currency", "double", "percent", "textarea"),
        "highScaleNumber": False, "htmlFormatted": False, "idLookup": spec.name == "Id" or spec.external_id,
        "inlineHelpText": None, "label": spec.label, "length": spec.length if textual else 0, "mask": None,
        "maskType": None, "name": spec.name, "nameField": spec.name == "Name", "namePointing": False,
        "nillable": spec.nillable, "permissionable": spec.nillable and not spec.calculated and spec.createable,
        "picklistValues": [{"active": True, "defaultValue": False, "label": value, "validFor": None,
                            "value": value} for value in spec.picklist],
        "polymorphicForeignKey": False, "precision": 18 if numeric else 0,
        "queryByDistance": False, "referenceTargetField": None, "referenceTo": list(spec.reference_to),
        "relationshipName": spec.relationship_name, "relationshipOrder": None,
        "restrictedDelete": False, "restrictedPicklist": False, "scale": 2 if numeric else 0,
        "searchPrefilterable": False, "soapType": catalog.SOAP_TYPES[spec.type], "sortable": spec.type != "textarea",
        "type": spec.type, "unique": spec.unique, "updateable": spec.updateable,
        "writeRequiresMasterRead": False,
    }


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
