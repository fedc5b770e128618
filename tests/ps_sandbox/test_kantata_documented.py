"""Kantata OX as its documentation shows it, driven with plain ``requests``.

There is no maintained public Python client for Kantata (the vendor's own clients are Ruby
and PHP), so each test here translates one documented curl example or rule, named in its
docstring, and checks the sandbox answers as the document says.
"""

from __future__ import annotations

from typing import Any

import pytest
import requests

from ps_sandbox.catalog import kantata as kantata_catalog
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


# -- objects Kantata documents for what the pipeline needs (ps_sandbox/catalog/kantata.py) ---------
def _post(sandbox: RunningSandbox, path: str, body: dict, **params: Any) -> requests.Response:
    return requests.post(f"{sandbox.url}/api/v1/{path}", json=body, params=params,
                         headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)


def _records(body: dict) -> list[dict]:
    return [body[ref["key"]][ref["id"]] for ref in body["results"]]


@pytest.mark.parametrize("collection", sorted(kantata_catalog.OBJECTS))
def test_served_records_carry_only_documented_attributes(sandbox: RunningSandbox, collection: str) -> None:
    """Every attribute the sandbox answers is in Kantata's specification or OX API reference (the
    catalogue holds no flagged extensions any more): a workspace has no ``salesforce_opportunity_id``,
    a time entry no ``status``/``approved_at``, a story no ``completed_at``, a user no audit times."""
    obj = kantata_catalog.OBJECTS[collection]
    assert obj.extensions == {}
    params = {"subject_type": "Workspace"} if collection == "external_references" else {}
    body = _get(sandbox, collection, per_page=200, **params).json()
    records = _records(body)
    assert records, collection
    for record in records:
        assert set(record) <= set(obj.attributes), (collection, set(record) - set(obj.attributes))


def test_external_references_need_a_subject_type_and_filter_on_their_attributes(sandbox: RunningSandbox) -> None:
    """developer.kantata.com, External References, ``GET /external_references``: ``subject_type`` is
    required; ``service_name``, ``service_model``, ``service_model_ref`` and ``subject_id`` filter."""
    assert _get(sandbox, "external_references").status_code == 400
    [reference] = _records(_get(sandbox, "external_references", subject_type="Workspace", per_page=1).json())
    assert (reference["service_name"], reference["service_model"]) == ("Salesforce", "Opportunity")
    found = _records(_get(sandbox, "external_references", subject_type="Workspace",
                          service_model_ref=reference["service_model_ref"]).json())
    assert [ref["id"] for ref in found] == [reference["id"]]
    assert _get(sandbox, "external_references", subject_type="TimeEntry",
                subject_id=reference["subject_id"]).json()["count"] == 0


def test_include_external_references_answers_their_ids_on_the_workspaces(sandbox: RunningSandbox) -> None:
    """developer.kantata.com, Workspaces: ``include=external_references`` "Includes references to external
    integrations for this object"; ``external_reference_ids`` "will only be included in the response if
    external_references is in the list of included associations"."""
    plain = _records(_get(sandbox, "workspaces", per_page=20).json())
    assert all("external_reference_ids" not in workspace for workspace in plain)
    body = _get(sandbox, "workspaces", per_page=20, include="external_references").json()
    for workspace in _records(body):
        [reference_id] = workspace["external_reference_ids"]
        reference = body["external_references"][reference_id]
        assert (reference["subject_type"], reference["subject_id"]) == ("Workspace", workspace["id"])


def test_workspaces_filter_on_their_external_references(sandbox: RunningSandbox) -> None:
    """developer.kantata.com, Workspaces: ``external_reference_service_name``,
    ``external_reference_service_model`` and ``external_reference_service_model_refs`` ("a
    comma-separated list of up to 200 external IDs")."""
    references = _records(_get(sandbox, "external_references", subject_type="Workspace", per_page=3).json())
    refs = ",".join(reference["service_model_ref"] for reference in references)
    body = _get(sandbox, "workspaces", external_reference_service_name="Salesforce",
                external_reference_service_model="Opportunity", external_reference_service_model_refs=refs).json()
    assert sorted(ws["id"] for ws in _records(body)) == sorted(ref["subject_id"] for ref in references)
    assert _get(sandbox, "workspaces", external_reference_service_name="Jira",
                external_reference_service_model_refs=refs).json()["count"] == 0
    too_many = ",".join(str(n) for n in range(201))
    assert _get(sandbox, "workspaces", external_reference_service_model_refs=too_many).status_code == 400


def test_a_workspace_is_created_with_its_external_reference_in_one_call(sandbox: RunningSandbox) -> None:
    """mavenlink_gem specification, workspaces.create_attributes: ``external_reference``; developer.kantata.com:
    it "connects objects in an external system with objects in Kantata OX", ``service_name``,
    ``service_model`` and ``service_model_ref`` required. An undocumented attribute such as
    ``salesforce_opportunity_id`` is dropped, as Rails drops unknown parameters."""
    reference = {"service_name": "Salesforce", "service_model": "Opportunity", "service_model_ref": "006NEW"}
    created = _post(sandbox, "workspaces", {"workspace": {
        "title": "Linked", "creator_role": "maven", "external_reference": reference,
        "salesforce_opportunity_id": "006NEW"}}, include="external_references")
    assert created.status_code == 200, created.text
    [workspace] = _records(created.json())
    assert "salesforce_opportunity_id" not in workspace
    [reference_id] = workspace["external_reference_ids"]
    stored = created.json()["external_references"][reference_id]
    assert (stored["subject_type"], stored["subject_id"], stored["service_model_ref"]) == \
        ("Workspace", workspace["id"], "006NEW")
    found = _get(sandbox, "workspaces", external_reference_service_model_refs="006NEW").json()
    assert [ws["id"] for ws in _records(found)] == [workspace["id"]]
    # A reference missing its external id is refused with the workspace: nothing is created.
    before = _get(sandbox, "workspaces", per_page=1).json()["count"]
    refused = _post(sandbox, "workspaces", {"workspace": {
        "title": "Unlinked", "creator_role": "maven", "external_reference": {**reference, "service_model_ref": ""}}})
    assert refused.status_code == 422
    assert [error["field"] for error in refused.json()["errors"]] == ["external_reference.service_model_ref"]
    assert _get(sandbox, "workspaces", per_page=1).json()["count"] == before


def test_create_or_update_external_reference_keeps_one_per_service(sandbox: RunningSandbox) -> None:
    """developer.kantata.com, ``POST /external_references/create_or_update``: a subject's reference of a
    ``service_name`` is updated in place ("the service_name must be unique" on one object)."""
    [reference] = _records(_get(sandbox, "external_references", subject_type="Workspace", per_page=1).json())
    body = {"external_reference": {"subject_type": "Workspace", "subject_id": reference["subject_id"],
                                   "service_name": "Salesforce", "service_model": "Opportunity",
                                   "service_model_ref": reference["service_model_ref"], "status": "failed"}}
    answer = _post(sandbox, "external_references/create_or_update", body)
    assert answer.status_code == 200, answer.text
    [updated] = _records(answer.json())
    assert (updated["id"], updated["status"]) == (reference["id"], "failed")
    missing = {"external_reference": {**body["external_reference"], "subject_id": "1"}}
    assert _post(sandbox, "external_references/create_or_update", missing).status_code == 422


def test_time_entries_include_their_timesheet_submissions(sandbox: RunningSandbox) -> None:
    """developer.kantata.com, Time Entries: ``include=recent_submission`` ("the most recent timesheet the
    time entry was submitted on, if any, including any rejected or cancelled timesheets") and
    ``active_submission`` ("approved or pending"); ``approved`` follows the approved timesheet.
    Timesheet Submissions: status 'approved', 'rejected', 'cancelled' or 'pending', and
    ``current_resolution_created_at_date``, when the current resolution (approval) was made."""
    body = _get(sandbox, "time_entries", per_page=200, include="recent_submission,active_submission").json()
    seen = set()
    for entry in _records(body):
        submission = body["timesheet_submissions"].get(entry["recent_submission_id"] or "")
        if submission is None:
            assert entry["approved"] is False and entry["active_submission_id"] is None
            continue
        seen.add(submission["status"])
        assert entry["id"] in submission["time_entry_ids"]
        assert entry["approved"] == (submission["status"] == "approved")
        assert (submission["current_resolution_created_at_date"] is not None) == \
            (submission["status"] in ("approved", "rejected"))
        active = submission["status"] in ("approved", "pending")
        assert entry["active_submission_id"] == (submission["id"] if active else None)
    assert {"approved", "pending"} <= seen
    approved = _get(sandbox, "timesheet_submissions", statuses="approved", per_page=50).json()
    assert {submission["status"] for submission in _records(approved)} == {"approved"}


def test_expenses_include_their_expense_report_submissions(sandbox: RunningSandbox) -> None:
    """mavenlink_gem specification (b7e37a8f), expenses.associations: ``recent_submission`` is an
    expense report submission; developer.kantata.com, Expense Report Submissions: "These expenses
    must be approved through an expense report submission"."""
    body = _get(sandbox, "expenses", per_page=50, include="recent_submission").json()
    submitted = [e for e in _records(body) if e["recent_submission_id"]]
    assert submitted
    for expense in submitted:
        submission = body["expense_report_submissions"][expense["recent_submission_id"]]
        assert expense["id"] in submission["expense_ids"]


def test_completed_stories_have_a_story_state_change(sandbox: RunningSandbox) -> None:
    """developer.kantata.com, Story State Changes: "an audit trail for changes to the state of a Story
    ... created for you automatically when you set the state of a Story"; ``include=story_state_changes``
    (mavenlink_gem specification b7e37a8f, stories.associations)."""
    body = _get(sandbox, "stories", story_type="milestone", per_page=200, include="story_state_changes").json()
    for story in _records(body):
        changes = [body["story_state_changes"][i] for i in story["story_state_change_ids"]]
        completions = [change for change in changes if change["state"] == "completed"]
        assert bool(completions) == (story["state"] == "completed")
        assert all(change["story_id"] == story["id"] for change in changes)


def test_rate_cards_are_sets_versions_and_role_rates(sandbox: RunningSandbox) -> None:
    """developer.kantata.com, Rate Cards: a rate card belongs to a rate card set (one per currency) and
    has a rate card version per set version ("the effective version for a specified date"); a rate
    card role is "the bill rate, in cents per hour, for a specific Role"."""
    [card] = _records(_get(sandbox, "rate_cards", per_page=1, include="rate_card_set,rate_card_versions").json())
    [version_id] = card["rate_card_version_ids"]
    body = _get(sandbox, "rate_card_versions", only=version_id, include="rate_card_set_version,rate_card_roles").json()
    [version] = _records(body)
    assert version["rate_card_id"] == card["id"]
    assert body["rate_card_set_versions"][version["rate_card_set_version_id"]]["effective_date"].endswith("-01-01")
    roles = _records(_get(sandbox, "rate_card_roles", only=",".join(version["rate_card_role_ids"]),
                          include="role").json())
    assert {role["rate_card_version_id"] for role in roles} == {version["id"]}
    named = _get(sandbox, "roles", only=",".join(role["role_id"] for role in roles)).json()
    assert {"Consultant", "Partner"} <= {role["name"] for role in _records(named)}
