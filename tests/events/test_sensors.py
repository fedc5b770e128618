"""The write-back sensors, evaluated tick by tick against the sandbox over real HTTP.

Business events are made through the sandbox control API; each tick is evaluated with the
cursor the previous one returned, as the Dagster daemon would.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pandas as pd
import pytest
from dagster import (
    DagsterEvent,
    DagsterEventType,
    DagsterInstance,
    DagsterRun,
    DagsterRunStatus,
    DefaultSensorStatus,
    SensorDefinition,
    build_sensor_context,
)
from dagster._core.definitions.sensor_definition import SensorExecutionData
from dagster._core.utils import make_new_run_id

from ps_pipelines.events.jobs import EVENT_ACTIVATION_JOB, EVENT_BILLING_JOB
from ps_pipelines.events.sensors import (
    APPROVED_WORK_SENSOR,
    WON_DEALS_SENSOR,
    build_writeback_sensors,
    decode_cursor,
)
from ps_pipelines.lib.sources.base import parse_timestamp
from ps_pipelines.lib.warehouse.warehouse import Warehouse
from ps_pipelines.lib.writeback import run_activation
from ps_pipelines.lib.writeback.activation import NEEDS_ATTENTION, STATUS_COMPLETE
from ps_pipelines.lib.writeback.payloads import ACTIVATION_TABLE
from ps_pipelines.resources import KantataResource, SalesforceResource, build_resources
from ps_sandbox.context import DEFAULT_CREDENTIALS
from tests.conftest import RunningSandbox
from tests.lib.writeback.conftest import make_targets, won_deal, write_outbound


@pytest.fixture
def sensors() -> dict[str, SensorDefinition]:
    return {s.name: s for s in build_writeback_sensors()}


@pytest.fixture
def resources(sandbox: RunningSandbox) -> dict[str, Any]:
    built = build_resources("local", sandbox_url=sandbox.url)
    return {"salesforce": built["salesforce"], "kantata": built["kantata"]}


@pytest.fixture
def instance() -> DagsterInstance:
    return DagsterInstance.ephemeral()


def tick(sensor: SensorDefinition, instance: DagsterInstance, resources: dict[str, Any],
         cursor: str | None) -> SensorExecutionData:
    context = build_sensor_context(instance=instance, cursor=cursor, resources=resources, sensor_name=sensor.name)
    return sensor.evaluate_tick(context)


def started(sensor: SensorDefinition, instance: DagsterInstance, resources: dict[str, Any]) -> str:
    """The cursor of a sensor's first tick, which must request nothing."""
    first = tick(sensor, instance, resources, None)
    assert first.run_requests == [] and first.cursor
    return first.cursor


def test_the_sensors_target_the_writeback_jobs_run_by_default_at_the_given_interval() -> None:
    by_name = {s.name: s for s in build_writeback_sensors(minimum_interval_seconds=7)}
    assert {name: s.job_name for name, s in by_name.items()} == {
        WON_DEALS_SENSOR: EVENT_ACTIVATION_JOB, APPROVED_WORK_SENSOR: EVENT_BILLING_JOB}
    assert {s.minimum_interval_seconds for s in by_name.values()} == {7}
    assert {s.default_status for s in by_name.values()} == {DefaultSensorStatus.RUNNING}
    assert {s.minimum_interval_seconds for s in build_writeback_sensors()} == {5}


def test_a_won_deal_yields_one_run_request_and_the_next_tick_none(
    sandbox: RunningSandbox, sensors: dict[str, SensorDefinition], instance: DagsterInstance,
    resources: dict[str, Any],
) -> None:
    sensor = sensors[WON_DEALS_SENSOR]
    cursor = started(sensor, instance, resources)
    won = sandbox.control("POST", "events/deal-won", {})["opportunity_id"]
    stamp = parse_timestamp(sandbox.control("GET", f"records/salesforce/Opportunity/{won}")["SystemModstamp"])

    result = tick(sensor, instance, resources, cursor)
    [request] = result.run_requests
    assert request.tags["ps/event_count"] == "1"
    assert request.tags["ps/first_event_at"] == request.tags["ps/last_event_at"] == stamp.isoformat()
    assert orjson.loads(request.tags["ps/events"]) == [["opportunity", won, stamp.isoformat()]]
    assert int(request.tags["dagster/priority"]) > 0
    assert tick(sensor, instance, resources, result.cursor).run_requests == []


def test_replaying_a_tick_over_the_same_events_gives_the_same_run_key(
    sandbox: RunningSandbox, sensors: dict[str, SensorDefinition], instance: DagsterInstance,
    resources: dict[str, Any],
) -> None:
    sensor = sensors[WON_DEALS_SENSOR]
    cursor = started(sensor, instance, resources)
    for _ in range(2):
        sandbox.control("POST", "events/deal-won", {})
    first, replay = (tick(sensor, instance, resources, cursor) for _ in range(2))
    assert first.run_requests[0].tags["ps/event_count"] == "2"
    assert [r.run_key for r in first.run_requests] == [r.run_key for r in replay.run_requests]
    # A new event is a new key.
    sandbox.control("POST", "events/deal-won", {})
    later = tick(sensor, instance, resources, cursor)
    assert later.run_requests[0].run_key != first.run_requests[0].run_key


def test_an_approved_week_yields_one_request_on_the_approved_work_sensor(
    sandbox: RunningSandbox, sensors: dict[str, SensorDefinition], instance: DagsterInstance,
    resources: dict[str, Any],
) -> None:
    sensor = sensors[APPROVED_WORK_SENSOR]
    cursor = started(sensor, instance, resources)
    week = sandbox.control("POST", "events/approve-week", {})
    billable = {i for i in week["approved"] + week["created"]
                if sandbox.ctx.store.get("kantata", "time_entries", i)["billable"]}

    result = tick(sensor, instance, resources, cursor)
    [request] = result.run_requests
    listed = orjson.loads(request.tags["ps/events"])
    assert {(kind, record_id) for kind, record_id, _ in listed} == {("time_entry", i) for i in billable}
    assert request.tags["ps/event_count"] == str(len(billable))
    assert tick(sensor, instance, resources, result.cursor).run_requests == []
    # The won-deals sensor does not react to PSA work.
    assert sensors[WON_DEALS_SENSOR].job_name != sensor.job_name


def test_our_own_status_writeback_does_not_trigger_activation_again(
    sandbox: RunningSandbox, sensors: dict[str, SensorDefinition], instance: DagsterInstance,
    resources: dict[str, Any],
) -> None:
    sensor = sensors[WON_DEALS_SENSOR]
    cursor = started(sensor, instance, resources)
    won = sandbox.control("POST", "events/deal-won", {})["opportunity_id"]
    after_win = tick(sensor, instance, resources, cursor)
    assert len(after_win.run_requests) == 1
    resources["salesforce"].client().update(
        "Opportunity", won, {"ERP_Project_Id__c": "4711", "Activation_Status__c": "Complete"})

    after_writeback = tick(sensor, instance, resources, after_win.cursor)
    assert after_writeback.run_requests == []
    assert after_writeback.cursor != after_win.cursor  # moved past the write-back


def test_the_activation_writeback_triggers_no_sensor_for_valid_or_invalid_deals_but_a_person_does(
    sandbox: RunningSandbox, sensors: dict[str, SensorDefinition], instance: DagsterInstance,
    resources: dict[str, Any], tmp_path: Path,
) -> None:
    """The activation flow marks a valid deal "Complete" and an invalid one "Needs attention: ..."
    in the CRM: neither is a new event, nor is the PSA workspace it creates. A person changing
    the deal afterwards is."""
    won_deals, approved_work = sensors[WON_DEALS_SENSOR], sensors[APPROVED_WORK_SENSOR]
    deals_cursor = started(won_deals, instance, resources)
    work_cursor = started(approved_work, instance, resources)
    valid = won_deal(sandbox)
    invalid = won_deal(sandbox, tax_code=None, validation_errors="tax_code")
    after_win = tick(won_deals, instance, resources, deals_cursor)
    [request] = after_win.run_requests
    assert request.tags["ps/event_count"] == "2"

    targets = make_targets(sandbox.url)
    with Warehouse(tmp_path / "warehouse.duckdb").connect() as con:
        write_outbound(con, ACTIVATION_TABLE, pd.concat([valid, invalid], ignore_index=True))
        summary = run_activation(con, targets, run_id="r1")
    for client in (targets.netsuite, targets.kantata, targets.salesforce):
        client.client.close()
    assert (summary.posted, summary.invalid) == (5, 3)
    crm = {i: sandbox.ctx.store.get("salesforce", "Opportunity", i)
           for i in (valid.at[0, "opportunity_id"], invalid.at[0, "opportunity_id"])}
    assert [c["Activation_Status__c"] for c in crm.values()] == [STATUS_COMPLETE, NEEDS_ATTENTION + "tax_code"]

    after_writeback = tick(won_deals, instance, resources, after_win.cursor)
    assert after_writeback.run_requests == []
    assert after_writeback.cursor != after_win.cursor  # moved past our writes: not read again
    assert tick(approved_work, instance, resources, work_cursor).run_requests == []

    # Sales ops edits the flagged deal in the CRM: that change is theirs, and an event.
    fixed = sandbox.control("POST", "events/deal-won", {"opportunity_id": invalid.at[0, "opportunity_id"]})
    [request] = tick(won_deals, instance, resources, after_writeback.cursor).run_requests
    assert orjson.loads(request.tags["ps/events"])[0][1] == fixed["opportunity_id"]


def test_an_unreachable_platform_skips_the_tick_and_keeps_the_cursor(
    sandbox: RunningSandbox, sensors: dict[str, SensorDefinition], instance: DagsterInstance,
    resources: dict[str, Any],
) -> None:
    sensor = sensors[WON_DEALS_SENSOR]
    cursor = started(sensor, instance, resources)
    sandbox.control("POST", "events/deal-won", {})
    down = {"salesforce": SalesforceResource(base_url="http://127.0.0.1:9", backoff_base_seconds=0.01,
                                             **DEFAULT_CREDENTIALS["salesforce"])}
    result = tick(sensor, instance, down, cursor)
    assert result.run_requests == [] and "not readable" in (result.skip_message or "")
    assert result.cursor in (None, cursor)
    # The platform back: the event is still reported.
    assert len(tick(sensor, instance, resources, cursor).run_requests) == 1


def test_a_wrong_token_skips_without_leaking_it(
    sandbox: RunningSandbox, sensors: dict[str, SensorDefinition], instance: DagsterInstance
) -> None:
    wrong = {"kantata": KantataResource(base_url=sandbox.url, token="not-the-token-s3cr3t")}
    result = tick(sensors[APPROVED_WORK_SENSOR], instance, wrong, None)
    assert result.run_requests == [] and "not-the-token-s3cr3t" not in (result.skip_message or "")


def test_an_unreadable_cursor_starts_again_at_the_newest_change() -> None:
    warnings: list[str] = []
    assert decode_cursor("{not json", warn=warnings.append) == {}
    assert decode_cursor('{"version": 99, "feeds": {}}', warn=warnings.append) == {}
    assert len(warnings) == 2


def test_events_arriving_while_a_run_waits_in_the_queue_are_left_to_that_run(
    sandbox: RunningSandbox, sensors: dict[str, SensorDefinition], instance: DagsterInstance,
    resources: dict[str, Any],
) -> None:
    """A run not started yet (queued) reads the sources when it starts, so it posts these events too."""
    sensor = sensors[WON_DEALS_SENSOR]
    cursor = started(sensor, instance, resources)
    queued = instance.add_run(DagsterRun(job_name=EVENT_ACTIVATION_JOB, run_id=make_new_run_id(),
                                         status=DagsterRunStatus.NOT_STARTED))
    sandbox.control("POST", "events/deal-won", {})
    covered = tick(sensor, instance, resources, cursor)
    assert covered.run_requests == [] and queued.run_id in (covered.skip_message or "")
    assert covered.cursor != cursor  # the event is handed over, not read again

    # Once that run has started it may have read the sources already: the next event gets a run.
    instance.handle_run_event(queued.run_id, DagsterEvent(
        event_type_value=DagsterEventType.RUN_START.value, job_name=EVENT_ACTIVATION_JOB))
    sandbox.control("POST", "events/deal-won", {})
    [request] = tick(sensor, instance, resources, covered.cursor).run_requests
    assert request.tags["ps/event_count"] == "1"
