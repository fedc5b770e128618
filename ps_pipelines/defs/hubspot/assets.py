"""Raw ingestion assets for HubSpot (CRM): one asset per entity in its contract catalogue.

Not part of the default Definitions: only the sources an estate declares exist in the graph
(issue 13), so the estate configuration calls ``build_hubspot_assets()`` (with
``resources.hubspot_resources()``) when it names HubSpot.
"""

from dagster import AssetsDefinition

from ps_pipelines.ingest.factory import build_ingest_assets
from ps_pipelines.lib.contracts import hubspot

GROUP = "crm_hubspot"
SOURCE = ("HubSpot CRM API v3: `GET /crm/v3/objects/{object}` (full reads, `after` cursor), "
          "`POST /crm/v3/objects/{object}/search` on the last-modified property (incremental reads), "
          "`archived=true` listing (deletes); owners from `GET /crm/v3/owners`; a deal's primary company and "
          "a line item's deal from `POST /crm/v4/associations/{{fromObjectType}}/{{toObjectType}}/batch/read`, "
          "one per page")


def build_hubspot_assets() -> list[AssetsDefinition]:
    """The HubSpot raw assets, read through the ``hubspot`` resource."""
    return build_ingest_assets(hubspot.ALL, resource_key="hubspot", group_name=GROUP,
                               owner="team:revenue-operations", kind="hubspot", source=SOURCE)
