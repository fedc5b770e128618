"""Fault injection for the sandbox's platform endpoints, configured per platform.

A config lives in the store's kv (``faults:<platform>``) so it survives a restart and is
shared by every server on the same state file. Its parts:

- ``queue``: deterministic faults; each matching request pops the next one. Kinds:
  ``429``, ``500``, ``503`` (answered in the platform's own error format, ``retry_after``
  sets a ``Retry-After`` header), ``drop`` (the connection closes without an answer;
  ``"after": true`` lets the handler run first, so a write happened but was not
  acknowledged), ``slow`` (``ms`` of latency *before* the handler runs: the request is read in
  full, waits, then is handled and committed, so a write lands ``ms`` late even when the client
  has timed out or died meanwhile; logged when the wait starts), ``malformed`` (the real answer cut in half),
  ``duplicate`` (``rows`` records of the previous page repeated at the start of this one,
  or of this page when there was none) and ``none`` (let one request through untouched).
- ``rates``: probabilistic faults from an RNG seeded by ``seed`` and the request count:
  ``429``, ``5xx``, ``drop``, ``malformed`` probabilities, ``slow_ms`` latency on every
  request and ``retry_after`` for the 429s.
- ``drift``: schema drift in every matching answer: ``add`` fields, ``remove`` fields and
  ``retype`` (replace values) in each record of ``object``.
- ``path_contains``: only requests whose path or query contains this text are affected;
  token endpoints only with ``include_auth: true``.
- ``method``: only requests with this HTTP method are affected (e.g. ``POST`` with
  ``path_contains: /api/v1/workspaces`` slows the workspace create, not the lookups that
  list the same path).

``429`` names the kind, not the status: each platform answers it the way it refuses a request
over its limits. Salesforce has no 429: it answers 403 ``REQUEST_LIMIT_EXCEEDED`` with the
concurrent long-running request limit's message and sends no ``Retry-After`` (so ``retry_after``
does not apply there); see ``error_response``.

Every injected fault is appended to a log (``faults:log``, newest last) that tests read
through the control API.
"""

from __future__ import annotations

import copy
import random
import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_plus

import orjson

from ps_sandbox.catalog import hubspot as hubspot_catalog
from ps_sandbox.http import Handler, Request, Response, Router, json_response
from ps_sandbox.store import SandboxStore, to_iso

if TYPE_CHECKING:
    from ps_sandbox.context import SandboxContext

PLATFORMS = ("salesforce", "kantata", "workday", "netsuite", "hubspot", "d365")
QUEUE_KINDS = ("429", "500", "503", "drop", "slow", "malformed", "duplicate", "none")
RATE_KEYS = ("429", "5xx", "drop", "slow_ms", "malformed", "retry_after")
LOG_KEY = "faults:log"
LOG_LIMIT = 1000
_PREVIOUS_PAGE_ROWS = 100
# One lock per process: popping the queue and appending to the log are read-modify-write
# cycles on the kv, and the server answers requests on many threads.
_STATE_LOCK = threading.Lock()


class FaultConfigError(ValueError):
    """A fault config the sandbox cannot apply (the control API answers 400)."""


def config_key(platform: str) -> str:
    return f"faults:{platform}"


def _counter_key(platform: str) -> str:
    return f"faults:{platform}:requests"


# -- configuration -------------------------------------------------------------------


def validate_config(platform: str, config: Any) -> dict[str, Any]:
    """Check a config's shape; returns a normalized copy (unknown top-level keys refused)."""
    if platform not in PLATFORMS:
        raise FaultConfigError(f"unknown platform {platform!r}; expected one of {', '.join(PLATFORMS)}")
    if not isinstance(config, Mapping):
        raise FaultConfigError("a fault config is a JSON object")
    allowed = {"queue", "rates", "drift", "path_contains", "include_auth", "seed", "method"}
    unknown = sorted(set(config) - allowed)
    if unknown:
        raise FaultConfigError(f"unknown fault config keys: {', '.join(unknown)}")
    queue = config.get("queue") or []
    if not isinstance(queue, list) or not all(isinstance(f, Mapping) for f in queue):
        raise FaultConfigError("queue must be a list of objects")
    for fault in queue:
        if str(fault.get("kind")) not in QUEUE_KINDS:
            raise FaultConfigError(f"unknown fault kind {fault.get('kind')!r}; expected one of {QUEUE_KINDS}")
    rates = config.get("rates") or {}
    if not isinstance(rates, Mapping) or set(rates) - set(RATE_KEYS):
        raise FaultConfigError(f"rates must be an object with keys from {RATE_KEYS}")
    if not isinstance(config.get("path_contains") or "", str):
        raise FaultConfigError("path_contains must be text")
    if not isinstance(config.get("method") or "", str):
        raise FaultConfigError("method must be text, e.g. POST")
    drift = config.get("drift")
    if drift is not None and (not isinstance(drift, Mapping) or not drift.get("object")):
        raise FaultConfigError("drift needs an 'object' naming the records to change")
    normalized = {**copy.deepcopy(dict(config)), "queue": [{**f, "kind": str(f["kind"])} for f in queue]}
    if normalized.get("method"):
        normalized["method"] = str(normalized["method"]).upper()
    return normalized


def set_config(store: SandboxStore, platform: str, config: Any) -> dict[str, Any]:
    normalized = validate_config(platform, config)
    with _STATE_LOCK:
        store.kv_set(config_key(platform), normalized)
        store.kv_set(_counter_key(platform), 0)
    return normalized


def get_config(store: SandboxStore, platform: str) -> dict[str, Any] | None:
    return store.kv_get(config_key(platform))


def clear_config(store: SandboxStore, platform: str) -> None:
    with _STATE_LOCK:
        store.kv_set(config_key(platform), None)


def read_log(store: SandboxStore) -> list[dict[str, Any]]:
    return store.kv_get(LOG_KEY, [])


def clear_log(store: SandboxStore) -> None:
    with _STATE_LOCK:
        store.kv_set(LOG_KEY, [])


# -- the platforms' error formats and record lists -----------------------------------

_MESSAGES = {
    429: ("REQUEST_LIMIT_EXCEEDED", "rate_limit", "Too Many Requests", "Rate limit exceeded; slow down."),
    500: ("UNKNOWN_EXCEPTION", "system", "Internal Server Error", "An unexpected error occurred."),
    503: ("SERVER_UNAVAILABLE", "system", "Service Unavailable", "The service is temporarily unavailable."),
}


# Salesforce answers an exceeded request limit with 403 REQUEST_LIMIT_EXCEEDED, never 429 (REST API
# Developer Guide, "Status Codes and Error Responses"); the transient one is the concurrent
# long-running request limit ("API Request Limits and Allocations"), with this message.
_SF_RATE_LIMITED = [{"message": "ConcurrentPerOrgLongTxn Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}]


_RECORD_KEYS = {"salesforce": ("records",), "workday": ("data", "Report_Entry"), "netsuite": ("items",),
                "hubspot": ("results",), "d365": ("value",)}
# Dynamics 365 F&O: the resource-based service protection message (learn.microsoft.com/en-us/
# dynamics365/fin-ops-core/dev-itpro/data-entities/service-protection-api-limits) for 429, and
# the OData error body's generic message for 5xx [UNVERIFIED: F&O's 5xx text].
_D365_MESSAGES = {429: "This request could not be processed at this time due to system experiencing high "
                       "resource utilization.", 500: "An error has occurred.",
                  503: "The service is temporarily unavailable."}


def error_response(platform: str, status: int, retry_after: float | None = None) -> Response:
    """An error answer in the platform's own format; Retry-After only when asked for (and only
    where the platform sends one)."""
    if platform == "salesforce" and status == 429:
        return json_response(_SF_RATE_LIMITED, 403)
    headers = {} if retry_after is None else {"Retry-After": str(retry_after)}
    if platform == "hubspot":  # HubSpot's own 429 and v3 error bodies (ps_sandbox.catalog.hubspot [ERRORS])
        body = hubspot_catalog.rate_limit_body("TEN_SECONDLY_ROLLING") if status == 429 else \
            hubspot_catalog.error_body(_MESSAGES[status][3], "INTERNAL_ERROR" if status == 500 else "UNAVAILABLE")
        return json_response(body, status, headers)
    if platform == "d365":  # the OData error body
        body = {"error": {"code": "", "message": _D365_MESSAGES[status]}}
        return json_response(body, status, {"OData-Version": "4.0", **headers})
    sf_code, kantata_type, title, message = _MESSAGES[status]
    if platform == "salesforce":
        body: Any = [{"message": message, "errorCode": sf_code}]
    elif platform == "kantata":
        body = {"errors": [{"type": kantata_type, "message": message}]}
    elif platform == "netsuite":
        body = {"type": f"https://www.rfc-editor.org/rfc/rfc9110.html#status.{status}", "title": title,
                "status": status, "o:errorDetails": [{"detail": message, "o:errorCode": sf_code}]}
    else:
        body = {"error": message}
    return json_response(body, status, headers)


def _kantata_key(body: Mapping[str, Any]) -> str | None:
    results = body.get("results")
    if isinstance(results, list) and results and isinstance(results[0], Mapping):
        return results[0].get("key")
    return None


def locate_records(platform: str, body: Any, obj: str | None = None) -> list[dict[str, Any]] | None:
    """The record list inside a platform's answer (None when the answer holds none)."""
    if not isinstance(body, dict):
        return None
    if platform == "kantata":
        key = obj or _kantata_key(body)
        objects = body.get(key) if key else None
        if not isinstance(objects, dict):
            return None
        order = [r["id"] for r in body.get("results", []) if r.get("key") == key and r.get("id") in objects]
        return [objects[i] for i in order] or list(objects.values())
    keys = _RECORD_KEYS[platform]
    return next((body[k] for k in keys if isinstance(body.get(k), list)), None)


def prepend_records(platform: str, body: dict[str, Any], extra: list[dict[str, Any]]) -> None:
    """Put ``extra`` records (copies) at the start of the answer's record list."""
    extra = copy.deepcopy(extra)
    if platform == "kantata":
        key = _kantata_key(body)
        if key is None:
            return
        for record in extra:
            body[key].setdefault(str(record["id"]), record)
        body["results"] = [{"key": key, "id": str(r["id"])} for r in extra] + body["results"]
        return
    keys = _RECORD_KEYS[platform]
    key = next(k for k in keys if isinstance(body.get(k), list))
    body[key] = extra + body[key]


def _body_of(response: Response) -> Any:
    """A private copy of the answer's JSON: a handler may keep (cache) what it returned."""
    try:
        return orjson.loads(response.encode())
    except orjson.JSONDecodeError:
        return None


# -- the middleware ----------------------------------------------------------------------


def _is_auth(request: Request) -> bool:
    path = request.path.rstrip("/")
    return "/oauth2/" in path or path.endswith("/token")


def _target(request: Request) -> str:
    """What ``path_contains`` and drift match: path, decoded query and a small body.

    The body counts because SuiteQL names its table in a POSTed query, not in the URL.
    """
    target = f"{request.path}?{unquote_plus(request.raw_query)}" if request.raw_query else request.path
    if request.body and len(request.body) <= 10_000:
        target += " " + request.body.decode(errors="replace")
    return target


class FaultInjector:
    """The middleware: looks up the platform's config and applies at most one fault per request."""

    def __init__(self, store: SandboxStore) -> None:
        self.store = store
        self._previous_page: dict[str, list[dict[str, Any]]] = {}

    def __call__(self, request: Request, call_next: Handler) -> Response:
        platform = request.platform
        if platform not in PLATFORMS:
            return call_next(request)  # the control API and unknown routes are never faulted
        config = get_config(self.store, platform)
        if not config or not self._applies(config, request):
            return call_next(request)
        fault = self._next_fault(platform, config)
        response = self._apply(request, call_next, platform, fault)
        if config.get("drift") and not response.drop_connection:
            self._drift(request, response, platform, config["drift"])
        if response.status == 200 and not response.drop_connection:
            self._remember_page(platform, response)
        return response

    @staticmethod
    def _applies(config: Mapping[str, Any], request: Request) -> bool:
        if _is_auth(request) and not config.get("include_auth"):
            return False
        method = config.get("method")
        if method and request.method.upper() != method:
            return False
        wanted = config.get("path_contains")
        return not wanted or wanted in _target(request)

    def _next_fault(self, platform: str, config: Mapping[str, Any]) -> dict[str, Any] | None:
        """The queue's head (popped), else a roll of the configured rates."""
        rates = config.get("rates") or {}
        if not config.get("queue") and not any(rates.get(k) for k in RATE_KEYS if k != "retry_after"):
            return None
        with _STATE_LOCK:
            current = get_config(self.store, platform)  # re-read: another thread may have popped
            if current and current.get("queue"):
                fault = current["queue"].pop(0)
                self.store.kv_set(config_key(platform), current)
                return {**fault, "source": "queue"}
            count = int(self.store.kv_get(_counter_key(platform), 0))
            self.store.kv_set(_counter_key(platform), count + 1)
        rng = random.Random(f"{config.get('seed', 0)}:{platform}:{count}")
        return _roll(rng, rates)

    def _apply(self, request: Request, call_next: Handler, platform: str,
               fault: dict[str, Any] | None) -> Response:
        if fault is None:
            return call_next(request)
        if fault.get("slow_ms"):  # the rates' latency comes on top of any other fault
            self._log(request, "slow", fault)  # before the wait: a test can see the request has arrived
            time.sleep(fault["slow_ms"] / 1000)
        kind = fault["kind"]
        if kind == "none":
            return call_next(request)
        if kind in ("429", "500", "503"):
            self._log(request, kind, fault)
            return error_response(platform, int(kind), fault.get("retry_after"))
        if kind == "drop":
            if fault.get("after"):
                call_next(request)
            self._log(request, kind, fault)
            return Response(drop_connection=True)
        if kind == "slow":
            # Logged before the wait, so a test knows the request is in flight (e.g. to kill the
            # client mid-call); the handler runs after it whether or not the client still listens.
            self._log(request, kind, fault)
            time.sleep(float(fault.get("ms", 300)) / 1000)
            return call_next(request)
        response = call_next(request)
        if kind == "malformed":
            payload = response.encode()
            self._log(request, kind, fault)
            return Response(200, payload[: len(payload) // 2], {"Content-Type": "application/json"})
        if kind == "duplicate":
            self._duplicate(request, response, platform, fault)
        return response

    def _duplicate(self, request: Request, response: Response, platform: str, fault: dict[str, Any]) -> None:
        body = _body_of(response)
        records = locate_records(platform, body)
        if not records:
            return  # nothing to repeat: an empty page is still an honest answer
        rows = int(fault.get("rows", 1))
        previous = self._previous_page.get(platform)
        extra = previous[-rows:] if previous else records[:rows]
        prepend_records(platform, body, extra)
        response.body = body
        self._log(request, "duplicate", {**fault, "repeated": len(extra),
                                         "from": "previous page" if previous else "same page"})

    def _drift(self, request: Request, response: Response, platform: str, drift: Mapping[str, Any]) -> None:
        body = _body_of(response)
        records = _drift_targets(request, platform, body, drift["object"])
        if not records:
            return
        for record in records:
            record.update(drift.get("add") or {})
            for name in drift.get("remove") or []:
                record.pop(name, None)
            for name, value in (drift.get("retype") or {}).items():
                if name in record:
                    record[name] = value
        response.body = body
        self._log(request, "drift", {"object": drift["object"], "records": len(records)})

    def _remember_page(self, platform: str, response: Response) -> None:
        records = locate_records(platform, _body_of(response))
        if records:
            self._previous_page[platform] = copy.deepcopy(records[-_PREVIOUS_PAGE_ROWS:])

    def _log(self, request: Request, kind: str, detail: Mapping[str, Any]) -> None:
        entry = {"platform": request.platform, "method": request.method, "path": request.path, "kind": kind,
                 "time": to_iso(self.store.now()),
                 "detail": {k: v for k, v in detail.items() if k != "kind"}}
        with _STATE_LOCK:
            log = self.store.kv_get(LOG_KEY, [])
            log.append(entry)
            self.store.kv_set(LOG_KEY, log[-LOG_LIMIT:])


def _drift_targets(request: Request, platform: str, body: Any, obj: str) -> list[dict[str, Any]]:
    """The records of ``obj`` in an answer, identified the way each platform labels them."""
    if platform == "kantata":  # side-loaded: the object's own key, whatever else is included
        if not (isinstance(body, dict) and obj in body):
            return []
        return locate_records(platform, body, obj) or []
    records = locate_records(platform, body) or []
    if platform == "salesforce":  # a next-page URL does not name the object; the records do
        return [r for r in records if isinstance(r, dict) and r.get("attributes", {}).get("type") == obj]
    if platform == "hubspot":  # a HubSpot record's fields are its properties
        matched = obj in _target(request)
        return [r["properties"] for r in records if matched and isinstance(r, dict) and isinstance(
            r.get("properties"), dict)]
    return records if obj in _target(request) else []


def _roll(rng: random.Random, rates: Mapping[str, Any]) -> dict[str, Any] | None:
    """At most one probabilistic fault, plus the configured latency."""
    slow_ms = float(rates.get("slow_ms") or 0)
    roll, threshold = rng.random(), 0.0
    for kind, key in (("429", "429"), ("5xx", "5xx"), ("drop", "drop"), ("malformed", "malformed")):
        threshold += float(rates.get(key) or 0)
        if roll < threshold:
            if kind == "5xx":
                kind = rng.choice(("500", "503"))
            fault = {"kind": kind, "source": "rate", "slow_ms": slow_ms}
            if kind == "429" and rates.get("retry_after") is not None:
                fault["retry_after"] = rates["retry_after"]
            return fault
    return {"kind": "none", "source": "rate", "slow_ms": slow_ms} if slow_ms else None


def install(router: Router, ctx: SandboxContext) -> None:
    """Append the fault middleware to ``router``."""
    router.middleware.append(FaultInjector(ctx.store))
