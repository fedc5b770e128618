"""Workday as the sandbox serves it: OAuth token, the workers REST API and RaaS custom reports.

Each surface authenticates the way a real tenant does: the token endpoint takes the API
client's id/secret (HTTP Basic or form fields), the REST API takes the bearer token it
issued, and RaaS takes an integration system user's username/password (HTTP Basic).

Errors follow Workday's shapes: OAuth errors as ``{"error": code}`` (RFC 6749 section 5.2),
REST errors as ``{"error": message, "errors": [{"error", "field"}]}`` (Workday REST
ErrorResponse, public copy at schemas.apis.io/schemas/workday-studio/workday-studio-errorresponse),
RaaS errors as ``{"error", "message"}`` (schemas.apis.io/schemas/workday-reporting/workday-reporting-error).
A path under ``/ccx/`` that is not served answers 404 "Resource not found" in the REST shape
(Workday's REST status list: "404 Resource not found", community.workday.com/rest/error-messages).

Throttling: Workday throttles per tenant and answers 429 with ``Retry-After``; it publishes its
figures only behind the customer login (community.workday.com/api; see
rate-limits.apis.io/rate-limits/workday-security/workday-security-rate-limits), so the rate
is ``SandboxConfig.workday_requests_per_minute``, overridable through ``PUT /_sandbox/limits``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from ps_sandbox.catalog import workday as catalog
from ps_sandbox.http import Request, Response, Router, json_response
from ps_sandbox.platforms.common import (
    ApiError,
    add_routes,
    answers_api_errors,
    base_url,
    bearer_accepted,
    client_authenticated,
    parse_timestamp,
    same_secret,
    token_answer,
)
from ps_sandbox.ratelimit import RateLimiter

if TYPE_CHECKING:
    from ps_sandbox.context import SandboxContext

PLATFORM = "workday"
WORKERS = "workers"
REPORTS = tuple(catalog.REPORTS)
DEFAULT_LIMIT = catalog.WORKERS_DEFAULT_LIMIT
MAX_LIMIT = catalog.WORKERS_MAX_LIMIT
LIMIT_KEY = "workday_requests_per_minute"


def _invalid_request(message: str, field: str) -> ApiError:
    return ApiError(400, {"error": "invalid request", "errors": [{"error": message, "field": field}]})


def _bounded_int(query: Mapping[str, str], name: str, default: int, low: int, high: int | None) -> int:
    raw = query.get(name, "")
    if raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        value = low - 1  # reported below with the same message as an out-of-range value
    if value < low or (high is not None and value > high):
        bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise _invalid_request(f"{name} must be {bounds}", name)
    return value


class _Workday:
    def __init__(self, ctx: SandboxContext) -> None:
        self.ctx = ctx
        self.limiter = RateLimiter()

    @property
    def creds(self) -> dict[str, str]:
        return self.ctx.config.credentials["workday"]

    def _check_tenant(self, request: Request) -> str:
        tenant = request.params["tenant"]
        if tenant != self.creds["tenant"]:
            raise ApiError(404, {"error": "not found", "message": "unknown tenant"})
        self._throttle(tenant)
        return tenant

    def _throttle(self, tenant: str) -> None:
        """The tenant's request rate (see the module docstring); past it, 429 with Retry-After."""
        override = self.ctx.store.kv_get(LIMIT_KEY)
        limit = int(override if override is not None else self.ctx.config.workday_requests_per_minute)
        wait = self.limiter.acquire(tenant, limit, 60.0)
        if wait is not None:
            message = f"Too many requests: the tenant allows {limit} requests per minute"
            raise ApiError(429, {"error": message, "errors": [{"error": message}]}, {"Retry-After": str(wait)})

    def _check_bearer(self, request: Request) -> None:
        if not bearer_accepted(request, self.ctx.tokens, PLATFORM):
            challenge = 'Bearer error="invalid_token"'
            raise ApiError(401, {"error": "invalid_token"}, {"WWW-Authenticate": challenge})

    def _check_report_user(self, request: Request, tenant: str) -> None:
        """RaaS takes the integration user's Basic credentials (``user`` or ``user@tenant``) or a token."""
        if request.bearer_token is not None:
            self._check_bearer(request)
            return
        user = request.basic_credentials
        if user is not None:
            username = user[0].removesuffix(f"@{tenant}")
            if same_secret(username, self.creds["username"]) and same_secret(user[1], self.creds["password"]):
                return
        raise ApiError(401, {"error": "unauthorized"}, {"WWW-Authenticate": f'Basic realm="{tenant}"'})

    # -- OAuth ------------------------------------------------------------------------------
    def token(self, request: Request) -> Response:
        self._check_tenant(request)
        form = request.form()
        if not client_authenticated(request, form, self.creds):
            raise ApiError(401, {"error": "invalid_client"})
        grant = form.get("grant_type")
        if grant == "refresh_token":
            if not same_secret(form.get("refresh_token"), self.creds["refresh_token"]):
                raise ApiError(400, {"error": "invalid_grant"})
        elif grant != "client_credentials":
            raise ApiError(400, {"error": "unsupported_grant_type"})
        # Workday refresh tokens do not rotate: the same one comes back with every access token.
        return token_answer(self.ctx.tokens, PLATFORM, refresh_token=self.creds["refresh_token"])

    # -- workers REST API -----------------------------------------------------------------------
    def _with_href(self, request: Request, tenant: str, worker: dict) -> dict:
        return {**worker, "href": f"{base_url(request)}/ccx/api/v1/{tenant}/workers/{worker['id']}"}

    def workers(self, request: Request) -> Response:
        tenant = self._check_tenant(request)
        self._check_bearer(request)
        limit = _bounded_int(request.query, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
        offset = _bounded_int(request.query, "offset", 0, 0, None)
        store = self.ctx.store
        total = store.count(PLATFORM, WORKERS)
        # Ordered by id so offset paging is stable while workers change between pages.
        rows = store.scan(PLATFORM, WORKERS, order="id", limit=limit, offset=offset) if offset < total else []
        data = [self._with_href(request, tenant, row) for row in rows]
        return json_response({"total": total, "data": data})

    def worker(self, request: Request) -> Response:
        tenant = self._check_tenant(request)
        self._check_bearer(request)
        row = self.ctx.store.get(PLATFORM, WORKERS, request.params["worker_id"])
        if row is None:
            raise ApiError(404, {"error": "not found", "message": "invalid resource id"})
        return json_response(self._with_href(request, tenant, row))

    # -- RaaS -------------------------------------------------------------------------------------
    def report(self, request: Request) -> Response:
        tenant = self._check_tenant(request)
        self._check_report_user(request, tenant)
        owner, report = request.params["owner"], request.params["report"]
        if owner != self.creds["report_owner"] or report not in REPORTS:
            raise ApiError(404, {"error": "not found", "message": f"report {owner}/{report} does not exist"})
        if request.query.get("format") != "json":
            raise ApiError(400, {"error": "invalid request", "message": "only format=json is served"})
        since = None
        if request.query.get("Updated_From"):
            try:
                since = parse_timestamp(request.query["Updated_From"])
            except ValueError:
                message = "Updated_From is not a date-time"
                raise ApiError(400, {"error": "invalid request", "message": message}) from None
        # RaaS has no paging: the whole (prompt-filtered) report comes back in one answer.
        rows = self.ctx.store.scan(PLATFORM, report, since=since, since_inclusive=True, order="id")
        return json_response({"Report_Entry": rows})


def register(router: Router, ctx: SandboxContext) -> None:
    api = _Workday(ctx)
    routes = (
        ("POST", "/ccx/oauth2/{tenant}/token", api.token),
        ("GET", "/ccx/api/v1/{tenant}/workers", api.workers),
        ("GET", "/ccx/api/v1/{tenant}/workers/{worker_id}", api.worker),
        ("GET", "/ccx/service/customreport2/{tenant}/{owner}/{report}", api.report),
    )
    add_routes(router, PLATFORM, routes, answers_api_errors)
    router.fallback("/ccx/", _not_routed)


def _not_routed(request: Request, status: int) -> Response:
    message = "Resource not found"
    return json_response({"error": message, "errors": [{"error": f"{request.method} {request.path}: {message}"}]}, 404)
