"""``ps-pipelines run --estate ...`` end to end on the estates other than the default (issue 13):
a firm on HubSpot + Certinia + Workday + NetSuite whose Certinia org delivers the deals it
sold in HubSpot, a firm mid-acquisition that runs both CRMs, and a consultancy on Salesforce +
Certinia. The main job exits 0 with every model and test green, the graph holds only the
declared platforms, and what it posts is in the ERP, the PSA and the CRM exactly once, read
back from the sandbox's own APIs: approved Certinia work is invoiced whichever CRM sold it.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from ps_pipelines.estate import Estate
from ps_pipelines.lib.contracts.certinia import DEAL_ID_FIELD
from ps_pipelines.lib.dbt_project import dbt_var
from ps_pipelines.lib.sources import NetSuiteClient
from ps_pipelines.lib.writeback import INVOICE_PREFIX, Targets, reconcile_invoices
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


# What a project needs set up before it can be invoiced (int_project_billing_setup's blockers).
SETUP_BLOCKERS = ("erp_customer", "erp_project", "legal_entity", "currency", "billing_model")


def assert_invoiced_once(con: duckdb.DuckDBPyConnection, sandbox: RunningSandbox) -> dict[str, Decimal]:
    """Every line of a valid outbound invoice is on a NetSuite invoice exactly once, at its
    amount (SuiteQL, checked as Decimal); returns those lines (line key -> amount)."""
    wanted = {key: Decimal(str(amount)) for key, amount in con.execute(
        "SELECT line_external_id, amount FROM outbound.erp_billing_transactions WHERE is_invoice_valid").fetchall()}
    netsuite = NetSuiteClient(sandbox.url, **DEFAULT_CREDENTIALS["netsuite"])
    try:
        _, lines = erp_invoices(netsuite)
    finally:
        netsuite.client.close()
    on_erp = [line.get("custcol_ps_line_key") for rows in lines.values() for line in rows]
    assert wanted and all(on_erp.count(key) == 1 for key in wanted)
    amounts = {line["custcol_ps_line_key"]: abs(Decimal(str(line["foreignamount"])))
               for rows in lines.values() for line in rows if line.get("custcol_ps_line_key") in wanted}
    assert amounts == wanted
    return wanted


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


def test_a_hubspot_and_certinia_estate_activates_each_won_deal_once_and_invoices_its_approved_work(
    certinia_hubspot_sandbox: RunningSandbox, home: Path
) -> None:
    certinia_sandbox = certinia_hubspot_sandbox
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
        # The Certinia projects deliver won HubSpot deals, and no line of theirs waits for a
        # customer, a job, an entity, a currency or a billing model.
        lines = con.execute(
            "SELECT t.line_external_id, t.source_type, t.source_id, t.validation_errors, o.crm_platform, o.is_won, "
            "p.psa_platform FROM outbound.erp_billing_transactions AS t "
            "LEFT JOIN marts.dim_project AS p ON p.project_key = t.project_key "
            "LEFT JOIN marts.fct_opportunities AS o ON o.opportunity_id = t.crm_opportunity_id").fetchall()
        timecard_ids = values(con, "SELECT time_entry_id FROM marts.fct_time_entries")
        invoiced = assert_invoiced_once(con, certinia_sandbox)
    assert timecard_days > 0 and won
    assert lines and {(crm, is_won, psa) for _, _, _, _, crm, is_won, psa in lines} == {("hubspot", True, "certinia")}
    blocked = [(key, errors) for key, _, _, errors, *_ in lines
               if errors and any(blocker in errors for blocker in SETUP_BLOCKERS)]
    assert not blocked, blocked[:5]
    # Approved time, expenses and completed milestones are all invoiced, time by timecard day.
    kinds = {kind for key, kind, _, _, *_ in lines if key in invoiced}
    # (and the recurring fees of the deals' HubSpot line items, when a period has started)
    work = {"time_entry", "expense", "milestone"}
    assert work <= kinds <= work | {"recurring_fee"}, kinds
    assert {source for key, kind, source, *_ in lines if key in invoiced and kind == "time_entry"} <= timecard_ids

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
        timecard_days = values(con, "SELECT time_entry_id FROM marts.fct_time_entries")
        # Approved Certinia time is invoiced: each wanted line once, at its amount, and the time
        # lines are timecard days (<timecard id>:<day>).
        wanted = assert_invoiced_once(con, certinia_sandbox)
    time_lines = {key.removeprefix("psp:inl:time_entry:") for key in wanted if key.startswith("psp:inl:time_entry:")}
    assert time_lines and time_lines <= timecard_days


def d365_invoice_lines(targets: Targets) -> dict[str, list[Decimal]]:
    """Every line of every Dynamics 365 free-text invoice the write-back made, duplicates
    included (``ExternalInvoiceId`` = ``psp:inv:...``, F&O's wildcard equality; a line's
    ``InvoiceText`` is our line key), read over OData: line key -> the amounts of its lines."""
    found: dict[str, list[Decimal]] = {}
    for header in targets.d365.find("FreeTextInvoiceHeaders", f"ExternalInvoiceId eq '{INVOICE_PREFIX}*'"):
        lines = targets.d365.find("FreeTextInvoiceLines", f"dataAreaId eq '{header['dataAreaId']}' and "
                                                          f"ParentRecId eq {header['InvoiceIdentifier']}")
        for line in lines:
            found.setdefault(line["InvoiceText"], []).append(Decimal(str(line["TransactionCurrencyAmount"])))
    return found


def test_a_dynamics_365_estate_activates_and_invoices_in_dynamics_365_once(sandbox: RunningSandbox, home: Path) -> None:
    with run_estate("salesforce,kantata,workday,d365", sandbox, home) as con:
        assert raw_tables(con) == {"raw_salesforce", "raw_kantata", "raw_workday", "raw_d365"}
        assert values(con, "SELECT erp_platform FROM marts.dim_customer WHERE erp_platform IS NOT NULL") == {"d365"}
        wanted = {key: Decimal(str(amount)) for key, amount in con.execute(
            "SELECT line_external_id, amount FROM outbound.erp_billing_transactions WHERE is_invoice_valid").fetchall()}
        assert values(con, "SELECT erp_platform FROM outbound.erp_billing_transactions") == {"d365"}
    deals = activated_deals(home)
    targets = make_targets(sandbox.url)
    try:
        # Each valid outbound line is on one Dynamics 365 invoice, once, at its amount.
        on_erp = d365_invoice_lines(targets)
        assert wanted and {key: on_erp.get(key) for key in wanted} == {key: [amount] for key, amount in wanted.items()}
        # Each deal the run made a project for has exactly one in Dynamics 365 (its CRM id in the
        # firm's extension field), and the opportunity names it.
        made = {deal: posted for deal, posted in deals.items() if "d365:project" in posted}
        assert made, deals  # (a deal whose project was in D365 already only needed its workspace)
        for deal, posted in made.items():
            [project] = targets.d365.find("Projects", f"PsCrmOpportunityId eq '{deal}'")
            assert posted["d365:project"] == project["ProjectID"]
            opportunity = targets.salesforce.get("Opportunity", deal)
            assert (opportunity["ERP_Project_Id__c"], opportunity["Activation_Status__c"]) == (
                project["ProjectID"], STATUS_COMPLETE)
        with duckdb.connect(str(ledger_path_for(home / "warehouse.duckdb")), read_only=True) as ledger:
            # Invoices before the billing go-live were keyed by hand in the ERP (the sandbox's history).
            go_live = date.fromisoformat(str(dbt_var("billing_start_date")))
            reconciliation = reconcile_invoices(ledger, targets.d365, from_date=go_live)
        assert reconciliation.passed and reconciliation.ledger_invoices > 0, reconciliation
    finally:
        close_targets(targets)
