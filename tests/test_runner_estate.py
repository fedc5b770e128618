"""``ps-pipelines run --estate ...`` end to end on the estates other than the default (issue 13):
a managed-services firm on HubSpot + Certinia + Workday + NetSuite, a firm mid-acquisition
that runs both CRMs, and a consultancy on Salesforce + Certinia whose approved time is
invoiced. The main job exits 0 with every model and test green, the graph holds only the
declared platforms, and what it posts is in the ERP, the PSA and the CRM exactly once, read
back from the sandbox's own APIs.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from ps_pipelines.estate import Estate
from ps_pipelines.lib.contracts.certinia import DEAL_ID_FIELD
from ps_pipelines.lib.sources import NetSuiteClient
from ps_pipelines.lib.writeback.activation import STATUS_COMPLETE
from ps_pipelines.lib.writeback.ledger_store import ledger_path_for
from ps_pipelines.runner import run_main_job
from ps_sandbox.context import DEFAULT_CREDENTIALS
from tests.conftest import TEST_SCALE, TEST_SEED, RunningSandbox
from tests.lib.writeback.conftest import certinia_projects_of, close_targets, make_targets, ns_records
from tests.test_runner import erp_invoices


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    # The runner points DAGSTER_HOME at its home; monkeypatch gives the worker's back afterwards.
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    return tmp_path / "home"


def raw_tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    return values(con, "SELECT table_schema FROM information_schema.tables "
                       "WHERE table_schema LIKE 'raw\\_%' ESCAPE '\\'")


def run_estate(estate: str, sandbox: RunningSandbox, home: Path) -> duckdb.DuckDBPyConnection:
    """The main job on ``estate`` against ``sandbox``, which must exit 0; its warehouse, read-only."""
    assert run_main_job(home=home, scale=TEST_SCALE, seed=TEST_SEED, sandbox_url=sandbox.url,
                        estate=Estate.parse(estate)) == 0
    return duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)


def values(con: duckdb.DuckDBPyConnection, sql: str) -> set:
    """The first column of ``sql``'s rows, as a set."""
    return {value for (value, *_) in con.execute(sql).fetchall()}


def activated_deals(home: Path) -> dict[str, dict[str, str]]:
    """Per deal the activation posted for: the ERP job and PSA project ids, from the ledger."""
    with duckdb.connect(str(ledger_path_for(home / "warehouse.duckdb")), read_only=True) as con:
        rows = con.execute("SELECT target_system, record_type, external_id, target_id FROM ops.outbox "
                           "WHERE flow = 'project_activation' AND state = 'posted' "
                           "AND record_type <> 'customer'").fetchall()  # a customer is keyed by its company
    deals: dict[str, dict[str, str]] = {}
    for system, record, external_id, target_id in rows:
        deals.setdefault(external_id, {})[f"{system}:{record}"] = target_id
    return deals


def test_a_hubspot_and_certinia_estate_runs_the_main_job_and_activates_each_won_deal_once(
    certinia_sandbox: RunningSandbox, home: Path
) -> None:
    with run_estate("hubspot,certinia,workday,netsuite", certinia_sandbox, home) as con:
        # Only the declared platforms were ingested, and the canonical model reads them.
        assert raw_tables(con) == {"raw_hubspot", "raw_certinia", "raw_workday", "raw_netsuite"}
        assert values(con, "SELECT crm_platform FROM marts.dim_customer WHERE crm_platform IS NOT NULL") \
            == {"hubspot"}
        assert values(con, "SELECT psa_platform FROM marts.dim_project WHERE psa_platform IS NOT NULL") \
            == {"certinia"}
        [(timecard_days,)] = con.execute("SELECT count(*) FROM marts.fct_time_entries").fetchall()
        won = values(con, "SELECT opportunity_id FROM marts.fct_opportunities "
                          "WHERE is_won AND crm_platform = 'hubspot'")
    assert timecard_days > 0 and won

    # Each won HubSpot deal the run activated: one NetSuite job, one Certinia project, and the
    # deal's properties set in HubSpot, whatever the ledger says.
    deals = activated_deals(home)
    assert deals and set(deals) <= won
    targets = make_targets(certinia_sandbox.url)
    try:
        for deal, posted in deals.items():
            if "hubspot:deal" not in posted:
                continue  # its CRM step waits for a later step (none should: checked below)
            [job] = ns_records(targets, "job", deal)
            [project] = certinia_projects_of(certinia_sandbox, deal)
            assert posted.get("certinia:project", project["Id"]) == project["Id"]
            properties = targets.hubspot.get("deals", deal, ["ps_external_id", "ps_activation_status"])["properties"]
            assert (properties["ps_external_id"], properties["ps_activation_status"]) == (job["id"], STATUS_COMPLETE)
            assert project[DEAL_ID_FIELD] == deal
    finally:
        close_targets(targets)
    assert all("hubspot:deal" in posted for posted in deals.values()), deals


def test_an_estate_with_both_crms_runs_the_main_job(sandbox: RunningSandbox, home: Path) -> None:
    with run_estate("salesforce,hubspot,kantata,workday,netsuite", sandbox, home) as con:
        assert values(con, "SELECT crm_platform FROM marts.fct_opportunities") == {"salesforce", "hubspot"}
        assert values(con, "SELECT crm_platform FROM marts.dim_customer WHERE crm_platform IS NOT NULL") \
            == {"salesforce", "hubspot"}


def test_a_certinia_estate_invoices_each_approved_timecard_day_once(
    certinia_sandbox: RunningSandbox, home: Path
) -> None:
    with run_estate("salesforce,certinia,workday,netsuite", certinia_sandbox, home) as con:
        wanted = dict(con.execute("SELECT line_external_id, amount FROM outbound.erp_billing_transactions "
                                  "WHERE is_invoice_valid").fetchall())
        timecard_days = values(con, "SELECT time_entry_id FROM marts.fct_time_entries")
    netsuite = NetSuiteClient(certinia_sandbox.url, **DEFAULT_CREDENTIALS["netsuite"])
    try:
        _, lines = erp_invoices(netsuite)
    finally:
        netsuite.client.close()
    on_erp = [line.get("custcol_ps_line_key") for rows in lines.values() for line in rows]
    # Approved Certinia time is invoiced: each wanted line once, at its amount, and the time
    # lines are timecard days (<timecard id>:<day>).
    assert wanted and all(on_erp.count(key) == 1 for key in wanted)
    amounts = {line["custcol_ps_line_key"]: Decimal(str(line["foreignamount"]))
               for rows in lines.values() for line in rows if line.get("custcol_ps_line_key") in wanted}
    assert {key: abs(amount) for key, amount in amounts.items()} == {key: Decimal(str(a)) for key, a in wanted.items()}
    time_lines = {key.removeprefix("psp:inl:time_entry:") for key in wanted if key.startswith("psp:inl:time_entry:")}
    assert time_lines and time_lines <= timecard_days
