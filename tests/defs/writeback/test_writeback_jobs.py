"""The write-back as Dagster runs it: sensors start the jobs, the jobs ingest, build the
outbound models and post; over real HTTP against the sandbox.

The behaviours of each piece (ledger, contracts, senders, crash recovery, reconciliation)
are tested in ``tests/lib/writeback``; this module checks that the definitions put them
together: one event, one posting, however often the sensor and the jobs run.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
from dagster import ExecuteInProcessResult

from ps_pipelines.definitions import build_definitions
from ps_pipelines.defs.writeback.assets import ACTIVATIONS_KEY, DEAD_LETTERS_KEY, INVOICES_KEY, RECONCILIATION_CHECK
from ps_pipelines.defs.writeback.jobs import ACTIVATE_PROJECTS_JOB, POST_INVOICES_JOB, posting_selection
from ps_pipelines.events.jobs import EVENT_ACTIVATION_JOB, EVENT_BILLING_JOB
from ps_pipelines.events.sensors import APPROVED_WORK_SENSOR, WON_DEALS_SENSOR
from ps_pipelines.lib.writeback.contracts import round_money
from ps_pipelines.lib.writeback.event_path import EventStore
from tests.conftest import workspaces_of_opportunity
from tests.defs.writeback.conftest import Pipeline
from tests.lib.writeback.test_end_to_end import approve_time_and_materials_week


def posting_metadata(result: ExecuteInProcessResult, key: Any) -> dict[str, Any]:
    [event] = [m for m in result.get_asset_materialization_events() if m.asset_key == key]
    return {name: getattr(value, "value", value) for name, value in event.materialization.metadata.items()}


def event_metadata(result: ExecuteInProcessResult) -> dict[str, Any]:
    """The post op's figures of an event run."""
    [event] = [e for e in result.all_events if e.event_type_value == "STEP_OUTPUT" and e.step_key.endswith("_post")]
    return {name: getattr(value, "value", value) for name, value in event.event_specific_data.metadata.items()}


def reconciliation(result: ExecuteInProcessResult) -> Any:
    [evaluation] = [e.event_specific_data for e in result.all_events
                    if e.event_type_value == "ASSET_CHECK_EVALUATION"
                    and e.event_specific_data.check_name == RECONCILIATION_CHECK]
    return evaluation


def assert_invoice_prices_the_approved_hours(pipeline: Pipeline, entries: list[str], invoice_id: str,
                                            outbound: Path | None = None) -> None:
    """Each approved entry is a line of its hours at the rate resolved for it (dbt: contract or
    rate card as of the work date, in the ``outbound`` database that posted it: the warehouse, or
    the event store), the amount is hours x rate to the cent, and the invoice's total is the sum
    of all its lines."""
    lines = {row["custcol_ps_line_key"]: row for row in pipeline.suiteql(
        f"SELECT custcol_ps_line_key, quantity, rate, foreignamount FROM transactionline "
        f"WHERE transaction = '{invoice_id}' AND mainline = 'F'")}
    with duckdb.connect(str(outbound or pipeline.warehouse), read_only=True) as con:
        resolved = dict(con.execute("SELECT line_external_id, unit_rate FROM outbound.erp_billing_transactions")
                        .fetchall())
    store = pipeline.sandbox.ctx.store
    for entry in entries:
        line = lines[f"psp:inl:time_entry:{entry}"]
        hours = Decimal(store.get("kantata", "time_entries", entry)["time_in_minutes"]) / 60
        # NetSuite keeps two decimals, rounded half away from zero like the warehouse.
        assert Decimal(line["quantity"]) == round_money(hours, "USD")
        assert Decimal(line["rate"]) == round_money(resolved[f"psp:inl:time_entry:{entry}"], "USD")
        assert Decimal(line["foreignamount"]) == round_money(Decimal(line["quantity"]) * Decimal(line["rate"]), "USD")
    [header] = pipeline.suiteql(f"SELECT foreigntotal FROM transaction WHERE id = '{invoice_id}'")
    assert Decimal(header["foreigntotal"]) == sum(Decimal(line["foreignamount"]) for line in lines.values())


def test_won_deal_and_approved_week_reach_the_erp_once_by_the_event_path_and_the_batch_path_agrees(
    pipeline: Pipeline,
) -> None:
    # Bootstrap: the batch jobs post the historical backlog; the sensors' first ticks start at "now".
    pipeline.run(ACTIVATE_PROJECTS_JOB)
    first_billing = pipeline.run(POST_INVOICES_JOB)
    assert reconciliation(first_billing).passed
    deals_cursor = pipeline.tick(WON_DEALS_SENSOR, None).cursor
    work_cursor = pipeline.tick(APPROVED_WORK_SENSOR, None).cursor

    won = pipeline.sandbox.control("POST", "events/deal-won", json={})
    approved = approve_time_and_materials_week(pipeline.sandbox)
    deal_tick = pipeline.tick(WON_DEALS_SENSOR, deals_cursor)
    work_tick = pipeline.tick(APPROVED_WORK_SENSOR, work_cursor)
    [deal_request], [work_request] = deal_tick.run_requests, work_tick.run_requests
    assert won["opportunity_id"] in deal_request.tags["ps/events"]
    # A replayed tick (same cursor, same events) asks for the same run: Dagster starts it once.
    assert pipeline.tick(WON_DEALS_SENSOR, deals_cursor).run_requests[0].run_key == deal_request.run_key

    activation = pipeline.run_event(EVENT_ACTIVATION_JOB, deal_request)
    billing = pipeline.run_event(EVENT_BILLING_JOB, work_request)

    opportunity = won["opportunity_id"]
    [job] = pipeline.suiteql(f"SELECT id, parent FROM job WHERE externalid = '{opportunity}'")
    assert pipeline.suiteql(f"SELECT id FROM customer WHERE id = '{job['parent']}'")
    workspaces = workspaces_of_opportunity(pipeline.sandbox.ctx.store, opportunity)
    assert len(workspaces) == 1
    crm = pipeline.sandbox.ctx.store.get("salesforce", "Opportunity", opportunity)
    assert crm["ERP_Project_Id__c"] == job["id"] and crm["Activation_Status__c"]
    assert event_metadata(activation)["dead"] == 0
    assert {"kantata:workspace", "netsuite:job", "salesforce:opportunity"} <= set(
        event_metadata(activation)["written_record_types"])

    line_keys = sorted(f"psp:inl:time_entry:{entry}" for entry in approved)
    keys = ", ".join(f"'{key}'" for key in line_keys)
    on_erp = pipeline.suiteql(f"SELECT transaction, custcol_ps_line_key FROM transactionline "
                              f"WHERE custcol_ps_line_key IN ({keys})")
    assert sorted(line["custcol_ps_line_key"] for line in on_erp) == line_keys
    assert len({line["transaction"] for line in on_erp}) == 1  # one invoice for the week
    assert_invoice_prices_the_approved_hours(pipeline, approved, on_erp[0]["transaction"],
                                             outbound=EventStore.beside(pipeline.warehouse).path)
    invoices_before = pipeline.suiteql("SELECT id, externalid, foreigntotal FROM transaction "
                                       "WHERE externalid LIKE 'psp:inv:%' ORDER BY id")

    # The batch path, over the same events, finds every transaction already posted as it would
    # have posted it: nothing to send, the ERP unchanged, reconciliation green.
    again = pipeline.run(ACTIVATE_PROJECTS_JOB), pipeline.run(POST_INVOICES_JOB)
    for result, key in zip(again, [ACTIVATIONS_KEY, INVOICES_KEY], strict=True):
        metadata = posting_metadata(result, key)
        assert (metadata["posted"], metadata["updated"], metadata["requests"]) == (0, 0, 0), metadata
    assert reconciliation(again[1]).passed
    assert pipeline.suiteql("SELECT id, externalid, foreigntotal FROM transaction "
                            "WHERE externalid LIKE 'psp:inv:%' ORDER BY id") == invoices_before
    assert len(pipeline.suiteql(f"SELECT id FROM job WHERE externalid = '{opportunity}'")) == 1
    # And the event jobs run again with the same events post nothing either.
    for job_name, request in ((EVENT_ACTIVATION_JOB, deal_request), (EVENT_BILLING_JOB, work_request)):
        metadata = event_metadata(pipeline.run_event(job_name, request))
        assert (metadata["posted"], metadata["updated"]) == (0, 0), metadata
    # Traceability: every line of the week is in the ledger, with the event run that posted it.
    posted_by = pipeline.ledger(
        f"SELECT DISTINCT posted_run_id FROM ops.outbox_invoice_lines WHERE line_external_id IN ({keys})")
    assert posted_by == [(billing.run_id,)]


def test_erp_faults_end_in_one_posting_rejections_are_dead_letters_and_tampering_fails_reconciliation(
    pipeline: Pipeline,
) -> None:
    pipeline.run(POST_INVOICES_JOB)
    approved = approve_time_and_materials_week(pipeline.sandbox)
    # Throttling and server errors on the invoice record: retried with backoff, posted once.
    faults = [{"kind": "429", "retry_after": 0}, {"kind": "503"}, {"kind": "429"}]
    pipeline.sandbox.control("PUT", "faults/netsuite", {"queue": faults, "path_contains": "/record/v1/invoice"})
    billing = pipeline.run(POST_INVOICES_JOB)
    metadata = posting_metadata(billing, INVOICES_KEY)
    assert metadata["posted"] + metadata["updated"] >= 1 and metadata["throttled"] == 2, metadata
    assert metadata["dead"] == metadata["failed_retryable"] == 0
    keys = ", ".join(f"'psp:inl:time_entry:{entry}'" for entry in approved)
    on_erp = pipeline.suiteql(f"SELECT custcol_ps_line_key FROM transactionline WHERE custcol_ps_line_key IN ({keys})")
    assert len(on_erp) == len(approved)
    assert reconciliation(billing).passed

    # The ERP rejects an invoice whose customer it no longer has (deleted after our last read):
    # a 400 is not retried, and the dead-letter asset names the transaction and the ERP's reason.
    approved = approve_time_and_materials_week(pipeline.sandbox)
    build_only = [key for key in pipeline.defs.resolve_job_def(POST_INVOICES_JOB).asset_layer.selected_asset_keys
                  if key not in (INVOICES_KEY, DEAD_LETTERS_KEY)]
    pipeline.run(POST_INVOICES_JOB, asset_selection=build_only)
    [(customer,)] = pipeline.ledger(
        "SELECT DISTINCT erp_customer_id FROM outbound.erp_billing_transactions WHERE line_external_id = ?",
        [f"psp:inl:time_entry:{approved[0]}"])
    pipeline.sandbox.control("POST", "events/delete", json={
        "platform": "netsuite", "object": "customer", "id": customer, "hard": True})
    rejected = pipeline.run(POST_INVOICES_JOB, asset_selection=[INVOICES_KEY, DEAD_LETTERS_KEY])
    assert posting_metadata(rejected, INVOICES_KEY)["dead"] >= 1
    dead = posting_metadata(rejected, DEAD_LETTERS_KEY)
    assert dead["by_state"]["dead"] >= 1
    assert "INVALID_KEY_OR_REF" in dead["preview"] and customer in dead["preview"]

    # Someone edits a posted invoice in the ERP: the reconciliation check fails, loudly.
    ours = pipeline.suiteql("SELECT id, entity FROM transaction WHERE externalid LIKE 'psp:inv:%'")
    invoice = next(row for row in ours if row["entity"] != customer)
    forged = {"items": [{"item": {"id": "Professional Services - Consultant"}, "quantity": 1, "rate": 10,
                         "amount": 10, "custcol_ps_line_key": "psp:inl:time_entry:forged"}]}
    pipeline.netsuite.client.request("PATCH", f"/services/rest/record/v1/invoice/{invoice['id']}",
                                     json={"item": forged})
    evaluation = reconciliation(pipeline.run(POST_INVOICES_JOB, asset_selection=[INVOICES_KEY]))
    assert not evaluation.passed and "mismatched" in (evaluation.description or "")


def test_posting_jobs_run_in_one_process_with_ingestion_checks_and_reconciliation_but_no_dbt_tests() -> None:
    defs = build_definitions("local")
    graph = defs.resolve_asset_graph()
    for name, posting in ((ACTIVATE_PROJECTS_JOB, ACTIVATIONS_KEY), (POST_INVOICES_JOB, INVOICES_KEY)):
        job = defs.resolve_job_def(name)
        assert job.executor_def.name == "in_process"
        selection = posting_selection(posting)
        assets, checks = selection.resolve(graph), selection.resolve_checks(graph)
        assert {posting, DEAD_LETTERS_KEY} <= assets
        assert {key.asset_key for key in checks} <= {k for k in assets if k.path[0] in ("raw", "writeback")}
        assert any(key.name == "contract_valid" for key in checks)
    assert any(key.name == RECONCILIATION_CHECK for key in posting_selection(INVOICES_KEY).resolve_checks(graph))


def test_the_replay_job_sends_dead_letters_of_both_flows() -> None:
    job = build_definitions("local").resolve_job_def("replay_dead_letters")
    posting_ops = {key.to_python_identifier() for key in (ACTIVATIONS_KEY, INVOICES_KEY)}
    assert posting_ops <= {node.name for node in job.graph.nodes}
    assert job.run_config == {"ops": {op: {"config": {"replay_dead": True}} for op in posting_ops}}
