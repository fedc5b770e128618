"""The event path on a HubSpot + Certinia estate, over real HTTP against the sandbox (issue 13).

The sensors read the declared CRM's and PSA's change feeds (HubSpot's deal search, Certinia's
SOQL), never start a run for our own write-backs, and the event job posts a won HubSpot deal's
activation (NetSuite job, Certinia project, HubSpot deal properties) exactly once.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
import pytest
from dagster import DagsterInstance, ExecuteInProcessResult, SensorDefinition

from ps_pipelines.estate import DEFAULT_ESTATE, Estate
from ps_pipelines.events.definitions import build_event_definitions
from ps_pipelines.events.jobs import EVENT_ACTIVATION_JOB
from ps_pipelines.events.sensors import APPROVED_WORK_SENSOR, WON_DEALS_SENSOR, build_writeback_sensors
from ps_pipelines.lib.sources import NetSuiteClient
from ps_pipelines.lib.sources.base import parse_timestamp
from ps_pipelines.lib.warehouse.warehouse import Warehouse
from ps_pipelines.lib.writeback import run_activation
from ps_pipelines.lib.writeback.activation import NEEDS_ATTENTION, STATUS_COMPLETE
from ps_pipelines.lib.writeback.payloads import ACTIVATION_TABLE
from ps_pipelines.resources import build_resources, estate_resources
from ps_sandbox.context import DEFAULT_CREDENTIALS
from tests.conftest import RunningSandbox
from tests.defs.writeback.conftest import QUIET
from tests.defs.writeback.test_writeback_jobs import event_metadata
from tests.events.test_sensors import started, tick
from tests.lib.writeback.conftest import (
    certinia_projects_of,
    close_targets,
    make_targets,
    won_hubspot_deal,
    write_outbound,
)

ESTATE = Estate.parse("hubspot,certinia,workday,netsuite")
TIMECARD = "pse__Timecard_Header__c"


@pytest.fixture
def sensors() -> dict[str, SensorDefinition]:
    return {s.name: s for s in build_writeback_sensors(estate=ESTATE)}


@pytest.fixture
def resources(certinia_sandbox: RunningSandbox) -> dict[str, Any]:
    built = {**build_resources("local", sandbox_url=certinia_sandbox.url),
             **estate_resources(ESTATE, sandbox_url=certinia_sandbox.url)}
    return {"hubspot": built["hubspot"], "certinia": built["certinia"]}


@pytest.fixture
def instance() -> Iterator[DagsterInstance]:
    with DagsterInstance.ephemeral() as ephemeral:
        yield ephemeral


def deal_changed_at(sandbox: RunningSandbox, deal_id: str) -> str:
    deal = sandbox.control("GET", f"records/hubspot/deals/{deal_id}")
    return parse_timestamp(deal["properties"]["hs_lastmodifieddate"]).isoformat()


def listed_events(result: Any) -> list[list[str]]:
    [request] = result.run_requests
    return orjson.loads(request.tags["ps/events"])


def test_the_sensors_read_only_the_declared_platforms() -> None:
    def keys(estate: Estate) -> dict[str, set[str]]:
        return {s.name: set(s.required_resource_keys) for s in build_writeback_sensors(estate=estate)}

    assert keys(ESTATE) == {WON_DEALS_SENSOR: {"hubspot"}, APPROVED_WORK_SENSOR: {"certinia"}}
    assert keys(DEFAULT_ESTATE) == {WON_DEALS_SENSOR: {"salesforce"}, APPROVED_WORK_SENSOR: {"kantata"}}
    # A firm mid-migration: both CRMs and both PSAs are watched, by the same two sensors.
    both = Estate.parse("salesforce,hubspot,kantata,certinia,workday,netsuite")
    assert keys(both) == {WON_DEALS_SENSOR: {"salesforce", "hubspot"}, APPROVED_WORK_SENSOR: {"kantata", "certinia"}}


def test_a_won_hubspot_deal_yields_one_run_request_and_a_replayed_tick_the_same_key(
    certinia_sandbox: RunningSandbox, sensors: dict[str, SensorDefinition], instance: DagsterInstance,
    resources: dict[str, Any],
) -> None:
    sensor = sensors[WON_DEALS_SENSOR]
    cursor = started(sensor, instance, resources)
    won = certinia_sandbox.control("POST", "events/hubspot-deal-won", {})["deal_id"]
    changed_at = deal_changed_at(certinia_sandbox, won)

    result = tick(sensor, instance, resources, cursor)
    assert listed_events(result) == [["hubspot_deal", won, changed_at]]
    [request] = result.run_requests
    assert request.tags["ps/first_event_at"] == changed_at
    # The next tick has nothing new; a replay of the same tick asks for the same run (Dagster
    # launches a run key once).
    assert tick(sensor, instance, resources, result.cursor).run_requests == []
    [replayed] = tick(sensor, instance, resources, cursor).run_requests
    assert replayed.run_key == request.run_key


def test_the_activation_writeback_on_hubspot_deals_requests_no_new_run(
    certinia_sandbox: RunningSandbox, sensors: dict[str, SensorDefinition], instance: DagsterInstance,
    resources: dict[str, Any], tmp_path: Path,
) -> None:
    """The activation PATCHes a valid deal's ps_external_id and ps_activation_status (Complete) and
    an invalid one's status (Needs attention): neither is a new won deal; another win still is."""
    sensor = sensors[WON_DEALS_SENSOR]
    cursor = started(sensor, instance, resources)
    valid = won_hubspot_deal(certinia_sandbox)
    invalid = won_hubspot_deal(certinia_sandbox, tax_code=None, validation_errors="tax_code")
    after_win = tick(sensor, instance, resources, cursor)
    deals = [valid.at[0, "opportunity_id"], invalid.at[0, "opportunity_id"]]
    assert sorted(record_id for _, record_id, _ in listed_events(after_win)) == sorted(deals)

    targets = make_targets(certinia_sandbox.url)
    try:
        with Warehouse(tmp_path / "warehouse.duckdb").connect() as con:
            write_outbound(con, ACTIVATION_TABLE, pd.concat([valid, invalid], ignore_index=True))
            run_activation(con, targets, run_id="r1")
    finally:
        close_targets(targets)
    marked = [certinia_sandbox.ctx.store.get("hubspot", "deals", deal)["properties"] for deal in deals]
    assert [deal["ps_activation_status"] for deal in marked] == [STATUS_COMPLETE, NEEDS_ATTENTION + "tax_code"]
    assert marked[0]["ps_external_id"]
    # The PATCHes moved the deals' hs_lastmodifieddate past the first tick's events.
    assert all(deal_changed_at(certinia_sandbox, deal) > listed_events(after_win)[0][2] for deal in deals)

    after_writeback = tick(sensor, instance, resources, after_win.cursor)
    assert after_writeback.run_requests == []
    assert after_writeback.cursor != after_win.cursor  # moved past our writes: not read again

    another = certinia_sandbox.control("POST", "events/hubspot-deal-won", {})["deal_id"]
    assert [record_id for _, record_id, _ in listed_events(tick(sensor, instance, resources,
                                                                after_writeback.cursor))] == [another]


def submitted_billable_week(sandbox: RunningSandbox) -> tuple[str, str]:
    """(resource, week start) of a submitted billable timecard."""
    card = next(card for card in sandbox.ctx.store.scan("salesforce", TIMECARD, order="id")
                if card.get("pse__Status__c") == "Submitted" and card.get("pse__Billable__c"))
    return card["pse__Resource__c"], card["pse__Start_Date__c"]


def test_an_approved_certinia_timecard_yields_a_billing_run_request(
    certinia_sandbox: RunningSandbox, sensors: dict[str, SensorDefinition], instance: DagsterInstance,
    resources: dict[str, Any],
) -> None:
    sensor = sensors[APPROVED_WORK_SENSOR]
    cursor = started(sensor, instance, resources)
    resource_id, week_start = submitted_billable_week(certinia_sandbox)
    week = certinia_sandbox.control("POST", "events/approve-week", {
        "platform": "certinia", "resource_id": resource_id, "week_start": week_start})
    store = certinia_sandbox.ctx.store
    billable = {card for card in week["approved"] if store.get("salesforce", TIMECARD, card)["pse__Billable__c"]}
    assert billable

    result = tick(sensor, instance, resources, cursor)
    assert {(kind, record_id) for kind, record_id, _ in listed_events(result)} == {
        ("certinia_timecard", card) for card in billable}
    assert result.run_requests[0].tags["ps/event_count"] == str(len(billable))
    assert tick(sensor, instance, resources, result.cursor).run_requests == []

    # A completed milestone is approved work too.
    milestone = certinia_sandbox.control("POST", "events/complete-milestone", {"platform": "certinia"})
    assert [(kind, record_id) for kind, record_id, _ in listed_events(tick(sensor, instance, resources,
                                                                           result.cursor))] == [
        ("certinia_milestone", milestone["milestone_id"])]


def run_job(events: Any, instance: DagsterInstance, job_name: str) -> ExecuteInProcessResult:
    result = events.resolve_job_def(job_name).execute_in_process(instance=instance, run_config=QUIET,
                                                                raise_on_error=False)
    assert result.success, [e.message for e in result.all_events if e.is_failure]
    return result


def test_the_event_path_posts_a_won_hubspot_deals_activation_once(
    certinia_sandbox: RunningSandbox, instance: DagsterInstance, tmp_path: Path,
) -> None:
    """On a hubspot,certinia,workday,netsuite estate: the NetSuite job, the Certinia project and the
    HubSpot deal's properties, each once, however often the event job runs."""
    events = build_event_definitions("local", sandbox_url=certinia_sandbox.url,
                                     warehouse_path=str(tmp_path / "warehouse.duckdb"), estate=ESTATE)
    won = certinia_sandbox.control("POST", "events/hubspot-deal-won", {})["deal_id"]
    netsuite = NetSuiteClient(certinia_sandbox.url, **DEFAULT_CREDENTIALS["netsuite"])
    try:
        for attempt in range(2):  # the second run finds everything posted
            posted = event_metadata(run_job(events, instance, EVENT_ACTIVATION_JOB))
            if attempt == 0:
                assert {"netsuite:job", "certinia:project", "hubspot:deal"} <= set(posted["written_record_types"])
            else:
                assert (posted["posted"], posted["updated"], posted["written_record_types"]) == (0, 0, []), posted
            jobs = [row for page in netsuite.suiteql(f"SELECT id FROM job WHERE externalid = '{won}'")
                    for row in page]
            assert len(jobs) == 1
            assert len(certinia_projects_of(certinia_sandbox, won)) == 1
            deal = certinia_sandbox.ctx.store.get("hubspot", "deals", won)["properties"]
            assert (deal["ps_external_id"], deal["ps_activation_status"]) == (jobs[0]["id"], STATUS_COMPLETE)
    finally:
        netsuite.client.close()
