"""The automation sensor waits for unfinished runs above an asset, then rebuilds the cone below
them in one request; a dbt subset run runs every check it plans."""

from __future__ import annotations

import time
from pathlib import Path

from dagster import (
    AssetKey,
    AssetMaterialization,
    DagsterEvent,
    DagsterEventType,
    DagsterInstance,
    DagsterRunStatus,
    evaluate_automation_conditions,
    instance_for_test,
)
from dagster._core.events import StepMaterializationData
from dagster._core.events.log import EventLogEntry

from ps_pipelines.definitions import build_definitions
from tests.conftest import RunningSandbox
from tests.defs.transform.test_dbt_assets import (
    DBT_CHECK_SPECS,
    GRAPH,
    RAW_KEYS,
    automated_downstream_of,
    defs,
    raw_load,
)

RAW_TIME_ENTRIES = AssetKey(["raw", "kantata", "time_entries"])
RAW_PROJECTS = AssetKey(["raw", "kantata", "projects"])
DIM_RATE_CARD = AssetKey(["marts", "dim_rate_card"])


def materialize_in_run(instance: DagsterInstance, run_id: str, key: AssetKey, data_version: str) -> None:
    """What a run's step records when it materializes ``key``."""
    event = DagsterEvent(DagsterEventType.ASSET_MATERIALIZATION.value, job_name="__ASSET_JOB",
                         event_specific_data=StepMaterializationData(raw_load(key, data_version)))
    instance.handle_new_event(EventLogEntry(error_info=None, level="DEBUG", user_message="", run_id=run_id,
                                            timestamp=time.time(), dagster_event=event))


def requested(result) -> set[AssetKey]:
    return {key for key in GRAPH.get_all_asset_keys() if result.get_num_requested(key)}


def test_nothing_below_an_unfinished_run_is_requested_and_its_cone_goes_in_one_request_once_it_ends() -> None:
    with instance_for_test() as instance:
        for key in GRAPH.get_all_asset_keys():
            instance.report_runless_asset_event(raw_load(key, "v1") if key in RAW_KEYS else AssetMaterialization(key))
        cursor = evaluate_automation_conditions(defs, instance).cursor

        # A group run from the UI plans both tables; it has loaded time entries, not projects yet.
        job = defs.resolve_implicit_global_asset_job_def()
        run = instance.create_run_for_job(job, asset_selection=frozenset({RAW_TIME_ENTRIES, RAW_PROJECTS}),
                                          status=DagsterRunStatus.STARTED)
        materialize_in_run(instance, run.run_id, RAW_TIME_ENTRIES, "v2")
        during = evaluate_automation_conditions(defs, instance, cursor=cursor)
        below_projects = automated_downstream_of(RAW_PROJECTS)
        assert not requested(during) & (below_projects | {RAW_PROJECTS})
        # What reads only the loaded table need not wait.
        assert requested(during) == automated_downstream_of(RAW_TIME_ENTRIES) - below_projects

        materialize_in_run(instance, run.run_id, RAW_PROJECTS, "v2")
        instance.report_run_canceled(run)  # ended: it plans nothing any more
        after = evaluate_automation_conditions(defs, instance, cursor=during.cursor)
        assert requested(after) == (automated_downstream_of(RAW_TIME_ENTRIES) | below_projects) - requested(during)
        assert evaluate_automation_conditions(defs, instance, cursor=after.cursor).total_requested == 0


def test_a_dbt_run_of_one_model_runs_its_relationship_check_to_a_model_it_does_not_build(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    subset_defs = build_definitions("local", sandbox_url=sandbox.url, warehouse_path=str(tmp_path / "w.duckdb"))
    job = subset_defs.resolve_job_def("refresh_all")
    planned = {spec.key for spec in DBT_CHECK_SPECS if spec.asset_key == DIM_RATE_CARD}
    relationship = {key for key in planned if "relationships" in key.name and "dim_currency" in key.name}
    assert relationship, "dim_rate_card should have a relationships test to dim_currency"
    with DagsterInstance.ephemeral() as instance:
        assert job.execute_in_process(instance=instance, raise_on_error=False).success
        result = job.execute_in_process(instance=instance, asset_selection=[DIM_RATE_CARD], raise_on_error=False)
    assert result.success
    ran = {(e.asset_key, e.check_name) for e in result.get_asset_check_evaluations()}
    assert {(key.asset_key, key.name) for key in planned} == ran
