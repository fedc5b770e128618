"""The DuckDB warehouse: raw tables, quarantine, high-water marks and the ingestion log.

Every raw table holds the contract's typed columns plus lineage columns: ``_source_id``
(primary key), ``_source_updated_at`` (the platform's change time), ``_is_deleted`` /
``_deleted_at``, ``_payload`` (the record exactly as the API sent it), ``_payload_hash``,
``_loaded_at`` and ``_run_id``. Upserts keep the latest version and skip rows whose payload
did not change, so a rerun writes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb
import orjson
import pandas as pd

from ps_pipelines.lib.contracts.base import EntityContract, Record
from ps_pipelines.lib.contracts.validate import Reject
from ps_pipelines.lib.warehouse.lock import exclusive_lock
from ps_pipelines.lib.writeback.outbox import ensure_outbox_tables

_DUCKDB_TYPES = {
    "str": "VARCHAR",
    "float64": "DOUBLE",
    "boolean": "BOOLEAN",
    "datetime64[ns, UTC]": "TIMESTAMPTZ",
    "datetime64[ns]": "DATE",
    "object": "JSON",
}
_LINEAGE_COLUMNS = {
    "_source_id": "VARCHAR PRIMARY KEY",
    "_source_updated_at": "TIMESTAMPTZ",
    "_is_deleted": "BOOLEAN NOT NULL DEFAULT false",
    "_deleted_at": "TIMESTAMPTZ",
    "_payload": "JSON",
    "_payload_hash": "VARCHAR",
    "_loaded_at": "TIMESTAMPTZ NOT NULL",
    "_run_id": "VARCHAR",
}
_OPS_DDL = """
CREATE SCHEMA IF NOT EXISTS ops;
CREATE TABLE IF NOT EXISTS ops.ingest_state (
    entity_key VARCHAR PRIMARY KEY,
    high_water_mark TIMESTAMPTZ,
    last_run_id VARCHAR,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE TABLE IF NOT EXISTS ops.quarantine (
    run_id VARCHAR NOT NULL,
    entity_key VARCHAR NOT NULL,
    source_id VARCHAR NOT NULL,
    rule VARCHAR NOT NULL,
    payload JSON,
    quarantined_at TIMESTAMPTZ NOT NULL,
    resolved_at TIMESTAMPTZ
);
CREATE TABLE IF NOT EXISTS ops.ingest_runs (
    run_id VARCHAR NOT NULL,
    entity_key VARCHAR NOT NULL,
    mode VARCHAR NOT NULL,
    started_at TIMESTAMPTZ NOT NULL,
    finished_at TIMESTAMPTZ NOT NULL,
    fetched BIGINT, inserted BIGINT, updated BIGINT, unchanged BIGINT,
    deleted BIGINT, quarantined BIGINT,
    high_water_mark_before TIMESTAMPTZ, high_water_mark_after TIMESTAMPTZ,
    api_requests BIGINT, api_retries BIGINT
);
CREATE TABLE IF NOT EXISTS ops.ingest_seen (
    run_id VARCHAR NOT NULL, entity_key VARCHAR NOT NULL, source_id VARCHAR NOT NULL
);
"""


@dataclass
class UpsertCounts:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0


def payload_json(record: Record) -> str:
    return orjson.dumps(record, option=orjson.OPT_SORT_KEYS).decode()


class Warehouse:
    """Opens short-lived connections under the single-writer lock."""

    def __init__(self, path: str | Path, lock_timeout_seconds: float = 600.0, memory_limit: str = "1GB") -> None:
        self.path = Path(path)
        self.lock_timeout_seconds = lock_timeout_seconds
        # DuckDB's default buffer pool is 80% of RAM; cap it so the pipeline's footprint
        # stays bounded whatever the volume (it spills to disk beyond this).
        self.memory_limit = memory_limit

    @contextmanager
    def connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        lock_path = self.path.with_name(self.path.name + ".lock")
        with exclusive_lock(lock_path, self.lock_timeout_seconds):
            self.path.parent.mkdir(parents=True, exist_ok=True)
            con = duckdb.connect(str(self.path), config={"memory_limit": self.memory_limit})
            try:
                con.execute(_OPS_DDL)
                ensure_outbox_tables(con)
                yield con
            finally:
                con.close()


# -- raw tables ------------------------------------------------------------------------
def ensure_raw_table(con: duckdb.DuckDBPyConnection, contract: EntityContract) -> None:
    """Create the raw table, or add columns a newer contract introduced (never drops any)."""
    schema_name, table = contract.raw_table.split(".")
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema_name}")
    typed = {name: _DUCKDB_TYPES[str(col.dtype)] for name, col in contract.schema.columns.items()}
    columns = {**typed, **_LINEAGE_COLUMNS}
    column_sql = ", ".join(f'"{name}" {sql_type}' for name, sql_type in columns.items())
    con.execute(f"CREATE TABLE IF NOT EXISTS {contract.raw_table} ({column_sql})")
    existing = {row[0] for row in con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = ? AND table_name = ?",
        [schema_name, table],
    ).fetchall()}
    for name, sql_type in typed.items():
        if name not in existing:
            con.execute(f'ALTER TABLE {contract.raw_table} ADD COLUMN "{name}" {sql_type}')


def _stage_frame(
    contract: EntityContract, frame: pd.DataFrame, records: Sequence[Record], run_id: str, loaded_at: datetime
) -> pd.DataFrame:
    staged = frame.copy()
    for name, column in contract.schema.columns.items():
        if str(column.dtype) == "object":
            staged[name] = staged[name].map(lambda v: None if v is None else orjson.dumps(v).decode())
    payloads = [payload_json(record) for record in records]
    staged["_source_id"] = ["|".join(str(v) for v in row) for row in zip(
        *(frame[c] for c in contract.id_columns), strict=True)]
    if contract.change_column:
        staged["_source_updated_at"] = frame[contract.change_column]
    else:
        staged["_source_updated_at"] = pd.Series(pd.NaT, index=frame.index, dtype="datetime64[ns, UTC]")
    deleted = frame["isdeleted"] if "isdeleted" in frame.columns else pd.Series(False, index=frame.index)
    staged["_is_deleted"] = deleted.fillna(False).astype(bool)
    staged["_payload"] = payloads
    staged["_loaded_at"] = pd.Timestamp(loaded_at)
    staged["_run_id"] = run_id
    return staged


def upsert_rows(
    con: duckdb.DuckDBPyConnection,
    contract: EntityContract,
    frame: pd.DataFrame,
    records: Sequence[Record],
    run_id: str,
    loaded_at: datetime,
) -> UpsertCounts:
    """Upsert validated rows: the latest version wins, identical payloads are not rewritten."""
    if frame.empty:
        return UpsertCounts()
    staged = _stage_frame(contract, frame, records, run_id, loaded_at)
    casts = ", ".join(
        f'CAST("{name}" AS {_DUCKDB_TYPES[str(col.dtype)]}) AS "{name}"'
        for name, col in contract.schema.columns.items()
    )
    # The change hash covers the typed contract columns, not the payload: transport detail
    # such as a Workday ``href`` (which names the host) changes without the record changing.
    typed_columns = ", ".join(f'"{name}"' for name in contract.columns)
    con.register("_batch", staged)
    try:
        con.execute(f"""
            CREATE OR REPLACE TEMP TABLE _stage AS
            SELECT *, CAST(hash({typed_columns}) AS VARCHAR) AS _payload_hash
            FROM (
                SELECT {casts}, _source_id, _source_updated_at, _is_deleted, NULL::TIMESTAMPTZ AS _deleted_at,
                       CAST(_payload AS JSON) AS _payload, _loaded_at, _run_id
                FROM _batch)
            QUALIFY row_number() OVER (PARTITION BY _source_id ORDER BY _source_updated_at DESC NULLS LAST) = 1
        """)
    finally:
        con.unregister("_batch")
    newer = ("(r._source_updated_at IS NULL OR s._source_updated_at IS NULL "
             "OR s._source_updated_at >= r._source_updated_at)")
    changed = "(r._payload_hash <> s._payload_hash OR r._is_deleted <> s._is_deleted)"
    inserted, updated, total = con.execute(f"""
        SELECT count(*) FILTER (WHERE r._source_id IS NULL),
               count(*) FILTER (WHERE r._source_id IS NOT NULL AND {changed} AND {newer}),
               count(*)
        FROM _stage s LEFT JOIN {contract.raw_table} r USING (_source_id)
    """).fetchone()
    columns = [*contract.columns, *_LINEAGE_COLUMNS]
    assignments = ", ".join(f'"{c}" = excluded."{c}"' for c in columns if c != "_source_id")
    column_list = ", ".join(f'"{c}"' for c in columns)
    con.execute(f"""
        INSERT INTO {contract.raw_table} ({column_list})
        SELECT {column_list} FROM _stage s
        WHERE NOT EXISTS (
            SELECT 1 FROM {contract.raw_table} r
            WHERE r._source_id = s._source_id AND NOT ({changed} AND {newer}))
        ON CONFLICT (_source_id) DO UPDATE SET {assignments}
    """)
    con.execute("""
        UPDATE ops.quarantine q SET resolved_at = s._loaded_at
        FROM _stage s WHERE q.entity_key = ? AND q.source_id = s._source_id AND q.resolved_at IS NULL
    """, [contract.key])
    return UpsertCounts(inserted=inserted, updated=updated, unchanged=total - inserted - updated)


def mark_deleted(
    con: duckdb.DuckDBPyConnection, contract: EntityContract, deletions: Iterable[tuple[str, datetime]], run_id: str
) -> int:
    """Record hard deletes reported by the platform's delete feed (rows are kept, flagged)."""
    rows = list(deletions)
    if not rows:
        return 0
    frame = pd.DataFrame(rows, columns=["source_id", "deleted_at"])
    frame["deleted_at"] = pd.to_datetime(frame["deleted_at"], utc=True)
    con.register("_deletions", frame)
    try:
        return con.execute(f"""
            UPDATE {contract.raw_table} r SET _is_deleted = true, _deleted_at = d.deleted_at, _run_id = ?
            FROM _deletions d WHERE r._source_id = d.source_id AND NOT r._is_deleted
        """, [run_id]).fetchone()[0]
    finally:
        con.unregister("_deletions")


def record_seen(con: duckdb.DuckDBPyConnection, contract: EntityContract, run_id: str, ids: Sequence[str]) -> None:
    if ids:
        frame = pd.DataFrame({"run_id": run_id, "entity_key": contract.key, "source_id": list(ids)})
        con.register("_seen", frame)
        try:
            con.execute("INSERT INTO ops.ingest_seen SELECT run_id, entity_key, source_id FROM _seen")
        finally:
            con.unregister("_seen")


def mark_unseen_deleted(
    con: duckdb.DuckDBPyConnection,
    contract: EntityContract,
    run_id: str,
    deleted_at: datetime,
    parent_ids: Sequence[str] | None = None,
) -> int:
    """After a complete snapshot, rows the source no longer returns were deleted there.

    With ``parent_ids`` (a child entity re-read for some parents) only rows under those
    parents are considered, so lines of invoices that were not re-read are left alone.
    """
    scope, params = "", [deleted_at, run_id, run_id, contract.key]
    if parent_ids is not None:
        if not parent_ids:
            return 0
        con.register("_parents", pd.DataFrame({"parent_id": list(parent_ids)}))
        scope = f'AND r."{contract.parent_key_column}" IN (SELECT parent_id FROM _parents)'
    try:
        count = con.execute(f"""
            UPDATE {contract.raw_table} r SET _is_deleted = true, _deleted_at = ?, _run_id = ?
            WHERE NOT r._is_deleted {scope}
              AND r._source_id NOT IN (SELECT source_id FROM ops.ingest_seen WHERE run_id = ? AND entity_key = ?)
        """, params).fetchone()[0]
    finally:
        if parent_ids is not None:
            con.unregister("_parents")
    return count


def clear_seen(con: duckdb.DuckDBPyConnection, contract: EntityContract, run_id: str) -> None:
    con.execute("DELETE FROM ops.ingest_seen WHERE run_id = ? AND entity_key = ?", [run_id, contract.key])


# -- quarantine, state and log -----------------------------------------------------------
def quarantine(
    con: duckdb.DuckDBPyConnection, contract: EntityContract, rejects: Sequence[Reject], run_id: str, at: datetime
) -> None:
    if not rejects:
        return
    frame = pd.DataFrame({
        "run_id": run_id,
        "entity_key": contract.key,
        "source_id": [r.source_id for r in rejects],
        "rule": [r.reason for r in rejects],
        "payload": [payload_json(r.record) for r in rejects],
        "quarantined_at": pd.Timestamp(at),
    })
    con.register("_rejects", frame)
    try:
        # The newest failure supersedes older open ones: one open entry per source record.
        con.execute("""
            UPDATE ops.quarantine q SET resolved_at = r.quarantined_at FROM _rejects r
            WHERE q.entity_key = r.entity_key AND q.source_id = r.source_id AND q.resolved_at IS NULL
        """)
        con.execute("""
            INSERT INTO ops.quarantine (run_id, entity_key, source_id, rule, payload, quarantined_at)
            SELECT run_id, entity_key, source_id, rule, CAST(payload AS JSON), quarantined_at FROM _rejects
        """)
    finally:
        con.unregister("_rejects")


def get_high_water_mark(con: duckdb.DuckDBPyConnection, entity_key: str) -> datetime | None:
    row = con.execute("SELECT high_water_mark FROM ops.ingest_state WHERE entity_key = ?", [entity_key]).fetchone()
    return row[0] if row else None


def set_high_water_mark(
    con: duckdb.DuckDBPyConnection, entity_key: str, mark: datetime | None, run_id: str, at: datetime
) -> None:
    con.execute(
        "INSERT OR REPLACE INTO ops.ingest_state VALUES (?, ?, ?, ?)", [entity_key, mark, run_id, at]
    )


def changed_parent_ids(
    con: duckdb.DuckDBPyConnection, parent: EntityContract, loaded_since: datetime | None
) -> list[str]:
    """Ids of parent rows (re)loaded since ``loaded_since`` (all live parents when None)."""
    if loaded_since is None:
        sql, params = f"SELECT _source_id FROM {parent.raw_table} WHERE NOT _is_deleted", []
    else:
        sql, params = f"SELECT _source_id FROM {parent.raw_table} WHERE _loaded_at >= ?", [loaded_since]
    return [row[0] for row in con.execute(sql, params).fetchall()]


def table_exists(con: duckdb.DuckDBPyConnection, qualified_name: str) -> bool:
    schema_name, table = qualified_name.split(".")
    return bool(con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
        [schema_name, table],
    ).fetchone()[0])
