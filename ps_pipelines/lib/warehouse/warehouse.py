"""The DuckDB warehouse: raw tables, quarantine, high-water marks and the ingestion log.

Every raw table holds the contract's typed columns plus lineage columns: ``_source_id``
(primary key), ``_source_updated_at`` (the platform's change time), ``_is_deleted`` /
``_deleted_at``, ``_payload`` (the record exactly as the API sent it), ``_payload_hash``,
``_loaded_at`` and ``_run_id``. Upserts keep the latest version and skip rows whose payload
did not change, so a rerun writes nothing.

A newer version that breaks its contract goes to ``ops.quarantine``; the raw row keeps the
previous valid version but is flagged (``_quarantined_at``, ``_quarantine_rule``), so nothing
downstream bills or activates from a version the source has already replaced. The flag is
cleared when a valid version at least as new arrives (DECISIONLOG.md, "Quarantine holds").
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import duckdb
import orjson
import pandas as pd
import pandera.pandas as pa

from ps_pipelines.lib.contracts.base import EntityContract, Record
from ps_pipelines.lib.contracts.validate import Reject
from ps_pipelines.lib.warehouse.lock import exclusive_lock
from ps_pipelines.lib.writeback.ledger_store import LedgerStore
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
# Lineage of a hold, not of a version: set when the record's newest version is quarantined
# (this row is then an older version), cleared when a valid version replaces it. Not written
# by upserts of the typed columns, so they are kept apart from _LINEAGE_COLUMNS.
_HOLD_COLUMNS = {
    "_quarantined_at": "TIMESTAMPTZ",  # when the record's current quarantine began
    "_quarantine_rule": "VARCHAR",  # the rule(s) its newest version broke
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
-- Added after the first release (older warehouses get them here): the rejected version's own
-- change time, so only a valid version at least as new resolves it, and when the record's
-- current run of failures began (a re-read of the same bad record supersedes the open entry).
ALTER TABLE ops.quarantine ADD COLUMN IF NOT EXISTS source_updated_at TIMESTAMPTZ;
ALTER TABLE ops.quarantine ADD COLUMN IF NOT EXISTS first_quarantined_at TIMESTAMPTZ;
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
    released: int = 0  # held rows whose record has a valid current version again


@dataclass
class OpenQuarantine:
    """What ``ops.quarantine`` still holds for one entity: rows no valid version has resolved."""

    rows: int = 0
    holding_previous_version: int = 0  # of which a raw row keeps an older, valid version on hold
    oldest: datetime | None = None  # when the longest-running open quarantine began
    rules: dict[str, int] = field(default_factory=dict)  # rule (without values) -> open rows
    examples: list[dict[str, str]] = field(default_factory=list)


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
        self._session: duckdb.DuckDBPyConnection | None = None

    @property
    def ledger(self) -> LedgerStore:
        """The write-back ledger's own file beside this one (the warehouse holds only its mirror)."""
        return LedgerStore.beside(self.path)

    @contextmanager
    def connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection under the writer lock; inside ``session()``, the session's connection."""
        if self._session is not None:
            yield self._session
            return
        lock_path = self.path.with_name(self.path.name + ".lock")
        with exclusive_lock(lock_path, self.lock_timeout_seconds):
            self.path.parent.mkdir(parents=True, exist_ok=True)
            con = duckdb.connect(str(self.path), config={"memory_limit": self.memory_limit})
            try:
                con.execute(_OPS_DDL)
                ensure_outbox_tables(con)  # the ledger's mirror, which dbt reads
                yield con
            finally:
                con.close()

    @contextmanager
    def session(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """Hold one connection (and the lock) for several steps: opening and closing the file
        costs about 0.1 s each time, which the event path cannot pay per table."""
        with self.connect() as con:
            self._session = con
            try:
                yield con
            finally:
                self._session = None


# -- raw tables ------------------------------------------------------------------------
def duckdb_type(column: pa.Column) -> str:
    """The DuckDB type of a contract column in its raw table."""
    return _DUCKDB_TYPES[str(column.dtype)]


def ensure_raw_table(con: duckdb.DuckDBPyConnection, contract: EntityContract) -> None:
    """Create the raw table, or add columns a newer contract introduced (never drops any)."""
    schema_name, table = contract.raw_table.split(".")
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema_name}")
    typed = {name: duckdb_type(col) for name, col in contract.schema.columns.items()}
    columns = {**typed, **_LINEAGE_COLUMNS, **_HOLD_COLUMNS}
    column_sql = ", ".join(f'"{name}" {sql_type}' for name, sql_type in columns.items())
    con.execute(f"CREATE TABLE IF NOT EXISTS {contract.raw_table} ({column_sql})")
    existing = {row[0] for row in con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = ? AND table_name = ?",
        [schema_name, table],
    ).fetchall()}
    # Raw tables created before the hold columns existed get them too (idempotent).
    for name, sql_type in {**typed, **_HOLD_COLUMNS}.items():
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
        f'CAST("{name}" AS {duckdb_type(col)}) AS "{name}"'
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
    # A valid version resolves the record's open quarantine only if it is at least as new as
    # the rejected one: an older valid version re-read must not lift a hold.
    con.execute("""
        UPDATE ops.quarantine q SET resolved_at = s._loaded_at
        FROM _stage s WHERE q.entity_key = ? AND q.source_id = s._source_id AND q.resolved_at IS NULL
          AND (q.source_updated_at IS NULL OR s._source_updated_at IS NULL
               OR s._source_updated_at >= q.source_updated_at)
    """, [contract.key])
    # Lift the hold of rows whose quarantine is now resolved. _loaded_at is restamped even when
    # the valid version equals the held one (the source was put back as it was): incremental
    # models re-read rows by _loaded_at, and the row's billing verdict changed.
    released = con.execute(f"""
        UPDATE {contract.raw_table} r
        SET _quarantined_at = NULL, _quarantine_rule = NULL, _loaded_at = s._loaded_at, _run_id = s._run_id
        FROM _stage s
        WHERE r._source_id = s._source_id AND r._quarantined_at IS NOT NULL
          AND NOT EXISTS (SELECT 1 FROM ops.quarantine q WHERE q.entity_key = ? AND q.source_id = r._source_id
                          AND q.resolved_at IS NULL)
    """, [contract.key]).fetchone()[0]
    return UpsertCounts(inserted=inserted, updated=updated, unchanged=total - inserted - updated, released=released)


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
) -> int:
    """Record ``rejects`` in ``ops.quarantine`` and hold the older versions they replace.

    Returns how many raw rows were newly put on hold (or had their rule change).
    """
    if not rejects:
        return 0
    frame = pd.DataFrame({
        "run_id": run_id,
        "entity_key": contract.key,
        "source_id": [r.source_id for r in rejects],
        "rule": [r.reason for r in rejects],
        "payload": [payload_json(r.record) for r in rejects],
        "quarantined_at": pd.Timestamp(at),
        "source_updated_at": _change_times(contract, rejects),
    })
    con.register("_rejects", frame)
    try:
        # The newest failure supersedes older open ones: one open entry per source record; it
        # inherits when the record's run of failures began.
        con.execute("""
            CREATE OR REPLACE TEMP TABLE _superseded AS
            SELECT q.source_id, min(coalesce(q.first_quarantined_at, q.quarantined_at)) AS first_quarantined_at
            FROM ops.quarantine q JOIN _rejects r ON q.entity_key = r.entity_key AND q.source_id = r.source_id
            WHERE q.resolved_at IS NULL GROUP BY q.source_id
        """)
        con.execute("""
            UPDATE ops.quarantine q SET resolved_at = r.quarantined_at FROM _rejects r
            WHERE q.entity_key = r.entity_key AND q.source_id = r.source_id AND q.resolved_at IS NULL
        """)
        con.execute("""
            INSERT INTO ops.quarantine (run_id, entity_key, source_id, rule, payload, quarantined_at,
                                        source_updated_at, first_quarantined_at)
            SELECT r.run_id, r.entity_key, r.source_id, r.rule, CAST(r.payload AS JSON), r.quarantined_at,
                   r.source_updated_at, coalesce(s.first_quarantined_at, r.quarantined_at)
            FROM _rejects r LEFT JOIN _superseded s USING (source_id)
        """)
        # Hold the raw row when the rejected version is not older than it: the row is then a
        # version the source has replaced. _loaded_at is restamped so incremental models re-read
        # it; a re-read of the same failure (same rule) changes nothing.
        held = con.execute(f"""
            UPDATE {contract.raw_table} t
            SET _quarantined_at = coalesce(t._quarantined_at, r.quarantined_at), _quarantine_rule = r.rule,
                _loaded_at = r.quarantined_at, _run_id = r.run_id
            FROM (SELECT * FROM _rejects
                  QUALIFY row_number() OVER (PARTITION BY source_id ORDER BY source_updated_at DESC NULLS FIRST) = 1
                 ) r
            WHERE t._source_id = r.source_id
              AND (r.source_updated_at IS NULL OR t._source_updated_at IS NULL
                   OR r.source_updated_at >= t._source_updated_at)
              AND t._quarantine_rule IS DISTINCT FROM r.rule
        """).fetchone()[0]
    finally:
        con.unregister("_rejects")
    return held


def _change_times(contract: EntityContract, rejects: Sequence[Reject]) -> pd.Series:
    """The rejected versions' own change times (null when absent or unparseable)."""
    if not contract.change_column:
        return pd.Series(pd.NaT, index=range(len(rejects)), dtype="datetime64[ns, UTC]")
    values = [contract.normalize(r.record).get(contract.change_column) for r in rejects]
    return pd.to_datetime(pd.Series(values, dtype=object), errors="coerce", utc=True, format="ISO8601")


def open_quarantine(con: duckdb.DuckDBPyConnection, contract: EntityContract, max_examples: int = 5
                    ) -> OpenQuarantine:
    """The entity's unresolved quarantine, whatever run put it there (not only this batch's)."""
    rows, oldest = con.execute("""
        SELECT count(*), min(coalesce(first_quarantined_at, quarantined_at))
        FROM ops.quarantine WHERE entity_key = ? AND resolved_at IS NULL
    """, [contract.key]).fetchone()
    if not rows:
        return OpenQuarantine()
    holding = con.execute(
        f"SELECT count(*) FROM {contract.raw_table} WHERE _quarantined_at IS NOT NULL").fetchone()[0]
    # A row's reason lists every rule it broke ("; "); values are dropped so counts group by rule.
    rules = dict(con.execute("""
        SELECT regexp_replace(trim(rule_part), ' \\(value=.*\\)$', '') AS rule, count(*) AS n
        FROM (SELECT unnest(string_split(rule, '; ')) AS rule_part
              FROM ops.quarantine WHERE entity_key = ? AND resolved_at IS NULL)
        GROUP BY ALL ORDER BY n DESC, rule
    """, [contract.key]).fetchall())
    # Rows holding an older version back come first: they are what stops an invoice or a deal.
    oldest_rows = con.execute(f"""
        SELECT q.source_id, q.rule, coalesce(q.first_quarantined_at, q.quarantined_at) AS since
        FROM ops.quarantine q LEFT JOIN {contract.raw_table} t
          ON t._source_id = q.source_id AND t._quarantined_at IS NOT NULL
        WHERE q.entity_key = ? AND q.resolved_at IS NULL
        ORDER BY t._source_id IS NULL, since, q.source_id LIMIT ?
    """, [contract.key, max_examples]).fetchall()
    examples = [{"source_id": source_id, "rule": rule, "since": str(since)} for source_id, rule, since in oldest_rows]
    return OpenQuarantine(rows=rows, holding_previous_version=holding, oldest=oldest, rules=rules,
                          examples=examples)


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
