"""Every raw ingestion asset (defined per platform under ps_pipelines/defs/) and their groups.

A module of its own, not the package's __init__: the platform modules import the factory
beside it, which would otherwise import them back.
"""

from ps_pipelines.defs.kantata import assets as kantata
from ps_pipelines.defs.netsuite import assets as netsuite
from ps_pipelines.defs.salesforce import assets as salesforce
from ps_pipelines.defs.workday import assets as workday

ingest_assets = [*salesforce.assets, *kantata.assets, *workday.assets, *netsuite.assets]
INGEST_GROUPS = ("crm_salesforce", "psa_kantata", "hr_workday", "erp_netsuite")

__all__ = ["INGEST_GROUPS", "ingest_assets"]
