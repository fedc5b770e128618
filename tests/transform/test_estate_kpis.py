"""One canonical model whatever the PSA (issue 13): the same business recorded in Kantata or in
Certinia gives the same KPI figures.

The sandbox's Certinia org records the very hours, expenses and milestones generated for the
firm's Kantata tenant (ps_sandbox/certinia_data.py), so one ingestion of both PSAs, built once
as a Salesforce + Kantata estate and once as a Salesforce + Certinia estate, must give the same
utilization, realization, unbilled WIP, margin and billable (invoice) totals, checked as
``decimal.Decimal``.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest
from dagster import materialize

from ps_pipelines.estate import Estate
from ps_pipelines.ingest.catalog import estate_ingest_assets
from ps_pipelines.resources import build_resources, estate_resources
from ps_sandbox.app import open_sandbox, start_server
from tests.conftest import CERTINIA
from tests.transform.test_dbt_foundation import dbt_or_fail

BOTH_PSAS = Estate.parse("salesforce,kantata,certinia,workday,netsuite")
ESTATES = {"kantata": "salesforce,kantata,workday,netsuite", "certinia": "salesforce,certinia,workday,netsuite"}
# Per KPI mart: the figures that must not depend on the PSA (sums over the whole mart), and the
# grain they are compared at, one the PSA does not decide (worker and week, customer, month:
# project keys differ, as they name the PSA).
FIGURES: dict[str, tuple[str, list[str]]] = {
    "kpi_utilization_weekly": ("worker_key, week_start_date", ["capacity_hours", "logged_hours", "billable_hours"]),
    "kpi_realization": ("month_start_date", ["approved_billable_hours", "value_at_bill_rate_reporting",
                                             "value_at_standard_rate_reporting", "billed_amount_reporting"]),
    "kpi_unbilled_wip": ("customer_key", ["unbilled_item_count", "unbilled_hours", "unbilled_amount_reporting"]),
    "kpi_project_margin": ("month_start_date", ["hours_worked", "recognized_revenue_reporting",
                                                "labour_cost_reporting", "margin_reporting"]),
    "fct_billable_items": ("customer_key, source_type", ["quantity", "amount_reporting"]),
}


@pytest.fixture(scope="module")
def warehouses(certinia_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    """Both PSAs ingested once from one sandbox; the dbt project built on a copy per estate."""
    work = tmp_path_factory.mktemp("estate-kpis")
    state = work / "sandbox.sqlite"
    shutil.copyfile(certinia_template, state)
    server = start_server(open_sandbox(state, CERTINIA), port=0)
    url = f"http://127.0.0.1:{server.server_port}"
    raw = work / "raw.duckdb"
    try:
        resources = {**build_resources("local", sandbox_url=url, warehouse_path=str(raw)),
                     **estate_resources(BOTH_PSAS, sandbox_url=url)}
        assert materialize(estate_ingest_assets(BOTH_PSAS), resources=resources, raise_on_error=True).success
    finally:
        server.shutdown()
    built = {}
    for psa, estate in ESTATES.items():
        (work / psa).mkdir()
        built[psa] = work / psa / "warehouse.duckdb"
        shutil.copyfile(raw, built[psa])
        build = ["build", "--exclude-resource-type", "unit_test", "--vars", json.dumps({"estate": estate})]
        results = dbt_or_fail(build, built[psa], work / psa)
        assert {r["status"] for r in results["results"]} <= {"success", "pass"}
    yield built


def figures(warehouse: Path, table: str) -> dict[Any, tuple[Decimal, ...]]:
    grain, columns = FIGURES[table]
    sums = ", ".join(f"CAST(sum({column}) AS VARCHAR)" for column in columns)
    with duckdb.connect(str(warehouse), read_only=True) as con:
        rows = con.execute(f"SELECT {grain}, {sums} FROM marts.{table} GROUP BY ALL").fetchall()
    width = len(grain.split(","))
    return {row[:width]: tuple(Decimal(v) if v is not None else None for v in row[width:]) for row in rows}


@pytest.mark.parametrize("table", sorted(FIGURES))
def test_the_same_business_gives_the_same_figures_on_kantata_and_on_certinia(
        warehouses: dict[str, Path], table: str) -> None:
    on_kantata, on_certinia = figures(warehouses["kantata"], table), figures(warehouses["certinia"], table)
    assert on_kantata, f"{table} is empty on the Kantata estate"
    differ = {key: (on_kantata.get(key), on_certinia.get(key)) for key in on_kantata.keys() | on_certinia.keys()
              if on_kantata.get(key) != on_certinia.get(key)}
    assert not differ, f"{table}: {len(differ)} of {len(on_kantata)} groups differ, e.g. {list(differ.items())[:5]}"
