"""The analysts' copy of the marts: a separate DuckDB file, swapped in atomically.

DuckDB allows one writing process per file, and a reader holding the pipeline's file open
would block the next ingestion or dbt build. So analysts, notebooks and BI tools never open
the pipeline's file: after each build the marts are copied into a new file beside the
published one (``analytics.duckdb.tmp-<run>``), checkpointed and closed, then renamed over
it. ``os.replace`` is atomic on POSIX: a reader opening the path gets either the previous
complete file or the new complete file, and a reader that already holds the previous file
open keeps reading its inode until it reconnects. The pipeline never locks the published
file, and the pipeline's file is only read (attached read-only) under the writer lock.
"""

from __future__ import annotations

import os
import textwrap
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from ps_pipelines.lib.warehouse.lock import exclusive_lock
from ps_pipelines.lib.warehouse.warehouse import Warehouse

ANALYTICS_FILE_NAME = "analytics.duckdb"
PUBLICATION_TABLE = "meta.publication"
PUBLICATION_WIDTH = 110  # characters a line of the published tables takes on the console


@dataclass(frozen=True)
class MartTable:
    """A table to publish, with the documentation analysts see as DuckDB comments."""

    schema: str
    name: str
    description: str = ""
    column_descriptions: Mapping[str, str] = field(default_factory=dict)

    @property
    def qualified_name(self) -> str:
        return f"{self.schema}.{self.name}"

    @property
    def sql_name(self) -> str:
        return f"{_identifier(self.schema)}.{_identifier(self.name)}"


@dataclass(frozen=True)
class Publication:
    path: Path
    run_id: str
    published_at: datetime
    row_counts: dict[str, int]
    size_bytes: int
    seconds: float


def default_analytics_path(warehouse_path: str | Path) -> Path:
    """The published file lives beside the pipeline's warehouse unless configured elsewhere."""
    return Path(warehouse_path).resolve().with_name(ANALYTICS_FILE_NAME)


@contextmanager
def writer_lock(warehouse: Warehouse) -> Iterator[None]:
    """The same OS lock ``Warehouse.connect`` takes, for work that opens the file another way
    (dbt's own connection, a read-only attach). Not re-entrant: do not call ``connect`` inside."""
    lock_path = warehouse.path.with_name(warehouse.path.name + ".lock")
    with exclusive_lock(lock_path, warehouse.lock_timeout_seconds):
        yield


def _identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _remove(path: Path) -> None:
    for leftover in (path, path.with_name(path.name + ".wal")):
        with suppress(FileNotFoundError):
            leftover.unlink()


def _fsync_directory(directory: Path) -> None:
    # Makes the rename itself durable: after a crash the path names the old or the new file.
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _missing_tables(con: duckdb.DuckDBPyConnection, tables: Sequence[MartTable]) -> list[str]:
    present = {f"{s}.{t}" for s, t in con.execute(
        "SELECT table_schema, table_name FROM information_schema.tables WHERE table_catalog = 'pipeline'"
    ).fetchall()}
    return [t.qualified_name for t in tables if t.qualified_name not in present]


def _comment(con: duckdb.DuckDBPyConnection, table: MartTable) -> None:
    if table.description:
        con.execute(f"COMMENT ON TABLE {table.sql_name} IS {_literal(table.description)}")
    columns = {row[0] for row in con.execute(
        "SELECT column_name FROM duckdb_columns() WHERE database_name = current_database() "
        "AND schema_name = ? AND table_name = ?", [table.schema, table.name]).fetchall()}
    for column, description in table.column_descriptions.items():
        if column in columns and description:
            con.execute(f"COMMENT ON COLUMN {table.sql_name}.{_identifier(column)} IS {_literal(description)}")


def _write_copy(source: Path, destination: Path, tables: Sequence[MartTable], run_id: str,
                published_at: datetime, memory_limit: str) -> dict[str, int]:
    con = duckdb.connect(str(destination), config={"memory_limit": memory_limit})
    try:
        con.execute(f"ATTACH {_literal(str(source))} AS pipeline (READ_ONLY)")
        missing = _missing_tables(con, tables)
        if missing:
            raise LookupError(f"not in the pipeline warehouse (build the marts first): {', '.join(missing)}")
        counts: dict[str, int] = {}
        for table in tables:
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {_identifier(table.schema)}")
            con.execute(f"CREATE TABLE {table.sql_name} AS SELECT * FROM pipeline.{table.sql_name}")
            _comment(con, table)
            counts[table.qualified_name] = con.execute(f"SELECT count(*) FROM {table.sql_name}").fetchone()[0]
        con.execute("DETACH pipeline")
        con.execute(f"""
            CREATE SCHEMA meta;
            CREATE TABLE {PUBLICATION_TABLE} (
                table_name VARCHAR PRIMARY KEY, row_count BIGINT NOT NULL,
                run_id VARCHAR NOT NULL, published_at TIMESTAMPTZ NOT NULL);
        """)
        con.execute(f"COMMENT ON TABLE {PUBLICATION_TABLE} IS "
                    "'One row per published table: what this file holds and when it was built.'")
        for name, rows in counts.items():
            con.execute(f"INSERT INTO {PUBLICATION_TABLE} VALUES (?, ?, ?, ?)", [name, rows, run_id, published_at])
        # Everything into the main file: the published file must be complete without a WAL.
        con.execute("CHECKPOINT")
        return counts
    finally:
        con.close()


def publish_marts(warehouse: Warehouse, tables: Sequence[MartTable], destination: str | Path,
                  run_id: str) -> Publication:
    """Copy ``tables`` from the pipeline warehouse into a new file and swap it in atomically."""
    started = time.perf_counter()
    destination = Path(destination).resolve()
    destination.parent.mkdir(parents=True, exist_ok=True)
    staging = destination.with_name(f"{destination.name}.tmp-{run_id}")
    published_at = datetime.now(UTC)
    _remove(staging)
    try:
        # The lock covers reading the pipeline's file only; the copy is private until the rename.
        with writer_lock(warehouse):
            counts = _write_copy(warehouse.path.resolve(), staging, tables, run_id, published_at,
                                 warehouse.memory_limit)
        if staging.with_name(staging.name + ".wal").exists():
            raise RuntimeError(f"{staging} still has a write-ahead log after its checkpoint")
        os.replace(staging, destination)
        _fsync_directory(destination.parent)
    finally:
        _remove(staging)
    return Publication(path=destination, run_id=run_id, published_at=published_at, row_counts=counts,
                       size_bytes=destination.stat().st_size, seconds=time.perf_counter() - started)


def read_publication(path: str | Path) -> list[tuple[str, int, str, datetime]]:
    """(table, rows, run id, published at) of the file analysts currently see."""
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(
            f"SELECT table_name, row_count, run_id, published_at FROM {PUBLICATION_TABLE} ORDER BY table_name"
        ).fetchall()


def format_publication(path: str | Path, *, brief: bool = False) -> str:
    """What the analysts' file holds: every table and its rows, or (``brief``) their number."""
    path = Path(path)
    if not path.exists():
        return f"published marts: none yet at {path}"
    tables = read_publication(path)
    if not tables:
        return f"published marts: {path} holds no tables"
    _, _, run_id, published_at = tables[0]
    heading = (f"published marts: {path} ({path.stat().st_size / 2**20:,.1f} MiB, run {run_id}, "
               f"{published_at:%Y-%m-%d %H:%M:%S %Z}) - open it read-only")
    if brief:
        return f"{heading}; {len(tables)} tables, {sum(rows for _, rows, *_ in tables):,} rows ({PUBLICATION_TABLE})"
    # Several tables a line: a table each would make the listing most of the run's output.
    listing = textwrap.wrap(", ".join(f"{name} ({rows:,})" for name, rows, *_ in tables), width=PUBLICATION_WIDTH,
                            initial_indent="  ", subsequent_indent="  ", break_on_hyphens=False)
    return "\n".join([f"{heading}; {len(tables)} tables (rows):", *listing])
