"""The event jobs: a won deal or approved work posted to the ERP in seconds (``lib/writeback/event_path``).

One job per flow, three ops each (ingest the flow's raw tables into the event store, build its
outbound model from the compiled plan, post through the ledger), so the run's timeline shows
where the seconds go. They never open the warehouse and take no pool slot: a full refresh holding
the warehouse does not delay them. This module is loaded by the write-back code location, which
imports neither dagster-dbt nor the manifest, so a run starts in a fraction of the main graph's time.

The jobs are built for the firm's estate (``build_event_jobs``): the ingest op reads the raw
tables the estate's outbound model needs through the declared platforms' resources, the post op
sends through the estate's ERP, PSA(s) and CRM(s).
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
from ps_pipelines.estate import DEFAULT_ESTATE, Estate
from ps_pipelines.lib.sources.base import SourceClient
from ps_pipelines.lib.writeback.activation import ACTIVATION_FLOW, activation_systems
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
from ps_pipelines.resources import WarehouseResource

EVENT_ACTIVATION_JOB = "activate_projects_on_event"
EVENT_BILLING_JOB = "post_invoices_on_event"
EVENT_JOBS_BY_FLOW = {ACTIVATION_FLOW: EVENT_ACTIVATION_JOB, BILLING_FLOW: EVENT_BILLING_JOB}
# Same name as the batch posting's metadata: what the read-back after the posting must read.
WRITTEN_RECORD_TYPES = "written_record_types"


def stores(warehouse: WarehouseResource, estate: Estate = DEFAULT_ESTATE) -> tuple[EventStore, LedgerStore]:
    return EventStore.beside(warehouse.database_path, estate), LedgerStore.beside(warehouse.database_path)


def _ingest_op(flow: str, estate: Estate) -> OpDefinition:
    # Every declared platform is a resource of the same name (Certinia's is its Salesforce org).
    @op(name=f"{flow}_ingest_sources", out=Out(Nothing), required_resource_keys={"warehouse", *estate.platforms},
        description="The raw tables the flow's outbound model reads, incrementally into the event store "
                    "(contracts and quarantine as on the batch path).")
    def ingest_sources(context: OpExecutionContext) -> Output:
        store, _ = stores(context.resources.warehouse, estate)
        plan = store.plan()
        clients: dict[str, SourceClient] = {
            platform: getattr(context.resources, platform).client()
            for platform in dict.fromkeys(contract.platform for contract in flow_contracts(plan, flow))}
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


def _build_op(flow: str, estate: Estate) -> OpDefinition:
    @op(name=f"{flow}_build_outbound", ins={"ingested": In(Nothing)}, out=Out(Nothing),
        description="The flow's outbound model and its ancestors, from the SQL dbt compiled for them.")
    def build_outbound(context: OpExecutionContext, warehouse: WarehouseResource) -> Output:
        store, ledger = stores(warehouse, estate)
        posting = EventPosting(flow)
        build_flow_outbound(store, store.plan(), flow, ledger, posting=posting)
        return Output(None, metadata={"seconds": round(posting.seconds["build"], 3)})

    return build_outbound


def _post_op(flow: str, estate: Estate) -> OpDefinition:
    config_class = BillingConfig if flow == BILLING_FLOW else PostingConfig
    # The estate's ERP, PSA(s) and CRM(s): each request row names its own PSA and CRM.
    systems = activation_systems(estate)

    @op(name=f"{flow}_post", ins={"built": In(Nothing)}, out=Out(Nothing),
        required_resource_keys={"warehouse", *systems},
        description="What the outbound model says is missing, through the ledger (shared with the batch path).")
    def post(context: OpExecutionContext, config: config_class) -> Output:  # type: ignore[valid-type]
        warehouse: WarehouseResource = context.resources.warehouse
        store, ledger = stores(warehouse, estate)
        targets = Targets(**{system: getattr(context.resources, system).client() for system in systems})
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


def event_job(flow: str, estate: Estate = DEFAULT_ESTATE) -> JobDefinition:
    ingest, build, post = _ingest_op(flow, estate), _build_op(flow, estate), _post_op(flow, estate)

    @job(name=EVENT_JOBS_BY_FLOW[flow], executor_def=in_process_executor,
         description=f"The {flow} flow for the events a write-back sensor saw: ingest, build, post "
                     "(seconds; the warehouse catches up on its next run).")
    def flow_job() -> None:
        post(built=build(ingested=ingest()))

    return flow_job


def build_event_jobs(estate: Estate = DEFAULT_ESTATE) -> list[JobDefinition]:
    """Both flows' event jobs for ``estate``."""
    return [event_job(ACTIVATION_FLOW, estate), event_job(BILLING_FLOW, estate)]
