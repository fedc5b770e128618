"""Fault injection over real HTTP: each kind, per platform format, scoping, logging, persistence.

Most tests run against a router assembled here from ``faults.install`` + ``control.register``
and one trivial paging endpoint per platform, so a fault's effect is checked against a
known answer; the last ones go through the full sandbox (``sandbox`` fixture).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
import requests

from ps_sandbox import control, faults
from ps_sandbox.context import SandboxConfig, SandboxContext, TokenRegistry
from ps_sandbox.http import Request, Response, Router, SandboxHTTPServer, json_response
from ps_sandbox.store import SandboxStore

PAGE, TOTAL = 10, 30
KANTATA_TOKEN = {"Authorization": "Bearer sandbox-kantata-token"}

# (method, path with query) of each fake platform's paged listing; "{page}" is 1-based.
LISTINGS = {
    "salesforce": ("GET", "/services/data/v60.0/query?q=SELECT+Id+FROM+Opportunity&page={page}"),
    "kantata": ("GET", "/api/v1/time_entries?page={page}"),
    "workday": ("GET", "/ccx/service/customreport2/psfirm/isu_raas/Worker_Cost_Rates?page={page}"),
    "netsuite": ("POST", "/services/rest/query/v1/suiteql?page={page}"),
}


def _rows(page: int) -> list[dict[str, Any]]:
    start = (page - 1) * PAGE
    return [{"id": str(n), "notes": f"row {n}", "time_in_minutes": 60} for n in range(start + 1, start + PAGE + 1)]


def _salesforce(request: Request) -> Response:
    rows = [{"attributes": {"type": "Opportunity"}, **row} for row in _rows(int(request.query["page"]))]
    return json_response({"totalSize": TOTAL, "done": False, "records": rows})


def _kantata(request: Request) -> Response:
    rows = _rows(int(request.query["page"]))
    return json_response({"count": TOTAL, "results": [{"key": "time_entries", "id": r["id"]} for r in rows],
                          "time_entries": {r["id"]: r for r in rows},
                          "users": {"7": {"id": "7", "notes": "side-loaded"}}})


def _workday(request: Request) -> Response:
    return json_response({"Report_Entry": _rows(int(request.query["page"]))})


def _netsuite(request: Request) -> Response:
    return json_response({"count": PAGE, "hasMore": True, "items": _rows(int(request.query["page"]))})


def records_in(platform: str, body: Any) -> list[dict[str, Any]]:
    """The test's own reading of each wire format (independent of faults.locate_records)."""
    if platform == "salesforce":
        return body["records"]
    if platform == "kantata":
        return [body["time_entries"][ref["id"]] for ref in body["results"]]
    return body["Report_Entry"] if platform == "workday" else body["items"]


@dataclass
class Harness:
    url: str
    store: SandboxStore

    def call(self, platform: str, page: int = 1) -> requests.Response:
        method, path = LISTINGS[platform]
        return requests.request(method, self.url + path.format(page=page), json={"q": "SELECT id FROM transaction"},
                                timeout=10)

    def control(self, method: str, path: str, json: Any = None) -> Any:
        response = requests.request(method, f"{self.url}/_sandbox/{path}", json=json, timeout=10)
        response.raise_for_status()
        return response.json()

    def faults(self, platform: str, config: dict[str, Any]) -> None:
        self.control("PUT", f"faults/{platform}", config)

    def log(self) -> list[dict[str, Any]]:
        return self.control("GET", "faults/log")


def _start(store: SandboxStore) -> SandboxHTTPServer:
    ctx = SandboxContext(store=store, config=SandboxConfig(), tokens=TokenRegistry(3600))
    router = Router()
    faults.install(router, ctx)
    for platform, handler in (("salesforce", _salesforce), ("kantata", _kantata), ("workday", _workday),
                              ("netsuite", _netsuite)):
        method, path = LISTINGS[platform]
        router.add(method, path.split("?")[0], platform, handler)
    router.add("POST", "/services/oauth2/token", "salesforce", lambda r: json_response({"access_token": "t"}))

    def create_workspace(request: Request) -> Response:
        store.put("kantata", "workspaces", "99", {"id": "99"}, store.now())
        return json_response({"id": "99"}, 201)

    router.add("POST", "/api/v1/workspaces", "kantata", create_workspace)
    control.register(router, ctx)
    server = SandboxHTTPServer(("127.0.0.1", 0), router)
    server.serve_in_thread()
    return server


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Harness]:
    store = SandboxStore(tmp_path / "faults.sqlite")
    server = _start(store)
    try:
        yield Harness(f"http://127.0.0.1:{server.server_port}", store)
    finally:
        server.shutdown()
        server.server_close()


def test_queue_pops_one_fault_per_request_in_order(harness: Harness) -> None:
    harness.faults("kantata", {"queue": [{"kind": "429", "retry_after": 1}, {"kind": "500"}, {"kind": "503"},
                                         {"kind": "none"}]})
    statuses = [harness.call("kantata").status_code for _ in range(6)]
    assert statuses == [429, 500, 503, 200, 200, 200]
    log = harness.log()
    assert [(e["platform"], e["kind"], e["path"]) for e in log] == [
        ("kantata", "429", "/api/v1/time_entries"), ("kantata", "500", "/api/v1/time_entries"),
        ("kantata", "503", "/api/v1/time_entries")]
    assert all(e["time"] and e["method"] == "GET" for e in log)
    assert harness.control("GET", "faults/kantata")["config"]["queue"] == []


@pytest.mark.parametrize(("platform", "expected"), [
    ("salesforce", [{"message": "ConcurrentPerOrgLongTxn Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}]),
    ("kantata", {"errors": [{"type": "rate_limit", "message": "Rate limit exceeded; slow down."}]}),
    ("workday", {"error": "Rate limit exceeded; slow down."}),
    ("netsuite", {"type": "https://www.rfc-editor.org/rfc/rfc9110.html#status.429", "title": "Too Many Requests",
                  "status": 429, "o:errorDetails": [{"detail": "Rate limit exceeded; slow down.",
                                                     "o:errorCode": "REQUEST_LIMIT_EXCEEDED"}]}),
])
def test_429_speaks_each_platforms_error_format(harness: Harness, platform: str, expected: Any) -> None:
    harness.faults(platform, {"queue": [{"kind": "429"}, {"kind": "429", "retry_after": 2}]})
    bare, advised = harness.call(platform), harness.call(platform)
    # Salesforce has no 429: an exceeded request limit is 403 REQUEST_LIMIT_EXCEEDED, with no
    # Retry-After (REST API Developer Guide, "Status Codes and Error Responses").
    status, advises = (403, False) if platform == "salesforce" else (429, True)
    assert (bare.status_code, bare.json()) == (status, expected)
    assert "Retry-After" not in bare.headers  # only when the fault asks for one
    assert advised.headers.get("Retry-After") == ("2" if advises else None)


def test_drop_closes_the_connection_without_an_answer(harness: Harness) -> None:
    harness.faults("workday", {"queue": [{"kind": "drop"}]})
    with pytest.raises(requests.ConnectionError):
        harness.call("workday")
    assert harness.call("workday").status_code == 200
    assert [e["kind"] for e in harness.log()] == ["drop"]


def test_drop_after_lets_the_write_happen_unacknowledged(harness: Harness) -> None:
    harness.faults("kantata", {"queue": [{"kind": "drop", "after": True}]})
    with pytest.raises(requests.ConnectionError):
        requests.post(f"{harness.url}/api/v1/workspaces", json={}, timeout=10)
    assert harness.store.get("kantata", "workspaces", "99") == {"id": "99"}


def test_slow_answers_normally_and_is_logged(harness: Harness) -> None:
    harness.faults("netsuite", {"queue": [{"kind": "slow", "ms": 50}]})
    response = harness.call("netsuite")
    assert response.status_code == 200 and records_in("netsuite", response.json()) == _rows(1)
    assert [(e["kind"], e["detail"]["ms"]) for e in harness.log()] == [("slow", 50)]


def test_slow_is_logged_when_the_request_arrives_and_lands_after_the_client_left(harness: Harness) -> None:
    # A create that lands late: accepted, held, then committed although its client gave up.
    harness.faults("kantata", {"queue": [{"kind": "slow", "ms": 1500}]})
    started = time.monotonic()
    with pytest.raises(requests.Timeout):
        requests.post(f"{harness.url}/api/v1/workspaces", json={}, timeout=(5, 0.3))
    assert [e["kind"] for e in harness.log()] == ["slow"]  # in flight, logged on arrival
    assert harness.store.get("kantata", "workspaces", "99") is None
    deadline = time.monotonic() + 30
    while harness.store.get("kantata", "workspaces", "99") is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert harness.store.get("kantata", "workspaces", "99") == {"id": "99"}
    assert time.monotonic() - started >= 1.5


def test_method_scopes_a_fault_to_one_http_method(harness: Harness) -> None:
    harness.faults("kantata", {"queue": [{"kind": "500"}], "method": "post", "path_contains": "/api/v1/"})
    assert harness.call("kantata").status_code == 200  # a GET of the same platform is untouched
    assert requests.post(f"{harness.url}/api/v1/workspaces", json={}, timeout=10).status_code == 500
    assert [(e["method"], e["kind"]) for e in harness.log()] == [("POST", "500")]


def test_malformed_returns_half_the_real_body_as_200(harness: Harness) -> None:
    harness.faults("salesforce", {"queue": [{"kind": "malformed"}]})
    broken, intact = harness.call("salesforce"), harness.call("salesforce")
    assert broken.status_code == 200
    with pytest.raises(ValueError):
        broken.json()
    assert intact.content.startswith(broken.content) and len(broken.content) == len(intact.content) // 2


@pytest.mark.parametrize("platform", sorted(LISTINGS))
def test_duplicate_repeats_the_end_of_the_previous_page(harness: Harness, platform: str) -> None:
    harness.faults(platform, {"queue": [{"kind": "none"}, {"kind": "duplicate", "rows": 3}]})
    first = records_in(platform, harness.call(platform, page=1).json())
    second = records_in(platform, harness.call(platform, page=2).json())
    assert [r["id"] for r in first] == [r["id"] for r in _rows(1)]
    assert [r["id"] for r in second] == [r["id"] for r in _rows(1)[-3:] + _rows(2)]
    entry = harness.log()[-1]
    assert (entry["kind"], entry["detail"]["repeated"], entry["detail"]["from"]) == ("duplicate", 3, "previous page")


def test_duplicate_without_a_previous_page_repeats_rows_of_this_page(harness: Harness) -> None:
    harness.faults("workday", {"queue": [{"kind": "duplicate", "rows": 2}]})
    rows = records_in("workday", harness.call("workday").json())
    assert rows == _rows(1)[:2] + _rows(1)


def test_drift_adds_removes_and_retypes_fields_of_the_named_object(harness: Harness) -> None:
    drift = {"object": "time_entries", "add": {"new_field": "x"}, "remove": ["notes"],
             "retype": {"time_in_minutes": "not-a-number"}}
    harness.faults("kantata", {"drift": drift})
    for page in (1, 2):  # drift is a standing condition, not a queued one-off
        body = harness.call("kantata", page).json()
        assert records_in("kantata", body) == [
            {"id": r["id"], "time_in_minutes": "not-a-number", "new_field": "x"} for r in _rows(page)]
        assert body["users"]["7"] == {"id": "7", "notes": "side-loaded"}  # other objects untouched
    assert [e["kind"] for e in harness.log()] == ["drift", "drift"]


def test_drift_on_salesforce_follows_the_record_type(harness: Harness) -> None:
    harness.faults("salesforce", {"drift": {"object": "Account", "remove": ["notes"]}})
    assert records_in("salesforce", harness.call("salesforce").json())[0]["notes"] == "row 1"
    harness.faults("salesforce", {"drift": {"object": "Opportunity", "remove": ["notes"]}})
    assert all("notes" not in r for r in records_in("salesforce", harness.call("salesforce").json()))


def test_path_contains_scopes_the_faults(harness: Harness) -> None:
    harness.faults("kantata", {"queue": [{"kind": "500"}], "path_contains": "workspaces"})
    assert harness.call("kantata").status_code == 200  # not matching: the queue is left alone
    assert requests.post(f"{harness.url}/api/v1/workspaces", timeout=10).status_code == 500
    harness.faults("netsuite", {"queue": [{"kind": "500"}], "path_contains": "FROM transaction"})
    assert harness.call("netsuite").status_code == 500  # SuiteQL names its table in the POSTed query


def test_token_endpoints_are_spared_unless_included(harness: Harness) -> None:
    token_url = f"{harness.url}/services/oauth2/token"
    harness.faults("salesforce", {"queue": [{"kind": "503"}]})
    assert requests.post(token_url, timeout=10).status_code == 200
    harness.faults("salesforce", {"queue": [{"kind": "503"}], "include_auth": True})
    assert requests.post(token_url, timeout=10).status_code == 503


def test_control_api_is_never_faulted(harness: Harness) -> None:
    for platform in LISTINGS:
        harness.faults(platform, {"rates": {"5xx": 1.0}})
    assert harness.control("GET", "health") == {"status": "ok"}
    assert harness.call("workday").status_code in (500, 503)


def test_rates_are_probabilistic_but_seeded(harness: Harness) -> None:
    config = {"rates": {"429": 0.3, "5xx": 0.2, "retry_after": 1}, "seed": 5}
    harness.faults("workday", config)
    first = [harness.call("workday").status_code for _ in range(30)]
    harness.faults("workday", config)  # re-applying a config restarts its sequence
    assert [harness.call("workday").status_code for _ in range(30)] == first
    assert {429, 200} <= set(first) and set(first) & {500, 503}
    assert all(e["detail"]["source"] == "rate" for e in harness.log())
    assert sum(e["kind"] in ("429", "500", "503") for e in harness.log()) == 2 * sum(s != 200 for s in first)


def test_config_survives_a_restart_and_clears(harness: Harness) -> None:
    harness.faults("kantata", {"queue": [{"kind": "500"}, {"kind": "503"}]})
    assert harness.call("kantata").status_code == 500
    restarted = _start(harness.store)  # a new server process on the same state file
    try:
        again = Harness(f"http://127.0.0.1:{restarted.server_port}", harness.store)
        assert again.call("kantata").status_code == 503
        again.faults("kantata", {"queue": [{"kind": "500"}]})
        assert again.control("DELETE", "faults/kantata")["config"] is None
        assert again.call("kantata").status_code == 200
        assert again.control("DELETE", "faults/log") == {"cleared": True}
        assert again.log() == []
    finally:
        restarted.shutdown()
        restarted.server_close()


@pytest.mark.parametrize(("platform", "config"), [
    ("kantata", {"queue": [{"kind": "418"}]}),
    ("kantata", {"unknown": 1}),
    ("kantata", {"rates": {"teapot": 0.5}}),
    ("kantata", {"drift": {"add": {"x": 1}}}),
    ("jira", {"queue": []}),
])
def test_invalid_configs_are_refused(harness: Harness, platform: str, config: dict) -> None:
    response = requests.put(f"{harness.url}/_sandbox/faults/{platform}", json=config, timeout=10)
    assert response.status_code == 400 and response.json()["error"]


# -- through the full sandbox: the real platform endpoints ----------------------------------


def test_real_kantata_endpoint_faults_then_recovers(sandbox) -> None:
    sandbox.control("PUT", "faults/kantata", {
        "queue": [{"kind": "429"}], "path_contains": "time_entries",
        "drift": {"object": "time_entries", "add": {"new_field": "x"}, "remove": ["notes"]}})
    url = f"{sandbox.url}/api/v1/time_entries?per_page=5"
    limited = requests.get(url, headers=KANTATA_TOKEN, timeout=10)
    assert limited.status_code == 429 and limited.json()["errors"][0]["type"] == "rate_limit"
    body = requests.get(url, headers=KANTATA_TOKEN, timeout=10).json()
    entries = list(body["time_entries"].values())
    assert len(entries) == 5 and all(e["new_field"] == "x" and "notes" not in e for e in entries)
    workspaces = requests.get(f"{sandbox.url}/api/v1/workspaces", headers=KANTATA_TOKEN, timeout=10)
    assert workspaces.status_code == 200  # outside path_contains
    assert [e["kind"] for e in sandbox.control("GET", "faults/log")] == ["429", "drift"]


def test_real_salesforce_query_is_malformed_and_duplicated(sandbox) -> None:
    token = requests.post(f"{sandbox.url}/services/oauth2/token", data={
        "grant_type": "client_credentials", "client_id": "sandbox-sf-client",
        "client_secret": "sandbox-sf-secret"}, timeout=10).json()["access_token"]
    sandbox.control("PUT", "faults/salesforce", {"queue": [{"kind": "malformed"}, {"kind": "duplicate", "rows": 2}]})
    url = f"{sandbox.url}/services/data/v60.0/query"
    params = {"q": "SELECT Id, Name FROM Account ORDER BY Id"}
    headers = {"Authorization": f"Bearer {token}"}
    broken = requests.get(url, params=params, headers=headers, timeout=10)
    assert broken.status_code == 200
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(broken.content)
    records = requests.get(url, params=params, headers=headers, timeout=10).json()["records"]
    assert [r["Id"] for r in records[:2]] == [r["Id"] for r in records[2:4]]
