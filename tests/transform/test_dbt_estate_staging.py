"""HubSpot and Certinia staging (issue 13): built with dbt on raw tables ingested from the
sandbox, only when the estate declares them, with the columns of the Salesforce and Kantata
staging models they stand beside."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from ps_pipelines.lib.contracts import certinia, hubspot, kantata, netsuite, salesforce
from ps_pipelines.lib.ingestion import ingest_entity
from ps_pipelines.lib.sources.hubspot import HubSpotClient
from ps_pipelines.lib.sources.salesforce import SalesforceClient
from ps_pipelines.lib.warehouse.warehouse import Warehouse, ensure_raw_table
from ps_sandbox.context import DEFAULT_CREDENTIALS
from tests.conftest import RunningSandbox
from tests.transform.test_dbt_foundation import dbt_or_fail

ESTATE = "hubspot,certinia,workday,netsuite"
STAGED = ["stg_hubspot__companies", "stg_hubspot__contacts", "stg_hubspot__deals", "stg_hubspot__line_items",
          "stg_certinia__projects", "stg_certinia__timecards", "stg_certinia__expenses", "stg_certinia__milestones",
          "stg_certinia__resources", "stg_certinia__rate_cards"]
# Each new staging model beside the default estate's model of the same role: the columns the
# intermediate layer unions.
SAME_ROLE = {"stg_hubspot__companies": "stg_salesforce__accounts", "stg_hubspot__contacts": "stg_salesforce__contacts",
             "stg_hubspot__deals": "stg_salesforce__opportunities",
             "stg_certinia__projects": "stg_kantata__projects", "stg_certinia__timecards": "stg_kantata__time_entries",
             "stg_certinia__expenses": "stg_kantata__expenses", "stg_certinia__milestones": "stg_kantata__milestones",
             "stg_certinia__resources": "stg_kantata__users"}


@pytest.fixture
def built(certinia_sandbox: RunningSandbox, tmp_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """The HubSpot and Certinia raw tables loaded from the sandbox, and their staging (plus the
    default estate's staging, to compare columns) built with dbt for a declaring estate."""
    warehouse = Warehouse(tmp_path / "warehouse.duckdb")
    crm = HubSpotClient(certinia_sandbox.url, DEFAULT_CREDENTIALS["hubspot"]["token"])
    psa = SalesforceClient(certinia_sandbox.url, **DEFAULT_CREDENTIALS["salesforce"])
    for client, contracts in ((crm, hubspot.ALL), (psa, certinia.ALL)):
        for contract in contracts:
            ingest_entity(client, warehouse, contract, run_id="estate-staging")
    vars_ = ["--vars", json.dumps({"estate": ESTATE})]
    results = dbt_or_fail(["build", "--select", "staging.hubspot", "staging.certinia", *vars_],
                          warehouse.path, tmp_path)
    assert {r["status"] for r in results["results"]} <= {"success", "pass"}, results["results"]
    # The default estate's staging on empty raw tables (its columns are compared), and the CRM
    # side of customer identity, which unions the declared CRMs.
    with warehouse.connect() as con:
        for contract in (*salesforce.ALL, *kantata.ALL, *netsuite.ALL):
            ensure_raw_table(con, contract)
    dbt_or_fail(["build", "--select", "staging.salesforce", "staging.kantata", "staging.netsuite", "int_crm_accounts",
                 "int_erp_customers", "int_customer_identity", *vars_], warehouse.path, tmp_path)
    con = duckdb.connect(str(warehouse.path), read_only=True)
    try:
        yield con
    finally:
        con.close()


def _columns(con: duckdb.DuckDBPyConnection, model: str) -> dict[str, str]:
    """Column name -> type of a staging view."""
    return dict(con.execute(
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = 'staging' "
        "AND table_name = ?", [model]).fetchall())


def test_hubspot_and_certinia_staging_build_with_the_default_estates_columns(
        built: duckdb.DuckDBPyConnection) -> None:
    counts = {model: built.execute(f"SELECT count(*) FROM staging.{model}").fetchone()[0] for model in STAGED}
    assert all(counts.values()), counts
    for model, default in SAME_ROLE.items():
        theirs, ours = _columns(built, default), _columns(built, model)
        differ = {name: (kind, ours.get(name)) for name, kind in theirs.items() if ours.get(name) != kind}
        assert not differ, f"{model} against {default}: {differ}"


def test_a_timecard_becomes_one_row_per_day_with_hours(built: duckdb.DuckDBPyConnection) -> None:
    raw = built.execute("""
        SELECT count(*) FILTER (WHERE d > 0), sum(d)
        FROM raw_certinia.timecards,
             unnest([pse__monday_hours__c, pse__tuesday_hours__c, pse__wednesday_hours__c, pse__thursday_hours__c,
                     pse__friday_hours__c, pse__saturday_hours__c, pse__sunday_hours__c]) AS t(d)""").fetchone()
    staged = built.execute("SELECT count(*), sum(hours), min(hours) FROM staging.stg_certinia__timecards").fetchone()
    assert staged[0] == raw[0] and staged[1] == pytest.approx(raw[1]) and staged[2] > 0
    # Each day falls inside its timecard's week, on the weekday it was logged for.
    wrong = built.execute("""
        SELECT count(*) FROM staging.stg_certinia__timecards s JOIN raw_certinia.timecards r ON s.timecard_id = r.id
        WHERE s.work_date NOT BETWEEN r.pse__start_date__c AND r.pse__start_date__c + 6
           OR lower(dayname(s.work_date)) <> split_part(s.time_entry_id, ':', 2)""").fetchone()[0]
    assert wrong == 0


def test_hubspot_deals_read_as_opportunities(built: duckdb.DuckDBPyConnection) -> None:
    stages = dict(built.execute("""
        SELECT stage_name, bool_and(is_won = (stage_name = 'Closed Won')) FROM staging.stg_hubspot__deals
        GROUP BY 1""").fetchall())
    assert {"Closed Won", "Closed Lost"} <= set(stages) and all(stages.values())
    assert built.execute("SELECT max(probability_pct) FROM staging.stg_hubspot__deals").fetchone()[0] == 100


def test_hubspot_deals_have_their_company_and_line_items_their_deal(built: duckdb.DuckDBPyConnection) -> None:
    """The associations ingestion folded into the raw rows: every generated deal has a company,
    every line item a deal, each one that staging holds."""
    deals = built.execute("""
        SELECT count(*), count(d.account_id), count(c.account_id) FROM staging.stg_hubspot__deals d
        LEFT JOIN staging.stg_hubspot__companies c ON c.account_id = d.account_id""").fetchone()
    assert deals[0] == deals[1] == deals[2] > 0
    lines = built.execute("""
        SELECT count(*), count(l.deal_id), count(d.opportunity_id) FROM staging.stg_hubspot__line_items l
        LEFT JOIN staging.stg_hubspot__deals d ON d.opportunity_id = l.deal_id""").fetchone()
    assert lines[0] == lines[1] == lines[2] > 0


def test_the_default_estate_leaves_hubspot_and_certinia_out_of_the_dbt_graph(tmp_path: Path,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PS_ESTATE", raising=False)
    dbt_or_fail(["parse"], tmp_path / "unused.duckdb", tmp_path)
    manifest = json.loads((tmp_path / "target" / "manifest.json").read_text())
    names = {node["name"] for node in manifest["nodes"].values()}
    sources = {source["source_name"] for source in manifest["sources"].values()}
    assert "stg_salesforce__accounts" in names and not {n for n in names if n.startswith(("stg_hubspot", "stg_cert"))}
    assert "hubspot" not in sources and "certinia" not in sources


def test_hubspot_companies_are_customers_of_their_own_crm(built: duckdb.DuckDBPyConnection) -> None:
    companies = built.execute("SELECT count(*) FROM staging.stg_hubspot__companies").fetchone()[0]
    identity = built.execute("""
        SELECT count(*), count(DISTINCT customer_key), bool_and(match_method = 'crm_only'),
               bool_and(crm_account_id = source_record_id)
        FROM intermediate.int_customer_identity WHERE source_system = 'hubspot'""").fetchone()
    assert identity == (companies, companies, True, True)
    assert built.execute("SELECT DISTINCT crm_platform FROM intermediate.int_crm_accounts").fetchall() == [
        ("hubspot",)], "Salesforce's raw tables are empty in this estate"
