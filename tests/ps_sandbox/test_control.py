"""The control API over real HTTP on the full sandbox: each event changes what it says and
bumps the change timestamps (body change field and store updated_at alike)."""

from __future__ import annotations

import shutil
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from ps_sandbox.app import open_sandbox, start_server
from ps_sandbox.catalog.salesforce import RUN_AS_USER_ID
from ps_sandbox.context import SandboxConfig
from ps_sandbox.generate import AS_OF, SF_ADMIN_USER, change_fields, record_counts
from ps_sandbox.store import from_iso

KANTATA_TOKEN = {"Authorization": "Bearer sandbox-kantata-token"}


def _record(sandbox, platform: str, obj: str, record_id: str) -> dict[str, Any]:
    return sandbox.control("GET", f"records/{platform}/{obj}/{record_id}")


def _updated_at(sandbox, platform: str, obj: str, record_id: str) -> datetime:
    row = sandbox.ctx.store.conn.execute(
        "SELECT updated_at FROM records WHERE platform = ? AND object = ? AND id = ?",
        (platform, obj, record_id)).fetchone()
    return from_iso(row[0])


def assert_changed_since(sandbox, platform: str, obj: str, record_id: str, since: datetime) -> dict:
    """The record's store updated_at and every body change field moved to >= ``since``."""
    body = _record(sandbox, platform, obj, record_id)
    stored = _updated_at(sandbox, platform, obj, record_id)
    assert stored >= since.replace(microsecond=0)
    for name in change_fields(platform, obj, body):
        assert datetime.fromisoformat(body[name]) == stored, name
    return body


def _post(sandbox, path: str, json: Any) -> requests.Response:
    return requests.post(f"{sandbox.url}/_sandbox/{path}", json=json, timeout=30)


def test_health_and_stats(sandbox) -> None:
    assert sandbox.control("GET", "health") == {"status": "ok"}
    stats = sandbox.control("GET", "stats")
    assert stats == record_counts(sandbox.ctx.store)
    assert stats["kantata.time_entries"] == 1_000


def test_deal_won_closes_an_open_opportunity_with_a_contract(sandbox) -> None:
    before = sandbox.ctx.store.now()
    result = sandbox.control("POST", "events/deal-won", {})
    opp = assert_changed_since(sandbox, "salesforce", "Opportunity", result["opportunity_id"], before)
    assert (opp["StageName"], opp["IsWon"], opp["IsClosed"], opp["Probability"]) == ("Closed Won", True, True, 100)
    assert opp["ContractId"] == result["contract_id"] and result["contract_created"]
    contract = assert_changed_since(sandbox, "salesforce", "Contract", result["contract_id"], before)
    assert contract["Status"] == "Activated" and contract["Opportunity__c"] == opp["Id"]
    assert contract["Contract_Value__c"] == opp["Amount"]
    assert contract["Legal_Entity__c"] == opp["Legal_Entity__c"] and contract["Tax_Code__c"]
    # Winning it again keeps the contract it already has.
    again = sandbox.control("POST", "events/deal-won", {"opportunity_id": opp["Id"]})
    assert again == {**result, "contract_created": False}


def test_crm_events_are_changes_by_a_person_even_on_records_the_api_changed_last(sandbox) -> None:
    """Salesforce sets LastModifiedById to whoever last updated a record (Object Reference,
    "System Fields"): an event is a person in the CRM, not the API's integration user."""
    store = sandbox.ctx.store
    opp = store.scan("salesforce", "Opportunity", equals={"IsClosed": False}, limit=1)[0]
    store.put("salesforce", "Opportunity", opp["Id"], {**opp, "LastModifiedById": RUN_AS_USER_ID}, store.now())
    won = sandbox.control("POST", "events/deal-won", {"opportunity_id": opp["Id"]})
    assert _record(sandbox, "salesforce", "Opportunity", opp["Id"])["LastModifiedById"] == SF_ADMIN_USER
    contract = _record(sandbox, "salesforce", "Contract", won["contract_id"])
    assert contract["CreatedById"] == contract["LastModifiedById"] == SF_ADMIN_USER
    touched = sandbox.control("POST", "events/touch", {"platform": "salesforce", "object": "Opportunity",
                                                       "count": 3})["ids"]
    assert {_record(sandbox, "salesforce", "Opportunity", i)["LastModifiedById"] for i in touched} == {SF_ADMIN_USER}


def test_approve_week_approves_the_latest_unapproved_week(sandbox) -> None:
    before = sandbox.ctx.store.now()
    result = sandbox.control("POST", "events/approve-week", {})
    assert result["approved"] and not result["created"]
    monday = date.fromisoformat(result["week_start"])
    assert monday.weekday() == 0
    for entry_id in result["approved"]:
        entry = assert_changed_since(sandbox, "kantata", "time_entries", entry_id, before)
        # Approved the way Kantata approves: its timesheet submission is approved, the flag follows.
        submission = sandbox.ctx.store.get("kantata", "timesheet_submissions", entry["active_submission_id"])
        assert entry["approved"] is True and submission["status"] == "approved"
        assert submission["current_resolution_created_at_date"] == entry["updated_at"] == submission["updated_at"]
        assert entry_id in submission["time_entry_ids"] and entry["recent_submission_id"] == submission["id"]
        assert entry["user_id"] == result["user_id"]
        assert monday <= date.fromisoformat(entry["date_performed"]) <= monday + timedelta(days=6)


def test_approve_week_creates_a_full_week_when_none_was_logged(sandbox) -> None:
    user = sandbox.ctx.store.scan("kantata", "users", limit=1, order="id")[0]
    result = sandbox.control("POST", "events/approve-week", {"user_id": user["id"], "week_start": "2026-11-16"})
    assert len(result["created"]) == 5 and result["approved"] == result["created"]
    existing = {e["id"] for e in sandbox.ctx.store.scan("kantata", "time_entries")} - set(result["created"])
    assert len(existing) == 1_000  # fresh ids, nothing overwritten
    days = []
    for entry_id in result["created"]:
        # Served by the real Kantata endpoint, so pipelines see it like any other entry.
        response = requests.get(f"{sandbox.url}/api/v1/time_entries/{entry_id}", headers=KANTATA_TOKEN, timeout=10)
        entry = response.json()["time_entries"][entry_id]
        assert (entry["approved"], entry["time_in_minutes"], entry["billable"]) == (True, 480, True)
        assert sandbox.ctx.store.get("kantata", "timesheet_submissions", entry["active_submission_id"])[
            "status"] == "approved"
        assert entry["user_id"] == user["id"] and entry["rate_in_cents"] > 0
        days.append(entry["date_performed"])
    assert days == [f"2026-11-{d}" for d in range(16, 21)]


def test_approve_week_refuses_a_week_start_that_is_not_a_monday(sandbox) -> None:
    response = _post(sandbox, "events/approve-week", {"user_id": "2000001", "week_start": "2026-11-17"})
    assert response.status_code == 400 and "Monday" in response.json()["error"]


def test_complete_milestone(sandbox) -> None:
    before = sandbox.ctx.store.now()
    result = sandbox.control("POST", "events/complete-milestone", {})
    story = assert_changed_since(sandbox, "kantata", "stories", result["story_id"], before)
    assert story["story_type"] == "milestone" and story["state"] == "completed"
    # Kantata records the completion as a story state change (its audit trail of states).
    change = sandbox.ctx.store.get("kantata", "story_state_changes", result["story_state_change_id"])
    assert story["story_state_change_ids"][-1] == change["id"]
    assert (change["state"], change["story_id"]) == ("completed", story["id"])
    assert change["created_at"] == story["updated_at"]


def test_terminate_worker_reaches_workday_raas_and_kantata(sandbox) -> None:
    store = sandbox.ctx.store
    worker = next(w for w in store.scan("workday", "workers", order="id") if w["isActive"]
                  and any(u["email_address"] == w["primaryWorkEmail"] for u in store.scan("kantata", "users")))
    before = store.now()
    result = sandbox.control("POST", "events/terminate-worker", {"worker_id": worker["workerID"]})
    assert result["worker_id"] == worker["id"]
    terminated = assert_changed_since(sandbox, "workday", "workers", worker["id"], before)
    assert terminated["isActive"] is False and terminated["terminationDate"] == before.date().isoformat()
    history = assert_changed_since(sandbox, "workday", "Worker_Job_History", result["job_history_id"], before)
    assert (history["Worker_ID"], history["Employment_Status"]) == (worker["workerID"], "Terminated")
    user = assert_changed_since(sandbox, "kantata", "users", result["kantata_user_id"], before)
    assert user["disabled"] is True and user["email_address"] == worker["primaryWorkEmail"]


def test_amend_contract_defaults_and_explicit_changes(sandbox) -> None:
    before = sandbox.ctx.store.now()
    result = sandbox.control("POST", "events/amend-contract", {})
    contract = assert_changed_since(sandbox, "salesforce", "Contract", result["contract_id"], before)
    assert contract["EndDate"] == result["changes"]["EndDate"]
    assert contract["Contract_Value__c"] == result["changes"]["Contract_Value__c"]
    sandbox.control("POST", "events/amend-contract", {"contract_id": contract["Id"],
                                                     "changes": {"Payment_Terms__c": "Net 90"}})
    assert _record(sandbox, "salesforce", "Contract", contract["Id"])["Payment_Terms__c"] == "Net 90"
    refused = _post(sandbox, "events/amend-contract", {"contract_id": contract["Id"], "changes": {"Id": "x"}})
    assert refused.status_code == 400


@pytest.mark.parametrize(("platform", "obj", "field", "amount"), [
    ("kantata", "time_entries", "notes", {"fraction": 0.01}),
    ("salesforce", "Account", "Industry", {"count": 3}),
])
def test_touch_changes_records_so_incremental_reads_see_them(sandbox, platform, obj, field, amount) -> None:
    store = sandbox.ctx.store
    before_bodies = {r.get("id") or r.get("Id"): r for r in store.scan(platform, obj)}
    mark = store.now().replace(microsecond=0)  # change times carry whole seconds on the wire
    result = sandbox.control("POST", "events/touch", {"platform": platform, "object": obj, "seed": 3, **amount})
    expected = amount.get("count") or round(amount["fraction"] * len(before_bodies))
    assert result["touched"] == len(result["ids"]) == expected
    changed = store.scan(platform, obj, since=mark)
    assert sorted(r.get("id") or r.get("Id") for r in changed) == sorted(result["ids"])
    for record in changed:
        record_id = record.get("id") or record.get("Id")
        assert record[field] != before_bodies[record_id][field]
        assert_changed_since(sandbox, platform, obj, record_id, mark)


def test_touch_is_seeded(sandbox, sandbox_template: Path, tmp_path: Path) -> None:
    twin_state = tmp_path / "twin.sqlite"
    shutil.copyfile(sandbox_template, twin_state)
    twin = start_server(open_sandbox(twin_state, SandboxConfig(seed=7, scale=0.1)), port=0)
    try:
        payload = {"platform": "kantata", "object": "expenses", "count": 4, "seed": 11}
        twin_ids = requests.post(f"http://127.0.0.1:{twin.server_port}/_sandbox/events/touch", json=payload,
                                 timeout=10).json()["ids"]
    finally:
        twin.shutdown()
        twin.server_close()
    assert sandbox.control("POST", "events/touch", payload)["ids"] == twin_ids  # same state, same seed
    assert sandbox.control("POST", "events/touch", {**payload, "seed": 12})["ids"] != twin_ids


def test_soft_and_hard_delete(sandbox) -> None:
    store = sandbox.ctx.store
    contact, other = store.scan("salesforce", "Contact", order="id", limit=2)
    before = store.now()
    sandbox.control("POST", "events/delete", {"platform": "salesforce", "object": "Contact", "id": contact["Id"],
                                              "hard": False})
    assert store.get("salesforce", "Contact", contact["Id"]) is None
    recycled = assert_changed_since(sandbox, "salesforce", "Contact", contact["Id"], before)
    assert recycled["IsDeleted"] is True
    sandbox.control("POST", "events/delete", {"platform": "salesforce", "object": "Contact", "id": other["Id"],
                                              "hard": True})
    assert store.get("salesforce", "Contact", other["Id"], include_deleted=True) is None
    tombstones = store.deleted_between("salesforce", "Contact", before - timedelta(seconds=1),
                                       store.now() + timedelta(seconds=1))
    assert [t[0] for t in tombstones] == [other["Id"]]
    missing = _post(sandbox, "events/delete", {"platform": "salesforce", "object": "Contact", "id": other["Id"]})
    assert missing.status_code == 404


def test_raw_records_round_trip(sandbox) -> None:
    body = {"id": "999", "title": "Edge case", "updated_at": "2026-11-01T10:00:00+00:00"}
    sandbox.control("POST", "records/kantata/workspaces", {"id": "999", "body": body})
    assert sandbox.control("GET", "records/kantata/workspaces/999") == body
    assert _updated_at(sandbox, "kantata", "workspaces", "999") == datetime.fromisoformat(body["updated_at"])
    missing = requests.get(f"{sandbox.url}/_sandbox/records/kantata/workspaces/nope", timeout=10)
    assert missing.status_code == 404


def test_clock_advances_and_events_use_it(sandbox) -> None:
    start = from_iso(sandbox.control("GET", "clock")["now"]).replace(microsecond=0)
    advanced = sandbox.control("POST", "clock/advance", {"seconds": 86_400})
    assert from_iso(advanced["now"]) >= start + timedelta(days=1) and advanced["offset_seconds"] >= 86_400
    result = sandbox.control("POST", "events/complete-milestone", {})
    assert _updated_at(sandbox, "kantata", "stories", result["story_id"]) >= start + timedelta(days=1)
    assert start > AS_OF  # the sandbox clock never runs behind the generated history


def test_tokens_expire(sandbox) -> None:
    token = sandbox.ctx.tokens.issue("workday")
    assert sandbox.control("POST", "tokens/expire", {"platform": "workday"})["expired"] >= 1
    assert not sandbox.ctx.tokens.is_valid("workday", token)


def test_limits_are_stored_under_their_kv_keys(sandbox) -> None:
    answer = requests.put(f"{sandbox.url}/_sandbox/limits", json={"salesforce_daily_api_limit": 5,
                                                                  "netsuite_concurrency_limit": 2}, timeout=10)
    assert answer.json().items() >= {"salesforce_daily_api_limit": 5, "netsuite_concurrency_limit": 2}.items()
    assert sandbox.ctx.store.kv_get("salesforce_daily_api_limit") == 5
    assert sandbox.ctx.store.kv_get("netsuite_concurrency_limit") == 2
    for bad in ({"salesforce_daily_api_limit": -1}, {"some_limit": 3}):
        assert requests.put(f"{sandbox.url}/_sandbox/limits", json=bad, timeout=10).status_code == 400


def test_bad_requests_are_answered_not_crashed(sandbox) -> None:
    invalid = requests.post(f"{sandbox.url}/_sandbox/events/touch", data=b"{nope", timeout=10)
    assert invalid.status_code == 400
    assert _post(sandbox, "events/touch", {"platform": "kantata"}).status_code == 400
    assert _post(sandbox, "events/deal-won", {"opportunity_id": "006nope"}).status_code == 404
