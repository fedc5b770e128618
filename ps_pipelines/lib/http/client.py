"""The one HTTP client every connector uses: limits, retries, auth refresh, clean errors.

Policy, in one place:
- at most ``max_in_flight`` requests at once (semaphore) and at most ``requests_per_second``
  started per second (token bucket), so a connector stays inside the platform's quotas;
- 429, 408, 5xx, connection errors, read timeouts and unparseable JSON are retried with
  exponential backoff and full jitter, honouring ``Retry-After`` (capped at ``backoff_max``);
- a 401 refreshes the token once and retries; any other 4xx fails at once (retrying a
  request the platform has judged invalid only burns quota);
- a platform whose limits do not answer 429 says so through its error classifier (one
  function per source, e.g. Salesforce's 403 REQUEST_LIMIT_EXCEEDED): ``Throttled`` is retried
  like a 429, ``QuotaExhausted`` stops at once with ``QuotaExhaustedError``;
- a request that is not idempotent is not re-sent after it may have reached the server
  (connection lost, timeout, 5xx, a garbled 2xx), because a second send could create a second
  record; the error says so (``RetryExhaustedError.in_doubt``);
- ``time_budget()`` is the longest one call can keep the client busy, retries included, and
  ``send_deadline`` stops a thread's requests from being sent after a moment, so a caller can
  bound when a write can still reach the server (the write-back's lease on a create).
"""

from __future__ import annotations

import contextlib
import email.utils
import logging
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypedDict, Unpack
from urllib.parse import urlsplit

import orjson
import requests
from requests.adapters import HTTPAdapter

from ps_pipelines.lib.http.errors import (
    ApiError,
    AuthError,
    MalformedResponseError,
    NotSentError,
    QuotaExhaustedError,
    RetryExhaustedError,
    ValidationError,
    parse_error_detail,
    redact_url,
    scrub_text,
)
from ps_pipelines.lib.http.strategy import AuthStrategy

logger = logging.getLogger(__name__)

DEFAULT_EXPECTED = (200, 201, 204)
# Safe to re-send: GET/HEAD/OPTIONS/PUT/DELETE by HTTP semantics, PATCH because every PATCH the
# connectors send sets absolute field values. POSTs that are safe (queries, token grants) say so per call.
_IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "PATCH"})
_TRANSIENT_ERRORS = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError)
# The moment (``time.monotonic()``) after which this thread's requests are no longer sent; see
# ``send_deadline``. A context variable, so each worker thread has its own.
_SEND_BY: ContextVar[float | None] = ContextVar("ps_pipelines_send_by", default=None)


@contextlib.contextmanager
def send_deadline(deadline: float | None) -> Iterator[None]:
    """Inside the block, no request of this thread is sent (first try or retry) once
    ``time.monotonic()`` has passed ``deadline``: it fails with ``NotSentError`` instead.

    Checked right before each send, after any wait for a slot, a rate-limit token or a token
    refresh, so a send that starts is over within the client's connect and read timeouts of
    the deadline: the caller knows when the server can last have received it.
    """
    token = _SEND_BY.set(deadline)
    try:
        yield
    finally:
        _SEND_BY.reset(token)


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP-date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - (now or datetime.now(UTC))).total_seconds())


@dataclass(frozen=True)
class Throttled:
    """An error classifier's verdict: a limit that frees up soon refused the request (the platform
    did not act on it); wait with backoff and retry, like a 429."""

    reason: str


@dataclass(frozen=True)
class QuotaExhausted:
    """An error classifier's verdict: a quota that does not free up within the run is spent;
    stop with ``QuotaExhaustedError`` instead of retrying."""

    reason: str


# A platform's own reading of an error answer (``detail`` is the parsed platform message);
# None leaves the response to the client's status-code policy.
ErrorClassifier = Callable[[requests.Response, str | None], Throttled | QuotaExhausted | None]


class TokenBucket:
    """Client-side rate limit: callers reserve a slot and sleep until it comes due.

    Reserving (letting the balance go negative) instead of polling keeps the wait exact
    and lets tests inject a no-op ``sleep`` without spinning.
    """

    def __init__(
        self,
        rate: float,
        capacity: float | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Any] = time.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.capacity = capacity if capacity is not None else max(1.0, rate)
        self._clock = clock
        self._sleep = sleep
        self._tokens = self.capacity
        self._last = clock()
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """Take one token, sleeping if none is available; returns the time waited."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self.capacity, self._tokens + (now - self._last) * self.rate)
            self._last = now
            self._tokens -= 1
            wait = -self._tokens / self.rate if self._tokens < 0 else 0.0
        if wait > 0:
            self._sleep(wait)
        return wait


class ClientStats:
    """Thread-safe counters for run metadata (requests sent, retries, 429s, token refreshes)."""

    NAMES = ("requests", "retries", "throttled", "auth_refreshes")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts = dict.fromkeys(self.NAMES, 0)

    def add(self, name: str, amount: int = 1) -> None:
        with self._lock:
            self._counts[name] = self._counts.get(name, 0) + amount

    def set(self, name: str, value: int) -> None:
        with self._lock:
            self._counts[name] = value

    def as_dict(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)


@dataclass
class _Call:
    """One logical request, re-sent as-is on every attempt."""

    method: str
    url: str
    shown_url: str  # with params applied and secrets redacted: the only form that is logged
    auth: AuthStrategy
    idempotent: bool
    expected: tuple[int, ...]
    record_id: str | None
    kwargs: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)
    parse_json: bool = False
    required_keys: tuple[str, ...] = ()


@dataclass
class _Failure:
    """A transient failure of one attempt: why, and how long the server asked us to wait."""

    reason: str  # for the retry log line
    status: int | None = None
    detail: str | None = None  # the platform's own message, for the final error
    cause: BaseException | None = None
    wait: float | None = None
    malformed: bool = False
    may_have_applied: bool = False


class ReadOptions(TypedDict, total=False):
    """Keyword options of a request that sends no body (see ``ApiClient.request``)."""

    params: Mapping[str, Any] | None  # query parameters
    headers: Mapping[str, str] | None  # extra headers; auth is added by the client
    record_id: str | None  # named in errors, so a failed write says which record
    expected: Iterable[int]  # statuses that are answers, not errors (default 200, 201, 204)
    auth: AuthStrategy | None  # instead of the client's own (e.g. Workday RaaS basic auth)
    # What logs and errors show of the URL (default: the URL with secret query values masked),
    # for a URL whose path is itself a secret (an incoming webhook).
    shown_url: str | None


class RequestOptions(ReadOptions, total=False):
    """Keyword options of any request."""

    json: Any  # body, JSON-encoded
    data: Mapping[str, Any] | str | bytes | None  # body, form-encoded or raw
    idempotent: bool | None  # safe to re-send after it may have reached the server (default: by method)


def _exception_text(call: _Call, exc: BaseException) -> str:
    """``exc`` as a log may show it: requests repeats the URL's path in its messages."""
    text = f"{type(exc).__name__}: {exc}"
    path = urlsplit(call.url).path
    return scrub_text(text.replace(path, urlsplit(call.shown_url).path) if path.strip("/") else text)


class ApiClient:
    """Requests to one platform API over one pooled ``requests.Session``."""

    def __init__(
        self,
        platform: str,
        base_url: str,
        auth: AuthStrategy,
        *,
        connect_timeout: float = 5,
        read_timeout: float = 60,
        max_retries: int = 5,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        max_in_flight: int | None = None,
        requests_per_second: float | None = None,
        verify: bool | str = True,
        session: requests.Session | None = None,
        sleep: Callable[[float], Any] = time.sleep,
        jitter: Callable[[], float] = random.random,
        classify_error: ErrorClassifier | None = None,
    ) -> None:
        self.platform = platform
        self.classify_error = classify_error
        self.base_url = base_url.rstrip("/")
        self.auth = auth
        self.timeout = (connect_timeout, read_timeout)
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.verify = verify
        self.counters = ClientStats()
        # Called with every response (e.g. to read quota headers such as Sforce-Limit-Info).
        self.response_hooks: list[Callable[[requests.Response], None]] = []
        self._sleep = sleep
        self._jitter = jitter
        self._slots = threading.BoundedSemaphore(max_in_flight) if max_in_flight else None
        self._bucket = TokenBucket(requests_per_second, sleep=sleep) if requests_per_second else None
        self._owns_session = session is None
        self.session = session or self._new_session(max_in_flight)
        bind = getattr(auth, "bind", None)
        if callable(bind):
            bind(self)

    @staticmethod
    def _new_session(max_in_flight: int | None) -> requests.Session:
        session = requests.Session()
        # Our own retry loop owns retries; the pool holds one connection per allowed request.
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=max(max_in_flight or 10, 1), max_retries=0)
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        return session

    # -- public API ----------------------------------------------------------------------
    def url_for(self, path_or_url: str) -> str:
        if path_or_url.startswith(("http://", "https://")):
            return path_or_url
        return f"{self.base_url}/{path_or_url.lstrip('/')}"

    def request(self, method: str, path_or_url: str, **options: Unpack[RequestOptions]) -> requests.Response:
        """Send one request with the client's limits, retries and auth; raise ``ApiError``s."""
        return self._execute(self._call(method, path_or_url, **options))[0]

    def json_request(
        self, method: str, path_or_url: str, *, required_keys: Iterable[str] = (), **options: Unpack[RequestOptions]
    ) -> tuple[requests.Response, Any]:
        """Like ``request``, plus the parsed JSON body (``None`` when empty).

        A 2xx answer that is not JSON, or lacks one of ``required_keys``, is retried like a
        5xx: a truncated or garbled page is a transient fault, not a verdict.
        """
        call = self._call(method, path_or_url, **options)
        call.parse_json, call.required_keys = True, tuple(required_keys)
        return self._execute(call)

    def get_json(
        self, path_or_url: str, *, required_keys: Iterable[str] = (), **options: Unpack[ReadOptions]
    ) -> Any:
        """GET and return the parsed JSON body (see ``json_request``)."""
        return self.json_request("GET", path_or_url, required_keys=required_keys, **options)[1]

    def post_json(
        self, path_or_url: str, *, required_keys: Iterable[str] = (), **options: Unpack[RequestOptions]
    ) -> Any:
        """POST and return the parsed JSON body (see ``json_request``)."""
        return self.json_request("POST", path_or_url, required_keys=required_keys, **options)[1]

    def stats(self) -> dict[str, int]:
        return self.counters.as_dict()

    def time_budget(self) -> float:
        """Seconds one call can keep this client busy at most, retries included.

        Every send the retry loop may make (the first, ``max_retries`` retries and, with a
        refreshable token, one more after a 401) waits out its connect and read timeouts, and
        every backoff waits its cap (``Retry-After`` is capped there too). Waits for a slot,
        a rate-limit token or a token fetch are not counted; ``send_deadline`` bounds them.
        """
        connect, read = self.timeout
        sends = self.max_retries + 1 + (1 if getattr(self.auth, "refreshable", False) else 0)
        return sends * (connect + read) + self.max_retries * self.backoff_max

    def close(self) -> None:
        if self._owns_session:
            self.session.close()

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the retry loop --------------------------------------------------------------------
    def _call(
        self,
        method: str,
        path_or_url: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        data: Mapping[str, Any] | str | bytes | None = None,
        headers: Mapping[str, str] | None = None,
        record_id: str | None = None,
        expected: Iterable[int] = DEFAULT_EXPECTED,
        auth: AuthStrategy | None = None,
        idempotent: bool | None = None,
        shown_url: str | None = None,
    ) -> _Call:
        # The one place the request options take their defaults (see ``RequestOptions``).
        method = method.upper()
        url = self.url_for(path_or_url)
        prepared_url = requests.Request(method, url, params=params).prepare().url or url
        return _Call(
            method=method,
            url=url,
            shown_url=shown_url or redact_url(prepared_url),
            auth=auth or self.auth,
            idempotent=method in _IDEMPOTENT_METHODS if idempotent is None else idempotent,
            expected=tuple(expected),
            record_id=record_id,
            kwargs={"params": params, "json": json, "data": data},
            headers=dict(headers or {}),
        )

    def _execute(self, call: _Call) -> tuple[requests.Response, Any]:
        refreshed = False
        failures = 0
        while True:
            headers = dict(call.headers)
            generation = call.auth.apply(headers)
            try:
                response = self._send(call, headers)
            except _TRANSIENT_ERRORS as exc:
                failure = _Failure(
                    reason=_exception_text(call, exc),
                    cause=exc,
                    may_have_applied=not isinstance(exc, requests.ConnectTimeout),
                )
            else:
                if response.status_code == 401 and call.auth.refreshable and not refreshed:
                    refreshed = True
                    self.counters.add("auth_refreshes")
                    logger.info("%s %s -> 401; refreshing token", self.platform, call.shown_url)
                    call.auth.refresh(generation)
                    continue
                outcome = self._judge(call, response)
                if not isinstance(outcome, _Failure):
                    return response, outcome
                failure = outcome
            failures += 1
            self._backoff_or_raise(call, failure, failures)

    def _send(self, call: _Call, headers: dict[str, str]) -> requests.Response:
        if self._bucket is not None:
            self._bucket.acquire()
        with self._slots if self._slots is not None else contextlib.nullcontext():
            deadline = _SEND_BY.get()
            if deadline is not None and time.monotonic() > deadline:
                raise self._error(NotSentError, call, None, "not sent: its send deadline had passed")
            self.counters.add("requests")
            response = self.session.request(
                call.method,
                call.url,
                headers=headers,
                timeout=self.timeout,
                verify=self.verify,
                # A strategy that signs the whole request (OAuth 1.0a) does so as requests prepares it.
                auth=getattr(call.auth, "request_signer", None),
                **call.kwargs,
            )
        for hook in self.response_hooks:
            hook(response)
        return response

    def _judge(self, call: _Call, response: requests.Response) -> Any:
        """The parsed payload of a good response, a ``_Failure`` to retry, or raise."""
        status = response.status_code
        if status in call.expected:
            return self._payload(call, response) if call.parse_json else None
        detail = parse_error_detail(response.content)
        verdict = self.classify_error(response, detail) if self.classify_error is not None else None
        if isinstance(verdict, QuotaExhausted):
            raise self._error(QuotaExhaustedError, call, status, detail or verdict.reason)
        if isinstance(verdict, Throttled):
            self.counters.add("throttled")
            return _Failure(reason=f"{status} {detail or verdict.reason}", status=status,
                            detail=detail or verdict.reason,
                            wait=retry_after_seconds(response.headers.get("Retry-After")))
        if status == 429 or status == 408 or 500 <= status < 600:
            if status == 429:
                self.counters.add("throttled")
            return _Failure(
                reason=f"{status} {detail or response.reason}",
                status=status,
                detail=detail or response.reason,
                wait=retry_after_seconds(response.headers.get("Retry-After")),
                # 429/408 mean the server did not act on the request; a 5xx may have half-applied it.
                may_have_applied=status >= 500,
            )
        if status == 401:
            raise self._error(AuthError, call, status, detail)
        if 400 <= status < 500:
            raise self._error(ValidationError, call, status, detail)
        raise self._error(ApiError, call, status, detail or f"unexpected status {status}")

    def _payload(self, call: _Call, response: requests.Response) -> Any:
        # Only a success must be well formed; an expected error status (e.g. 404 on a
        # lookup) is passed on with whatever body it has.
        # A garbled 2xx is still a 2xx: the server acted, so a create is not sent again.
        success = 200 <= response.status_code < 300
        if not response.content:
            if success and call.required_keys:
                return _Failure(reason="empty body", status=response.status_code, malformed=True,
                                may_have_applied=True)
            return None
        try:
            payload = orjson.loads(response.content)
        except orjson.JSONDecodeError as exc:
            if not success:
                return None
            return _Failure(reason=f"invalid JSON: {exc}", status=response.status_code, malformed=True,
                            may_have_applied=True)
        missing = [k for k in call.required_keys if not isinstance(payload, dict) or k not in payload]
        if success and missing:
            return _Failure(reason=f"missing keys {missing}", status=response.status_code, malformed=True,
                            may_have_applied=True)
        return payload

    def _backoff_or_raise(self, call: _Call, failure: _Failure, failures: int) -> None:
        detail = failure.detail or failure.reason
        if failure.may_have_applied and not call.idempotent:
            raise self._error(
                RetryExhaustedError,
                call,
                failure.status,
                f"{detail}; not re-sent: the request is not idempotent",
                attempts=failures,
                last_cause=failure.cause,
                in_doubt=True,
            )
        if failures > self.max_retries:
            if failure.malformed:
                raise self._error(
                    MalformedResponseError,
                    call,
                    failure.status,
                    f"{detail} [gave up after {failures} attempt(s)]",
                )
            raise self._error(
                RetryExhaustedError,
                call,
                failure.status,
                detail,
                attempts=failures,
                last_cause=failure.cause,
            )
        delay = self._delay(failure, failures)
        self.counters.add("retries")
        logger.warning(
            "%s %s %s attempt %d/%d failed (%s); retrying in %.2fs",
            self.platform,
            call.method,
            call.shown_url,
            failures,
            self.max_retries + 1,
            failure.reason,
            delay,
        )
        self._sleep(delay)

    def _delay(self, failure: _Failure, failures: int) -> float:
        if failure.wait is not None:
            return min(failure.wait, self.backoff_max)
        # Full jitter: spreads the retries of many clients hit by the same outage.
        ceiling = min(self.backoff_max, self.backoff_base * 2 ** (failures - 1))
        return ceiling * self._jitter()

    def _error(
        self, kind: type[ApiError], call: _Call, status: int | None, detail: str | None, **extra: Any
    ) -> ApiError:
        return kind(self.platform, call.method, call.shown_url, status, detail, call.record_id, **extra)
