"""HubSpot deals ingest benchmark: a full read (list endpoint) and an incremental read of every
row (search endpoint, re-anchored at each 10,000-result cap) into DuckDB.

Seeds ``--rows`` deals straight into a small sandbox (one a second apart, cloned from a
generated deal), serves it over HTTP in this process, and ingests with ``ingest_entity``:

1. full: ``GET /crm/v3/objects/deals`` at 100 a page;
2. incremental: the mark moved back before the first seeded deal, so the search endpoint reads
   every row again at 200 a page, re-anchoring every 10,000.

By default the client paces to HubSpot's documented limits (19 requests/s, 4 searches/s), which
bound the figures (about 1,900 and 800 rows/s); ``--unpaced`` switches the limits off in the
sandbox and the client to show the connector's own cost. CPU seconds include the in-process
sandbox server.

At 100,000 rows (2 shared cores, load average about 6, so wall time is inflated; CPU is the
steadier figure):

* paced: full 1,739 rows/s (57.5 s wall, 9.6 s CPU), incremental 762 rows/s (131.3 s wall,
  8.1 s CPU, 11 search queries);
* unpaced: full 4,700 rows/s (21.3 s wall, 9.2 s CPU), incremental 6,953 rows/s (14.4 s wall,
  6.7 s CPU).

The incremental figure needs the sandbox's change index for search: before it, every search page
read, filtered and sorted every record after the anchor (0.8 s a page at 100,000 deals; 20,000
unpaced took 13.5 s CPU against 1.3 s now).

    .venv/bin/python bench/bench_hubspot_ingest.py --rows 100000 [--unpaced]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from ps_pipelines.lib.contracts import hubspot
from ps_pipelines.lib.ingestion import ingest_entity
from ps_pipelines.lib.sources.hubspot import HubSpotClient
from ps_pipelines.lib.warehouse import warehouse as wh
from ps_sandbox import hubspot_data
from ps_sandbox.app import open_sandbox, start_server
from ps_sandbox.context import DEFAULT_CREDENTIALS, SandboxConfig


def seed_deals(ctx, rows: int):
    store = ctx.store
    template = store.scan("hubspot", "deals", limit=1)[0]
    start = store.now().replace(microsecond=0) - timedelta(seconds=rows + 60)
    batch = []
    for n in range(1, rows + 1):
        moment = start + timedelta(seconds=n)
        record_id = str(hubspot_data.ID_BASE["deals"] + 1_000_000 + n)
        body = hubspot_data.hubspot_record("deals", record_id, moment, moment, {
            **template["properties"], "dealname": f"Bench deal {n}"})
        batch.append((record_id, moment, body))
    store.put_many("hubspot", "deals", batch)
    return start


def measure(label: str, run) -> None:
    wall, cpu = time.perf_counter(), time.process_time()
    result = run()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(f"{label:12s} {result.fetched:>8,} rows  {wall:7.1f} s wall  {cpu:7.1f} s CPU  "
          f"{result.fetched / wall:8,.0f} rows/s  requests {result.api_stats.get('requests')}, "
          f"throttled {result.api_stats.get('throttled')}, search queries {result.api_stats.get('search_queries')}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--unpaced", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        ctx = open_sandbox(Path(tmp) / "sandbox.sqlite", SandboxConfig(seed=42, scale=0.1))
        first_seeded = seed_deals(ctx, args.rows)
        pacing = {}
        if args.unpaced:
            ctx.store.kv_set("hubspot_requests_per_10_seconds", 0)
            ctx.store.kv_set("hubspot_search_requests_per_second", 0)
            pacing = {"requests_per_second": 10_000.0, "search_requests_per_second": 10_000.0}
        server = start_server(ctx, port=0)
        url = f"http://127.0.0.1:{server.server_port}"
        token = DEFAULT_CREDENTIALS["hubspot"]["token"]
        warehouse = wh.Warehouse(Path(tmp) / "warehouse.duckdb")
        try:
            print(f"{args.rows:,} seeded deals, {'unpaced' if args.unpaced else 'paced to documented limits'}")
            measure("full (list)", lambda: ingest_entity(HubSpotClient(url, token, **pacing), warehouse,
                                                         hubspot.DEALS, "bench-full"))
            with warehouse.connect() as con:
                wh.set_high_water_mark(con, hubspot.DEALS.key, first_seeded, "bench", first_seeded)
            measure("incremental", lambda: ingest_entity(HubSpotClient(url, token, **pacing), warehouse,
                                                         hubspot.DEALS, "bench-incremental"))
        finally:
            server.shutdown()
            server.server_close()


if __name__ == "__main__":
    main()
