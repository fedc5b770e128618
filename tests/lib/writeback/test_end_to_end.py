"""The write-back on a real dbt build: sandbox events -> ingestion -> outbound models -> targets.

A deal is won and a week of time approved through the control API; the sandbox is ingested
by the ingestion library (what the raw assets run) and the outbound models are built by dbt
(with what they depend on). Both flows then post from the real outbound tables, twice.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

from ps_pipelines.lib.contracts import ALL_CONTRACTS
from ps_pipelines.lib.ingestion import ingest_entity
from ps_pipelines.lib.warehouse.warehouse import Warehouse
from ps_pipelines.lib.writeback import Targets, reconcile_invoices, run_activation, run_billing
from ps_pipelines.resources import build_resources
from tests.conftest import RunningSandbox, opportunity_of_workspaces
from tests.lib.writeback.conftest import assert_activated_once, suiteql
from tests.transform.test_dbt_foundation import dbt_or_fail

GO_LIVE = date(2026, 9, 1)


def approve_time_and_materials_week(sandbox: RunningSandbox) -> list[str]:
    """Approve (control API) the week of the latest unapproved billable time on a T&M project
    since go-live: work that bills by the hour; the ids of the entries approved."""
    store = sandbox.ctx.store
    opportunities = opportunity_of_workspaces(store)
    hourly = {w["id"] for w in store.scan("kantata", "workspaces")
              if (store.get("salesforce", "Opportunity", opportunities.get(w["id"], "")) or {})
              .get("Billing_Model__c") == "Time and Materials"}
    entry = next(e for e in store.scan("kantata", "time_entries", order="updated_at", descending=True)
                 if e["workspace_id"] in hourly and e["billable"] and not e["approved"]
                 and e["date_performed"] >= GO_LIVE.isoformat())
    day = date.fromisoformat(entry["date_performed"])
    monday = day - timedelta(days=day.weekday())
    week = {"user_id": entry["user_id"], "week_start": monday.isoformat()}
    return sandbox.control("POST", "events/approve-week", json=week)["approved"]


def _ingest_and_build(sandbox: RunningSandbox, work_dir: Path) -> Warehouse:
    path = work_dir / "warehouse.duckdb"
    warehouse = Warehouse(path)
    # The ingestion library the raw assets wrap, without Dagster's per-run overhead.
    resources = build_resources("local", sandbox_url=sandbox.url, warehouse_path=str(path))
    clients = {platform: resources[platform].client() for platform in ("salesforce", "kantata", "workday", "netsuite")}
    for contract in ALL_CONTRACTS:
        ingest_entity(clients[contract.platform], warehouse, contract, run_id="ingest")
    # The outbound models and what they depend on, seeds included (dim_worker reads one); tests are
    # other suites' job.
    dbt_or_fail(["build", "--select", "+outbound", "--exclude", "resource_type:test", "resource_type:unit_test"],
                path, work_dir)
    return warehouse


def test_events_flow_through_dbt_into_exactly_one_posting_each(
    sandbox: RunningSandbox, targets: Targets, tmp_path: Path
) -> None:
    won = sandbox.control("POST", "events/deal-won", json={})
    approved = approve_time_and_materials_week(sandbox)
    warehouse = _ingest_and_build(sandbox, tmp_path)

    with warehouse.connect() as con:
        request = con.execute("SELECT * FROM outbound.erp_project_activation_requests WHERE opportunity_id = ?",
                              [won["opportunity_id"]]).df()
        assert len(request) == 1 and request.at[0, "is_valid"], request.to_dict("records")
        line_keys = {f"psp:inl:time_entry:{entry}" for entry in approved}
        billed = {row[0] for row in con.execute(
            "SELECT line_external_id FROM outbound.erp_billing_transactions").fetchall()} & line_keys
        assert billed, "the approved week produced no billable lines"

        activation = run_activation(con, targets, run_id="a1")
        billing = run_billing(con, targets, run_id="b1")
        assert activation.dead == activation.failed_retryable == activation.blocked == 0
        assert billing.dead == billing.failed_retryable == billing.invalid == 0 and billing.posted > 0
        assert_activated_once(targets, request)
        # Each approved line is on exactly one NetSuite invoice line.
        keys = ", ".join(f"'{key}'" for key in sorted(billed))
        on_erp = suiteql(targets, f"SELECT transaction, custcol_ps_line_key FROM transactionline "
                                  f"WHERE custcol_ps_line_key IN ({keys})")
        assert sorted(line["custcol_ps_line_key"] for line in on_erp) == sorted(billed)
        assert reconcile_invoices(con, targets.netsuite, from_date=GO_LIVE).passed

        # Running both again (e.g. a replayed sensor event) posts nothing.
        assert run_activation(con, targets, run_id="a2").requests == 0
        assert run_billing(con, targets, run_id="b2").requests == 0
        # Traceability: every outbound line joins to the ledger line that carried it, and its run.
        lines, traced = con.execute("""
            SELECT count(*), count(l.line_external_id) FILTER (WHERE l.posted_run_id = 'b1')
            FROM outbound.erp_billing_transactions b LEFT JOIN ops.outbox_invoice_lines l USING (line_external_id)
        """).fetchone()
        assert traced == lines
