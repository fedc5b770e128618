"""The sandbox's Workday endpoints over real HTTP: OAuth token, workers REST API and RaaS."""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from ps_sandbox.context import DEFAULT_CREDENTIALS, SandboxConfig, SandboxContext, TokenRegistry
from ps_sandbox.http import Router, SandboxHTTPServer
from ps_sandbox.platforms import workday
from ps_sandbox.store import SandboxStore

CREDS = DEFAULT_CREDENTIALS["workday"]
TENANT = CREDS["tenant"]
BASE = datetime(2026, 10, 1, 12, 0, tzinfo=UTC)
WORKER_COUNT = 45
COST_RATE_ROWS = 10
GOOD_CLIENT = (CREDS["client_id"], CREDS["client_secret"])


@dataclass
class Served:
    url: str
    ctx: SandboxContext
    http: requests.Session


@contextmanager
def serve(
    tmp_path: Path,
    register: Callable[[Router, SandboxContext], None],
    seed: Callable[[SandboxStore], None],
    credentials: dict[str, dict[str, str]] | None = None,
) -> Iterator[Served]:
    """One platform module on its own router and a seeded store, served on a free port."""
    store = SandboxStore(tmp_path / "sandbox.sqlite")
    seed(store)
    config = SandboxConfig(credentials=credentials or copy.deepcopy(DEFAULT_CREDENTIALS))
    ctx = SandboxContext(store=store, config=config, tokens=TokenRegistry(config.token_ttl_seconds))
    router = Router()
    register(router, ctx)
    server = SandboxHTTPServer(("127.0.0.1", 0), router)
    # A short poll interval: shutdown() waits for one poll, which would add 0.5 s to every test.
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
    try:
        with requests.Session() as http:
            yield Served(url=f"http://127.0.0.1:{server.server_port}", ctx=ctx, http=http)
    finally:
        server.shutdown()
        server.server_close()


def _worker(index: int) -> dict:
    return {
        "id": f"{index:032x}",
        "workerID": f"W{index:05d}",
        "descriptor": f"Person {index}",
        "primaryWorkEmail": f"person{index}@psfirm.example",
        "businessTitle": "Consultant",
        "jobProfile": {"id": "jp1", "descriptor": "Consultant"},
        "location": {"id": "loc1", "descriptor": "London"},
        "hireDate": "2024-01-15",
        "terminationDate": None,
        "isActive": True,
    }


def _cost_rate(index: int) -> tuple[str, datetime, dict]:
    updated = BASE + timedelta(days=index)
    row = {
        "Worker_ID": f"W{index:05d}",
        "Effective_Date": "2026-01-01",
        "Cost_Rate": 80 + index,
        "Currency": "GBP",
        "Rate_Type": "Hourly",
        "Last_Updated": updated.strftime("%Y-%m-%dT%H:%M:%S.000+00:00"),
    }
    return f"{row['Worker_ID']}|{row['Effective_Date']}", updated, row


def _seed(store: SandboxStore) -> None:
    workers = [_worker(index) for index in range(1, WORKER_COUNT + 1)]
    store.put_many("workday", "workers", [(worker["id"], BASE, worker) for worker in workers])
    store.put_many("workday", "Worker_Cost_Rates", [_cost_rate(i) for i in range(COST_RATE_ROWS)])
    history = {"Worker_ID": "W00001", "Effective_Date": "2024-01-15", "Employment_Status": "Active"}
    store.put("workday", "Worker_Job_History", "W00001|2024-01-15", history, BASE)


@pytest.fixture
def wd(tmp_path: Path) -> Iterator[Served]:
    with serve(tmp_path, workday.register, _seed) as served:
        yield served


def _refresh(wd: Served) -> requests.Response:
    form = {"grant_type": "refresh_token", "refresh_token": CREDS["refresh_token"]}
    return wd.http.post(f"{wd.url}/ccx/oauth2/{TENANT}/token", data=form, auth=GOOD_CLIENT)


def _token(wd: Served) -> str:
    response = _refresh(wd)
    response.raise_for_status()
    return response.json()["access_token"]


def _get(wd: Served, path: str, token: str | None = None, **params: str) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return wd.http.get(f"{wd.url}{path}", params=params, headers=headers)


RAAS_USER = (CREDS["username"], CREDS["password"])
OWNER = CREDS["report_owner"]


def _report(
    wd: Served, report: str, auth: tuple[str, str] = RAAS_USER, owner: str = OWNER, **params: str
) -> requests.Response:
    url = f"{wd.url}/ccx/service/customreport2/{TENANT}/{owner}/{report}"
    return wd.http.get(url, params={"format": "json", **params}, auth=auth)


# -- OAuth -------------------------------------------------------------------------------------
def test_refresh_token_grant_with_basic_client_auth(wd: Served) -> None:
    response = _refresh(wd)
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["refresh_token"] == CREDS["refresh_token"]
    assert wd.ctx.tokens.is_valid("workday", body["access_token"])


def test_client_credentials_grant_with_form_client_auth(wd: Served) -> None:
    form = {"grant_type": "client_credentials", "client_id": GOOD_CLIENT[0], "client_secret": GOOD_CLIENT[1]}
    response = wd.http.post(f"{wd.url}/ccx/oauth2/{TENANT}/token", data=form)
    assert response.status_code == 200
    assert wd.ctx.tokens.is_valid("workday", response.json()["access_token"])


@pytest.mark.parametrize(
    ("tenant", "auth", "form", "status", "error"),
    [
        (TENANT, (CREDS["client_id"], "wrong"), {"grant_type": "client_credentials"}, 401, "invalid_client"),
        (TENANT, None, {"grant_type": "client_credentials"}, 401, "invalid_client"),
        (TENANT, GOOD_CLIENT, {"grant_type": "refresh_token", "refresh_token": "old"}, 400, "invalid_grant"),
        (TENANT, GOOD_CLIENT, {"grant_type": "password"}, 400, "unsupported_grant_type"),
        ("othertenant", GOOD_CLIENT, {"grant_type": "client_credentials"}, 404, "not found"),
    ],
)
def test_token_errors(wd: Served, tenant: str, auth: Any, form: dict, status: int, error: str) -> None:
    response = wd.http.post(f"{wd.url}/ccx/oauth2/{tenant}/token", data=form, auth=auth)
    assert response.status_code == status
    assert response.json()["error"] == error


# -- workers -------------------------------------------------------------------------------------
def test_workers_pages_by_limit_and_offset_in_id_order(wd: Served) -> None:
    token = _token(wd)
    seen: list[str] = []
    for offset in range(0, WORKER_COUNT, 20):
        body = _get(wd, f"/ccx/api/v1/{TENANT}/workers", token, limit="20", offset=str(offset)).json()
        assert body["total"] == WORKER_COUNT
        seen += [worker["id"] for worker in body["data"]]
    assert seen == sorted(_worker(i)["id"] for i in range(1, WORKER_COUNT + 1))
    last_page = _get(wd, f"/ccx/api/v1/{TENANT}/workers", token, limit="20", offset="40").json()
    assert len(last_page["data"]) == WORKER_COUNT - 40


def test_workers_default_limit_and_href(wd: Served) -> None:
    body = _get(wd, f"/ccx/api/v1/{TENANT}/workers", _token(wd)).json()
    assert len(body["data"]) == workday.DEFAULT_LIMIT
    first = body["data"][0]
    assert first["href"] == f"{wd.url}/ccx/api/v1/{TENANT}/workers/{first['id']}"
    assert first["jobProfile"] == {"id": "jp1", "descriptor": "Consultant"}
    # The href leads back to the same worker.
    again = _get(wd, first["href"].removeprefix(wd.url), _token(wd))
    assert again.status_code == 200
    assert again.json() == first


@pytest.mark.parametrize(("params", "field"), [({"limit": "101"}, "limit"), ({"limit": "0"}, "limit"),
                                               ({"limit": "x"}, "limit"), ({"offset": "-1"}, "offset")])
def test_workers_rejects_bad_paging(wd: Served, params: dict, field: str) -> None:
    response = _get(wd, f"/ccx/api/v1/{TENANT}/workers", _token(wd), **params)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid request"
    assert response.json()["errors"][0]["field"] == field


def test_workers_limit_over_100_message(wd: Served) -> None:
    response = _get(wd, f"/ccx/api/v1/{TENANT}/workers", _token(wd), limit="101")
    assert response.json() == {
        "error": "invalid request",
        "errors": [{"error": "limit must be between 1 and 100", "field": "limit"}],
    }


def test_worker_by_id_and_unknown_id(wd: Served) -> None:
    token = _token(wd)
    worker = _worker(7)
    found = _get(wd, f"/ccx/api/v1/{TENANT}/workers/{worker['id']}", token)
    assert found.status_code == 200
    assert found.json()["primaryWorkEmail"] == worker["primaryWorkEmail"]
    assert _get(wd, f"/ccx/api/v1/{TENANT}/workers/{'f' * 32}", token).status_code == 404


@pytest.mark.parametrize("token", [None, "not-a-token"])
def test_workers_reject_missing_or_unknown_token(wd: Served, token: str | None) -> None:
    response = _get(wd, f"/ccx/api/v1/{TENANT}/workers", token)
    assert response.status_code == 401
    assert response.json() == {"error": "invalid_token"}


def test_workers_reject_expired_token(wd: Served) -> None:
    token = _token(wd)
    assert _get(wd, f"/ccx/api/v1/{TENANT}/workers", token).status_code == 200
    wd.ctx.tokens.expire_all("workday")
    assert _get(wd, f"/ccx/api/v1/{TENANT}/workers", token).status_code == 401


def test_workers_wrong_tenant_is_not_found(wd: Served) -> None:
    assert _get(wd, "/ccx/api/v1/othertenant/workers", _token(wd)).status_code == 404


# -- RaaS ------------------------------------------------------------------------------------------
def test_report_returns_every_row_without_paging(wd: Served) -> None:
    response = _report(wd, "Worker_Cost_Rates")
    assert response.status_code == 200
    entries = response.json()["Report_Entry"]
    assert len(entries) == COST_RATE_ROWS
    assert entries[0] == _cost_rate(0)[2]


def test_report_accepts_user_at_tenant_and_bearer_token(wd: Served) -> None:
    assert _report(wd, "Worker_Job_History", auth=(f"{CREDS['username']}@{TENANT}", CREDS["password"])).ok
    url = f"{wd.url}/ccx/service/customreport2/{TENANT}/{CREDS['report_owner']}/Worker_Job_History"
    response = wd.http.get(url, params={"format": "json"}, headers={"Authorization": f"Bearer {_token(wd)}"})
    assert response.json()["Report_Entry"][0]["Employment_Status"] == "Active"


@pytest.mark.parametrize("auth", [(CREDS["username"], "wrong"), ("someone", CREDS["password"])])
def test_report_rejects_bad_basic_auth(wd: Served, auth: tuple[str, str]) -> None:
    response = _report(wd, "Worker_Cost_Rates", auth=auth)
    assert response.status_code == 401
    assert "Report_Entry" not in response.json()


def test_report_without_credentials_is_unauthorized(wd: Served) -> None:
    url = f"{wd.url}/ccx/service/customreport2/{TENANT}/{CREDS['report_owner']}/Worker_Cost_Rates"
    assert wd.http.get(url, params={"format": "json"}).status_code == 401


def test_updated_from_prompt_keeps_rows_updated_at_or_after_it(wd: Served) -> None:
    boundary = BASE + timedelta(days=6)
    response = _report(wd, "Worker_Cost_Rates", Updated_From=boundary.isoformat())
    assert response.status_code == 200
    entries = response.json()["Report_Entry"]
    # Inclusive: the row updated exactly at the prompt's instant is part of the answer.
    assert [row["Cost_Rate"] for row in entries] == [80 + i for i in range(6, COST_RATE_ROWS)]


@pytest.mark.parametrize(
    ("owner", "report", "params", "status"),
    [
        (OWNER, "No_Such_Report", {}, 404),
        ("someone_else", "Worker_Cost_Rates", {}, 404),
        (OWNER, "Worker_Cost_Rates", {"format": "csv"}, 400),
        (OWNER, "Worker_Cost_Rates", {"Updated_From": "last tuesday"}, 400),
    ],
)
def test_report_errors(wd: Served, owner: str, report: str, params: dict, status: int) -> None:
    assert _report(wd, report, owner=owner, **params).status_code == status


def test_unknown_paths_answer_workdays_error_body(wd: Served) -> None:
    for path in (f"/ccx/api/v1/{TENANT}/nothing", "/ccx/unknown"):
        response = wd.http.get(f"{wd.url}{path}")
        assert response.status_code == 404
        assert response.json()["error"] == "Resource not found"
