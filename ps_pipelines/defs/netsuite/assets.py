"""Raw ingestion assets for NetSuite (ERP): one asset per entity in its contract catalogue."""

from ps_pipelines.ingest.factory import build_ingest_assets
from ps_pipelines.lib.contracts import netsuite

assets = build_ingest_assets(
    netsuite.ALL, resource_key="netsuite", group_name="erp_netsuite", owner="team:finance-systems", kind="netsuite",
    source="NetSuite SuiteQL (`POST /services/rest/query/v1/suiteql`): `SELECT ... FROM {object}`",
)
