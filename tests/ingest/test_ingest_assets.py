"""Raw ingestion assets end to end: real HTTP against the sandbox, real DuckDB."""

from __future__ import annotations

from pathlib import Path

import pytest
from dagster import AssetKey, materialize

from ps_pipelines.ingest.catalog import ingest_assets
from ps_pipelines.lib.contracts import ALL_CONTRACTS
from ps_pipelines.lib.warehouse.warehouse import Warehouse
from ps_pipelines.resources import build_resources


def _materialize(sandbox, warehouse_path: Path, selection=None, run_config=None):
    resources = build_resources("local", sandbox_url=sandbox.url, warehouse_path=str(warehouse_path))
    return materialize(ingest_assets, resources=resources, selection=selection, run_config=run_config,
                       raise_on_error=True)


def _runs(warehouse: Warehouse, run_id: str) -> dict[str, tuple]:
    with warehouse.connect() as con:
        rows = con.execute("SELECT entity_key, fetched, inserted, updated, deleted, quarantined "
                           "FROM ops.ingest_runs WHERE run_id = ?", [run_id]).fetchall()
    return {row[0]: row[1:] for row in rows}


@pytest.fixture
def warehouse_path(tmp_path: Path) -> Path:
    return tmp_path / "warehouse.duckdb"


def test_all_entities_load_then_a_rerun_changes_nothing(sandbox, warehouse_path: Path) -> None:
    first = _materialize(sandbox, warehouse_path)
    assert first.success
    warehouse = Warehouse(warehouse_path)
    loaded = _runs(warehouse, first.run_id)
    assert set(loaded) == {c.key for c in ALL_CONTRACTS}
    for key, (fetched, inserted, _updated, _deleted, quarantined) in loaded.items():
        assert fetched > 0, key
        assert inserted + quarantined == fetched or key.startswith("netsuite__invoice_lines"), key

    # The sandbox deliberately carries a few bad rows: they are quarantined with a reason
    # and the contract check says so, while the good rows of the same entity loaded.
    assert loaded["kantata__time_entries"][4] > 0
    checks = {(e.asset_key, e.check_name): e for e in first.get_asset_check_evaluations()}
    time_check = checks[(AssetKey(["raw", "kantata", "time_entries"]), "contract_valid")]
    assert not time_check.passed
    assert "time_in_minutes" in str(time_check.metadata["failed_rules"].value)

    second = _materialize(sandbox, warehouse_path)
    for key, (_fetched, inserted, updated, deleted, _q) in _runs(warehouse, second.run_id).items():
        assert (inserted, updated, deleted) == (0, 0, 0), key


def test_incremental_run_fetches_only_what_changed(sandbox, warehouse_path: Path) -> None:
    selection = [AssetKey(["raw", "kantata", "time_entries"]), AssetKey(["raw", "salesforce", "opportunities"])]
    _materialize(sandbox, warehouse_path, selection=selection)
    approved = sandbox.control("POST", "events/approve-week", {})
    won = sandbox.control("POST", "events/deal-won", {})
    result = _materialize(sandbox, warehouse_path, selection=selection)
    runs = _runs(Warehouse(warehouse_path), result.run_id)
    entries = runs["kantata__time_entries"]
    assert entries[1] + entries[2] == len(approved["approved"])
    assert runs["salesforce__opportunities"][2] >= 1
    assert entries[0] < 200, "an incremental run reads the changes and the overlap window, not the table"
    with Warehouse(warehouse_path).connect() as con:
        stage = con.execute("SELECT stagename FROM raw_salesforce.opportunities WHERE id = ?",
                            [won["opportunity_id"]]).fetchone()[0]
    assert stage == "Closed Won"
