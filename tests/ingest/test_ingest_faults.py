"""Ingestion under the sandbox's injected faults: drift is quarantined with a clear reason,
transport faults end in a complete load, and deletes are recorded, not ignored."""

from __future__ import annotations

from pathlib import Path

import pytest
from dagster import AssetCheckSeverity, AssetKey, materialize

from ps_pipelines.ingest.catalog import ingest_assets
from ps_pipelines.lib.contracts import kantata, salesforce
from ps_pipelines.lib.ingestion import IngestOptions, ingest_entity
from ps_pipelines.lib.warehouse.warehouse import Warehouse
from ps_pipelines.resources import build_resources

TIME_ENTRIES_KEY = AssetKey(["raw", "kantata", "time_entries"])


@pytest.fixture
def warehouse(tmp_path: Path) -> Warehouse:
    return Warehouse(tmp_path / "warehouse.duckdb")


def _client(sandbox, platform: str):
    resource = build_resources("local", sandbox_url=sandbox.url)[platform]
    # Real backoff, scaled down so the suite stays fast; Retry-After is still honoured as sent.
    return resource.model_copy(update={"backoff_base_seconds": 0.01, "backoff_max_seconds": 2.0}).client()


def test_retyped_field_is_quarantined_naming_field_rule_and_value(sandbox, warehouse: Warehouse) -> None:
    sandbox.control("PUT", "faults/kantata", {
        "path_contains": "time_entries",
        "drift": {"object": "time_entries", "retype": {"time_in_minutes": "ninety minutes"}},
    })
    resources = build_resources("local", sandbox_url=sandbox.url, warehouse_path=str(warehouse.path))
    result = materialize(ingest_assets, resources=resources, selection=[TIME_ENTRIES_KEY])
    assert result.success, "a drifted source must not crash the load"
    check = next(e for e in result.get_asset_check_evaluations() if e.check_name == "contract_valid")
    assert not check.passed and check.severity == AssetCheckSeverity.ERROR
    with warehouse.connect() as con:
        fetched, quarantined = con.execute(
            "SELECT fetched, quarantined FROM ops.ingest_runs WHERE entity_key = 'kantata__time_entries'").fetchone()
        rule = con.execute("SELECT rule FROM ops.quarantine LIMIT 1").fetchone()[0]
        kept = con.execute("SELECT count(*) FROM ops.quarantine WHERE payload IS NOT NULL").fetchone()[0]
    assert quarantined == fetched == kept > 0, "every row is kept with its payload, none is lost"
    assert "time_in_minutes: not a valid float64 (value='ninety minutes')" in rule

    # Once the source is fixed, a full refresh loads the rows and resolves the quarantine.
    sandbox.control("DELETE", "faults/kantata")
    fixed = ingest_entity(_client(sandbox, "kantata"), warehouse, kantata.TIME_ENTRIES, "fix",
                          IngestOptions(full_refresh=True))
    assert fixed.inserted > 0
    with warehouse.connect() as con:
        open_rows = con.execute("SELECT count(*) FROM ops.quarantine WHERE resolved_at IS NULL").fetchone()[0]
    assert open_rows == fixed.quarantined  # only the genuinely bad rows remain open


def test_added_and_removed_fields_are_reported_as_drift(sandbox, warehouse: Warehouse) -> None:
    sandbox.control("PUT", "faults/kantata", {
        "path_contains": "time_entries",
        "drift": {"object": "time_entries", "add": {"overtime_flag": True}, "remove": ["notes"]},
    })
    resources = build_resources("local", sandbox_url=sandbox.url, warehouse_path=str(warehouse.path))
    result = materialize(ingest_assets, resources=resources, selection=[TIME_ENTRIES_KEY])
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert not checks["no_schema_drift"].passed
    assert checks["no_schema_drift"].metadata["unexpected_fields"].value == ["overtime_flag"]
    with warehouse.connect() as con:
        notes = con.execute("SELECT count(notes) FROM raw_kantata.time_entries").fetchone()[0]
    assert notes == 0, "a removed optional field loads as null instead of failing"


def test_transport_faults_end_in_a_complete_load_without_duplicates(sandbox, warehouse: Warehouse) -> None:
    queue = [{"kind": "429", "retry_after": 1}, {"kind": "429"}, {"kind": "500"}, {"kind": "503"},
             {"kind": "drop"}, {"kind": "malformed"}, {"kind": "duplicate", "rows": 5}]
    sandbox.control("PUT", "faults/kantata", {"path_contains": "time_entries", "queue": queue})
    result = ingest_entity(_client(sandbox, "kantata"), warehouse, kantata.TIME_ENTRIES, "faulty")
    injected = {entry["kind"] for entry in sandbox.control("GET", "faults/log")}
    assert {"429", "500", "503", "drop", "malformed", "duplicate"} <= injected
    assert result.api_stats["retries"] >= 6
    live = sandbox.ctx.store.count("kantata", "time_entries")
    with warehouse.connect() as con:
        loaded = con.execute("SELECT count(*) FROM raw_kantata.time_entries").fetchone()[0]
    assert loaded + result.quarantined == live, "every source row arrived exactly once"


def test_soft_and_hard_deletes_are_recorded(sandbox, warehouse: Warehouse) -> None:
    client = _client(sandbox, "salesforce")
    ingest_entity(client, warehouse, salesforce.OPPORTUNITIES, "r1")
    ingest_entity(client, warehouse, salesforce.CONTACTS, "r1")
    opportunity = sandbox.ctx.store.scan("salesforce", "Opportunity", limit=1)[0]["Id"]
    contact = sandbox.ctx.store.scan("salesforce", "Contact", limit=1)[0]["Id"]
    sandbox.control("POST", "events/delete", {"platform": "salesforce", "object": "Opportunity",
                                              "id": opportunity, "hard": False})
    sandbox.control("POST", "events/delete", {"platform": "salesforce", "object": "Contact",
                                              "id": contact, "hard": True})
    soft = ingest_entity(client, warehouse, salesforce.OPPORTUNITIES, "r2")
    hard = ingest_entity(client, warehouse, salesforce.CONTACTS, "r2")
    assert (soft.updated, hard.deleted) == (1, 1)
    with warehouse.connect() as con:
        assert con.execute("SELECT _is_deleted FROM raw_salesforce.opportunities WHERE id = ?",
                           [opportunity]).fetchone()[0]
        assert con.execute("SELECT _is_deleted, _deleted_at IS NOT NULL FROM raw_salesforce.contacts WHERE id = ?",
                           [contact]).fetchone() == (True, True)
