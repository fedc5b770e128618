"""The write-back code location starts lean: no dbt manifest, no dagster-dbt, no warehouse pool."""

from __future__ import annotations

import subprocess
import sys

from dagster import Definitions

from ps_pipelines.events.definitions import build_event_definitions
from ps_pipelines.events.jobs import EVENT_ACTIVATION_JOB, EVENT_BILLING_JOB
from ps_pipelines.events.sensors import APPROVED_WORK_SENSOR, WON_DEALS_SENSOR
from ps_pipelines.lib.warehouse.lock import WAREHOUSE_POOL
from ps_pipelines.lib.writeback.activation import ACTIVATION_FLOW
from ps_pipelines.lib.writeback.payloads import BILLING_FLOW


def test_loading_the_event_location_imports_neither_dbt_nor_the_main_graph() -> None:
    heavy = ("dagster_dbt", "dbt.", "ps_pipelines.defs.transform", "ps_pipelines.transform")
    probe = ("import sys; from ps_pipelines.events.definitions_dev import defs; defs(); "
             f"print(sorted(m for m in sys.modules if m.startswith({heavy!r})))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]", done.stdout


def test_the_location_holds_the_event_jobs_and_their_sensors_and_no_step_takes_the_warehouse_pool() -> None:
    defs = build_event_definitions("local")
    Definitions.validate_loadable(defs)
    sensors = {sensor.name: sensor.job_name for sensor in defs.sensors or ()}
    assert sensors == {WON_DEALS_SENSOR: EVENT_ACTIVATION_JOB, APPROVED_WORK_SENSOR: EVENT_BILLING_JOB}
    for flow, name in ((ACTIVATION_FLOW, EVENT_ACTIVATION_JOB), (BILLING_FLOW, EVENT_BILLING_JOB)):
        job = defs.resolve_job_def(name)
        assert job.executor_def.name == "in_process"
        ops = [node.definition for node in job.graph.node_dict.values()]
        assert [op.name for op in ops] == [f"{flow}_ingest_sources", f"{flow}_build_outbound", f"{flow}_post"]
        assert all(op.pool != WAREHOUSE_POOL for op in ops)
