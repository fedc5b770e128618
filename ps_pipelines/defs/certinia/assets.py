"""Raw ingestion assets for Certinia PSA (the ``pse__`` package in a Salesforce org).

Not part of the default Definitions: only a declared estate's sources belong in the graph, so
the estate configuration calls ``build_certinia_assets`` for a firm that runs Certinia. The
assets read through the ``certinia`` resource, a Salesforce connection to the org with the package.
"""

from dagster import AssetsDefinition

from ps_pipelines.ingest.factory import build_ingest_assets
from ps_pipelines.lib.contracts import certinia

RESOURCE_KEY = "certinia"
GROUP = "psa_certinia"
SOURCE = ("Salesforce REST SOQL `queryAll` on the org running Certinia PSA (deleted records included): "
          "`SELECT ... FROM {object}`")


def build_certinia_assets() -> list[AssetsDefinition]:
    return build_ingest_assets(
        certinia.ALL,
        resource_key=RESOURCE_KEY,
        group_name=GROUP,
        owner="team:delivery-operations",
        kind="salesforce",
        source=SOURCE,
    )
