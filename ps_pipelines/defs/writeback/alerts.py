"""Failure alerts: any failed run is reported to a webhook (or the log) with what failed.

The message names the run, its job, the failing steps' errors and, for write-back runs, the
ledger rows the run left failing (``ops.outbox`` rows whose ``last_run_id`` is the run and whose
state is failed_retryable, dead or invalid; read from the ledger's own file, whose lock a rebuild
does not hold), so whoever is on call sees which invoices or deals are stuck without opening the
warehouse. It stays short: a few steps, a few transactions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import duckdb
from dagster import (
    ConfigurableResource,
    DagsterEvent,
    DagsterRun,
    DefaultSensorStatus,
    RunFailureSensorContext,
    run_failure_sensor,
)
from pydantic import Field

from ps_pipelines.lib.notify import DEFAULT_TIMEOUT_SECONDS, Alert, AlertDeliveryError, send_alert
from ps_pipelines.lib.warehouse.lock import WarehouseBusyError
from ps_pipelines.lib.writeback.ledger_store import LedgerStore, ledger_path_for
from ps_pipelines.lib.writeback.outbox import NEEDS_ATTENTION
from ps_pipelines.resources import WarehouseResource

FAILING_STATES = NEEDS_ATTENTION
MAX_LISTED_STEPS = 3
MAX_LISTED_TRANSACTIONS = 10
MAX_ERROR_CHARS = 300
# The sensor waits this long at most for a posting to release the ledger.
LEDGER_LOCK_TIMEOUT_SECONDS = 10.0

_FAILING_SQL = f"""
    SELECT outbox_key, state, attempts, last_error, count(*) OVER () AS total
    FROM ops.outbox
    WHERE last_run_id = ? AND state IN ({", ".join(f"'{s}'" for s in FAILING_STATES)})
    ORDER BY state, outbox_key
    LIMIT {MAX_LISTED_TRANSACTIONS}
"""


class AlertingResource(ConfigurableResource):
    """Where failure alerts go: a JSON webhook, else the Dagster log."""

    webhook_url: str = Field(
        default="", description="Incoming-webhook URL (Slack, Teams, ...); empty: alerts go to the run log only."
    )
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS

    def send(self, alert: Alert) -> str | None:
        """``None`` once delivered; the alert's text when no webhook is configured."""
        return send_alert(alert, self.webhook_url, timeout_seconds=self.timeout_seconds)


@dataclass(frozen=True)
class FailingTransactions:
    total: int
    rows: list[dict[str, Any]]
    note: str | None = None  # why the ledger could not be read, if it could not


@run_failure_sensor(
    name="writeback_failure_sensor",
    default_status=DefaultSensorStatus.RUNNING,
    # The event jobs run in the write-back code location: their failures are reported too.
    monitor_all_code_locations=True,
    description="Reports every failed run, with its step errors and the write-back transactions it left "
    "failing, to the alerting webhook (or the log).",
)
def writeback_failure_sensor(
    context: RunFailureSensorContext, alerting: AlertingResource, warehouse: WarehouseResource
) -> None:
    run = context.dagster_run
    transactions = failing_transactions(warehouse.database_path, run.run_id)
    alert = failure_alert(run, context.failure_event, context.get_step_failure_events(), transactions)
    try:
        undelivered = alerting.send(alert)
    except AlertDeliveryError as exc:
        undelivered = f"{exc}\n{alert.text()}"  # the alert still reaches the log
    if undelivered:
        context.log.error(undelivered)


def failure_alert(
    run: DagsterRun,
    failure_event: DagsterEvent,
    step_failures: Sequence[DagsterEvent],
    transactions: FailingTransactions,
) -> Alert:
    steps = [_step_error(event) for event in step_failures[:MAX_LISTED_STEPS]]
    lines = [f"Run {run.run_id} of job {run.job_name} failed."]
    if steps:
        lines += [f"Step {s['step_key']}: {s['error']}" for s in steps]
    else:  # the run failed outside any step (e.g. a resource could not start)
        lines.append(_short(failure_event.message or "no error message"))
    lines += _transaction_lines(transactions)
    fields = {
        "run_id": run.run_id,
        "job_name": run.job_name,
        "status": "FAILURE",
        "steps": steps,
        "failing_transactions": {"total": transactions.total, "listed": transactions.rows, "note": transactions.note},
        "tags": {k: v for k, v in run.tags.items() if k.startswith("ps/")},
    }
    return Alert(title=f"ps-pipelines: run of {run.job_name} failed ({run.run_id})", lines=lines, fields=fields)


def failing_transactions(database_path: str, run_id: str) -> FailingTransactions:
    """The run's failing rows of the ledger beside the warehouse, read under its lock, read-only."""
    ledger = LedgerStore(ledger_path_for(database_path), lock_timeout_seconds=LEDGER_LOCK_TIMEOUT_SECONDS)
    if not ledger.exists():
        return FailingTransactions(0, [], "no write-back ledger")
    try:
        with ledger.read() as con:
            if not _has_ledger(con):
                return FailingTransactions(0, [], "no write-back ledger")
            rows = con.execute(_FAILING_SQL, [run_id]).fetchall()
    except (WarehouseBusyError, duckdb.Error) as exc:
        return FailingTransactions(0, [], f"ledger not readable: {type(exc).__name__}")
    listed = [{"outbox_key": key, "state": state, "attempts": attempts, "last_error": _short(error or "")}
              for key, state, attempts, error, _ in rows]
    return FailingTransactions(rows[0][4] if rows else 0, listed)


def _has_ledger(con: duckdb.DuckDBPyConnection) -> bool:
    return bool(con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'ops' AND table_name = 'outbox'"
    ).fetchone()[0])


def _transaction_lines(transactions: FailingTransactions) -> list[str]:
    if transactions.note:
        return [f"Failing transactions: unknown ({transactions.note})."]
    if not transactions.total:
        return []
    lines = [f"Failing transactions: {transactions.total}."]
    lines += [f"- {row['outbox_key']} [{row['state']}, {row['attempts']} attempt(s)]: {row['last_error']}"
              for row in transactions.rows]
    if transactions.total > len(transactions.rows):
        lines.append(f"- ... and {transactions.total - len(transactions.rows)} more (ops.outbox, last_run_id).")
    return lines


def _step_error(event: DagsterEvent) -> dict[str, str]:
    error = getattr(event.event_specific_data, "error", None)
    # Dagster wraps the op's exception; the innermost cause is the one that says what went wrong.
    while error is not None and error.cause is not None:
        error = error.cause
    text = error.message if error is not None else (event.message or "")
    return {"step_key": event.step_key or "", "error": _short(text)}


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_ERROR_CHARS else text[: MAX_ERROR_CHARS - 3] + "..."
