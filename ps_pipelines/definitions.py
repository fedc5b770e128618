"""The entry point: every definition under ``ps_pipelines/defs/``, with resources per environment.

``defs`` is the local code location (sandbox + DuckDB), loaded by ``dagster dev`` and
workspace.yaml; ``ps_pipelines.definitions_production`` loads the same folder with production
resources read from environment variables at run time. Nothing is built at import: the
folder is loaded (and the dbt manifest read) when ``defs()`` or ``build_definitions`` runs.
"""

from __future__ import annotations

from pathlib import Path

from dagster import Definitions, EnvVar, definitions, in_process_executor, load_from_defs_folder

from ps_pipelines.defs.transform.automation import wait_for_upstream_runs
from ps_pipelines.defs.writeback.alerts import AlertingResource
from ps_pipelines.resources import (
    DEFAULT_SANDBOX_URL,
    DEFAULT_WAREHOUSE_PATH,
    Environment,
    build_resources,
)
from ps_pipelines.transform.project import dbt_resource


def build_alerting(environment: Environment) -> AlertingResource:
    """Production alerts go to the webhook in PS_ALERT_WEBHOOK_URL (read at run time); local ones to the log."""
    if environment == "production":
        return AlertingResource(webhook_url=EnvVar("PS_ALERT_WEBHOOK_URL"))
    return AlertingResource()


def assembled(folder: Definitions) -> Definitions:
    """``folder`` with every automated asset waiting while anything above it is planned in an
    unfinished run (a condition over the whole graph, so it is added once the graph is known)."""
    return Definitions(
        assets=wait_for_upstream_runs(list(folder.assets or ())), asset_checks=folder.asset_checks,
        jobs=folder.jobs, schedules=folder.schedules, sensors=folder.sensors,
        metadata=folder.metadata, component_tree=folder.component_tree,
    )


def build_definitions(
    environment: Environment = "local",
    *,
    sandbox_url: str = DEFAULT_SANDBOX_URL,
    warehouse_path: str = DEFAULT_WAREHOUSE_PATH,
) -> Definitions:
    folder = load_from_defs_folder(path_within_project=Path(__file__).parent)
    return Definitions.merge(
        assembled(folder),
        Definitions(
            # Every run executes in one process, wherever it is launched (UI, schedule, sensor, CLI):
            # each step that writes the warehouse holds the one-slot pool, so steps run one after
            # another anyway, and a process per step would add seconds of start-up to each.
            executor=in_process_executor,
            resources={
                **build_resources(environment, sandbox_url=sandbox_url, warehouse_path=warehouse_path),
                "dbt": dbt_resource(),
                "alerting": build_alerting(environment),
            },
        ),
    )


@definitions
def defs() -> Definitions:
    return build_definitions("local")
