"""The event path over a real sandbox: the outbound models it builds are dbt's, row for row; it
posts while the warehouse is held by a batch run; and what it posts, the batch path leaves alone."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import duckdb

from ps_pipelines.defs.writeback.assets import ACTIVATIONS_KEY, DEAD_LETTERS_KEY, INVOICES_KEY
from ps_pipelines.defs.writeback.jobs import ACTIVATE_PROJECTS_JOB, POST_INVOICES_JOB
from ps_pipelines.events.jobs import EVENT_ACTIVATION_JOB, EVENT_BILLING_JOB
from ps_pipelines.lib.warehouse.warehouse import Warehouse
from ps_pipelines.lib.writeback.activation import ACTIVATION_FLOW
from ps_pipelines.lib.writeback.event_path import (
    EventPosting,
    EventStore,
    build_flow_outbound,
    ingest_flow_sources,
    post_events,
)
from ps_pipelines.lib.writeback.event_plan import ACTIVATION_MODEL, BILLING_MODEL
from ps_pipelines.lib.writeback.flows import run_billing
from ps_pipelines.lib.writeback.ledger_store import LedgerStore, posting_ledger
from ps_pipelines.lib.writeback.payloads import BILLING_FLOW
from ps_pipelines.lib.writeback.poster import PostSummary
from ps_pipelines.lib.writeback.senders import Targets
from ps_pipelines.resources import build_resources
from tests.defs.writeback.conftest import Pipeline
from tests.defs.writeback.test_writeback_jobs import event_metadata, posting_metadata
from tests.lib.writeback.test_end_to_end import approve_time_and_materials_week


def build_only(pipeline: Pipeline, job_name: str, posting_key: object) -> None:
    """The batch job's ingestion and dbt models, without its posting."""
    keys = pipeline.defs.resolve_job_def(job_name).asset_layer.selected_asset_keys
    pipeline.run(job_name, asset_selection=[key for key in keys if key not in (posting_key, DEAD_LETTERS_KEY)])


def test_the_event_path_builds_both_outbound_models_exactly_as_dbt_does(pipeline: Pipeline) -> None:
    pipeline.run(ACTIVATE_PROJECTS_JOB)  # a ledger with activations: the billing setup reads it
    approve_time_and_materials_week(pipeline.sandbox)
    build_only(pipeline, ACTIVATE_PROJECTS_JOB, ACTIVATIONS_KEY)
    build_only(pipeline, POST_INVOICES_JOB, INVOICES_KEY)

    store, ledger = EventStore.beside(pipeline.warehouse), LedgerStore.beside(pipeline.warehouse)
    resources = build_resources("local", sandbox_url=pipeline.sandbox.url, warehouse_path=str(pipeline.warehouse))
    clients = {name: resources[name].client() for name in ("salesforce", "kantata", "workday", "netsuite")}
    plan = store.plan()
    for flow in (ACTIVATION_FLOW, BILLING_FLOW):
        posting = EventPosting(flow)
        ingest_flow_sources(store, plan, flow, clients, run_id=f"test-{flow}", posting=posting)
        build_flow_outbound(store, plan, flow, ledger, posting=posting)

    with duckdb.connect(str(store.path), read_only=True) as con:
        con.execute(f"ATTACH '{pipeline.warehouse}' AS dbt_built (READ_ONLY)")
        for model in (ACTIVATION_MODEL, BILLING_MODEL):
            ours, dbts = f"outbound.{model}", f"dbt_built.outbound.{model}"
            assert con.execute(f"DESCRIBE {ours}").fetchall() == con.execute(f"DESCRIBE {dbts}").fetchall()
            [(rows,)] = con.execute(f"SELECT count(*) FROM {dbts}").fetchall()
            assert rows > 0, model
            for left, right in ((ours, dbts), (dbts, ours)):
                [(extra,)] = con.execute(f"SELECT count(*) FROM (FROM {left} EXCEPT ALL FROM {right})").fetchall()
                assert extra == 0, (model, left)


def test_an_event_is_posted_while_a_batch_run_holds_the_warehouse_and_the_batch_then_posts_nothing(
    pipeline: Pipeline,
) -> None:
    pipeline.run(ACTIVATE_PROJECTS_JOB)
    pipeline.run(POST_INVOICES_JOB)
    approved = approve_time_and_materials_week(pipeline.sandbox)

    held, release, released_at = threading.Event(), threading.Event(), []

    def batch_run_holding_the_warehouse() -> None:
        with Warehouse(pipeline.warehouse).connect():
            held.set()
            release.wait(timeout=300)
            released_at.append(time.monotonic())

    holder = threading.Thread(target=batch_run_holding_the_warehouse)
    holder.start()
    assert held.wait(timeout=60)
    try:
        event = pipeline.run_event(EVENT_BILLING_JOB)
        posted_at = time.monotonic()
    finally:
        release.set()
        holder.join()
    assert posted_at < released_at[0]  # the event run never waited for the warehouse
    metadata = event_metadata(event)
    assert metadata["posted"] + metadata["updated"] >= 1, metadata

    keys = ", ".join(f"'psp:inl:time_entry:{entry}'" for entry in approved)
    on_erp = pipeline.suiteql(f"SELECT transaction FROM transactionline WHERE custcol_ps_line_key IN ({keys})")
    assert len(on_erp) == len(approved) and len({row["transaction"] for row in on_erp}) == 1

    batch = pipeline.run(POST_INVOICES_JOB)
    metadata = posting_metadata(batch, INVOICES_KEY)
    assert (metadata["posted"], metadata["updated"], metadata["requests"]) == (0, 0, 0), metadata
    assert pipeline.suiteql(f"SELECT transaction FROM transactionline WHERE custcol_ps_line_key IN ({keys})") == on_erp


def test_a_deal_won_seconds_after_the_last_event_run_is_activated_by_the_next_one(pipeline: Pipeline) -> None:
    pipeline.run(ACTIVATE_PROJECTS_JOB)
    pipeline.run_event(EVENT_ACTIVATION_JOB)  # the store was just read: other platforms' tables are not due
    won = pipeline.sandbox.control("POST", "events/deal-won", json={})  # also creates the deal's contract
    assert won["contract_created"]
    event = pipeline.run_event(EVENT_ACTIVATION_JOB)

    opportunity = won["opportunity_id"]
    assert {"netsuite:job", "salesforce:opportunity"} <= set(event_metadata(event)["written_record_types"])
    [job] = pipeline.suiteql(f"SELECT id FROM job WHERE externalid = '{opportunity}'")
    crm = pipeline.sandbox.ctx.store.get("salesforce", "Opportunity", opportunity)
    assert crm["ERP_Project_Id__c"] == job["id"] and crm["Activation_Status__c"] == "Complete"


def test_an_event_posted_while_a_batch_posting_runs_reaches_the_erp_once(pipeline: Pipeline) -> None:
    """A batch posting and an event posting of the same approved week, at the same moment: the
    ledger lets one send the invoice's new version; the other finds it unchanged."""
    pipeline.run(ACTIVATE_PROJECTS_JOB)
    pipeline.run(POST_INVOICES_JOB)
    pipeline.run_event(EVENT_BILLING_JOB)  # the event store loaded, as after any earlier event
    approved = approve_time_and_materials_week(pipeline.sandbox)
    build_only(pipeline, POST_INVOICES_JOB, INVOICES_KEY)  # the batch's outbound has the week too

    warehouse = Warehouse(pipeline.warehouse)
    store, ledger = EventStore.beside(pipeline.warehouse), LedgerStore.beside(pipeline.warehouse)

    def clients() -> dict[str, Any]:
        resources = build_resources("local", sandbox_url=pipeline.sandbox.url, warehouse_path=str(pipeline.warehouse))
        return {name: resources[name].client() for name in ("salesforce", "kantata", "workday", "netsuite")}

    start = threading.Barrier(2)

    def batch() -> PostSummary:
        with warehouse.connect() as con:
            start.wait(timeout=60)
            with posting_ledger(con, warehouse.ledger) as ledger_con:
                return run_billing(con, Targets(netsuite=clients()["netsuite"]), run_id="batch", ledger=ledger_con)

    def event() -> PostSummary:
        sources = clients()
        start.wait(timeout=60)
        posting = post_events(BILLING_FLOW, store, ledger, sources, Targets(netsuite=sources["netsuite"]),
                              run_id="event", warehouse_path=pipeline.warehouse)
        assert posting.summary is not None
        return posting.summary

    with ThreadPoolExecutor(2) as pool:
        batch_summary, event_summary = (future.result(timeout=600) for future in
                                        (pool.submit(batch), pool.submit(event)))

    keys = ", ".join(f"'psp:inl:time_entry:{entry}'" for entry in approved)
    on_erp = pipeline.suiteql(f"SELECT transaction FROM transactionline WHERE custcol_ps_line_key IN ({keys})")
    assert len(on_erp) == len(approved) and len({row["transaction"] for row in on_erp}) == 1
    sent = [(s.posted + s.updated) for s in (batch_summary, event_summary)]
    assert sum(sent) >= 1 and 0 in sent, sent  # one of them sent the week's invoice, the other nothing
    with ledger.read() as con:
        [(attempts,)] = con.execute(
            "SELECT count(*) FROM ops.outbox_attempts a JOIN ops.outbox o USING (outbox_key) "
            "WHERE o.external_id = (SELECT invoice_external_id FROM ops.outbox_invoice_lines "
            "WHERE line_external_id = ?) AND a.version = o.version", [f"psp:inl:time_entry:{approved[0]}"]).fetchall()
    assert attempts == 1
