"""Dynamics 365 customers snapshot benchmark: every run reads the whole entity (no entity has a
change field) through ``@odata.nextLink`` pages into DuckDB.

Seeds ``--rows`` customers straight into a small sandbox (cloned from a derived one, spread over
its legal entities), serves it over HTTP in this process, and ingests ``d365.CUSTOMERS`` with
``ingest_entity`` twice:

1. first snapshot: every row inserted;
2. second snapshot: every row read again, none rewritten (the cost of a snapshot entity's
   steady state), and the unseen-row delete sweep.

The sandbox's service protection limits are switched off so the figures are the connector's and
the emulator's own cost. CPU seconds include the in-process sandbox server.

At 100,000 customers (2 shared cores, load average about 3.5):

* maxpagesize 10,000 (the default, the server's cap): first snapshot 6,441 rows/s (15.5 s wall,
  13.6 s CPU, 12 requests), second 6,714 rows/s (14.9 s wall, 13.0 s CPU), nothing rewritten;
* maxpagesize 5,000: 3,329 and 4,273 rows/s (30.0 and 23.4 s wall, 22 requests).

Time grows with the number of pages, not only rows: the emulator renders and filters the whole
entity for every page it answers, so halving the page doubles that work (20,000 rows at 5,000 a
page: 6,911 rows/s). Hence the client's default of the largest page the server allows.

    .venv/bin/python bench/bench_d365_ingest.py --rows 100000 [--page-size 5000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from ps_pipelines.lib.contracts import d365
from ps_pipelines.lib.ingestion import ingest_entity
from ps_pipelines.lib.sources.d365 import D365Client
from ps_pipelines.lib.warehouse import warehouse as wh
from ps_sandbox import d365_data
from ps_sandbox.app import open_sandbox, start_server
from ps_sandbox.catalog import d365 as catalog
from ps_sandbox.context import DEFAULT_CREDENTIALS, SandboxConfig

CREDS = DEFAULT_CREDENTIALS["d365"]


def seed_customers(ctx, rows: int) -> None:
    store = ctx.store
    d365_data.ensure(store)
    existing = store.scan("d365", "CustomersV3", order="id")
    entity = catalog.ENTITY_SETS["CustomersV3"]
    now = store.now()
    batch = []
    for n in range(1, rows + 1):
        template = existing[n % len(existing)]
        body = {**template, "CustomerAccount": f"BN-{n:07d}", "InvoiceAccount": f"BN-{n:07d}",
                "OrganizationName": f"Bench customer {n}"}
        batch.append((d365_data.store_id(entity, body), now, body))
    store.put_many("d365", "CustomersV3", batch)


def measure(label: str, run) -> None:
    wall, cpu = time.perf_counter(), time.process_time()
    result = run()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(f"{label:16s} {result.fetched:>8,} rows  {wall:7.1f} s wall  {cpu:7.1f} s CPU  "
          f"{result.fetched / wall:8,.0f} rows/s  inserted {result.inserted:,}  unchanged {result.unchanged:,}  "
          f"deleted {result.deleted}  requests {result.api_stats.get('requests')}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--page-size", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        ctx = open_sandbox(Path(tmp) / "sandbox.sqlite", SandboxConfig(seed=42, scale=0.1))
        seed_customers(ctx, args.rows)
        ctx.store.kv_set("d365_requests_per_5_minutes", 0)
        ctx.store.kv_set("d365_concurrency_limit", 0)
        server = start_server(ctx, port=0)
        url = f"http://127.0.0.1:{server.server_port}"
        warehouse = wh.Warehouse(Path(tmp) / "warehouse.duckdb")

        def client() -> D365Client:
            return D365Client(url, CREDS["tenant"], CREDS["client_id"], CREDS["client_secret"], login_url=url,
                              page_size=args.page_size)

        try:
            print(f"{args.rows:,} seeded customers, maxpagesize {args.page_size:,}")
            measure("first snapshot", lambda: ingest_entity(client(), warehouse, d365.CUSTOMERS, "bench-1"))
            measure("second snapshot", lambda: ingest_entity(client(), warehouse, d365.CUSTOMERS, "bench-2"))
        finally:
            server.shutdown()
            server.server_close()


if __name__ == "__main__":
    main()
