"""Every Dagster definition, assembled in one place.

``defs`` is the local code location (sandbox + DuckDB); ``ps_pipelines.definitions_production``
builds the same graph with production resources read from environment variables at run time.
"""

from __future__ import annotations

from dagster import Definitions, EnvVar, in_process_executor

from ps_pipelines.defs.automation.dead_runs import free_pool_slots_of_dead_runs
from ps_pipelines.defs.automation.jobs import ingest_all_job, refresh_all_job
from ps_pipelines.defs.automation.schedules import ingest_every_15_minutes
from ps_pipelines.defs.transform.assets import dbt_models
from ps_pipelines.defs.transform.automation import rebuild_downstream_sensor
from ps_pipelines.defs.transform.publish import dbt_docs, published_marts
from ps_pipelines.defs.writeback.alerts import AlertingResource, writeback_failure_sensor
from ps_pipelines.defs.writeback.assets import (
    dead_letters,
    erp_invoices,
    erp_project_activations,
    no_duplicate_records,
    reconciled_with_erp,
)
from ps_pipelines.defs.writeback.jobs import writeback_jobs
from ps_pipelines.defs.writeback.read_back import read_back_after_posting
from ps_pipelines.defs.writeback.sensors import build_writeback_sensors
from ps_pipelines.ingest import ingest_assets
from ps_pipelines.resources import (
    DEFAULT_SANDBOX_URL,
    DEFAULT_WAREHOUSE_PATH,
    Environment,
    build_resources,
)
from ps_pipelines.transform.project import dbt_resource

# Local development: an event reaches the ERP within seconds. A deployment's definitions may
# pass a longer interval (each tick of a write-back sensor is one query to the platform).
LOCAL_WRITEBACK_SENSOR_INTERVAL_SECONDS = 5


def build_alerting(environment: Environment) -> AlertingResource:
    """Production alerts go to the webhook in PS_ALERT_WEBHOOK_URL (read at run time); local ones to the log."""
    if environment == "production":
        return AlertingResource(webhook_url=EnvVar("PS_ALERT_WEBHOOK_URL"))
    return AlertingResource()


def build_definitions(
    environment: Environment = "local",
    *,
    sandbox_url: str = DEFAULT_SANDBOX_URL,
    warehouse_path: str = DEFAULT_WAREHOUSE_PATH,
    writeback_sensor_interval_seconds: int = LOCAL_WRITEBACK_SENSOR_INTERVAL_SECONDS,
) -> Definitions:
    return Definitions(
        # Every run executes in one process, wherever it is launched (UI, schedule, sensor, CLI):
        # each step that writes the warehouse holds the one-slot pool, so steps run one after
        # another anyway, and a process per step would add seconds of start-up to each.
        executor=in_process_executor,
        assets=[*ingest_assets, dbt_models, published_marts, dbt_docs,
                erp_project_activations, erp_invoices, dead_letters],
        asset_checks=[reconciled_with_erp, no_duplicate_records],
        jobs=[ingest_all_job, refresh_all_job, *writeback_jobs],
        schedules=[ingest_every_15_minutes],
        sensors=[rebuild_downstream_sensor, *build_writeback_sensors(writeback_sensor_interval_seconds),
                 writeback_failure_sensor, read_back_after_posting, free_pool_slots_of_dead_runs],
        resources={
            **build_resources(environment, sandbox_url=sandbox_url, warehouse_path=warehouse_path),
            "dbt": dbt_resource(),
            "alerting": build_alerting(environment),
        },
    )


defs = build_definitions("local")
