"""Raw ingestion assets, one module per platform."""

from ps_pipelines.ingest import kantata, netsuite, salesforce, workday

ingest_assets = [*salesforce.assets, *kantata.assets, *workday.assets, *netsuite.assets]
INGEST_GROUPS = ("crm_salesforce", "psa_kantata", "hr_workday", "erp_netsuite")

__all__ = ["INGEST_GROUPS", "ingest_assets"]
