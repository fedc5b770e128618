"""The sandbox's Kantata (Mavenlink API v1) endpoints over real HTTP."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from ps_sandbox.context import DEFAULT_CREDENTIALS
from ps_sandbox.platforms import kantata
from ps_sandbox.platforms.workday import parse_timestamp
from ps_sandbox.store import SandboxStore
from tests.ps_sandbox.test_workday_api import Served, serve

TOKEN = DEFAULT_CREDENTIALS["kantata"]["token"]
CLIENT = ("sandbox-kantata-client", "sandbox-kantata-secret")
BASE = datetime(2025, 10, 1, 9, 0, tzinfo=UTC)
TIME_ENTRIES = 450
WORKSPACES = 3
STORIES = 10
UNAUTHORIZED = {"errors": [{"type": "oauth", "message": "Invalid OAuth 2 Request"}]}


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S+00:00")


def _audit(updated: datetime) -> dict[str, str]:
    return {"created_at": _stamp(BASE - timedelta(days=30)), "updated_at": _stamp(updated)}


def _workspace(index: int) -> dict:
    return {
        "id": str(index), "title": f"Project {index}", "currency": "GBP", "price_in_cents": 1_000_000,
        "start_date": "2026-01-01", "due_date": "2026-12-31",
        "status": {"color": "green", "key": 310, "message": "Active"}, "archived": False,
        "rate_card_id": "1", **_audit(BASE + timedelta(hours=index)),
    }


def _reference(index: int) -> dict:
    """Workspace ``index``'s link to its Salesforce opportunity (a Kantata external reference)."""
    return {
        "id": str(index), "subject_type": "Workspace", "subject_id": str(index), "service_name": "Salesforce",
        "service_model": "Opportunity", "service_model_ref": f"006{index:015d}", "status": "successful",
        **_audit(BASE + timedelta(hours=index)),
    }


def _time_entry(index: int) -> dict:
    return {
        "id": str(index), "workspace_id": str(index % WORKSPACES + 1), "user_id": "1", "story_id": None,
        "date_performed": "2026-09-30", "time_in_minutes": 60, "billable": True, "approved": False,
        "active_submission_id": None, "recent_submission_id": None, "rate_in_cents": 15_000, "notes": f"entry {index}",
        **_audit(BASE + timedelta(minutes=index)),
    }


def _story(index: int) -> dict:
    return {
        "id": str(index), "workspace_id": str(index % WORKSPACES + 1), "title": f"Story {index}",
        "story_type": "milestone" if index % 2 == 0 else "task", "state": "started", "due_date": None,
        "story_state_change_ids": [], "budget_estimate_in_cents": None, **_audit(BASE + timedelta(seconds=index)),
    }


def _seed(store: SandboxStore) -> None:
    makers = {"workspaces": (_workspace, WORKSPACES), "time_entries": (_time_entry, TIME_ENTRIES),
              "stories": (_story, STORIES), "external_references": (_reference, WORKSPACES)}
    for resource, (make, count) in makers.items():
        records = [make(index) for index in range(1, count + 1)]
        store.put_many("kantata", resource, [(r["id"], parse_timestamp(r["updated_at"]), r) for r in records])
    user = {"id": "1", "full_name": "Ada Lovelace", "email_address": "ada@psfirm.example",
            "headline": "Consultant", "disabled": False}  # Kantata documents no audit times on users
    store.put("kantata", "users", "1", user, BASE)


@pytest.fixture
def kt(tmp_path: Path) -> Iterator[Served]:
    credentials = copy.deepcopy(DEFAULT_CREDENTIALS)
    credentials["kantata"].update(client_id=CLIENT[0], client_secret=CLIENT[1])
    with serve(tmp_path, kantata.register, _seed, credentials) as served:
        yield served


def _call(kt: Served, method: str, path: str, token: str | None = TOKEN, **kwargs: Any) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return kt.http.request(method, f"{kt.url}/api/v1/{path}", headers=headers, **kwargs)


def _list(kt: Served, path: str, **params: str) -> dict:
    response = _call(kt, "GET", path, params=params)
    assert response.status_code == 200, response.text
    return response.json()


def _ids(body: dict) -> list[str]:
    """Result ids in order, after checking the envelope's references match its object map."""
    key = body["results"][0]["key"] if body["results"] else None
    ids = [ref["id"] for ref in body["results"]]
    if key is not None:
        assert list(body[key]) == ids
        assert all(body[key][record_id]["id"] == record_id for record_id in ids)
    return ids


def _issue_token(kt: Served, **form: str) -> requests.Response:
    return kt.http.post(f"{kt.url}/oauth/token", data=form, auth=CLIENT)


# -- auth ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("authorization", [None, "Bearer wrong", f"Token {TOKEN}", f"Bearer {TOKEN}x"])
def test_rejects_missing_or_bad_token(kt: Served, authorization: str | None) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    response = kt.http.get(f"{kt.url}/api/v1/workspaces", headers=headers)
    assert response.status_code == 401
    assert response.json() == UNAUTHORIZED


def test_issued_token_works_until_expired_then_refreshes(kt: Served) -> None:
    issued = _issue_token(kt, grant_type="client_credentials")
    assert issued.status_code == 200
    body = issued.json()
    assert body["token_type"] == "Bearer"
    assert _call(kt, "GET", "workspaces", token=body["access_token"]).status_code == 200

    kt.ctx.tokens.expire_all("kantata")
    assert _call(kt, "GET", "workspaces", token=body["access_token"]).status_code == 401
    # The personal access token does not expire.
    assert _call(kt, "GET", "workspaces").status_code == 200

    refreshed = _issue_token(kt, grant_type="refresh_token", refresh_token=body["refresh_token"])
    assert refreshed.status_code == 200
    assert _call(kt, "GET", "workspaces", token=refreshed.json()["access_token"]).status_code == 200


def test_token_endpoint_rejects_bad_client_and_grant(kt: Served) -> None:
    form = {"grant_type": "client_credentials"}
    bad_client = kt.http.post(f"{kt.url}/oauth/token", data=form, auth=(CLIENT[0], "wrong"))
    assert bad_client.status_code == 401
    assert bad_client.json()["error"] == "invalid_client"
    stale = _issue_token(kt, grant_type="refresh_token", refresh_token="nope")
    assert stale.status_code == 400 and stale.json()["error"] == "invalid_grant"
    assert _issue_token(kt, grant_type="password").status_code == 400


# -- paging ------------------------------------------------------------------------------------------
def test_pages_cover_every_record_once_with_meta(kt: Served) -> None:
    seen: list[str] = []
    for page in (1, 2, 3):
        body = _list(kt, "time_entries", page=str(page), per_page="200", order="id:asc")
        assert body["count"] == TIME_ENTRIES
        assert body["meta"] == {"count": TIME_ENTRIES, "page_count": 3, "page_number": page, "page_size": 200}
        seen += _ids(body)
    assert len(seen) == len(set(seen)) == TIME_ENTRIES
    beyond = _list(kt, "time_entries", page="4", per_page="200")
    assert beyond["results"] == [] and beyond["time_entries"] == {}
    assert beyond["count"] == TIME_ENTRIES


def test_default_page_size_and_clamped_per_page(kt: Served) -> None:
    default = _list(kt, "time_entries")
    assert default["meta"]["page_size"] == 20 and len(default["results"]) == 20
    clamped = _list(kt, "time_entries", per_page="1000")
    assert clamped["meta"]["page_size"] == 200 and len(clamped["results"]) == 200
    assert clamped["meta"]["page_count"] == 3


def test_json_suffix_and_default_order_newest_first(kt: Served) -> None:
    response = kt.http.get(f"{kt.url}/api/v1/time_entries.json", headers={"Authorization": f"Bearer {TOKEN}"})
    assert _ids(response.json())[:3] == ["450", "449", "448"]


@pytest.mark.parametrize(
    ("params", "field"),
    [({"order": "title:asc"}, "order"), ({"updated_after": "yesterday"}, "updated_after"),
     ({"page": "0"}, "page"), ({"per_page": "-5"}, "per_page"), ({"only": "1,abc"}, "only")],
)
def test_bad_list_parameters_are_400(kt: Served, params: dict, field: str) -> None:
    response = _call(kt, "GET", "time_entries", params=params)
    assert response.status_code == 400
    [error] = response.json()["errors"]
    assert error["type"] == "validation" and error["field"] == field and error["message"]


# -- filters -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("spelling", ["+00:00", "Z"])
def test_updated_after_is_exclusive_and_orders_ascending(kt: Served, spelling: str) -> None:
    boundary = (BASE + timedelta(minutes=400)).strftime("%Y-%m-%dT%H:%M:%S") + spelling
    body = _list(kt, "time_entries", updated_after=boundary, order="updated_at:asc", per_page="200")
    assert body["count"] == 50
    assert _ids(body) == [str(index) for index in range(401, TIME_ENTRIES + 1)]
    newest_first = _list(kt, "time_entries", updated_after=boundary, order="updated_at:desc")
    assert _ids(newest_first)[0] == "450"


def test_only_returns_the_named_ids_in_order_and_ignores_missing(kt: Served) -> None:
    body = _list(kt, "time_entries", only="5,70,7,99999")
    assert body["count"] == 3
    assert _ids(body) == ["70", "7", "5"]  # default order: most recently updated first
    assert _ids(_list(kt, "time_entries", only="5,70,7", order="updated_at:asc")) == ["5", "7", "70"]
    second_page = _list(kt, "time_entries", only="5,70,7", order="updated_at:asc", per_page="2", page="2")
    assert _ids(second_page) == ["70"] and second_page["meta"]["page_count"] == 2


def test_workspace_filter(kt: Served) -> None:
    body = _list(kt, "time_entries", workspace_id="2", per_page="200")
    assert body["count"] == TIME_ENTRIES // WORKSPACES
    assert {entry["workspace_id"] for entry in body["time_entries"].values()} == {"2"}


def test_story_type_filter(kt: Served) -> None:
    milestones = _list(kt, "stories", story_type="milestone")
    assert milestones["count"] == STORIES // 2
    assert {story["story_type"] for story in milestones["stories"].values()} == {"milestone"}
    both = _list(kt, "stories", story_type="milestone", workspace_id="1")
    assert {(s["story_type"], s["workspace_id"]) for s in both["stories"].values()} == {("milestone", "1")}


# -- show ------------------------------------------------------------------------------------------------
def test_show_answers_the_envelope_or_404(kt: Served) -> None:
    body = _call(kt, "GET", "workspaces/2.json").json()
    assert body["count"] == 1 and _ids(body) == ["2"]
    assert body["workspaces"]["2"] == _workspace(2)
    missing = _call(kt, "GET", "workspaces/999")
    assert missing.status_code == 404
    assert missing.json()["errors"][0]["type"] == "not_found"
    assert _call(kt, "GET", "invoices").status_code == 404


# -- writes ----------------------------------------------------------------------------------------------
def _create(kt: Served, workspace: dict) -> requests.Response:
    """A workspace create; Kantata requires ``creator_role`` on create (its API specification)."""
    return _call(kt, "POST", "workspaces", json={"workspace": {"creator_role": "maven", **workspace}})


def test_create_workspace(kt: Served) -> None:
    response = _create(kt, {"title": "Acme rollout", "currency": "EUR", "salesforce_opportunity_id": "006A",
                            "not_a_field": "dropped"})  # neither is a workspace attribute Kantata documents
    assert response.status_code == 200
    body = response.json()
    [new_id] = _ids(body)
    assert new_id == str(WORKSPACES + 1)
    created = body["workspaces"][new_id]
    assert created["title"] == "Acme rollout" and created["currency"] == "EUR"
    assert created["status"] == {"color": "grey", "key": 100, "message": "Not Started"}
    assert "not_a_field" not in created and "creator_role" not in created  # a write parameter, not an attribute
    assert "salesforce_opportunity_id" not in created
    assert created["created_at"] == created["updated_at"]
    assert _call(kt, "GET", f"workspaces/{new_id}").json()["workspaces"][new_id] == created
    # The store's change time is the body's updated_at exactly, so incremental reads agree with it.
    updated = parse_timestamp(created["updated_at"])
    assert kt.ctx.store.scan("kantata", "workspaces", since=updated, since_inclusive=False) == []
    second = _create(kt, {"title": "Second"}).json()
    assert second["results"] == [{"key": "workspaces", "id": str(WORKSPACES + 2)}]


@pytest.mark.parametrize(
    ("workspace", "field"),
    [
        ({"currency": "GBP"}, "title"),
        ({"title": ""}, "title"),
        ({"title": "X", "currency": "pounds"}, "currency"),
        ({"title": "X", "start_date": "2026-02-30"}, "start_date"),
    ],
)
def test_create_workspace_validation(kt: Served, workspace: dict, field: str) -> None:
    response = _create(kt, workspace)
    assert response.status_code == 422
    errors = response.json()["errors"]
    assert {(error["type"], error["field"]) for error in errors} == {("validation", field)}
    assert kt.ctx.store.count("kantata", "workspaces") == WORKSPACES


def test_create_and_update_write_the_inline_external_reference(kt: Served) -> None:
    """``external_reference`` on a workspace create or update (mavenlink_gem specification) makes or
    updates the workspace's reference of that service_name, in the same write as the workspace."""
    link = {"service_name": "Salesforce", "service_model": "Opportunity", "service_model_ref": "006B"}
    response = _call(kt, "POST", "workspaces", params={"include": "external_references"}, json={"workspace": {
        "creator_role": "maven", "title": "Linked", "external_reference": link}})
    assert response.status_code == 200, response.text
    [new_id] = _ids(response.json())
    [reference_id] = response.json()["workspaces"][new_id]["external_reference_ids"]
    reference = kt.ctx.store.get("kantata", "external_references", reference_id)
    assert (reference["subject_id"], reference["service_model_ref"], reference["status"]) == (new_id, "006B", None)
    moved = {**link, "service_model_ref": "006C", "status": "successful"}
    updated = _call(kt, "PUT", f"workspaces/{new_id}", params={"include": "external_references"},
                    json={"workspace": {"external_reference": moved}})
    assert updated.json()["workspaces"][new_id]["external_reference_ids"] == [reference_id]
    assert kt.ctx.store.get("kantata", "external_references", reference_id)["service_model_ref"] == "006C"
    bad = _call(kt, "PUT", f"workspaces/{new_id}", json={"workspace": {"external_reference": {"status": "odd"}}})
    assert bad.status_code == 422
    assert {error["field"] for error in bad.json()["errors"]} == {
        "external_reference.service_name", "external_reference.service_model",
        "external_reference.service_model_ref", "external_reference.status"}


def test_include_external_references_on_show(kt: Served) -> None:
    body = _call(kt, "GET", "workspaces/2", params={"include": "external_references"}).json()
    assert body["workspaces"]["2"]["external_reference_ids"] == ["2"]
    assert body["external_references"]["2"]["service_model_ref"] == f"006{2:015d}"
    assert "external_reference_ids" not in kt.ctx.store.get("kantata", "workspaces", "2")


def test_create_needs_the_wrapper_object(kt: Served) -> None:
    response = _call(kt, "POST", "workspaces", json={"title": "no wrapper"})
    assert response.status_code == 400
    assert response.json()["errors"][0]["type"] == "validation"


def test_update_workspace_bumps_updated_at(kt: Served) -> None:
    before = _workspace(1)
    kt.ctx.store.advance_clock(120)
    response = _call(kt, "PUT", "workspaces/1", json={"workspace": {"title": "Renamed", "id": "77"}})
    assert response.status_code == 200
    after = response.json()["workspaces"]["1"]
    assert after["title"] == "Renamed" and after["id"] == "1"
    assert after["created_at"] == before["created_at"]
    assert parse_timestamp(after["updated_at"]) > parse_timestamp(before["updated_at"])
    changed = _list(kt, "workspaces", updated_after=before["updated_at"], order="updated_at:asc")
    assert _ids(changed)[-1] == "1"


def test_update_rejects_invalid_and_unknown(kt: Served) -> None:
    blank = _call(kt, "PUT", "workspaces/1", json={"workspace": {"title": None}})
    assert blank.status_code == 422 and blank.json()["errors"][0]["field"] == "title"
    assert _call(kt, "PUT", "workspaces/999", json={"workspace": {"title": "X"}}).status_code == 404
    assert _call(kt, "PUT", "users/1", json={"user": {"full_name": "X"}}).status_code == 404


def test_update_time_entry(kt: Served) -> None:
    ok = _call(kt, "PUT", "time_entries/5", json={"time_entry": {"time_in_minutes": 90}})
    assert ok.status_code == 200 and ok.json()["time_entries"]["5"]["time_in_minutes"] == 90
    not_a_number = _call(kt, "PUT", "time_entries/5", json={"time_entry": {"time_in_minutes": "ninety"}})
    assert not_a_number.status_code == 422 and not_a_number.json()["errors"][0]["field"] == "time_in_minutes"


# -- include= (developer.mavenlink.com/time_entries, "Associated Objects") ---------------------------
def test_include_side_loads_related_objects_by_id(kt: Served) -> None:
    body = _list(kt, "time_entries", include="workspace,user", per_page="10", order="id:asc")
    entries = [body["time_entries"][record_id] for record_id in _ids(body)]
    assert set(body["workspaces"]) == {entry["workspace_id"] for entry in entries}
    assert body["users"] == {"1": kt.ctx.store.get("kantata", "users", "1")}
    assert {ref["key"] for ref in body["results"]} == {"time_entries"}


def test_include_on_show_and_a_relation_with_no_record(kt: Served) -> None:
    body = _call(kt, "GET", "time_entries/4.json", params={"include": "story,workspace"}).json()
    assert body["stories"] == {}  # story_id is null: the key is there, empty
    assert list(body["workspaces"]) == [body["time_entries"]["4"]["workspace_id"]]


def test_unknown_include_is_a_validation_error(kt: Served) -> None:
    response = _call(kt, "GET", "time_entries", params={"include": "user,invoices"})
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "include"


def test_requests_past_the_per_token_rate_get_429(kt: Served) -> None:
    kt.ctx.store.kv_set(kantata.LIMIT_KEY, 2)
    statuses = [_call(kt, "GET", "users").status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    kt.ctx.store.kv_set(kantata.LIMIT_KEY, 0)  # 0 turns the limit off
    assert _call(kt, "GET", "users").status_code == 200
