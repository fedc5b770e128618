"""Every Dagster definition, assembled in one place.

``defs`` is the local code location (sandbox + DuckDB); ``ps_pipelines.definitions_production``
builds the same graph with production resources read from environment variables at run time.
"""

from __future__ import annotations

from dagster import Definitions

from ps_pipelines.automation.jobs import ingest_all_job, refresh_all_job
from ps_pipelines.automation.schedules import ingest_every_15_minutes
from ps_pipelines.ingest import ingest_assets
from ps_pipelines.resources import (
    DEFAULT_SANDBOX_URL,
    DEFAULT_WAREHOUSE_PATH,
    Environment,
    build_resources,
)
from ps_pipelines.transform.assets import dbt_models
from ps_pipelines.transform.automation import rebuild_downstream_sensor
from ps_pipelines.transform.project import dbt_resource
from ps_pipelines.transform.publish import dbt_docs, published_marts


def build_definitions(
    environment: Environment = "local",
    *,
    sandbox_url: str = DEFAULT_SANDBOX_URL,
    warehouse_path: str = DEFAULT_WAREHOUSE_PATH,
) -> Definitions:
    return Definitions(
        assets=[*ingest_assets, dbt_models, published_marts, dbt_docs],
        jobs=[ingest_all_job, refresh_all_job],
        schedules=[ingest_every_15_minutes],
        sensors=[rebuild_downstream_sensor],
        resources={
            **build_resources(environment, sandbox_url=sandbox_url, warehouse_path=warehouse_path),
            "dbt": dbt_resource(),
        },
    )


defs = build_definitions("local")
