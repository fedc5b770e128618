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
from ps_pipelines.estate import DEFAULT_ESTATE, ESTATE_ENV, Estate
from ps_pipelines.ingest.catalog import estate_assets
from ps_pipelines.lib.processes import inherited_by_children
from ps_pipelines.resources import (
    DEFAULT_SANDBOX_URL,
    DEFAULT_WAREHOUSE_PATH,
    Environment,
    build_resources,
    estate_resources,
)
from ps_pipelines.transform.project import dbt_resource


def build_alerting(environment: Environment) -> AlertingResource:
    """Production alerts go to the webhook in PS_ALERT_WEBHOOK_URL (read at run time); local ones to the log."""
    if environment == "production":
        return AlertingResource(webhook_url=EnvVar("PS_ALERT_WEBHOOK_URL"))
    return AlertingResource()


def assembled(folder: Definitions, estate: Estate = DEFAULT_ESTATE) -> Definitions:
    """``folder`` with the raw assets of ``estate``'s platforms only, and every automated asset
    waiting while anything above it is planned in an unfinished run (a condition over the whole
    graph, so it is added once the graph is known)."""
    return Definitions(
        assets=wait_for_upstream_runs(estate_assets(list(folder.assets or ()), estate)),
        asset_checks=folder.asset_checks,
        jobs=folder.jobs, schedules=folder.schedules, sensors=folder.sensors,
        metadata=folder.metadata, component_tree=folder.component_tree,
    )


def build_definitions(
    environment: Environment = "local",
    *,
    sandbox_url: str = DEFAULT_SANDBOX_URL,
    warehouse_path: str = DEFAULT_WAREHOUSE_PATH,
    estate: Estate | None = None,
) -> Definitions:
    """The definitions of ``estate`` (by default the one in ``PS_ESTATE``, read now, or the
    default estate): only its platforms' raw assets are in the graph."""
    estate = estate or Estate.from_env()
    # The folder's dbt definitions read the estate from PS_ESTATE (a folder takes no arguments).
    with inherited_by_children(ESTATE_ENV, str(estate)):
        folder = load_from_defs_folder(path_within_project=Path(__file__).parent)
    return Definitions.merge(
        assembled(folder, estate),
        Definitions(
            # Every run executes in one process, wherever it is launched (UI, schedule, sensor, CLI):
            # each step that writes the warehouse holds the one-slot pool, so steps run one after
            # another anyway, and a process per step would add seconds of start-up to each.
            executor=in_process_executor,
            resources={
                **build_resources(environment, sandbox_url=sandbox_url, warehouse_path=warehouse_path),
                **estate_resources(estate, environment, sandbox_url=sandbox_url),
                "dbt": dbt_resource(),
                "alerting": build_alerting(environment),
            },
        ),
    )


@definitions
def defs() -> Definitions:
    return build_definitions("local")
