"""The write-back ledger's own database, apart from the warehouse.

The ledger (``ops.outbox``, ``ops.outbox_attempts``, ``ops.duplicate_records``) is transactional
state: every posting reads and writes it in short transactions, and an event must be posted while
a full rebuild holds the warehouse's single writer for minutes. So it lives in its own DuckDB file
beside the warehouse (``<warehouse>.ledger.duckdb``), opened for the few seconds a posting takes
under its own lock. The warehouse keeps a mirror of it (``mirror_ledger``) for the dbt models and
marts that read the ledger; the mirror is refreshed by every posting that holds the warehouse.

Lock order: a process that holds both takes the ledger inside the warehouse (``posting_ledger``),
never the other way round; the event path takes the ledger alone. So no two holders wait on each
other.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from ps_pipelines.lib.warehouse.lock import exclusive_lock
from ps_pipelines.lib.writeback.outbox import LEDGER_TABLES, ensure_outbox_tables

LEDGER_SUFFIX = ".ledger.duckdb"
# A posting holds the ledger for seconds; a month-end batch may hold it for a few minutes.
DEFAULT_LEDGER_LOCK_TIMEOUT_SECONDS = 900.0


def ledger_path_for(warehouse_path: str | Path) -> Path:
    """The ledger file that belongs to a warehouse file (same folder, same stem)."""
    path = Path(warehouse_path)
    return path.with_name(path.stem + LEDGER_SUFFIX)


class LedgerStore:
    """Opens the ledger under its own cross-process lock (never the warehouse's)."""

    def __init__(self, path: str | Path, lock_timeout_seconds: float = DEFAULT_LEDGER_LOCK_TIMEOUT_SECONDS) -> None:
        self.path = Path(path)
        self.lock_timeout_seconds = lock_timeout_seconds

    @classmethod
    def beside(cls, warehouse_path: str | Path) -> LedgerStore:
        return cls(ledger_path_for(warehouse_path))

    @property
    def lock_path(self) -> Path:
        return self.path.with_name(self.path.name + ".lock")

    def exists(self) -> bool:
        return self.path.exists()

    @contextmanager
    def connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        with exclusive_lock(self.lock_path, self.lock_timeout_seconds):
            self.path.parent.mkdir(parents=True, exist_ok=True)
            con = duckdb.connect(str(self.path))
            try:
                ensure_outbox_tables(con)
                yield con
            finally:
                con.close()

    @contextmanager
    def read(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A read-only connection under the lock (for reports: it neither creates the file nor
        its tables; a caller checks ``exists()`` first)."""
        with exclusive_lock(self.lock_path, self.lock_timeout_seconds), \
                duckdb.connect(str(self.path), read_only=True) as con:
            yield con


def mirror_ledger(warehouse: duckdb.DuckDBPyConnection, ledger: duckdb.DuckDBPyConnection) -> None:
    """Replace the warehouse's copy of the ledger tables with the ledger's (one transaction).

    Copied through Arrow so neither connection attaches the other's file (either file may be
    opened by another process a moment later)."""
    ensure_outbox_tables(warehouse)
    warehouse.execute("BEGIN")
    try:
        for table in LEDGER_TABLES:
            rows = ledger.execute(f"SELECT * FROM {table}").arrow()  # noqa: F841 - read by the next statement
            warehouse.execute(f"DELETE FROM {table}")
            warehouse.execute(f"INSERT INTO {table} BY NAME SELECT * FROM rows")
        warehouse.execute("COMMIT")
    except BaseException:
        warehouse.execute("ROLLBACK")
        raise


# Warehouse rows already in the ledger are the ledger's (it may have moved on since): per table, the
# columns that say "the same row". Attempts go with their outbox row: a row the ledger already has
# keeps its own attempts, whose numbers the warehouse's would collide with.
_ROW_KEYS = {
    "ops.outbox": ("outbox_key",),
    "ops.outbox_attempts": ("outbox_key",),
    "ops.duplicate_records": ("target_system", "record_type", "duplicate_id"),
}
_ADOPTION_DDL = """
CREATE TABLE IF NOT EXISTS ops.ledger_adoptions (
    source VARCHAR PRIMARY KEY,
    adopted_at TIMESTAMPTZ NOT NULL,
    outbox_rows BIGINT NOT NULL
);
"""
WAREHOUSE_SOURCE = "warehouse"


def is_adopted(ledger: duckdb.DuckDBPyConnection) -> bool:
    ledger.execute(_ADOPTION_DDL)
    return bool(ledger.execute("SELECT count(*) FROM ops.ledger_adoptions WHERE source = ?",
                               [WAREHOUSE_SOURCE]).fetchone()[0])


def record_nothing_to_adopt(ledger: duckdb.DuckDBPyConnection) -> None:
    """A home with no warehouse yet has no earlier ledger: nothing will ever need adopting."""
    ledger.execute(_ADOPTION_DDL)
    ledger.execute("INSERT OR IGNORE INTO ops.ledger_adoptions VALUES (?, ?, 0)", [WAREHOUSE_SOURCE, datetime.now(UTC)])


def adopt_warehouse_ledger(warehouse: duckdb.DuckDBPyConnection, ledger: duckdb.DuckDBPyConnection) -> int | None:
    """Once per ledger: take the ledger rows a warehouse from before the ledger store held.

    Homes from before kept the ledger in the warehouse; without this, the first posting's
    ``mirror_ledger`` would replace those rows with an empty ledger's, and the next enqueue post
    every invoice again as new. The ledger records that it adopted them (``ops.ledger_adoptions``),
    so a later posting never copies its own mirror back. Rows the ledger already holds (an event
    posted before the first batch posting) are kept as they are. Returns the outbox rows copied,
    or ``None`` when the ledger had already adopted.
    """
    if is_adopted(ledger):
        return None
    ensure_outbox_tables(warehouse)
    ledger.execute("BEGIN")
    try:
        before = ledger.execute("SELECT count(*) FROM ops.outbox").fetchone()[0]
        # Attempts first: their filter must see the ledger's outbox rows before the copy.
        for table in ("ops.outbox_attempts", "ops.outbox", "ops.duplicate_records"):
            _copy_missing(warehouse, ledger, table)
        copied = ledger.execute("SELECT count(*) FROM ops.outbox").fetchone()[0] - before
        ledger.execute("INSERT INTO ops.ledger_adoptions VALUES (?, ?, ?)",
                       [WAREHOUSE_SOURCE, datetime.now(UTC), copied])
        ledger.execute("COMMIT")
    except BaseException:
        ledger.execute("ROLLBACK")
        raise
    return copied


def _copy_missing(source: duckdb.DuckDBPyConnection, target: duckdb.DuckDBPyConnection, table: str) -> None:
    keys = _ROW_KEYS[table]
    rows = source.execute(f"SELECT * FROM {table}").arrow()  # noqa: F841 - read by the next statement
    match = " AND ".join(f"t.{key} = r.{key}" for key in keys)
    missing = "ops.outbox" if table == "ops.outbox_attempts" else table
    target.execute(f"INSERT INTO {table} BY NAME SELECT r.* FROM rows r "
                   f"WHERE NOT EXISTS (SELECT 1 FROM {missing} t WHERE {match})")


@contextmanager
def posting_ledger(warehouse: duckdb.DuckDBPyConnection, store: LedgerStore) -> Iterator[duckdb.DuckDBPyConnection]:
    """The ledger for a batch posting that holds the warehouse (``warehouse`` is its connection).

    Taken inside the warehouse lock (the fixed order), adopted from the warehouse once, and
    mirrored into it on the way out, also after a failure, so the dbt models downstream see
    whatever this posting did."""
    with store.connect() as ledger:
        adopt_warehouse_ledger(warehouse, ledger)
        try:
            yield ledger
        finally:
            mirror_ledger(warehouse, ledger)
