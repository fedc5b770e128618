"""Facts, KPI marts and outbound models on a real ingested sandbox: full build, then incremental.

One warehouse per session (shared by pytest-xdist workers through ``build_once``, as in
``test_dbt_foundation``), built in four steps whose results are kept for the tests:

1. the sandbox, served over real HTTP, is ingested by the real ingestion assets and the whole
   dbt project is built (seeds, models, data tests, unit tests);
2. in the sandbox (control API) one time entry gets an hour more and another is hard-deleted;
   the time entries are re-ingested with a full snapshot (Kantata has no delete feed: a
   snapshot is how a delete is noticed, and it flags the raw row without restamping it);
   a fact row the change does not touch is tampered with in the warehouse;
3. ``dbt build`` of everything downstream of the time-entry fact runs incrementally;
4. the same models are rebuilt with ``--full-refresh``, which must give the same answer.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest
import requests
from dagster import AssetKey, materialize

from ps_pipelines.ingest.catalog import ingest_assets
from ps_pipelines.lib.writeback.contracts import exact_decimal, round_money
from ps_pipelines.resources import build_resources
from ps_sandbox.app import open_sandbox, start_server
from ps_sandbox.context import SandboxConfig
from tests.conftest import TEST_SCALE, TEST_SEED
from tests.transform.test_dbt_foundation import BuiltWarehouse, build_once, dbt_or_fail

TIME_ENTRIES = AssetKey(["raw", "kantata", "time_entries"])
DOWNSTREAM_OF_TIME = "fct_time_entries+"
PASSED = {"success", "pass"}
FACTS = {"fct_opportunities", "fct_time_entries", "fct_expenses", "fct_milestones", "fct_invoice_lines",
         "fct_billable_items"}
KPIS = {"kpi_utilization_weekly", "kpi_realization", "kpi_effective_bill_rate", "kpi_project_margin",
        "kpi_unbilled_wip", "kpi_time_to_bill", "kpi_revenue_leakage", "kpi_project_setup_cycle_time",
        "kpi_bookings_backlog", "kpi_master_data_drift"}
OUTBOUND = {"erp_project_activation_requests", "erp_billing_transactions"}
# Every column of the fact but the one tampered with, to compare an incremental and a full build.
FACT_CHECKSUM = """
    SELECT count(*), sum(hash(time_entry_id, project_key, worker_key, hours, is_deleted, bill_rate,
                              billable_amount, billable_amount_reporting, cost_amount, loaded_at))
    FROM marts.fct_time_entries"""
OUTBOUND_IDS = "SELECT line_external_id, invoice_external_id, amount::DOUBLE FROM outbound.erp_billing_transactions"
# Contract and materialization of the public models, from the manifest of the full build.
CONTRACTED = {"marts": FACTS | KPIS, "outbound": OUTBOUND}


# -- the session build -------------------------------------------------------------------------
def _rows(warehouse: Path, sql: str, params: list[Any] | None = None) -> list[list[Any]]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return [list(row) for row in con.execute(sql, params or []).fetchall()]


def _ingest(url: str, warehouse: Path, *, only_time_entries: bool = False) -> None:
    resources = build_resources("local", sandbox_url=url, warehouse_path=str(warehouse))
    if not only_time_entries:
        assert materialize(ingest_assets, resources=resources, raise_on_error=True).success
        return
    asset = next(a for a in ingest_assets if TIME_ENTRIES in a.keys)
    run_config = {"ops": {asset.op.name: {"config": {"full_refresh": True}}}}
    assert materialize([asset], resources=resources, run_config=run_config, raise_on_error=True).success


def _change_and_delete_in_sandbox(url: str, changed_id: str, deleted_id: str) -> None:
    """One more hour on one entry (a new version, as the PSA would write it); a hard delete."""
    control = f"{url}/_sandbox"
    body = requests.get(f"{control}/records/kantata/time_entries/{changed_id}", timeout=30).json()
    now = datetime.fromisoformat(requests.get(f"{control}/clock", timeout=30).json()["now"])
    body["time_in_minutes"] += 60
    body["updated_at"] = now.strftime("%Y-%m-%dT%H:%M:%S+00:00")
    requests.post(f"{control}/records/kantata/time_entries", json={"id": changed_id, "body": body},
                  timeout=30).raise_for_status()
    requests.post(f"{control}/events/delete", timeout=30, json={
        "platform": "kantata", "object": "time_entries", "id": deleted_id, "hard": True}).raise_for_status()


def _contracts(manifest_path: Path) -> dict[str, list[Any]]:
    """Model name -> [schema, materialization, contract enforced] for the models under test."""
    nodes = json.loads(manifest_path.read_text())["nodes"].values()
    wanted = FACTS | KPIS | OUTBOUND
    return {n["name"]: [n["schema"], n["config"]["materialized"], n["config"]["contract"]["enforced"]]
            for n in nodes if n["resource_type"] == "model" and n["name"] in wanted}


def _tamper(warehouse: Path, time_entry_id: str) -> None:
    """Mark a fact row an incremental build has no reason to touch: it must stay marked."""
    with duckdb.connect(str(warehouse)) as con:
        con.execute("UPDATE marts.fct_time_entries SET worker_role = 'tampered' WHERE time_entry_id = ?",
                    [time_entry_id])


def build_full_then_incremental(template: Path, work_dir: Path, warehouse: Path) -> dict[str, Any]:
    state = work_dir / "sandbox.sqlite"
    shutil.copyfile(template, state)
    server = start_server(open_sandbox(state, SandboxConfig(seed=TEST_SEED, scale=TEST_SCALE)), port=0)
    url = f"http://127.0.0.1:{server.server_port}"
    try:
        _ingest(url, warehouse)
        full = dbt_or_fail(["build"], warehouse, work_dir)
        contracts = _contracts(work_dir / "target" / "manifest.json")
        # Three approved billable entries about to be invoiced: change, delete, tamper.
        picked = [row[0] for row in _rows(warehouse, """
            SELECT source_id FROM outbound.erp_billing_transactions
            WHERE source_type = 'time_entry' ORDER BY source_id LIMIT 3""")]
        assert len(picked) == 3, "the sandbox has no unbilled approved time to work with"
        changed, deleted, tampered = picked
        before = {
            "entries": _rows(warehouse, """
                SELECT time_entry_id, hours, bill_rate::DOUBLE, billable_amount::DOUBLE FROM marts.fct_time_entries
                WHERE time_entry_id IN (?, ?)""", [changed, deleted]),
            "outbound": _rows(warehouse, OUTBOUND_IDS),
        }
        _change_and_delete_in_sandbox(url, changed, deleted)
        _ingest(url, warehouse, only_time_entries=True)
    finally:
        server.shutdown()
        server.server_close()
    _tamper(warehouse, tampered)
    incremental = dbt_or_fail(["build", "--select", DOWNSTREAM_OF_TIME, "--exclude", "test_type:unit"],
                              warehouse, work_dir)
    after = {
        "entries": _rows(warehouse, """
            SELECT time_entry_id, hours, bill_rate::DOUBLE, billable_amount::DOUBLE, is_deleted, worker_role
            FROM marts.fct_time_entries WHERE time_entry_id IN (?, ?, ?)""", [changed, deleted, tampered]),
        "fact_checksum": _rows(warehouse, FACT_CHECKSUM),
        "outbound": _rows(warehouse, OUTBOUND_IDS),
    }
    dbt_or_fail(["run", "--full-refresh", "--select", DOWNSTREAM_OF_TIME], warehouse, work_dir)
    rebuilt = {"fact_checksum": _rows(warehouse, FACT_CHECKSUM), "outbound": _rows(warehouse, OUTBOUND_IDS)}
    ids = {"changed": changed, "deleted": deleted, "tampered": tampered}
    return {"full": full, "contracts": contracts, "incremental": incremental, "ids": ids,
            "before": before, "after": after, "rebuilt": rebuilt}


@pytest.fixture(scope="module")
def marts(sandbox_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BuiltWarehouse]:
    def build(work_dir: Path, warehouse: Path) -> dict[str, Any]:
        return build_full_then_incremental(sandbox_template, work_dir, warehouse)

    yield from build_once(tmp_path_factory, "dbt_marts", build)


def _statuses(run_results: dict[str, Any]) -> dict[str, str]:
    return {r["unique_id"]: r["status"] for r in run_results["results"]}


def _names(run_results: dict[str, Any], kind: str) -> set[str]:
    return {uid.rsplit(".", 1)[-1] for uid in _statuses(run_results) if uid.startswith(f"{kind}.")}


# -- the full build ------------------------------------------------------------------------------
def test_full_build_passes_every_model_data_test_and_unit_test(marts: BuiltWarehouse) -> None:
    full = marts.run_results["full"]
    failed = {uid: status for uid, status in _statuses(full).items() if status not in PASSED}
    assert not failed
    assert _names(full, "model") >= FACTS | KPIS | OUTBOUND
    unit_tests = _names(full, "unit_test")
    assert {"time_entry_rates_resolve_as_of_the_work_date", "expenses_convert_to_reporting_and_functional_currency",
            "billable_items_find_the_invoice_that_covers_them", "billing_transactions_group_lines_into_invoices",
            "utilization_is_billable_hours_over_capacity", "realization_has_three_stages"} <= unit_tests
    singular = {"assert_erp_invoice_total_equals_sum_of_lines", "assert_billing_invoice_amount_equals_sum_of_lines",
                "assert_no_negative_hours", "assert_every_billable_approved_entry_priced",
                "assert_incremental_facts_match_staging", "assert_billing_excludes_invoiced_work"}
    assert singular <= _names(full, "test")


def test_every_fact_kpi_and_outbound_model_is_a_contracted_table(marts: BuiltWarehouse) -> None:
    contracts = marts.run_results["contracts"]
    incremental = {"fct_time_entries", "fct_expenses", "fct_invoice_lines"}
    expected = {name: [schema, "incremental" if name in incremental else "table", True]
                for schema, names in CONTRACTED.items() for name in names}
    assert contracts == expected
    tables = {(schema, name) for schema, name in marts.rows(
        "SELECT table_schema, table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE'")}
    assert {(schema, name) for name, (schema, _, _) in expected.items()} <= tables


# -- incremental builds ---------------------------------------------------------------------------
def test_incremental_build_carries_a_changed_and_a_deleted_time_entry(marts: BuiltWarehouse) -> None:
    ids, before, after = marts.run_results["ids"], marts.run_results["before"], marts.run_results["after"]
    assert {s for s in _statuses(marts.run_results["incremental"]).values()} <= PASSED
    was = {row[0]: row for row in before["entries"]}
    now = {row[0]: row for row in after["entries"]}
    _, hours, rate, amount = was[ids["changed"]]
    repriced = round_money((exact_decimal(hours) + 1) * exact_decimal(rate), "USD")  # the warehouse's rule
    assert now[ids["changed"]][1:5] == [hours + 1, rate, pytest.approx(float(repriced)), False]
    assert now[ids["changed"]][3] != amount
    assert now[ids["deleted"]][4] is True  # a hard delete does not restamp the raw row
    # Only the changed rows were rebuilt: the tampered row kept the mark.
    assert now[ids["tampered"]][5] == "tampered"


def test_incremental_result_equals_a_full_refresh(marts: BuiltWarehouse) -> None:
    after, rebuilt = marts.run_results["after"], marts.run_results["rebuilt"]
    assert after["fact_checksum"] == rebuilt["fact_checksum"]
    assert sorted(after["outbound"]) == sorted(rebuilt["outbound"])


# -- outbound ids --------------------------------------------------------------------------------
def test_outbound_external_ids_are_deterministic_across_builds(marts: BuiltWarehouse) -> None:
    ids = marts.run_results["ids"]
    before = {line: (invoice, amount) for line, invoice, amount in marts.run_results["before"]["outbound"]}
    after = {line: (invoice, amount) for line, invoice, amount in marts.run_results["after"]["outbound"]}
    changed, deleted = (f"psp:inl:time_entry:{ids[k]}" for k in ("changed", "deleted"))
    assert deleted in before and deleted not in after
    assert set(after) == set(before) - {deleted}
    assert after[changed][0] == before[changed][0] and after[changed][1] != before[changed][1]
    unchanged = set(before) - {changed, deleted}
    assert {k: before[k] for k in unchanged} == {k: after[k] for k in unchanged}


def test_outbound_ids_are_built_from_their_source_keys(marts: BuiltWarehouse) -> None:
    lines = marts.rows("""
        SELECT line_external_id, source_type, source_id, invoice_external_id, psa_project_id,
               coalesce(erp_subsidiary_id, '_'), currency_code, billing_period, amount
        FROM outbound.erp_billing_transactions""")
    assert lines
    for line_id, source_type, source_id, invoice_id, project, subsidiary, currency, period, amount in lines:
        assert line_id == f"psp:inl:{source_type}:{source_id}"
        assert invoice_id == f"psp:inv:{project}:{subsidiary}:{currency}:{period}"
        assert re.fullmatch(r"\d{4}-\d{2}", period)
        assert amount == round(amount, 2)
    requests_ = marts.rows("SELECT activation_request_id, opportunity_id FROM outbound.erp_project_activation_requests")
    assert all(request_id == f"psp:act:{opportunity}" for request_id, opportunity in requests_)


def test_billing_never_resends_invoiced_work_or_work_before_the_start(marts: BuiltWarehouse) -> None:
    assert marts.scalar("""
        SELECT count(*) FROM outbound.erp_billing_transactions b
        JOIN marts.fct_billable_items i USING (line_external_id)
        WHERE i.coverage_method IN ('manual_period', 'manual_milestone')
           OR b.billing_period_start < DATE '2026-09-01'""") == 0
    # The sandbox invoiced the months that closed more than six weeks ago by hand.
    assert marts.scalar("SELECT count(*) FROM marts.fct_billable_items WHERE coverage_method = 'manual_period'") > 0


# -- KPI values ------------------------------------------------------------------------------------
def test_kpis_are_in_sane_ranges(marts: BuiltWarehouse) -> None:
    utilization = marts.scalar("SELECT sum(billable_hours) / sum(capacity_hours) FROM marts.kpi_utilization_weekly")
    assert 0 < utilization < 1.5
    rate, billing, collection = marts.rows("""
        SELECT sum(value_at_bill_rate_reporting) / sum(value_at_standard_rate_reporting),
               sum(billed_amount_reporting) FILTER (WHERE is_invoiced_period)
                 / sum(billable_value_reporting) FILTER (WHERE is_invoiced_period),
               sum(collected_amount_reporting) / sum(billed_amount_reporting)
        FROM marts.kpi_realization""")[0]
    assert 0.5 < rate <= 1.2 and 0.5 < billing <= 1.2 and 0 <= collection <= 1
    margin = marts.scalar(
        "SELECT sum(margin_reporting) / sum(recognized_revenue_reporting) FROM marts.kpi_project_margin")
    assert -1 < margin < 1
    assert marts.scalar("SELECT sum(unbilled_amount_reporting) FROM marts.kpi_unbilled_wip") > 0
    assert marts.scalar("SELECT min(p50_days_to_invoice) FROM marts.kpi_time_to_bill") >= 0
    assert marts.scalar("SELECT count(*) FROM marts.kpi_project_setup_cycle_time WHERE setup_status = 'complete'") > 0
    assert marts.scalar("SELECT min(backlog_reporting) FROM marts.kpi_bookings_backlog") >= 0
