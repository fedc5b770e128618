"""Raw ingestion assets for Workday (HR): one asset per entity in its contract catalogue."""

from ps_pipelines.ingest.factory import build_ingest_assets
from ps_pipelines.lib.contracts import workday

assets = build_ingest_assets(
    workday.ALL, resource_key="workday", group_name="hr_workday", owner="team:people-systems", kind="workday",
    source="Workday `{object}`: the workers REST API (`/ccx/api/v1/<tenant>/workers`) for `workers`, "
           "otherwise the RaaS custom report of that name (`/ccx/service/customreport2/<tenant>/<owner>/{object}`)",
)
