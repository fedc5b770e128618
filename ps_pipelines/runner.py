"""``ps-pipelines run``: the main job on the embedded defaults, with a summary a person can read."""

from __future__ import annotations

import contextlib
import signal
import time
import uuid
from pathlib import Path

from dagster import AssetKey, DagsterInstance, Definitions, ExecuteInProcessResult, JobDefinition

from ps_pipelines.defs.automation.jobs import REFRESH_ALL
from ps_pipelines.estate import DEFAULT_ESTATE, ESTATE_ENV, Estate
from ps_pipelines.lib.processes import inherited_by_children
from ps_pipelines.lib.progress import entity_table
from ps_pipelines.lib.warehouse.publish import default_analytics_path, format_publication
from ps_pipelines.lib.warehouse.warehouse import Warehouse
from ps_pipelines.lib.writeback.outbox import NEEDS_ATTENTION
from ps_pipelines.lib.writeback.readback import entities_to_read_back
from ps_pipelines.run_guard import NOTICE_PREFIX, RunGuard
from ps_pipelines.run_log import RunLog, log_path, stage_of
from ps_pipelines.waves import WavePlan, run_in_waves


def _op_config(full_refresh: bool, keys: set[AssetKey] | None = None, estate: Estate = DEFAULT_ESTATE) -> dict:
    """Run config of ``--full-refresh``: every ingestion asset of ``estate`` among ``keys`` (all
    when None) ignores its high-water mark (config for an op outside the run would be an error)."""
    from ps_pipelines.ingest.catalog import estate_ingest_assets

    if not full_refresh:
        return {}
    return {"ops": {asset.op.name: {"config": {"full_refresh": True}} for asset in estate_ingest_assets(estate)
                    if keys is None or asset.key in keys}}


def entity_rows(warehouse: Warehouse, run_ids: list[str]) -> list[tuple]:
    """What the runs moved per entity, as ``entity_table`` shows it: its passes summed (a table
    read back after posting is read in more than one)."""
    with warehouse.connect() as con:
        return con.execute("""
            SELECT entity_key, string_agg(DISTINCT mode, '+' ORDER BY mode), sum(fetched)::BIGINT,
                   sum(inserted)::BIGINT, sum(updated)::BIGINT, sum(unchanged)::BIGINT, sum(deleted)::BIGINT,
                   sum(quarantined)::BIGINT, round(sum(epoch(finished_at - started_at)), 2)
            FROM ops.ingest_runs WHERE list_contains(?, run_id) GROUP BY entity_key ORDER BY entity_key""",
                           [run_ids]).fetchall()


def format_summary(warehouse: Warehouse, run_ids: list[str], *, brief: bool = False) -> str:
    """What the runs moved per entity (``brief``: the routine entities on one line), why rows
    were quarantined, and what the write-back holds."""
    with warehouse.connect() as con:
        reasons = con.execute("""
            SELECT entity_key, regexp_replace(rule, ' \\(value=.*?\\)', '', 'g') AS rule, count(*) AS n
            FROM ops.quarantine WHERE list_contains(?, run_id) GROUP BY ALL ORDER BY n DESC LIMIT 10""",
                              [run_ids]).fetchall()
    lines = entity_table(entity_rows(warehouse, run_ids), brief=brief)
    if reasons:
        lines.append("quarantined (entity, rule, rows) - full rows in ops.quarantine:")
        lines += [f"  {entity}  {rule}  {count}" for entity, rule, count in reasons]
    lines += format_writeback(warehouse, run_ids)
    return "\n".join(lines)


def format_writeback(warehouse: Warehouse, run_ids: list[str]) -> list[str]:
    """What the write-back holds after the runs: ledger rows per flow and state, and what the runs posted."""
    with warehouse.ledger.connect() as con:
        states = con.execute("""
            SELECT flow, state, count(*), count(*) FILTER (WHERE list_contains(?, posted_run_id))
            FROM ops.outbox GROUP BY ALL ORDER BY ALL""", [run_ids]).fetchall()
    if not states:
        return []
    lines = ["write-back ledger (flow, state, transactions, of which posted by this run) - ops.outbox:"]
    lines += [f"  {flow}  {state}  {count}  {posted}" for flow, state, count, posted in states]
    if any(state in NEEDS_ATTENTION for _, state, _, _ in states):
        lines.append("  reasons: asset writeback/dead_letters, or SELECT outbox_key, last_error FROM ops.outbox")
    return lines


# Read-back passes after the first: each reads back what the pass before it posted. Two are
# the rule (post, then read back and find nothing more to post); more mean a posting made
# more work due, and a run that still posts after these is reported as not converged.
MAX_READ_BACK_PASSES = 3


def _execute_pass(job: JobDefinition, instance: DagsterInstance, guard: RunGuard, log: RunLog,
                  keys: set[AssetKey] | None, run_config: dict, label: str,
                  rebuild_all: bool = False) -> ExecuteInProcessResult:
    """One Dagster run of ``job`` (``keys`` of it, or all), owned and guarded by this process,
    its events and output into ``log``."""
    from ps_pipelines.defs.automation.dead_runs import RUN_ID_ENV, owner_tags
    from ps_pipelines.defs.transform.assets import REBUILD_ALL_TAG

    # Known before the run exists, so the guard can act on it from the first event, and the
    # processes it starts (dbt) can be found and stopped should this process die.
    run_id = guard.run_id = str(uuid.uuid4())
    log.detail(f"{label}: {job.name}" + (f", {len(keys)} assets" if keys is not None else "") + f", run {run_id}")
    logged_job, logger_config = log.with_loggers(job)
    with inherited_by_children(RUN_ID_ENV, run_id), log.run(keys or job.asset_layer.executable_asset_keys):
        return logged_job.execute_in_process(
            instance=instance, asset_selection=sorted(keys) if keys is not None else None,
            run_config={**run_config, **logger_config}, raise_on_error=False, run_id=run_id,
            tags={**owner_tags(), "ps/main_job_pass": label, **({REBUILD_ALL_TAG: "true"} if rebuild_all else {})})


def converge(defs: Definitions, instance: DagsterInstance, guard: RunGuard, log: RunLog,
             full_refresh: bool, estate: Estate = DEFAULT_ESTATE) -> list[ExecuteInProcessResult]:
    """The main job. Pass 1 ingests every raw table, rebuilds what changed and posts; each
    read-back pass ingests the tables the pass before it wrote to, rebuilds what that changed
    and posts what became due, until a pass posts nothing; then publishing, if a mart changed.
    Each pass runs in waves (``ps_pipelines/waves.py``): an unchanged estate rebuilds nothing."""
    from ps_pipelines.defs.transform.publish import DBT_DOCS_KEY, PUBLISHED_MARTS_KEY
    from ps_pipelines.defs.writeback.assets import ACTIVATIONS_KEY, DEAD_LETTERS_KEY, INVOICES_KEY
    from ps_pipelines.defs.writeback.read_back import written_record_types
    from ps_pipelines.ingest.catalog import estate_ingest_assets
    from ps_pipelines.ingest.factory import raw_asset_key
    from ps_pipelines.lib.contracts import CONTRACTS_BY_KEY

    graph = defs.resolve_asset_graph()
    refresh_all = defs.resolve_job_def(REFRESH_ALL)
    everything = set(refresh_all.asset_layer.executable_asset_keys)
    publishing = {PUBLISHED_MARTS_KEY, DBT_DOCS_KEY}
    results: list[ExecuteInProcessResult] = []

    def plan(keys: set[AssetKey], always: set[AssetKey], rebuild_all: bool = False) -> WavePlan:
        return WavePlan(keys=keys, parents={k: graph.get(k).parent_keys for k in keys},
                        code_versions={k: graph.get(k).code_version for k in keys},
                        effects={ACTIVATIONS_KEY, INVOICES_KEY, DEAD_LETTERS_KEY} & keys, always=always,
                        rebuild_all=rebuild_all)

    def execute(keys: set[AssetKey], label: str) -> str:
        results.append(_execute_pass(refresh_all, instance, guard, log, keys, _op_config(full_refresh, keys, estate),
                                     label, rebuild_all=full_refresh))
        return results[-1].run_id

    def stage(wave_plan: WavePlan, label: str) -> list[str]:
        with stage_of(log, graph, label, wave_plan.keys):
            return run_in_waves(wave_plan, instance, execute, label, on_up_to_date=log.up_to_date)[0]

    raw = {asset.key for asset in estate_ingest_assets(estate)}
    run_ids = stage(plan(everything - publishing, raw, full_refresh), "pass 1")
    for number in range(2, MAX_READ_BACK_PASSES + 2):
        written = sorted({kind for run_id in run_ids for kind in written_record_types(instance, run_id)})
        if not written:
            break
        read = {raw_asset_key(CONTRACTS_BY_KEY[entity]) for entity in entities_to_read_back(written)}
        log.say(f"posted {', '.join(written)}: reading them back")
        run_ids = stage(plan(everything - publishing - (raw - read), read), f"pass {number}")
    else:
        log.say(f"WARNING: pass {MAX_READ_BACK_PASSES + 1} still posted; the marts may lag the platforms until "
                "the next run (see ops.outbox for what keeps changing)")
    stage(plan(publishing, set(), full_refresh), "publish")
    return results


def run_main_job(*, home: Path, scale: float, seed: int, job_name: str = REFRESH_ALL,
                 full_refresh: bool = False, sandbox_url: str | None = None, verbose: bool = False,
                 estate: Estate = DEFAULT_ESTATE) -> int:
    """The main job (or ``job_name``) of ``estate`` with its summary; the whole stream goes to a log
    file under ``home`` (named at the start and at the end), and to the console only when ``verbose``."""
    home.mkdir(parents=True, exist_ok=True)
    log = RunLog(log_path(home), verbose=verbose)
    log.say(f"log: {log.path}")
    try:
        # Every dbt process of the run (builds, docs) parses with the run's estate.
        with inherited_by_children(ESTATE_ENV, str(estate)):
            return _run_main_job(log, home=home, scale=scale, seed=seed, job_name=job_name,
                                 full_refresh=full_refresh, sandbox_url=sandbox_url, estate=estate)
    finally:
        log.say(f"full log: {log.path}")
        log.close()


def _run_main_job(log: RunLog, *, home: Path, scale: float, seed: int, job_name: str, full_refresh: bool,
                  sandbox_url: str | None, estate: Estate) -> int:
    from ps_pipelines.dagster_home import prepare_dagster_home
    from ps_pipelines.defs.automation.dead_runs import free_dead_runs
    from ps_pipelines.local_sandbox import SandboxProcess
    from ps_pipelines.transform.project import DOCS_TARGET_PATH, estate_project, prepare_manifest

    prepare_dagster_home(home)
    with log.capturing():
        # Parse now if a model changed: loading the definitions reads the manifest.
        prepare_manifest(estate_project(estate), estate)
    from ps_pipelines.definitions import build_definitions

    warehouse_path = str((home / "warehouse.duckdb").resolve())
    packages, psa_crm = estate.salesforce_packages(), estate.psa_crm()
    # The org's packages and the CRM the projects are sold in change the generated data: a state
    # file per combination (the default CRM keeps the name it always had).
    crm_suffix = "" if psa_crm == "salesforce" else f"-sold-in-{psa_crm}"
    state = home / f"sandbox-scale{scale:g}-seed{seed}{''.join(f'-{p}' for p in packages)}{crm_suffix}.sqlite"
    sandbox = contextlib.nullcontext() if sandbox_url else SandboxProcess(
        state, scale=scale, seed=seed, output=log.file, salesforce_packages=packages, psa_crm=psa_crm)
    with DagsterInstance.get() as instance:
        # A run killed earlier keeps its pool slot until someone ends it: this run would wait forever.
        for freed in free_dead_runs(instance):
            log.say(NOTICE_PREFIX + freed.message())
        with RunGuard(instance, str(uuid.uuid4())) as guard:
            try:
                with sandbox as running:
                    url = sandbox_url or running.url
                    log.say(f"sandbox: {url}  warehouse: {warehouse_path}")
                    log.detail(f"estate: {estate}")
                    defs = build_definitions("local", sandbox_url=url, warehouse_path=warehouse_path, estate=estate)
                    started = time.perf_counter()
                    if job_name == REFRESH_ALL:
                        results = converge(defs, instance, guard, log, full_refresh, estate)
                    else:
                        job = defs.resolve_job_def(job_name)
                        with stage_of(log, defs.resolve_asset_graph(), job_name,
                                    job.asset_layer.executable_asset_keys):
                            config = _op_config(full_refresh, None, estate)
                            results = [_execute_pass(job, instance, guard, log, None, config, job_name,
                                                     rebuild_all=full_refresh)]
                    elapsed = time.perf_counter() - started
            except KeyboardInterrupt:
                if guard.stopped_by is None:
                    guard.stopped_by = signal.SIGINT
        if guard.stopped_by is not None:
            run = instance.get_run_by_id(guard.run_id)
            status = run.status.value if run else "never started"
            log.say(f"{NOTICE_PREFIX}stopped by {signal.Signals(guard.stopped_by).name}: run {guard.run_id} {status}")
            return 128 + guard.stopped_by
    run_ids = [result.run_id for result in results]
    warehouse = Warehouse(warehouse_path)
    log.detail("\n".join(entity_table(entity_rows(warehouse, run_ids))))  # every entity, for the file
    log.say(format_summary(warehouse, run_ids, brief=True))
    log.detail(format_publication(default_analytics_path(warehouse_path)))
    log.say(format_publication(default_analytics_path(warehouse_path), brief=True))
    docs = DOCS_TARGET_PATH / "static_index.html"
    if docs.exists():
        log.say(f"dbt docs: {docs} (one file, open it in a browser)")
    succeeded = all(result.success for result in results)
    status = "succeeded" if succeeded else "FAILED"
    log.say(f"run {', '.join(run_ids)} {status} in {elapsed:.1f}s")
    return 0 if succeeded else 1
