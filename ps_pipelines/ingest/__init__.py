"""Raw ingestion assets, one module per platform."""

from ps_pipelines.defs.kantata import assets as kantata
from ps_pipelines.defs.netsuite import assets as netsuite
from ps_pipelines.defs.salesforce import assets as salesforce
from ps_pipelines.defs.workday import assets as workday

ingest_assets = [*salesforce.assets, *kantata.assets, *workday.assets, *netsuite.assets]
INGEST_GROUPS = ("crm_salesforce", "psa_kantata", "hr_workday", "erp_netsuite")

__all__ = ["INGEST_GROUPS", "ingest_assets"]
