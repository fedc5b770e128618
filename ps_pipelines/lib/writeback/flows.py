"""The two write-back flows end to end: read the outbound model, enqueue, post.

Each function reads its outbound model through ``con`` (the warehouse, or the event path's
database) and keeps the ledger through ``ledger`` (``LedgerStore.connect()``; by default the same
connection), posts to the target clients, and returns the run's ``PostSummary``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date

import duckdb

from ps_pipelines.lib.writeback.activation import ACTIVATION_FLOW, activation_items, read_activation_requests
from ps_pipelines.lib.writeback.outbox import OutboxItem, enqueue
from ps_pipelines.lib.writeback.payloads import (
    ACTIVATION_TABLE,
    BILLING_FLOW,
    BILLING_TABLE,
    invoice_items,
    read_billing_lines,
)
from ps_pipelines.lib.writeback.poster import AfterCall, Clock, Poster, PostSettings, PostSummary, utc_now
from ps_pipelines.lib.writeback.senders import Targets


def enqueue_and_post(
    con: duckdb.DuckDBPyConnection,
    flow: str,
    items: Sequence[OutboxItem],
    targets: Targets,
    *,
    run_id: str,
    settings: PostSettings | None = None,
    clock: Clock = utc_now,
    after_call: AfterCall | None = None,
) -> PostSummary:
    """Upsert ``items`` (the flow's complete desired state) into the ledger, then post what is due."""
    counts = enqueue(con, flow, items, run_id=run_id, now=clock())
    summary = Poster(con, targets, settings, clock=clock, after_call=after_call).post(flow, run_id)
    summary.enqueue = counts
    return summary


def run_billing(
    con: duckdb.DuckDBPyConnection,
    targets: Targets,
    *,
    run_id: str,
    closed_through: date | None = None,
    item_ids: Mapping[str, str] | None = None,
    table: str = BILLING_TABLE,
    settings: PostSettings | None = None,
    clock: Clock = utc_now,
    after_call: AfterCall | None = None,
    ledger: duckdb.DuckDBPyConnection | None = None,
) -> PostSummary:
    """Invoices from ``outbound.erp_billing_transactions`` into NetSuite."""
    items = invoice_items(read_billing_lines(con, table), closed_through=closed_through, item_ids=item_ids)
    return enqueue_and_post(con if ledger is None else ledger, BILLING_FLOW, items, targets, run_id=run_id,
                            settings=settings, clock=clock, after_call=after_call)


def run_activation(
    con: duckdb.DuckDBPyConnection,
    targets: Targets,
    *,
    run_id: str,
    table: str = ACTIVATION_TABLE,
    settings: PostSettings | None = None,
    clock: Clock = utc_now,
    after_call: AfterCall | None = None,
    ledger: duckdb.DuckDBPyConnection | None = None,
) -> PostSummary:
    """Won deals from ``outbound.erp_project_activation_requests`` into NetSuite, Kantata and Salesforce."""
    items = activation_items(read_activation_requests(con, table))
    return enqueue_and_post(con if ledger is None else ledger, ACTIVATION_FLOW, items, targets, run_id=run_id,
                            settings=settings, clock=clock, after_call=after_call)
