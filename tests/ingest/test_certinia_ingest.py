"""Certinia PSA ingestion over real HTTP: the Salesforce client against a sandbox whose org runs the
``pse__`` package, loaded into a real DuckDB warehouse (and through the Dagster assets)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from dagster import AssetKey, materialize

from ps_pipelines.defs.certinia.assets import build_certinia_assets
from ps_pipelines.ingest.catalog import ingest_assets
from ps_pipelines.lib.contracts import certinia
from ps_pipelines.lib.ingestion import IngestOptions, ingest_entity
from ps_pipelines.lib.sources.salesforce import SalesforceClient, build_soql
from ps_pipelines.lib.warehouse.warehouse import Warehouse
from ps_pipelines.resources import build_resources
from ps_sandbox.context import DEFAULT_CREDENTIALS
from ps_sandbox.generate import stamp
from tests.conftest import RunningSandbox

TIMECARD = "pse__Timecard_Header__c"


def _client(sandbox: RunningSandbox, sleeps: list[float] | None = None, **kw: Any) -> SalesforceClient:
    """The one Salesforce client; retries' waits are recorded instead of slept."""
    return SalesforceClient(sandbox.url, **DEFAULT_CREDENTIALS["salesforce"], clock=sandbox.ctx.store.now,
                            sleep=(sleeps if sleeps is not None else []).append, **kw)


def _edit(sandbox: RunningSandbox, record_id: str, changes: dict[str, Any], at=None) -> None:
    """Save a timecard again with ``changes`` and a change time of ``at`` (default: now)."""
    body = {**sandbox.ctx.store.get("salesforce", TIMECARD, record_id), **changes}
    stamp("salesforce", TIMECARD, body, at or sandbox.ctx.store.now())
    sandbox.control("POST", f"records/salesforce/{TIMECARD}", {"id": record_id, "body": body})


@pytest.fixture
def warehouse(tmp_path: Path) -> Warehouse:
    return Warehouse(tmp_path / "warehouse.duckdb")


def test_resources_are_the_contacts_flagged_as_resources(certinia_sandbox: RunningSandbox) -> None:
    store = certinia_sandbox.ctx.store
    contacts = store.scan("salesforce", "Contact")
    resources = {c["Id"] for c in contacts if c.get("pse__Is_Resource__c")}
    assert resources and len(resources) < len(contacts), "the org also holds the CRM's customer contacts"
    assert "WHERE pse__Is_Resource__c = TRUE AND SystemModstamp >=" in build_soql(
        certinia.RESOURCES, store.now())
    records = [r for page in _client(certinia_sandbox).extract(certinia.RESOURCES, since=None) for r in page]
    assert {r["Id"] for r in records} == resources
    assert all(r["pse__Is_Resource__c"] for r in records)


def test_timecards_page_through_next_records_url(certinia_sandbox: RunningSandbox) -> None:
    pages = list(_client(certinia_sandbox, batch_size=200).extract(certinia.TIMECARDS, since=None))
    ids = [r["Id"] for page in pages for r in page]
    assert len(pages) > 2 and all(len(page) <= 200 for page in pages)
    assert len(ids) == len(set(ids)) == certinia_sandbox.ctx.store.count("salesforce", TIMECARD)


def test_incremental_run_reads_changes_overlap_and_deletes(certinia_sandbox: RunningSandbox,
                                                           warehouse: Warehouse) -> None:
    sandbox, client = certinia_sandbox, _client(certinia_sandbox)
    first = ingest_entity(client, warehouse, certinia.TIMECARDS, "r1")
    assert first.mode == "full" and first.fetched == sandbox.ctx.store.count("salesforce", TIMECARD)
    touched = sandbox.control("POST", "events/touch", {"platform": "salesforce", "object": TIMECARD, "count": 5,
                                                       "seed": 3})["ids"]
    untouched = [r["Id"] for r in sandbox.ctx.store.scan("salesforce", TIMECARD, limit=50) if r["Id"] not in touched]
    # Committed late: changed with a time just under the mark, which only the overlap re-reads.
    late, hard, soft = untouched[:3]
    _edit(sandbox, late, {"pse__Monday_Hours__c": 7.5}, at=first.high_water_mark_after - timedelta(minutes=5))
    sandbox.control("POST", "events/delete", {"platform": "salesforce", "object": TIMECARD, "id": hard, "hard": True})
    sandbox.control("POST", "events/delete", {"platform": "salesforce", "object": TIMECARD, "id": soft})

    second = ingest_entity(client, warehouse, certinia.TIMECARDS, "r2", IngestOptions(overlap=timedelta(minutes=10)))
    assert second.mode == "incremental" and second.high_water_mark_before == first.high_water_mark_after
    assert second.fetched < first.fetched / 10, "reads the changes and the overlap window, not the table"
    assert (second.updated, second.deleted) == (5 + 2, 1)  # touched, late, soft-deleted; hard via getDeleted
    with warehouse.connect() as con:
        rows = dict(con.execute("SELECT id, _is_deleted FROM raw_certinia.timecards WHERE id IN (?, ?, ?)",
                                [late, hard, soft]).fetchall())
        monday = con.execute("SELECT pse__monday_hours__c FROM raw_certinia.timecards WHERE id = ?",
                             [late]).fetchone()[0]
    assert rows == {late: False, hard: True, soft: True} and monday == 7.5


@pytest.mark.parametrize("fault", ["503", "429"])
def test_a_refused_request_is_retried(certinia_sandbox: RunningSandbox, warehouse: Warehouse, fault: str) -> None:
    """503 and the concurrent-request limit (Salesforce answers it 403 REQUEST_LIMIT_EXCEEDED) are
    waited out; the load completes with every row once."""
    certinia_sandbox.control("PUT", "faults/salesforce", {"path_contains": TIMECARD,
                                                          "queue": [{"kind": fault}, {"kind": fault}]})
    sleeps: list[float] = []
    result = ingest_entity(_client(certinia_sandbox, sleeps, batch_size=200), warehouse, certinia.TIMECARDS, "r1")
    assert [entry["kind"] for entry in certinia_sandbox.control("GET", "faults/log")] == [fault, fault]
    assert result.api_stats["retries"] == 2 and len(sleeps) == 2
    with warehouse.connect() as con:
        loaded = con.execute("SELECT count(*) FROM raw_certinia.timecards").fetchone()[0]
    assert loaded + result.quarantined == certinia_sandbox.ctx.store.count("salesforce", TIMECARD)


def test_negative_hours_are_quarantined_and_the_good_version_kept(certinia_sandbox: RunningSandbox,
                                                                  warehouse: Warehouse) -> None:
    client = _client(certinia_sandbox)
    ingest_entity(client, warehouse, certinia.TIMECARDS, "r1")
    good = certinia_sandbox.ctx.store.scan("salesforce", TIMECARD, limit=1)[0]
    _edit(certinia_sandbox, good["Id"], {"pse__Wednesday_Hours__c": -3.0})
    result = ingest_entity(client, warehouse, certinia.TIMECARDS, "r2")
    assert result.quarantined == 1 and result.held == 1
    assert set(result.rule_counts) == {"pse__wednesday_hours__c: greater_than_or_equal_to(0)"}
    with warehouse.connect() as con:
        quarantined = con.execute("SELECT source_id, rule FROM ops.quarantine WHERE run_id = 'r2'").fetchall()
        kept = con.execute("SELECT pse__wednesday_hours__c FROM raw_certinia.timecards WHERE id = ?",
                           [good["Id"]]).fetchone()[0]
    assert [source_id for source_id, _ in quarantined] == [good["Id"]]
    assert kept == good["pse__Wednesday_Hours__c"]


def test_certinia_assets_load_every_entity_through_the_certinia_resource(certinia_sandbox: RunningSandbox,
                                                                         tmp_path: Path) -> None:
    assets = build_certinia_assets()
    assert not {a.key for a in assets} & {a.key for a in ingest_assets}, "not in the default estate's graph"
    resources = build_resources("local", sandbox_url=certinia_sandbox.url,
                                warehouse_path=str(tmp_path / "warehouse.duckdb"))
    result = materialize(assets, resources=resources, raise_on_error=True)
    with Warehouse(tmp_path / "warehouse.duckdb").connect() as con:
        loaded = dict(con.execute("SELECT entity_key, fetched FROM ops.ingest_runs WHERE run_id = ?",
                                  [result.run_id]).fetchall())
    assert set(loaded) == {c.key for c in certinia.ALL} and all(loaded.values())
    checks = {(e.asset_key, e.check_name): e.passed for e in result.get_asset_check_evaluations()}
    # The generated org carries a timecard with negative hours; the drift checks are green.
    assert not checks[(AssetKey(["raw", "certinia", "timecards"]), "contract_valid")]
    assert all(passed for (_, name), passed in checks.items() if name == "no_schema_drift")
