"""Kantata OX (Mavenlink API v1) as the sandbox serves it.

Wire behaviour follows developer.kantata.com:

* ``Authorization: Bearer <token>``: a personal access token from the sandbox credentials or
  one issued by ``POST /oauth/token`` (grants ``client_credentials`` and ``refresh_token``, as
  advertised by Kantata's OAuth discovery document; needs ``client_id``/``client_secret`` in
  the Kantata credentials).
* Every answer uses the side-loaded envelope: ``count``, ``meta``, a ``results`` list of
  ``{key, id}`` references in sorted order and an id-keyed object per type.
* Index filters: ``page``/``per_page`` (default 20; more than 200 is clamped to 200),
  ``updated_after`` ("updated *after*" the instant, so exclusive), ``order``, ``only`` and the
  ``workspace_id`` / ``story_type`` filters of the endpoints that have them.
* ``order`` accepts ``updated_at:asc|desc`` (the real API's default is ``updated_at:desc`` on
  workspaces and stories) plus ``id:asc|desc``, a sandbox extension. Orders on other fields
  (e.g. ``date_performed``) are answered 400 because the store cannot page them efficiently.
* Errors: ``{"errors": [{"type", "message", "field"?}]}``.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ps_pipelines.lib.contracts import kantata as contracts
from ps_pipelines.lib.contracts.base import EntityContract
from ps_pipelines.lib.contracts.validate import validate_records
from ps_sandbox.generate import stamp
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

if TYPE_CHECKING:
    from ps_sandbox.context import SandboxContext

PLATFORM = "kantata"
RESOURCES = ("workspaces", "time_entries", "expenses", "stories", "users", "rate_cards")
DEFAULT_PER_PAGE = 20
MAX_PER_PAGE = 200
DEFAULT_ORDER = "updated_at:desc"
ORDERS: dict[str, tuple[str, bool]] = {  # order value -> (store order, descending)
    "updated_at:asc": ("updated_at", False),
    "updated_at:desc": ("updated_at", True),
    "id:asc": ("id", False),
    "id:desc": ("id", True),
}
# Equality filters each endpoint offers (query parameter = body field).
FILTERS: dict[str, tuple[str, ...]] = {
    "time_entries": ("workspace_id",),
    "expenses": ("workspace_id",),
    "stories": ("workspace_id", "story_type"),
}
# Writable objects: the body's wrapper key and the contract the record must satisfy after a write.
WRITABLE: dict[str, tuple[str, EntityContract]] = {
    "workspaces": ("workspace", contracts.PROJECTS),
    "time_entries": ("time_entry", contracts.TIME_ENTRIES),
}
# Set by the server (audit, approval workflow, status changes), never by a request body.
READ_ONLY_FIELDS = frozenset(
    {"id", "created_at", "updated_at", "approved_at", "status_key", "status_message"}
)
NEW_WORKSPACE_STATUS = {"color": "grey", "key": 100, "message": "Not Started"}
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
    equals: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, resource: str, query: Mapping[str, str]) -> ListQuery:
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
            equals={name: query[name] for name in FILTERS.get(resource, ()) if query.get(name)},
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


def _field_errors(contract: EntityContract, record: dict) -> list[dict]:
    """The record checked against the same contract the pipeline validates it with."""
    batch = validate_records(contract, [record])
    errors = []
    for reject in batch.rejects:
        for rule in reject.rules:
            column, _, detail = rule.partition(": ")
            errors.append({"type": "validation", "message": f"{column} {detail}", "field": column})
    return errors


class _Kantata:
    def __init__(self, ctx: SandboxContext) -> None:
        self.ctx = ctx
        self._id_lock = threading.Lock()

    @property
    def creds(self) -> dict[str, str]:
        return self.ctx.config.credentials[PLATFORM]

    # -- auth -------------------------------------------------------------------------------
    def _authorize(self, request: Request) -> None:
        if bearer_accepted(request, self.ctx.tokens, PLATFORM, personal_token=self.creds.get("token")):
            return
        challenge = 'Bearer realm="Doorkeeper", error="invalid_token"'
        raise ApiError(401, _UNAUTHORIZED, {"WWW-Authenticate": challenge})

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
        total, records = self._page(resource, query)
        return json_response(envelope(resource, records, total, query.page, query.per_page))

    def show(self, request: Request) -> Response:
        self._authorize(request)
        resource = self._resource(request)
        record = self._record(resource, request)
        return json_response(envelope(resource, [record], 1, 1, DEFAULT_PER_PAGE))

    # -- writes -----------------------------------------------------------------------------
    def _changes(self, resource: str, request: Request) -> dict[str, Any]:
        """The writable attributes of ``{"<singular>": {...}}``; others are dropped, as Rails does."""
        singular, contract = WRITABLE[resource]
        try:
            body = request.json()
        except ValueError:
            body = None
        attributes = body.get(singular) if isinstance(body, dict) else None
        if not isinstance(attributes, dict):
            raise _error(400, "validation", f'the body must be a JSON object like {{"{singular}": {{...}}}}')
        writable = set(contract.columns) - READ_ONLY_FIELDS
        return {name: value for name, value in attributes.items() if name in writable}

    def _save(self, resource: str, record: dict) -> Response:
        """Validate, stamp and store ``record``; a new record (empty id) gets its id last."""
        record = {**record, "created_at": record.get("created_at")}  # a new record's audit fields go last
        # stamp() cuts to the wire's whole seconds, so the body's updated_at equals the store's change time.
        now = stamp(PLATFORM, resource, record, self.ctx.store.now())
        record["created_at"] = record["created_at"] or record["updated_at"]
        # Checked before an id is allocated, so a rejected create uses up no id.
        errors = _field_errors(WRITABLE[resource][1], {**record, "id": record["id"] or "0"})
        if errors:
            raise ApiError(422, {"errors": errors})
        record["id"] = record["id"] or self._next_id(resource)
        self.ctx.store.put(PLATFORM, resource, record["id"], record, now)
        return json_response(envelope(resource, [record], 1, 1, DEFAULT_PER_PAGE))

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
        resource = self._resource(request, allowed=("workspaces",))
        contract = WRITABLE[resource][1]
        defaults = {name: None for name in contract.columns if name not in READ_ONLY_FIELDS}
        record = {"id": "", **defaults, "currency": "USD", "archived": False, "status": NEW_WORKSPACE_STATUS}
        record.update(self._changes(resource, request))
        return self._save(resource, record)

    def update(self, request: Request) -> Response:
        self._authorize(request)
        resource = self._resource(request, allowed=tuple(WRITABLE))
        return self._save(resource, {**self._record(resource, request), **self._changes(resource, request)})


def register(router: Router, ctx: SandboxContext) -> None:
    api = _Kantata(ctx)
    routes = (
        ("POST", "/oauth/token", api.token),
        ("GET", "/api/v1/{resource}", api.index),
        ("GET", "/api/v1/{resource}/{record_id}", api.show),
        ("POST", "/api/v1/{resource}", api.create),
        ("PUT", "/api/v1/{resource}/{record_id}", api.update),
    )
    add_routes(router, PLATFORM, routes, answers_api_errors)
