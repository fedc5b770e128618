"""Raw ingestion assets for Salesforce (CRM): one asset per entity in its contract catalogue."""

from ps_pipelines.ingest.factory import build_ingest_assets
from ps_pipelines.lib.contracts import salesforce

SOURCE = "Salesforce REST SOQL `queryAll` (deleted records included): `SELECT ... FROM {object}`"

assets = build_ingest_assets(
    salesforce.ALL,
    resource_key="salesforce",
    group_name="crm_salesforce",
    owner="team:revenue-operations",
    kind="salesforce",
    source=SOURCE,
)
