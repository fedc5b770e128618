"""Read back what a posting wrote, so the marts converge on what the platforms hold.

A posting changes the ERP (customers, jobs, invoices), the PSA (workspaces) and the CRM
(opportunity status) after the marts were built from them. ``read_back_after_posting`` starts
``refresh_after_posting`` after every run that attempted writes; that run ingests the tables
the writes landed in, rebuilds what is downstream, posts whatever became due (an invoice of a
project the run just activated) and republishes. A read-back that posts nothing starts no
other, so the chain ends once the platforms and the marts agree. ``ps-pipelines run`` does the
same passes in process before it publishes.
"""

from __future__ import annotations

from dagster import (
    DagsterEventType,
    DagsterInstance,
    DagsterRunStatus,
    DefaultSensorStatus,
    RunRequest,
    RunStatusSensorContext,
    SkipReason,
    run_status_sensor,
)

from ps_pipelines.defs.automation.jobs import refresh_all_job
from ps_pipelines.defs.writeback.assets import ACTIVATIONS_KEY, INVOICES_KEY, WRITTEN_RECORD_TYPES
from ps_pipelines.defs.writeback.jobs import (
    activate_projects_job,
    post_invoices_job,
    refresh_after_posting_job,
    replay_dead_letters_job,
)
from ps_pipelines.events.jobs import EVENT_ACTIVATION_JOB, EVENT_BILLING_JOB

READ_BACK_SENSOR = "read_back_after_posting"
POSTING_KEYS = (ACTIVATIONS_KEY, INVOICES_KEY)
MONITORED_JOBS = frozenset({
    *(job.name for job in (refresh_all_job, activate_projects_job, post_invoices_job, replay_dead_letters_job,
                           refresh_after_posting_job)),
    EVENT_ACTIVATION_JOB, EVENT_BILLING_JOB})


def written_record_types(instance: DagsterInstance, run_id: str) -> list[str]:
    """Kinds of write (``netsuite:invoice`` ...) the postings of ``run_id`` attempted: the posting
    assets' materializations (batch path), or the post op's output (event path)."""
    written: set[str] = set()
    records = instance.get_records_for_run(run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION).records
    for record in records:
        materialization = record.event_log_entry.asset_materialization
        if materialization is not None and materialization.asset_key in POSTING_KEYS:
            written.update(_listed(materialization.metadata.get(WRITTEN_RECORD_TYPES)))
    for record in instance.get_records_for_run(run_id, of_type=DagsterEventType.STEP_OUTPUT).records:
        event = record.event_log_entry.dagster_event
        output = event.step_output_data if event is not None else None
        if output is not None:
            written.update(_listed(output.metadata.get(WRITTEN_RECORD_TYPES)))
    return sorted(written)


def _listed(value: object) -> list[str]:
    return list(getattr(value, "value", None) or [])


@run_status_sensor(
    name=READ_BACK_SENSOR,
    run_status=DagsterRunStatus.SUCCESS,
    # The event jobs live in the write-back code location: watched across locations, by name.
    monitor_all_code_locations=True,
    request_job=refresh_after_posting_job,
    default_status=DefaultSensorStatus.RUNNING,
    description="After a run that posted to the ERP, PSA or CRM, reads those tables back and rebuilds and "
                "republishes what is downstream (refresh_after_posting), so the marts show the platforms as "
                "they are after the posting.",
)
def read_back_after_posting(context: RunStatusSensorContext) -> RunRequest | SkipReason:
    run_id = context.dagster_run.run_id
    if context.dagster_run.job_name not in MONITORED_JOBS:
        return SkipReason(f"run {run_id} of {context.dagster_run.job_name} posts nothing")
    written = written_record_types(context.instance, run_id)
    if not written:
        return SkipReason(f"run {run_id} wrote nothing to read back")
    return RunRequest(run_key=f"{READ_BACK_SENSOR}:{run_id}",
                      tags={"ps/trigger": READ_BACK_SENSOR, "ps/after_run": run_id,
                            "ps/written_record_types": ",".join(written)})
