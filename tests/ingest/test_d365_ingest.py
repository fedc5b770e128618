"""The Dynamics 365 raw assets an estate with ``d365`` adds, end to end: real HTTP against the
sandbox, a real DuckDB warehouse. No entity has a change field, so every run is a snapshot and a
record the environment no longer lists is marked deleted."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dagster import AssetKey, materialize

from ps_pipelines.defs.d365.assets import GROUP, build_d365_assets
from ps_pipelines.estate import Estate
from ps_pipelines.ingest.catalog import PLATFORM_GROUPS, estate_ingest_assets
from ps_pipelines.lib.contracts import d365
from ps_pipelines.lib.warehouse.warehouse import Warehouse
from ps_pipelines.resources import WarehouseResource, d365_resources, estate_resources
from ps_sandbox import d365_data
from ps_sandbox.catalog import d365 as catalog
from tests.conftest import RunningSandbox

ESTATE = Estate.parse("salesforce,kantata,workday,d365")
CUSTOMERS = catalog.ENTITY_SETS["CustomersV3"]


def _materialize(sandbox: RunningSandbox, warehouse_path: Path) -> Any:
    resources = {**d365_resources("local", sandbox_url=sandbox.url),
                 "warehouse": WarehouseResource(database_path=str(warehouse_path))}
    return materialize(build_d365_assets(), resources=resources, raise_on_error=True)


def _runs(warehouse: Warehouse, run_id: str) -> dict[str, tuple]:
    with warehouse.connect() as con:
        rows = con.execute("SELECT entity_key, fetched, inserted, updated, deleted, quarantined "
                           "FROM ops.ingest_runs WHERE run_id = ?", [run_id]).fetchall()
    return {row[0]: row[1:] for row in rows}


def test_an_estate_with_d365_ingests_it_in_its_own_group() -> None:
    keys = {a.key for a in estate_ingest_assets(ESTATE)}
    assert {AssetKey(["raw", "d365", c.entity]) for c in d365.ALL} <= keys
    assert not any(k.path[1] == "netsuite" for k in keys)
    assert not any(k.path[1] == "d365" for k in (a.key for a in estate_ingest_assets()))
    assert PLATFORM_GROUPS["d365"] == GROUP == "erp_d365"
    assert set(estate_resources(ESTATE)) == {"d365"}
    production = estate_resources(ESTATE, "production")["d365"]
    assert production.login_url == "https://login.microsoftonline.com"


def test_snapshots_load_quarantine_and_detect_deletes(sandbox: RunningSandbox, tmp_path: Path) -> None:
    store = sandbox.ctx.store
    d365_data.ensure(store)
    customers = store.scan("d365", "CustomersV3", order="id")
    bad, gone = customers[0], customers[1]
    # A customer whose currency is no ISO code: quarantined with its reason, the rest load.
    broken = {**bad, "SalesCurrencyCode": "Dollars"}
    sandbox.control("POST", "records/d365/CustomersV3", {"id": d365_data.store_id(CUSTOMERS, bad), "body": broken})

    warehouse_path = tmp_path / "warehouse.duckdb"
    first = _materialize(sandbox, warehouse_path)
    warehouse = Warehouse(warehouse_path)
    loaded = _runs(warehouse, first.run_id)
    assert set(loaded) == {c.key for c in d365.ALL}
    for contract in d365.ALL:
        fetched, inserted, _updated, deleted, quarantined = loaded[contract.key]
        expected = len(store.scan("d365", contract.source_object))
        assert fetched == expected > 0 and inserted + quarantined == fetched and deleted == 0, contract.key
    assert loaded["d365__customers"][4] == 1
    with warehouse.connect() as con:
        reasons = con.execute("SELECT source_id, rule FROM ops.quarantine WHERE entity_key = 'd365__customers' "
                              "AND resolved_at IS NULL").fetchall()
        companies = con.execute("SELECT count(DISTINCT dataareaid) FROM raw_d365.customers").fetchone()[0]
        rate = con.execute("SELECT startdate, rate FROM raw_d365.exchange_rates LIMIT 1").fetchone()
    assert [(source_id, "salescurrencycode" in rule) for source_id, rule in reasons] == \
        [(f"{bad['dataAreaId']}|{bad['CustomerAccount']}", True)]
    assert companies > 1
    assert getattr(rate[0], "hour", 0) == 0 and rate[1] > 0  # a calendar date, not noon UTC
    checks = {(e.asset_key, e.check_name): e for e in first.get_asset_check_evaluations()}
    assert not checks[(AssetKey(["raw", "d365", "customers"]), "contract_valid")].passed
    assert checks[(AssetKey(["raw", "d365", "projects"]), "contract_valid")].passed

    sandbox.control("POST", "events/delete", {"platform": "d365", "object": "CustomersV3",
                                              "id": d365_data.store_id(CUSTOMERS, gone), "hard": True})
    second = _materialize(sandbox, warehouse_path)
    again = _runs(warehouse, second.run_id)
    assert again["d365__customers"][1:4] == (0, 0, 1)
    assert all(again[c.key][1:4] == (0, 0, 0) for c in d365.ALL if c is not d365.CUSTOMERS)
    with warehouse.connect() as con:
        deleted = con.execute("SELECT dataareaid, customeraccount FROM raw_d365.customers WHERE _is_deleted"
                              ).fetchall()
    assert deleted == [(gone["dataAreaId"], gone["CustomerAccount"])]
