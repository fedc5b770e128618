"""Data contracts for Workday (HR): the workers REST API and two RaaS custom reports."""

from __future__ import annotations

from ps_pipelines.lib.contracts import columns as c
from ps_pipelines.lib.contracts.base import EntityContract

EMPLOYMENT_STATUSES = ("Active", "Leave", "Terminated")

WORKERS = EntityContract(
    platform="workday",
    entity="workers",
    id_columns=("id",),
    # The workers REST API has no modified-since filter: every run is a snapshot and only
    # rows whose payload changed are rewritten; workers missing from it are marked deleted.
    change_column=None,
    schema=c.schema(
        "workday.workers",
        {
            "id": c.identifier(),
            "workerid": c.text(required=True),
            "descriptor": c.text(required=True),
            "primaryworkemail": c.text(regex=c.EMAIL),
            "businesstitle": c.text(),
            "jobprofile_id": c.text(),
            "jobprofile_descriptor": c.text(),
            "location_id": c.text(),
            "location_descriptor": c.text(),
            # Workday's worker resource has no cost center, FTE or region: the job history report
            # carries the first two, and the region is the location's (dbt seed work_location_countries).
            "hiredate": c.date(),
            "terminationdate": c.date(),
            "isactive": c.flag(),
        },
    ),
    description="Workday workers: the HR master of people, roles and employment status.",
    source_object="workers",
    # Documented worker fields the pipeline does not load (Workday REST Worker resource).
    ignored_fields=("primaryworkphone", "workertype_id", "workertype_descriptor",
                    "primarysupervisoryorganization_id", "primarysupervisoryorganization_descriptor",
                    "ismanager", "externalid"),
)

COST_RATES = EntityContract(
    platform="workday",
    entity="cost_rates",
    id_columns=("worker_id", "effective_date"),
    change_column="last_updated",
    schema=c.schema(
        "workday.cost_rates",
        {
            "worker_id": c.text(required=True),
            "effective_date": c.date(required=True),
            "cost_rate": c.number(required=True, min_value=0),
            "currency": c.currency(),
            "rate_type": c.text(),
            "last_updated": c.timestamp(required=True),
        },
    ),
    description="Workday RaaS report of hourly cost rates per worker, effective-dated.",
    source_object="Worker_Cost_Rates",
)

JOB_HISTORY = EntityContract(
    platform="workday",
    entity="job_history",
    id_columns=("worker_id", "effective_date"),
    change_column="last_updated",
    schema=c.schema(
        "workday.job_history",
        {
            "worker_id": c.text(required=True),
            "effective_date": c.date(required=True),
            "job_profile": c.text(),
            "business_title": c.text(),
            "cost_center": c.text(),
            "employment_status": c.text(required=True, isin=EMPLOYMENT_STATUSES),
            "fte": c.number(min_value=0, max_value=1),
            "location": c.text(),
            "last_updated": c.timestamp(required=True),
        },
    ),
    description="Workday RaaS report of job history: role, cost center, status and FTE over time.",
    source_object="Worker_Job_History",
)

ALL = (WORKERS, COST_RATES, JOB_HISTORY)
