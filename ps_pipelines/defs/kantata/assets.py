"""Raw ingestion assets for Kantata (PSA): one asset per entity in its contract catalogue."""

from ps_pipelines.ingest.factory import build_ingest_assets
from ps_pipelines.lib.contracts import kantata

assets = build_ingest_assets(
    kantata.ALL, resource_key="kantata", group_name="psa_kantata", owner="team:delivery-operations", kind="kantata",
    source="Kantata (Mavenlink) API v1 `GET /api/v1/{object}.json`, filtered by `updated_after`",
)
