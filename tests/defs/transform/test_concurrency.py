"""The pipeline end to end, with one writer at a time and analysts reading throughout.

One scenario, because every step needs a full dbt build before it (the most expensive
thing in the suite):

1. An earlier publication is in place, and two analysts start reading it:
   * one holds a single read-only connection open the whole time (a notebook, a BI extract):
     the pipeline is never blocked by it, and it keeps reading the state it opened;
   * one reconnects for every query (a dashboard refresh): each time it must see one complete
     publication, old or new, never a mix and never a failure.
2. The main job runs (ingest, dbt build with its tests as checks, docs, publish). As soon as
   its dbt process holds the warehouse, a second process starts an ingestion run on the same
   warehouse: DuckDB allows one writing process, so it must queue on the warehouse lock, and
   both runs must succeed.
3. One percent of the time entries change in the PSA and are ingested on their own: the
   automation requests exactly the models downstream of that raw table, and running that
   request builds only those models, then publishes again.

"Complete" is checked against the file's own ``meta.publication``: every table has exactly
the rows the publisher recorded, and every table comes from the same run.
"""

from __future__ import annotations

import itertools
import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pytest
from dagster import AssetKey, DagsterInstance, Definitions, evaluate_automation_conditions

from ps_pipelines.definitions import build_definitions
from ps_pipelines.defs.transform.assets import build_target_path, load_manifest, published_tables
from ps_pipelines.defs.transform.publish import DBT_DOCS_KEY, PUBLISHED_MARTS_KEY, ROWS_PREFIX
from ps_pipelines.lib.warehouse.lock import exclusive_lock
from ps_pipelines.lib.warehouse.publish import (
    PUBLICATION_TABLE,
    MartTable,
    default_analytics_path,
    publish_marts,
    read_publication,
)
from ps_pipelines.lib.warehouse.warehouse import Warehouse
from ps_pipelines.transform.project import DOCS_TARGET_PATH
from tests.conftest import RunningSandbox
from tests.defs.transform.test_dbt_assets import (
    DBT_CHECK_SPECS,
    GRAPH,
    MODEL_KEYS,
    RAW_TIME_ENTRIES,
    automated_downstream_of,
)

mart_tables = published_tables(load_manifest())

RUN_TIMEOUT_SECONDS = 900
ANALYST = f"""
import json, sys, time
from pathlib import Path
import duckdb

path, stop, out, mode = sys.argv[1:5]

def observe(con):
    publication = con.execute("SELECT table_name, row_count, run_id FROM {PUBLICATION_TABLE}").fetchall()
    mismatched = [name for name, rows, _ in publication
                  if con.execute(f"SELECT count(*) FROM {{name}}").fetchone()[0] != rows]
    return {{"run_ids": sorted({{run_id for _, _, run_id in publication}}), "tables": len(publication),
             "mismatched": mismatched}}

held = duckdb.connect(path, read_only=True) if mode == "hold" else None
print("reading", flush=True)
with open(out, "w") as log:
    stopping = False
    while not stopping:
        stopping = Path(stop).exists()  # one more read once the pipeline is done
        try:
            if held is not None:
                seen = observe(held)
            else:
                with duckdb.connect(path, read_only=True) as con:
                    seen = observe(con)
        except Exception as error:  # any failure to read is what this analyst reports
            seen = {{"error": repr(error)}}
        log.write(json.dumps(seen) + "\\n")
        log.flush()
        time.sleep(0.2)
"""


@dataclass
class Pipeline:
    defs: Definitions
    instance: DagsterInstance
    sandbox: RunningSandbox
    home: Path

    @property
    def warehouse(self) -> Path:
        return (self.home / "warehouse.duckdb").resolve()

    def run(self, selection: list[AssetKey] | None = None) -> Any:
        job = self.defs.resolve_job_def("refresh_all")
        return job.execute_in_process(instance=self.instance, asset_selection=selection, raise_on_error=False)

    def rows(self, sql: str) -> list[tuple]:
        with duckdb.connect(str(self.warehouse), read_only=True) as con:
            return con.execute(sql).fetchall()


@pytest.fixture
def pipeline(sandbox: RunningSandbox, tmp_path: Path) -> Iterator[Pipeline]:
    home = tmp_path / "home"
    defs = build_definitions("local", sandbox_url=sandbox.url, warehouse_path=str(home / "warehouse.duckdb"))
    with DagsterInstance.ephemeral() as instance:
        yield Pipeline(defs, instance, sandbox, home)


# -- the analysts and the second writer ----------------------------------------------------------
def publish_earlier_state(tmp_path: Path, destination: Path) -> None:
    """What analysts already have open when the pipeline starts: an earlier, complete publication."""
    earlier = Warehouse(tmp_path / "earlier" / "warehouse.duckdb")
    with earlier.connect() as con:
        con.execute("CREATE SCHEMA marts; CREATE TABLE marts.dim_customer AS SELECT range AS id FROM range(7)")
    publish_marts(earlier, [MartTable("marts", "dim_customer")], destination, "earlier")


def start_analyst(mode: str, analytics: Path, stop: Path, out: Path) -> subprocess.Popen:
    analyst = subprocess.Popen([sys.executable, "-c", ANALYST, str(analytics), str(stop), str(out), mode],
                               stdout=subprocess.PIPE, text=True)
    assert analyst.stdout is not None and analyst.stdout.readline().strip() == "reading"
    return analyst


def start_ingestion(home: Path, sandbox_url: str, log: Path) -> subprocess.Popen:
    command = [sys.executable, "-m", "ps_pipelines.cli", "run", "--job", "ingest_all", "--home", str(home),
               "--sandbox-url", sandbox_url]
    return subprocess.Popen(command, stdout=log.open("w"), stderr=subprocess.STDOUT)


def wait_until_dbt_runs(dbt_log: Path, job: Future) -> None:
    """dbt writes its log once it has started, which it does holding the warehouse lock."""
    deadline = time.monotonic() + RUN_TIMEOUT_SECONDS
    while not dbt_log.exists():
        assert not job.done() and time.monotonic() < deadline, "the main job never started dbt"
        time.sleep(0.05)


def observations(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def cli_run_id(log: Path) -> str:
    match = re.search(r"^run (\S+) succeeded", log.read_text(), re.MULTILINE)
    assert match, log.read_text()[-3000:]
    return match.group(1)


# -- what a main job run must have produced --------------------------------------------------------
def materialized(result: Any) -> dict[AssetKey, Mapping[str, Any]]:
    return {e.asset_key: e.materialization.metadata for e in result.get_asset_materialization_events()}


def assert_models_built_with_row_counts(pipeline: Pipeline, metadata: Mapping[AssetKey, Mapping[str, Any]]) -> None:
    assert set(MODEL_KEYS) <= set(metadata)
    for key, node in MODEL_KEYS.items():
        if node["config"]["materialized"] != "view":
            [(rows,)] = pipeline.rows(f'SELECT count(*) FROM "{node["schema"]}"."{node["alias"]}"')
            assert metadata[key]["dagster/row_count"].value == rows, key


def assert_every_dbt_test_ran_as_a_passing_check(result: Any) -> None:
    expected = {(spec.asset_key, spec.name) for spec in DBT_CHECK_SPECS}
    checks = [c for c in result.get_asset_check_evaluations() if (c.asset_key, c.check_name) in expected]
    assert {(c.asset_key, c.check_name) for c in checks} == expected
    assert all(c.passed for c in checks), [c.check_name for c in checks if not c.passed]


def assert_published_like_the_warehouse(pipeline: Pipeline, run_id: str, metadata: Mapping[str, Any]) -> None:
    analytics = default_analytics_path(pipeline.warehouse)
    publication = read_publication(analytics)
    assert {name for name, *_ in publication} == {t.qualified_name for t in mart_tables}
    assert {row[2] for row in publication} == {run_id}
    for name, rows, *_ in publication:
        assert pipeline.rows(f"SELECT count(*) FROM {name}") == [(rows,)]
    assert metadata["path"].value == str(analytics)
    assert metadata["size_bytes"].value == analytics.stat().st_size
    assert {name: metadata[f"{ROWS_PREFIX}{name}"].value for name, *_ in publication} == {
        name: rows for name, rows, *_ in publication}
    assert not list(analytics.parent.glob("analytics.duckdb.tmp-*"))


def assert_docs_generated(metadata: Mapping[str, Any]) -> None:
    docs = Path(metadata["static_index_html"].value)
    assert docs == DOCS_TARGET_PATH / "static_index.html" and docs.stat().st_size > 0
    catalog = json.loads((DOCS_TARGET_PATH / "catalog.json").read_text())
    assert {node["metadata"]["name"] for node in catalog["nodes"].values()} >= {t.name for t in mart_tables}


# -- the scenario ----------------------------------------------------------------------------------
def run_main_job_with_a_second_writer(pipeline: Pipeline, tmp_path: Path) -> tuple[Any, str]:
    ingestion_log = tmp_path / "ingest_all.log"
    ingestion = None
    try:
        with ThreadPoolExecutor(1) as pool:
            job = pool.submit(pipeline.run)
            wait_until_dbt_runs(build_target_path(pipeline.warehouse) / "dbt.log", job)
            ingestion = start_ingestion(pipeline.home, pipeline.sandbox.url, ingestion_log)
            result = job.result(timeout=RUN_TIMEOUT_SECONDS)
        assert ingestion.wait(timeout=RUN_TIMEOUT_SECONDS) == 0, ingestion_log.read_text()[-3000:]
    finally:
        if ingestion is not None and ingestion.poll() is None:
            ingestion.kill()
            ingestion.wait()
    return result, cli_run_id(ingestion_log)


def rebuild_after_a_psa_change(pipeline: Pipeline) -> tuple[list[AssetKey], Any]:
    """What the automation sensor does after an ingestion: evaluate, then run what it requests."""
    cursor = evaluate_automation_conditions(pipeline.defs, pipeline.instance).cursor
    touched = pipeline.sandbox.control("POST", "events/touch",
                                       {"platform": "kantata", "object": "time_entries", "fraction": 0.01})
    assert touched["touched"] > 0
    assert pipeline.run([RAW_TIME_ENTRIES]).success
    evaluation = evaluate_automation_conditions(pipeline.defs, pipeline.instance, cursor=cursor)
    requested = [key for key in GRAPH.get_all_asset_keys() if evaluation.get_num_requested(key)]
    return requested, pipeline.run(requested)


def step_failures(result: Any) -> list[str]:
    """Why a run failed, step by step, so a failure on a loaded CI machine can be diagnosed."""
    errors = [(event.step_key, event.step_failure_data.error) for event in result.all_events if event.is_step_failure]
    return [f"{step}: {error.message.strip() if error else ''}" for step, error in errors]


def test_main_job_and_a_partial_rebuild_publish_while_a_second_writer_queues_and_analysts_read(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    analytics, stop = default_analytics_path(pipeline.warehouse), tmp_path / "stop"
    publish_earlier_state(tmp_path, analytics)
    analysts = [start_analyst(mode, analytics, stop, tmp_path / f"{mode}.jsonl") for mode in ("hold", "reconnect")]
    try:
        main, ingestion_run_id = run_main_job_with_a_second_writer(pipeline, tmp_path)
        assert main.success, step_failures(main)
        requested, rebuild = rebuild_after_a_psa_change(pipeline)
    finally:
        stop.touch()
        for analyst in analysts:
            analyst.wait(timeout=60)

    # The main job built every model, ran every dbt test as a passing check, documented and published.
    metadata = materialized(main)
    assert_models_built_with_row_counts(pipeline, metadata)
    assert_every_dbt_test_ran_as_a_passing_check(main)
    assert_docs_generated(metadata[DBT_DOCS_KEY])
    assert {key.removeprefix(ROWS_PREFIX) for key in metadata[PUBLISHED_MARTS_KEY] if key.startswith(ROWS_PREFIX)} \
        == {t.qualified_name for t in mart_tables}
    # The second writer waited for dbt instead of failing on DuckDB's lock, and loaded everything.
    ingest_runs = dict(pipeline.rows("SELECT run_id, count(DISTINCT entity_key) FROM ops.ingest_runs GROUP BY ALL"))
    assert ingest_runs[ingestion_run_id] == ingest_runs[main.run_id] > 0
    # Once the runs are over nobody holds the lock, and this process holds no DuckDB connection
    # to the warehouse: another process can open it for writing.
    with exclusive_lock(pipeline.warehouse.with_name("warehouse.duckdb.lock"), timeout_seconds=1):
        subprocess.run([sys.executable, "-c", "import duckdb, sys; duckdb.connect(sys.argv[1]).close()",
                        str(pipeline.warehouse)], check=True)

    # A change in one raw table requested its downstream models only, and dbt built just those.
    assert set(requested) == automated_downstream_of(RAW_TIME_ENTRIES)
    # dagster-dbt reports every model dbt ran in the run's dbt steps (one op per stage, each with
    # its own run_results.json in turn), so the run's materializations are what dbt built.
    assert rebuild.success, step_failures(rebuild)
    assert set(materialized(rebuild)) == set(requested)
    assert_published_like_the_warehouse(pipeline, rebuild.run_id, materialized(rebuild)[PUBLISHED_MARTS_KEY])

    held, reconnected = observations(tmp_path / "hold.jsonl"), observations(tmp_path / "reconnect.jsonl")
    for seen in [*held, *reconnected]:
        # One complete publication each time: every table from one run, with the rows it recorded.
        assert "error" not in seen and len(seen["run_ids"]) == 1 and not seen["mismatched"], seen
        assert seen["tables"] == (1 if seen["run_ids"] == ["earlier"] else len(mart_tables)), seen
    # The holder kept reading the state it opened while the pipeline published over it twice.
    assert held and {seen["run_ids"][0] for seen in held} == {"earlier"}
    # The reconnecting analyst followed the publications in order and never went back.
    states = [state for state, _ in itertools.groupby(seen["run_ids"][0] for seen in reconnected)]
    assert states == ["earlier", main.run_id, rebuild.run_id]
