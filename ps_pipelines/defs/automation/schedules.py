"""Schedules: incremental ingestion keeps the raw layer minutes behind the platforms."""

from dagster import DefaultScheduleStatus, ScheduleDefinition

from ps_pipelines.defs.automation.jobs import ingest_all_job

ingest_every_15_minutes = ScheduleDefinition(
    name="ingest_every_15_minutes",
    job=ingest_all_job,
    cron_schedule="*/15 * * * *",
    default_status=DefaultScheduleStatus.STOPPED,
    description="Incremental pull of every platform (start it in the UI once the tenant is configured).",
)
