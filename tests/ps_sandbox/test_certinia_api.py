"""Certinia PSA (the ``pse__`` managed package) served by the sandbox's one Salesforce emulation,
over real HTTP: SOQL with relationships, paging, describe, getUpdated/getDeleted, the control
API's Certinia events, and generated data coherent with the org's accounts and opportunities."""

from __future__ import annotations

import argparse
import hashlib
import os
import tempfile
from collections import defaultdict
from datetime import date, datetime, timedelta
from typing import Any

import pytest
import requests

from ps_sandbox.catalog import certinia
from ps_sandbox.cli import add_serve_arguments
from ps_sandbox.context import DEFAULT_CREDENTIALS
from ps_sandbox.generate import populate
from ps_sandbox.hubspot_data import DELIVERED_ID_OFFSET
from ps_sandbox.store import SandboxStore
from tests.conftest import TEST_SCALE, TEST_SEED, RunningSandbox

DATA = "/services/data/v61.0"
CREDENTIALS = DEFAULT_CREDENTIALS["salesforce"]
PSE_OBJECTS = {"pse__Proj__c", "pse__Milestone__c", "pse__Assignment__c", "pse__Timecard_Header__c",
               "pse__Expense__c", "pse__Rate_Card__c", "pse__Region__c", "pse__Practice__c"}


def _org(sandbox: RunningSandbox) -> requests.Session:
    token = requests.post(f"{sandbox.url}/services/oauth2/token", data={
        "grant_type": "client_credentials", **CREDENTIALS}, timeout=30).json()["access_token"]
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    return session


def _query(sandbox: RunningSandbox, http: requests.Session, soql: str, batch: int | None = None) -> list[dict]:
    """Every record of a query, following nextRecordsUrl ("Query": results come in batches)."""
    headers = {"Sforce-Query-Options": f"batchSize={batch}"} if batch else {}
    page = http.get(f"{sandbox.url}{DATA}/query", params={"q": soql}, headers=headers).json()
    records = list(page["records"])
    while not page["done"]:
        page = http.get(f"{sandbox.url}{page['nextRecordsUrl']}", headers=headers).json()
        records += page["records"]
    return records


def test_the_package_objects_exist_only_in_an_org_that_installed_it(
        sandbox: RunningSandbox, certinia_sandbox: RunningSandbox) -> None:
    """A managed package adds its objects to Describe Global and its fields to Contact; an org
    without it answers INVALID_TYPE for them ("Status Codes and Error Responses")."""
    plain, pse = _org(sandbox), _org(certinia_sandbox)
    plain_objects = {o["name"] for o in plain.get(f"{sandbox.url}{DATA}/sobjects").json()["sobjects"]}
    pse_objects = {o["name"]: o for o in pse.get(f"{certinia_sandbox.url}{DATA}/sobjects").json()["sobjects"]}
    assert plain_objects == {"Account", "Contact", "Opportunity", "Contract"}
    assert set(pse_objects) == plain_objects | PSE_OBJECTS
    assert all(pse_objects[name]["custom"] for name in PSE_OBJECTS)
    refused = plain.get(f"{sandbox.url}{DATA}/query", params={"q": "SELECT Id FROM pse__Proj__c"})
    assert refused.status_code == 400 and refused.json()[0]["errorCode"] == "INVALID_TYPE"
    contact = {f["name"] for f in plain.get(f"{sandbox.url}{DATA}/sobjects/Contact/describe").json()["fields"]}
    assert not any(name.startswith("pse__") for name in contact)


def test_describe_of_a_timecard(certinia_sandbox: RunningSandbox) -> None:
    """"sObject Describe" of pse__Timecard_Header__c: namespaced custom fields, lookups with their
    ``__r`` relationship names, the auto-number Name and the formula Total Hours read-only."""
    http = _org(certinia_sandbox)
    described = http.get(f"{certinia_sandbox.url}{DATA}/sobjects/pse__Timecard_Header__c/describe").json()
    fields = {f["name"]: f for f in described["fields"]}
    assert described["custom"] is True and described["keyPrefix"] == certinia.TIMECARD.key_prefix
    assert {f"pse__{day}_Hours__c" for day in certinia.WEEKDAYS} <= set(fields)
    project = fields["pse__Project__c"]
    assert (project["type"], project["referenceTo"], project["relationshipName"]) == (
        "reference", ["pse__Proj__c"], "pse__Project__r")
    assert fields["pse__Resource__c"]["referenceTo"] == ["Contact"]
    assert [v["value"] for v in fields["pse__Status__c"]["picklistValues"]] == list(certinia.TIMECARD_STATUSES)
    assert fields["pse__Billable__c"]["type"] == "boolean" and fields["pse__Monday_Hours__c"]["type"] == "double"
    assert fields["Name"]["autoNumber"] is True and fields["Name"]["createable"] is False
    assert fields["pse__Total_Hours__c"]["calculated"] is True
    project_children = http.get(f"{certinia_sandbox.url}{DATA}/sobjects/pse__Proj__c/describe").json()
    assert ("pse__Timecard_Header__c", "pse__Project__c") in {
        (c["childSObject"], c["field"]) for c in project_children["childRelationships"]}
    described_contact = http.get(f"{certinia_sandbox.url}{DATA}/sobjects/Contact/describe").json()
    contact = {f["name"]: f for f in described_contact["fields"]}
    assert contact["pse__Is_Resource__c"]["type"] == "boolean"
    assert contact["pse__Salesforce_User__c"]["referenceTo"] == ["User"]


def test_soql_over_timecards_reaches_project_opportunity_and_resource(certinia_sandbox: RunningSandbox) -> None:
    """Relationship queries ("Using Relationship Queries") through the package's lookups: a
    timecard's project, the project's opportunity and account, and the resource Contact."""
    http = _org(certinia_sandbox)
    rows = _query(certinia_sandbox, http, (
        "SELECT Id, Name, pse__Project__r.Name, pse__Project__r.pse__Opportunity__r.StageName, "
        "pse__Project__r.pse__Opportunity__r.AccountId, pse__Project__r.pse__Account__c, "
        "pse__Resource__r.pse__Is_Resource__c, pse__Resource__r.Email, pse__Monday_Hours__c, "
        "pse__Tuesday_Hours__c, pse__Wednesday_Hours__c, pse__Thursday_Hours__c, pse__Friday_Hours__c, "
        "pse__Saturday_Hours__c, pse__Sunday_Hours__c, pse__Total_Hours__c, pse__Start_Date__c "
        "FROM pse__Timecard_Header__c WHERE pse__Status__c = 'Approved' AND pse__Billable__c = true "
        "ORDER BY pse__Start_Date__c"))
    assert rows
    for row in rows:
        project = row["pse__Project__r"]
        opportunity = project["pse__Opportunity__r"]
        assert opportunity["StageName"] == "Closed Won"
        assert opportunity["AccountId"] == project["pse__Account__c"]
        assert row["pse__Resource__r"]["pse__Is_Resource__c"] is True and "@" in row["pse__Resource__r"]["Email"]
        days = sum(row[f"pse__{day}_Hours__c"] for day in certinia.WEEKDAYS)
        assert row["pse__Total_Hours__c"] == pytest.approx(days)
        assert date.fromisoformat(row["pse__Start_Date__c"]).weekday() == 0
        assert row["Name"].startswith("TC-")
    starts = [row["pse__Start_Date__c"] for row in rows]
    assert starts == sorted(starts)


def test_the_estate_is_coherent_with_salesforce_and_the_same_business_as_kantata(
        certinia_sandbox: RunningSandbox) -> None:
    """One Certinia project per PSA project of a won opportunity, on the opportunity's account;
    the timecards carry exactly the hours the week's time entries carry."""
    store = certinia_sandbox.ctx.store
    projects = store.scan("salesforce", "pse__Proj__c")
    assert len(projects) == store.count("kantata", "workspaces")
    for project in projects:
        opportunity = store.get("salesforce", "Opportunity", project["pse__Opportunity__c"])
        assert opportunity["StageName"] == "Closed Won"
        assert opportunity["AccountId"] == project["pse__Account__c"]
    card_hours = sum(card["pse__Total_Hours__c"] for card in store.scan("salesforce", "pse__Timecard_Header__c"))
    entry_hours = sum(e["time_in_minutes"] for e in store.scan("kantata", "time_entries")) / 60
    assert card_hours == pytest.approx(entry_hours)
    assert store.count("salesforce", "pse__Expense__c") == store.count("kantata", "expenses")
    resources = store.scan("salesforce", "Contact", equals={"pse__Is_Resource__c": True})
    assert len(resources) == store.count("workday", "workers")


def test_paging_follows_next_records_url_without_repeats(certinia_sandbox: RunningSandbox) -> None:
    http = _org(certinia_sandbox)
    first = http.get(f"{certinia_sandbox.url}{DATA}/query", params={"q": "SELECT Id FROM pse__Timecard_Header__c"},
                     headers={"Sforce-Query-Options": "batchSize=200"}).json()
    assert first["totalSize"] > 400 and len(first["records"]) == 200 and first["nextRecordsUrl"]
    everything = _query(certinia_sandbox, http, "SELECT Id FROM pse__Timecard_Header__c", batch=200)
    ids = [row["Id"] for row in everything]
    assert len(ids) == len(set(ids)) == first["totalSize"]


def test_approve_week_approves_a_resources_certinia_timecards(certinia_sandbox: RunningSandbox) -> None:
    http = _org(certinia_sandbox)
    answer = certinia_sandbox.control("POST", "events/approve-week", {"platform": "certinia"})
    assert answer["platform"] == "certinia" and answer["approved"]
    since = (certinia_sandbox.ctx.store.now() - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    changed = _query(certinia_sandbox, http, (
        "SELECT Id, pse__Status__c, pse__Approved__c, pse__Include_In_Financials__c, pse__Resource__c, "
        f"pse__Start_Date__c FROM pse__Timecard_Header__c WHERE SystemModstamp > {since}"))
    assert {row["Id"] for row in changed} == set(answer["approved"])
    for row in changed:
        assert (row["pse__Status__c"], row["pse__Approved__c"], row["pse__Include_In_Financials__c"]) == (
            "Approved", True, True)
        assert (row["pse__Resource__c"], row["pse__Start_Date__c"]) == (answer["resource_id"], answer["week_start"])
    again = certinia_sandbox.control("POST", "events/approve-week", {
        "platform": "certinia", "resource_id": answer["resource_id"], "week_start": answer["week_start"]})
    assert again["approved"] == [] and set(answer["approved"]) <= set(again["already_approved"])


def test_approve_week_without_timecards_logs_an_approved_week(certinia_sandbox: RunningSandbox) -> None:
    store = certinia_sandbox.ctx.store
    resource = store.scan("salesforce", "pse__Assignment__c", limit=1)[0]["pse__Resource__c"]
    answer = certinia_sandbox.control("POST", "events/approve-week", {
        "platform": "certinia", "resource_id": resource, "week_start": "2030-01-07"})
    assert answer["created"] == answer["approved"] and len(answer["created"]) == 1
    card = store.get("salesforce", "pse__Timecard_Header__c", answer["created"][0])
    assert (card["pse__Total_Hours__c"], card["pse__Status__c"], card["pse__End_Date__c"]) == (
        40.0, "Approved", "2030-01-13")
    generated = max(int(c["Name"][3:]) for c in store.scan("salesforce", "pse__Timecard_Header__c")
                    if c["Id"] != card["Id"])
    assert card["Name"] == f"TC-{generated + 1:07d}"  # the auto-number continues after the generated ones


def test_complete_milestone_and_approve_expense(certinia_sandbox: RunningSandbox) -> None:
    store = certinia_sandbox.ctx.store
    done = certinia_sandbox.control("POST", "events/complete-milestone", {"platform": "certinia"})
    milestone = store.get("salesforce", "pse__Milestone__c", done["milestone_id"])
    assert (milestone["pse__Status__c"], milestone["pse__Approved__c"], milestone["pse__Include_In_Financials__c"]) \
        == ("Approved", True, True)
    assert milestone["pse__Actual_Date__c"] == store.now().date().isoformat()
    assert milestone["pse__Project__c"] == done["project_id"]
    approved = certinia_sandbox.control("POST", "events/approve-expense", {"platform": "certinia"})
    expense = store.get("salesforce", "pse__Expense__c", approved["expense_id"])
    assert (expense["pse__Status__c"], expense["pse__Approved__c"]) == ("Approved", True)
    refused = requests.post(f"{certinia_sandbox.url}/_sandbox/events/approve-expense", json={}, timeout=30)
    assert refused.status_code == 400


def test_get_updated_and_get_deleted_for_a_package_object(certinia_sandbox: RunningSandbox) -> None:
    """"sObject Get Updated" / "sObject Get Deleted" over pse__Expense__c after a touch, a delete
    through the REST API (recycle bin) and a purge through the control API."""
    http, store = _org(certinia_sandbox), certinia_sandbox.ctx.store
    start = store.now() - timedelta(minutes=1)
    touched = certinia_sandbox.control("POST", "events/touch", {
        "platform": "salesforce", "object": "pse__Expense__c", "count": 3, "seed": 1})["ids"]
    binned, purged = touched[0], store.scan("salesforce", "pse__Expense__c", limit=1)[0]["Id"]
    assert http.delete(f"{certinia_sandbox.url}{DATA}/sobjects/pse__Expense__c/{binned}").status_code == 204
    certinia_sandbox.control("POST", "events/delete", {
        "platform": "salesforce", "object": "pse__Expense__c", "id": purged, "hard": True})
    certinia_sandbox.control("POST", "clock/advance", {"seconds": 120})
    window = {"start": start.strftime("%Y-%m-%dT%H:%M:%S+00:00"),
              "end": (store.now() + timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%S+00:00")}
    updated = http.get(f"{certinia_sandbox.url}{DATA}/sobjects/pse__Expense__c/updated/", params=window).json()
    assert set(updated["ids"]) == set(touched) - {binned, purged}
    deleted = http.get(f"{certinia_sandbox.url}{DATA}/sobjects/pse__Expense__c/deleted/", params=window).json()
    assert {d["id"] for d in deleted["deletedRecords"]} == {binned, purged}
    in_bin = _query(certinia_sandbox, http, f"SELECT Id, IsDeleted FROM pse__Expense__c WHERE Id = '{binned}'")
    assert in_bin == []
    all_rows = http.get(f"{certinia_sandbox.url}{DATA}/queryAll", params={
        "q": f"SELECT Id, IsDeleted FROM pse__Expense__c WHERE Id = '{binned}'"}).json()["records"]
    assert all_rows[0]["IsDeleted"] is True


def test_updates_recompute_total_hours_which_no_client_writes(certinia_sandbox: RunningSandbox) -> None:
    """"sObject Rows" PATCH of a timecard's day hours: Total Hours (a formula) follows them, and
    writing it is refused like any read-only field."""
    http, store = _org(certinia_sandbox), certinia_sandbox.ctx.store
    card = store.scan("salesforce", "pse__Timecard_Header__c", equals={"pse__Status__c": "Saved"}, limit=1)[0]
    url = f"{certinia_sandbox.url}{DATA}/sobjects/pse__Timecard_Header__c/{card['Id']}"
    assert http.patch(url, json={"pse__Monday_Hours__c": 7.5, "pse__Sunday_Hours__c": 0}).status_code == 204
    after = http.get(url).json()
    days = sum(after[f"pse__{day}_Hours__c"] for day in certinia.WEEKDAYS)
    assert after["pse__Total_Hours__c"] == pytest.approx(days) and after["pse__Monday_Hours__c"] == 7.5
    locked = http.patch(url, json={"pse__Total_Hours__c": 1})
    assert locked.status_code == 400 and locked.json()[0]["errorCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"


def _digest(packages: tuple[str, ...], psa_crm: str = "salesforce") -> tuple[str, str, str]:
    """(digest of the records every estate has, digest of everything, digest of everything but
    the projects and the delivered HubSpot deals) for a fresh generation."""
    path = os.path.join(tempfile.mkdtemp(), "sandbox.sqlite")
    store = SandboxStore(path)
    populate(store, seed=TEST_SEED, scale=TEST_SCALE, salesforce_packages=packages, psa_crm=psa_crm)
    rows = store.conn.execute("SELECT platform, object, id, updated_at, body FROM records ORDER BY 1, 2, 3").fetchall()
    shared = [row for row in rows if not row[1].startswith("pse__") and '"pse__' not in row[4]
              and "(internal)" not in row[4]]
    others = [row for row in rows if row[1] != "pse__Proj__c" and not _is_delivered(row[0], row[2])]
    return tuple(hashlib.sha256(repr(part).encode()).hexdigest() for part in (shared, rows, others))


def _is_delivered(platform: str, record_id: str) -> bool:
    """A HubSpot record (or association) of the delivered deals' id block."""
    return platform == "hubspot" and any(
        part.isdigit() and int(part) % 1_000_000_000 > DELIVERED_ID_OFFSET for part in record_id.split(":"))


def test_generation_is_deterministic_and_leaves_the_rest_of_the_estate_unchanged() -> None:
    plain, first, second = _digest(()), _digest(("certinia",)), _digest(("certinia",))
    assert first == second
    assert plain[0] == first[0] == plain[1]  # the default estate is untouched by Certinia's records
    # Sold in HubSpot: the same business, only the projects' deal links and the delivered deals differ.
    in_hubspot = _digest(("certinia",), psa_crm="hubspot")
    assert in_hubspot == _digest(("certinia",), psa_crm="hubspot")
    assert in_hubspot[2] == first[2] and in_hubspot[1] != first[1]


def test_projects_sold_in_hubspot_deliver_won_hubspot_deals_of_their_customer(
        certinia_hubspot_sandbox: RunningSandbox) -> None:
    """Each Certinia project names, in the firm's External ID field, a won HubSpot deal with
    the terms billing needs (entity, tax code, billing model, the project's currency), on a
    company that is the project's Account; no Salesforce Opportunity stands for the deal."""
    sandbox = certinia_hubspot_sandbox
    store = sandbox.ctx.store
    projects = _query(sandbox, _org(sandbox), "SELECT Id, CRM_Deal_Id__c, pse__Opportunity__c, pse__Account__c, "
                                              "pse__Account__r.Name, CurrencyIsoCode FROM pse__Proj__c")
    assert len(projects) == store.count("kantata", "workspaces")
    token = DEFAULT_CREDENTIALS["hubspot"]["token"]
    hubspot = requests.Session()
    hubspot.headers["Authorization"] = f"Bearer {token}"
    deal_ids = [project[certinia.DEAL_ID_FIELD] for project in projects]
    assert len(set(deal_ids)) == len(deal_ids)
    for project in projects:
        assert project["pse__Opportunity__c"] is None
        deal_id = project[certinia.DEAL_ID_FIELD]
        properties = hubspot.get(f"{sandbox.url}/crm/v3/objects/deals/{deal_id}", params={
            "properties": "dealstage,deal_currency_code,ps_billing_model,ps_legal_entity,ps_tax_code"},
            timeout=30).json()["properties"]
        assert properties["dealstage"] == "closedwon"
        assert properties["deal_currency_code"] == project["CurrencyIsoCode"]
        assert properties["ps_billing_model"] in ("Time and Materials", "Fixed Fee", "Milestone")
        assert properties["ps_legal_entity"] and properties["ps_tax_code"]
        [company] = hubspot.get(f"{sandbox.url}/crm/v4/objects/deals/{deal_id}/associations/companies",
                                timeout=30).json()["results"]
        company = hubspot.get(f"{sandbox.url}/crm/v3/objects/companies/{company['toObjectId']}", timeout=30).json()
        assert company["properties"]["name"] == project["pse__Account__r"]["Name"]


def test_timecards_group_a_weeks_entries_per_resource_project_status_and_billable(
        certinia_sandbox: RunningSandbox) -> None:
    store = certinia_sandbox.ctx.store
    keys: dict[tuple[Any, ...], int] = defaultdict(int)
    for card in store.scan("salesforce", "pse__Timecard_Header__c"):
        keys[(card["pse__Resource__c"], card["pse__Project__c"], card["pse__Start_Date__c"], card["pse__Status__c"],
              card["pse__Billable__c"])] += 1
        assert datetime.fromisoformat(card["pse__End_Date__c"]) - datetime.fromisoformat(
            card["pse__Start_Date__c"]) == timedelta(days=6)
    assert max(keys.values()) == 1
    statuses = {card["pse__Status__c"] for card in store.scan("salesforce", "pse__Timecard_Header__c")}
    assert statuses <= set(certinia.TIMECARD_STATUSES) and "Approved" in statuses


def test_serve_command_installs_the_package_on_request() -> None:
    parser = argparse.ArgumentParser()
    add_serve_arguments(parser)
    assert parser.parse_args([]).salesforce_packages == []
    assert parser.parse_args(["--salesforce-package", "certinia"]).salesforce_packages == ["certinia"]
    with pytest.raises(SystemExit):
        parser.parse_args(["--salesforce-package", "widgets"])
    assert parser.parse_args([]).psa_crm == "salesforce"
    assert parser.parse_args(["--psa-crm", "hubspot"]).psa_crm == "hubspot"
    with pytest.raises(SystemExit):
        parser.parse_args(["--psa-crm", "pipedrive"])
