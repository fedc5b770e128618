"""What analysts read: the published marts file and the dbt docs site."""

import os
import shutil
import uuid
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    Config,
    MaterializeResult,
    MetadataValue,
    TableColumn,
    TableRecord,
    TableSchema,
    asset,
)
from dagster_dbt import DbtCliResource
from pydantic import Field

from ps_pipelines.defs.transform.assets import (
    DBT_OWNER,
    REBUILD_ALL_TAG,
    model_keys,
    published_tables,
    start_dbt,
)
from ps_pipelines.defs.transform.automation import rebuild_when_upstream_data_changes
from ps_pipelines.lib.warehouse.lock import WAREHOUSE_POOL
from ps_pipelines.lib.warehouse.publish import (
    MartTable,
    Publication,
    default_analytics_path,
    publish_marts,
    writer_lock,
)
from ps_pipelines.resources import WarehouseResource
from ps_pipelines.transform.project import DOCS_TARGET_PATH
from ps_pipelines.transform.staleness import stale_assets

ANALYTICS_GROUP = "analytics"
PUBLISHED_MARTS_KEY = AssetKey(["analytics", "published_marts"])
DBT_DOCS_KEY = AssetKey(["analytics", "dbt_docs"])
ROWS_PREFIX = "rows: "  # one metadata entry per published table: ``rows: marts.dim_customer``

# The site (index.html reads manifest.json and catalog.json beside it) and the one-file version.
DOCS_FILES = ("index.html", "manifest.json", "catalog.json", "static_index.html")


class PublishConfig(Config):
    analytics_path: str = Field(
        default="", description="The analysts' DuckDB file; empty = analytics.duckdb beside the warehouse.")


def publish(context: AssetExecutionContext, config: PublishConfig, warehouse: WarehouseResource,
            mart_tables: Sequence[MartTable]) -> Iterator[MaterializeResult]:
    store = warehouse.warehouse()
    destination = Path(config.analytics_path) if config.analytics_path else default_analytics_path(store.path)
    if destination.exists() and up_to_date(context, "the published copy"):
        return
    publication = publish_marts(store, mart_tables, destination, context.run_id)
    context.log.info(f"published {len(publication.row_counts)} tables to {publication.path} "
                     f"in {publication.seconds:.1f}s")
    yield MaterializeResult(metadata=publication_metadata(publication))


def publication_metadata(publication: Publication) -> dict[str, Any]:
    """The publication as the asset page shows it: one ``rows: <table>`` entry per mart (so each
    table's count can be plotted across runs) and a table of them, with the number of tables
    as the asset's row count: a sum of rows over unrelated tables measures nothing."""
    counts = sorted(publication.row_counts.items())
    return {
        "path": MetadataValue.path(str(publication.path)),
        "tables": MetadataValue.table(
            records=[TableRecord({"table": table, "rows": rows}) for table, rows in counts],
            schema=TableSchema(columns=[TableColumn("table", "string"), TableColumn("rows", "int")]),
        ),
        **{f"{ROWS_PREFIX}{table}": MetadataValue.int(rows) for table, rows in counts},
        "table_count": len(counts),
        "size_bytes": publication.size_bytes,
        "size_mib": round(publication.size_bytes / 2**20, 2),
        "publish_seconds": round(publication.seconds, 2),
        "published_at": publication.published_at.isoformat(),
    }


def generate_docs(context: AssetExecutionContext, dbt: DbtCliResource,
                  warehouse: WarehouseResource) -> Iterator[MaterializeResult]:
    if (DOCS_TARGET_PATH / "static_index.html").exists() and up_to_date(context, "the docs"):
        return
    store = warehouse.warehouse()
    # The catalog is read from the warehouse through dbt's own connection: under the lock. dbt
    # runs in the build's target folder, where its partial parse for this profile lives.
    # --no-compile: compiling every model and test again costs more than the rest of the docs
    # together (14 s of 18 s on the test data); the docs show each model's source SQL instead.
    with writer_lock(store):
        invocation = start_dbt(dbt, ["docs", "generate", "--static", "--no-compile"], store.path)
        invocation.wait()
    copy_docs(invocation.target_path, DOCS_TARGET_PATH)
    catalog = invocation.get_artifact("catalog.json")
    context.log.info(f"dbt docs: {DOCS_TARGET_PATH / 'static_index.html'}")
    yield MaterializeResult(metadata={
        "index_html": MetadataValue.path(str(DOCS_TARGET_PATH / "index.html")),
        "static_index_html": MetadataValue.path(str(DOCS_TARGET_PATH / "static_index.html")),
        "catalog_nodes": len(catalog.get("nodes", {})),
        "catalog_sources": len(catalog.get("sources", {})),
    })


def up_to_date(context: AssetExecutionContext, what: str) -> bool:
    """True (and said in the log) when no model this asset reads was rebuilt since it was last
    made: rewriting it would change nothing but its timestamp."""
    if context.run.tags.get(REBUILD_ALL_TAG) == "true":
        return False
    key = context.asset_key
    if stale_assets(context.instance, [key], context.assets_def.asset_deps, {key: None}):
        return False
    context.log.info(f"{what} is up to date: no model it reads was rebuilt since it was last made")
    return True


def copy_docs(source: Path, destination: Path) -> None:
    """Copy the docs site; each file is replaced atomically, so a browser never reads half a file.

    Runs on other warehouses publish the same site at once (the docs live beside the dbt
    project): each copy stages under a name of its own, so one run never moves away another's
    staged file.
    """
    destination.mkdir(parents=True, exist_ok=True)
    for name in DOCS_FILES:
        staging = destination / f".{name}.{os.getpid()}-{uuid.uuid4().hex}.tmp"
        shutil.copyfile(source / name, staging)
        os.replace(staging, destination / name)


def build_publish_assets(manifest: Mapping[str, Any]) -> list[AssetsDefinition]:
    """The published marts and the docs site, downstream of the dbt models in ``manifest``."""
    mart_tables = published_tables(manifest)

    @asset(
        key=PUBLISHED_MARTS_KEY,
        deps=model_keys(manifest, mart_tables),
        group_name=ANALYTICS_GROUP,
        owners=[DBT_OWNER],
        kinds={"duckdb"},
        pool=WAREHOUSE_POOL,
        output_required=False,  # nothing to publish when no mart changed
        # Republish whenever a mart was rebuilt, by the main job or by automation.
        automation_condition=rebuild_when_upstream_data_changes(),
        description=(
            "The marts copied into the analysts' DuckDB file (`analytics.duckdb` beside the warehouse): "
            "written aside, then swapped in atomically, so readers never lock the pipeline's file and "
            "never see a half-built state. Open it read-only; `meta.publication` says what it holds."
        ),
    )
    def published_marts(context: AssetExecutionContext, config: PublishConfig,
                        warehouse: WarehouseResource) -> Iterator[MaterializeResult]:
        yield from publish(context, config, warehouse, mart_tables)

    @asset(
        key=DBT_DOCS_KEY,
        deps=model_keys(manifest),
        group_name=ANALYTICS_GROUP,
        owners=[DBT_OWNER],
        kinds={"dbt"},
        pool=WAREHOUSE_POOL,
        output_required=False,  # nothing to regenerate when no model changed
        description="`dbt docs generate --static --no-compile`: the model documentation and catalog as a site "
                    "(`index.html`) and as one self-contained file (`static_index.html`).",
    )
    def dbt_docs(context: AssetExecutionContext, dbt: DbtCliResource,
                 warehouse: WarehouseResource) -> Iterator[MaterializeResult]:
        yield from generate_docs(context, dbt, warehouse)

    return [published_marts, dbt_docs]
