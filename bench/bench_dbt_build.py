"""dbt build benchmark: a full build, then an incremental build after 1% of time entries change.

Runs the real Dagster assets (ingestion over HTTP, the dbt models, the published marts) on
an in-memory Dagster instance against a sandbox at the chosen scale (10,000 time entries per
unit of scale; 100 = one million):

1. ingest everything, full ``dbt build`` of every model and test, publish the marts;
2. change a fraction of the time entries through the sandbox control API;
3. ingest incrementally, then run what the automation sensor requests: the models downstream
   of the raw tables whose data changed (only time entries), in one ``dbt build``
   (incremental models merge only the changed rows; table models below them rebuild), and
   the published marts.

Prints the wall time of each step, dbt's own elapsed time, and the rows of the largest models.

    .venv/bin/python bench/bench_dbt_build.py --scale 100   # reuses /tmp/big/sandbox-scale100-seed42.sqlite
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import duckdb
import requests
from dagster import AssetKey, DagsterInstance, JobDefinition, evaluate_automation_conditions

from ps_pipelines.definitions import build_definitions
from ps_pipelines.defs.transform.assets import build_target_path
from ps_pipelines.defs.transform.publish import PUBLISHED_MARTS_KEY
from ps_pipelines.ingest.catalog import ingest_assets
from ps_pipelines.local_sandbox import SandboxProcess

QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
SUMMARY: list[str] = []  # dbt echoes its own log: the figures are repeated at the end
SHARED_SANDBOX_HOME = Path("/tmp/big")  # generating scale 100 takes about two minutes: reuse it


def timed(job: JobDefinition, instance: DagsterInstance, selection: Sequence[AssetKey], label: str) -> float:
    started = time.perf_counter()
    result = job.execute_in_process(instance=instance, asset_selection=list(selection), raise_on_error=False,
                                    run_config=QUIET)
    seconds = time.perf_counter() - started
    if not result.success:
        raise SystemExit(f"{label} failed (run {result.run_id})")
    return seconds


def dbt_summary(warehouse: Path) -> str:
    """dbt's own elapsed time and node counts from the build's run_results.json."""
    run_results = json.loads((build_target_path(warehouse) / "run_results.json").read_text())
    kinds: dict[str, int] = {}
    for result in run_results["results"]:
        kind = result["unique_id"].split(".")[0]
        kinds[kind] = kinds.get(kind, 0) + 1
    nodes = ", ".join(f"{count} {kind}s" for kind, count in sorted(kinds.items()))
    return f"dbt elapsed {run_results['elapsed_time']:.1f}s ({nodes})"


def largest_tables(warehouse: Path, limit: int = 5) -> str:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        names = [row[0] for row in con.execute("""
            SELECT schema_name || '.' || table_name FROM duckdb_tables()
            WHERE schema_name IN ('marts', 'outbound') ORDER BY estimated_size DESC LIMIT ?""", [limit]).fetchall()]
        counts = {name: con.execute(f"SELECT count(*) FROM {name}").fetchone()[0] for name in names}
    return ", ".join(f"{name} {rows:,}" for name, rows in counts.items())


def report(phase: str, ingest_seconds: float, dbt_seconds: float, models: int, warehouse: Path,
           note: str = "dbt build (Dagster step)") -> None:
    say(f"{phase:<11}  ingest {ingest_seconds:6.1f}s  {note} {dbt_seconds:6.1f}s  ({models} models "
        f"selected)  {dbt_summary(warehouse)}")


def say(line: str) -> None:
    SUMMARY.append(line)
    print(line, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=100.0)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--changed-fraction", type=float, default=0.01)
    parser.add_argument("--sandbox-home", default=None,
                        help=f"Folder of the sandbox database (default {SHARED_SANDBOX_HOME} when it exists).")
    args = parser.parse_args()

    sandbox_home = Path(args.sandbox_home or (SHARED_SANDBOX_HOME if SHARED_SANDBOX_HOME.exists()
                                              else tempfile.mkdtemp(prefix="ps-bench-sandbox-")))
    state = sandbox_home / f"sandbox-scale{args.scale:g}-seed{args.seed}.sqlite"
    warehouse = Path(tempfile.mkdtemp(prefix="ps-bench-dbt-")) / "warehouse.duckdb"
    started = time.perf_counter()
    with SandboxProcess(state, scale=args.scale, seed=args.seed) as sandbox:
        say(f"sandbox ready in {time.perf_counter() - started:.1f}s at scale {args.scale:g} ({state})")
        defs = build_definitions("local", sandbox_url=sandbox.url, warehouse_path=str(warehouse))
        job = defs.resolve_job_def("refresh_all")
        graph = defs.resolve_asset_graph()
        dbt_keys = {key for a in defs.assets or () if getattr(a, "op", None) and a.op.name.startswith("dbt_build")
                    for key in a.keys}
        raw = [key for asset in ingest_assets for key in asset.keys]
        with DagsterInstance.ephemeral() as instance:
            ingest_seconds = timed(job, instance, raw, "full ingestion")
            dbt_seconds = timed(job, instance, sorted(dbt_keys), "full dbt build")
            report("full", ingest_seconds, dbt_seconds, len(dbt_keys), warehouse)
            publish_seconds = timed(job, instance, [PUBLISHED_MARTS_KEY], "full publish")
            say(f"{'':<11}  publish {publish_seconds:5.1f}s  rows: {largest_tables(warehouse)}")
            cursor = evaluate_automation_conditions(defs, instance).cursor

            touched = requests.post(f"{sandbox.url}/_sandbox/events/touch", timeout=600, json={
                "platform": "kantata", "object": "time_entries", "fraction": args.changed_fraction}).json()
            say(f"changed {touched['touched']:,} time entries ({args.changed_fraction:.0%}) through the control API")
            ingest_seconds = timed(job, instance, raw, "incremental ingestion")
            evaluation = evaluate_automation_conditions(defs, instance, cursor=cursor)
            requested = [key for key in graph.get_all_asset_keys() if evaluation.get_num_requested(key)]
            models = [key for key in requested if key in dbt_keys]
            dbt_seconds = timed(job, instance, requested, "incremental rebuild")
            report("incremental", ingest_seconds, dbt_seconds, len(models), warehouse,
                   note="dbt build + publish of what automation requested")
    say(f"warehouse {warehouse} {warehouse.stat().st_size / 2**20:,.0f} MiB, "
        f"published {warehouse.with_name('analytics.duckdb').stat().st_size / 2**20:,.0f} MiB")
    print("\n== summary ==\n" + "\n".join(SUMMARY))


if __name__ == "__main__":
    main()
