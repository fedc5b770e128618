"""Certinia ingestion benchmark: timecards (``pse__Timecard_Header__c``) over real HTTP into DuckDB.

Starts the sandbox as a separate process with Certinia PSA installed in its Salesforce org, at the
chosen scale (the org's weekly timecards come from the same 10,000 time entries per unit of scale,
grouped per resource, project, week, status and billable flag), loads every timecard through the
Salesforce client, changes a fraction through the control API and loads again incrementally.
Prints rows/s with wall time and this process's CPU seconds.

    .venv/bin/python bench/bench_certinia_ingest.py --scale 20 --home /tmp/big
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import requests

from ps_pipelines.lib.contracts.certinia import TIMECARDS
from ps_pipelines.lib.ingestion import IngestOptions, IngestResult, ingest_entity
from ps_pipelines.lib.sources.salesforce import SalesforceClient
from ps_pipelines.lib.warehouse.warehouse import Warehouse
from ps_pipelines.local_sandbox import SandboxProcess
from ps_sandbox.context import DEFAULT_CREDENTIALS


def timed_ingest(label: str, client: SalesforceClient, warehouse: Warehouse, run_id: str) -> IngestResult:
    wall, cpu = time.perf_counter(), time.process_time()
    result = ingest_entity(client, warehouse, TIMECARDS, run_id, IngestOptions())
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(f"{label:<12} fetched {result.fetched:>9,}  inserted {result.inserted:>9,}  updated {result.updated:>7,}  "
          f"quarantined {result.quarantined:>4,}  {wall:7.1f}s wall  {cpu:7.1f}s CPU (pipeline process)  "
          f"{result.fetched / wall:>9,.0f} rows/s", flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=20.0)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--changed-fraction", type=float, default=0.01)
    parser.add_argument("--home", default=None, help="Keep the sandbox database here to reuse it across runs.")
    args = parser.parse_args()

    home = Path(args.home or tempfile.mkdtemp(prefix="ps-bench-"))
    home.mkdir(parents=True, exist_ok=True)
    state = home / f"sandbox-certinia-scale{args.scale:g}-seed{args.seed}.sqlite"
    started = time.perf_counter()
    with SandboxProcess(state, scale=args.scale, seed=args.seed, salesforce_packages=("certinia",)) as sandbox:
        print(f"sandbox ready in {time.perf_counter() - started:.1f}s at scale {args.scale:g} ({state})", flush=True)
        warehouse_path = home / "bench-certinia-warehouse.duckdb"
        warehouse_path.unlink(missing_ok=True)
        warehouse = Warehouse(warehouse_path)
        client = SalesforceClient(sandbox.url, **DEFAULT_CREDENTIALS["salesforce"])
        timed_ingest("full", client, warehouse, "bench-full")
        touched = requests.post(f"{sandbox.url}/_sandbox/events/touch", timeout=600, json={
            "platform": "salesforce", "object": TIMECARDS.source_object, "fraction": args.changed_fraction}).json()
        print(f"changed {touched['touched']:,} timecards ({args.changed_fraction:.0%}) through the control API",
              flush=True)
        timed_ingest("incremental", client, warehouse, "bench-incremental")


if __name__ == "__main__":
    main()
