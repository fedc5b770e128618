"""``ps-pipelines run``: the main job on the embedded defaults, with a summary a person can read."""

from __future__ import annotations

import contextlib
import os
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from ps_pipelines.lib.warehouse.publish import default_analytics_path, format_publication
from ps_pipelines.lib.warehouse.warehouse import Warehouse


def _op_config(full_refresh: bool) -> dict:
    from ps_pipelines.ingest import ingest_assets

    if not full_refresh:
        return {}
    return {"ops": {asset.op.name: {"config": {"full_refresh": True}} for asset in ingest_assets}}


def format_summary(warehouse: Warehouse, run_id: str) -> str:
    with warehouse.connect() as con:
        rows = con.execute("""
            SELECT entity_key, mode, fetched, inserted, updated, unchanged, deleted, quarantined,
                   round(epoch(finished_at - started_at), 2)
            FROM ops.ingest_runs WHERE run_id = ? ORDER BY entity_key""", [run_id]).fetchall()
        reasons = con.execute("""
            SELECT entity_key, regexp_replace(rule, ' \\(value=.*?\\)', '', 'g') AS rule, count(*) AS n
            FROM ops.quarantine WHERE run_id = ? GROUP BY ALL ORDER BY n DESC LIMIT 10""", [run_id]).fetchall()
    header = ("entity", "mode", "fetched", "inserted", "updated", "unchanged", "deleted", "quarantined", "seconds")
    widths = [max(len(str(v)) for v in col) for col in zip(header, *rows, strict=False)]
    lines = ["  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=True)) for row in [header, *rows]]
    totals = [sum(r[i] for r in rows) for i in range(2, 8)]
    lines.append(f"total: fetched {totals[0]}, inserted {totals[1]}, updated {totals[2]}, unchanged {totals[3]}, "
                 f"deleted {totals[4]}, quarantined {totals[5]}")
    if reasons:
        lines.append("quarantined (entity, rule, rows) - full rows in ops.quarantine:")
        lines += [f"  {entity}  {rule}  {count}" for entity, rule, count in reasons]
    lines += format_writeback(warehouse, run_id)
    return "\n".join(lines)


def format_writeback(warehouse: Warehouse, run_id: str) -> list[str]:
    """What the write-back holds after the run: ledger rows per flow and state, and what this run posted."""
    with warehouse.connect() as con:
        states = con.execute("""
            SELECT flow, state, count(*), count(*) FILTER (WHERE posted_run_id = ?)
            FROM ops.outbox GROUP BY ALL ORDER BY ALL""", [run_id]).fetchall()
    if not states:
        return []
    lines = ["write-back ledger (flow, state, transactions, of which posted by this run) - ops.outbox:"]
    lines += [f"  {flow}  {state}  {count}  {posted}" for flow, state, count, posted in states]
    if any(state in ("dead", "invalid", "failed_retryable") for _, state, _, _ in states):
        lines.append("  reasons: asset writeback/dead_letters, or SELECT outbox_key, last_error FROM ops.outbox")
    return lines


@contextlib.contextmanager
def _inherited_by_children(name: str, value: str) -> Iterator[None]:
    """Set an environment variable for the processes started inside (this process's own
    environment is theirs), and put back what was there."""
    previous = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = previous


def run_main_job(*, home: Path, scale: float, seed: int, job_name: str = "refresh_all",
                 full_refresh: bool = False, sandbox_url: str | None = None) -> int:
    from dagster import DagsterInstance

    from ps_pipelines.automation.dead_runs import RUN_ID_ENV, free_dead_runs, owner_tags
    from ps_pipelines.cli import prepare_dagster_home
    from ps_pipelines.run_guard import RunGuard, say
    from ps_pipelines.sandbox.process import SandboxProcess
    from ps_pipelines.transform.project import DOCS_TARGET_PATH, prepare_manifest

    home.mkdir(parents=True, exist_ok=True)
    prepare_dagster_home(home)
    prepare_manifest()  # the definitions read the dbt manifest when they are imported
    from ps_pipelines.definitions import build_definitions

    warehouse_path = str((home / "warehouse.duckdb").resolve())
    state = home / f"sandbox-scale{scale:g}-seed{seed}.sqlite"
    sandbox = contextlib.nullcontext() if sandbox_url else SandboxProcess(state, scale=scale, seed=seed)
    # Known before the run exists, so the guard can act on it from the first event.
    run_id = str(uuid.uuid4())
    with DagsterInstance.get() as instance, _inherited_by_children(RUN_ID_ENV, run_id):
        # A run killed earlier keeps its pool slot until someone ends it: this run would wait forever.
        for freed in free_dead_runs(instance):
            say(freed.message())
        with RunGuard(instance, run_id) as guard:
            try:
                with sandbox as running:
                    url = sandbox_url or running.url
                    print(f"sandbox: {url}  warehouse: {warehouse_path}", flush=True)
                    defs = build_definitions("local", sandbox_url=url, warehouse_path=warehouse_path)
                    job = defs.resolve_job_def(job_name)
                    started = time.perf_counter()
                    result = job.execute_in_process(instance=instance, run_config=_op_config(full_refresh),
                                                    raise_on_error=False, run_id=run_id, tags=owner_tags())
                    elapsed = time.perf_counter() - started
            except KeyboardInterrupt:
                if guard.stopped_by is None:
                    guard.stopped_by = signal.SIGINT
        if guard.stopped_by is not None:
            run = instance.get_run_by_id(run_id)
            status = run.status.value if run else "never started"
            say(f"stopped by {signal.Signals(guard.stopped_by).name}: run {run_id} {status}")
            return 128 + guard.stopped_by
    print(format_summary(Warehouse(warehouse_path), result.run_id))
    print(format_publication(default_analytics_path(warehouse_path)))
    docs = DOCS_TARGET_PATH / "static_index.html"
    if docs.exists():
        print(f"dbt docs: {docs} (one file, open it in a browser)")
    status = "succeeded" if result.success else "FAILED"
    print(f"run {result.run_id} {status} in {elapsed:.1f}s")
    return 0 if result.success else 1
