"""Ingestion benchmark: Kantata time entries over real HTTP into DuckDB, full then incremental.

Starts the sandbox as a separate process at the chosen scale (10,000 time entries per unit
of scale), loads every time entry, changes a fraction of them through the control API, and
loads again incrementally. Prints rows/s, wall time and the pipeline process's peak memory.

    .venv/bin/python bench/bench_ingest.py --scale 100        # 1 million time entries
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import requests

from ps_pipelines.lib.contracts.kantata import TIME_ENTRIES
from ps_pipelines.lib.ingestion import IngestOptions, ingest_entity
from ps_pipelines.lib.sources.kantata import KantataClient
from ps_pipelines.lib.warehouse.warehouse import Warehouse
from ps_pipelines.local_sandbox import SandboxProcess
from ps_sandbox.context import DEFAULT_CREDENTIALS


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def report(label: str, result, seconds: float, requests_before: int = 0) -> None:
    requests_made = result.api_stats.get("requests", 0) - requests_before
    print(f"{label:<12} fetched {result.fetched:>9,}  inserted {result.inserted:>9,}  updated {result.updated:>7,}  "
          f"{seconds:7.1f}s  {result.fetched / seconds:>9,.0f} rows/s  api requests {requests_made}"
          f"  peak RSS {peak_rss_mib():,.0f} MiB", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=100.0)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--changed-fraction", type=float, default=0.01)
    parser.add_argument("--home", default=None, help="Keep the sandbox database here to reuse it across runs.")
    args = parser.parse_args()

    home = Path(args.home or tempfile.mkdtemp(prefix="ps-bench-"))
    home.mkdir(parents=True, exist_ok=True)
    state = home / f"sandbox-scale{args.scale:g}-seed{args.seed}.sqlite"
    started = time.perf_counter()
    with SandboxProcess(state, scale=args.scale, seed=args.seed) as sandbox:
        print(f"sandbox ready in {time.perf_counter() - started:.1f}s at scale {args.scale:g} ({state})", flush=True)
        warehouse_path = home / "bench-warehouse.duckdb"
        warehouse_path.unlink(missing_ok=True)
        warehouse = Warehouse(warehouse_path)
        client = KantataClient(sandbox.url, DEFAULT_CREDENTIALS["kantata"]["token"])

        clock = time.perf_counter()
        full = ingest_entity(client, warehouse, TIME_ENTRIES, "bench-full", IngestOptions())
        report("full", full, time.perf_counter() - clock)

        touched = requests.post(f"{sandbox.url}/_sandbox/events/touch", timeout=600, json={
            "platform": "kantata", "object": "time_entries", "fraction": args.changed_fraction}).json()
        print(f"changed {touched['touched']:,} time entries ({args.changed_fraction:.0%}) through the control API",
              flush=True)

        requests_before = full.api_stats.get("requests", 0)
        clock = time.perf_counter()
        incremental = ingest_entity(client, warehouse, TIME_ENTRIES, "bench-incremental", IngestOptions())
        report("incremental", incremental, time.perf_counter() - clock, requests_before)
    print(f"warehouse file {warehouse_path.stat().st_size / 2**20:,.0f} MiB; peak RSS {peak_rss_mib():,.0f} MiB")


if __name__ == "__main__":
    main()
