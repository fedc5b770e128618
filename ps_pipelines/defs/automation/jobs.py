"""Jobs a data engineer launches from the UI or the CLI."""

from dagster import AssetSelection, define_asset_job

from ps_pipelines.ingest.catalog import INGEST_GROUPS

REFRESH_ALL = "refresh_all"
INGEST_ALL = "ingest_all"

ingest_all_job = define_asset_job(
    INGEST_ALL,
    selection=AssetSelection.groups(*INGEST_GROUPS),
    description="Incrementally pull every platform's entities into the raw tables.",
)

refresh_all_job = define_asset_job(
    REFRESH_ALL,
    selection=AssetSelection.all(),
    description="The main job: ingest every platform, then build everything downstream.",
)
