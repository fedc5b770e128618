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
            "id": c.identifier("Workday ID (WID) of the worker: the REST resource id, 32 hexadecimal characters."),
            "workerid": c.text(required=True, description="Employee (or contingent worker) ID; the reports' "
                               "Worker_ID."),
            "descriptor": c.text(required=True, description="Display name of the worker (the full name)."),
            "primaryworkemail": c.text(regex=c.EMAIL, description="Primary work e-mail address; matched to the "
                                       "Kantata user's e-mail, ignoring case."),
            "businesstitle": c.text(description="Current business title of the worker."),
            "jobprofile_id": c.text(description="Workday ID of the job profile of the worker's position."),
            "jobprofile_descriptor": c.text(description="Name of that job profile: the role rate cards price "
                                            "(e.g. Senior Consultant)."),
            "location_id": c.text(description="Workday ID of the worker's work location."),
            "location_descriptor": c.text(description="Name of the work location (e.g. London); its region comes "
                                          "from the dbt seed work_location_countries."),
            # Workday's worker resource has no cost center, FTE or region: the job history report
            # carries the first two, and the region is the location's (dbt seed work_location_countries).
            "hiredate": c.date(description="Date the worker was hired."),
            "terminationdate": c.date(description="Date the worker was terminated; null while employed."),
            "isactive": c.flag(description="True while the worker is active (not terminated)."),
        },
    ),
    description="Workday workers: the HR master of people, roles and employment status.",
    source_object="workers",
    # Documented worker fields the pipeline does not load (Workday REST Worker resource).
    ignored_fields=("primaryworkphone", "workertype_id", "workertype_descriptor",
                    "primarysupervisoryorganization_id", "primarysupervisoryorganization_descriptor",
                    "ismanager", "externalid"),
)


def _report(entity: str, report: str, cols: dict, description: str) -> EntityContract:
    """A RaaS report of effective-dated rows per worker; its columns are the firm's report definition
    in the tenant, keyed by worker and effective date and filtered on ``Last_Updated``."""
    key = {
        "worker_id": c.text(required=True, description="Employee ID of the worker (the worker's workerID)."),
        "effective_date": c.date(
            required=True, description="First day the row applies, until the worker's next effective date."),
    }
    updated = c.timestamp(required=True, description="When the row last changed in Workday (UTC); the report's "
                          "Updated_From prompt filters on it.")
    return EntityContract(
        platform="workday",
        entity=entity,
        id_columns=("worker_id", "effective_date"),
        change_column="last_updated",
        schema=c.schema(f"workday.{entity}", {**key, **cols, "last_updated": updated}),
        description=description,
        source_object=report,
    )


COST_RATES = _report(
    "cost_rates",
    "Worker_Cost_Rates",
    {
        "cost_rate": c.number(required=True, min_value=0, description="Hourly cost of the worker, in the row's "
                              "currency (the report answers it as text)."),
        "currency": c.currency(description="ISO 4217 code of the cost rate's currency (the worker's pay "
                               "currency)."),
        "rate_type": c.text(description="Kind of rate (e.g. Standard Hourly)."),
    },
    "Workday RaaS report of hourly cost rates per worker, effective-dated.",
)

JOB_HISTORY = _report(
    "job_history",
    "Worker_Job_History",
    {
        "job_profile": c.text(description="Job profile (role) held from the effective date."),
        "business_title": c.text(description="Business title held from the effective date."),
        "cost_center": c.text(description="Cost center the worker is charged to (e.g. CC-200 Consulting EMEA)."),
        "employment_status": c.text(required=True, isin=EMPLOYMENT_STATUSES, description="Employment status "
                                    "from the effective date: Active, Leave or Terminated."),
        "fte": c.number(min_value=0, max_value=1, description="Full-time equivalent: the worker's share of a "
                        "full-time schedule (0-1, e.g. 0.8)."),
        "location": c.text(description="Name of the work location."),
    },
    "Workday RaaS report of job history: role, cost center, status and FTE over time.",
)

ALL = (WORKERS, COST_RATES, JOB_HISTORY)
