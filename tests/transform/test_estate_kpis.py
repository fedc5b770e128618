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
from dataclasses import replace
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

# Without the deliberately bad rows: a bad day quarantines a whole Certinia timecard (the record
# is the week), where Kantata quarantines the one entry, so the figures differ by design there.
CLEAN = replace(CERTINIA, bad_rows=False)
BOTH_PSAS = Estate.parse("salesforce,kantata,certinia,workday,netsuite")
ESTATES = {"kantata": "salesforce,kantata,workday,netsuite", "certinia": "salesforce,certinia,workday,netsuite"}
# Per KPI mart (and the facts and outbound model they rest on): the figures that must not
# depend on the PSA (sums), and the grain they are compared at, one the PSA does not decide
# (worker and week, customer, month: project keys differ, as they name the PSA).
FIGURES: dict[str, tuple[str, list[str]]] = {
    "kpi_utilization_weekly": ("worker_key, week_start_date", ["capacity_hours", "logged_hours", "billable_hours"]),
    # Not the standard-rate value: Kantata pins a project to a rate card version, Certinia prices
    # from the cards in effect on the work date, so the PSAs define it differently.
    "kpi_realization": ("month_start_date", ["approved_billable_hours", "value_at_bill_rate_reporting",
                                             "billed_amount_reporting"]),
    "kpi_unbilled_wip": ("customer_key", ["unbilled_hours", "unbilled_amount_reporting"]),
    "kpi_project_margin": ("month_start_date", ["hours_worked", "recognized_revenue_reporting",
                                                "labour_cost_reporting", "margin_reporting"]),
    "fct_billable_items": ("customer_key, source_type", ["quantity", "amount_reporting"]),
    # What billing would invoice: per customer, period and currency, as NetSuite would receive it.
    "outbound.erp_billing_transactions": ("customer_key, billing_period, currency_code", ["quantity", "amount"]),
}


@pytest.fixture(scope="module")
def warehouses(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    """Both PSAs ingested once from one sandbox; the dbt project built on a copy per estate."""
    work = tmp_path_factory.mktemp("estate-kpis")
    state = work / "sandbox.sqlite"
    server = start_server(open_sandbox(state, CLEAN), port=0)
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
        relation = table if "." in table else f"marts.{table}"
        rows = con.execute(f"SELECT {grain}, {sums} FROM {relation} GROUP BY ALL").fetchall()
    width = len(grain.split(","))
    return {row[:width]: tuple(Decimal(v) if v is not None else None for v in row[width:]) for row in rows}


def same(kantata: Decimal | None, certinia: Decimal | None, column: str) -> bool:
    """Hours and counts exactly; money to the cent, give or take the rounding of each Kantata
    entry where Certinia keeps the day (a timecard's day is one record): at most a cent per
    million of the figure, and never more than a few cents."""
    if kantata is None or certinia is None or "hours" in column or "quantity" in column:
        return kantata == certinia
    return abs(kantata - certinia) <= max(Decimal("0.05"), abs(kantata) * Decimal("0.000001"))


@pytest.mark.parametrize("table", sorted(FIGURES))
def test_the_same_business_gives_the_same_figures_on_kantata_and_on_certinia(
        warehouses: dict[str, Path], table: str) -> None:
    on_kantata, on_certinia = figures(warehouses["kantata"], table), figures(warehouses["certinia"], table)
    assert on_kantata, f"{table} is empty on the Kantata estate"
    columns = FIGURES[table][1]
    differ = {key: (on_kantata.get(key), on_certinia.get(key)) for key in on_kantata.keys() | on_certinia.keys()
              if key not in on_kantata or key not in on_certinia
              or not all(same(k, c, column) for k, c, column in zip(on_kantata[key], on_certinia[key], columns,
                                                                     strict=True))}
    assert not differ, f"{table}: {len(differ)} of {len(on_kantata)} groups differ, e.g. {list(differ.items())[:5]}"
