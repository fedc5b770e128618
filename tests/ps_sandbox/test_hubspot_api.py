"""The HubSpot CRM emulation over real HTTP: auth, paging, properties, archived records, search
(filters, sorts, the 10,000-result cap), associations v4, batch upsert by idProperty, rate limits,
faults, control events and deterministic data."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests

from ps_sandbox import generate, hubspot_data
from ps_sandbox.app import open_sandbox, start_server
from ps_sandbox.context import DEFAULT_CREDENTIALS, SandboxConfig, SandboxContext
from ps_sandbox.platforms import hubspot
from ps_sandbox.store import SandboxStore
from tests.ps_sandbox.test_workday_api import serve

TOKEN = DEFAULT_CREDENTIALS["hubspot"]["token"]
AUTH = {"Authorization": f"Bearer {TOKEN}"}
BASE = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, SandboxContext]]:
    """The whole sandbox (every platform, faults, control API) at a small scale."""
    ctx = open_sandbox(tmp_path_factory.mktemp("hs") / "sandbox.sqlite", SandboxConfig(scale=0.5))
    server = start_server(ctx)
    try:
        yield f"http://127.0.0.1:{server.server_port}", ctx
    finally:
        server.shutdown()
        server.server_close()


def _get(url: str, path: str, **params: object) -> requests.Response:
    return requests.get(url + path, headers=AUTH, params=params, timeout=10)


def _post(url: str, path: str, body: object) -> requests.Response:
    return requests.post(url + path, headers=AUTH, json=body, timeout=10)


def _all_pages(url: str, path: str, **params: object) -> list[dict]:
    records, after = [], None
    while True:
        page = _get(url, path, **params, **({"after": after} if after else {})).json()
        records += page["results"]
        after = page.get("paging", {}).get("next", {}).get("after")
        if not after:
            return records


def _contacts(count: int) -> callable:
    """A store seeding ``count`` contacts, one a minute from ``BASE``."""
    def seed(store: SandboxStore) -> None:
        rows = []
        for n in range(1, count + 1):
            moment = BASE + timedelta(minutes=n)
            record_id = str(hubspot_data.ID_BASE["contacts"] + n)
            rows.append((record_id, moment, hubspot_data.hubspot_record("contacts", record_id, moment, moment, {
                "email": f"c{n}@example.com", "firstname": f"F{n % 7}", "lastname": "L", "country": "Germany"})))
        store.put_many("hubspot", "contacts", rows)
    return seed


# -- auth ---------------------------------------------------------------------------------------


def test_a_bad_token_is_refused_with_hubspots_401(sandbox) -> None:
    url, _ = sandbox
    for headers in ({}, {"Authorization": "Bearer pat-na1-wrong"}):
        answer = requests.get(f"{url}/crm/v3/objects/deals", headers=headers, timeout=10)
        assert answer.status_code == 401
        body = answer.json()
        assert body["status"] == "error" and body["category"] == "INVALID_AUTHENTICATION"
        assert body["message"].startswith("Authentication credentials not found") and body["correlationId"]


# -- lists --------------------------------------------------------------------------------------


def test_lists_page_by_cursor_without_gaps_or_repeats(sandbox) -> None:
    url, ctx = sandbox
    first = _get(url, "/crm/v3/objects/deals").json()
    assert len(first["results"]) == 10  # the documented default limit
    assert first["paging"]["next"]["after"] and "after=" in first["paging"]["next"]["link"]
    everything = _all_pages(url, "/crm/v3/objects/deals", limit=7)
    ids = [record["id"] for record in everything]
    assert ids == sorted(ids, key=int) and len(ids) == len(set(ids)) == ctx.store.count("hubspot", "deals")


def test_list_limit_is_at_most_100(tmp_path: Path) -> None:
    with serve(tmp_path, hubspot.register, _contacts(150)) as served:
        page = served.http.get(f"{served.url}/crm/v3/objects/contacts", headers=AUTH, params={"limit": 1000}).json()
        assert len(page["results"]) == 100 and page["paging"]["next"]["after"]


def test_records_have_the_documented_shape_and_default_or_requested_properties(sandbox) -> None:
    url, _ = sandbox
    record = _get(url, "/crm/v3/objects/deals", limit=1).json()["results"][0]
    assert set(record) == {"id", "properties", "createdAt", "updatedAt", "archived"}
    assert set(record["properties"]) == {"amount", "closedate", "createdate", "dealname", "dealstage",
                                         "hs_lastmodifieddate", "hs_object_id", "pipeline"}
    assert all(isinstance(v, str) for v in record["properties"].values())
    assert record["properties"]["hs_lastmodifieddate"] == record["updatedAt"]
    asked = _get(url, f"/crm/v3/objects/deals/{record['id']}",
                 properties="deal_currency_code,ps_activation_status,no_such_property").json()
    assert set(asked["properties"]) == {"deal_currency_code", "ps_activation_status", "createdate",
                                        "hs_lastmodifieddate", "hs_object_id"}
    assert asked["properties"]["ps_activation_status"] is None  # known but unset: null
    assert _get(url, "/crm/v3/objects/deals/1").status_code == 404
    assert _get(url, "/crm/v3/objects/widgets").status_code == 400


def test_archived_records_are_listed_only_with_archived_true(sandbox) -> None:
    url, _ = sandbox
    contact = _get(url, "/crm/v3/objects/contacts", limit=1).json()["results"][0]
    done = requests.post(f"{url}/_sandbox/events/delete", json={"platform": "hubspot", "object": "contacts",
                                                                "id": contact["id"]}, timeout=10)
    assert done.status_code == 200
    live = {r["id"] for r in _all_pages(url, "/crm/v3/objects/contacts", limit=100)}
    archived = _all_pages(url, "/crm/v3/objects/contacts", archived="true")
    assert contact["id"] not in live
    assert [r["id"] for r in archived] == [contact["id"]]
    assert archived[0]["archived"] is True and archived[0]["archivedAt"]
    assert _get(url, f"/crm/v3/objects/contacts/{contact['id']}").status_code == 404
    assert _get(url, f"/crm/v3/objects/contacts/{contact['id']}", archived="true").json()["archived"] is True


# -- search -------------------------------------------------------------------------------------


def test_search_filters_with_each_operator_and_sorts(tmp_path: Path) -> None:
    with serve(tmp_path, hubspot.register, _contacts(50)) as served:
        served.ctx.store.kv_set(hubspot.SEARCH_KEY, 0)  # the per-second limit is tested apart
        def search(*filters: dict, sorts: list | None = None, **extra: object) -> dict:
            body = {"filterGroups": [{"filters": list(filters)}], "limit": 200, **extra}
            if sorts is not None:
                body["sorts"] = sorts
            answer = served.http.post(f"{served.url}/crm/v3/objects/contacts/search", headers=AUTH, json=body)
            assert answer.status_code == 200, answer.text
            return answer.json()

        def numbers(answer: dict) -> list[int]:
            return [int(r["id"]) - hubspot_data.ID_BASE["contacts"] for r in answer["results"]]

        stamp = lambda n: hubspot_data.ts(BASE + timedelta(minutes=n))  # noqa: E731
        millis = lambda n: str(int((BASE + timedelta(minutes=n)).timestamp() * 1000))  # noqa: E731
        modified = "lastmodifieddate"
        assert numbers(search({"propertyName": modified, "operator": "GT", "value": millis(45)})) == [46, 47, 48, 49,
                                                                                                         50]
        assert numbers(search({"propertyName": modified, "operator": "GTE", "value": stamp(49)})) == [49, 50]
        assert numbers(search({"propertyName": modified, "operator": "LT", "value": millis(3)})) == [1, 2]
        assert numbers(search({"propertyName": modified, "operator": "LTE", "value": millis(2)})) == [1, 2]
        assert numbers(search({"propertyName": modified, "operator": "BETWEEN", "value": millis(10),
                               "highValue": millis(12)})) == [10, 11, 12]
        assert numbers(search({"propertyName": "email", "operator": "EQ", "value": "C7@EXAMPLE.COM"})) == [7]
        assert len(search({"propertyName": "email", "operator": "NEQ", "value": "c7@example.com"})["results"]) == 49
        assert numbers(search({"propertyName": "email", "operator": "IN",
                               "values": ["c3@example.com", "c5@example.com"]})) == [3, 5]
        assert search({"propertyName": "jobtitle", "operator": "HAS_PROPERTY"})["total"] == 0
        assert search({"propertyName": "email", "operator": "HAS_PROPERTY"})["total"] == 50
        # Groups are ORed, filters within a group ANDed.
        either = served.http.post(f"{served.url}/crm/v3/objects/contacts/search", headers=AUTH, json={
            "filterGroups": [{"filters": [{"propertyName": "email", "operator": "EQ", "value": "c1@example.com"}]},
                             {"filters": [{"propertyName": modified, "operator": "GTE", "value": millis(50)},
                                          {"propertyName": "firstname", "operator": "EQ", "value": "F1"}]}]}).json()
        assert numbers(either) == [1, 50]
        newest = search({"propertyName": modified, "operator": "GT", "value": millis(40)},
                        sorts=[{"propertyName": modified, "direction": "DESCENDING"}], limit=3)
        assert numbers(newest) == [50, 49, 48] and newest["total"] == 10 and newest["paging"]["next"]["after"] == "3"
        assert served.http.post(f"{served.url}/crm/v3/objects/contacts/search", headers=AUTH,
                                json={"limit": 201}).status_code == 400


def test_search_stops_at_10000_results_so_the_filter_must_be_re_anchored(tmp_path: Path) -> None:
    with serve(tmp_path, hubspot.register, _contacts(10_050)) as served:
        def page(after: str | None, since_ms: int = 0) -> requests.Response:
            body = {"filterGroups": [{"filters": [{"propertyName": "lastmodifieddate", "operator": "GTE",
                                                   "value": str(since_ms)}]}],
                    "sorts": [{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}],
                    "limit": 200, "properties": ["lastmodifieddate"], **({"after": after} if after else {})}
            served.ctx.store.kv_set(hubspot.SEARCH_KEY, 0)  # the per-second limit is tested apart
            return served.http.post(f"{served.url}/crm/v3/objects/contacts/search", headers=AUTH, json=body)

        seen, after = [], None
        while True:
            answer = page(after).json()
            assert answer["total"] == 10_050
            seen += answer["results"]
            after = answer.get("paging", {}).get("next", {}).get("after")
            if after == "10000":
                break
        assert len(seen) == 10_000
        past = page("10000")
        assert past.status_code == 400 and past.json()["category"] == "VALIDATION_ERROR"
        # Re-anchoring on the last change time seen reaches the rest.
        last = seen[-1]["properties"]["lastmodifieddate"]
        anchor = int(datetime.fromisoformat(last).timestamp() * 1000)
        rest = page(None, anchor).json()
        assert rest["total"] == 51 and rest["results"][0]["id"] == seen[-1]["id"]


def _incremental(served: object, obj: str, *filters: dict, limit: int = 200) -> tuple[list[str], int]:
    """Every id an ascending search on ``filters`` pages through, and its total."""
    served.ctx.store.kv_set(hubspot.SEARCH_KEY, 0)  # the per-second limit is tested apart
    modified = "lastmodifieddate" if obj == "contacts" else "hs_lastmodifieddate"
    ids, after, totals = [], None, set()
    while True:
        answer = served.http.post(f"{served.url}/crm/v3/objects/{obj}/search", headers=AUTH, json={
            "filterGroups": [{"filters": list(filters)}], "limit": limit, "properties": ["email"],
            "sorts": [{"propertyName": modified, "direction": "ASCENDING"}], **({"after": after} if after else {})})
        assert answer.status_code == 200, answer.text
        ids += [r["id"] for r in answer.json()["results"]]
        totals.add(answer.json()["total"])
        after = answer.json().get("paging", {}).get("next", {}).get("after")
        if after is None:
            assert len(totals) == 1
            return ids, totals.pop()


def _tied_contacts(store: SandboxStore) -> None:
    """60 contacts, three to a minute, so ties on the change time are broken by id."""
    rows = []
    for n in range(60, 0, -1):
        moment = BASE + timedelta(minutes=n // 3)
        record_id = str(hubspot_data.ID_BASE["contacts"] + n)
        rows.append((record_id, moment, hubspot_data.hubspot_record("contacts", record_id, moment, moment, {
            "email": f"c{n}@example.com"})))
    store.put_many("hubspot", "contacts", rows)


def test_an_incremental_search_answers_what_a_filtered_scan_answers(tmp_path: Path) -> None:
    # A range on the change property sorted by it is answered off the change index; an extra
    # filter every record passes sends the same query down the scanning path to compare with.
    millis = lambda minutes: str(int((BASE + timedelta(minutes=minutes)).timestamp() * 1000))  # noqa: E731
    every = {"propertyName": "email", "operator": "HAS_PROPERTY"}
    modified = "lastmodifieddate"
    queries = [
        [{"propertyName": modified, "operator": "GT", "value": millis(4)}],
        [{"propertyName": modified, "operator": "GTE", "value": millis(4)}],
        [{"propertyName": modified, "operator": "GTE", "value": hubspot_data.ts(BASE + timedelta(minutes=7))}],
        [{"propertyName": modified, "operator": "LT", "value": millis(3)}],
        [{"propertyName": modified, "operator": "LTE", "value": millis(3)}],
        [{"propertyName": modified, "operator": "EQ", "value": millis(10)}],
        [{"propertyName": modified, "operator": "BETWEEN", "value": millis(5), "highValue": millis(9)}],
        [{"propertyName": modified, "operator": "GT", "value": millis(2)},
         {"propertyName": modified, "operator": "LT", "value": millis(15)}],
        [{"propertyName": modified, "operator": "GTE", "value": millis(30)}],
        [{"propertyName": modified, "operator": "GTE", "value": "not a time"}],
    ]
    with serve(tmp_path, hubspot.register, _tied_contacts) as served:
        for filters in queries:
            indexed = _incremental(served, "contacts", *filters, limit=7)
            assert indexed == _incremental(served, "contacts", *filters, every, limit=7), filters
        ids, total = _incremental(served, "contacts", *queries[0], limit=7)
        assert total == 46 and ids == sorted(ids, key=int)  # contacts 15..60, ties by id
        assert ids[:3] == [str(hubspot_data.ID_BASE["contacts"] + n) for n in (15, 16, 17)]


def test_an_incremental_search_follows_updates_upserts_and_archives(tmp_path: Path) -> None:
    since = {"propertyName": "lastmodifieddate", "operator": "GTE", "value": str(int(BASE.timestamp() * 1000))}
    with serve(tmp_path, hubspot.register, _contacts(20)) as served:
        store, contacts = served.ctx.store, served.url + "/crm/v3/objects/contacts"
        ids, total = _incremental(served, "contacts", since)
        assert total == 20
        third = ids[2]
        patched = served.http.patch(f"{contacts}/{third}", headers=AUTH, json={"properties": {"jobtitle": "CFO"}})
        assert patched.status_code == 200
        ids, total = _incremental(served, "contacts", since)
        assert total == 20 and ids[-1] == third and third not in ids[:-1]
        upserted = served.http.post(f"{contacts}/batch/upsert", headers=AUTH, json={"inputs": [
            {"idProperty": "email", "id": "new@example.com", "properties": {"firstname": "New"}},
            {"idProperty": "email", "id": "c5@example.com", "properties": {"firstname": "Five"}}]}).json()
        new_id, fifth = (r["id"] for r in upserted["results"])
        ids, total = _incremental(served, "contacts", since)
        assert total == 21 and set(ids[-2:]) == {new_id, fifth} and ids[-3] == third
        body = store.get("hubspot", "contacts", third)
        hubspot_data.archive(body, store.now())
        store.soft_delete("hubspot", "contacts", third, body, store.now())  # as the control API archives
        ids, total = _incremental(served, "contacts", since)
        assert total == 20 and third not in ids


def test_each_page_of_an_incremental_search_reads_only_its_own_records(tmp_path: Path, monkeypatch) -> None:
    since = {"propertyName": "lastmodifieddate", "operator": "GTE", "value": "0"}
    with serve(tmp_path, hubspot.register, _contacts(450)) as served:
        store, read = served.ctx.store, []
        scan = store.scan
        monkeypatch.setattr(store, "scan", lambda *a, **k: read.append(len(found := scan(*a, **k))) or found)
        ids, total = _incremental(served, "contacts", since, limit=100)
        assert total == 450 and len(ids) == 450 and len(set(ids)) == 450
        assert max(read) <= 100  # not the 450 matches, page after page


def test_search_has_its_own_per_second_limit_without_the_standard_headers(tmp_path: Path) -> None:
    with serve(tmp_path, hubspot.register, _contacts(3)) as served:
        served.ctx.store.kv_set(hubspot.SEARCH_KEY, 2)
        codes = [served.http.post(f"{served.url}/crm/v3/objects/contacts/search", headers=AUTH, json={})
                 for _ in range(3)]
        assert [answer.status_code for answer in codes] == [200, 200, 429]
        refused = codes[-1]
        assert refused.json()["errorType"] == "RATE_LIMIT" and refused.json()["policyName"] == "SECONDLY"
        assert not any(name.lower().startswith("x-hubspot-ratelimit") for name in refused.headers)


def test_the_ten_second_burst_limit_answers_429_with_the_ratelimit_headers(tmp_path: Path) -> None:
    with serve(tmp_path, hubspot.register, _contacts(3)) as served:
        served.ctx.store.kv_set(hubspot.BURST_KEY, 3)
        answers = [served.http.get(f"{served.url}/crm/v3/objects/contacts", headers=AUTH) for _ in range(4)]
        assert [a.status_code for a in answers] == [200, 200, 200, 429]
        assert [a.headers["X-HubSpot-RateLimit-Remaining"] for a in answers] == ["2", "1", "0", "0"]
        assert answers[0].headers["X-HubSpot-RateLimit-Max"] == "3"
        assert answers[0].headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "10000"
        body = answers[-1].json()
        assert body["status"] == "error" and body["errorType"] == "RATE_LIMIT"
        assert body["policyName"] == "TEN_SECONDLY_ROLLING" and body["message"]


# -- associations -------------------------------------------------------------------------------


def test_associations_v4_link_deals_companies_line_items_and_contacts_both_ways(sandbox) -> None:
    url, ctx = sandbox
    deal = ctx.store.scan("hubspot", "deals", order="id", limit=1)[0]
    companies = _get(url, f"/crm/v4/objects/deals/{deal['id']}/associations/companies").json()["results"]
    assert len(companies) == 1
    types = {(t["category"], t["typeId"], t["label"]) for t in companies[0]["associationTypes"]}
    assert types == {("HUBSPOT_DEFINED", 341, None), ("HUBSPOT_DEFINED", 5, "Primary")}
    company_id = str(companies[0]["toObjectId"])
    back = _get(url, f"/crm/v4/objects/0-2/{company_id}/associations/deals").json()["results"]
    assert int(deal["id"]) in {r["toObjectId"] for r in back}
    lines = _get(url, f"/crm/v4/objects/deals/{deal['id']}/associations/line_items").json()["results"]
    assert lines and all(t["typeId"] == 19 for r in lines for t in r["associationTypes"])
    contacts = _post(url, "/crm/v4/associations/companies/contacts/batch/read",
                     {"inputs": [{"id": company_id}]}).json()["results"]
    assert contacts[0]["from"]["id"] == company_id and contacts[0]["to"]


def test_batch_read_labels_the_primary_company_and_pages_each_inputs_associations(sandbox) -> None:
    """[ASSOC_BATCH]: the Primary type sits beside the unlabeled one on the deal's primary company,
    seen from either side; one input's associations past a page come with its own ``after``."""
    url, ctx = sandbox
    deal = ctx.store.scan("hubspot", "deals", order="id")[-1]["id"]
    first, second = (row["id"] for row in ctx.store.scan("hubspot", "companies", order="id", limit=2))
    key = hubspot_data.association_id("deals", deal, "companies")
    back_key = hubspot_data.association_id("companies", second, "deals")
    saved = {k: ctx.store.get("hubspot", hubspot_data.ASSOCIATIONS, k) for k in (key, back_key)}
    many = [str(hubspot_data.ID_BASE["companies"] + 800_000 + n) for n in range(hubspot.ASSOC_MAX + 20)]
    path = "/crm/v4/associations/deals/companies/batch/read"

    def put(to_ids: list[str], primary: str) -> None:
        body = hubspot_data.association_body("deals", deal, "companies", to_ids, ctx.store.now())
        body["primary"] = primary
        ctx.store.put("hubspot", hubspot_data.ASSOCIATIONS, key, body, ctx.store.now())

    try:
        put([first, second], second)
        back_body = {**saved[back_key], "to": [*saved[back_key]["to"], deal]}  # associations go both ways
        ctx.store.put("hubspot", hubspot_data.ASSOCIATIONS, back_key, back_body, ctx.store.now())
        [result] = _post(url, path, {"inputs": [{"id": deal}]}).json()["results"]
        labels = {str(t["toObjectId"]): {k["typeId"] for k in t["associationTypes"]} for t in result["to"]}
        assert labels == {first: {341}, second: {341, 5}} and "paging" not in result
        back = _get(url, f"/crm/v4/objects/companies/{second}/associations/deals").json()["results"]
        assert {k["typeId"] for r in back if str(r["toObjectId"]) == deal for k in r["associationTypes"]} == {342, 6}

        put(many, many[-1])
        [page] = _post(url, path, {"inputs": [{"id": deal}]}).json()["results"]
        assert [str(t["toObjectId"]) for t in page["to"]] == many[:hubspot.ASSOC_MAX]
        after = page["paging"]["next"]["after"]
        [rest] = _post(url, path, {"inputs": [{"id": deal, "after": after}]}).json()["results"]
        assert [str(t["toObjectId"]) for t in rest["to"]] == many[hubspot.ASSOC_MAX:] and "paging" not in rest
        assert {k["typeId"] for k in rest["to"][-1]["associationTypes"]} == {341, 5}
        too_many = [{"id": str(n)} for n in range(hubspot.ASSOC_BATCH_MAX + 1)]
        assert _post(url, path, {"inputs": too_many}).status_code == 400
    finally:
        for k, body in saved.items():
            ctx.store.put("hubspot", hubspot_data.ASSOCIATIONS, k, body, ctx.store.now())


# -- writes -------------------------------------------------------------------------------------


def test_batch_upsert_by_id_property_is_idempotent(sandbox) -> None:
    url, ctx = sandbox
    path = "/crm/v3/objects/companies/batch/upsert"
    inputs = [{"idProperty": "ps_external_id", "id": f"sf-acc-{n}", "properties": {"name": f"Upserted {n}"}}
              for n in range(3)]
    before = ctx.store.count("hubspot", "companies")
    first = _post(url, path, {"inputs": inputs})
    assert first.status_code == 200 and first.json()["status"] == "COMPLETE"
    assert [r["new"] for r in first.json()["results"]] == [True, True, True]
    again = _post(url, path, {"inputs": [{**i, "properties": {"name": "Renamed"}} for i in inputs]}).json()
    assert [r["new"] for r in again["results"]] == [False, False, False]
    assert [r["id"] for r in again["results"]] == [r["id"] for r in first.json()["results"]]
    assert ctx.store.count("hubspot", "companies") == before + 3
    stored = _get(url, "/crm/v3/objects/companies/sf-acc-1", idProperty="ps_external_id", properties="name")
    assert stored.json()["properties"]["name"] == "Renamed"
    bad = _post(url, path, {"inputs": [{"idProperty": "name", "id": "x", "properties": {}}]})
    assert bad.status_code == 400
    unknown = _post(url, path, {"inputs": [{"idProperty": "ps_external_id", "id": "y",
                                            "properties": {"no_such": "1"}}]})
    assert unknown.status_code == 400 and "PROPERTY_DOESNT_EXIST" in unknown.text


def test_write_back_sets_a_deal_property_by_patch_and_batch_update(sandbox) -> None:
    url, ctx = sandbox
    deal_id = ctx.store.scan("hubspot", "deals", order="id", limit=1)[0]["id"]
    patched = requests.patch(f"{url}/crm/v3/objects/deals/{deal_id}", headers=AUTH, timeout=10,
                             json={"properties": {"ps_activation_status": "Activated"}})
    assert patched.status_code == 200
    after = patched.json()
    assert after["properties"]["ps_activation_status"] == "Activated"
    assert after["updatedAt"] == after["properties"]["hs_lastmodifieddate"] > "2026-10-31"
    batch = _post(url, "/crm/v3/objects/deals/batch/update",
                  {"inputs": [{"id": deal_id, "properties": {"description": "from the ERP"}}, {"id": "1"}]})
    assert batch.status_code == 207 and batch.json()["errors"][0]["context"]["ids"] == ["1"]
    assert _get(url, f"/crm/v3/objects/deals/{deal_id}", properties="description").json()[
        "properties"]["description"] == "from the ERP"
    assert requests.patch(f"{url}/crm/v3/objects/deals/{deal_id}", headers=AUTH, timeout=10,
                          json={"properties": {"hs_object_id": "5"}}).status_code == 400
    created = _post(url, "/crm/v3/objects/products", {"properties": {"name": "New", "price": "10"}})
    assert created.status_code == 201 and int(created.json()["id"]) > hubspot_data.ID_BASE["products"]


# -- owners, pipelines, data --------------------------------------------------------------------


def test_owners_and_deal_pipelines_with_stages(sandbox) -> None:
    url, _ = sandbox
    owners = _get(url, "/crm/v3/owners").json()["results"]
    assert owners and {"id", "email", "firstName", "lastName", "userId", "archived"} <= set(owners[0])
    pipelines = {p["id"]: p for p in _get(url, "/crm/v3/pipelines/deals").json()["results"]}
    stages = {s["id"]: s for s in pipelines["default"]["stages"]}
    assert stages["closedwon"]["metadata"] == {"isClosed": "true", "probability": "1.0"}
    assert next(s["id"] for s in _get(url, "/crm/v3/pipelines/deals/renewals/stages").json()["results"]) == \
        "renewal_due"


def test_generated_portal_has_recurring_lines_renewals_and_estate_currencies(sandbox) -> None:
    _, ctx = sandbox
    deals = ctx.store.scan("hubspot", "deals")
    lines = ctx.store.scan("hubspot", "line_items")
    recurring = [line for line in lines if line["properties"].get("recurringbillingfrequency")]
    assert recurring and all(line["properties"]["hs_recurring_billing_period"].startswith("P") for line in recurring)
    assert {d["properties"]["deal_currency_code"] for d in deals} <= {c[1] for c in generate.CURRENCIES}
    assert any(d["properties"]["dealstage"] == "closedwon" for d in deals)
    assert any(d["properties"]["pipeline"] == "renewals" for d in deals)
    companies = [c for c in ctx.store.scan("hubspot", "companies") if not c["properties"].get("ps_external_id")]
    assert {c["properties"]["country"] for c in companies} <= set(generate.MARKETS_BY_COUNTRY)


def test_the_same_seed_gives_identical_hubspot_data(tmp_path: Path) -> None:
    def dump(path: Path, seed: int) -> str:
        store = SandboxStore(path)
        hubspot_data.write(store, seed=seed, scale=0.3)
        rows = store.conn.execute("SELECT object, id, updated_at, body FROM records ORDER BY object, id").fetchall()
        return json.dumps(rows)

    assert dump(tmp_path / "a.sqlite", 7) == dump(tmp_path / "b.sqlite", 7)
    assert dump(tmp_path / "c.sqlite", 8) != dump(tmp_path / "a.sqlite", 7)


# -- faults and events --------------------------------------------------------------------------


def test_faults_are_injected_in_hubspots_own_format(sandbox) -> None:
    url, _ = sandbox
    config = {"queue": [{"kind": "429"}, {"kind": "503"}], "path_contains": "/crm/v3/objects/products"}
    assert requests.put(f"{url}/_sandbox/faults/hubspot", json=config, timeout=10).status_code == 200
    try:
        limited = _get(url, "/crm/v3/objects/products")
        assert limited.status_code == 429 and limited.json()["errorType"] == "RATE_LIMIT"
        down = _get(url, "/crm/v3/objects/products")
        assert down.status_code == 503 and down.json()["status"] == "error"
        assert _get(url, "/crm/v3/objects/products").status_code == 200
        drift = {"drift": {"object": "products", "remove": ["price"]}, "path_contains": "/objects/products"}
        requests.put(f"{url}/_sandbox/faults/hubspot", json=drift, timeout=10)
        assert all("price" not in r["properties"] for r in _get(url, "/crm/v3/objects/products").json()["results"])
    finally:
        requests.delete(f"{url}/_sandbox/faults/hubspot", timeout=10)


def test_deal_won_and_touch_events_change_what_an_incremental_search_finds(sandbox) -> None:
    url, ctx = sandbox
    won = requests.post(f"{url}/_sandbox/events/hubspot-deal-won", json={}, timeout=10)
    assert won.status_code == 200
    deal = _get(url, f"/crm/v3/objects/deals/{won.json()['deal_id']}",
                properties="dealstage,hs_is_closed_won,closedate").json()
    assert deal["properties"]["dealstage"] == "closedwon" and deal["properties"]["hs_is_closed_won"] == "true"
    touched = requests.post(f"{url}/_sandbox/events/touch", timeout=10,
                            json={"platform": "hubspot", "object": "companies", "count": 2, "seed": 3}).json()
    since = int(ctx.store.now().timestamp() * 1000) - 60_000
    ctx.store.kv_set(hubspot.SEARCH_KEY, 0)
    found = _post(url, "/crm/v3/objects/companies/search", {"filterGroups": [{"filters": [
        {"propertyName": "hs_lastmodifieddate", "operator": "GTE", "value": str(since)}]}], "limit": 100}).json()
    assert set(touched["ids"]) <= {r["id"] for r in found["results"]}
