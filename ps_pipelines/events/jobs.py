"""The event jobs: a won deal or approved work posted to the ERP in seconds (``lib/writeback/event_path``).

One job per flow, three ops each (ingest the flow's raw tables into the event store, build its
outbound model from the compiled plan, post through the ledger), so the run's timeline shows
where the seconds go. They never open the warehouse and take no pool slot: a full refresh holding
the warehouse does not delay them. This module is loaded by the write-back code location, which
imports neither dagster-dbt nor the manifest, so a run starts in a fraction of the main graph's time.
"""


from pathlib import Path

from dagster import (
    In,
    JobDefinition,
    MetadataValue,
    Nothing,
    OpDefinition,
    OpExecutionContext,
    Out,
    Output,
    in_process_executor,
    job,
    op,
)

from ps_pipelines.defs.writeback.config import BillingConfig, PostingConfig
from ps_pipelines.lib.sources.base import SourceClient
from ps_pipelines.lib.writeback.activation import ACTIVATION_FLOW
from ps_pipelines.lib.writeback.event_path import (
    EventPosting,
    EventStore,
    build_flow_outbound,
    flow_contracts,
    ingest_flow_sources,
    post_flow,
)
from ps_pipelines.lib.writeback.ledger_store import LedgerStore
from ps_pipelines.lib.writeback.payloads import BILLING_FLOW
from ps_pipelines.lib.writeback.readback import attempted_record_types
from ps_pipelines.lib.writeback.senders import Targets
from ps_pipelines.resources import (
    KantataResource,
    NetSuiteResource,
    SalesforceResource,
    WarehouseResource,
    WorkdayResource,
)

EVENT_ACTIVATION_JOB = "activate_projects_on_event"
EVENT_BILLING_JOB = "post_invoices_on_event"
EVENT_JOBS_BY_FLOW = {ACTIVATION_FLOW: EVENT_ACTIVATION_JOB, BILLING_FLOW: EVENT_BILLING_JOB}
# Same name as the batch posting's metadata: what the read-back after the posting must read.
WRITTEN_RECORD_TYPES = "written_record_types"


def stores(warehouse: WarehouseResource) -> tuple[EventStore, LedgerStore]:
    return EventStore.beside(warehouse.database_path), LedgerStore.beside(warehouse.database_path)


def _ingest_op(flow: str) -> OpDefinition:
    @op(name=f"{flow}_ingest_sources", out=Out(Nothing),
        description="The raw tables the flow's outbound model reads, incrementally into the event store "
                    "(contracts and quarantine as on the batch path).")
    def ingest_sources(context: OpExecutionContext, warehouse: WarehouseResource, salesforce: SalesforceResource,
                       kantata: KantataResource, workday: WorkdayResource, netsuite: NetSuiteResource) -> Output:
        store, _ = stores(warehouse)
        plan = store.plan()
        resources = {"salesforce": salesforce, "kantata": kantata, "workday": workday, "netsuite": netsuite}
        clients: dict[str, SourceClient] = {
            contract.platform: resources[contract.platform].client() for contract in flow_contracts(plan, flow)}
        posting = EventPosting(flow)
        ingest_flow_sources(store, plan, flow, clients, run_id=context.run_id, posting=posting)
        moved = {r.entity_key: r.fetched for r in posting.ingested if r.fetched}
        quarantined = {r.entity_key: r.quarantined for r in posting.ingested if r.quarantined}
        context.log.info(f"{flow}: fetched {posting.rows_fetched} row(s) of {len(posting.ingested)} table(s) "
                         f"in {posting.seconds['ingest']:.2f}s")
        return Output(None, metadata={"seconds": round(posting.seconds["ingest"], 3),
                                      "rows_fetched": MetadataValue.json(moved),
                                      "rows_quarantined": MetadataValue.json(quarantined)})

    return ingest_sources


def _build_op(flow: str) -> OpDefinition:
    @op(name=f"{flow}_build_outbound", ins={"ingested": In(Nothing)}, out=Out(Nothing),
        description="The flow's outbound model and its ancestors, from the SQL dbt compiled for them.")
    def build_outbound(context: OpExecutionContext, warehouse: WarehouseResource) -> Output:
        store, ledger = stores(warehouse)
        posting = EventPosting(flow)
        build_flow_outbound(store, store.plan(), flow, ledger, posting=posting)
        return Output(None, metadata={"seconds": round(posting.seconds["build"], 3)})

    return build_outbound


def _post_op(flow: str) -> OpDefinition:
    config_class = BillingConfig if flow == BILLING_FLOW else PostingConfig

    @op(name=f"{flow}_post", ins={"built": In(Nothing)}, out=Out(Nothing),
        description="What the outbound model says is missing, through the ledger (shared with the batch path).")
    def post(context: OpExecutionContext, config: config_class, warehouse: WarehouseResource,  # type: ignore[valid-type]
             netsuite: NetSuiteResource, kantata: KantataResource, salesforce: SalesforceResource) -> Output:
        store, ledger = stores(warehouse)
        targets = Targets(netsuite=netsuite.client(), kantata=kantata.client(), salesforce=salesforce.client())
        posting = EventPosting(flow)
        closed_through = config.closed_through_date() if isinstance(config, BillingConfig) else None
        post_flow(store, flow, targets, ledger, run_id=context.run_id, settings=config.settings(),
                  closed_through=closed_through, posting=posting, warehouse_path=Path(warehouse.database_path))
        summary = posting.summary
        assert summary is not None
        with ledger.connect() as con:
            written = attempted_record_types(con, context.run_id)
        context.log.info(f"{flow}: posted {summary.posted}, updated {summary.updated}, unchanged "
                         f"{summary.unchanged}, invalid {summary.invalid}, failed {summary.failed_retryable}, "
                         f"dead {summary.dead} in {posting.seconds['post']:.2f}s")
        for key, reason in list(summary.failures.items())[:50]:
            context.log.warning(f"{key}: {reason}")
        metadata = summary.as_metadata()
        return Output(None, metadata={
            "seconds": round(posting.seconds["post"], 3),
            **{name: metadata[name] for name in ("posted", "updated", "unchanged", "invalid", "failed_retryable",
                                                  "dead", "blocked", "waiting") if name in metadata},
            WRITTEN_RECORD_TYPES: MetadataValue.json(written),
        })

    return post


def event_job(flow: str) -> JobDefinition:
    ingest, build, post = _ingest_op(flow), _build_op(flow), _post_op(flow)

    @job(name=EVENT_JOBS_BY_FLOW[flow], executor_def=in_process_executor,
         description=f"The {flow} flow for the events a write-back sensor saw: ingest, build, post "
                     "(seconds; the warehouse catches up on its next run).")
    def flow_job() -> None:
        post(built=build(ingested=ingest()))

    return flow_job


event_jobs = [event_job(ACTIVATION_FLOW), event_job(BILLING_FLOW)]
