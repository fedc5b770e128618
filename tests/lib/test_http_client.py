"""The shared HTTP client against a tiny scripted server speaking real HTTP on a free port."""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import requests

from ps_pipelines.lib.http import (
    ApiClient,
    AuthError,
    BasicAuth,
    MalformedResponseError,
    NotSentError,
    OAuth2ClientCredentials,
    OAuth2RefreshToken,
    RetryExhaustedError,
    StaticBearer,
    TokenBucket,
    ValidationError,
    parse_error_detail,
    redact_url,
    retry_after_seconds,
    send_deadline,
)
from ps_sandbox.http import Request, Response, Router, SandboxHTTPServer, json_response

Reply = Response | Callable[[Request], Response]
OK = json_response({"ok": True})


class ScriptedServer:
    """Answers each route from a script (one reply per call, the last one repeating)."""

    def __init__(self) -> None:
        self.router = Router()
        self.calls: dict[str, list[Request]] = defaultdict(list)
        self.server = SandboxHTTPServer(("127.0.0.1", 0), self.router)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self._lock = threading.Lock()

    def script(self, method: str, path: str, *replies: Reply) -> None:
        queue = list(replies)

        def handler(request: Request) -> Response:
            with self._lock:
                self.calls[path].append(request)
                reply = queue.pop(0) if len(queue) > 1 else queue[0]
            return reply(request) if callable(reply) else reply

        self.router.add(method, path, "test", handler)

    def count(self, path: str) -> int:
        return len(self.calls[path])


@pytest.fixture(scope="module")
def running_server() -> Iterator[ScriptedServer]:
    scripted = ScriptedServer()
    scripted.server.serve_in_thread()
    yield scripted
    scripted.server.shutdown()
    scripted.server.server_close()


@pytest.fixture
def server(running_server: ScriptedServer) -> ScriptedServer:
    # One server per module (shutdown polls every 0.5 s); each test starts with no routes.
    running_server.router.routes.clear()
    running_server.calls.clear()
    return running_server


@pytest.fixture
def sleeps() -> list[float]:
    return []


def make_client(server: ScriptedServer, sleeps: list[float], auth: Any = None, **kw: Any) -> ApiClient:
    kw.setdefault("jitter", lambda: 1.0)  # the ceiling of full jitter, so delays are exact
    kw.setdefault("read_timeout", 10)
    return ApiClient("salesforce", server.url, auth or StaticBearer("static-token-value"), sleep=sleeps.append, **kw)


# -- retries --------------------------------------------------------------------------------
def test_429_with_retry_after_waits_what_the_server_asked(server: ScriptedServer, sleeps: list[float]) -> None:
    server.script("GET", "/x", json_response({"error": "slow down"}, 429, {"Retry-After": "7"}), OK)
    client = make_client(server, sleeps)
    assert client.get_json("/x") == {"ok": True}
    assert sleeps == [7.0]
    assert server.count("/x") == 2
    assert client.stats() == {"requests": 2, "retries": 1, "throttled": 1, "auth_refreshes": 0}


def test_retry_after_is_capped_at_backoff_max(server: ScriptedServer, sleeps: list[float]) -> None:
    server.script("GET", "/x", json_response({}, 429, {"Retry-After": "3600"}), OK)
    make_client(server, sleeps, backoff_max=4.0).get_json("/x")
    assert sleeps == [4.0]


def test_retry_after_http_date() -> None:
    now = datetime(2026, 10, 1, 12, 0, 0, tzinfo=UTC)
    assert retry_after_seconds("Thu, 01 Oct 2026 12:00:09 GMT", now=now) == 9.0
    assert retry_after_seconds("Thu, 01 Oct 2026 11:00:00 GMT", now=now) == 0.0
    assert retry_after_seconds("2.5") == 2.5
    assert retry_after_seconds("soon") is None


def test_429_without_retry_after_backs_off_exponentially(server: ScriptedServer, sleeps: list[float]) -> None:
    server.script("GET", "/x", *[json_response({}, 429)] * 4, OK)
    client = make_client(server, sleeps, backoff_base=0.5, backoff_max=3.0)
    assert client.get_json("/x") == {"ok": True}
    assert sleeps == [0.5, 1.0, 2.0, 3.0]
    assert client.stats()["throttled"] == 4


def test_backoff_uses_full_jitter(server: ScriptedServer, sleeps: list[float]) -> None:
    server.script("GET", "/x", json_response({}, 503), json_response({}, 503), OK)
    make_client(server, sleeps, backoff_base=1.0, jitter=lambda: 0.25).get_json("/x")
    assert sleeps == [0.25, 0.5]


def test_5xx_retried_then_success(server: ScriptedServer, sleeps: list[float]) -> None:
    server.script("GET", "/x", json_response({}, 500), json_response({}, 502), OK)
    client = make_client(server, sleeps)
    assert client.get_json("/x") == {"ok": True}
    assert server.count("/x") == 3
    assert client.stats()["retries"] == 2


def test_dropped_connection_retried(server: ScriptedServer, sleeps: list[float]) -> None:
    server.script("GET", "/x", Response(drop_connection=True), OK)
    assert make_client(server, sleeps).get_json("/x") == {"ok": True}
    assert server.count("/x") == 2
    assert len(sleeps) == 1


def test_read_timeout_retried(server: ScriptedServer, sleeps: list[float]) -> None:
    release = threading.Event()

    def stall(request: Request) -> Response:
        release.wait(2)
        return OK

    server.script("GET", "/x", stall, OK)
    try:
        assert make_client(server, sleeps, read_timeout=0.2).get_json("/x") == {"ok": True}
    finally:
        release.set()
    assert server.count("/x") == 2


def test_malformed_json_retried_then_success(server: ScriptedServer, sleeps: list[float]) -> None:
    garbage = Response(200, b'{"records": [', {"Content-Type": "application/json"})
    server.script("GET", "/x", garbage, json_response({"records": []}))
    assert make_client(server, sleeps).get_json("/x") == {"records": []}
    assert server.count("/x") == 2


def test_missing_required_key_retried(server: ScriptedServer, sleeps: list[float]) -> None:
    server.script("GET", "/x", json_response({"unexpected": 1}), json_response({"records": [1]}))
    assert make_client(server, sleeps).get_json("/x", required_keys=("records",)) == {"records": [1]}


def test_malformed_json_forever_raises_malformed(server: ScriptedServer, sleeps: list[float]) -> None:
    server.script("GET", "/x", Response(200, b"<html>maintenance</html>"))
    with pytest.raises(MalformedResponseError) as caught:
        make_client(server, sleeps, max_retries=2).get_json("/x")
    assert server.count("/x") == 3
    assert "invalid JSON" in str(caught.value) and "3 attempt" in str(caught.value)


def test_retries_exhausted_keeps_status_and_cause(server: ScriptedServer, sleeps: list[float]) -> None:
    server.script("GET", "/x", json_response({"error": "overloaded"}, 503))
    with pytest.raises(RetryExhaustedError) as caught:
        make_client(server, sleeps, max_retries=3).get_json("/x")
    assert caught.value.status == 503 and caught.value.attempts == 4
    assert server.count("/x") == 4 and len(sleeps) == 3
    assert "salesforce GET /x -> 503 overloaded" in str(caught.value)


def test_connection_errors_exhausted_keep_last_cause(sleeps: list[float]) -> None:
    # Nothing listens on this port once the server is closed.
    closed = SandboxHTTPServer(("127.0.0.1", 0), Router())
    port = closed.server_port
    closed.server_close()
    client = ApiClient("kantata", f"http://127.0.0.1:{port}", StaticBearer("t"), max_retries=1, sleep=sleeps.append)
    with pytest.raises(RetryExhaustedError) as caught:
        client.get_json("/api/v1/workspaces")
    assert isinstance(caught.value.last_cause, requests.ConnectionError)
    assert caught.value.status is None and len(sleeps) == 1


def test_non_idempotent_post_is_not_resent_after_a_drop(server: ScriptedServer, sleeps: list[float]) -> None:
    server.script("POST", "/create", Response(drop_connection=True), OK)
    with pytest.raises(RetryExhaustedError, match="not idempotent"):
        make_client(server, sleeps).post_json("/create", json={"title": "x"})
    assert server.count("/create") == 1


def test_a_garbled_2xx_to_a_create_is_in_doubt_not_resent(server: ScriptedServer, sleeps: list[float]) -> None:
    # The server made the record and its answer was cut: a second POST would make another.
    server.script("POST", "/create", Response(200, b'{"results": [', {"Content-Type": "application/json"}), OK)
    with pytest.raises(RetryExhaustedError, match="not idempotent") as caught:
        make_client(server, sleeps).post_json("/create", json={"name": "x"}, required_keys=("results",))
    assert caught.value.in_doubt and server.count("/create") == 1


def test_a_timed_out_create_is_in_doubt_and_a_throttled_one_is_not(server: ScriptedServer, sleeps: list[float]) -> None:
    release = threading.Event()

    def stall(request: Request) -> Response:
        release.wait(5)
        return OK

    server.script("POST", "/slow", stall)
    server.script("POST", "/busy", json_response({"error": "slow down"}, 429))
    try:
        with pytest.raises(RetryExhaustedError) as timed_out:
            make_client(server, sleeps, read_timeout=0.2).post_json("/slow", json={})
    finally:
        release.set()
    with pytest.raises(RetryExhaustedError) as throttled:
        make_client(server, sleeps, max_retries=1).post_json("/busy", json={})
    assert timed_out.value.in_doubt and server.count("/slow") == 1
    assert not throttled.value.in_doubt and server.count("/busy") == 2


def test_nothing_is_sent_after_the_send_deadline(server: ScriptedServer, sleeps: list[float]) -> None:
    server.script("POST", "/create", json_response({"error": "slow down"}, 429), OK)
    client = make_client(server, sleeps)
    with send_deadline(time.monotonic() - 1), pytest.raises(NotSentError, match="deadline"):
        client.post_json("/create", json={})
    assert server.count("/create") == 0
    # A retry is a send too: the 429 came back in time, the retry would be too late.
    late = ApiClient("salesforce", server.url, StaticBearer("t"), sleep=lambda _: time.sleep(0.3))
    with send_deadline(time.monotonic() + 0.2), pytest.raises(NotSentError):
        late.post_json("/create", json={})
    assert server.count("/create") == 1
    assert client.post_json("/create", json={}) == {"ok": True}  # outside the block: no deadline


def test_the_time_budget_counts_every_send_and_backoff() -> None:
    plain = ApiClient("kantata", "http://127.0.0.1:9", StaticBearer("t"), connect_timeout=5, read_timeout=60,
                      max_retries=6, backoff_max=30)
    assert plain.time_budget() == 7 * 65 + 6 * 30  # the production Kantata client: 635 s
    refreshing = ApiClient("netsuite", "http://127.0.0.1:9", OAuth2ClientCredentials("http://127.0.0.1:9/t", "i", "s"),
                           connect_timeout=1, read_timeout=2, max_retries=0, backoff_max=30)
    assert refreshing.time_budget() == 2 * 3  # one more send after a refreshed token


def test_idempotent_post_is_retried(server: ScriptedServer, sleeps: list[float]) -> None:
    server.script("POST", "/query", json_response({}, 500), OK)
    assert make_client(server, sleeps).post_json("/query", json={"q": "SELECT 1"}, idempotent=True) == {"ok": True}
    assert server.count("/query") == 2


# -- errors ---------------------------------------------------------------------------------
def test_400_is_not_retried_and_names_platform_request_record(server: ScriptedServer, sleeps: list[float]) -> None:
    path = "/services/data/v61.0/sobjects/Opportunity/006000000000001AAA"
    body = [
        {
            "message": "No such column 'Foo' on sobject of type Opportunity",
            "errorCode": "INVALID_FIELD",
            "fields": [],
        }
    ]
    server.script("PATCH", path, json_response(body, 400))
    client = make_client(server, sleeps)
    with pytest.raises(ValidationError) as caught:
        client.request("PATCH", path, json={"Foo": 1}, record_id="006000000000001AAA")
    error = caught.value
    assert str(error) == (
        f"salesforce PATCH {path} -> 400 INVALID_FIELD: No such column 'Foo' on sobject of type Opportunity "
        "(record 006000000000001AAA)"
    )
    assert (error.platform, error.method, error.status) == ("salesforce", "PATCH", 400)
    assert error.record_id == "006000000000001AAA"
    assert server.count(path) == 1 and sleeps == []


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (
            [{"message": "bad value", "errorCode": "INVALID_FIELD", "fields": ["Amount"]}],
            "INVALID_FIELD: bad value (field Amount)",
        ),
        (
            {"errors": [{"type": "validation", "message": "title can't be blank", "field": "title"}]},
            "validation: title can't be blank (field title)",
        ),
        (
            {
                "error": "invalid request",
                "errors": [{"error": "limit must be between 1 and 100", "field": "limit"}],
            },
            "invalid request; limit must be between 1 and 100 (field limit)",
        ),
        (
            {
                "type": "https://www.rfc-editor.org/rfc/rfc9110.html#section-15.5.1",
                "title": "Bad Request",
                "status": 400,
                "o:errorDetails": [{"detail": "Invalid search query.", "o:errorCode": "INVALID_PARAMETER"}],
            },
            "INVALID_PARAMETER: Invalid search query.",
        ),
        (
            {"error": "invalid_client", "error_description": "unknown client"},
            "invalid_client: unknown client",
        ),
        (
            {"error": {"code": "", "message": "An error has occurred.",
                       "innererror": {"message": "Write failed for table row of type 'CustCustomerV3Entity'.",
                                      "type": "AxODataWriteException"}}},
            "An error has occurred.; Write failed for table row of type 'CustCustomerV3Entity'.",
        ),
    ],
    ids=["salesforce", "kantata", "workday", "netsuite", "oauth", "odata"],
)
def test_error_bodies_of_every_platform_are_parsed(body: Any, detail: str) -> None:
    import orjson

    assert parse_error_detail(orjson.dumps(body)) == detail


def test_404_is_a_validation_error(server: ScriptedServer, sleeps: list[float]) -> None:
    server.script("GET", "/gone", json_response({"errors": [{"type": "not_found", "message": "nope"}]}, 404))
    with pytest.raises(ValidationError, match="salesforce GET /gone -> 404 not_found: nope"):
        make_client(server, sleeps).get_json("/gone")


def test_expected_statuses_are_returned(server: ScriptedServer, sleeps: list[float]) -> None:
    server.script("GET", "/gone", json_response({"error": "not found"}, 404))
    response = make_client(server, sleeps).request("GET", "/gone", expected=(200, 404))
    assert response.status_code == 404


# -- auth -----------------------------------------------------------------------------------
class TokenServer:
    """A token endpoint issuing tok-1, tok-2, ... and a resource accepting only the newest."""

    def __init__(self, server: ScriptedServer) -> None:
        self.issued: list[str] = []
        self.forms: list[dict[str, str]] = []
        self.valid: str | None = None
        self._lock = threading.Lock()
        server.script("POST", "/oauth/token", self.token)
        server.script("GET", "/data", self.data)

    def token(self, request: Request) -> Response:
        with self._lock:
            self.forms.append(request.form())
            self.valid = f"tok-{len(self.issued) + 1}"
            self.issued.append(self.valid)
        return json_response(
            {"access_token": self.valid, "instance_url": "https://na1.example", "token_type": "Bearer"}
        )

    def data(self, request: Request) -> Response:
        if request.bearer_token != self.valid:
            return json_response([{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}], 401)
        return json_response({"token": request.bearer_token})

    def expire(self) -> None:
        self.valid = None


def test_token_fetched_lazily_and_refreshed_once_on_401(server: ScriptedServer, sleeps: list[float]) -> None:
    tokens = TokenServer(server)
    auth = OAuth2ClientCredentials(f"{server.url}/oauth/token", "my-client", "my-secret")
    client = make_client(server, sleeps, auth=auth)
    assert tokens.issued == []  # nothing fetched before the first request
    assert client.get_json("/data") == {"token": "tok-1"}
    assert tokens.forms == [
        {"grant_type": "client_credentials", "client_id": "my-client", "client_secret": "my-secret"}
    ]
    assert auth.instance_url == "https://na1.example"
    tokens.expire()
    assert client.get_json("/data") == {"token": "tok-2"}
    assert tokens.issued == ["tok-1", "tok-2"]
    assert client.stats()["auth_refreshes"] == 1


def test_concurrent_401s_refresh_the_token_once(server: ScriptedServer, sleeps: list[float]) -> None:
    tokens = TokenServer(server)
    client = make_client(server, sleeps, auth=OAuth2ClientCredentials(f"{server.url}/oauth/token", "c", "s"))
    client.get_json("/data")
    tokens.expire()
    with_threads(8, lambda: client.get_json("/data"))
    assert tokens.issued == ["tok-1", "tok-2"]


def test_401_after_refresh_is_an_auth_error(server: ScriptedServer, sleeps: list[float]) -> None:
    server.script("POST", "/oauth/token", json_response({"access_token": "fresh"}))
    server.script("GET", "/data", json_response({"error": "invalid_token"}, 401))
    client = make_client(server, sleeps, auth=OAuth2ClientCredentials(f"{server.url}/oauth/token", "c", "s"))
    with pytest.raises(AuthError, match="GET /data -> 401 invalid_token"):
        client.get_json("/data")
    assert server.count("/oauth/token") == 2 and server.count("/data") == 2


def test_static_credentials_fail_at_once_on_401(server: ScriptedServer, sleeps: list[float]) -> None:
    server.script("GET", "/data", json_response({"error": "unauthorized"}, 401))
    with pytest.raises(AuthError):
        make_client(server, sleeps, auth=BasicAuth("isu", "pw")).get_json("/data")
    assert server.count("/data") == 1


def test_refresh_token_grant_sends_client_as_basic(server: ScriptedServer, sleeps: list[float]) -> None:
    server.script("POST", "/token", json_response({"access_token": "wd-token"}))
    server.script("GET", "/data", lambda r: json_response({"auth": r.header("authorization")}))
    auth = OAuth2RefreshToken(f"{server.url}/token", "wd-client", "wd-secret", "wd-refresh")
    assert make_client(server, sleeps, auth=auth).get_json("/data") == {"auth": "Bearer wd-token"}
    token_request = server.calls["/token"][0]
    assert token_request.form() == {"grant_type": "refresh_token", "refresh_token": "wd-refresh"}
    assert token_request.header("authorization") == "Basic d2QtY2xpZW50OndkLXNlY3JldA=="


# -- secrets --------------------------------------------------------------------------------
def test_secrets_never_appear_in_errors_or_logs(
    server: ScriptedServer, sleeps: list[float], caplog: pytest.LogCaptureFixture
) -> None:
    echo = "client_secret=top-secret-value access_token=live-token-value"
    server.script("POST", "/oauth/token", json_response({"error": "invalid_client", "error_description": echo}, 400))
    server.script("GET", "/data", json_response({}, 503), json_response({"error": "nope"}, 403))
    auth = OAuth2ClientCredentials(f"{server.url}/oauth/token", "client", "top-secret-value")
    with pytest.raises(AuthError) as token_error:
        make_client(server, sleeps, auth=auth).get_json("/data")
    caplog.set_level(logging.DEBUG, logger="ps_pipelines")
    client = make_client(server, sleeps, auth=StaticBearer("live-token-value"))
    with pytest.raises(ValidationError) as data_error:
        client.get_json("/data", params={"api_key": "live-key-value", "q": "SELECT Id"})
    texts = [str(token_error.value), str(data_error.value), repr(auth), caplog.text]
    assert "invalid_client" in texts[0] and "api_key=***" in texts[1] and "retrying" in caplog.text
    for text in texts:
        for secret in ("top-secret-value", "live-token-value", "live-key-value"):
            assert secret not in text


def test_scrub_masks_credentials_but_keeps_error_codes() -> None:
    from ps_pipelines.lib.http.errors import scrub_text

    text = 'client_secret=s1 {"refresh_token": "r1"} Authorization: Bearer abcdefgh123'
    assert scrub_text(text) == 'client_secret=*** {"refresh_token": "***"} Authorization: Bearer ***'
    code = "INVALID_KEY_OR_REF: Invalid subsidiary reference key 5."
    assert scrub_text(code) == code


def test_redact_url_masks_secret_params_and_userinfo() -> None:
    url = "https://user:pw@host/p?q=1&access_token=abc&client_secret=def&refresh_token=ghi&limit=5"
    assert redact_url(url) == "https://host/p?q=1&access_token=***&client_secret=***&refresh_token=***&limit=5"


# -- limits and TLS --------------------------------------------------------------------------
def with_threads(count: int, work: Callable[[], Any]) -> None:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            work()
        except BaseException as exc:  # surfaced in the main thread below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors, errors


def test_concurrency_cap_is_respected(server: ScriptedServer, sleeps: list[float]) -> None:
    in_flight, peak = [0], [0]
    lock = threading.Lock()

    def hold(request: Request) -> Response:
        with lock:
            in_flight[0] += 1
            peak[0] = max(peak[0], in_flight[0])
        time.sleep(0.05)  # keeps requests overlapping so the server can see how many arrive at once
        with lock:
            in_flight[0] -= 1
        return OK

    server.script("GET", "/slow", hold)
    capped = make_client(server, sleeps, max_in_flight=2)
    with_threads(8, lambda: capped.get_json("/slow"))
    assert peak[0] == 2
    peak[0] = 0
    uncapped = make_client(server, sleeps)
    with_threads(8, lambda: uncapped.get_json("/slow"))
    assert peak[0] > 2  # the cap above was the client's doing, not the server's


def test_token_bucket_spaces_requests() -> None:
    now, waits = [0.0], []
    bucket = TokenBucket(2.0, clock=lambda: now[0], sleep=waits.append)
    assert [bucket.acquire() for _ in range(4)] == [0.0, 0.0, 0.5, 1.0]
    now[0] = 10.0  # idle long enough to refill the burst
    assert bucket.acquire() == 0.0
    assert waits == [0.5, 1.0]


def test_rate_limit_applies_to_requests(server: ScriptedServer, sleeps: list[float]) -> None:
    server.script("GET", "/x", OK)
    client = make_client(server, sleeps, requests_per_second=1.0)
    for _ in range(3):
        client.get_json("/x")
    # The injected sleep received the bucket's waits: ~1s for the 2nd request, ~2s for the 3rd.
    assert len(sleeps) == 2 and 0.5 < sleeps[0] <= 1.0 and 1.5 < sleeps[1] <= 2.0


class RecordingSession(requests.Session):
    def __init__(self) -> None:
        super().__init__()
        self.verify_values: list[Any] = []

    def request(self, method: str, url: str, **kw: Any) -> requests.Response:  # type: ignore[override]
        self.verify_values.append(kw.get("verify"))
        return super().request(method, url, **kw)


def test_tls_verification_is_on_by_default(server: ScriptedServer) -> None:
    server.script("GET", "/x", OK)
    session = RecordingSession()
    client = ApiClient("netsuite", server.url, StaticBearer("t"), session=session)
    client.get_json("/x")
    assert client.verify is True and session.verify_values == [True]
