"""The HubSpot client against the real sandbox over HTTP: list paging, incremental search
(re-anchored past the 10,000-result cap), archived records as deletes, rate limits, faults, and an
ingest into DuckDB with a quarantined row; and the HubSpot raw assets outside the default graph."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

import pytest

from ps_pipelines.defs.hubspot.assets import build_hubspot_assets
from ps_pipelines.ingest.catalog import INGEST_GROUPS, ingest_assets
from ps_pipelines.ingest.factory import raw_asset_key
from ps_pipelines.lib.contracts import EVERY_CONTRACT, hubspot
from ps_pipelines.lib.contracts.base import EntityContract
from ps_pipelines.lib.contracts.validate import validate_records
from ps_pipelines.lib.ingestion import IngestOptions, ingest_entity
from ps_pipelines.lib.sources.base import parse_timestamp
from ps_pipelines.lib.sources.hubspot import SEARCH_CAP, SEARCH_MAX, HubSpotClient
from ps_pipelines.lib.warehouse.warehouse import Warehouse
from ps_sandbox import hubspot_data
from ps_sandbox.context import DEFAULT_CREDENTIALS
from tests.conftest import RunningSandbox

TOKEN = DEFAULT_CREDENTIALS["hubspot"]["token"]


def make_client(sandbox: RunningSandbox, sleeps: list[float] | None = None, **kw: Any) -> HubSpotClient:
    """Small list pages so every read pages; backoff waits recorded in ``sleeps``, not slept;
    search pacing well above the sandbox's limit, which tests switch off where they page a lot."""
    settings: dict[str, Any] = {"page_size": 3, "search_requests_per_second": 1000.0,
                                "sleep": (sleeps if sleeps is not None else []).append, **kw}
    return HubSpotClient(sandbox.url, TOKEN, **settings)


def read(client: HubSpotClient, contract: EntityContract, **kw: Any) -> list[dict]:
    pages = list(client.extract(contract, since=kw.pop("since", None), **kw))
    assert all(pages), "no empty pages"
    return [record for page in pages for record in page]


def live_ids(sandbox: RunningSandbox, obj: str) -> list[str]:
    return sorted(str(row["id"]) for row in sandbox.ctx.store.scan("hubspot", obj))


def changed(record: dict, contract: EntityContract) -> datetime:
    return parse_timestamp(str(contract.normalize(record)[contract.change_column]))


@pytest.mark.parametrize("contract", hubspot.ALL, ids=lambda c: c.key)
def test_full_read_pages_the_list_endpoint_and_reads_every_record(sandbox: RunningSandbox,
                                                                  contract: EntityContract) -> None:
    client = make_client(sandbox)
    pages = list(client.extract(contract, since=None))
    records = [record for page in pages for record in page]
    assert sorted(str(r["id"]) for r in records) == live_ids(sandbox, contract.source_object)
    if contract.source_object != "owners":  # owners come in one page of up to 500
        assert len(pages) > 1 and max(map(len, pages)) <= 3
        # The contract's properties were asked for by name: every one is answered (null when unset).
        assert all(set(contract.source_fields) <= set(r["properties"]) for r in records)
    assert client.stats()["search_queries"] == 0


def test_every_generated_record_meets_its_contract(sandbox: RunningSandbox) -> None:
    client = make_client(sandbox, page_size=100)
    for contract in hubspot.ALL:
        batch = validate_records(contract, read(client, contract))
        assert batch.rejects == [] and batch.unexpected_columns == set(), contract.key
    lines = validate_records(hubspot.LINE_ITEMS, read(client, hubspot.LINE_ITEMS)).valid
    recurring = lines[lines["recurringbillingfrequency"].notna()]
    assert len(recurring) > 0 and recurring["hs_recurring_billing_period"].str.startswith("P").all()
    assert recurring["hs_recurring_billing_start_date"].notna().all()


def test_incremental_read_searches_changes_since_ascending(sandbox: RunningSandbox) -> None:
    client = make_client(sandbox)
    touched = sandbox.control("POST", "events/touch", {"platform": "hubspot", "object": "deals", "count": 3})
    since = parse_timestamp(touched["updated_at"]) - timedelta(seconds=1)
    records = read(client, hubspot.DEALS, since=since)
    assert sorted(str(r["id"]) for r in records) == sorted(map(str, touched["ids"]))
    times = [changed(r, hubspot.DEALS) for r in records]
    assert times == sorted(times) and min(times) >= since
    assert client.stats()["search_queries"] == 1
    # By id (a child read): only those records, through the same search.
    wanted = live_ids(sandbox, "deals")[:2]
    assert sorted(str(r["id"]) for r in read(client, hubspot.DEALS, since=None, ids=wanted)) == wanted


def test_contacts_search_on_their_own_last_modified_property(sandbox: RunningSandbox) -> None:
    client = make_client(sandbox)
    touched = sandbox.control("POST", "events/touch", {"platform": "hubspot", "object": "contacts", "count": 2})
    since = parse_timestamp(touched["updated_at"])
    assert hubspot.CONTACTS.change_column == "lastmodifieddate"
    assert sorted(str(r["id"]) for r in read(client, hubspot.CONTACTS, since=since)) == sorted(touched["ids"])


def test_search_is_re_anchored_at_the_10000_result_cap(sandbox: RunningSandbox) -> None:
    """10,250 contacts changed since the mark, 150 of them sharing the last time on the 50th page:
    one query stops at 10,000; the client starts a new one from the last time read and skips the
    records at that time it already has."""
    store = sandbox.ctx.store
    base = store.now().replace(microsecond=0) + timedelta(days=1)
    rows = []
    for n in range(1, 10_251):
        # One a second, except a block of 150 at one instant straddling the cap (rows 9,901-10,050).
        moment = base + timedelta(seconds=9_901 if 9_901 <= n <= 10_050 else n)
        record_id = str(hubspot_data.ID_BASE["contacts"] + 500_000 + n)
        rows.append((record_id, moment, hubspot_data.hubspot_record("contacts", record_id, moment, moment, {
            "email": f"c{n}@example.com", "firstname": "F", "lastname": "L"})))
    store.put_many("hubspot", "contacts", rows)
    sandbox.control("PUT", "limits", {"hubspot_search_requests_per_second": 0, "hubspot_requests_per_10_seconds": 0})
    client = make_client(sandbox)

    records = read(client, hubspot.CONTACTS, since=base)
    ids = [str(r["id"]) for r in records]
    assert len(ids) == len(set(ids)) == 10_250  # every record once, none lost at the seam
    assert set(ids) == {row[0] for row in rows}
    times = [changed(r, hubspot.CONTACTS) for r in records]
    assert times == sorted(times)
    stats = client.stats()
    assert stats["search_queries"] == 2 and stats["retries"] == 0  # never paged into the 400
    assert SEARCH_CAP == 10_000


def test_archived_records_become_deletes(sandbox: RunningSandbox, tmp_path) -> None:
    warehouse = Warehouse(tmp_path / "warehouse.duckdb")
    client = make_client(sandbox)
    first = ingest_entity(client, warehouse, hubspot.COMPANIES, "run-1")
    assert first.mode == "full" and first.inserted == len(live_ids(sandbox, "companies"))
    gone = live_ids(sandbox, "companies")[1]
    sandbox.control("POST", "events/delete", {"platform": "hubspot", "object": "companies", "id": gone,
                                              "hard": False})
    since = first.high_water_mark_after - timedelta(minutes=10)
    assert [record_id for record_id, _ in client.deleted(hubspot.COMPANIES, since=since)] == [gone]
    assert gone not in {str(r["id"]) for r in read(client, hubspot.COMPANIES)}  # no longer listed

    second = ingest_entity(client, warehouse, hubspot.COMPANIES, "run-2")
    assert (second.mode, second.deleted) == ("incremental", 1)
    with warehouse.connect() as con:
        assert con.execute("SELECT _source_id FROM raw_hubspot.companies WHERE _is_deleted").fetchall() == [(gone,)]


def test_a_real_429_from_the_burst_limit_is_retried(sandbox: RunningSandbox) -> None:
    """The sandbox's own 10-second limiter refuses; the backoff (here: lifting the limit, as the
    window passing would) lets the retry through."""
    sandbox.control("PUT", "limits", {"hubspot_requests_per_10_seconds": 2})

    def wait(seconds: float) -> None:
        waits.append(seconds)
        sandbox.control("PUT", "limits", {"hubspot_requests_per_10_seconds": 0})

    waits: list[float] = []
    client = make_client(sandbox, sleep=wait)
    records = read(client, hubspot.DEALS)
    assert sorted(str(r["id"]) for r in records) == live_ids(sandbox, "deals")
    stats = client.stats()
    assert (stats["throttled"], stats["retries"], len(waits)) == (1, 1, 1)


def test_search_calls_are_paced_under_the_search_limit(sandbox: RunningSandbox) -> None:
    """At the default pacing (4 a second), eight search pages in a row meet the sandbox's
    documented 5-per-second search limit without a single 429."""
    touched = sandbox.control("POST", "events/touch", {"platform": "hubspot", "object": "line_items", "count": 16})
    client = HubSpotClient(sandbox.url, TOKEN, search_page_size=2, sleep=[].append)
    records = read(client, hubspot.LINE_ITEMS, since=parse_timestamp(touched["updated_at"]))
    assert len(records) == 16
    stats = client.stats()
    # Eight search pages, each followed by its line items' deal associations (a batch read).
    assert stats["requests"] == 16 and stats["association_reads"] == 8 and stats["throttled"] == 0
    assert sandbox.control("GET", "limits")["hubspot_search_requests_per_second"] == 5


def test_run_metadata_carries_the_burst_limit_headers(sandbox: RunningSandbox) -> None:
    client = make_client(sandbox)
    read(client, hubspot.PRODUCTS)
    stats = client.stats()
    assert stats["rate_limit_max"] == 190 and 0 <= stats["rate_limit_remaining"] < 190


@pytest.mark.parametrize(("fault", "path"), [
    ({"kind": "429", "retry_after": 2}, "/objects/products/search"),
    ({"kind": "503"}, "/objects/products/search"),
    ({"kind": "503"}, "archived=true"),
], ids=["429-search", "503-search", "503-archived-list"])
def test_faults_are_retried_and_the_read_completes(sandbox: RunningSandbox, fault: dict, path: str) -> None:
    sleeps: list[float] = []
    client = make_client(sandbox, sleeps)
    sandbox.control("PUT", "faults/hubspot", {"queue": [fault, fault], "path_contains": path})
    if "search" in path:
        moment = parse_timestamp(sandbox.control("POST", "events/touch", {
            "platform": "hubspot", "object": "products", "count": 2})["updated_at"])
        assert len(read(client, hubspot.PRODUCTS, since=moment)) == 2
    else:
        assert list(client.deleted(hubspot.PRODUCTS, since=sandbox.ctx.store.now())) == []
    stats = client.stats()
    assert stats["retries"] == 2
    if fault["kind"] == "429":
        assert stats["throttled"] == 2 and sleeps == [2.0, 2.0]  # the server's Retry-After
    else:
        assert len(sleeps) == 2 and sleeps[0] <= 0.5 and sleeps[1] <= 1.0  # full-jitter backoff


def test_ingest_quarantines_a_bad_line_item_and_loads_the_rest(sandbox: RunningSandbox, tmp_path) -> None:
    store = sandbox.ctx.store
    bad = store.scan("hubspot", "line_items", limit=1)[0]
    bad["properties"]["recurringbillingfrequency"] = "fortnightly"  # not a HubSpot option
    sandbox.control("POST", "records/hubspot/line_items", {"id": bad["id"], "body": bad})
    warehouse = Warehouse(tmp_path / "warehouse.duckdb")

    result = ingest_entity(make_client(sandbox, page_size=100), warehouse, hubspot.LINE_ITEMS, "run-1",
                           IngestOptions(batch_rows=7))
    total = len(live_ids(sandbox, "line_items"))
    assert (result.fetched, result.inserted, result.quarantined) == (total, total - 1, 1)
    assert result.high_water_mark_after is not None
    with warehouse.connect() as con:
        quarantined = con.execute("SELECT source_id, rule FROM ops.quarantine").fetchall()
        loaded = con.execute("SELECT count(*), count(*) FILTER (WHERE recurringbillingfrequency IS NOT NULL), "
                             "count(hs_recurring_billing_start_date) FROM raw_hubspot.line_items").fetchone()
    assert quarantined[0][0] == bad["id"] and "recurringbillingfrequency" in quarantined[0][1]
    assert loaded[0] == total - 1 and loaded[1] == loaded[2] > 0


def test_hubspot_assets_are_built_apart_from_the_default_graph() -> None:
    assets = build_hubspot_assets()
    keys = {key for asset in assets for key in asset.keys}
    assert keys == {raw_asset_key(contract) for contract in hubspot.ALL}
    assert all(asset.group_names_by_key[raw_asset_key(c)] == "crm_hubspot" for asset, c in zip(assets, hubspot.ALL,
                                                                                               strict=True))
    assert all(c in EVERY_CONTRACT for c in hubspot.ALL)
    default_keys = {key for asset in ingest_assets for key in asset.keys}
    # Only a declared estate adds HubSpot's assets; its group is one ingest_all may select.
    assert not keys & default_keys and "crm_hubspot" in INGEST_GROUPS


# -- associations folded into rows ------------------------------------------------------------


def stored_targets(sandbox: RunningSandbox, from_obj: str, to_obj: str) -> dict[str, list[str]]:
    """Each record's associated ids as the sandbox stores them (generated: one company per deal,
    one deal per line item)."""
    return {body["from"]: list(body["to"]) for body in sandbox.ctx.store.scan("hubspot", hubspot_data.ASSOCIATIONS)
            if (body["fromObjectType"], body["toObjectType"]) == (from_obj, to_obj)}


def associate(sandbox: RunningSandbox, deal_id: str, companies: list[str], **primary: str | None) -> None:
    """Set a deal's companies; ``primary=`` names the one labelled Primary (None: no Primary)."""
    body = {**hubspot_data.association_body("deals", deal_id, "companies", companies, sandbox.ctx.store.now()),
            **primary}
    sandbox.ctx.store.put("hubspot", hubspot_data.ASSOCIATIONS,
                          hubspot_data.association_id("deals", deal_id, "companies"), body, sandbox.ctx.store.now())


def loaded(warehouse: Warehouse, table: str, column: str) -> dict[str, str | None]:
    with warehouse.connect() as con:
        return dict(con.execute(f"SELECT id, {column} FROM raw_hubspot.{table}").fetchall())


def test_full_and_incremental_ingests_fold_each_deals_primary_company(sandbox: RunningSandbox, tmp_path) -> None:
    """The Primary-labelled company wins over the first listed; without a Primary label the first
    is taken; a deal without a company loads with a null company_id. One batch read per page."""
    deals, companies = live_ids(sandbox, "deals"), live_ids(sandbox, "companies")
    stored = stored_targets(sandbox, "deals", "companies")
    expected: dict[str, str | None] = {deal: to[0] for deal, to in stored.items()}
    assert set(expected) == set(deals)
    associate(sandbox, deals[0], [companies[0], companies[1]], primary=companies[1])
    associate(sandbox, deals[1], [companies[2], companies[0]], primary=None)
    associate(sandbox, deals[2], [])
    expected.update({deals[0]: companies[1], deals[1]: companies[2], deals[2]: None})
    warehouse = Warehouse(tmp_path / "warehouse.duckdb")

    client = make_client(sandbox)
    full = ingest_entity(client, warehouse, hubspot.DEALS, "run-1")
    assert (full.mode, full.fetched, full.quarantined) == ("full", len(deals), 0)
    assert loaded(warehouse, "deals", "company_id") == expected
    assert client.stats()["association_reads"] == math.ceil(len(deals) / 3)  # one per list page of 3

    touched = sandbox.control("POST", "events/touch", {"platform": "hubspot", "object": "deals", "count": 4})
    moved = touched["ids"][0]
    associate(sandbox, moved, [companies[3], companies[4]], primary=companies[4])
    expected[moved] = companies[4]
    client = make_client(sandbox, search_page_size=2)
    second = ingest_entity(client, warehouse, hubspot.DEALS, "run-2")
    assert second.mode == "incremental" and set(touched["ids"]) <= set(loaded(warehouse, "deals", "company_id"))
    assert loaded(warehouse, "deals", "company_id") == expected
    assert client.stats()["association_reads"] == math.ceil(second.fetched / 2)  # one per search page of 2


def test_full_and_incremental_ingests_fold_each_line_items_deal(sandbox: RunningSandbox, tmp_path) -> None:
    expected = {line: to[0] for line, to in stored_targets(sandbox, "line_items", "deals").items()}
    assert set(expected) == set(live_ids(sandbox, "line_items"))
    warehouse = Warehouse(tmp_path / "warehouse.duckdb")
    client = make_client(sandbox, page_size=50)
    full = ingest_entity(client, warehouse, hubspot.LINE_ITEMS, "run-1")
    assert loaded(warehouse, "line_items", "deal_id") == expected
    assert client.stats()["association_reads"] == math.ceil(full.fetched / 50)

    sandbox.control("POST", "events/touch", {"platform": "hubspot", "object": "line_items", "count": 5})
    client = make_client(sandbox)
    second = ingest_entity(client, warehouse, hubspot.LINE_ITEMS, "run-2")
    assert second.mode == "incremental" and second.fetched >= 5
    assert loaded(warehouse, "line_items", "deal_id") == expected
    assert client.stats()["association_reads"] == math.ceil(second.fetched / SEARCH_MAX)


def test_a_primary_company_past_the_first_page_of_associations_is_found(sandbox: RunningSandbox) -> None:
    """A batch read answers at most a page of one record's associations; the client asks again
    with that record's ``after`` until the Primary one turns up."""
    deal = live_ids(sandbox, "deals")[0]
    many = [str(hubspot_data.ID_BASE["companies"] + 900_000 + n) for n in range(600)]
    associate(sandbox, deal, many, primary=many[550])
    client = make_client(sandbox)
    [record] = read(client, hubspot.DEALS, ids=[deal])
    assert record["company_id"] == many[550]
    assert client.stats()["association_reads"] == 2
