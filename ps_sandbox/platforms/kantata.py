"""Kantata OX (Mavenlink API v1) as the sandbox serves it.

Wire behaviour follows developer.kantata.com:

* ``Authorization: Bearer <token>``: a personal access token from the sandbox credentials or
  one issued by ``POST /oauth/token`` (grants ``client_credentials`` and ``refresh_token``, as
  advertised by Kantata's OAuth discovery document; needs ``client_id``/``client_secret`` in
  the Kantata credentials).
* Every answer uses the side-loaded envelope: ``count``, ``meta``, a ``results`` list of
  ``{key, id}`` references in sorted order and an id-keyed object per type.
* Index filters: ``page``/``per_page`` (default 20; more than 200 is clamped to 200),
  ``updated_after`` ("updated *after*" the instant, so exclusive), ``order``, ``only``, each
  endpoint's documented equality and list filters (``workspace_id``, ``story_type``,
  ``statuses``, ``subject_type`` ...: ``ps_sandbox.catalog.kantata``) and, on objects that have
  external references, ``external_reference_service_name`` / ``_service_model`` /
  ``_service_model_ref`` / ``_service_model_refs`` (developer.kantata.com, e.g. Workspaces:
  "Filter for objects that correlate to the specified external object IDs. Provide a
  comma-separated list of up to 200 external IDs").
* ``order`` accepts ``updated_at:asc|desc`` (the real API's default is ``updated_at:desc`` on
  workspaces and stories) plus ``id:asc|desc``, a sandbox extension. Orders on other fields
  (e.g. ``date_performed``) are answered 400 because the store cannot page them efficiently.
* ``include=a,b`` side-loads the related objects into their own id-keyed top-level
  collections, found through the primary objects' ``<relation>_id(s)`` attributes
  (developer.mavenlink.com/time_entries, "Associated Objects": ``include=user,story`` "ensure[s]
  that the returned JSON contains top-level keys called users and stories where you can find
  associated data by inspecting time entries' user_id and story_id"). The relations are the
  documented associations of ``ps_sandbox.catalog.kantata``; others are answered 400.
  ``include=external_references`` finds the references whose ``subject_type``/``subject_id``
  name the record and answers ``external_reference_ids`` on it (developer.kantata.com:
  "``external_reference_ids`` will only be included in the response if ``external_references``
  is in the list of included associations").
* External references: ``GET /external_references`` (``subject_type`` required) and
  ``POST /external_references/create_or_update``; an object whose documented create/update
  attributes include ``external_reference`` takes one inline, stored with the record in one
  write (developer.kantata.com: ``external_reference`` "connects objects in an external system
  with objects in Kantata OX"; ``service_name``, ``service_model`` and ``service_model_ref``
  required; one reference per ``service_name`` on an object).
* Objects, attributes, write attributes and write validations come from
  ``ps_sandbox.catalog.kantata`` (Kantata's own specification), never from the pipeline.
* A per-token request rate (``kantata_requests_per_minute``): past it, 429 with ``Retry-After``.
* Errors: ``{"errors": [{"type", "message", "field"?}]}``, unknown paths included (404).
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from ps_sandbox.catalog import kantata as catalog
from ps_sandbox.generate import format_timestamp, stamp, truncate_timestamp
from ps_sandbox.http import Request, Response, Router, json_response
from ps_sandbox.platforms.common import (
    ApiError,
    add_routes,
    answers_api_errors,
    bearer_accepted,
    client_authenticated,
    parse_timestamp,
    token_answer,
)
from ps_sandbox.ratelimit import RateLimiter

if TYPE_CHECKING:
    from ps_sandbox.context import SandboxContext

PLATFORM = "kantata"
RESOURCES = tuple(catalog.OBJECTS)
DEFAULT_PER_PAGE = 20
MAX_PER_PAGE = 200
DEFAULT_ORDER = "updated_at:desc"
ORDERS: dict[str, tuple[str, bool]] = {  # order value -> (store order, descending)
    "updated_at:asc": ("updated_at", False),
    "updated_at:desc": ("updated_at", True),
    "id:asc": ("id", False),
    "id:desc": ("id", True),
}
# [DEV] filters of the objects that have external references (each matches the object's
# references; ``..._refs`` takes up to 200 comma-separated ids).
REFERENCE_FILTERS = {
    "external_reference_service_name": "service_name",
    "external_reference_service_model": "service_model",
    "external_reference_service_model_ref": "service_model_ref",
    "external_reference_status": "status",
}
REFERENCE_REFS_FILTER = "external_reference_service_model_refs"
MAX_REFS = 200
# The objects the sandbox lets a client write (the pipeline's write-back creates and updates
# workspaces and updates time entries); each accepts its documented create/update attributes.
WRITABLE = ("workspaces", "time_entries")
CREATABLE = ("workspaces",)
INLINE_REFERENCE = "external_reference"  # [DEV] the create/update attribute naming one reference
NEW_WORKSPACE_STATUS = {"color": "grey", "key": 100, "message": "Not Started"}
LIMIT_KEY = "kantata_requests_per_minute"
_CURRENCY_CODE = re.compile(r"^[A-Z]{3}$")
REFRESH_TOKENS = "kantata-refresh"  # TokenRegistry namespace: refresh tokens outlive expired access tokens

_UNAUTHORIZED = {"errors": [{"type": "oauth", "message": "Invalid OAuth 2 Request"}]}
_INVALID_CLIENT = {"error": "invalid_client", "error_description": "Client authentication failed"}


def _error(status: int, kind: str, message: str, field_name: str | None = None) -> ApiError:
    entry = {"type": kind, "message": message}
    if field_name is not None:
        entry["field"] = field_name
    return ApiError(status, {"errors": [entry]})


def _positive_int(query: Mapping[str, str], name: str, default: int) -> int:
    raw = query.get(name, "")
    if raw == "":
        return default
    if not raw.isdigit() or int(raw) < 1:
        raise _error(400, "validation", f"{name} must be a positive integer", name)
    return int(raw)


@dataclass(frozen=True)
class ListQuery:
    """An index request's paging, ordering and filters, validated."""

    page: int
    per_page: int
    order: str
    descending: bool
    since: datetime | None = None
    ids: list[str] | None = None
    equals: dict[str, Any] = field(default_factory=dict)
    references: dict[str, Any] = field(default_factory=dict)  # external reference attribute -> value(s)

    @classmethod
    def parse(cls, resource: str, query: Mapping[str, str]) -> ListQuery:
        obj = catalog.OBJECTS[resource]
        missing = [name for name in obj.required_filters if not query.get(name)]
        if missing:
            raise _error(400, "validation", f"{missing[0]} is required", missing[0])
        equals: dict[str, Any] = {name: query[name] for name in obj.filters if query.get(name)}
        for name, attribute in obj.list_filters.items():
            if query.get(name):
                equals[attribute] = [part.strip() for part in query[name].split(",") if part.strip()]
        references: dict[str, Any] = {}
        if "external_references" in obj.associations:
            references = {attribute: query[name] for name, attribute in REFERENCE_FILTERS.items() if query.get(name)}
            if query.get(REFERENCE_REFS_FILTER):
                refs = [part.strip() for part in query[REFERENCE_REFS_FILTER].split(",") if part.strip()]
                if len(refs) > MAX_REFS:
                    message = f"{REFERENCE_REFS_FILTER} takes at most {MAX_REFS} ids"
                    raise _error(400, "validation", message, REFERENCE_REFS_FILTER)
                references["service_model_ref"] = refs
        order_value = query.get("order") or DEFAULT_ORDER
        if order_value not in ORDERS:
            valid = ", ".join(ORDERS)
            raise _error(400, "validation", f"Invalid order {order_value!r}; valid: {valid}", "order")
        order, descending = ORDERS[order_value]
        return cls(
            page=_positive_int(query, "page", 1),
            per_page=min(_positive_int(query, "per_page", DEFAULT_PER_PAGE), MAX_PER_PAGE),
            order=order,
            descending=descending,
            since=_updated_after(query.get("updated_after", "")),
            ids=_only_ids(query.get("only", "")),
            equals=equals,
            references=references,
        )

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.per_page

    def scope(self) -> dict[str, Any]:
        """The filter arguments ``store.count`` and ``store.scan`` share."""
        # "updated after" an instant: records updated exactly at it were seen by the caller already.
        return {"since": self.since, "since_inclusive": False, "ids": self.ids, "equals": self.equals or None}


def _updated_after(raw: str) -> datetime | None:
    if not raw:
        return None
    try:
        return parse_timestamp(raw)
    except ValueError:
        message = "updated_after must be an ISO 8601 date-time"
        raise _error(400, "validation", message, "updated_after") from None


def _only_ids(raw: str) -> list[str] | None:
    if not raw:
        return None
    ids = [part.strip() for part in raw.split(",") if part.strip()]
    if not all(part.isdigit() for part in ids):
        raise _error(400, "validation", "only must be a comma-separated list of ids", "only")
    return ids


def envelope(resource: str, records: list[dict], total: int, page: int, per_page: int) -> dict:
    """Kantata's side-loaded answer: ordered ``results`` references plus an id-keyed object map."""
    return {
        "count": total,
        "meta": {
            "count": total,
            "page_count": math.ceil(total / per_page),
            "page_number": page,
            "page_size": per_page,
        },
        "results": [{"key": resource, "id": str(record["id"])} for record in records],
        resource: {str(record["id"]): record for record in records},
    }


def _invalid(name: str, kind: str, value: Any) -> bool:
    """Whether ``value`` is not of the documented ``kind`` (Rails casts numeric and boolean text)."""
    if value is None:
        return False
    if kind in (catalog.ID, catalog.INTEGER):
        return isinstance(value, bool) or not (isinstance(value, int) or (isinstance(value, str) and value.isdigit()))
    if kind == catalog.NUMBER:
        return isinstance(value, bool) or not isinstance(value, (int, float, str)) or not _is_number(value)
    if kind == catalog.BOOLEAN:
        return value not in (True, False, "true", "false", "1", "0", 1, 0)
    if kind == catalog.DATE:
        return not isinstance(value, str) or _date_or_none(value) is None
    if kind == catalog.DATETIME:
        return not isinstance(value, str) or _timestamp_or_none(value) is None
    if kind == catalog.OBJECT:
        return not isinstance(value, dict)
    if kind == catalog.ARRAY:
        return not isinstance(value, list)
    if name == "currency":  # ISO 4217, as Kantata's currency pickers offer them
        return not (isinstance(value, str) and _CURRENCY_CODE.match(value))
    return not isinstance(value, str)


def _is_number(value: Any) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def _date_or_none(text: str) -> date | None:
    try:
        return date.fromisoformat(text) if len(text) == 10 else None
    except ValueError:
        return None


def _timestamp_or_none(text: str) -> datetime | None:
    try:
        return parse_timestamp(text)
    except ValueError:
        return None


def _cast(kind: str, value: Any) -> Any:
    """A valid value as the wire answers it (ids as text, integers as numbers, flags as booleans)."""
    if value is None:
        return None
    if kind == catalog.ID:
        return str(value)
    if kind == catalog.INTEGER:
        return int(value)
    if kind == catalog.BOOLEAN:
        return value in (True, "true", "1", 1)
    return value


def _field_errors(obj: catalog.KantataObject, record: Mapping[str, Any], *, creating: bool) -> list[dict]:
    """The documented validations: presence, inclusion (on create) and each attribute's type [SPEC]."""
    errors = []
    for name in obj.required:
        if record.get(name) in (None, ""):
            errors.append({"type": "validation", "message": f"{name} can't be blank", "field": name})
    if creating:
        for name, allowed in obj.inclusions.items():
            if record.get(name) not in allowed:
                message = f"{name} is not included in the list ({', '.join(map(str, allowed))})"
                errors.append({"type": "validation", "message": message, "field": name})
    blank = {error["field"] for error in errors}
    for name, value in record.items():
        kind = obj.type_of(name)
        if kind is not None and name not in blank and _invalid(name, kind, value):
            errors.append({"type": "validation", "message": f"{name} is not a valid {kind}", "field": name})
    return errors


class _Kantata:
    def __init__(self, ctx: SandboxContext) -> None:
        self.ctx = ctx
        self._id_lock = threading.Lock()
        self.limiter = RateLimiter()

    @property
    def creds(self) -> dict[str, str]:
        return self.ctx.config.credentials[PLATFORM]

    # -- auth -------------------------------------------------------------------------------
    def _authorize(self, request: Request) -> None:
        if not bearer_accepted(request, self.ctx.tokens, PLATFORM, personal_token=self.creds.get("token")):
            challenge = 'Bearer realm="Doorkeeper", error="invalid_token"'
            raise ApiError(401, _UNAUTHORIZED, {"WWW-Authenticate": challenge})
        self._throttle(request.bearer_token or "")

    def _throttle(self, token: str) -> None:
        """Kantata limits each access token's request rate and answers 429 past it.

        Kantata's public pages give no figure for the limit (none found in developer.kantata.com's
        stored copies), so the rate is ``SandboxConfig.kantata_requests_per_minute`` (overridable
        at run time through ``PUT /_sandbox/limits``); the answer carries ``Retry-After`` in
        seconds (RFC 9110 section 10.2.3) and Kantata's error body.
        """
        override = self.ctx.store.kv_get(LIMIT_KEY)
        limit = int(override if override is not None else self.ctx.config.kantata_requests_per_minute)
        wait = self.limiter.acquire(token, limit, 60.0)
        if wait is not None:
            message = f"Rate limit exceeded: at most {limit} requests per minute per access token"
            raise ApiError(429, {"errors": [{"type": "rate_limit", "message": message}]},
                           {"Retry-After": str(wait)})

    def token(self, request: Request) -> Response:
        """Doorkeeper-style token endpoint: client_credentials or refresh_token grants."""
        form = request.form()
        if not client_authenticated(request, form, self.creds):
            raise ApiError(401, _INVALID_CLIENT)
        grant = form.get("grant_type")
        refresh_token = form.get("refresh_token")
        if grant == "refresh_token":
            if not self.ctx.tokens.is_valid(REFRESH_TOKENS, refresh_token):
                raise ApiError(400, {"error": "invalid_grant", "error_description": "Unknown refresh token"})
        elif grant == "client_credentials":
            refresh_token = self.ctx.tokens.issue(REFRESH_TOKENS)
        else:
            raise ApiError(400, {"error": "unsupported_grant_type"})
        return token_answer(
            self.ctx.tokens, PLATFORM, expires_in=self.ctx.tokens.ttl_seconds, refresh_token=refresh_token,
            created_at=int(self.ctx.store.now().timestamp()),
        )

    # -- reads ------------------------------------------------------------------------------
    def _resource(self, request: Request, allowed: tuple[str, ...] = RESOURCES) -> str:
        # Kantata accepts both /workspaces and /workspaces.json.
        resource = request.params["resource"].removesuffix(".json")
        if resource not in allowed:
            raise _error(404, "not_found", f"{request.method} /api/v1/{resource} is not served here")
        return resource

    def _record(self, resource: str, request: Request) -> dict:
        record_id = request.params["record_id"].removesuffix(".json")
        record = self.ctx.store.get(PLATFORM, resource, record_id)
        if record is None:
            raise _error(404, "not_found", f"{resource} {record_id} not found")
        return record

    def _named_page(self, resource: str, query: ListQuery) -> tuple[int, list[dict]]:
        """An ``only=`` page: at most a handful of rows, fetched by primary key and ordered here.

        Asked to order by change time, SQLite would walk the whole change index instead of
        looking the ids up (about 1 s per request at 200k rows).
        """
        records = self.ctx.store.scan(PLATFORM, resource, **query.scope(), order="id")
        records.sort(key=lambda row: (row.get(query.order) or "", row["id"]), reverse=query.descending)
        return len(records), records[query.offset:query.offset + query.per_page]

    def _page(self, resource: str, query: ListQuery) -> tuple[int, list[dict]]:
        if query.ids is not None:
            return self._named_page(resource, query)
        store = self.ctx.store
        total = store.count(PLATFORM, resource, **query.scope())
        if query.offset >= total:
            return total, []
        records = store.scan(
            PLATFORM, resource, **query.scope(), order=query.order, descending=query.descending,
            limit=query.per_page, offset=query.offset,
        )
        return total, records

    def index(self, request: Request) -> Response:
        self._authorize(request)
        resource = self._resource(request)
        query = ListQuery.parse(resource, request.query)
        includes = _includes(resource, request.query.get("include", ""))
        if query.references:
            query = self._referenced(resource, query)
        total, records = self._page(resource, query)
        body = envelope(resource, records, total, query.page, query.per_page)
        return json_response(self._side_load(resource, body, records, includes))

    def _referenced(self, resource: str, query: ListQuery) -> ListQuery:
        """``query`` narrowed to the records whose external references match its ``external_reference_*``
        filters (an ``only=`` list, if given, is narrowed further)."""
        subject_type = catalog.OBJECTS[resource].subject_type
        references = self.ctx.store.scan(PLATFORM, "external_references", order="id",
                                         equals={"subject_type": subject_type, **query.references})
        ids = sorted({str(reference["subject_id"]) for reference in references}, key=lambda i: (len(i), i))
        if query.ids is not None:
            wanted = set(query.ids)
            ids = [record_id for record_id in ids if record_id in wanted]
        return replace(query, ids=ids)

    def show(self, request: Request) -> Response:
        self._authorize(request)
        resource = self._resource(request)
        includes = _includes(resource, request.query.get("include", ""))
        record = self._record(resource, request)
        body = envelope(resource, [record], 1, 1, DEFAULT_PER_PAGE)
        return json_response(self._side_load(resource, body, [record], includes))

    def _side_load(self, resource: str, body: dict, records: list[dict], includes: list[str]) -> dict:
        """Add each included relation's objects to its own id-keyed top-level collection.

        The primary objects already carry the ``<relation>_id(s)`` attribute that references
        them, except for references found by subject (external references), whose ids are
        answered on the primary objects of this answer only; a relation whose collection the
        sandbox does not hold answers an empty map.
        """
        for name in includes:
            association = catalog.OBJECTS[resource].associations[name]
            if association.by_subject:
                self._side_load_by_subject(resource, body, records, association)
                continue
            wanted: set[str] = set()
            for record in records:
                value = record.get(association.foreign_key)
                values = value if isinstance(value, list) else [value]
                wanted.update(str(item) for item in values if item not in (None, ""))
            related = body.setdefault(association.collection, {})
            if association.collection not in catalog.OBJECTS:
                continue
            missing = sorted(wanted - set(related), key=lambda i: (len(i), i))
            for chunk in range(0, len(missing), 500):  # one query per chunk, not one per id
                for record in self.ctx.store.scan(PLATFORM, association.collection, ids=missing[chunk:chunk + 500],
                                                  order="id"):
                    related[str(record["id"])] = record
        return body

    def _side_load_by_subject(self, resource: str, body: dict, records: list[dict],
                              association: catalog.Association) -> None:
        subject_type = catalog.OBJECTS[resource].subject_type
        ids = [str(record["id"]) for record in records]
        found = self.ctx.store.scan(PLATFORM, association.collection, order="id",
                                    equals={"subject_type": subject_type, "subject_id": ids}) if ids else []
        by_subject: dict[str, list[str]] = {}
        related = body.setdefault(association.collection, {})
        for reference in found:
            by_subject.setdefault(str(reference["subject_id"]), []).append(str(reference["id"]))
            related[str(reference["id"])] = reference
        primary = body[resource]
        for record_id in ids:  # on this answer's copies only: the stored record is untouched
            primary[record_id] = {**primary[record_id], association.foreign_key: by_subject.get(record_id, [])}

    # -- writes -----------------------------------------------------------------------------
    def _changes(self, resource: str, request: Request, *, creating: bool) -> dict[str, Any]:
        """The attributes of ``{"<singular>": {...}}`` Kantata accepts on this write [SPEC]
        (``create_attributes``/``update_attributes``); others are dropped, as Rails does."""
        obj = catalog.OBJECTS[resource]
        attributes = _wrapped(request, obj.singular)
        # The flagged extensions stay writable while the pipeline still relies on them.
        accepted = (obj.create if creating else obj.update) | set(obj.extensions)
        return {name: value for name, value in attributes.items() if name in accepted}

    def _save(self, resource: str, record: dict, changes: dict[str, Any], *, creating: bool,
              includes: list[str] | None = None) -> Response:
        """Validate ``changes`` on ``record``, stamp and store; a new record (empty id) gets its id last.

        An inline ``external_reference`` is validated with the record and stored in the same
        transaction, so the record never exists without it.
        """
        obj = catalog.OBJECTS[resource]
        reference = changes.pop(INLINE_REFERENCE, None)
        # An update is checked as the record would be after it (presence holds for the whole record).
        errors = _field_errors(obj, changes if creating else {**record, **changes}, creating=creating)
        errors += _inline_reference_errors(reference)
        if errors:  # checked before an id is allocated, so a rejected create uses up no id
            raise ApiError(422, {"errors": errors})
        served = obj.served()
        # Write-only parameters (creator_role, change_orders...) act on the write, they are not attributes.
        stored = {name: _cast(served[name], value) for name, value in changes.items() if name in served}
        record = {**record, **stored}
        if "created_at" in served:
            record = {**record, "created_at": record.get("created_at")}  # audit fields go last
        # stamp() cuts to the wire's whole seconds, so the body's updated_at equals the store's change time.
        now = stamp(PLATFORM, resource, record, self.ctx.store.now())
        if "created_at" in served:
            record["created_at"] = record["created_at"] or format_timestamp(PLATFORM, now)
        record["id"] = record["id"] or self._next_id(resource)
        rows = [(PLATFORM, resource, record["id"], now, record)]
        if reference is not None:
            rows.append(self._reference_row(obj, record["id"], reference, now))
        self.ctx.store.put_together(rows)
        body = envelope(resource, [record], 1, 1, DEFAULT_PER_PAGE)
        return json_response(self._side_load(resource, body, [record], includes or []))

    def _reference_row(self, obj: catalog.KantataObject, subject_id: str, values: Mapping[str, Any],
                       now: datetime) -> tuple[str, str, str, datetime, dict]:
        """The external reference ``values`` name on ``subject_id``: the subject's reference of the same
        ``service_name`` is updated (one per service on an object [DEV]), else a new one is made."""
        refs = catalog.EXTERNAL_REFERENCES
        accepted = {name: _cast(refs.attributes[name], value) for name, value in values.items()
                    if name in refs.create and name not in ("subject_id", "subject_type")}
        existing = self.ctx.store.scan(PLATFORM, refs.collection, order="id", equals={
            "subject_type": obj.subject_type, "subject_id": str(subject_id), "service_name": accepted["service_name"]})
        stamped = format_timestamp(PLATFORM, now)
        if existing:
            reference = {**existing[0], **accepted, "updated_at": stamped}
        else:
            reference = {"id": self._next_id(refs.collection), "subject_type": obj.subject_type,
                         "subject_id": str(subject_id), "status": None, "external_link": None,
                         "external_message": None, "external_status": None, "locked": False, **accepted,
                         "created_at": stamped, "last_synced_at": stamped, "updated_at": stamped}
        return PLATFORM, refs.collection, reference["id"], now, reference

    def _next_id(self, resource: str) -> str:
        """A fresh numeric id from a counter kept in the store, past every id already used."""
        store, key = self.ctx.store, f"kantata.next_id.{resource}"
        with self._id_lock:
            candidate = store.kv_get(key)
            if candidate is None:  # first write: start after the generated records
                ids = (int(record["id"]) for record in store.scan(PLATFORM, resource, include_deleted=True))
                candidate = max(ids, default=0) + 1
            # Records may also be created outside this module (control API), so skip taken ids.
            while store.get(PLATFORM, resource, str(candidate), include_deleted=True) is not None:
                candidate += 1
            store.kv_set(key, candidate + 1)
        return str(candidate)

    def create(self, request: Request) -> Response:
        self._authorize(request)
        resource = self._resource(request, allowed=CREATABLE)
        includes = _includes(resource, request.query.get("include", ""))
        # A new workspace: the documented defaults a client did not set.
        record = {"id": "", "currency": "USD", "archived": False, "status": dict(NEW_WORKSPACE_STATUS),
                  "budgeted": False, "access_level": "invitation"}
        changes = self._changes(resource, request, creating=True)
        return self._save(resource, record, changes, creating=True, includes=includes)

    def update(self, request: Request) -> Response:
        self._authorize(request)
        resource = self._resource(request, allowed=WRITABLE)
        includes = _includes(resource, request.query.get("include", ""))
        record = self._record(resource, request)
        changes = self._changes(resource, request, creating=False)
        return self._save(resource, record, changes, creating=False, includes=includes)

    def create_or_update_reference(self, request: Request) -> Response:
        """``POST /external_references/create_or_update`` [DEV]: a reference on an existing subject,
        updated in place when the subject already has one for the ``service_name``."""
        self._authorize(request)
        refs = catalog.EXTERNAL_REFERENCES
        values = _wrapped(request, refs.singular)
        errors = _field_errors(refs, values, creating=True)
        if errors:
            raise ApiError(422, {"errors": errors})
        subject_type, subject_id = str(values["subject_type"]), str(values["subject_id"])
        collections = [obj.collection for obj in catalog.OBJECTS.values() if obj.subject_type == subject_type]
        if not any(self.ctx.store.get(PLATFORM, collection, subject_id) for collection in collections):
            raise _error(422, "validation", f"{subject_type} {subject_id} not found", "subject_id")
        subject = next(obj for obj in catalog.OBJECTS.values() if obj.subject_type == subject_type)
        now = truncate_timestamp(PLATFORM, self.ctx.store.now())
        row = self._reference_row(subject, subject_id, values, now)
        self.ctx.store.put_together([row])
        return json_response(envelope(refs.collection, [row[4]], 1, 1, DEFAULT_PER_PAGE))


def _wrapped(request: Request, singular: str) -> dict[str, Any]:
    """The ``{"<singular>": {...}}`` object of a write's JSON body (400 without it)."""
    try:
        body = request.json()
    except ValueError:
        body = None
    attributes = body.get(singular) if isinstance(body, dict) else None
    if not isinstance(attributes, dict):
        raise _error(400, "validation", f'the body must be a JSON object like {{"{singular}": {{...}}}}')
    return attributes


def _inline_reference_errors(reference: Any) -> list[dict]:
    """[DEV] an inline ``external_reference`` needs ``service_name``, ``service_model`` and
    ``service_model_ref``; its ``status`` is pending, successful or failed."""
    if reference is None:
        return []
    if not isinstance(reference, dict):
        return [{"type": "validation", "message": "external_reference must be an object",
                 "field": INLINE_REFERENCE}]
    errors = [{"type": "validation", "message": f"{name} can't be blank", "field": f"{INLINE_REFERENCE}.{name}"}
              for name in catalog.INLINE_REFERENCE_REQUIRED if reference.get(name) in (None, "")]
    allowed = catalog.EXTERNAL_REFERENCES.inclusions["status"]
    if reference.get("status") not in allowed:
        message = f"status is not included in the list ({', '.join(str(v) for v in allowed if v)})"
        errors.append({"type": "validation", "message": message, "field": f"{INLINE_REFERENCE}.status"})
    return errors


def _includes(resource: str, raw: str) -> list[str]:
    names = [name.strip() for name in raw.split(",") if name.strip()]
    known = catalog.OBJECTS[resource].associations
    unknown = [name for name in names if name not in known]
    if unknown:
        # Not documented either way; a loud answer keeps a misspelt include from passing unseen.
        valid = ", ".join(sorted(known))
        raise _error(400, "validation", f"{', '.join(unknown)} is not an includable association; valid: {valid}",
                     "include")
    return list(dict.fromkeys(names))


def _not_routed(request: Request, status: int) -> Response:
    """Kantata answers a path it does not serve with its own error body, 404 (Rails routing)."""
    message = f"No route matches [{request.method}] {request.path}"
    return json_response({"errors": [{"type": "not_found", "message": message}]}, 404)


def register(router: Router, ctx: SandboxContext) -> None:
    api = _Kantata(ctx)
    routes = (
        ("POST", "/oauth/token", api.token),
        ("GET", "/api/v1/{resource}", api.index),
        ("GET", "/api/v1/{resource}/{record_id}", api.show),
        ("POST", "/api/v1/external_references/create_or_update", api.create_or_update_reference),
        ("POST", "/api/v1/{resource}", api.create),
        ("PUT", "/api/v1/{resource}/{record_id}", api.update),
    )
    add_routes(router, PLATFORM, routes, answers_api_errors)
    router.fallback("/api/v1/", _not_routed)
    router.fallback("/oauth/", _not_routed)
