"""The dbt foundation (staging, intermediate, core dimensions) built on real raw warehouses.

Two warehouses, each built once per module:

* ``pipeline``: the sandbox ingested by the real Dagster ingestion assets over HTTP, then
  ``dbt parse`` and ``dbt build`` of staging, intermediate and marts.core (models, every data
  test and the unit tests) must pass, and the dimensions must cover the raw data.
* ``handmade``: small API records written the way ingestion writes them (contract
  validation, ``upsert_rows``, ``mark_deleted``) whose cross-system links and drift are known,
  so identity rules, authority per attribute, deletes and conversions are asserted exactly.

dbt runs as a subprocess with its own target and log folders, against each DuckDB file.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest
from dagster import materialize

from ps_pipelines.ingest.catalog import ingest_assets
from ps_pipelines.lib.contracts import kantata, netsuite, salesforce, workday
from ps_pipelines.lib.contracts.base import Record
from ps_pipelines.lib.contracts.validate import validate_records
from ps_pipelines.lib.warehouse.lock import exclusive_lock
from ps_pipelines.lib.warehouse.warehouse import Warehouse, ensure_raw_table, mark_deleted, upsert_rows
from ps_pipelines.resources import build_resources
from ps_sandbox.app import open_sandbox, start_server
from ps_sandbox.context import SandboxConfig
from tests.conftest import TEST_SCALE, TEST_SEED

DBT_PROJECT = Path(__file__).resolve().parents[2] / "dbt_project"
DBT = Path(sys.executable).with_name("dbt")
# dim_worker reads the seed work_location_countries (a worker's region is its location's).
SELECTION = "staging intermediate marts.core work_location_countries"
FOUNDATION_MODELS = {
    *(f"stg_{c.platform}__{c.entity}" for c in (*salesforce.ALL, *kantata.ALL, *workday.ALL, *netsuite.ALL)),
    *(f"int_erp_{entity}" for entity in ("legal_entities", "currencies", "exchange_rates", "customers", "projects",
                                         "invoices", "invoice_lines")),
    "int_erp_currency_refs", "int_customer_identity", "int_project_identity", "int_worker_identity",
    "int_rate_card_rates", "int_worker_cost_rates", "int_exchange_rates_daily",
    "dim_customer", "dim_project", "dim_worker", "dim_contract", "dim_rate_card", "dim_legal_entity",
    "dim_currency", "dim_currency_rates_daily", "dim_date",
}
LOADED_AT = datetime(2026, 10, 31, 12, 0, tzinfo=UTC)

SF_TS = "2026-10-01T12:00:00.000+0000"
KT_TS = "2026-10-01T12:00:00+00:00"
NS_TS = "2026-10-01T12:00:00Z"
WD_TS = "2026-10-01T12:00:00.000+00:00"


# -- hand-made source records (API wire format) ----------------------------------------------
def _sf(record_id: str, **fields: Any) -> Record:
    return {"Id": record_id, "IsDeleted": False, "CreatedDate": SF_TS, "SystemModstamp": SF_TS, **fields}


def _account(record_id: str, name: str, **fields: Any) -> Record:
    return _sf(record_id, **{"Name": name, "CurrencyIsoCode": "USD", "Legal_Entity__c": "PS US Inc", **fields})


def _opportunity(record_id: str, account: str, stage: str, **fields: Any) -> Record:
    won = stage == "Closed Won"
    defaults = {"AccountId": account, "Name": f"Deal {record_id}", "StageName": stage, "Amount": 100000.0,
                "CurrencyIsoCode": "USD", "CloseDate": "2026-09-15", "IsWon": won,
                "IsClosed": stage.startswith("Closed"), "Probability": 100.0 if won else 60.0,
                "Billing_Model__c": "Time and Materials", "Legal_Entity__c": "PS US Inc"}
    return _sf(record_id, **{**defaults, **fields})


def _kt(record_id: str, **fields: Any) -> Record:
    return {"id": record_id, "created_at": KT_TS, "updated_at": KT_TS, **fields}


def _workspace(record_id: str, opportunity: str | None, currency: str, status_key: int, message: str) -> Record:
    # The link to the CRM deal is the workspace's external reference, folded in by the connector.
    link = {} if opportunity is None else {"external_reference": {
        "id": f"90{record_id}", "service_name": "Salesforce", "service_model": "Opportunity",
        "service_model_ref": opportunity, "subject_type": "Workspace", "subject_id": record_id}}
    return _kt(record_id, title=f"Project {record_id}", currency=currency, price_in_cents=5_000_000,
               start_date="2026-09-20", due_date="2027-03-31", archived=False, rate_card_id="11",
               status={"color": "green", "key": status_key, "message": message}, **link)


def _submission(record_id: str, status: str, resolved: str | None = None) -> Record:
    """A timesheet or expense report submission as the connector folds it in (``recent_submission``)."""
    return {"id": record_id, "status": status, "current_resolution_created_at_date": resolved,
            "created_at": KT_TS, "updated_at": resolved or KT_TS}


def _user(record_id: str, **fields: Any) -> Record:
    return {"id": record_id, **fields}  # Kantata documents no created/updated time on a user


def _rate_card(version_id: str, card_id: str, title: str, currency: str, effective: str,
               rates: list[tuple[str, int]]) -> Record:
    """A rate card version with its card, set version and rate card roles folded in."""
    return {"id": version_id, "rate_card_id": card_id, "created_at": KT_TS, "updated_at": KT_TS,
            "rate_card": {"id": card_id, "currency": currency, "rate_card_set_title": title},
            "rate_card_set_version": {"id": f"7{version_id}", "effective_date": effective},
            "rate_card_roles": [{"id": f"{version_id}{n}", "rate": rate, "role_id": str(n), "role_name": role}
                                for n, (role, rate) in enumerate(rates)]}


def _ns(record_id: str, **fields: Any) -> Record:
    # SuiteQL answers every value as a string and booleans as "T"/"F".
    return {"id": record_id, "lastmodifieddate": NS_TS, **fields}


def _customer(record_id: str, name: str, external: str | None, currency: str = "1", subsidiary: str = "1",
              inactive: str = "F") -> Record:
    return _ns(record_id, entityid=f"CUST-{record_id}", companyname=name, externalid=external,
               subsidiary=subsidiary, currency=currency, isinactive=inactive, datecreated=NS_TS)


def _job(record_id: str, parent: str, external: str | None) -> Record:
    return _ns(record_id, entityid=f"PRJ-{record_id}", companyname=f"Job {record_id}", externalid=external,
               parent=parent, subsidiary="1", currency="1", entitystatus="In Progress", startdate="2026-09-25",
               projectedenddate="2027-03-31", datecreated=NS_TS)


def _worker(wid: str, worker_id: str, name: str, email: str, active: bool = True) -> Record:
    return {"id": wid, "workerId": worker_id, "descriptor": name, "primaryWorkEmail": email,
            "businessTitle": "Consultant", "jobProfile": {"id": "JP-1", "descriptor": "Consultant"},
            "location": {"id": "L-1", "descriptor": "New York"}, "hireDate": "2025-06-01",
            "terminationDate": None if active else "2026-09-30", "isActive": active}


def _raas(worker_id: str, effective: str, **fields: Any) -> Record:
    return {"Worker_ID": worker_id, "Effective_Date": effective, "Last_Updated": WD_TS, **fields}


RECORDS: dict[str, list[Record]] = {  # by contract key
    salesforce.ACCOUNTS.key: [
        _account("001A", "Acme Corp"),
        _account("001B", "Globex", ERP_Customer_Id__c="102"),
        _account("001C", "Initech Ltd"),
        _account("001D", "Umbrella"),
        {**_account("001E", "Hooli"), "IsDeleted": True},
    ],
    salesforce.CONTACTS.key: [
        _sf("003A", AccountId="001A", FirstName="Wile", LastName="Coyote", Email="wile@acme.example"),
    ],
    salesforce.OPPORTUNITIES.key: [
        _opportunity("006A", "001A", "Closed Won", ContractId="800A"),
        _opportunity("006B", "001B", "Closed Won", ERP_Project_Id__c="201", CurrencyIsoCode="EUR",
                     Billing_Model__c="Fixed Fee", Legal_Entity__c="PS Europe GmbH"),
        _opportunity("006C", "001C", "Negotiation/Review"),
    ],
    salesforce.CONTRACTS.key: [
        _sf("800A", AccountId="001A", ContractNumber="00000100", Status="Activated", StartDate="2026-10-01",
            EndDate="2027-09-30", ContractTerm=12.0, CurrencyIsoCode="EUR", Billing_Model__c="Time and Materials",
            Opportunity__c="006A", Legal_Entity__c="PS Europe GmbH", Payment_Terms__c="Net 45",
            Contract_Value__c=120000.0),
    ],
    kantata.PROJECTS.key: [
        _workspace("1", "006A", "USD", 310, "Active"),
        _workspace("2", "006B", "EUR", 100, "Not Started"),
        _workspace("3", None, "USD", 330, "On Hold"),
    ],
    kantata.USERS.key: [
        _user("501", full_name="Ana Lopez", email_address="ana.lopez@firm.example", disabled=False),
        _user("502", full_name="Ben Ng", email_address="ben.ng@firm.example", disabled=False),
        _user("503", full_name="Cara Diaz", email_address="c.diaz@firm.example", disabled=False),
        _user("504", full_name="Eve Contractor", email_address="eve@contractor.example", disabled=False),
    ],
    kantata.TIME_ENTRIES.key: [
        _kt("9001", workspace_id="1", user_id="501", date_performed="2026-10-05", time_in_minutes=480,
            billable=True, approved=True, rate_in_cents=15000,
            recent_submission=_submission("71", "approved", "2026-10-07T02:00:00+00:00")),
        _kt("9002", workspace_id="1", user_id="502", date_performed="2026-10-06", time_in_minutes=90,
            billable=False, approved=False, rate_in_cents=0, recent_submission=_submission("72", "pending")),
    ],
    kantata.EXPENSES.key: [
        _kt("7001", workspace_id="1", user_id="501", date="2026-10-05", category="Travel",
            amount_in_cents=12345, currency="USD", is_billable=True,
            recent_submission=_submission("81", "approved", "2026-10-08T15:00:00+00:00")),
    ],
    kantata.MILESTONES.key: [
        _kt("8001", workspace_id="2", title="Go-live", story_type="milestone", state="completed",
            due_date="2026-10-20", budget_estimate_in_cents=2_500_000,
            story_state_change={"id": "61", "state": "completed", "story_id": "8001",
                                "created_at": "2026-10-21T10:00:00+00:00"}),
    ],
    kantata.RATE_CARDS.key: [
        _rate_card("811", "11", "US Standard 2026 USD", "USD", "2026-01-01",
                   [("Consultant", 15000), ("Senior Consultant", 20000)]),
        _rate_card("812", "12", "EU Standard EUR", "EUR", "2026-01-01", [("Consultant", 13000), ("Consultant", 14000)]),
    ],
    workday.WORKERS.key: [
        _worker("a" * 32, "W1", "Ana Lopez", "ana.lopez@firm.example"),
        _worker("b" * 32, "W2", "Ben Ng", "Ben.Ng@Firm.example"),
        _worker("c" * 32, "W3", "Cara Diaz", "cara.diaz@firm.example"),
        _worker("d" * 32, "W4", "Dan Roe", "dan.roe@firm.example", active=False),
    ],
    workday.COST_RATES.key: [
        _raas("W1", "2026-01-01", Cost_Rate=80.0, Currency="USD", Rate_Type="Hourly"),
        _raas("W1", "2026-07-01", Cost_Rate=90.0, Currency="USD", Rate_Type="Hourly"),
        _raas("W2", "2026-01-01", Cost_Rate=70.0, Currency="USD", Rate_Type="Hourly"),
    ],
    workday.JOB_HISTORY.key: [
        _raas("W1", "2025-06-01", Job_Profile="Consultant", Business_Title="Consultant", Cost_Center="Delivery US",
              Employment_Status="Active", FTE=1.0, Location="New York"),
        _raas("W1", "2026-07-01", Job_Profile="Senior Consultant", Business_Title="Senior Consultant",
              Cost_Center="Delivery US", Employment_Status="Active", FTE=1.0, Location="New York"),
        _raas("W4", "2024-01-01", Job_Profile="Consultant", Cost_Center="Delivery US", Employment_Status="Active",
              FTE=0.8, Location="Boston"),
        _raas("W4", "2026-09-30", Job_Profile="Consultant", Cost_Center="Delivery US",
              Employment_Status="Terminated", FTE=0.8, Location="Boston"),
    ],
    netsuite.SUBSIDIARIES.key: [
        _ns("1", name="PS US Inc", country="US", currency="1", isinactive="F"),
        _ns("2", name="PS Europe GmbH", country="DE", currency="2", isinactive="F"),
        _ns("3", name="PS UK Ltd", country="GB", currency="3", isinactive="F"),
    ],
    netsuite.CURRENCIES.key: [
        _ns("1", symbol="USD", name="US Dollar", isbasecurrency="T", exchangerate="1"),
        _ns("2", symbol="EUR", name="Euro", isbasecurrency="F", exchangerate="1.08"),
        _ns("3", symbol="GBP", name="British Pound", isbasecurrency="F", exchangerate="1.27"),
        _ns("4", symbol="CAD", name="Canadian Dollar", isbasecurrency="F", exchangerate="0.73"),
    ],
    netsuite.EXCHANGE_RATES.key: [
        _ns("31", basecurrency="1", transactioncurrency="2", exchangerate="1.10", effectivedate="2026-10-01"),
        _ns("32", basecurrency="1", transactioncurrency="2", exchangerate="1.12", effectivedate="2026-10-05"),
        _ns("33", basecurrency="3", transactioncurrency="1", exchangerate="0.80", effectivedate="2026-10-02"),
    ],
    netsuite.CUSTOMERS.key: [
        _customer("101", "ACME Corporation", "001A", currency="2", subsidiary="2"),  # renamed, other currency
        _customer("102", "Globex", None),
        _customer("103", "Initech", None),
        _customer("104", "Stark Industries", None),
        _customer("105", "Acme (duplicate)", "001A"),
    ],
    netsuite.PROJECTS.key: [
        _job("201", "102", None),
        _job("202", "101", "006A"),
        _job("203", "105", "006A"),
        _job("204", "104", None),
    ],
    netsuite.INVOICES.key: [
        _ns("4001", tranid="INV-4001", externalid="ps-inv-1", type="CustInvc", entity="101", job="202",
            subsidiary="1", currency="1", trandate="2026-10-15", duedate="2026-11-14", status="Open",
            foreigntotal="1323.45", memo="October", createddate=NS_TS),
    ],
    netsuite.INVOICE_LINES.key: [
        {"transaction": "4001", "id": "1", "linesequencenumber": "1", "item": "Services", "memo": "Time",
         "quantity": "8", "rate": "150", "foreignamount": "1200", "custcol_ps_line_key": "te-9001"},
        {"transaction": "4001", "id": "2", "linesequencenumber": "2", "item": "Expenses", "memo": "Travel",
         "quantity": "1", "rate": "123.45", "foreignamount": "123.45", "custcol_ps_line_key": "ex-7001"},
    ],
}
ALL_CONTRACTS = (*salesforce.ALL, *kantata.ALL, *workday.ALL, *netsuite.ALL)


def load_raw_warehouse(path: Path) -> None:
    """Write RECORDS into raw tables exactly as ingestion does, then hard-delete one row."""
    with Warehouse(path).connect() as con:
        for contract in ALL_CONTRACTS:
            ensure_raw_table(con, contract)
            records = RECORDS.get(contract.key, [])
            batch = validate_records(contract, records)
            assert not batch.rejects, f"{contract.key}: {[r.reason for r in batch.rejects]}"
            upsert_rows(con, contract, batch.valid, batch.valid_records, "test-run", LOADED_AT)
        # Ben's unapproved entry was deleted in Kantata after it had been ingested.
        mark_deleted(con, kantata.TIME_ENTRIES, [("9002", LOADED_AT)], "test-run")
        # Schema drift: a raw table without a column staging lists (e.g. written before the
        # contract gained it) must still build, with the column as a typed null.
        con.execute("""
            CREATE TABLE raw_salesforce.accounts_without_industry AS
                SELECT * EXCLUDE (industry) FROM raw_salesforce.accounts;
            DROP TABLE raw_salesforce.accounts;
            ALTER TABLE raw_salesforce.accounts_without_industry RENAME TO accounts""")


# -- dbt ------------------------------------------------------------------------------------
def run_dbt(args: list[str], warehouse: Path, work_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PS_WAREHOUSE_PATH": str(warehouse),
        # Per-test target and log folders: parallel test workers never share dbt's files.
        "DBT_TARGET_PATH": str(work_dir / "target"),
        "DBT_LOG_PATH": str(work_dir / "logs"),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }
    return subprocess.run(
        [str(DBT), *args, "--profiles-dir", str(DBT_PROJECT), "--project-dir", str(DBT_PROJECT)],
        cwd=DBT_PROJECT, env=env, capture_output=True, text=True, timeout=600, check=False,
    )


@dataclass
class BuiltWarehouse:
    con: duckdb.DuckDBPyConnection
    run_results: dict[str, Any]

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        return self.con.execute(sql).fetchall()

    def scalar(self, sql: str) -> Any:
        return self.rows(sql)[0][0]


def dbt_or_fail(args: list[str], warehouse: Path, work_dir: Path) -> dict[str, Any]:
    """Run dbt; fail with its output unless it succeeded; return its run_results."""
    done = run_dbt(args, warehouse, work_dir)
    assert done.returncode == 0, f"dbt {' '.join(args)} failed:\n{done.stdout[-8000:]}"
    results = work_dir / "target" / "run_results.json"
    return json.loads(results.read_text()) if args[0] != "parse" else {}


def build_once(
    tmp_path_factory: pytest.TempPathFactory, name: str, build: Callable[[Path, Path], dict[str, Any]]
) -> Iterator[BuiltWarehouse]:
    """Build a warehouse once per test session and open it read-only.

    Under pytest-xdist every worker that runs a test of this module would build its own copy;
    instead the first one builds into the session's shared temp folder under a file lock and
    the others reuse the result (DuckDB lets several processes read one file).
    """
    base = tmp_path_factory.getbasetemp()
    work_dir = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / name
    warehouse, marker = work_dir / "warehouse.duckdb", work_dir / "build_results.json"
    with exclusive_lock(work_dir.with_name(f"{name}.lock")):
        if not marker.exists():
            work_dir.mkdir(parents=True, exist_ok=True)
            marker.write_text(json.dumps(build(work_dir, warehouse)))
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        yield BuiltWarehouse(con, json.loads(marker.read_text()))
    finally:
        con.close()


def ingest_sandbox(template: Path, work_dir: Path, warehouse: Path) -> None:
    """Materialize every raw ingestion asset from a sandbox served over real HTTP."""
    state = work_dir / "sandbox.sqlite"
    shutil.copyfile(template, state)
    server = start_server(open_sandbox(state, SandboxConfig(seed=TEST_SEED, scale=TEST_SCALE)), port=0)
    try:
        resources = build_resources("local", sandbox_url=f"http://127.0.0.1:{server.server_port}",
                                    warehouse_path=str(warehouse))
        assert materialize(ingest_assets, resources=resources, raise_on_error=True).success
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def pipeline(sandbox_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BuiltWarehouse]:
    def build(work_dir: Path, warehouse: Path) -> dict[str, Any]:
        ingest_sandbox(sandbox_template, work_dir, warehouse)
        dbt_or_fail(["parse"], warehouse, work_dir)
        return dbt_or_fail(["build", "--select", SELECTION], warehouse, work_dir)

    yield from build_once(tmp_path_factory, "dbt_pipeline", build)


@pytest.fixture(scope="module")
def handmade(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BuiltWarehouse]:
    """Models plus the intermediate and mart data tests: the edge cases (e.g. duplicates) must
    not break the declared grains. Staging and unit tests already run in the pipeline build."""

    def build(work_dir: Path, warehouse: Path) -> dict[str, Any]:
        load_raw_warehouse(warehouse)
        dbt_or_fail(["run", "--select", "staging"], warehouse, work_dir)
        return dbt_or_fail(["build", "--select", "intermediate marts.core work_location_countries", "--exclude",
                            "test_type:unit"],
                           warehouse, work_dir)

    yield from build_once(tmp_path_factory, "dbt_handmade", build)


# -- the build on pipeline data -------------------------------------------------------------------
def test_build_runs_every_foundation_model_test_and_unit_test(pipeline: BuiltWarehouse) -> None:
    results = pipeline.run_results["results"]
    by_kind: dict[str, list[str]] = {}
    for result in results:
        by_kind.setdefault(result["unique_id"].split(".")[0], []).append(result["status"])
    models = {r["unique_id"].rsplit(".", 1)[-1] for r in results if r["unique_id"].startswith("model.")}
    assert models >= FOUNDATION_MODELS
    assert {"rate_cards_unnest_to_one_rate_per_role", "cost_rates_become_effective_ranges",
            "exchange_rates_forward_fill_daily"} <= {
        r["unique_id"].rsplit(".", 1)[-1] for r in results if r["unique_id"].startswith("unit_test.")}
    assert len(by_kind["test"]) > 200
    assert {s for statuses in by_kind.values() for s in statuses} <= {"success", "pass"}
    tables = {name for (name,) in pipeline.rows(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'marts' AND table_type = 'BASE TABLE'")}
    assert {m for m in FOUNDATION_MODELS if m.startswith("dim_")} <= tables


def test_dimensions_cover_the_ingested_data(pipeline: BuiltWarehouse) -> None:
    accounts = pipeline.scalar("SELECT count(*) FROM raw_salesforce.accounts")
    assert accounts > 0
    assert pipeline.rows("SELECT count(crm_account_id), count(DISTINCT crm_account_id) FROM marts.dim_customer") == [
        (accounts, accounts)]
    workspaces = pipeline.scalar("SELECT count(*) FROM raw_kantata.projects")
    assert pipeline.scalar("SELECT count(DISTINCT psa_project_id) FROM marts.dim_project") == workspaces
    jobs = pipeline.scalar("SELECT count(*) FROM raw_netsuite.projects")
    assert pipeline.scalar(
        "SELECT count(*) FROM intermediate.int_project_identity WHERE source_system = 'netsuite'") == jobs
    assert pipeline.scalar("SELECT count(*) FROM marts.dim_currency WHERE NOT has_rates_to_reporting") == 0


def test_every_time_entry_finds_its_worker_version_and_cost_rate(pipeline: BuiltWarehouse) -> None:
    entries, with_version, with_cost_rate = pipeline.rows("""
        SELECT count(*), count(w.worker_key), count(w.hourly_cost_rate)
        FROM staging.stg_kantata__time_entries t
        JOIN intermediate.int_worker_identity i ON i.source_system = 'kantata' AND i.source_record_id = t.user_id
        LEFT JOIN marts.dim_worker w
          ON w.worker_key = i.worker_key AND t.work_date >= w.valid_from AND t.work_date < w.valid_to""")[0]
    assert entries > 0
    assert entries == with_version == with_cost_rate


# -- hand-made edge cases: customers ----------------------------------------------------------
def test_dim_customer_has_one_row_per_crm_account_and_per_unmatched_erp_customer(handmade: BuiltWarehouse) -> None:
    accounts = handmade.rows("SELECT count(*) FROM raw_salesforce.accounts")[0][0]
    per_account = handmade.rows(
        "SELECT count(*), count(DISTINCT crm_account_id) FROM marts.dim_customer WHERE crm_account_id IS NOT NULL")
    assert per_account == [(accounts, accounts)]
    assert handmade.rows("SELECT erp_customer_id FROM marts.dim_customer WHERE crm_account_id IS NULL") == [("104",)]


def test_customer_matching_rules_and_confidence(handmade: BuiltWarehouse) -> None:
    matches = dict((row[0], row[1:]) for row in handmade.rows(
        "SELECT crm_account_id, erp_customer_id, match_method, match_confidence, erp_customer_record_count "
        "FROM marts.dim_customer WHERE crm_account_id IS NOT NULL"))
    assert matches == {
        "001A": ("101", "external_id", 1.0, 2),  # 105 is an ERP duplicate of the same account
        "001B": ("102", "crm_erp_reference", 0.95, 1),
        "001C": ("103", "name", 0.7, 1),  # "Initech Ltd" = "Initech"
        "001D": (None, "crm_only", None, 0),
        "001E": (None, "crm_only", None, 0),
    }
    duplicate = handmade.rows("""
        SELECT d.customer_key = c.customer_key, d.is_primary_record
        FROM intermediate.int_customer_identity d
        JOIN marts.dim_customer c ON c.crm_account_id = '001A'
        WHERE d.source_system = 'netsuite' AND d.source_record_id = '105'""")
    assert duplicate == [(True, False)]


def test_each_customer_attribute_comes_from_its_authoritative_system(handmade: BuiltWarehouse) -> None:
    acme = handmade.rows("""
        SELECT customer_name, customer_name_source_system, erp_customer_name,
               currency_code, currency_source_system, crm_currency_code,
               legal_entity_name, legal_entity_source_system, has_psa_projects
        FROM marts.dim_customer WHERE crm_account_id = '001A'""")
    # Renamed and re-currencied in the ERP: the name stays the CRM's, currency and entity are the ERP's.
    assert acme == [("Acme Corp", "salesforce", "ACME Corporation", "EUR", "netsuite", "USD",
                     "PS Europe GmbH", "netsuite", True)]


def test_deleted_records_are_carried_as_is_deleted(handmade: BuiltWarehouse) -> None:
    hooli = handmade.rows("SELECT customer_status, is_deleted FROM marts.dim_customer WHERE crm_account_id = '001E'")
    assert hooli == [("deleted", True)]
    assert handmade.rows(
        "SELECT time_entry_id, is_deleted, deleted_at IS NOT NULL FROM staging.stg_kantata__time_entries "
        "ORDER BY time_entry_id") == [("9001", False, False), ("9002", True, True)]


# -- projects ------------------------------------------------------------------------------------
def test_projects_link_psa_crm_and_erp(handmade: BuiltWarehouse) -> None:
    projects = handmade.rows("""
        SELECT p.psa_project_id, p.erp_project_id, p.crm_opportunity_id, p.match_method,
               p.erp_project_record_count, c.crm_account_id, c.erp_customer_id
        FROM marts.dim_project p LEFT JOIN marts.dim_customer c USING (customer_key)
        ORDER BY p.psa_project_id NULLS LAST""")
    assert projects == [
        ("1", "202", "006A", "opportunity_id", 2, "001A", "101"),  # job 203 duplicates 202
        ("2", "201", "006B", "crm_erp_reference", 1, "001B", "102"),
        ("3", None, None, "psa_only", 0, None, None),  # internal project: no customer
        (None, "204", None, "erp_only", 1, None, "104"),
    ]


def test_project_billing_terms_follow_the_contract_then_the_erp(handmade: BuiltWarehouse) -> None:
    project = handmade.rows("""
        SELECT billing_model, billing_model_source, currency_code, currency_source_system, psa_currency_code,
               crm_currency_code, project_status, deal_won_date
        FROM marts.dim_project WHERE psa_project_id = '1'""")
    assert project == [("Time and Materials", "salesforce_contract", "USD", "netsuite", "USD", "EUR", "active",
                        date(2026, 9, 15))]


def test_contract_value_is_converted_with_its_rate_and_rate_date(handmade: BuiltWarehouse) -> None:
    contract = handmade.rows("""
        SELECT currency_code, contract_value, functional_currency_code, contract_value_functional,
               contract_value_reporting, exchange_rate_to_reporting, exchange_rate_date, payment_terms_days,
               is_active_as_of
        FROM marts.dim_contract WHERE crm_contract_id = '800A'""")
    assert contract == [("EUR", Decimal("120000.00"), "EUR", Decimal("120000.00"), Decimal("132000.00"), 1.10,
                         date(2026, 10, 1), 45, True)]


# -- people --------------------------------------------------------------------------------------
def test_workers_match_kantata_users_by_email_case_insensitively_then_by_name(handmade: BuiltWarehouse) -> None:
    people = handmade.rows("""
        SELECT DISTINCT workday_worker_id, kantata_user_id, match_method
        FROM marts.dim_worker ORDER BY workday_worker_id NULLS LAST""")
    assert people == [
        ("W1", "501", "email"),
        ("W2", "502", "email"),  # Ben.Ng@Firm.example = ben.ng@firm.example
        ("W3", "503", "name"),  # e-mail drifted, same unique name
        ("W4", None, "hr_only"),
        (None, "504", "psa_only"),  # a contractor only Kantata knows is kept
    ]


def test_dim_worker_history_tracks_role_and_cost_rate(handmade: BuiltWarehouse) -> None:
    history = handmade.rows("""
        SELECT valid_from, valid_to, job_profile, employment_status, hourly_cost_rate, cost_rate_effective_date,
               is_current
        FROM marts.dim_worker WHERE workday_worker_id = 'W1' ORDER BY valid_from""")
    assert history == [
        # Before the first cost rate (2026-01-01) that first rate is back-filled.
        (date(2025, 6, 1), date(2026, 1, 1), "Consultant", "Active", Decimal("80.00"), date(2026, 1, 1), False),
        (date(2026, 1, 1), date(2026, 7, 1), "Consultant", "Active", Decimal("80.00"), date(2026, 1, 1), False),
        (date(2026, 7, 1), date(9999, 12, 31), "Senior Consultant", "Active", Decimal("90.00"), date(2026, 7, 1),
         True),
    ]
    terminated = handmade.rows(
        "SELECT employment_status FROM marts.dim_worker WHERE workday_worker_id = 'W4' AND is_current")
    assert terminated == [("Terminated",)]


# -- rates and calendar --------------------------------------------------------------------------
def test_rate_cards_and_currencies_resolve(handmade: BuiltWarehouse) -> None:
    assert handmade.rows("SELECT role, bill_rate FROM marts.dim_rate_card WHERE rate_card_id = '12'") == [
        ("Consultant", Decimal("140.00"))]
    currencies = handmade.rows("""
        SELECT currency_code, as_of_rate_to_reporting, as_of_rate_method FROM marts.dim_currency
        ORDER BY currency_code""")
    assert currencies == [("CAD", 0.73, "currency_master"), ("EUR", 1.12, "direct"), ("GBP", 1.25, "inverse"),
                          ("USD", 1.0, "identity")]
    days, currencies_per_day = handmade.rows(
        "SELECT count(DISTINCT date_day), count(*) / count(DISTINCT date_day) FROM marts.dim_currency_rates_daily")[0]
    assert (days, currencies_per_day) == (handmade.rows("SELECT count(*) FROM marts.dim_date")[0][0], 4)


def test_staging_fills_a_column_missing_from_raw_with_a_typed_null(handmade: BuiltWarehouse) -> None:
    columns = dict(handmade.rows("""
        SELECT column_name, data_type FROM information_schema.columns
        WHERE table_schema = 'staging' AND table_name = 'stg_salesforce__accounts'"""))
    assert columns["industry"] == "VARCHAR"
    assert handmade.rows("SELECT count(industry), count(account_name) FROM staging.stg_salesforce__accounts") == [
        (0, 5)]


# -- what Kantata and Workday document, derived into the staging columns the marts read -------------
def test_approval_completion_opportunity_and_region_come_from_documented_objects(handmade: BuiltWarehouse) -> None:
    """approval_status/approved_at from the approved flag and the latest submission, completed_at from
    the latest story state change to completed, opportunity_id from the workspace's external
    reference, and a worker's region from its location (seed work_location_countries)."""
    entries = handmade.rows("""
        SELECT time_entry_id, approval_status, strftime(approved_at, '%Y-%m-%d %H:%M')
        FROM staging.stg_kantata__time_entries ORDER BY time_entry_id""")
    assert entries == [("9001", "approved", "2026-10-07 02:00"), ("9002", "submitted", None)]
    assert handmade.rows("""SELECT approval_status, strftime(approved_at, '%Y-%m-%d %H:%M')
                            FROM staging.stg_kantata__expenses""") == [("approved", "2026-10-08 15:00")]
    assert handmade.rows("""SELECT strftime(completed_at, '%Y-%m-%d %H:%M')
                            FROM staging.stg_kantata__milestones""") == [("2026-10-21 10:00",)]
    assert handmade.rows("SELECT project_id, opportunity_id FROM staging.stg_kantata__projects ORDER BY 1") == [
        ("1", "006A"), ("2", "006B"), ("3", None)]
    assert handmade.rows("""SELECT DISTINCT workday_worker_id, region FROM marts.dim_worker
                            WHERE workday_worker_id IN ('W1', 'W4') ORDER BY 1""") == [("W1", "NA"), ("W4", "NA")]
