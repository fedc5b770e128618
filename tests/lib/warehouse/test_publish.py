"""The analysts' copy: written aside and swapped in atomically, never locking the pipeline.

A small warehouse with two mart tables stands in for a dbt build; the full path (dbt build
then publish on sandbox data) is covered in ``test_dbt_assets`` and ``test_concurrency``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from ps_pipelines.defs.transform.publish import ROWS_PREFIX, publication_metadata
from ps_pipelines.lib.warehouse.lock import WarehouseBusyError, exclusive_lock
from ps_pipelines.lib.warehouse.publish import (
    PUBLICATION_TABLE,
    MartTable,
    default_analytics_path,
    format_publication,
    publish_marts,
    read_publication,
)
from ps_pipelines.lib.warehouse.warehouse import Warehouse

TABLES = [
    MartTable("marts", "dim_customer", "One row per real customer.",
              {"customer_key": "Surrogate key.", "name": "Display name.", "not_a_column": "ignored"}),
    MartTable("marts", "fct_hours", "Hours per customer."),
]


def build_marts(warehouse: Warehouse, customers: int) -> None:
    """A dbt build stand-in: the marts, plus a staging view that must not be published."""
    with warehouse.connect() as con:
        con.execute("CREATE SCHEMA IF NOT EXISTS marts; CREATE SCHEMA IF NOT EXISTS staging")
        con.execute("CREATE OR REPLACE TABLE marts.dim_customer AS "
                    "SELECT i AS customer_key, 'customer ' || i AS name FROM range(?) t(i)", [customers])
        con.execute("CREATE OR REPLACE TABLE marts.fct_hours AS "
                    "SELECT i % ? AS customer_key, 8.0 AS hours FROM range(?) t(i)", [customers, customers * 10])
        con.execute("CREATE OR REPLACE VIEW staging.stg_x AS SELECT 1 AS x")


@pytest.fixture
def warehouse(tmp_path: Path) -> Warehouse:
    store = Warehouse(tmp_path / "warehouse.duckdb", lock_timeout_seconds=5)
    build_marts(store, customers=3)
    return store


def counts(path: Path) -> dict[str, int]:
    with duckdb.connect(str(path), read_only=True) as con:
        return {t.qualified_name: con.execute(f"SELECT count(*) FROM {t.sql_name}").fetchone()[0] for t in TABLES}


def test_publish_copies_the_marts_with_their_docs_and_a_publication_record(warehouse: Warehouse) -> None:
    target = default_analytics_path(warehouse.path)
    publication = publish_marts(warehouse, TABLES, target, "run-1")

    assert target == warehouse.path.with_name("analytics.duckdb")
    assert publication.row_counts == counts(target) == {"marts.dim_customer": 3, "marts.fct_hours": 30}
    assert publication.size_bytes == target.stat().st_size > 0
    assert [row[:3] for row in read_publication(target)] == [
        ("marts.dim_customer", 3, "run-1"), ("marts.fct_hours", 30, "run-1")]
    with duckdb.connect(str(target), read_only=True) as con:
        schemas = {row[0] for row in con.execute(
            "SELECT DISTINCT schema_name FROM duckdb_tables() WHERE database_name = current_database()").fetchall()}
        assert schemas == {"marts", PUBLICATION_TABLE.split(".")[0]}  # marts only, no staging
        assert con.execute("SELECT comment FROM duckdb_tables() WHERE table_name = 'dim_customer'").fetchone() == (
            "One row per real customer.",)
        assert dict(con.execute("SELECT column_name, comment FROM duckdb_columns() "
                                "WHERE table_name = 'dim_customer'").fetchall()) == {
            "customer_key": "Surrogate key.", "name": "Display name."}
    # Nothing is left beside the published file, and it is complete without a write-ahead log.
    assert sorted(p.name for p in target.parent.iterdir() if p.name.startswith("analytics")) == ["analytics.duckdb"]
    assert "marts.fct_hours" in format_publication(target) and "run-1" in format_publication(target)
    assert format_publication(target, brief=True).endswith("; 2 tables, 33 rows (meta.publication)")


def test_a_reader_holding_the_old_file_keeps_its_complete_state_across_a_republish(warehouse: Warehouse) -> None:
    target = default_analytics_path(warehouse.path)
    publish_marts(warehouse, TABLES, target, "run-1")
    old_inode = target.stat().st_ino
    analyst = duckdb.connect(str(target), read_only=True)
    try:
        assert counts(target) == {"marts.dim_customer": 3, "marts.fct_hours": 30}
        build_marts(warehouse, customers=5)
        # The analyst's open file does not stop the pipeline from writing or republishing.
        publish_marts(warehouse, TABLES, target, "run-2")
        assert target.stat().st_ino != old_inode
        # POSIX: the analyst still reads the inode it opened, the previous complete state.
        assert analyst.execute("SELECT count(*) FROM marts.fct_hours").fetchone() == (30,)
        assert analyst.execute(f"SELECT DISTINCT run_id FROM {PUBLICATION_TABLE}").fetchall() == [("run-1",)]
        # A new process opening the path gets the new complete state (in this process DuckDB
        # would hand back the instance still open above: analysts reconnect after closing).
        fresh = subprocess.run(
            [sys.executable, "-c", "import duckdb, sys; c = duckdb.connect(sys.argv[1], read_only=True); "
             f"print(c.execute('SELECT count(*), min(run_id) FROM {PUBLICATION_TABLE} p "
             "JOIN marts.fct_hours f ON true').fetchone())", str(target)],
            capture_output=True, text=True, check=True)
        assert fresh.stdout.strip() == "(100, 'run-2')"  # 2 publication rows x 50 hours rows
    finally:
        analyst.close()
    assert counts(target) == {"marts.dim_customer": 5, "marts.fct_hours": 50}


def test_a_failed_publish_leaves_the_published_file_untouched_and_no_leftovers(warehouse: Warehouse) -> None:
    target = default_analytics_path(warehouse.path)
    publish_marts(warehouse, TABLES, target, "run-1")
    before = target.read_bytes()
    with pytest.raises(LookupError, match=r"marts\.fct_missing"):
        publish_marts(warehouse, [*TABLES, MartTable("marts", "fct_missing")], target, "run-2")
    assert target.read_bytes() == before
    assert not list(target.parent.glob("analytics.duckdb.tmp-*"))


def test_publish_reads_the_pipeline_file_only_under_the_writer_lock(warehouse: Warehouse) -> None:
    warehouse.lock_timeout_seconds = 0.3
    lock_path = warehouse.path.with_name(warehouse.path.name + ".lock")
    with exclusive_lock(lock_path), pytest.raises(WarehouseBusyError):
        publish_marts(warehouse, TABLES, default_analytics_path(warehouse.path), "run-1")
    assert not default_analytics_path(warehouse.path).exists()


def test_the_analysts_file_is_never_locked_by_the_pipeline(warehouse: Warehouse, tmp_path: Path) -> None:
    """While a publish runs, nothing holds the published path: analysts can always open it."""
    target = default_analytics_path(warehouse.path)
    publish_marts(warehouse, TABLES, target, "run-1")
    # A read-write holder of the published file (a careless analyst) does not block a republish.
    holder = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys; c = duckdb.connect(sys.argv[1]); print('open', flush=True); "
         "sys.stdin.read()", str(target)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
        publish_marts(warehouse, TABLES, target, "run-2")
    finally:
        holder.communicate("")
    assert read_publication(target)[0][2] == "run-2"


def test_the_asset_reports_each_tables_rows_not_their_sum(warehouse: Warehouse) -> None:
    publication = publish_marts(warehouse, TABLES, default_analytics_path(warehouse.path), "run-1")

    metadata = publication_metadata(publication)

    assert {key: value.value for key, value in metadata.items() if key.startswith(ROWS_PREFIX)} == {
        "rows: marts.dim_customer": 3, "rows: marts.fct_hours": 30}
    assert [(r.data["table"], r.data["rows"]) for r in metadata["tables"].value.records] == [
        ("marts.dim_customer", 3), ("marts.fct_hours", 30)]
    assert [c.name for c in metadata["tables"].value.schema.columns] == ["table", "rows"]
    # A sum of rows over unrelated tables (33 here) is no table's row count.
    assert "dagster/row_count" not in metadata and metadata["table_count"] == 2
