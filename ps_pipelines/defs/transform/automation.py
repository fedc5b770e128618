"""Declarative automation: a raw table that changes rebuilds what is below it, and only that.

Every dbt model and the published marts carry :func:`rebuild_when_upstream_data_changes`; the raw
ingestion assets carry none, so they move only when ingestion runs (the schedule, the main
job, the UI). On each tick this sensor requests, in one run, the models downstream of the
raw tables that changed since the last tick (eager counts a dependency requested in the same
tick as updated, so the whole cone below a change goes in one run, and nothing beside it).
A model updated by the same run as its inputs (the main job) is not requested again.

It is on by default so ``ps-pipelines dev`` rebuilds as soon as an ingestion lands.
"""

from dagster import AssetSelection, AutomationCondition, AutomationConditionSensorDefinition, DefaultSensorStatus


def rebuild_when_upstream_data_changes() -> AutomationCondition:
    """``eager()``, triggered by a dependency whose *data* changed rather than by any new
    materialization of it.

    Ingestion runs every 15 minutes and materializes every raw table, most of them unchanged;
    each raw asset reports a data version that moves only when rows did (``ingest/factory.py``).
    dbt models and the published marts carry no data version of their own, so Dagster gives
    each of their materializations a new one and the cascade below a changed table continues.
    A dependency updated by the same run as the model (the main job) still triggers nothing.
    """
    return AutomationCondition.eager().replace(
        "newly_updated_without_root",
        AutomationCondition.data_version_changed() & ~AutomationCondition.executed_with_root_target(),
    ).with_label("eager_on_data_change")


rebuild_downstream_sensor = AutomationConditionSensorDefinition(
    "rebuild_downstream_of_raw",
    target=AssetSelection.all(),
    default_status=DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
    description="Rebuilds the dbt models and the published marts below any raw table that changed.",
)
