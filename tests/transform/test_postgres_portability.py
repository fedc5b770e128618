"""Portability: the whole dbt project builds on a real PostgreSQL server like it does on DuckDB.

The sandbox is ingested over real HTTP into DuckDB by the real ingestion assets; every
``raw_<platform>`` table is copied into a throwaway PostgreSQL server (installed and started
by ``pg_server``); then ``dbt build --target postgres`` (models, data tests, unit tests) must
pass and every model must hold as many rows as the DuckDB build of the same raw data.

Where no server can be started the test is skipped with the reason; set
``PS_REQUIRE_POSTGRES=1`` (CI) to make that a failure instead.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
from psycopg2 import sql

from ps_pipelines.lib.contracts import ALL_CONTRACTS
from tests.transform.pg_server import PostgresServer, PostgresUnavailable, start_postgres
from tests.transform.test_dbt_foundation import dbt_or_fail, ingest_sandbox

# DuckDB raw column types (see ps_pipelines.lib.warehouse) and their PostgreSQL equivalents.
PG_TYPES = {
    "VARCHAR": "text",
    "DOUBLE": "double precision",
    "BOOLEAN": "boolean",
    "TIMESTAMP WITH TIME ZONE": "timestamptz",
    "DATE": "date",
    "JSON": "jsonb",
}
PASSED = {"success", "pass"}


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    try:
        server = start_postgres()
    except PostgresUnavailable as why:
        if os.environ.get("PS_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"PostgreSQL is required (PS_REQUIRE_POSTGRES=1) but unavailable: {why}")
        pytest.skip(f"no PostgreSQL server for the portability build: {why}")
    try:
        yield server
    finally:
        server.stop()


# -- raw tables: DuckDB -> PostgreSQL -------------------------------------------------------------
def raw_columns(con: duckdb.DuckDBPyConnection) -> dict[tuple[str, str], list[tuple[str, str]]]:
    """(schema, table) -> [(column, PostgreSQL type)] for every raw_<platform> table."""
    tables: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for schema, table, column, duck_type in con.execute("""
            SELECT table_schema, table_name, column_name, data_type FROM information_schema.columns
            WHERE starts_with(table_schema, 'raw_') ORDER BY table_schema, table_name, ordinal_position""").fetchall():
        # A raw type without a mapping must fail here, not load as the wrong type.
        assert duck_type in PG_TYPES, f"{schema}.{table}.{column}: no PostgreSQL type for DuckDB {duck_type}"
        tables.setdefault((schema, table), []).append((column, PG_TYPES[duck_type]))
    return tables


def copy_raw_to_postgres(warehouse: Path, server: PostgresServer, csv_dir: Path) -> dict[str, int]:
    """Recreate every raw table in PostgreSQL with mapped types and load its rows via CSV.

    Returns the row count of each copied table, as counted by PostgreSQL.
    """
    csv_dir.mkdir(parents=True, exist_ok=True)
    duck = duckdb.connect(str(warehouse), read_only=True)
    pg = server.connect()
    try:
        duck.execute("SET TimeZone = 'UTC'")  # timestamps are written with their offset; UTC reads plainly
        counts = {}
        for (schema, table), columns in raw_columns(duck).items():
            csv_file = csv_dir / f"{schema}.{table}.csv"
            duck.execute(f"COPY {schema}.{table} TO '{csv_file}' (FORMAT csv, HEADER)")
            counts[f"{schema}.{table}"] = _load_table(pg, schema, table, columns, csv_file)
        pg.commit()
        return counts
    finally:
        pg.close()
        duck.close()


def _load_table(pg: Any, schema: str, table: str, columns: list[tuple[str, str]], csv_file: Path) -> int:
    target = sql.Identifier(schema, table)
    column_list = sql.SQL(", ").join(
        sql.SQL("{} {}").format(sql.Identifier(name), sql.SQL(pg_type)) for name, pg_type in columns)
    with pg.cursor() as cursor:
        cursor.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
        cursor.execute(sql.SQL("CREATE TABLE {} ({})").format(target, column_list))
        with csv_file.open(encoding="utf-8") as rows:
            # DuckDB writes NULL as an empty field and an empty string as "": COPY reads them back alike.
            cursor.copy_expert(sql.SQL("COPY {} FROM STDIN WITH (FORMAT csv, HEADER true)").format(target), rows)
        cursor.execute(sql.SQL("SELECT count(*) FROM {}").format(target))
        return cursor.fetchone()[0]


# -- dbt on both targets ----------------------------------------------------------------------------
def build_on_postgres(server: PostgresServer, warehouse: Path, work_dir: Path) -> dict[str, Any]:
    with pytest.MonkeyPatch.context() as patch:
        for name, value in server.dbt_env().items():
            patch.setenv(name, value)
        return dbt_or_fail(["build", "--target", "postgres"], warehouse, work_dir)


def model_relations(run_results: dict[str, Any]) -> dict[str, str]:
    """Model unique id -> the relation it built (ephemeral models build none)."""
    return {r["unique_id"]: r["relation_name"] for r in run_results["results"]
            if r["unique_id"].startswith("model.") and r.get("relation_name")}


def duckdb_row_counts(warehouse: Path, relations: dict[str, str]) -> dict[str, int]:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return {model: con.execute(f"SELECT count(*) FROM {relation}").fetchone()[0]
                for model, relation in relations.items()}
    finally:
        con.close()


def postgres_row_counts(server: PostgresServer, relations: dict[str, str]) -> dict[str, int]:
    pg = server.connect()
    try:
        with pg.cursor() as cursor:
            counts = {}
            for model, relation in relations.items():
                cursor.execute(f"SELECT count(*) FROM {relation}")
                counts[model] = cursor.fetchone()[0]
            return counts
    finally:
        pg.close()


def failures(run_results: dict[str, Any]) -> list[str]:
    return [f"{r['unique_id']}: {r['status']} {r.get('message') or ''}".strip()
            for r in run_results["results"] if r["status"] not in PASSED]


# -- the test ---------------------------------------------------------------------------------------
def test_project_builds_on_postgres_with_the_row_counts_of_duckdb(
    sandbox_template: Path, postgres: PostgresServer, tmp_path: Path
) -> None:
    warehouse = tmp_path / "warehouse.duckdb"
    ingest_sandbox(sandbox_template, tmp_path, warehouse)
    copied = copy_raw_to_postgres(warehouse, postgres, tmp_path / "csv")
    assert set(copied) == {f"raw_{c.platform}.{c.entity}" for c in ALL_CONTRACTS}
    assert all(copied.values()), copied
    assert copied == duckdb_row_counts(warehouse, {table: table for table in copied})

    # The DuckDB side only needs the seeds and models: its tests run in the other transform tests.
    duck_results = dbt_or_fail(["build", "--exclude", "resource_type:test", "resource_type:unit_test"],
                               warehouse, tmp_path / "dbt_duckdb")
    pg_results = build_on_postgres(postgres, warehouse, tmp_path / "dbt_postgres")

    assert failures(pg_results) == []
    kinds = {r["unique_id"].split(".")[0] for r in pg_results["results"]}
    assert {"model", "test", "unit_test"} <= kinds
    pg_relations, duck_relations = model_relations(pg_results), model_relations(duck_results)
    assert set(pg_relations) == set(duck_relations)
    assert any('"marts".' in relation for relation in pg_relations.values())
    assert postgres_row_counts(postgres, pg_relations) == duckdb_row_counts(warehouse, duck_relations)
