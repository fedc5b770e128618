"""The event path: from a business event to the ERP in seconds, beside the warehouse.

A posting on the batch path waits for the warehouse (one writer, minutes of rebuild). The event
path keeps its own small database, the *event store* (``<warehouse>_events.duckdb``), with the
raw tables the outbound models read and nothing else, and three steps per flow:

1. ``ingest``: the flow's raw tables, incrementally since the store's own high-water marks (the
   same ``ingest_entity`` and pandera contracts as the batch path, so a bad row is quarantined
   the same way): seconds after an event, that is the changed records and little else. The
   tables of the platform the flow's events come from (the CRM for deals, the PSA for approved
   work) are read on every run; the others (ERP masters and rates, HR) when the store's copy is
   older than ``REFERENCE_MAX_AGE``, which is still fresher than the warehouse ever is;
2. ``build``: the flow's outbound model and its ancestors from the plan dbt compiled
   (``event_plan``), over the store, with the ledger mirrored in for the models that read it;
3. ``post``: the rows read from the outbound model go through the same ``run_activation`` /
   ``run_billing`` as the batch path, into the one ledger (``LedgerStore``) the batch path also
   posts through: whichever path comes first posts, the other finds the transaction unchanged.

The warehouse is never opened: the batch path catches up on its next run.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb

from ps_pipelines.estate import DEFAULT_ESTATE, Estate
from ps_pipelines.lib.change_feeds import approved_work_feeds, won_deal_feeds
from ps_pipelines.lib.contracts import EVERY_CONTRACT, EntityContract
from ps_pipelines.lib.ingestion import IngestOptions, IngestResult, ingest_entity
from ps_pipelines.lib.sources.base import SourceClient
from ps_pipelines.lib.warehouse.lock import WarehouseBusyError, exclusive_lock
from ps_pipelines.lib.warehouse.warehouse import Warehouse, ensure_raw_table
from ps_pipelines.lib.writeback.activation import ACTIVATION_FLOW
from ps_pipelines.lib.writeback.event_plan import (
    ACTIVATION_MODEL,
    BILLING_MODEL,
    EventPlan,
    load_or_compile,
    stored_plan,
)
from ps_pipelines.lib.writeback.flows import run_activation, run_billing
from ps_pipelines.lib.writeback.ledger_store import (
    LedgerStore,
    adopt_warehouse_ledger,
    is_adopted,
    mirror_ledger,
    record_nothing_to_adopt,
)
from ps_pipelines.lib.writeback.payloads import BILLING_FLOW
from ps_pipelines.lib.writeback.poster import PostSettings, PostSummary
from ps_pipelines.lib.writeback.senders import Targets

EVENT_STORE_SUFFIX = "_events.duckdb"
FLOW_MODELS = {ACTIVATION_FLOW: ACTIVATION_MODEL, BILLING_FLOW: BILLING_MODEL}
# Seconds after the last load, re-reading a short window is enough: the marks are the
# platform's own change times, and a late commit lands within seconds, not the batch's minutes.
EVENT_OVERLAP = timedelta(minutes=2)
CONTRACTS_BY_TABLE: dict[str, EntityContract] = {contract.raw_table: contract for contract in EVERY_CONTRACT}
# Read on every run: every table of the platforms the flow's events come from (the estate's
# CRMs for deals, its PSAs for work), not only the event's own table. Winning a deal also
# creates or changes its contract and account, and a deal activated seconds before a week is
# approved brings a new Kantata workspace; reading only the opportunity left such a deal
# "Needs attention" until the next refresh.
FLOW_FEEDS = {ACTIVATION_FLOW: won_deal_feeds, BILLING_FLOW: approved_work_feeds}
# The other platforms' tables (ERP masters and rates, HR) when the store's copy is older than
# this: still fresher than the warehouse, and what a just-activated deal's ERP ids would be
# missing, the billing setup takes from the ledger (stg_ops__activated_erp_records).
REFERENCE_MAX_AGE = timedelta(seconds=60)


def event_entities(flow: str, estate: Estate = DEFAULT_ESTATE) -> frozenset[str]:
    """The entity keys read on every run of ``flow``: all tables of the platforms its events come from."""
    platforms = {feed.platform for feed in FLOW_FEEDS[flow](estate)}
    return frozenset(c.key for c in EVERY_CONTRACT if c.platform in platforms)


@dataclass(frozen=True)
class EventStore:
    """The event path's database and the plan compiled for it, for one estate."""

    path: Path
    estate: Estate = DEFAULT_ESTATE

    @classmethod
    def beside(cls, warehouse_path: str | Path, estate: Estate = DEFAULT_ESTATE) -> EventStore:
        path = Path(warehouse_path)
        # An underscore, not a dot: DuckDB names the catalog after the file's stem, and the
        # compiled SQL names relations by catalog ("warehouse_events"."staging"...).
        return cls(path.with_name(path.stem + EVENT_STORE_SUFFIX), estate)

    @property
    def plan_dir(self) -> Path:
        """A plan (and dbt target) per estate, as the batch path has a manifest per estate."""
        suffix = "" if self.estate == DEFAULT_ESTATE else f"-estate-{'-'.join(self.estate.platforms)}"
        return self.path.with_name(self.path.stem + "_plan" + suffix)

    def warehouse(self) -> Warehouse:
        return Warehouse(self.path)

    def plan(self) -> EventPlan:
        """The compiled plan (compiled now if the dbt project changed: ~15 s, once). Each op of
        an event run asks for it, so the usual answer, the stored plan, touches no table."""
        lock = self.path.with_name(self.path.name + ".lock")
        with exclusive_lock(lock):
            plan = stored_plan(self.path, self.plan_dir, estate=self.estate)
        if plan is not None:
            return plan
        with self.warehouse().connect() as con:  # the raw tables first: dbt's macros look them up
            for contract in EVERY_CONTRACT:
                ensure_raw_table(con, contract)
        # dbt opens the file itself: compile under the store's lock, with no connection open.
        with exclusive_lock(lock):
            return load_or_compile(self.path, self.plan_dir, estate=self.estate)


@dataclass
class EventPosting:
    """What one event run did, step by step (seconds per step, for the run's metadata)."""

    flow: str
    ingested: list[IngestResult] = field(default_factory=list)
    summary: PostSummary | None = None
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def rows_fetched(self) -> int:
        return sum(result.fetched for result in self.ingested)


def flow_contracts(plan: EventPlan, flow: str) -> list[EntityContract]:
    """The raw tables (as contracts) the flow's outbound model reads, each parent before its
    children: a child (NetSuite invoice lines) loads the lines of the parents loaded since its
    own mark, so loaded first it would miss them and the invoice would look unbilled."""
    contracts = [CONTRACTS_BY_TABLE[t] for t in plan.sources[FLOW_MODELS[flow]] if t in CONTRACTS_BY_TABLE]
    return sorted(contracts, key=lambda contract: (contract.parent_entity is not None, contract.key))


def ingest_flow_sources(store: EventStore, plan: EventPlan, flow: str, clients: Mapping[str, SourceClient],
                        *, run_id: str, posting: EventPosting, now: datetime | None = None) -> None:
    started = time.perf_counter()
    options = IngestOptions(overlap=EVENT_OVERLAP)
    warehouse = store.warehouse()
    with warehouse.session() as con:
        due = due_entities(con, flow_contracts(plan, flow), event_entities(flow, store.estate),
                           now or datetime.now(UTC))
        for contract in due:
            result = ingest_entity(clients[contract.platform], warehouse, contract, run_id, options)
            posting.ingested.append(result)
    posting.seconds["ingest"] = time.perf_counter() - started


def due_entities(con: duckdb.DuckDBPyConnection, contracts: list[EntityContract], always: frozenset[str],
                 now: datetime) -> list[EntityContract]:
    """The event entities, every other one last loaded before ``REFERENCE_MAX_AGE``, and the
    children of any parent that is due (its new rows' lines come with them)."""
    loaded = dict(con.execute("SELECT entity_key, updated_at FROM ops.ingest_state").fetchall())
    due = {contract.key for contract in contracts
           if contract.key in always or contract.key not in loaded or now - loaded[contract.key] >= REFERENCE_MAX_AGE}
    due |= {c.key for c in contracts if c.parent_entity and f"{c.platform}__{c.parent_entity}" in due}
    return [contract for contract in contracts if contract.key in due]


def build_flow_outbound(store: EventStore, plan: EventPlan, flow: str, ledger: LedgerStore, *,
                        posting: EventPosting) -> None:
    started = time.perf_counter()
    with store.warehouse().connect() as con:
        with ledger.connect() as ledger_con:
            mirror_ledger(con, ledger_con)
        plan.run(con, FLOW_MODELS[flow])
    posting.seconds["build"] = time.perf_counter() - started


def post_flow(store: EventStore, flow: str, targets: Targets, ledger: LedgerStore, *, run_id: str,
              settings: PostSettings | None = None, closed_through: date | None = None,
              posting: EventPosting, warehouse_path: Path | None = None) -> None:
    started = time.perf_counter()
    if warehouse_path is not None:
        ensure_ledger_adopted(ledger, warehouse_path)
    with store.warehouse().connect() as con, ledger.connect() as ledger_con:
        if flow == BILLING_FLOW:
            posting.summary = run_billing(con, targets, run_id=run_id, closed_through=closed_through,
                                          settings=settings, ledger=ledger_con)
        else:
            posting.summary = run_activation(con, targets, run_id=run_id, settings=settings, ledger=ledger_con)
    posting.seconds["post"] = time.perf_counter() - started


class LedgerNotAdoptedError(RuntimeError):
    pass


ADOPTION_LOCK_TIMEOUT_SECONDS = 10.0


def ensure_ledger_adopted(ledger: LedgerStore, warehouse_path: Path) -> None:
    """Before the first event posting of a home whose ledger the warehouse still holds (from
    before the ledger store), take it over; posting without it would create every Kantata
    workspace again. The warehouse is taken first (the fixed lock order), briefly: when a batch
    run holds it, this run fails with the reason and the next event, or that batch run's own
    posting, adopts."""
    with ledger.connect() as con:
        if is_adopted(con):
            return
    if not warehouse_path.exists():
        with ledger.connect() as con:
            record_nothing_to_adopt(con)
        return
    try:
        with Warehouse(warehouse_path, lock_timeout_seconds=ADOPTION_LOCK_TIMEOUT_SECONDS).connect() as warehouse, \
                ledger.connect() as con:
            adopt_warehouse_ledger(warehouse, con)
    except WarehouseBusyError as exc:
        raise LedgerNotAdoptedError(
            f"the ledger has not yet taken over the rows the warehouse {warehouse_path} kept before the ledger "
            f"store, and the warehouse is busy ({exc}); nothing was posted: the next event run or the batch "
            "run's posting takes them over") from None


def post_events(flow: str, store: EventStore, ledger: LedgerStore, clients: Mapping[str, SourceClient],
                targets: Targets, *, run_id: str, settings: PostSettings | None = None,
                closed_through: date | None = None, warehouse_path: Path | None = None) -> EventPosting:
    """The three steps in one call (tests and the benchmark; the Dagster job runs them as ops)."""
    posting = EventPosting(flow)
    plan = store.plan()
    ingest_flow_sources(store, plan, flow, clients, run_id=run_id, posting=posting)
    build_flow_outbound(store, plan, flow, ledger, posting=posting)
    post_flow(store, flow, targets, ledger, run_id=run_id, settings=settings, closed_through=closed_through,
              posting=posting, warehouse_path=warehouse_path)
    return posting

