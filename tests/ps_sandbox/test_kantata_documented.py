"""Kantata OX as its documentation shows it, driven with plain ``requests``.

There is no maintained public Python client for Kantata (the vendor's own clients are Ruby
and PHP), so each test here translates one documented curl example or rule, named in its
docstring, and checks the sandbox answers as the document says.
"""

from __future__ import annotations

from typing import Any

import pytest
import requests

from ps_sandbox.context import DEFAULT_CREDENTIALS
from tests.conftest import RunningSandbox

TOKEN = DEFAULT_CREDENTIALS["kantata"]["token"]


def _get(sandbox: RunningSandbox, path: str, token: str | None = TOKEN, **params: Any) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.get(f"{sandbox.url}/api/v1/{path}", headers=headers, params=params, timeout=30)


def test_response_format(sandbox: RunningSandbox) -> None:
    """developer.mavenlink.com, "Authentication" and "Response Format":
    ``curl -H "Authorization: Bearer abc123" "https://api.mavenlink.com/api/v1/workspaces.json"`` answers
    ``count``, ``results`` of ``{key, id}`` in sorted order and the objects indexed by id under
    their own top-level key."""
    body = _get(sandbox, "workspaces.json").json()
    assert isinstance(body["count"], int) and body["count"] >= len(body["results"]) > 0
    assert {ref["key"] for ref in body["results"]} == {"workspaces"}
    assert [ref["id"] for ref in body["results"]] == list(body["workspaces"])
    assert all(body["workspaces"][ref["id"]]["id"] == ref["id"] for ref in body["results"])


def test_every_request_needs_the_bearer_token(sandbox: RunningSandbox) -> None:
    """developer.mavenlink.com, "Authentication": "All requests to the API require an Authorization
    header"; an unauthenticated request gets Kantata's OAuth error in its ``errors`` shape."""
    response = _get(sandbox, "workspaces.json", token=None)
    assert response.status_code == 401
    assert response.json() == {"errors": [{"type": "oauth", "message": "Invalid OAuth 2 Request"}]}


def test_include_side_loads_users_and_stories(sandbox: RunningSandbox) -> None:
    """developer.mavenlink.com/time_entries, "Associated Objects":
    ``curl "https://api.mavenlink.com/api/v1/time_entries.json?include=user,story"`` -- "the returned
    JSON contains top-level keys called users and stories where you can find associated data by
    inspecting time entries' user_id and story_id"."""
    body = _get(sandbox, "time_entries.json", include="user,story", per_page=50).json()
    entries = [body["time_entries"][ref["id"]] for ref in body["results"]]
    assert {ref["key"] for ref in body["results"]} == {"time_entries"}  # side-loads are not results
    assert {entry["user_id"] for entry in entries} == set(body["users"])
    assert {entry["story_id"] for entry in entries if entry["story_id"]} == set(body["stories"])
    for entry in entries:
        assert body["users"][entry["user_id"]]["id"] == entry["user_id"]


def test_include_user_and_workspace(sandbox: RunningSandbox) -> None:
    """developer.mavenlink.com/time_entries, "Associated Objects" (the same rule for the workspace
    association, [SPEC] time_entries.associations): ``GET /api/v1/time_entries?include=user,workspace``."""
    body = _get(sandbox, "time_entries", include="user,workspace", per_page=20).json()
    entries = [body["time_entries"][ref["id"]] for ref in body["results"]]
    assert {entry["workspace_id"] for entry in entries} == set(body["workspaces"])
    assert {entry["user_id"] for entry in entries} == set(body["users"])
    assert all("title" in workspace for workspace in body["workspaces"].values())


def test_time_entries_carry_the_documented_attributes(sandbox: RunningSandbox) -> None:
    """developer.mavenlink.com/time_entries: a time entry's readable attributes include ``approved``
    (whether it has been approved), ``currency`` and ``taxable``, besides what the pipeline reads."""
    body = _get(sandbox, "time_entries.json", per_page=5).json()
    for entry in body["time_entries"].values():
        assert {"date_performed", "time_in_minutes", "billable", "approved", "currency", "taxable",
                "workspace_id", "user_id", "story_id", "rate_in_cents", "created_at", "updated_at"} <= set(entry)
        assert isinstance(entry["approved"], bool)


def test_expenses_answer_is_billable(sandbox: RunningSandbox) -> None:
    """Kantata API specification (mavenlink_gem lib/config/specification.yml, expenses.attributes):
    the readable flag is ``is_billable`` ("is this a billable expense?"); ``billable`` is only the
    name a create or update sends."""
    body = _get(sandbox, "expenses.json", per_page=5).json()
    for expense in body["expenses"].values():
        assert isinstance(expense["is_billable"], bool) and "billable" not in expense


def test_paging_caps_per_page_at_200_and_reports_meta(sandbox: RunningSandbox) -> None:
    """Kantata OX API paging: ``page``/``per_page`` (at most 200 per page) and the answer's ``meta``
    with ``count``, ``page_count``, ``page_number`` and ``page_size``."""
    body = _get(sandbox, "time_entries.json", per_page=500, page=2).json()
    assert body["meta"]["page_size"] == 200 and len(body["results"]) == 200
    assert body["meta"]["page_number"] == 2
    assert body["meta"]["page_count"] == -(-body["meta"]["count"] // 200)


def test_unknown_path_answers_kantatas_error_body(sandbox: RunningSandbox) -> None:
    """developer.mavenlink.com, errors: every error answer is ``{"errors": [{"type", "message"}]}``,
    a path the API does not serve included (404)."""
    for path in ("no_such_things.json", "workspaces/1/no_such_thing"):
        response = _get(sandbox, path)
        assert response.status_code == 404
        [error] = response.json()["errors"]
        assert set(error) >= {"type", "message"}


def test_workspace_create_needs_creator_role(sandbox: RunningSandbox) -> None:
    """Kantata API specification (mavenlink_gem lib/config/specification.yml, workspaces.validations):
    ``title`` must be present and ``creator_role`` must be ``maven`` or ``buyer`` on create:
    ``curl -X POST -d '{"workspace": {"title": "...", "creator_role": "maven"}}' .../workspaces.json``."""
    headers = {"Authorization": f"Bearer {TOKEN}"}
    url = f"{sandbox.url}/api/v1/workspaces.json"
    missing = requests.post(url, json={"workspace": {"title": "New project"}}, headers=headers, timeout=30)
    assert missing.status_code == 422
    assert [error["field"] for error in missing.json()["errors"]] == ["creator_role"]
    created = requests.post(url, json={"workspace": {"title": "New project", "creator_role": "maven"}},
                            headers=headers, timeout=30)
    assert created.status_code == 200
    [ref] = created.json()["results"]
    assert created.json()["workspaces"][ref["id"]]["title"] == "New project"


@pytest.mark.parametrize("limit", [5])
def test_request_rate_past_the_limit_is_429_with_retry_after(sandbox: RunningSandbox, limit: int) -> None:
    """Kantata throttles each access token: past its request rate the API answers 429 Too Many
    Requests with ``Retry-After`` (RFC 9110 section 10.2.3) in Kantata's ``errors`` body. Kantata
    publishes no figure, so the limit is the sandbox's configurable one."""
    sandbox.control("PUT", "limits", json={"kantata_requests_per_minute": limit})
    answers = [_get(sandbox, "users.json", per_page=1) for _ in range(limit + 1)]
    assert [answer.status_code for answer in answers[:limit]] == [200] * limit
    throttled = answers[-1]
    assert throttled.status_code == 429
    assert int(throttled.headers["Retry-After"]) >= 1
    assert throttled.json()["errors"][0]["type"] == "rate_limit"
