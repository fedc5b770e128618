"""Workday objects as Workday documents them: the workers REST API and the RaaS report format.

Sources:

* [WORKER] Workday's Worker resource (REST ``/workers``): ``id``, ``descriptor``, ``href``,
  ``workerID``, ``primaryWorkEmail``, ``primaryWorkPhone``, ``businessTitle``, ``workerType``,
  ``primarySupervisoryOrganization``, ``location``, ``jobProfile``, ``hireDate``,
  ``terminationDate``, ``isManager``, ``isActive``, ``externalID``; references are
  ``{id, descriptor, href}``. Workday's reference lives behind the customer login
  (community.workday.com/api); the public copies are the OpenAPI schemas collected at
  schemas.apis.io/schemas/workday/workday-worker and .../workday-integration/workday-integration-worker.
* [PAGING] Workday REST collections: ``limit`` (default 20, maximum 100) and zero-based
  ``offset``; the answer is ``{"total": n, "data": [...]}`` (same public OpenAPI copies,
  "The maximum number of objects in a single response").
* [RAAS] Report-as-a-Service: ``GET /ccx/service/customreport2/{tenant}/{owner}/{report}?format=json``
  answers ``{"Report_Entry": [row, ...]}`` whose keys are the report's column names
  (schemas.apis.io/schemas/workday/workday-reportresponse; apis.io "Workday Report-as-a-Service API").
  The columns are the tenant's own report definition, so they are listed here as the
  firm's reports are configured (``REPORTS``), not as vendor attributes.
"""

from __future__ import annotations

REFERENCE = ("id", "descriptor", "href")

# [WORKER] documented worker fields -> JSON type ("reference" = {id, descriptor, href}).
WORKER_FIELDS: dict[str, str] = {
    "id": "string", "descriptor": "string", "href": "string", "workerID": "string",
    "primaryWorkEmail": "string", "primaryWorkPhone": "string", "businessTitle": "string",
    "workerType": "reference", "primarySupervisoryOrganization": "reference", "location": "reference",
    "jobProfile": "reference", "hireDate": "date", "terminationDate": "date", "isManager": "boolean",
    "isActive": "boolean", "externalID": "string",
}
# Served although [WORKER] does not list them on the worker: name -> (type, why). Empty: the
# worker's cost center and FTE come from the job history report (``REPORTS``), its region from
# its documented ``location`` (the firm's location -> region reference data, dbt seed
# ``work_location_countries``).
WORKER_EXTENSIONS: dict[str, tuple[str, str]] = {}
WORKERS_DEFAULT_LIMIT = 20  # [PAGING]
WORKERS_MAX_LIMIT = 100  # [PAGING]

# [RAAS] the firm's two custom reports, as configured in the tenant (column -> JSON type).
REPORTS: dict[str, dict[str, str]] = {
    "Worker_Cost_Rates": {
        "Worker_ID": "string", "Effective_Date": "date", "Cost_Rate": "string", "Currency": "string",
        "Rate_Type": "string", "Last_Updated": "datetime",
    },
    "Worker_Job_History": {
        "Worker_ID": "string", "Effective_Date": "date", "Job_Profile": "string", "Business_Title": "string",
        "Cost_Center": "string", "FTE": "string", "Location": "string", "Employment_Status": "string",
        "Last_Updated": "datetime",
    },
}


def worker_flattened(*, documented_only: bool = False) -> set[str]:
    """Worker field names as the raw layer flattens them: lower-cased, references joined by ``_``."""
    fields = dict(WORKER_FIELDS)
    if not documented_only:
        fields.update({name: kind for name, (kind, _) in WORKER_EXTENSIONS.items()})
    names = set()
    for name, kind in fields.items():
        names.add(name.lower())
        if kind == "reference":
            names.update(f"{name.lower()}_{sub}" for sub in REFERENCE)
    return names


def report_flattened(report: str) -> set[str]:
    return {column.lower() for column in REPORTS[report]}
