"""The write-back ledger's own database, apart from the warehouse.

The ledger (``ops.outbox``, ``ops.outbox_attempts``, ``ops.duplicate_records``) is transactional
state: every posting reads and writes it in short transactions, and an event must be posted while
a full rebuild holds the warehouse's single writer for minutes. So it lives in its own DuckDB file
beside the warehouse (``<warehouse>.ledger.duckdb``), opened for the few seconds a posting takes
under its own lock. The warehouse keeps a mirror of it (``mirror_ledger``) for the dbt models and
marts that read the ledger; the mirror is refreshed by every posting that holds the warehouse.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
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

    @contextmanager
    def connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        with exclusive_lock(self.path.with_name(self.path.name + ".lock"), self.lock_timeout_seconds):
            self.path.parent.mkdir(parents=True, exist_ok=True)
            con = duckdb.connect(str(self.path))
            try:
                ensure_outbox_tables(con)
                yield con
            finally:
                con.close()


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
