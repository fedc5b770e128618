"""Workday as its documentation shows it, driven with plain ``requests``.

There is no maintained public Python client for Workday's REST API or RaaS, so each test here
translates one documented request or rule, named in its docstring, and checks the sandbox
answers as the document says.
"""

from __future__ import annotations

import requests

from ps_sandbox.catalog import workday as workday_catalog
from ps_sandbox.context import DEFAULT_CREDENTIALS
from tests.conftest import RunningSandbox

CREDS = DEFAULT_CREDENTIALS["workday"]
TENANT = CREDS["tenant"]


def _token(sandbox: RunningSandbox) -> str:
    """OAuth 2.0 refresh-token grant (RFC 6749 section 6) at ``/ccx/oauth2/{tenant}/token`` with the
    API client's id and secret (Workday "Register API Client for Integrations")."""
    response = requests.post(f"{sandbox.url}/ccx/oauth2/{TENANT}/token", timeout=30,
                             auth=(CREDS["client_id"], CREDS["client_secret"]),
                             data={"grant_type": "refresh_token", "refresh_token": CREDS["refresh_token"]})
    assert response.status_code == 200
    return response.json()["access_token"]


def test_workers_page_by_limit_and_offset(sandbox: RunningSandbox) -> None:
    """Workday REST collections: ``GET /workers?limit=100&offset=0`` answers ``{"total", "data"}``;
    ``limit`` is at most 100 (schemas.apis.io Workday Worker API; Workday REST paging)."""
    headers = {"Authorization": f"Bearer {_token(sandbox)}"}
    url = f"{sandbox.url}/ccx/api/v1/{TENANT}/workers"
    body = requests.get(url, params={"limit": 100, "offset": 0}, headers=headers, timeout=30).json()
    assert len(body["data"]) == min(100, body["total"])
    too_many = requests.get(url, params={"limit": 101}, headers=headers, timeout=30)
    assert too_many.status_code == 400 and too_many.json()["errors"][0]["field"] == "limit"


def test_workers_carry_the_documented_fields(sandbox: RunningSandbox) -> None:
    """Workday Worker resource (schemas.apis.io/schemas/workday/workday-worker): ``id``, ``descriptor``,
    ``workerID`` (spelled so), ``primaryWorkEmail``, ``businessTitle``, ``hireDate`` and references
    as ``{id, descriptor}``."""
    headers = {"Authorization": f"Bearer {_token(sandbox)}"}
    body = requests.get(f"{sandbox.url}/ccx/api/v1/{TENANT}/workers", params={"limit": 5}, headers=headers,
                        timeout=30).json()
    for worker in body["data"]:
        assert {"id", "descriptor", "workerID", "primaryWorkEmail", "businessTitle", "hireDate", "isManager"} \
            <= set(worker)
        assert "workerId" not in worker
        assert set(worker["location"]) >= {"id", "descriptor"}
        # Nothing the worker resource does not document: no cost center, FTE or region on it.
        assert set(worker) <= set(workday_catalog.WORKER_FIELDS), set(worker) - set(
            workday_catalog.WORKER_FIELDS)


def test_raas_report_as_json(sandbox: RunningSandbox) -> None:
    """Workday Report-as-a-Service: ``GET /ccx/service/customreport2/{tenant}/{owner}/{report}?format=json``
    with the integration system user's Basic credentials answers ``{"Report_Entry": [...]}`` whose
    keys are the report's column names (schemas.apis.io/schemas/workday/workday-reportresponse)."""
    url = f"{sandbox.url}/ccx/service/customreport2/{TENANT}/{CREDS['report_owner']}/Worker_Cost_Rates"
    response = requests.get(url, params={"format": "json"}, auth=(CREDS["username"], CREDS["password"]), timeout=30)
    rows = response.json()["Report_Entry"]
    assert rows and set(rows[0]) == {"Worker_ID", "Effective_Date", "Cost_Rate", "Currency", "Rate_Type",
                                     "Last_Updated"}


def test_unknown_path_answers_workdays_error_body(sandbox: RunningSandbox) -> None:
    """Workday REST errors: ``{"error": message, "errors": [...]}``; an unknown resource is
    "404 Resource not found" (community.workday.com/rest/error-messages, as listed in Workday's
    public OpenAPI copies)."""
    headers = {"Authorization": f"Bearer {_token(sandbox)}"}
    response = requests.get(f"{sandbox.url}/ccx/api/v1/{TENANT}/noSuchResource", headers=headers, timeout=30)
    assert response.status_code == 404
    body = response.json()
    assert body["error"] == "Resource not found" and isinstance(body["errors"], list)


def test_throttling_answers_429_with_retry_after(sandbox: RunningSandbox) -> None:
    """Workday throttles per tenant and answers 429 with ``Retry-After``; it publishes its figures
    only behind the customer login (rate-limits.apis.io, Workday rate limits), so the limit is the
    sandbox's configurable one."""
    token = _token(sandbox)  # before the limit is lowered
    sandbox.control("PUT", "limits", json={"workday_requests_per_minute": 3})
    headers = {"Authorization": f"Bearer {token}"}
    url = f"{sandbox.url}/ccx/api/v1/{TENANT}/workers"
    answers = [requests.get(url, params={"limit": 1}, headers=headers, timeout=30) for _ in range(4)]
    assert [answer.status_code for answer in answers] == [200, 200, 200, 429]
    assert int(answers[-1].headers["Retry-After"]) >= 1
    assert "error" in answers[-1].json()
