"""Dynamics 365 Finance and Operations: Microsoft Entra ID tokens and the OData v4 service.

Rules, each with its source (entity-level sources are in ``ps_sandbox.catalog.d365``):

* Token: ``POST /{tenant}/oauth2/v2.0/token`` with ``grant_type=client_credentials``,
  ``client_id``, ``client_secret`` and ``scope=<environment URL>/.default``; the answer carries
  ``token_type``, ``expires_in``, ``ext_expires_in`` and ``access_token``
  (learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-client-creds-grant-flow). Refusals
  answer ``error``, ``error_description`` ("AADSTS<code>: ..."), ``error_codes``, ``timestamp``,
  ``trace_id``, ``correlation_id`` and ``error_uri``
  (learn.microsoft.com/en-us/entra/identity-platform/reference-error-codes): AADSTS7000215 invalid
  client secret (401 invalid_client), AADSTS700016 application not found in the directory (400
  unauthorized_client), AADSTS90002 tenant not found (400 invalid_request), AADSTS70011 invalid
  scope (400 invalid_scope), AADSTS70003 unsupported grant type. The tenant and the environment
  URL are this sandbox (the environment is wherever the client reached it).
* Data requests carry ``Authorization: Bearer``; an unknown or expired token answers 401 with an
  RFC 6750 ``WWW-Authenticate: Bearer`` challenge and no body [UNVERIFIED: F&O's exact 401 body].
* OData (learn.microsoft.com/en-us/dynamics365/fin-ops-core/dev-itpro/data-entities/odata): the
  service root is ``/data``; ``$filter $count $orderby $skip $top $select``; server-driven
  paging "with a maximum page size of 10,000" (so 10,000 a page unless the client's
  ``Prefer: odata.maxpagesize`` asks for fewer; the answer then says ``Preference-Applied``, OData
  4.0 Part 1 section 8.2.8.3); ``@odata.nextLink`` carries a ``$skiptoken``; company-specific
  entities answer the user's default company unless ``cross-company=true``; every key field must
  be given to address an entity; the change sets of a ``$batch`` are atomic ("either all the
  requests are run successfully or, if any request fails, none of the requests are run").
  ``$expand`` is not emulated.
* Writes: POST answers 201 with the created entity; PATCH on the key URL answers 204 (OData 4.0
  Part 1 section 11.4.3, no ``Prefer: return=representation``); a write the entity refuses
  answers the OData error body ``{"error": {"code", "message", "innererror": {"message", "type",
  "stacktrace"}}}`` with message "An error has occurred." and the entity's infolog in
  ``innererror.message`` ("Write failed for table row of type '<AOT entity>'. Infolog: ...")
  [UNVERIFIED: the body as community reports show it; status 400 for a refused write].
* Service protection (learn.microsoft.com/en-us/dynamics365/fin-ops-core/dev-itpro/data-entities/
  service-protection-api-limits): per user per web server, 6000 requests in a 5-minute sliding window and 52 concurrent
  requests; over either, 429 Too Many Requests with ``Retry-After`` and the documented message.
  The sliding window is approximated by ``ps_sandbox.ratelimit``'s token bucket (6000 a burst,
  refilled at 20 a second), whose wait is the ``Retry-After``.
  The execution-time limit (1200 s per 5 minutes) is not emulated. The limits are
  ``SandboxConfig.d365_requests_per_5_minutes`` / ``d365_concurrency_limit``, overridable through
  ``PUT /_sandbox/limits``; injected faults come from ``ps_sandbox.faults``.
"""

from __future__ import annotations

import hashlib
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from http import HTTPStatus
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit

import orjson

from ps_sandbox import d365_data, odata
from ps_sandbox.catalog import d365 as catalog
from ps_sandbox.http import Handler, Request, Response, Router, json_response
from ps_sandbox.platforms.common import (
    ApiError,
    add_routes,
    answers_api_errors,
    base_url,
    bearer_accepted,
    same_secret,
)
from ps_sandbox.querylang import timestamp_or_none
from ps_sandbox.ratelimit import RateLimiter
from ps_sandbox.store import SandboxStore

if TYPE_CHECKING:
    from ps_sandbox.context import SandboxContext

PLATFORM = d365_data.PLATFORM
DATA = "/data"
MAX_PAGE_SIZE = 10_000  # [ODATA] "a maximum page size of 10,000"
RATE_KEY = "d365_requests_per_5_minutes"
CONCURRENCY_KEY = "d365_concurrency_limit"
TTL_KEY = "d365_token_ttl_seconds"
WINDOW_SECONDS = 300.0
COMPANY = catalog.COMPANY
JSON_TYPE = "application/json; odata.metadata=minimal"
_ODATA_HEADERS = {"Content-Type": JSON_TYPE, "OData-Version": "4.0"}
# Messages of the service protection limits, verbatim from the documentation (typo included).
REQUESTS_EXCEEDED = "Number of requests exeeded the limit of {limit} over the time window of 300 seconds."
CONCURRENCY_EXCEEDED = "Number of concurrent requests exceeded the limit of {limit}."
WRITE_EXCEPTION = "Microsoft.Dynamics.Platform.Integration.Services.OData.AxODataWriteException"
AMOUNT_TOLERANCE = Decimal("0.01")


# -- errors -----------------------------------------------------------------------------------------


def odata_error(status: int, message: str, inner: str | None = None,
                headers: Mapping[str, str] | None = None) -> ApiError:
    error: dict[str, Any] = {"code": "", "message": message}
    if inner is not None:
        error["innererror"] = {"message": inner, "type": WRITE_EXCEPTION, "stacktrace": ""}
    return ApiError(status, {"error": error}, {**_ODATA_HEADERS, **(headers or {})})


def write_failed(entity: catalog.EntitySet, infolog: str) -> ApiError:
    return odata_error(400, "An error has occurred.",
                       f"Write failed for table row of type '{entity.aot}'. Infolog: Error: {infolog}")


def _entra_error(status: int, error: str, code: int, description: str) -> Response:
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    trace, correlation = str(uuid.uuid4()), str(uuid.uuid4())
    return json_response({
        "error": error,
        "error_description": f"AADSTS{code}: {description}\r\nTrace ID: {trace}\r\nCorrelation ID: "
                             f"{correlation}\r\nTimestamp: {now}",
        "error_codes": [code], "timestamp": now, "trace_id": trace, "correlation_id": correlation,
        "error_uri": f"https://login.microsoftonline.com/error?code={code}"}, status)


# -- a unit of work: the writes of one request or one change set ----------------------------------


@dataclass
class _Work:
    """Writes kept apart until ``commit`` stores them in one transaction; reads see them first."""

    store: SandboxStore
    # A record deleted in this unit of work is pending as None.
    pending: dict[tuple[str, str], dict[str, Any] | None] = field(default_factory=dict)

    def get(self, entity: str, record_id: str) -> dict[str, Any] | None:
        if (entity, record_id) in self.pending:
            return self.pending[(entity, record_id)]
        return self.store.get(PLATFORM, entity, record_id)

    def put(self, entity: str, record_id: str, body: dict[str, Any]) -> None:
        self.pending[(entity, record_id)] = body

    def delete(self, entity: str, record_id: str) -> None:
        self.pending[(entity, record_id)] = None

    def where(self, entity: str, **equals: Any) -> list[dict[str, Any]]:
        stored: dict[str, dict[str, Any] | None] = {
            d365_data.store_id(catalog.ENTITY_SETS[entity], row): row
            for row in self.store.scan(PLATFORM, entity, equals=equals)}
        for (name, record_id), body in self.pending.items():
            if name == entity and (body is None or all(body.get(k) == v for k, v in equals.items())):
                stored[record_id] = body
        return [body for body in stored.values() if body is not None]

    def commit(self) -> None:
        if self.pending:
            now = self.store.now()
            self.store.put_together(
                ((PLATFORM, entity, record_id, now, body) for (entity, record_id), body in self.pending.items()
                 if body is not None),
                [(PLATFORM, entity, record_id, now) for (entity, record_id), body in self.pending.items()
                 if body is None])
            self.pending.clear()


class _ChangesetFailed(Exception):
    def __init__(self, response: Response, content_id: str | None) -> None:
        super().__init__(response.status)
        self.response, self.content_id = response, content_id


# -- values -----------------------------------------------------------------------------------------

# Enums and dates are typed as F&O's metadata types them: enums by name as strings here (a real
# document declares EnumTypes), date-only properties as Edm.DateTimeOffset.
_CSDL_TYPES = {catalog.DATE: "Edm.DateTimeOffset", catalog.ENUM: "Edm.String"}
_DEFAULTS = {catalog.STRING: "", catalog.DECIMAL: 0, catalog.INT64: 0, catalog.INT32: 0,
             catalog.DATE: "1900-01-01T12:00:00Z", catalog.DATETIME: "1900-01-01T00:00:00Z",
             catalog.ENUM: None, catalog.BOOL: False}


def render(entity: catalog.EntitySet, body: Mapping[str, Any]) -> dict[str, Any]:
    """Every property of the entity, unset ones at their type's empty value (F&O's strings are
    never null; an empty date is 1900-01-01) [UNVERIFIED for every property]."""
    return {name: body.get(name, _DEFAULTS[kind]) for name, kind in entity.fields.items()}


def etag(body: Mapping[str, Any]) -> str:
    digest = hashlib.sha1(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]
    return f'W/"{digest}"'


def _wire_value(entity: catalog.EntitySet, name: str, value: Any) -> Any:
    """A request body's value as stored, or a write error naming the property."""
    kind = entity.fields[name]
    if value is None:
        return None
    try:
        if kind in (catalog.STRING, catalog.ENUM):
            if not isinstance(value, str):
                raise ValueError
            return value
        if kind in (catalog.INT64, catalog.INT32):
            if isinstance(value, bool) or not isinstance(value, int | str):
                raise ValueError
            return int(value)
        if kind == catalog.DECIMAL:
            if isinstance(value, bool) or not isinstance(value, int | float | str):
                raise ValueError
            return d365_data.wire_decimal(Decimal(str(value)))
        if kind == catalog.BOOL:
            if not isinstance(value, bool):
                raise ValueError
            return value
        moment = timestamp_or_none(value if "T" in str(value) else f"{value}T00:00:00Z")
        if moment is None:
            raise ValueError
        return d365_data.wire_date(moment.date()) if kind == catalog.DATE else d365_data.wire_datetime(moment)
    except (ValueError, InvalidOperation):
        raise odata_error(400, f"Cannot convert the value {value!r} of property '{name}' to the expected type "
                               f"'{kind}'.") from None


def _decimal(value: Any) -> Decimal:
    return Decimal(str(value if value is not None else 0))


# -- the API -----------------------------------------------------------------------------------------


class ConcurrencyGate:
    """Requests in flight per user; past the limit, 429 (service protection, concurrent requests)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.in_flight: dict[str, int] = {}

    def enter(self, user: str, limit: int) -> bool:
        with self._lock:
            if limit > 0 and self.in_flight.get(user, 0) >= limit:
                return False
            self.in_flight[user] = self.in_flight.get(user, 0) + 1
            return True

    def leave(self, user: str) -> None:
        with self._lock:
            self.in_flight[user] -= 1


class D365Api:
    def __init__(self, ctx: SandboxContext) -> None:
        self.ctx = ctx
        self.store = ctx.store
        self.limiter = RateLimiter()
        self.gate = ConcurrencyGate()
        self._write_lock = threading.Lock()  # a unit of work reads, allocates ids and commits alone
        self._derived = False

    @property
    def creds(self) -> dict[str, str]:
        return self.ctx.config.credentials["d365"]

    def _setting(self, key: str) -> int:
        override = self.store.kv_get(key)
        return int(override if override is not None else getattr(self.ctx.config, key))

    def register(self, router: Router) -> None:
        router.add("POST", "/{tenant}/oauth2/v2.0/token", PLATFORM, answers_api_errors(self.token))
        routes: list[tuple[str, str, Handler]] = [
            (method, path, self.data)
            for method in ("GET", "POST", "PATCH", "DELETE")
            for path in (DATA, DATA + "/{resource}", DATA + "/{resource}/{part}")
        ]
        add_routes(router, PLATFORM, routes, self._protected)
        router.fallback(DATA + "/", self._not_routed, platform=PLATFORM, through_middleware=True)

    def _not_routed(self, request: Request, status: int) -> Response:
        message = "The HTTP method is not allowed here." if status == 405 else \
            f"No HTTP resource was found that matches the request URI '{request.path}'."
        return odata_error(status, message).response

    # -- Microsoft Entra ID --------------------------------------------------------------------------
    def token(self, request: Request) -> Response:
        tenant = request.params["tenant"]
        if tenant not in (self.creds["tenant"], self.creds.get("tenant_domain")):
            return _entra_error(400, "invalid_request", 90002, f"Tenant '{tenant}' not found. Check to make sure "
                                "you have the correct tenant ID and are signing into the correct cloud.")
        form = request.form()
        if form.get("grant_type") != "client_credentials":
            return _entra_error(400, "unsupported_grant_type", 70003,
                                "The app requested an unsupported grant type.")
        if not same_secret(form.get("client_id"), self.creds["client_id"]):
            return _entra_error(400, "unauthorized_client", 700016,
                                f"Application with identifier '{form.get('client_id')}' was not found in the "
                                f"directory '{tenant}'.")
        if not same_secret(form.get("client_secret"), self.creds["client_secret"]):
            return _entra_error(401, "invalid_client", 7000215, "Invalid client secret provided. Ensure the secret "
                                "being sent in the request is the client secret value, not the client secret ID.")
        scope = form.get("scope", "")
        environment = base_url(request)  # the client reached the sandbox as its F&O environment
        if scope not in (f"{environment}/.default", f"{environment}//.default"):
            return _entra_error(400, "invalid_scope", 70011, f"The provided value for the input parameter 'scope' "
                                f"isn't valid. The scope {scope} isn't valid.")
        ttl = self._setting(TTL_KEY)
        token = self.ctx.tokens.issue(PLATFORM, ttl)
        return json_response({"token_type": "Bearer", "expires_in": ttl, "ext_expires_in": ttl,
                              "access_token": token})

    # -- authentication, service protection ----------------------------------------------------------
    def _protected(self, handler: Handler) -> Handler:
        handler = answers_api_errors(handler)

        def guarded(request: Request) -> Response:
            if not bearer_accepted(request, self.ctx.tokens, PLATFORM):
                return Response(401, None, {"WWW-Authenticate": 'Bearer error="invalid_token"'})
            user = self.creds["client_id"]  # tokens of the app registration act as its one user
            limit = self._setting(RATE_KEY)
            wait = self.limiter.acquire(user, limit, WINDOW_SECONDS)
            if wait is not None:
                return odata_error(429, REQUESTS_EXCEEDED.format(limit=limit), headers={"Retry-After": str(wait)}
                                   ).response
            concurrency = self._setting(CONCURRENCY_KEY)
            if not self.gate.enter(user, concurrency):
                return odata_error(429, CONCURRENCY_EXCEEDED.format(limit=concurrency),
                                   headers={"Retry-After": "1"}).response
            try:
                self._ensure_data()
                return handler(request)
            finally:
                self.gate.leave(user)

        return guarded

    def _ensure_data(self) -> None:
        if not self._derived:
            d365_data.ensure(self.store)
            self._derived = True

    # -- dispatch -----------------------------------------------------------------------------------
    def data(self, request: Request) -> Response:
        resource = unquote(request.params.get("resource", ""))
        part = unquote(request.params.get("part", "")) or None
        if resource == "$batch" and request.method == "POST" and part is None:
            return self.batch(request)
        if request.method in ("POST", "PATCH", "DELETE"):
            with self._write_lock:
                work = _Work(self.store)
                response = self._execute(request.method, resource, part, request, work)
                work.commit()
            return response
        return self._execute("GET", resource, part, request, None)

    def _execute(self, method: str, resource: str, part: str | None, request: Request,
                 work: _Work | None) -> Response:
        try:
            return self._dispatch(method, resource, part, request, work)
        except odata.ODataError as exc:
            raise odata_error(400, str(exc)) from None

    def _dispatch(self, method: str, resource: str, part: str | None, request: Request,
                  work: _Work | None) -> Response:
        if not resource:
            return self.service_document(request)
        if resource == "$metadata" and method == "GET" and part is None:
            return self.metadata()
        name, key_text = odata.split_resource(resource)
        entity = catalog.ENTITY_SETS.get(name)
        if entity is None:
            raise odata_error(404, f"Resource not found for the segment '{name}'.")
        key = odata.parse_key(key_text, entity.keys) if key_text is not None else None
        if method == "GET":
            if part == "$count" and key is None:
                rows = self._query(request, entity)
                return Response(200, str(len(rows)), {"Content-Type": "text/plain", "OData-Version": "4.0"})
            if part is not None:
                raise odata_error(400, f"The segment '{part}' is not supported by the sandbox.")
            return self.get_one(request, entity, key) if key is not None else self.collection(request, entity)
        assert work is not None
        if method == "POST":
            if key is None and part is None:
                return self.create(request, entity, _json_object(request), work)
            if key is not None and part in entity.navigation:
                return self.create_related(request, entity, key, part, work)
            raise odata_error(405, "POST is allowed on an entity set or a one-to-many navigation property only.")
        if key is None or part is not None:
            raise odata_error(405, f"{method} needs the entity's key URL.")
        if method == "DELETE":
            return self.delete(entity, key, work)
        return self.update(entity, key, _json_object(request), work)

    def service_document(self, request: Request) -> Response:
        base = f"{base_url(request)}{DATA}"
        value = [{"name": name, "kind": "EntitySet", "url": name} for name in catalog.ENTITY_SETS]
        return json_response({"@odata.context": f"{base}/$metadata", "value": value}, headers=_ODATA_HEADERS)

    def metadata(self) -> Response:
        """A CSDL document of the served entity sets (OData 4.0 Part 3), enough for generic
        clients; a real environment's describes thousands of entities, enums as EnumTypes."""
        namespace = "Microsoft.Dynamics.DataEntities"
        types, sets = [], []
        for entity in catalog.ENTITY_SETS.values():
            keys = "".join(f'<PropertyRef Name="{name}"/>' for name in entity.keys)
            properties = "".join(
                f'<Property Name="{name}" Type="{_CSDL_TYPES.get(kind, kind)}" '
                f'Nullable="{str(name not in entity.keys).lower()}"/>' for name, kind in entity.fields.items())
            navigation = "".join(f'<NavigationProperty Name="{nav}" Type="Collection({namespace}.{target})"/>'
                                 for nav, (target, _) in entity.navigation.items())
            types.append(f'<EntityType Name="{entity.name}"><Key>{keys}</Key>{properties}{navigation}</EntityType>')
            sets.append(f'<EntitySet Name="{entity.name}" EntityType="{namespace}.{entity.name}"/>')
        document = (
            '<?xml version="1.0" encoding="utf-8"?><edmx:Edmx Version="4.0" '
            'xmlns:edmx="http://docs.oasis-open.org/odata/ns/edmx"><edmx:DataServices>'
            f'<Schema Namespace="{namespace}" xmlns="http://docs.oasis-open.org/odata/ns/edm">{"".join(types)}'
            f'<EntityContainer Name="Resources">{"".join(sets)}</EntityContainer></Schema>'
            '</edmx:DataServices></edmx:Edmx>')
        return Response(200, document, {"Content-Type": "application/xml", "OData-Version": "4.0"})

    # -- reads ----------------------------------------------------------------------------------------
    def _company(self, request: Request, entity: catalog.EntitySet) -> str | None:
        """The company a read is limited to: the user's default, unless cross-company=true."""
        if not entity.per_company or request.query.get("cross-company", "").lower() == "true":
            return None
        return self.creds["default_company"]

    def _query(self, request: Request, entity: catalog.EntitySet) -> list[dict[str, Any]]:
        """The records a collection read matches, rendered, filtered and ordered."""
        company = self._company(request, entity)
        equals = {COMPANY: company} if company else None
        rows = [render(entity, body) for body in self.store.scan(PLATFORM, entity.name, equals=equals, order="id")]
        text = request.query.get("$filter")
        if text:
            expression = odata.parse_filter(text)
            self._known(entity, odata.fields_of(expression))
            rows = [row for row in rows if odata.matches(expression, row)]
        if request.query.get("$orderby"):
            rows = odata.order_rows(rows, request.query["$orderby"], entity.fields)
        return rows

    def _known(self, entity: catalog.EntitySet, names: Any) -> None:
        for name in names:
            if name not in entity.fields:
                raise odata_error(400, f"Could not find a property named '{name}' on type "
                                       f"'Microsoft.Dynamics.DataEntities.{entity.name}'.")

    def _select(self, request: Request, entity: catalog.EntitySet) -> list[str] | None:
        text = request.query.get("$select")
        if not text:
            return None
        names = [name.strip() for name in text.split(",") if name.strip()]
        self._known(entity, names)
        return names

    def _shape(self, entity: catalog.EntitySet, row: Mapping[str, Any], select: list[str] | None) -> dict:
        values = {name: row[name] for name in select} if select else dict(row)
        return {"@odata.etag": etag(row), **values}

    def collection(self, request: Request, entity: catalog.EntitySet) -> Response:
        select = self._select(request, entity)
        top, skip, token = (_count_option(request, name) for name in ("$top", "$skip", "$skiptoken"))
        rows = self._query(request, entity)
        end = len(rows) if top is None else min(len(rows), (skip or 0) + top)
        start = (skip or 0) + (token or 0)
        asked = _max_page_size(request)
        size = min(asked or MAX_PAGE_SIZE, MAX_PAGE_SIZE)
        page = rows[start:min(start + size, end)]
        base = f"{base_url(request)}{DATA}"
        context = f"{base}/$metadata#{entity.name}" + (f"({','.join(select)})" if select else "")
        body: dict[str, Any] = {"@odata.context": context}
        if request.query.get("$count", "").lower() == "true":
            body["@odata.count"] = len(rows)
        body["value"] = [self._shape(entity, row, select) for row in page]
        if start + len(page) < end:
            body["@odata.nextLink"] = _next_link(base, request, start + len(page) - (skip or 0))
        headers = dict(_ODATA_HEADERS)
        if asked:
            headers["Preference-Applied"] = f"odata.maxpagesize={size}"
        return json_response(body, headers=headers)

    def _find(self, entity: catalog.EntitySet, key: Mapping[str, Any], work: _Work | None) -> dict | None:
        record_id = d365_data.store_id(entity, key)
        return work.get(entity.name, record_id) if work else self.store.get(PLATFORM, entity.name, record_id)

    def get_one(self, request: Request, entity: catalog.EntitySet, key: Mapping[str, Any]) -> Response:
        body = self._find(entity, key, None)
        if body is None:
            raise _not_found(entity, key)
        context = f"{base_url(request)}{DATA}/$metadata#{entity.name}/$entity"
        return json_response({"@odata.context": context,
                              **self._shape(entity, render(entity, body), self._select(request, entity))},
                             headers=_ODATA_HEADERS)

    # -- writes ---------------------------------------------------------------------------------------
    def create(self, request: Request, entity: catalog.EntitySet, payload: Mapping[str, Any], work: _Work,
               bound: Mapping[str, Any] | None = None) -> Response:
        if not entity.writable:
            raise odata_error(405, f"The entity set '{entity.name}' cannot be written through the sandbox.")
        doc = {name: value for name, value in self._changes(entity, payload).items() if value is not None}
        doc.update(bound or {})
        if entity.per_company:
            doc[COMPANY] = (doc.get(COMPANY) or self.creds["default_company"]).lower()
            self._require(work, "LegalEntities", {"LegalEntityId": doc[COMPANY]}, entity, f"Company '{doc[COMPANY]}'")
        _check_filled(entity, doc, entity.required)
        _CREATE_RULES.get(entity.name, _no_rule)(self, entity, doc, work)
        _check_filled(entity, doc, entity.keys)
        record_id = d365_data.store_id(entity, doc)
        if work.get(entity.name, record_id) is not None:
            values = ", ".join(f"{name}={doc[name]}" for name in entity.keys)
            raise write_failed(entity, f"The record already exists. ({values})")
        work.put(entity.name, record_id, doc)
        location = f"{base_url(request)}{DATA}/{entity_path(entity, doc)}"
        body = {"@odata.context": f"{base_url(request)}{DATA}/$metadata#{entity.name}/$entity",
                **self._shape(entity, render(entity, doc), None)}
        return json_response(body, 201, {**_ODATA_HEADERS, "Location": location, "OData-EntityId": location})

    def create_related(self, request: Request, entity: catalog.EntitySet, key: Mapping[str, Any], navigation: str,
                       work: _Work) -> Response:
        """POST to ``Parent(key)/Navigation``: the new record is bound to its parent (OData 4.0
        Part 1 section 11.4.2, create related entities)."""
        parent = self._find(entity, key, work)
        if parent is None:
            raise _not_found(entity, key)
        target, binding = entity.navigation[navigation]
        bound = {child: parent[source] for child, source in binding.items()}
        return self.create(request, catalog.ENTITY_SETS[target], _json_object(request), work, bound)

    def update(self, entity: catalog.EntitySet, key: Mapping[str, Any], payload: Mapping[str, Any],
               work: _Work) -> Response:
        if not entity.writable:
            raise odata_error(405, f"The entity set '{entity.name}' cannot be written through the sandbox.")
        existing = self._find(entity, key, work)
        if existing is None:
            raise _not_found(entity, key)
        changes = self._changes(entity, payload)
        for name in entity.keys:
            if name in changes and odata.comparable(changes[name]) != odata.comparable(existing[name]):
                raise write_failed(entity, f"The key field '{name}' cannot be changed.")
        doc = {name: value for name, value in {**existing, **changes}.items() if value is not None}
        _UPDATE_RULES.get(entity.name, _no_rule)(self, entity, doc, work)
        work.put(entity.name, d365_data.store_id(entity, existing), doc)
        return Response(204, None, {"OData-Version": "4.0"})

    def delete(self, entity: catalog.EntitySet, key: Mapping[str, Any], work: _Work) -> Response:
        """DELETE on the key URL answers 204 (OData 4.0 Part 1 section 11.4.5; [ODATA] lists
        delete among the CRUD operations of data entities). A line of a posted free-text
        invoice cannot be deleted (the posting rule of ``_unposted_header``)."""
        if not entity.writable:
            raise odata_error(405, f"The entity set '{entity.name}' cannot be written through the sandbox.")
        existing = self._find(entity, key, work)
        if existing is None:
            raise _not_found(entity, key)
        _DELETE_RULES.get(entity.name, _no_rule)(self, entity, existing, work)
        work.delete(entity.name, d365_data.store_id(entity, existing))
        return Response(204, None, {"OData-Version": "4.0"})

    def _changes(self, entity: catalog.EntitySet, payload: Mapping[str, Any]) -> dict[str, Any]:
        changes = {}
        for name, value in payload.items():
            if name.startswith("@odata."):
                continue
            if name not in entity.fields:
                raise odata_error(400, f"The property '{name}' does not exist on type "
                                       f"'Microsoft.Dynamics.DataEntities.{entity.name}'. Make sure to only use "
                                       "property names that are defined by the type.")
            if name in entity.generated:
                continue  # assigned by the server; a client's value is ignored [UNVERIFIED]
            changes[name] = _wire_value(entity, name, value)
        return changes

    def _require(self, work: _Work, entity_name: str, key: Mapping[str, Any], refused: catalog.EntitySet,
                 what: str) -> dict[str, Any]:
        found = work.get(entity_name, d365_data.store_id(catalog.ENTITY_SETS[entity_name], key))
        if found is None:
            raise write_failed(refused, f"{what} does not exist.")
        return found

    # -- $batch ---------------------------------------------------------------------------------------
    def batch(self, request: Request) -> Response:
        """``multipart/mixed``: change sets run as one unit of work each, atomically; a request
        outside a change set runs alone. A later request of a change set may address an entity
        an earlier one created by its Content-ID (``$1``), OData 4.0 Part 1 section 11.7.3.1."""
        boundary = odata.boundary_of(request.header("content-type"))
        if boundary is None:
            raise odata_error(400, "A batch request needs a multipart/mixed Content-Type with a boundary.")
        answers = []
        for part in odata.split_multipart(request.body, boundary):
            inner_boundary = odata.boundary_of(part.headers.get("content-type", ""))
            if inner_boundary is not None:
                answers.append(self._changeset(request, odata.split_multipart(part.body, inner_boundary)))
            else:
                answers.append(self._single(request, odata.http_request_of(part)))
        response_boundary = f"batchresponse_{uuid.uuid4()}"
        return Response(200, odata.multipart(response_boundary, answers),
                        {"Content-Type": f"multipart/mixed; boundary={response_boundary}", "OData-Version": "4.0"})

    def _single(self, outer: Request, inner: odata.BatchRequest) -> bytes:
        work = _Work(self.store)
        with self._write_lock:
            response = self._run(outer, inner, work, {})
            if response.status < 400:
                work.commit()
        return _as_part(response, inner.content_id)

    def _changeset(self, outer: Request, parts: list[odata.Part]) -> bytes:
        work = _Work(self.store)
        locations: dict[str, str] = {}
        answers = []
        with self._write_lock:
            try:
                for part in parts:
                    inner = odata.http_request_of(part)
                    if inner.method == "GET":
                        raise _ChangesetFailed(odata_error(400, "A change set may hold data modifications only.")
                                               .response, inner.content_id)
                    response = self._run(outer, inner, work, locations)
                    if response.status >= 400:
                        raise _ChangesetFailed(response, inner.content_id)
                    if inner.content_id and "Location" in response.headers:
                        locations[inner.content_id] = urlsplit(response.headers["Location"]).path
                    answers.append(_as_part(response, inner.content_id))
                work.commit()
            except _ChangesetFailed as failed:
                # OData 4.0 Part 1 section 11.7.4: a failed change set answers one response.
                return _as_part(failed.response, failed.content_id)
        changeset_boundary = f"changesetresponse_{uuid.uuid4()}"
        return (f"Content-Type: multipart/mixed; boundary={changeset_boundary}\r\n\r\n".encode()
                + odata.multipart(changeset_boundary, answers))

    def _run(self, outer: Request, inner: odata.BatchRequest, work: _Work, locations: Mapping[str, str]) -> Response:
        url = inner.url
        if url.startswith("$"):  # a Content-ID reference to an entity created earlier in the change set
            reference, _, rest = url[1:].partition("/")
            if reference not in locations:
                return odata_error(400, f"The Content-ID reference '${reference}' is unknown.").response
            url = locations[reference] + (f"/{rest}" if rest else "")
        parts = urlsplit(url)
        path = parts.path if parts.path.startswith("/") else f"{DATA}/{parts.path}"
        segments = [unquote(s) for s in path.removeprefix(DATA).strip("/").split("/") if s]
        if not path.startswith(DATA) or len(segments) > 2:
            return odata_error(404, f"No HTTP resource was found that matches the request URI '{url}'.").response
        request = Request(method=inner.method, path=path,
                          query={k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()},
                          headers={**outer.headers, **inner.headers}, body=inner.body, platform=PLATFORM,
                          raw_query=parts.query)
        resource, part = [*segments, None, None][:2]
        try:
            if inner.method == "GET":
                return self._execute("GET", resource or "", part, request, None)
            if inner.method not in ("POST", "PATCH", "DELETE"):
                return odata_error(405, f"The method {inner.method} is not supported by the sandbox.").response
            return self._execute(inner.method, resource or "", part, request, work)
        except ApiError as error:
            return error.response


# -- entity rules -------------------------------------------------------------------------------------

Rule = Callable[[D365Api, catalog.EntitySet, dict[str, Any], _Work], None]


def _no_rule(api: D365Api, entity: catalog.EntitySet, doc: dict[str, Any], work: _Work) -> None:
    return None


def _customer(api: D365Api, entity: catalog.EntitySet, doc: dict[str, Any], work: _Work) -> None:
    doc.setdefault("PartyType", "Organization")
    doc.setdefault("InvoiceAccount", doc.get("CustomerAccount"))
    if doc.get("SalesCurrencyCode"):
        api._require(work, "Currencies", {"CurrencyCode": doc["SalesCurrencyCode"]}, entity,
                     f"Currency '{doc['SalesCurrencyCode']}'")


def _project(api: D365Api, entity: catalog.EntitySet, doc: dict[str, Any], work: _Work) -> None:
    company = doc[COMPANY]
    if doc.get("CustomerAccount"):
        api._require(work, "CustomersV3", {COMPANY: company, "CustomerAccount": doc["CustomerAccount"]}, entity,
                     f"Customer account '{doc['CustomerAccount']}'")
    if doc.get("ProjectContractID"):
        api._require(work, "ProjectContracts", {COMPANY: company, "ProjectContractID": doc["ProjectContractID"]},
                     entity, f"Project contract '{doc['ProjectContractID']}'")
    doc.setdefault("ProjectType", "TimeMaterial")
    doc.setdefault("ProjectStage", "Created")


def _invoice_header(api: D365Api, entity: catalog.EntitySet, doc: dict[str, Any], work: _Work) -> None:
    customer = api._require(work, "CustomersV3", {COMPANY: doc[COMPANY], "CustomerAccount":
                                                  doc.get("CustomerAccount", "")},
                            entity, f"Customer account '{doc.get('CustomerAccount', '')}'")
    doc["InvoiceIdentifier"] = d365_data.next_recid(api.store)
    doc["IsPosted"] = "No"
    doc.setdefault("InvoiceAccount", customer.get("InvoiceAccount") or customer["CustomerAccount"])
    doc.setdefault("CurrencyCode", customer.get("SalesCurrencyCode"))
    today = d365_data.wire_date(api.store.now().date())
    doc.setdefault("InvoiceDate", today)
    doc.setdefault("DocumentDate", doc["InvoiceDate"])


def _unposted_header(api: D365Api, entity: catalog.EntitySet, doc: Mapping[str, Any],
                     work: _Work) -> dict[str, Any]:
    header = api._require(work, "FreeTextInvoiceHeaders", {COMPANY: doc[COMPANY], "InvoiceIdentifier":
                                                           doc.get("ParentRecId", 0)},
                          entity, f"Free text invoice {doc.get('ParentRecId')}")
    if header.get("IsPosted") == "Yes":
        raise write_failed(entity, "The free text invoice is posted and cannot be changed.")
    return header


def _header_update(api: D365Api, entity: catalog.EntitySet, doc: dict[str, Any], work: _Work) -> None:
    existing = work.get(entity.name, d365_data.store_id(entity, doc)) or {}
    if existing.get("IsPosted") == "Yes":
        raise write_failed(entity, "The free text invoice is posted and cannot be changed.")
    api._require(work, "CustomersV3", {COMPANY: doc[COMPANY], "CustomerAccount": doc.get("CustomerAccount", "")},
                 entity, f"Customer account '{doc.get('CustomerAccount', '')}'")


def _invoice_line(api: D365Api, entity: catalog.EntitySet, doc: dict[str, Any], work: _Work) -> None:
    header = _unposted_header(api, entity, doc, work)
    if doc.get("LineNumber") is None:  # the next line number of the invoice [UNVERIFIED numbering]
        siblings = work.where(entity.name, dataAreaId=doc[COMPANY], ParentRecId=doc["ParentRecId"])
        doc["LineNumber"] = int(max((_decimal(s["LineNumber"]) for s in siblings), default=Decimal(0))) + 1
    doc.setdefault("CurrencyCode", header.get("CurrencyCode"))
    _line_amount(api, entity, doc, work)


def _line_amount(api: D365Api, entity: catalog.EntitySet, doc: dict[str, Any], work: _Work) -> None:
    """The line amount is quantity x unit price, to the cent; a different one given is refused."""
    if doc.get("ProjectId"):
        api._require(work, "Projects", {COMPANY: doc[COMPANY], "ProjectID": doc["ProjectId"]}, entity,
                     f"Project '{doc['ProjectId']}'")
    quantity = _decimal(doc.setdefault("Quantity", 1))
    price = _decimal(doc.get("UnitPrice", 0))
    expected = (quantity * price).quantize(AMOUNT_TOLERANCE, rounding=ROUND_HALF_UP)
    given = doc.get("TransactionCurrencyAmount")
    if given is not None and abs(_decimal(given) - expected) > AMOUNT_TOLERANCE:
        raise write_failed(entity, f"The amount {given} does not equal quantity {quantity} x unit price {price}.")
    doc["TransactionCurrencyAmount"] = d365_data.wire_decimal(expected if given is None else _decimal(given))
    doc.setdefault("SalesTaxAmount", 0)


def _line_update(api: D365Api, entity: catalog.EntitySet, doc: dict[str, Any], work: _Work) -> None:
    _unposted_header(api, entity, doc, work)
    _line_amount(api, entity, doc, work)


_CREATE_RULES: dict[str, Rule] = {"CustomersV3": _customer, "Projects": _project,
                                  "FreeTextInvoiceHeaders": _invoice_header, "FreeTextInvoiceLines": _invoice_line}
def _header_delete(api: D365Api, entity: catalog.EntitySet, doc: dict[str, Any], work: _Work) -> None:
    if doc.get("IsPosted") == "Yes":
        raise write_failed(entity, "The free text invoice is posted and cannot be deleted.")


def _line_delete(api: D365Api, entity: catalog.EntitySet, doc: dict[str, Any], work: _Work) -> None:
    _unposted_header(api, entity, doc, work)


_DELETE_RULES: dict[str, Rule] = {"FreeTextInvoiceHeaders": _header_delete, "FreeTextInvoiceLines": _line_delete}
_UPDATE_RULES: dict[str, Rule] = {"CustomersV3": _customer, "Projects": _project,
                                  "FreeTextInvoiceHeaders": _header_update, "FreeTextInvoiceLines": _line_update}


# -- helpers -----------------------------------------------------------------------------------------


def entity_path(entity: catalog.EntitySet, record: Mapping[str, Any]) -> str:
    """``Name(key=value,...)``, the entity's canonical URL under the service root."""
    return f"{entity.name}({','.join(f'{k}={odata.key_literal(record[k])}' for k in entity.keys)})"


def _check_filled(entity: catalog.EntitySet, doc: Mapping[str, Any], names: Any) -> None:
    missing = sorted(name for name in names if doc.get(name) in (None, ""))
    if missing:
        raise write_failed(entity, f"Field '{missing[0]}' must be filled in.")


def _not_found(entity: catalog.EntitySet, key: Mapping[str, Any]) -> ApiError:
    return odata_error(404, f"No resource was found for '{entity.name}' with key "
                            f"({', '.join(f'{k}={v}' for k, v in key.items())}).")


def _json_object(request: Request) -> dict[str, Any]:
    try:
        body = request.json()
    except orjson.JSONDecodeError:
        raise odata_error(400, "The request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise odata_error(400, "The request body must be a JSON object.")
    return body


def _count_option(request: Request, name: str) -> int | None:
    text = request.query.get(name)
    if text is None or text == "":
        return None
    if not text.isdigit():
        raise odata_error(400, f"Invalid value '{text}' for the query option {name}: a non-negative integer is "
                               "expected.")
    return int(text)


def _max_page_size(request: Request) -> int | None:
    """``Prefer: odata.maxpagesize=N`` (OData 4.0 Part 1 section 8.2.8.3), if the client sent it."""
    for preference in request.header("prefer").split(","):
        name, _, value = preference.strip().partition("=")
        if name.strip().lower() == "odata.maxpagesize" and value.strip().isdigit() and int(value) > 0:
            return int(value)
    return None


def _next_link(base: str, request: Request, delivered: int) -> str:
    kept = [part for part in request.raw_query.split("&")
            if part and unquote(part.partition("=")[0]) != "$skiptoken"]
    resource = request.path.removeprefix(DATA)
    return f"{base}{resource}?{'&'.join([*kept, f'$skiptoken={delivered}'])}"


def _as_part(response: Response, content_id: str | None) -> bytes:
    headers = {name: value for name, value in response.headers.items()}
    try:
        reason = HTTPStatus(response.status).phrase
    except ValueError:
        reason = ""
    return odata.http_part(response.status, reason, headers, response.encode(), content_id)


def register(router: Router, ctx: SandboxContext) -> None:
    """Add the Entra token endpoint and the OData service to ``router``."""
    D365Api(ctx).register(router)

