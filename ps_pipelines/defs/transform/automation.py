"""Declarative automation: a raw table that changes rebuilds what is below it, and only that.

Every dbt model and the published marts carry :func:`rebuild_when_upstream_data_changes`; the raw
ingestion assets carry none, so they move only when ingestion runs (the schedule, the main
job, the UI). On each tick this sensor requests, in one run, the models downstream of the
raw tables that changed since the last tick (eager counts a dependency requested in the same
tick as updated, so the whole cone below a change goes in one run, and nothing beside it).
A model updated by the same run as its inputs (the main job) is not requested again.

It is on by default so ``ps-pipelines dev`` rebuilds as soon as an ingestion lands.

Nothing is requested below a run that has not finished (:func:`wait_for_upstream_runs`):
eager waits only for *direct* dependencies in progress, so while a group run of raw tables
went on, each tick rebuilt the cone below the tables it had already loaded, marts that also
read a table it had not loaded yet included - one run per tick, each rebuilding the same marts.
"""

from collections.abc import Sequence
from functools import reduce
from operator import or_

from dagster import (
    AssetKey,
    AssetsDefinition,
    AssetSelection,
    AssetSpec,
    AutomationCondition,
    AutomationConditionSensorDefinition,
    DefaultSensorStatus,
    map_asset_specs,
)


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


def any_upstream_in_progress(ancestors: Sequence[AssetKey]) -> AutomationCondition:
    """True while a run or backfill that plans any of ``ancestors`` has not executed it yet."""
    return reduce(or_, (AutomationCondition.asset_matches(key, AutomationCondition.in_progress())
                        for key in sorted(ancestors))).with_label("any_upstream_in_progress")


def _ancestors(parents: dict[AssetKey, set[AssetKey]], key: AssetKey) -> set[AssetKey]:
    found: set[AssetKey] = set()
    frontier = list(parents.get(key, ()))
    while frontier:
        parent = frontier.pop()
        if parent not in found:
            found.add(parent)
            frontier.extend(parents.get(parent, ()))
    return found


def wait_for_upstream_runs(assets: Sequence[AssetsDefinition]) -> list[AssetsDefinition]:
    """``assets`` with each automated asset also waiting while anything above it, however far,
    is planned in an unfinished run: that run may change its inputs again, and the tick after
    it ends requests the whole cone below it in one run."""
    parents = {spec.key: {dep.asset_key for dep in spec.deps} for assets_def in assets for spec in assets_def.specs}

    def wait(spec: AssetSpec) -> AssetSpec:
        ancestors = _ancestors(parents, spec.key)
        if spec.automation_condition is None or not ancestors:
            return spec
        return spec.replace_attributes(
            automation_condition=(spec.automation_condition & ~any_upstream_in_progress(list(ancestors)))
            .with_label("eager_on_data_change_after_upstream_runs"))

    return map_asset_specs(wait, assets)
