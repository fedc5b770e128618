"""The HubSpot raw assets a declared estate adds, end to end: real HTTP against the sandbox, real
DuckDB, contract checks, quarantine and run metadata from the shared factory."""

from __future__ import annotations

from pathlib import Path

from dagster import AssetKey, materialize

from ps_pipelines.defs.hubspot.assets import build_hubspot_assets
from ps_pipelines.lib.contracts import hubspot
from ps_pipelines.lib.warehouse.warehouse import Warehouse
from ps_pipelines.resources import WarehouseResource, hubspot_resources


def _materialize(sandbox, warehouse_path: Path):
    resources = {**hubspot_resources("local", sandbox_url=sandbox.url),
                 "warehouse": WarehouseResource(database_path=str(warehouse_path))}
    return materialize(build_hubspot_assets(), resources=resources, raise_on_error=True)


def test_hubspot_assets_load_check_and_quarantine_then_rerun_incrementally(sandbox, tmp_path: Path) -> None:
    deal = sandbox.ctx.store.scan("hubspot", "deals", limit=1)[0]
    deal["properties"]["hs_deal_stage_probability"] = "1.7"  # above 1: breaks the contract
    sandbox.control("POST", "records/hubspot/deals", {"id": deal["id"], "body": deal})
    warehouse_path = tmp_path / "warehouse.duckdb"

    first = _materialize(sandbox, warehouse_path)
    assert first.success
    with Warehouse(warehouse_path).connect() as con:
        runs = dict(con.execute("SELECT entity_key, quarantined FROM ops.ingest_runs WHERE run_id = ?",
                                [first.run_id]).fetchall())
        live = con.execute("SELECT count(*) FROM raw_hubspot.deals").fetchone()[0]
    assert set(runs) == {c.key for c in hubspot.ALL}
    assert runs["hubspot__deals"] == 1 and sum(runs.values()) == 1
    assert live == len(sandbox.ctx.store.scan("hubspot", "deals")) - 1
    checks = {(e.asset_key, e.check_name): e for e in first.get_asset_check_evaluations()}
    deals_check = checks[(AssetKey(["raw", "hubspot", "deals"]), "contract_valid")]
    assert not deals_check.passed and "hs_deal_stage_probability" in str(deals_check.metadata["failed_rules"].value)
    assert checks[(AssetKey(["raw", "hubspot", "line_items"]), "contract_valid")].passed

    won = sandbox.control("POST", "events/hubspot-deal-won", {})
    second = _materialize(sandbox, warehouse_path)
    with Warehouse(warehouse_path).connect() as con:
        modes = dict(con.execute("SELECT entity_key, mode FROM ops.ingest_runs WHERE run_id = ?",
                                 [second.run_id]).fetchall())
        stage = con.execute("SELECT dealstage FROM raw_hubspot.deals WHERE id = ?", [won["deal_id"]]).fetchone()
    assert set(modes.values()) == {"incremental"}
    assert stage == ("closedwon",)
