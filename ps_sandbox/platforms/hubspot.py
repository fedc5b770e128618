"""HubSpot CRM API v3 (objects, search, batch writes, owners, pipelines) and associations v4,
as the sandbox serves them. Objects, properties and error shapes: ``ps_sandbox.catalog.hubspot``.

Wire rules, each from HubSpot's developer documentation:

* Auth: a private app's access token as ``Authorization: Bearer`` (developers.hubspot.com/docs/
  api/usage-details, "use your app's access token if you're building a private app"); anything
  else is 401 ``INVALID_AUTHENTICATION`` (catalog [ERRORS]).
* Lists (``GET /crm/v3/objects/{type}``): ``limit`` default 10, at most 100 (larger values are
  served as 100), ``after`` cursor answered as ``paging.next.after``, ``properties``, ``archived``
  ("Whether to return only results that have been archived"); ordered by id
  (developers.hubspot.com/docs/api-reference/latest/crm/objects/companies/get-companies).
* Search (``POST /crm/v3/objects/{type}/search``; developers.hubspot.com/docs/api-reference/
  2026-03/crm/search-the-crm): ``filterGroups`` ORed, the filters of a group ANDed, at most 5
  groups of at most 6 filters and 18 filters in all; ``sorts``; ``limit`` at most 200;
  ``after``; ``total``; archived records are never found. "The search endpoints are limited to
  10,000 total results for any given query. Attempting to page beyond 10,000 will result in a
  400 error" (the same page, "Limitations"; also AWS Glue's HubSpot connector notes), so an
  incremental load re-anchors its ``hs_lastmodifieddate`` filter instead of paging on.
* Batch writes: ``batch/update`` (by id or ``idProperty``), ``batch/upsert`` ("Create or update
  records identified by a unique property value as specified by the idProperty";
  developers.hubspot.com/docs/api-reference/latest/crm/objects/objects/batch/upsert-objects),
  at most 100 inputs; single ``POST`` create (201) and ``PATCH`` update.
* Associations v4 batch read ([ASSOC_BATCH]: developers.hubspot.com/docs/api-reference/legacy/crm/
  associations/associate-records/batch/get-associations; the 1,000-input limit from the changelog
  "Bug Fix: Batch Read Limit for HubSpot Associations API"): ``results[]`` of ``{from: {id}, to:
  [{toObjectId, associationTypes: [{category, typeId, label}]}], paging?}``; a record's pair with
  its primary company carries the Primary type beside the unlabeled one (catalog [ASSOC]).
* Rate limits (developers.hubspot.com/docs/api/usage-details and the changelog "Increasing our
  API limits": private apps on Professional/Enterprise get "190 requests per 10 seconds"): a
  per-token 10-second burst answered with ``X-HubSpot-RateLimit-Max``, ``-Remaining`` and
  ``-Interval-Milliseconds`` on every answer, 429 policy ``TEN_SECONDLY_ROLLING`` past it. The
  search endpoints have their own per-second limit (5 per second, search-the-crm
  "Limitations"; 4 in the older changelog "CRM Search API Rate Limit Increase") and do not send
  the standard headers; 429 policy ``SECONDLY``. Both figures are ``SandboxConfig`` settings,
  overridable through ``PUT /_sandbox/limits``.
"""

from __future__ import annotations

import threading
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Mapping
from datetime import date, datetime
from functools import wraps
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from ps_sandbox import hubspot_data as data
from ps_sandbox.catalog import hubspot as catalog
from ps_sandbox.generate import stamp
from ps_sandbox.http import Handler, Request, Response, Router, json_response
from ps_sandbox.platforms.common import ApiError, add_routes, answers_api_errors, base_url, same_secret
from ps_sandbox.querylang import timestamp_or_none
from ps_sandbox.ratelimit import RateLimiter

if TYPE_CHECKING:
    from ps_sandbox.context import SandboxContext
    from ps_sandbox.store import SandboxStore

PLATFORM = data.PLATFORM
LIST_DEFAULT, LIST_MAX = 10, 100
SEARCH_DEFAULT, SEARCH_MAX, SEARCH_CAP = 10, 200, 10_000
MAX_GROUPS, MAX_FILTERS_PER_GROUP, MAX_FILTERS = 5, 6, 18
BATCH_MAX = 100
ASSOC_DEFAULT = ASSOC_MAX = 500  # associations v4 pages
ASSOC_BATCH_MAX = 1_000  # [ASSOC_BATCH] inputs of one batch read
OWNERS_DEFAULT, OWNERS_MAX = 100, 500
BURST_KEY, SEARCH_KEY = "hubspot_requests_per_10_seconds", "hubspot_search_requests_per_second"
BURST_WINDOW_MS = 10_000
_BY_TYPE_ID = {obj.type_id: name for name, obj in catalog.OBJECTS.items()}
_RANGE_OPERATORS = {"GT", "GTE", "LT", "LTE", "BETWEEN", "EQ"}


def _error(status: int, message: str, category: str = "VALIDATION_ERROR", **extra: Any) -> ApiError:
    return ApiError(status, catalog.error_body(message, category, **extra))


def _object(raw: str) -> catalog.HubSpotObject:
    """The object a path names, by name or objectTypeId (``deals`` or ``0-3``)."""
    name = _BY_TYPE_ID.get(raw, raw.lower())
    if name not in catalog.OBJECTS:
        raise _error(400, f"Unable to infer object type from: {raw}")
    return catalog.OBJECTS[name]


def _bounded(raw: Any, name: str, default: int, maximum: int, clamp: bool) -> int:
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise _error(400, f"{name} must be an integer") from None
    if value < 1:
        raise _error(400, f"{name} must be at least 1")
    if value > maximum and not clamp:
        raise _error(400, f"{name} must be less than or equal to {maximum}")
    return min(value, maximum)


def _names(raw: Any) -> list[str] | None:
    """``properties`` as a comma-separated query value or a JSON list; None when not given."""
    if raw in (None, "", []):
        return None
    parts = raw.split(",") if isinstance(raw, str) else [str(part) for part in raw]
    return [part.strip() for part in parts if part.strip()]


def _query_names(request: Request, name: str) -> list[str] | None:
    """A list query parameter sent comma-separated or repeated (``properties=a&properties=b``,
    as HubSpot's generated clients send it): HubSpot accepts both."""
    values = parse_qs(request.raw_query).get(name)
    return _names(",".join(values)) if values else None


def project(obj: catalog.HubSpotObject, body: Mapping[str, Any], wanted: list[str] | None) -> dict[str, Any]:
    """A stored record as the API answers it: only the requested (else default) properties, known
    ones answered null when unset, unknown ones left out [OBJECTS]."""
    stored = body["properties"]
    names = obj.defaults if wanted is None else dict.fromkeys([*wanted, *catalog.ALWAYS, obj.modified])
    properties = {name: stored.get(name) for name in names if name in stored or name in obj.properties}
    record = {"id": body["id"], "properties": properties, "createdAt": body["createdAt"],
              "updatedAt": body["updatedAt"], "archived": body.get("archived", False)}
    if body.get("archivedAt"):
        record["archivedAt"] = body["archivedAt"]
    return record


def _paging(request: Request, after: str) -> dict[str, Any]:
    query = "&".join(f"{k}={v}" for k, v in request.query.items() if k != "after")
    link = f"{base_url(request)}{request.path}?{query + '&' if query else ''}after={after}"
    return {"next": {"after": after, "link": link}}


# -- search filters -----------------------------------------------------------------------------


def _comparable(kind: str | None, value: Any) -> Any:
    """A property or filter value in the property type's order (None when it has none)."""
    if value in (None, ""):
        return None
    text = str(value)
    if kind == catalog.NUMBER:
        try:
            return float(text)
        except ValueError:
            return None
    if kind in (catalog.DATETIME, catalog.DATE):
        # Filters take epoch milliseconds or ISO text; stored values are ISO text [SEARCH].
        if text.lstrip("-").isdigit():
            return int(text)
        moment = timestamp_or_none(text) if kind == catalog.DATETIME or len(text) > 10 else None
        if moment is None and len(text) == 10:
            try:
                moment = timestamp_or_none(date.fromisoformat(text).isoformat() + "T00:00:00Z")
            except ValueError:
                return None
        return None if moment is None else round(moment.timestamp() * 1000)
    return text.lower()  # string search is case-insensitive


def _match(obj: catalog.HubSpotObject, properties: Mapping[str, Any], spec: Mapping[str, Any]) -> bool:
    name, operator = spec.get("propertyName"), str(spec.get("operator", "")).upper()
    raw = properties.get(name)
    if operator == "HAS_PROPERTY":
        return raw not in (None, "")
    if operator == "NOT_HAS_PROPERTY":
        return raw in (None, "")
    kind = obj.type_of(name)
    have = _comparable(kind, raw)
    if have is None:
        return False
    if operator in ("IN", "NOT_IN"):
        found = have in {_comparable(kind, value) for value in spec.get("values") or []}
        return found == (operator == "IN")
    if operator in ("CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"):
        token = str(spec.get("value", "")).lower().replace("*", "")
        return (token in str(have)) == (operator == "CONTAINS_TOKEN")
    want = _comparable(kind, spec.get("value"))
    if want is None:
        return False
    if operator == "BETWEEN":
        high = _comparable(kind, spec.get("highValue"))
        return high is not None and want <= have <= high
    compare: dict[str, Callable[[Any, Any], bool]] = {
        "EQ": lambda a, b: a == b, "NEQ": lambda a, b: a != b, "LT": lambda a, b: a < b,
        "LTE": lambda a, b: a <= b, "GT": lambda a, b: a > b, "GTE": lambda a, b: a >= b}
    try:
        return compare[operator](have, want)
    except TypeError:  # a number compared with text: no match, as a typed index would answer
        return False


def _validate_groups(groups: Any) -> list[list[dict[str, Any]]]:
    if groups in (None, []):
        return []
    if not isinstance(groups, list) or not all(isinstance(g, dict) for g in groups):
        raise _error(400, "filterGroups must be a list of objects with filters")
    filters = [group.get("filters") or [] for group in groups]
    known = {"EQ", "NEQ", "LT", "LTE", "GT", "GTE", "BETWEEN", "IN", "NOT_IN", "HAS_PROPERTY", "NOT_HAS_PROPERTY",
             "CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"}
    if len(groups) > MAX_GROUPS or any(len(f) > MAX_FILTERS_PER_GROUP for f in filters) or \
            sum(map(len, filters)) > MAX_FILTERS:
        raise _error(400, f"at most {MAX_GROUPS} filterGroups of {MAX_FILTERS_PER_GROUP} filters, "
                          f"{MAX_FILTERS} filters in all")
    for spec in (spec for group in filters for spec in group):
        if not isinstance(spec, dict) or str(spec.get("operator", "")).upper() not in known:
            raise _error(400, f"Invalid filter: {spec!r}")
    return filters


def _is_change_range(obj: catalog.HubSpotObject, spec: Mapping[str, Any]) -> bool:
    return spec.get("propertyName") == obj.modified and str(spec.get("operator")).upper() in _RANGE_OPERATORS


def _range_bounds(specs: list[dict[str, Any]]) -> tuple[int | None, int | None] | None:
    """The inclusive epoch-millisecond ``(low, high)`` that range filters on one time property
    imply together (None for an open end); None when a value is not a time (nothing matches)."""
    low: int | None = None
    high: int | None = None
    for spec in specs:
        operator = str(spec["operator"]).upper()
        value = _comparable(catalog.DATETIME, spec.get("value"))
        top = _comparable(catalog.DATETIME, spec.get("highValue")) if operator == "BETWEEN" else value
        if value is None or top is None:
            return None
        if operator not in ("LT", "LTE"):  # times are whole milliseconds: > v is >= v + 1
            floor = value + 1 if operator == "GT" else value
            low = floor if low is None else max(low, floor)
        if operator not in ("GT", "GTE"):
            ceiling = top - 1 if operator == "LT" else top
            high = ceiling if high is None else min(high, ceiling)
    return low, high


def _change_window(obj: catalog.HubSpotObject, groups: list[list[dict[str, Any]]]) -> dict[str, datetime]:
    """Store bounds from the one filter group's range on the change property, so a search reads
    only the changed rows (the filters are still applied afterwards)."""
    bounds = _range_bounds([s for s in groups[0] if _is_change_range(obj, s)]) if len(groups) == 1 else None
    moments = [None if ms is None else datetime.fromtimestamp(ms / 1000, tz=data.AS_OF.tzinfo)
               for ms in bounds or (None, None)]
    return {name: moment for name, moment in zip(("since", "until"), moments, strict=True) if moment is not None}


def _change_range(obj: catalog.HubSpotObject,
                  groups: list[list[dict[str, Any]]]) -> tuple[int | None, int | None] | None:
    """The change-time bounds when the query is one group of range filters on the change property
    only, so those bounds alone decide what matches (an incremental read's query); else None."""
    if len(groups) != 1 or not groups[0] or not all(_is_change_range(obj, spec) for spec in groups[0]):
        return None
    return _range_bounds(groups[0])


class _ChangeIndex:
    """Each object's live records as ``(change time ms, id)`` in ascending order, rebuilt when any
    record is written: an incremental search (a range on the change property, sorted by it)
    bisects to its page instead of reading, filtering and sorting every record per page."""

    def __init__(self, store: SandboxStore) -> None:
        self.store = store
        self._lock = threading.Lock()  # one rebuild at a time; searches meanwhile wait for it
        self._built: dict[str, tuple[int, list[int], list[str]]] = {}

    def window(self, obj: catalog.HubSpotObject, low: int | None, high: int | None) -> list[str]:
        """Ids whose change time lies in ``[low, high]``, in the search's ascending order."""
        times, ids = self._entries(obj)
        start = 0 if low is None else bisect_left(times, low)
        stop = len(times) if high is None else bisect_right(times, high)
        return ids[start:stop]

    def _entries(self, obj: catalog.HubSpotObject) -> tuple[list[int], list[str]]:
        with self._lock:
            version = self.store.records_version  # read first: a write during the build makes it stale
            cached = self._built.get(obj.name)
            if cached is not None and cached[0] == version:
                return cached[1], cached[2]
            rows = self.store.conn.execute(
                "SELECT id, json_extract(body, ?) FROM records WHERE platform = ? AND object = ? AND deleted = 0",
                (f"$.properties.{obj.modified}", PLATFORM, obj.name))
            # The same typed value and id tie-break as the filters and _sort_key, so both paths agree.
            keyed = sorted((moment, int(record_id), record_id) for record_id, value in rows
                           if (moment := _comparable(catalog.DATETIME, value)) is not None)
            entry = (version, [key[0] for key in keyed], [key[2] for key in keyed])
            self._built[obj.name] = entry
            return entry[1], entry[2]


def _sort_key(obj: catalog.HubSpotObject, sorts: list[dict[str, Any]]) -> Callable[[dict], Any]:
    """Records in the ``sorts`` order, ties (and missing values, last) broken by id."""
    def key(body: dict) -> tuple:
        parts: list[Any] = []
        for spec in sorts:
            value = _comparable(obj.type_of(spec["propertyName"]), body["properties"].get(spec["propertyName"]))
            missing = value is None
            if spec["descending"]:
                value = _Reversed(value)
            parts.append((missing, value if not missing else 0))
        return (*parts, int(body["id"]))

    return key


class _Reversed:
    """Inverts the order of one sort key (descending sorts) while ties still sort by id."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def __lt__(self, other: _Reversed) -> bool:
        return other.value < self.value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Reversed) and other.value == self.value

    __hash__ = None  # type: ignore[assignment]


def _sorts(raw: Any) -> list[dict[str, Any]]:
    """``sorts`` as ``[{"propertyName", "direction"}]`` or ``["-name"]`` text [SEARCH]."""
    out = []
    for spec in raw or []:
        if isinstance(spec, str):
            out.append({"propertyName": spec.lstrip("-"), "descending": spec.startswith("-")})
        elif isinstance(spec, dict) and spec.get("propertyName"):
            out.append({"propertyName": spec["propertyName"],
                        "descending": str(spec.get("direction", "ASCENDING")).upper() == "DESCENDING"})
        else:
            raise _error(400, f"Invalid sort: {spec!r}")
    return out


# -- writes -------------------------------------------------------------------------------------


def _property_errors(obj: catalog.HubSpotObject, properties: Any) -> list[dict[str, Any]]:
    """HubSpot's per-property validation: unknown, read-only and mistyped values [OBJECTS]."""
    if not isinstance(properties, dict):
        return [{"isValid": False, "message": "properties must be an object", "error": "INVALID_INPUT"}]
    errors = []
    for name, value in properties.items():
        kind = obj.type_of(name)
        if kind is None:
            errors.append({"isValid": False, "message": f'Property "{name}" does not exist',
                           "error": "PROPERTY_DOESNT_EXIST", "name": name})
        elif name in catalog.READ_ONLY:
            errors.append({"isValid": False, "message": f"{name} is a read only property; its value cannot be set.",
                           "error": "READ_ONLY_VALUE", "name": name})
        elif value not in (None, "") and kind == catalog.NUMBER and _comparable(kind, value) is None:
            errors.append({"isValid": False, "message": f"{value} was not a valid number.",
                           "error": "INVALID_FLOAT", "name": name})
        elif value not in (None, "") and kind == catalog.BOOL and str(value).lower() not in ("true", "false"):
            errors.append({"isValid": False, "message": f"{value} was not a valid boolean.",
                           "error": "INVALID_BOOLEAN", "name": name})
    stage, pipeline = properties.get("dealstage"), properties.get("pipeline")
    if obj.name == "deals" and stage not in (None, ""):
        stages = {s[0] for p, (_, ss) in catalog.PIPELINES.items() if pipeline in (None, p) for s in ss}
        if stage not in stages:
            errors.append({"isValid": False, "message": f"{stage} was not one of the allowed options",
                           "error": "INVALID_OPTION", "name": "dealstage"})
    return errors


def _wire_value(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


class _HubSpot:
    def __init__(self, ctx: SandboxContext) -> None:
        self.ctx = ctx
        self.store = ctx.store
        self.limiter = RateLimiter()
        self.changes = _ChangeIndex(ctx.store)
        self._id_lock = threading.Lock()

    # -- auth and limits ----------------------------------------------------------------------
    def _limit(self, key: str) -> int:
        override = self.store.kv_get(key)
        return int(override if override is not None else getattr(self.ctx.config, key))

    def guard(self, handler: Handler, search: bool = False) -> Handler:
        """Authenticate, count the request against its limit, and put the limit headers on the answer."""
        @wraps(handler)
        def guarded(request: Request) -> Response:
            token = request.bearer_token
            if not same_secret(token, self.ctx.config.credentials[PLATFORM].get("token")):
                raise _error(401, catalog.UNAUTHORIZED_MESSAGE, "INVALID_AUTHENTICATION")
            headers = self._search_admit(token) if search else self._burst_admit(token)
            response = handler(request)
            response.headers.update(headers)
            return response

        return answers_api_errors(guarded)

    def _burst_admit(self, token: str) -> dict[str, str]:
        limit = self._limit(BURST_KEY)
        wait, remaining = self.limiter.take(f"burst:{token}", limit, BURST_WINDOW_MS / 1000)
        headers = {"X-HubSpot-RateLimit-Max": str(limit), "X-HubSpot-RateLimit-Remaining": str(remaining),
                   "X-HubSpot-RateLimit-Interval-Milliseconds": str(BURST_WINDOW_MS)} if limit > 0 else {}
        if wait is not None:
            raise ApiError(429, catalog.rate_limit_body("TEN_SECONDLY_ROLLING"), headers)
        return headers

    def _search_admit(self, token: str) -> dict[str, str]:
        wait, _ = self.limiter.take(f"search:{token}", self._limit(SEARCH_KEY), 1.0)
        if wait is not None:
            raise ApiError(429, catalog.rate_limit_body("SECONDLY"))
        return {}

    # -- reads --------------------------------------------------------------------------------
    def _record(self, obj: catalog.HubSpotObject, raw_id: str, id_property: str | None,
                archived: bool = False) -> dict[str, Any]:
        if id_property in (None, "", "hs_object_id"):
            body = self.store.get(PLATFORM, obj.name, raw_id, include_deleted=archived)
            body = body if body is None or bool(body.get("archived")) == archived else None
        else:
            body = self._by_unique(obj, id_property, raw_id)
        if body is None:
            raise _error(404, "Object not found.  objectId are usually numeric.", "OBJECT_NOT_FOUND",
                         context={"id": [raw_id]})
        return body

    def _by_unique(self, obj: catalog.HubSpotObject, id_property: str, value: str) -> dict[str, Any] | None:
        if id_property not in obj.unique:
            raise _error(400, f"{id_property} is not a unique property of {obj.name}")
        found = self.store.scan(PLATFORM, obj.name, order="id", limit=1,
                                equals={f"properties.{id_property}": str(value)})
        return found[0] if found else None

    def list_objects(self, request: Request) -> Response:
        obj = _object(request.params["object_type"])
        limit = _bounded(request.query.get("limit"), "limit", LIST_DEFAULT, LIST_MAX, clamp=True)
        after = request.query.get("after") or None
        if after is not None and not after.isdigit():
            raise _error(400, f"after must be a record id, got {after!r}")
        archived = request.query.get("archived", "false").lower() == "true"
        scope = {"include_deleted": True, "equals": {"archived": True}} if archived else {}
        rows = self.store.scan(PLATFORM, obj.name, order="id", limit=limit + 1, id_from=after, **scope)
        wanted = _query_names(request, "properties")
        body: dict[str, Any] = {"results": [project(obj, row, wanted) for row in rows[:limit]]}
        if len(rows) > limit:
            body["paging"] = _paging(request, rows[limit]["id"])
        return json_response(body)

    def get_object(self, request: Request) -> Response:
        obj = _object(request.params["object_type"])
        archived = request.query.get("archived", "false").lower() == "true"
        body = self._record(obj, request.params["object_id"], request.query.get("idProperty"), archived)
        return json_response(project(obj, body, _query_names(request, "properties")))

    def search(self, request: Request) -> Response:
        obj = _object(request.params["object_type"])
        payload = _json_object(request)
        groups = _validate_groups(payload.get("filterGroups"))
        limit = _bounded(payload.get("limit"), "limit", SEARCH_DEFAULT, SEARCH_MAX, clamp=False)
        after = str(payload.get("after") or "0")
        if not after.isdigit():
            raise _error(400, f"after must be a number, got {after!r}")
        offset = int(after)
        if offset >= SEARCH_CAP:  # [SEARCH] "Attempting to page beyond 10,000 will result in a 400 error"
            raise _error(400, f"The search endpoints are limited to {SEARCH_CAP:,} total results for any given "
                              f"query; after={offset} pages beyond them. Narrow the query (re-anchor the filter).")
        sorts, text = _sorts(payload.get("sorts")), str(payload.get("query") or "").lower()
        stop = min(offset + limit, SEARCH_CAP)
        found = self._indexed_page(obj, groups, sorts, text, offset, stop)
        if found is None:
            matched = self._search_rows(obj, groups, text)
            matched.sort(key=_sort_key(obj, sorts))
            found = len(matched), matched[offset:stop]
        total, rows = found
        wanted = _names(payload.get("properties"))
        body: dict[str, Any] = {"total": total, "results": [project(obj, row, wanted) for row in rows]}
        end = offset + len(rows)
        if end < total:
            body["paging"] = {"next": {"after": str(end), "link": f"?after={end}"}}
        return json_response(body)

    def _indexed_page(self, obj: catalog.HubSpotObject, groups: list[list[dict[str, Any]]],
                      sorts: list[dict[str, Any]], text: str, offset: int, stop: int) -> tuple[int, list[dict]] | None:
        """``(total, records[offset:stop])`` off the change index for an incremental read's query
        (a change-time range, sorted ascending by it, no free text); None for any other query."""
        bounds = _change_range(obj, groups)
        if bounds is None or text or sorts != [{"propertyName": obj.modified, "descending": False}]:
            return None
        ids = self.changes.window(obj, *bounds)
        page = ids[offset:stop]
        by_id = {row["id"]: row for row in self.store.scan(PLATFORM, obj.name, order="id", ids=page)} if page else {}
        return len(ids), [by_id[record_id] for record_id in page if record_id in by_id]

    def _search_rows(self, obj: catalog.HubSpotObject, groups: list[list[dict[str, Any]]], text: str) -> list[dict]:
        rows = self.store.scan(PLATFORM, obj.name, order="id", **_change_window(obj, groups))
        if groups:
            rows = [row for row in rows if any(all(_match(obj, row["properties"], spec) for spec in group)
                                               for group in groups)]
        if text:  # the free-text query looks in the object's default properties
            rows = [row for row in rows if any(text in str(row["properties"].get(name) or "").lower()
                                               for name in obj.defaults)]
        return rows

    # -- writes -------------------------------------------------------------------------------
    def _next_id(self, obj: str) -> str:
        """Past every id used (hard-deleted ones too); ids of one object share a width."""
        highest = data.ID_BASE[obj]
        for table in ("records", "tombstones"):
            last = self.store.conn.execute(f"SELECT max(id) FROM {table} WHERE platform = ? AND object = ?",
                                           (PLATFORM, obj)).fetchone()[0]
            highest = max(highest, int(last or 0))
        return str(highest + 1)

    def _write(self, obj: catalog.HubSpotObject, body: dict[str, Any] | None, properties: dict[str, Any]) -> dict:
        """Apply ``properties`` to ``body`` (a new record when None), stamp and store it."""
        errors = _property_errors(obj, properties)
        if errors:
            message = f"Property values were not valid: {errors!r}"
            raise _error(400, message, "VALIDATION_ERROR", errors=errors)
        now = self.store.now()
        values = {name: _wire_value(value) for name, value in properties.items()}
        if body is None:
            record_id = self._next_id(obj.name)
            body = data.hubspot_record(obj.name, record_id, now, now, {})
        body = {**body, "properties": {**body["properties"], **values}}
        moment = stamp(PLATFORM, obj.name, body, now)
        self.store.put(PLATFORM, obj.name, body["id"], body, moment)
        return body

    def create(self, request: Request) -> Response:
        obj = _object(request.params["object_type"])
        payload = _json_object(request)
        with self._id_lock:
            body = self._write(obj, None, payload.get("properties") or {})
        return json_response(project(obj, body, list(body["properties"])), 201)

    def update(self, request: Request) -> Response:
        obj = _object(request.params["object_type"])
        payload = _json_object(request)
        with self._id_lock:
            body = self._record(obj, request.params["object_id"], request.query.get("idProperty"))
            body = self._write(obj, body, payload.get("properties") or {})
        return json_response(project(obj, body, list(body["properties"])))

    def batch_update(self, request: Request) -> Response:
        obj = _object(request.params["object_type"])
        inputs = _batch_inputs(request)
        results, missing = [], []
        started = self.store.now()
        with self._id_lock:
            for item in inputs:
                try:
                    body = self._record(obj, str(item.get("id")), item.get("idProperty"))
                except ApiError:
                    missing.append(str(item.get("id")))
                    continue
                body = self._write(obj, body, item.get("properties") or {})
                results.append(project(obj, body, list(item.get("properties") or {})))
        return _batch_answer(results, started, self.store.now(), missing)

    def batch_upsert(self, request: Request) -> Response:
        obj = _object(request.params["object_type"])
        inputs = _batch_inputs(request)
        keys = [(item.get("idProperty") or "hs_object_id", str(item.get("id"))) for item in inputs]
        if len(set(keys)) != len(keys):
            raise _error(400, "Duplicate IDs found in batch input")
        results = []
        started = self.store.now()
        with self._id_lock:  # find-then-create must not race another upsert of the same key
            for item, (id_property, value) in zip(inputs, keys, strict=True):
                if id_property == "hs_object_id":
                    raise _error(400, "idProperty must name a unique property for upsert")
                existing = self._by_unique(obj, id_property, value)
                properties = {**(item.get("properties") or {}), id_property: value}
                body = self._write(obj, existing, properties)
                results.append({**project(obj, body, list(properties)), "new": existing is None})
        return _batch_answer(results, started, self.store.now(), [])

    # -- associations v4 ------------------------------------------------------------------------
    def _association(self, from_obj: str, from_id: str, to_obj: str) -> dict[str, Any]:
        found = self.store.get(PLATFORM, data.ASSOCIATIONS, data.association_id(from_obj, from_id, to_obj))
        return found or {}

    def _is_primary(self, from_obj: str, from_id: str, to_obj: str, to_id: str, record: Mapping[str, Any]) -> bool:
        """Whether the pair carries the Primary label. It names a record's primary company, so it
        is held by the side associated to companies; from a company, the other side holds it."""
        if to_obj == "companies":
            return data.primary_of(record) == to_id
        return data.primary_of(self._association(to_obj, to_id, from_obj)) == from_id

    def _associated(self, from_obj: str, from_id: str, to_obj: str) -> list[dict[str, Any]]:
        record = self._association(from_obj, from_id, to_obj)
        types = catalog.ASSOCIATION_TYPES.get((from_obj, to_obj), ())
        out = []
        for to_id in record.get("to", []):
            primary = any(label for _, label in types) and self._is_primary(from_obj, from_id, to_obj, to_id, record)
            # [ASSOC] the unlabeled type always; the Primary type beside it on the primary pair.
            labelled = [t for t in types if t[1] is None or primary]
            out.append({"toObjectId": int(to_id), "associationTypes": [
                {"category": "HUBSPOT_DEFINED", "typeId": type_id, "label": label} for type_id, label in labelled]})
        return out

    def associations(self, request: Request) -> Response:
        from_obj = _object(request.params["object_type"]).name
        to_obj = _object(request.params["to_object_type"]).name
        limit = _bounded(request.query.get("limit"), "limit", ASSOC_DEFAULT, ASSOC_MAX, clamp=True)
        offset = _offset(request.query.get("after"))
        found = self._associated(from_obj, request.params["object_id"], to_obj)
        body: dict[str, Any] = {"results": found[offset:offset + limit]}
        if offset + limit < len(found):
            body["paging"] = _paging(request, str(offset + limit))
        return json_response(body)

    def associations_batch(self, request: Request) -> Response:
        """[ASSOC_BATCH] at most 1,000 inputs; each input's associations paged, its ``after``
        ("can be added alongside the 'id' to retrieve the next page of associations from that
        objectId") answered per result as ``paging.next.after``, present only when more remain."""
        from_obj = _object(request.params["from_object_type"]).name
        to_obj = _object(request.params["to_object_type"]).name
        started = self.store.now()
        results = []
        for item in _batch_inputs(request, limit=ASSOC_BATCH_MAX):
            from_id = str(item.get("id"))
            offset = _offset(item.get("after"))
            found = self._associated(from_obj, from_id, to_obj)
            if not found[offset:]:
                continue
            result: dict[str, Any] = {"from": {"id": from_id}, "to": found[offset:offset + ASSOC_MAX]}
            if offset + ASSOC_MAX < len(found):
                result["paging"] = {"next": {"after": str(offset + ASSOC_MAX)}}
            results.append(result)
        return _batch_answer(results, started, self.store.now(), [])

    # -- owners and pipelines -------------------------------------------------------------------
    def owners(self, request: Request) -> Response:
        limit = _bounded(request.query.get("limit"), "limit", OWNERS_DEFAULT, OWNERS_MAX, clamp=True)
        after = request.query.get("after") or None
        archived = request.query.get("archived", "false").lower() == "true"
        scope = {"include_deleted": True, "equals": {"archived": True}} if archived else {}
        rows = self.store.scan(PLATFORM, data.OWNERS, order="id", limit=limit + 1, id_from=after, **scope)
        body: dict[str, Any] = {"results": rows[:limit]}
        if len(rows) > limit:
            body["paging"] = _paging(request, rows[limit]["id"])
        return json_response(body)

    def owner(self, request: Request) -> Response:
        found = self.store.get(PLATFORM, data.OWNERS, request.params["owner_id"])
        if found is None:
            raise _error(404, f"Owner {request.params['owner_id']} not found", "OBJECT_NOT_FOUND")
        return json_response(found)

    def _pipelines_of(self, request: Request) -> None:
        if _object(request.params["object_type"]).name != "deals":
            raise _error(400, "the sandbox holds pipelines for deals only")

    def pipelines(self, request: Request) -> Response:
        self._pipelines_of(request)
        return json_response({"results": self.store.scan(PLATFORM, data.PIPELINES, order="id")})

    def pipeline(self, request: Request) -> Response:
        self._pipelines_of(request)
        found = self.store.get(PLATFORM, data.PIPELINES, request.params["pipeline_id"])
        if found is None:
            raise _error(404, f"Pipeline {request.params['pipeline_id']} not found", "OBJECT_NOT_FOUND")
        return json_response(found)

    def stages(self, request: Request) -> Response:
        return json_response({"results": self.pipeline(request).body["stages"]})


def _offset(after: Any) -> int:
    """An associations ``after`` cursor: the sandbox's are offsets (HubSpot's are opaque)."""
    text = str(after or "0")
    return int(text) if text.isdigit() else 0


def _json_object(request: Request) -> dict[str, Any]:
    try:
        payload = request.json()
    except ValueError:
        payload = None
    if not isinstance(payload, dict):
        raise _error(400, "Invalid input JSON on line 1: the body must be a JSON object")
    return payload


def _batch_inputs(request: Request, limit: int = BATCH_MAX) -> list[dict[str, Any]]:
    inputs = _json_object(request).get("inputs")
    if not isinstance(inputs, list) or not all(isinstance(item, dict) for item in inputs):
        raise _error(400, "inputs must be a list of objects")
    if len(inputs) > limit:
        raise _error(400, f"Batch input limit exceeded: at most {limit} inputs, got {len(inputs)}")
    return inputs


def _batch_answer(results: list[dict], started: datetime, completed: datetime, missing: list[str]) -> Response:
    body: dict[str, Any] = {"status": "COMPLETE", "results": results,
                            "startedAt": data.ts(started), "completedAt": data.ts(completed)}
    if not missing:
        return json_response(body)
    # Some inputs failed: 207 Multi-Status with the errors beside the results.
    body.update(numErrors=len(missing), errors=[{
        "status": "error", "category": "OBJECT_NOT_FOUND", "message": "Could not get some records",
        "context": {"ids": missing}}])
    return json_response(body, 207)


def _not_routed(request: Request, status: int) -> Response:
    return json_response(catalog.error_body(f"Unable to route {request.method} {request.path}",
                                            "OBJECT_NOT_FOUND" if status == 404 else "VALIDATION_ERROR"), status)


def register(router: Router, ctx: SandboxContext) -> None:
    api = _HubSpot(ctx)
    objects = "/crm/v3/objects/{object_type}"
    searches = (("POST", f"{objects}/search", api.search),)
    routes = (
        ("GET", "/crm/v3/owners", api.owners),
        ("GET", "/crm/v3/owners/{owner_id}", api.owner),
        ("GET", "/crm/v3/pipelines/{object_type}", api.pipelines),
        ("GET", "/crm/v3/pipelines/{object_type}/{pipeline_id}", api.pipeline),
        ("GET", "/crm/v3/pipelines/{object_type}/{pipeline_id}/stages", api.stages),
        ("POST", f"{objects}/batch/upsert", api.batch_upsert),
        ("POST", f"{objects}/batch/update", api.batch_update),
        ("GET", objects, api.list_objects),
        ("POST", objects, api.create),
        ("GET", f"{objects}/{{object_id}}", api.get_object),
        ("PATCH", f"{objects}/{{object_id}}", api.update),
        ("GET", "/crm/v4/objects/{object_type}/{object_id}/associations/{to_object_type}", api.associations),
        ("POST", "/crm/v4/associations/{from_object_type}/{to_object_type}/batch/read", api.associations_batch),
    )
    # Search first: "/search" must not be read as an object id by a GET-less POST route.
    add_routes(router, PLATFORM, searches, lambda handler: api.guard(handler, search=True))
    add_routes(router, PLATFORM, routes, api.guard)
    router.fallback("/crm/", _not_routed, PLATFORM)
