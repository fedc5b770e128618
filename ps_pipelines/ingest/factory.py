"""Builds one raw ingestion asset (with its contract checks) per source entity."""

import hashlib
import json
from collections.abc import Iterator, Sequence
from datetime import timedelta

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    Config,
    DataVersion,
    MaterializeResult,
    MetadataValue,
    TableColumn,
    TableColumnConstraints,
    TableSchema,
    asset,
)
from pydantic import Field

from ps_pipelines.ingest.freshness import change_rate
from ps_pipelines.lib.contracts.base import EntityContract
from ps_pipelines.lib.ingestion import IngestOptions, IngestResult, ingest_entity
from ps_pipelines.lib.sources.base import DescribesFields, FieldDrift, MissingFieldsError
from ps_pipelines.lib.warehouse.lock import WAREHOUSE_POOL
from ps_pipelines.lib.warehouse.warehouse import Warehouse, duckdb_type

CONTRACT_CHECK = "contract_valid"
DRIFT_CHECK = "no_schema_drift"
# Above this share of quarantined rows the contract check is an error, not a warning:
# the source (or the contract) is broken, not just a few bad records.
ERROR_QUARANTINE_SHARE = 0.05


class IngestConfig(Config):
    full_refresh: bool = Field(default=False, description="Ignore the high-water mark and re-read everything.")
    overlap_minutes: float = Field(default=10.0, description="Re-read window before the high-water mark.")
    batch_rows: int = Field(default=10_000, description="Rows validated and written per batch (bounds memory).")


def raw_asset_key(contract: EntityContract) -> AssetKey:
    return AssetKey(["raw", contract.platform, contract.entity])


def column_schema(contract: EntityContract) -> TableSchema:
    """The contract's columns as the raw table holds them: the warehouse's DuckDB type, what the
    field means, and whether it is required or a key."""
    return TableSchema(columns=[
        TableColumn(name, duckdb_type(col), description=contract.column_description(name),
                    constraints=TableColumnConstraints(nullable=col.nullable,
                                                       unique=contract.id_columns == (name,)))
        for name, col in contract.schema.columns.items()
    ])


def _incremental_key(contract: EntityContract) -> str:
    if contract.change_column:
        return f"`{contract.change_column}` (the high-water mark: each run reads what changed since it)"
    if contract.parent_entity:
        return (f"none of its own: read for the {contract.parent_entity} rows that changed "
                f"(by `{contract.parent_key_column}`)")
    return "none: the API offers no change filter, so every run reads a full snapshot"


def asset_description(contract: EntityContract, source: str) -> str:
    """What the entity is, where it is read from, how it is loaded incrementally and how fresh it is kept."""
    return (f"{contract.description}\n\n"
            f"- Source: {source.format(object=contract.source_object)}\n"
            f"- Incremental key: {_incremental_key(contract)}\n"
            f"- Raw table `{contract.raw_table}`, upserted by source id ({', '.join(contract.id_columns)})\n"
            f"- Expected to change {change_rate(contract).summary()}")


def _table_state(warehouse: Warehouse, contract: EntityContract) -> tuple[str, int, DataVersion]:
    """A preview, the live row count, and a data version that changes only when rows did.

    Every write stamps ``_loaded_at`` (identical rows are not rewritten) and every delete sets
    ``_is_deleted``, so rows, the newest load and the deletions together identify the table's
    content. A run that read only unchanged rows keeps the version, and automation does not
    rebuild what is downstream of it.
    """
    with warehouse.connect() as con:
        frame = con.execute(
            f"SELECT * EXCLUDE (_payload, _payload_hash) FROM {contract.raw_table} "
            "ORDER BY _loaded_at DESC, _source_id LIMIT 5"
        ).df()
        rows, live, newest, deleted, newest_delete = con.execute(
            f"SELECT count(*), count(*) FILTER (WHERE NOT _is_deleted), max(_loaded_at), "
            f"count(*) FILTER (WHERE _is_deleted), max(_deleted_at) FROM {contract.raw_table}"
        ).fetchone()
    header = "| " + " | ".join(frame.columns) + " |\n|" + "---|" * len(frame.columns) + "\n"
    body = "".join("| " + " | ".join(str(v) for v in row) + " |\n" for row in frame.itertuples(index=False))
    state = hashlib.sha256(f"{rows}|{newest}|{deleted}|{newest_delete}".encode()).hexdigest()[:20]
    return header + body, live, DataVersion(state)


def _checks(
    contract: EntityContract, result: IngestResult, drift: FieldDrift | None = None
) -> Iterator[AssetCheckResult]:
    share = result.quarantined / result.fetched if result.fetched else 0.0
    examples = "\n".join(f"- `{e['source_id']}`: {e['reason']}" for e in result.examples) or "none"
    still_open = result.open_quarantine
    open_examples = "\n".join(f"- `{e['source_id']}` since {e['since']}: {e['rule']}"
                               for e in still_open.examples) or "none"
    # The check fails while anything of the entity is still in quarantine, not only when this
    # run's batch had bad rows: an incremental run that reads none of them would otherwise turn
    # it green while their older versions are still held back from billing and activation.
    yield AssetCheckResult(
        check_name=CONTRACT_CHECK,
        passed=result.quarantined == 0 and still_open.rows == 0,
        severity=AssetCheckSeverity.ERROR if share > ERROR_QUARANTINE_SHARE else AssetCheckSeverity.WARN,
        description=(
            f"{result.quarantined} of {result.fetched} rows broke the {contract.key} contract in this run; "
            f"{still_open.rows} open in ops.quarantine ({still_open.holding_previous_version} holding an older "
            f"version back), oldest since {still_open.oldest or '-'}"),
        metadata={
            "quarantined": result.quarantined,
            "fetched": result.fetched,
            "quarantined_share": round(share, 4),
            "failed_rules": MetadataValue.json(dict(result.rule_counts)),
            "examples": MetadataValue.md(examples),
            "held": result.held,
            "released": result.released,
            "open_quarantined": still_open.rows,
            "open_holding_previous_version": still_open.holding_previous_version,
            "oldest_open_quarantine": str(still_open.oldest or ""),
            "open_rules": MetadataValue.json(still_open.rules),
            "open_examples": MetadataValue.md(open_examples),
            "quarantine_table": "ops.quarantine",
        },
    )
    org_fields = list(drift.unknown) if drift is not None else []
    metadata: dict = {"unexpected_fields": MetadataValue.json(sorted(result.unexpected_columns))}
    if drift is not None:
        metadata.update(org_fields_not_in_contract=MetadataValue.json(org_fields),
                        standard_fields_not_read=drift.unread)
    yield AssetCheckResult(
        check_name=DRIFT_CHECK,
        passed=not result.unexpected_columns and not org_fields,
        severity=AssetCheckSeverity.WARN,
        description="Fields the API sent that the contract does not know (kept in _payload), and custom "
                    "fields the tenant's object has (per its describe) that the contract does not read.",
        metadata=metadata,
    )


def build_ingest_asset(
    contract: EntityContract, *, resource_key: str, group_name: str, owner: str, kind: str, source: str
) -> AssetsDefinition:
    """``source`` names the endpoint or query the entity is read from, with ``{object}`` for the
    contract's ``source_object``."""
    key = raw_asset_key(contract)
    deps = [AssetKey(["raw", contract.platform, contract.parent_entity])] if contract.parent_entity else []

    @asset(
        key=key,
        deps=deps,
        group_name=group_name,
        owners=[owner],
        kinds={kind, "duckdb"},
        description=asset_description(contract, source),
        freshness_policy=change_rate(contract).policy(),
        pool=WAREHOUSE_POOL,
        required_resource_keys={resource_key, "warehouse"},
        check_specs=[
            AssetCheckSpec(CONTRACT_CHECK, asset=key,
                           description="Rows match the pandera contract, and nothing of the entity is still in "
                                       "quarantine (open rows hold older versions back from billing)"),
            AssetCheckSpec(DRIFT_CHECK, asset=key, description="The API sent no unknown fields"),
        ],
        metadata={
            "table": contract.raw_table,
            "dagster/column_schema": column_schema(contract),
            "change_field": contract.change_column or "none (snapshot)",
        },
    )
    def _ingest(context: AssetExecutionContext, config: IngestConfig) -> Iterator:
        source = getattr(context.resources, resource_key).client()
        warehouse: Warehouse = context.resources.warehouse.warehouse()
        options = IngestOptions(
            full_refresh=config.full_refresh,
            overlap=timedelta(minutes=config.overlap_minutes),
            batch_rows=config.batch_rows,
        )
        # Where the platform describes its objects, compare the contract with the tenant's
        # fields first (one request per run): a field the tenant lacks stops the run here with
        # every such field named, before any query.
        drift = source.field_drift(contract) if isinstance(source, DescribesFields) else None
        if drift is not None and drift.missing:
            raise MissingFieldsError(contract.platform, contract.key, drift)
        result = ingest_entity(source, warehouse, contract, context.run_id, options)
        preview, live_rows, data_version = _table_state(warehouse, contract)
        context.log.info(
            f"{contract.key}: fetched {result.fetched}, inserted {result.inserted}, updated "
            f"{result.updated}, deleted {result.deleted}, quarantined {result.quarantined}"
        )
        yield MaterializeResult(
            data_version=data_version,
            metadata={
                "mode": result.mode,
                "rows_fetched": result.fetched,
                "rows_inserted": result.inserted,
                "rows_updated": result.updated,
                "rows_unchanged": result.unchanged,
                "rows_deleted": result.deleted,
                "rows_quarantined": result.quarantined,
                "rows_held": result.held,
                "rows_released": result.released,
                "open_quarantined": result.open_quarantine.rows,
                "high_water_mark": str(result.high_water_mark_after),
                "high_water_mark_before": str(result.high_water_mark_before),
                "rows_per_second": round(result.rows_per_second, 1),
                "api_requests": result.api_stats.get("requests", 0),
                "api_retries": result.api_stats.get("retries", 0),
                "dagster/row_count": live_rows,
                "preview": MetadataValue.md(preview),
                "run_summary": MetadataValue.json(json.loads(json.dumps(vars(result), default=str))),
            }
        )
        yield from _checks(contract, result, drift)

    return _ingest


def build_ingest_assets(
    contracts: Sequence[EntityContract], *, resource_key: str, group_name: str, owner: str, kind: str, source: str
) -> list[AssetsDefinition]:
    return [
        build_ingest_asset(c, resource_key=resource_key, group_name=group_name, owner=owner, kind=kind,
                           source=source)
        for c in contracts
    ]
