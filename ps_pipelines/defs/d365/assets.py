"""Raw ingestion assets for Dynamics 365 Finance and Operations (ERP).

Not part of the default Definitions: only a declared estate's sources belong in the graph, so the
estate configuration calls ``build_d365_assets`` for a firm whose ERP is Dynamics 365. The assets
read through the ``d365`` resource; every run is a full snapshot (no entity has a change field).
"""

from dagster import AssetsDefinition

from ps_pipelines.ingest.factory import build_ingest_assets
from ps_pipelines.lib.contracts import d365

RESOURCE_KEY = "d365"
GROUP = "erp_d365"
SOURCE = "Dynamics 365 F&O OData v4 (`GET /data/{object}?cross-company=true&$select=...`, all pages)"


def build_d365_assets() -> list[AssetsDefinition]:
    return build_ingest_assets(
        d365.ALL,
        resource_key=RESOURCE_KEY,
        group_name=GROUP,
        owner="team:finance-systems",
        kind="dynamics365",
        source=SOURCE,
    )
