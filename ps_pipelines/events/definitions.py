"""The write-back code location: the event jobs and the sensors that start them.

Apart from the main graph (``ps_pipelines.definitions``) so that a run started by an event loads
no dbt manifest and no dagster-dbt: the run worker imports this module only. Both locations
share the instance, the resources' configuration and the ledger; the main location's
``read_back_after_posting`` catches the warehouse up after an event run posted. Like the main
location, it serves the estate in ``PS_ESTATE`` (read when the definitions load, never at import).
"""

from __future__ import annotations

from dagster import Definitions, definitions, in_process_executor

from ps_pipelines.estate import Estate
from ps_pipelines.events.jobs import build_event_jobs
from ps_pipelines.events.sensors import WRITEBACK_SENSOR_INTERVAL_SECONDS, build_writeback_sensors
from ps_pipelines.resources import (
    DEFAULT_SANDBOX_URL,
    DEFAULT_WAREHOUSE_PATH,
    Environment,
    build_resources,
    estate_resources,
)


def build_event_definitions(
    environment: Environment = "local",
    *,
    sandbox_url: str = DEFAULT_SANDBOX_URL,
    warehouse_path: str = DEFAULT_WAREHOUSE_PATH,
    sensor_interval_seconds: int = WRITEBACK_SENSOR_INTERVAL_SECONDS,
    estate: Estate | None = None,
) -> Definitions:
    """The event jobs and sensors of ``estate`` (by default the one in ``PS_ESTATE``, read now, or
    the default estate), with the declared platforms' resources."""
    estate = estate or Estate.from_env()
    return Definitions(
        jobs=build_event_jobs(estate),
        sensors=build_writeback_sensors(sensor_interval_seconds, estate=estate),
        executor=in_process_executor,
        resources={**build_resources(environment, sandbox_url=sandbox_url, warehouse_path=warehouse_path),
                   **estate_resources(estate, environment, sandbox_url=sandbox_url)},
    )


@definitions
def defs() -> Definitions:
    return build_event_definitions("local")

