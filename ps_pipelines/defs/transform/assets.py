"""Every dbt model as a Dagster asset, built by one ``dbt build`` under the warehouse lock.

dbt sources carry ``meta.dagster.asset_key`` = the raw ingestion asset's key, so the lineage
runs unbroken from the API to the marts; dbt data tests become asset checks (dagster-dbt's
default), and every model rebuilds eagerly when something upstream changed, so only the
part of the graph below a changed raw table runs.
"""


import json
from collections.abc import Iterator, Mapping, Sequence, Set
from pathlib import Path
from typing import Any

import duckdb
from dagster import (
    AssetCheckKey,
    AssetExecutionContext,
    AssetKey,
    AssetMaterialization,
    AssetsDefinition,
    AutomationCondition,
    JobDefinition,
    Output,
)
from dagster_dbt import DagsterDbtTranslator, DbtCliInvocation, DbtCliResource, DbtProject, dbt_assets
from dagster_dbt.dbt_project import using_dagster_dev

from ps_pipelines.defs.transform.automation import rebuild_when_upstream_data_changes
from ps_pipelines.estate import DEFAULT_ESTATE, ESTATE_ENV, Estate
from ps_pipelines.lib.warehouse.lock import WAREHOUSE_POOL
from ps_pipelines.lib.warehouse.publish import MartTable, writer_lock
from ps_pipelines.resources import WAREHOUSE_PATH_ENV, WarehouseResource
from ps_pipelines.transform.project import dbt_env, dbt_project, estate_project, prepare_manifest

DBT_OWNER = "team:analytics-engineering"
PUBLISHED_SCHEMA = "marts"
DBT_UNIQUE_ID = "dagster_dbt/unique_id"  # dagster-dbt's metadata key naming an asset's dbt node
INDIRECT_SELECTION_ENV = "DBT_INDIRECT_SELECTION"
# A run tagged so rebuilds every selected model whatever changed (``ps-pipelines run --full-refresh``).
REBUILD_ALL_TAG = "ps/rebuild_all"
# dbt unit tests check the SQL logic on fixed inputs: they change only with the code, so CI
# runs them (tests/transform), not every data build (they were a third of a partial rebuild).
# A resource-type filter, not an --exclude selection: an exclusion is expanded through the
# graph like a selection and takes data tests with it.
BUILD_ARGS = ("build", "--exclude-resource-type", "unit_test")


class LayerTranslator(DagsterDbtTranslator):
    """Groups from ``meta.dagster.group`` (dbt_project.yml, per folder or model), else by layer
    from the model's folder; one owner, eager automation on every model."""

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        if dbt_resource_props.get("resource_type") == "seed":
            return "seeds"
        return super().get_group_name(dbt_resource_props) or layer_group(dbt_resource_props.get("fqn", []))

    def get_owners(self, dbt_resource_props: Mapping[str, Any]) -> Sequence[str] | None:
        return [DBT_OWNER]

    def get_automation_condition(self, dbt_resource_props: Mapping[str, Any]) -> AutomationCondition | None:
        # eager: rebuild once the data of an upstream asset (a raw table, or a model requested
        # in the same tick) changed, never while a dependency is missing or still running.
        # Seeds are reference files that change with the code: the main job loads them.
        if dbt_resource_props.get("resource_type") != "model":
            return None
        return rebuild_when_upstream_data_changes()


# Dimensions and facts together are the core model; KPI marts and outbound models are their own groups.
_MART_GROUPS = {"core": "marts_core", "facts": "marts_core", "kpi": "marts_kpi", "outbound": "outbound"}


def layer_group(fqn: Sequence[str]) -> str:
    """``staging``, ``intermediate``, ``marts_core``, ``marts_kpi`` or ``outbound`` from the model path.

    The fqn is ``[project, folder, ..., model]``: ``models/marts/kpi/x.sql`` is ``marts_kpi``.
    """
    folders = list(fqn[1:-1])
    if "outbound" in folders:
        return "outbound"
    if folders[:1] == ["marts"] and len(folders) > 1:
        return _MART_GROUPS.get(folders[1], f"marts_{folders[1]}")
    return folders[0] if folders else "dbt"


translator = LayerTranslator()


def build_target_path(warehouse_path: Path) -> Path:
    """dbt's artifacts for one warehouse, kept between runs: dbt re-parses from scratch when the
    profile differs from the last parse, and the profile names the warehouse file, so a folder
    per warehouse keeps partial parsing working (and ``target/`` free of per-run folders)."""
    return warehouse_path.with_name(f"{warehouse_path.stem}_dbt_target")


def start_dbt(dbt: DbtCliResource, args: Sequence[str], warehouse_path: Path, *,
              env: Mapping[str, str] | None = None, **kwargs: Any) -> DbtCliInvocation:
    """Start dbt against ``warehouse_path`` (with ``env`` for its process); call it holding the
    warehouse lock."""
    warehouse_path = warehouse_path.resolve()
    kwargs.setdefault("target_path", build_target_path(warehouse_path))
    with dbt_env({WAREHOUSE_PATH_ENV: str(warehouse_path), **(env or {})}):
        return dbt.cli(list(args), **kwargs)


def _relation(node: Mapping[str, Any]) -> str:
    return f'"{node["schema"]}"."{node["alias"]}"'


def _row_counts(warehouse_path: Path, nodes: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """Rows of each table model built (views are not counted: that would run their query).

    Not dagster-dbt's ``fetch_row_counts``: it counts through a dbt adapter in this process,
    which opens the warehouse while dbt's process may hold it and keeps it open afterwards, so
    the next writer in another process fails on DuckDB's lock. The counts are taken here once
    dbt has exited, with a connection closed before the warehouse lock is released.
    """
    tables = [n for n in nodes if n["config"].get("materialized") != "view"]
    if not tables:
        return {}
    with duckdb.connect(str(warehouse_path), read_only=True) as con:
        return {n["unique_id"]: con.execute(f"SELECT count(*) FROM {_relation(n)}").fetchone()[0] for n in tables}


def _unique_id(event: Any) -> str | None:
    if isinstance(event, Output | AssetMaterialization):
        value = event.metadata.get("unique_id")
        return getattr(value, "value", value)
    return None


def _with_row_count(event: Any, counts: Mapping[str, int]) -> Any:
    unique_id = _unique_id(event)
    if unique_id not in counts:
        return event
    return event.with_metadata({**event.metadata, "dagster/row_count": counts[unique_id]})


def _dbt_name(manifest: Mapping[str, Any], spec_metadata: Mapping[str, Any] | None) -> str:
    """The dbt node's fully qualified name, as dbt selects it."""
    return ".".join(manifest["nodes"][(spec_metadata or {})[DBT_UNIQUE_ID]]["fqn"])


def job_check_keys(job: JobDefinition) -> Set[AssetCheckKey]:
    """The checks of ``job`` as it is defined, also when ``job`` is a subset of it.

    Dagster plans a subset taken by assets alone (``execute_in_process(asset_selection=...)``,
    a run request without check keys) with every check of those assets in the code location,
    not only the job's: a posting job's subset would get the dbt tests the job leaves out,
    among them relationships to models it never builds.
    """
    while job.asset_selection_data is not None:
        job = job.asset_selection_data.parent_job_def
    return job.asset_layer.asset_graph.asset_check_keys


def step_tests(context: AssetExecutionContext, manifest: Mapping[str, Any]) -> list[str]:
    """dbt names of the tests behind the step's checks that its job has.

    Tests are named one by one and dbt's indirect selection is turned off: a step builds part
    of the project, and indirect selection picks a test over several models (a relationship)
    up only when the other models are built in the same invocation or upstream of it, so a
    planned check could otherwise silently never run.
    """
    assets_def = context.assets_def
    in_job = job_check_keys(context.job_def)
    selected = context.selected_asset_check_keys
    if left_out := len(selected - in_job):
        context.log.info(f"{left_out} planned checks are not checks of job {context.job_name}: not run")
    return sorted(_dbt_name(manifest, assets_def.get_spec_for_check_key(key).metadata)
                  for key in selected & in_job)


def run_dbt_build(context: AssetExecutionContext, dbt: DbtCliResource, warehouse: WarehouseResource,
                  manifest: Mapping[str, Any], estate: Estate = DEFAULT_ESTATE) -> Iterator:
    """``dbt build`` of the step's models and their tests, while holding the warehouse lock, so
    an ingestion in another process queues instead of colliding with dbt's DuckDB connection.
    (Which models a run builds is decided when it is planned: ``ps_pipelines/waves.py``.)

    The events are collected and yielded once dbt has finished, with the row counts, so that a
    materialization never reports a table that a later failure left unfinished.
    """
    tests = step_tests(context, manifest)
    args = [*BUILD_ARGS, *(["--select", " ".join(tests)] if tests else [])]
    store = warehouse.warehouse()
    path = store.path.resolve()
    with writer_lock(store):
        invocation = start_dbt(dbt, args, path, env={INDIRECT_SELECTION_ENV: "empty", ESTATE_ENV: str(estate)},
                               context=context, raise_on_error=False)
        events = list(invocation.stream())
        nodes = invocation.manifest["nodes"]
        counts = _row_counts(path, [nodes[uid] for uid in map(_unique_id, events) if uid in nodes])
    yield from (_with_row_count(event, counts) for event in events)
    if not invocation.is_successful():
        raise DbtBuildError(failed_nodes(invocation)) from invocation.get_error()


class DbtBuildError(RuntimeError):
    """A ``dbt build`` that failed, naming each failed node and dbt's message first (dagster-dbt's
    own error leads with the whole command line, which hides the cause in a truncated log)."""

    def __init__(self, failures: Sequence[str]) -> None:
        super().__init__("dbt build failed: " + ("; ".join(failures) or "no node failed: see the dbt log"))


def failed_nodes(invocation: DbtCliInvocation) -> list[str]:
    """``<node>: <status>: <message>`` for every node of the invocation that errored or failed."""
    try:
        results = invocation.get_artifact("run_results.json")["results"]
    except (FileNotFoundError, KeyError, ValueError):  # dbt died before writing its results
        return []
    return [f"{r['unique_id']}: {r['status']}: {' '.join(str(r.get('message') or '').split())[:300]}"
            for r in results if r.get("status") in ("error", "fail", "runtime error")]


def load_manifest(project: DbtProject = dbt_project, estate: Estate = DEFAULT_ESTATE) -> Mapping[str, Any]:
    """The parsed dbt manifest of ``estate``, read when the definitions load (never at import).

    Parsed first when it is missing (a fresh clone, an estate's first run) or, under
    ``dagster dev``, when a model, macro or config changed since the last parse.
    """
    if using_dagster_dev() or not project.manifest_path.exists():
        prepare_manifest(project, estate)
    return json.loads(project.manifest_path.read_text())


# One dbt op per stage of the main job's order: models that read what a posting wrote to the
# ledger come after that posting. One op for all would sit both before and after the postings,
# and Dagster would split it into anonymous copies (dbt_models_2, _3 ...) in every job.
DBT_STAGES = (
    # name, dbt selection, dbt exclusion
    ("dbt_build", "fqn:*", "source:ops+"),
    ("dbt_build_after_activation", "source:ps_pipelines.ops.outbox_activations+", "source:ps_pipelines.ops.outbox+"),
    ("dbt_build_after_invoicing", "source:ps_pipelines.ops.outbox+", ""),
)


def build_dbt_models(manifest: Mapping[str, Any], estate: Estate = DEFAULT_ESTATE) -> list[AssetsDefinition]:
    """The dbt models (and seeds, and their tests as checks) of ``estate``, one multi-asset per stage."""

    def stage(name: str, select: str, exclude: str) -> AssetsDefinition:
        @dbt_assets(
            manifest=manifest,
            project=estate_project(estate),
            dagster_dbt_translator=translator,
            pool=WAREHOUSE_POOL,
            name=name,
            select=select,
            exclude=exclude or None,
        )
        def dbt_stage(context: AssetExecutionContext, dbt: DbtCliResource, warehouse: WarehouseResource) -> Iterator:
            yield from run_dbt_build(context, dbt, warehouse, manifest, estate)

        return dbt_stage

    return [stage(*spec) for spec in DBT_STAGES]


def published_tables(manifest: Mapping[str, Any]) -> list[MartTable]:
    """Every model the dbt project writes to the ``marts`` schema, with its documentation."""
    models = (n for n in manifest["nodes"].values() if n["resource_type"] == "model")
    return sorted(
        (MartTable(schema=n["schema"], name=n["alias"], description=n.get("description") or "",
                   column_descriptions={c: v.get("description") or "" for c, v in n.get("columns", {}).items()})
         for n in models if n["schema"] == PUBLISHED_SCHEMA),
        key=lambda t: t.qualified_name,
    )


def model_keys(manifest: Mapping[str, Any], tables: Sequence[MartTable] | None = None) -> list[AssetKey]:
    """Asset keys of the dbt models (only those published as ``tables`` when given)."""
    wanted = {t.qualified_name for t in tables} if tables is not None else None
    return [
        translator.get_asset_key(n) for n in manifest["nodes"].values()
        if n["resource_type"] == "model" and (wanted is None or f"{n['schema']}.{n['alias']}" in wanted)
    ]
