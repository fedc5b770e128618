"""The run-failure alert: a real failed run, a real ledger beside a DuckDB warehouse, a local webhook."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest
from dagster import (
    DagsterEventType,
    DagsterInstance,
    DagsterRun,
    DefaultSensorStatus,
    build_run_status_sensor_context,
    job,
    op,
)

from ps_pipelines.defs.writeback.alerts import AlertingResource, writeback_failure_sensor
from ps_pipelines.lib.warehouse.warehouse import Warehouse
from ps_pipelines.lib.writeback.ledger_store import LedgerStore
from ps_pipelines.resources import WarehouseResource
from tests.lib.test_notify import WebhookServer, webhook  # noqa: F401 (fixture)

LEAKED = "abc123"


@op
def post() -> None:
    raise ValueError(f"NetSuite rejected the batch: client_secret={LEAKED} invalid")


@job
def post_invoices() -> None:
    post()


@pytest.fixture(scope="module")
def instance() -> DagsterInstance:
    return DagsterInstance.ephemeral()


@pytest.fixture(scope="module")
def failed_run(instance: DagsterInstance) -> DagsterRun:
    """One real failed run for the module: every test only reads it."""
    result = post_invoices.execute_in_process(instance=instance, raise_on_error=False)
    assert not result.success
    return instance.get_run_by_id(result.run_id)


def _ledger(path: Path, rows: list[tuple[str, str, str]]) -> None:
    """Ledger rows (outbox key, state, last run id) in the ledger beside the warehouse at ``path``,
    not in the warehouse's mirror (which an event posting leaves behind)."""
    now = datetime(2026, 11, 23, tzinfo=UTC)
    with Warehouse(path).connect():
        pass  # the warehouse exists, with an empty mirror
    with LedgerStore.beside(path).connect() as con:
        for key, state, run_id in rows:
            con.execute("""
                INSERT INTO ops.outbox (outbox_key, flow, target_system, record_type, external_id, version, payload,
                    payload_hash, state, attempts, last_error, first_seen_at, updated_at, last_run_id)
                VALUES (?, 'billing', 'netsuite', 'invoice', ?, 1, '{}', 'h', ?, 2, ?, ?, ?, ?)""",
                [key, key.split(":", 2)[2], state, f"INVALID_KEY_OR_REF: {key} bad customer", now, now, run_id])


def _evaluate(instance: DagsterInstance, run: DagsterRun, warehouse: Path, webhook_url: str = "") -> list[str]:
    """Run the failure sensor on ``run``; returns what it logged at error level."""
    failure = next(e for e in instance.all_logs(run.run_id, of_type=DagsterEventType.RUN_FAILURE))
    context = build_run_status_sensor_context(
        sensor_name=writeback_failure_sensor.name, dagster_event=failure.dagster_event, dagster_instance=instance,
        dagster_run=run, resources={"alerting": AlertingResource(webhook_url=webhook_url),
                                    "warehouse": WarehouseResource(database_path=str(warehouse))},
    ).for_run_failure()
    logged: list[str] = []
    handler = logging.Handler(logging.ERROR)
    handler.emit = lambda record: logged.append(record.getMessage())  # type: ignore[method-assign]
    context.log.addHandler(handler)
    writeback_failure_sensor(context)
    return logged


def test_a_failed_run_is_reported_with_its_step_error_and_the_transactions_it_left_failing(
    instance: DagsterInstance, failed_run: DagsterRun, webhook: WebhookServer, tmp_path: Path  # noqa: F811
) -> None:
    warehouse = tmp_path / "warehouse.duckdb"
    run_id = failed_run.run_id
    _ledger(warehouse, [
        ("netsuite:invoice:psp:inv:1:1:USD:2026-10", "dead", run_id),
        ("netsuite:invoice:psp:inv:2:1:USD:2026-10", "invalid", run_id),
        ("netsuite:invoice:psp:inv:3:1:USD:2026-10", "failed_retryable", run_id),
        ("netsuite:invoice:psp:inv:4:1:USD:2026-10", "posted", run_id),
        ("netsuite:invoice:psp:inv:5:1:USD:2026-10", "dead", "another-run"),
    ])
    assert _evaluate(instance, failed_run, warehouse, webhook.url) == []  # delivered: nothing to log

    [request] = webhook.received
    alert = request["json"]
    assert (alert["run_id"], alert["job_name"], alert["status"]) == (run_id, "post_invoices", "FAILURE")
    assert alert["steps"] == [{"step_key": "post", "error": "ValueError: NetSuite rejected the batch: "
                                                            "client_secret=*** invalid"}]
    failing = alert["failing_transactions"]
    assert failing["total"] == 3
    assert [(row["outbox_key"].split(":")[4], row["state"]) for row in failing["listed"]] == [
        ("1", "dead"), ("3", "failed_retryable"), ("2", "invalid")]
    assert run_id in alert["text"] and "psp:inv:2:1:USD:2026-10 [invalid, 2 attempt(s)]" in alert["text"]
    assert LEAKED not in json.dumps(alert)


def test_many_failing_transactions_are_listed_briefly(
    instance: DagsterInstance, failed_run: DagsterRun, webhook: WebhookServer, tmp_path: Path  # noqa: F811
) -> None:
    warehouse = tmp_path / "warehouse.duckdb"
    _ledger(warehouse, [(f"netsuite:invoice:psp:inv:{i:02d}:1:USD:2026-10", "dead", failed_run.run_id)
                        for i in range(15)])
    _evaluate(instance, failed_run, warehouse, webhook.url)
    alert = webhook.received[0]["json"]
    assert alert["failing_transactions"]["total"] == 15
    assert len(alert["failing_transactions"]["listed"]) == 10
    assert "... and 5 more" in alert["text"]


def test_without_a_webhook_the_alert_goes_to_the_log(
    instance: DagsterInstance, failed_run: DagsterRun, tmp_path: Path
) -> None:
    warehouse = tmp_path / "warehouse.duckdb"
    _ledger(warehouse, [("netsuite:invoice:psp:inv:1:1:USD:2026-10", "dead", failed_run.run_id)])
    [message] = _evaluate(instance, failed_run, warehouse)
    assert f"Run {failed_run.run_id} of job post_invoices failed." in message
    assert "psp:inv:1:1:USD:2026-10 [dead" in message and LEAKED not in message


def test_a_refusing_webhook_still_leaves_the_alert_in_the_log(
    instance: DagsterInstance, failed_run: DagsterRun, webhook: WebhookServer, tmp_path: Path  # noqa: F811
) -> None:
    webhook.statuses = [403]
    [message] = _evaluate(instance, failed_run, tmp_path / "warehouse.duckdb", webhook.url)
    assert "refused the alert: HTTP 403" in message
    assert f"Run {failed_run.run_id} of job post_invoices failed." in message
    assert "hooks/T0" not in message  # the webhook URL's secret path is never logged


@pytest.mark.parametrize("setup", ["none", "no_tables"])
def test_a_warehouse_without_a_ledger_still_gives_an_alert(
    instance: DagsterInstance, failed_run: DagsterRun, webhook: WebhookServer, tmp_path: Path,  # noqa: F811
    setup: str,
) -> None:
    warehouse = tmp_path / "warehouse.duckdb"
    if setup == "no_tables":
        duckdb.connect(str(LedgerStore.beside(warehouse).path)).close()
    _evaluate(instance, failed_run, warehouse, webhook.url)
    alert = webhook.received[0]["json"]
    assert alert["failing_transactions"] == {"total": 0, "listed": [], "note": "no write-back ledger"}
    assert alert["steps"][0]["step_key"] == "post"


def test_the_failure_sensor_is_on_by_default() -> None:
    assert writeback_failure_sensor.name == "writeback_failure_sensor"
    assert writeback_failure_sensor.default_status == DefaultSensorStatus.RUNNING
