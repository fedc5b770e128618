"""Write-back library (no orchestration imports): outbox ledger, payload contracts, poster,
reconciliation. The Dagster assets, jobs and sensors wrap these functions."""

from ps_pipelines.lib.writeback.activation import ACTIVATION_FLOW, activation_items, read_activation_requests
from ps_pipelines.lib.writeback.contracts import check_activation_requests, check_invoice_lines, minor_unit
from ps_pipelines.lib.writeback.flows import enqueue_and_post, run_activation, run_billing
from ps_pipelines.lib.writeback.outbox import (
    CANCELLED,
    DEAD,
    FAILED_RETRYABLE,
    INVALID,
    PENDING,
    POSTED,
    EnqueueCounts,
    OutboxItem,
    enqueue,
    ensure_outbox_tables,
    ledger_frame,
    outbox_key,
)
from ps_pipelines.lib.writeback.payloads import (
    BILLING_FLOW,
    INVOICE_PREFIX,
    invoice_items,
    invoice_payload,
    read_billing_lines,
)
from ps_pipelines.lib.writeback.poster import Poster, PostSettings, PostSummary
from ps_pipelines.lib.writeback.reconcile import DuplicateSweep, Reconciliation, reconcile_invoices, sweep_duplicates
from ps_pipelines.lib.writeback.senders import Sender, Targets

__all__ = [
    "ACTIVATION_FLOW",
    "BILLING_FLOW",
    "CANCELLED",
    "DEAD",
    "FAILED_RETRYABLE",
    "INVALID",
    "INVOICE_PREFIX",
    "PENDING",
    "POSTED",
    "DuplicateSweep",
    "EnqueueCounts",
    "OutboxItem",
    "PostSettings",
    "PostSummary",
    "Poster",
    "Reconciliation",
    "Sender",
    "Targets",
    "activation_items",
    "check_activation_requests",
    "check_invoice_lines",
    "enqueue",
    "enqueue_and_post",
    "ensure_outbox_tables",
    "invoice_items",
    "invoice_payload",
    "ledger_frame",
    "minor_unit",
    "outbox_key",
    "read_activation_requests",
    "read_billing_lines",
    "reconcile_invoices",
    "run_activation",
    "run_billing",
    "sweep_duplicates",
]
