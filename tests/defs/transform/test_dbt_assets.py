"""dbt in Dagster: every model an asset in its layer group, lineage unbroken from the raw
ingestion assets, dbt tests as asset checks, and eager automation of only what is downstream
of a change. The main job itself (dbt build, row counts, checks, publication, docs, and the
partial rebuild after a raw change) runs end to end in ``test_concurrency``.
"""

from __future__ import annotations

import re

import pytest
from dagster import (
    AssetKey,
    AssetMaterialization,
    AutomationConditionSensorDefinition,
    DefaultSensorStatus,
    Definitions,
    evaluate_automation_conditions,
    instance_for_test,
)

from ps_pipelines.definitions import defs as load_defs
from ps_pipelines.defs.transform.assets import (
    DBT_OWNER,
    DBT_STAGES,
    DbtBuildError,
    failed_nodes,
    job_check_keys,
    layer_group,
    load_manifest,
    translator,
)
from ps_pipelines.defs.transform.automation import rebuild_downstream_sensor
from ps_pipelines.defs.transform.publish import DBT_DOCS_KEY, PUBLISHED_MARTS_KEY
from ps_pipelines.defs.writeback.assets import ACTIVATIONS_KEY, INVOICES_KEY
from ps_pipelines.defs.writeback.jobs import POST_INVOICES_JOB, posting_selection
from ps_pipelines.ingest.catalog import ingest_assets
from ps_pipelines.lib.warehouse.lock import WAREHOUSE_POOL

RAW_TIME_ENTRIES = AssetKey(["raw", "kantata", "time_entries"])
manifest = load_manifest()
defs = load_defs()
# The dbt multi-assets, one per stage of the main job (DBT_STAGES), and what they hold together.
DBT_ASSETS = [a for a in defs.assets or () if getattr(a, "op", None) is not None
              and a.op.name in {name for name, *_ in DBT_STAGES}]
DBT_SPECS = [spec for assets_def in DBT_ASSETS for spec in assets_def.specs]
DBT_CHECK_SPECS = [spec for assets_def in DBT_ASSETS for spec in assets_def.check_specs]
MODELS = {uid: node for uid, node in manifest["nodes"].items() if node["resource_type"] == "model"}
MODEL_KEYS = {translator.get_asset_key(node): node for node in MODELS.values()}
SEED_KEYS = {translator.get_asset_key(n) for n in manifest["nodes"].values() if n["resource_type"] == "seed"}
ASSET_NODES = {uid: n for uid, n in manifest["nodes"].items() if n["resource_type"] in ("model", "seed", "snapshot")}
RAW_KEYS = {key for asset in ingest_assets for key in asset.keys}


GRAPH = defs.resolve_asset_graph()
DATA_VERSION_TAG = "dagster/data_version"  # what MaterializeResult(data_version=...) records


def raw_load(key: AssetKey, data_version: str) -> AssetMaterialization:
    """An ingestion's materialization: raw assets report the version of the table's content."""
    return AssetMaterialization(key, tags={DATA_VERSION_TAG: data_version})


def downstream_of(key: AssetKey) -> set[AssetKey]:
    cone: set[AssetKey] = set()
    frontier = [key]
    while frontier:
        for child in GRAPH.get(frontier.pop()).child_keys:
            if child not in cone:
                cone.add(child)
                frontier.append(child)
    return cone


def automated_downstream_of(key: AssetKey) -> set[AssetKey]:
    """What automation rebuilds below ``key``: the automated assets reachable through automated
    assets (a posting asset, which only its job runs, stops the cascade)."""
    cone: set[AssetKey] = set()
    frontier = [key]
    while frontier:
        for child in GRAPH.get(frontier.pop()).child_keys:
            if child not in cone and GRAPH.get(child).automation_condition is not None:
                cone.add(child)
                frontier.append(child)
    return cone


# -- the graph ---------------------------------------------------------------------------------
def test_every_dbt_model_is_an_asset_in_its_layer_group_with_owner_kinds_and_docs() -> None:
    specs = {spec.key: spec for spec in DBT_SPECS}
    assert len(specs) == len(DBT_SPECS), "a dbt node in two stages"
    assert set(specs) == {*MODEL_KEYS, *SEED_KEYS}
    assert all(specs[key].group_name == "seeds" for key in SEED_KEYS)
    for key, node in MODEL_KEYS.items():
        spec = specs[key]
        # The layer of the folder, unless dbt_project.yml or the model says otherwise (a model
        # of a write-back flow is in that flow's group, whatever its layer).
        declared = node["config"].get("meta", {}).get("dagster", {}).get("group")
        assert spec.group_name == (declared or layer_group(node["fqn"]))
        assert spec.owners == [DBT_OWNER] and spec.kinds == {"dbt", "duckdb"}
        assert node["description"] in spec.description
        assert node["description"] or node["schema"] != "marts", f"the public mart {key} has no description"
    assert [a.op.pool for a in DBT_ASSETS] == [WAREHOUSE_POOL] * len(DBT_STAGES)
    groups = {spec.group_name for spec in specs.values()}
    assert {"staging", "intermediate", "marts_core", "marts_kpi", "project_activation", "billing"} <= groups


@pytest.mark.parametrize(("fqn", "group"), [
    (["ps_pipelines", "staging", "kantata", "stg_kantata__projects"], "staging"),
    (["ps_pipelines", "intermediate", "int_customer_identity"], "intermediate"),
    (["ps_pipelines", "marts", "core", "dim_customer"], "marts_core"),
    (["ps_pipelines", "marts", "facts", "fct_time_entries"], "marts_core"),
    (["ps_pipelines", "marts", "kpi", "kpi_utilization"], "marts_kpi"),
    (["ps_pipelines", "marts", "outbound", "erp_billing_transactions"], "outbound"),
    (["ps_pipelines", "outbound", "erp_project_activation_requests"], "outbound"),
])
def test_layer_group_comes_from_the_model_folder(fqn: list[str], group: str) -> None:
    assert layer_group(fqn) == group


def test_lineage_runs_unbroken_from_the_raw_ingestion_assets_to_the_marts() -> None:
    external = {dep for key in MODEL_KEYS for dep in GRAPH.get(key).parent_keys} - {*MODEL_KEYS, *SEED_KEYS}
    # Every dbt source resolves to an asset that writes it: a raw ingestion asset, or a posting
    # for the ledger (the invoice posting for its invoices, the activation posting for the ERP
    # records it made). No dangling source asset in the UI.
    writers = {*RAW_KEYS, INVOICES_KEY, ACTIVATIONS_KEY}
    assert external == writers
    for source in manifest["sources"].values():
        assert translator.get_asset_key(source) in writers
    assert GRAPH.get(AssetKey(["staging", "stg_ops__outbox"])).parent_keys == {INVOICES_KEY}
    assert GRAPH.get(AssetKey(["staging", "stg_ops__activated_erp_records"])).parent_keys == {ACTIVATIONS_KEY}
    staging = [k for k, n in MODEL_KEYS.items() if n["fqn"][1] == "staging"]
    assert all(GRAPH.get(k).parent_keys & writers for k in staging)
    # The published copy and the docs sit below the marts and every model respectively.
    assert GRAPH.get(PUBLISHED_MARTS_KEY).parent_keys == {k for k, n in MODEL_KEYS.items() if n["schema"] == "marts"}
    assert GRAPH.get(DBT_DOCS_KEY).parent_keys == set(MODEL_KEYS)


def test_every_dbt_test_on_a_model_is_an_asset_check() -> None:
    specs = {(spec.asset_key, spec.name) for spec in DBT_CHECK_SPECS}
    model_tests = [n for n in manifest["nodes"].values()
                   if n["resource_type"] == "test" and any(p in ASSET_NODES for p in n["depends_on"]["nodes"])]
    assert len(model_tests) > 100
    for test in model_tests:
        parents = [p for p in test["depends_on"]["nodes"] if p in ASSET_NODES]
        ref = test["config"].get("meta", {}).get("dagster", {}).get("ref", {}).get("name")
        attached = test.get("attached_node") or (parents[0] if len(parents) == 1 else None) or next(
            (uid for uid in parents if ASSET_NODES[uid]["name"] == ref), None)
        # A singular test over several models must name its model (meta.dagster.ref) to be a check.
        assert attached, f"{test['unique_id']} is attached to no model: set config.meta.dagster.ref"
        assert (translator.get_asset_key(ASSET_NODES[attached]), test["name"]) in specs, test["unique_id"]


def test_definitions_load_with_the_sensor_on_and_every_model_automated() -> None:
    Definitions.validate_loadable(defs)
    assert isinstance(rebuild_downstream_sensor, AutomationConditionSensorDefinition)
    assert rebuild_downstream_sensor.default_status == DefaultSensorStatus.RUNNING
    assert defs.resolve_sensor_def(rebuild_downstream_sensor.name) is not None
    automated = {k for k in GRAPH.get_all_asset_keys() if GRAPH.get(k).automation_condition is not None}
    # Raw tables move when ingestion runs; docs are rebuilt by the main job only.
    assert automated == {*MODEL_KEYS, PUBLISHED_MARTS_KEY}
    job = defs.resolve_job_def("refresh_all")
    assert {*MODEL_KEYS, PUBLISHED_MARTS_KEY, DBT_DOCS_KEY} <= set(job.asset_layer.executable_asset_keys)


def test_a_raw_change_requests_only_its_downstream_and_a_main_job_run_requests_nothing() -> None:
    with instance_for_test() as instance:
        for key in GRAPH.get_all_asset_keys():
            instance.report_runless_asset_event(raw_load(key, "v1") if key in RAW_KEYS else AssetMaterialization(key))
        cursor = evaluate_automation_conditions(defs, instance).cursor

        # The main job updates a raw table and everything below it together: nothing more to do.
        instance.report_runless_asset_event(raw_load(RAW_TIME_ENTRIES, "v1b"))
        for key in downstream_of(RAW_TIME_ENTRIES):
            instance.report_runless_asset_event(AssetMaterialization(key))
        result = evaluate_automation_conditions(defs, instance, cursor=cursor)
        assert result.total_requested == 0

        # Ingestion alone changes the raw table: its downstream cone is requested, in one tick.
        instance.report_runless_asset_event(raw_load(RAW_TIME_ENTRIES, "v2"))
        result = evaluate_automation_conditions(defs, instance, cursor=result.cursor)
        requested = {k for k in GRAPH.get_all_asset_keys() if result.get_num_requested(k)}
        assert requested == automated_downstream_of(RAW_TIME_ENTRIES)
        assert {AssetKey(["staging", "stg_kantata__time_entries"]), PUBLISHED_MARTS_KEY} <= requested
        assert AssetKey(["staging", "stg_salesforce__accounts"]) not in requested

        # Once handled, the same update is not requested again.
        result = evaluate_automation_conditions(defs, instance, cursor=result.cursor)
        assert result.total_requested == 0

        # An ingestion that read only unchanged rows keeps the table's data version: nothing runs.
        for key in RAW_KEYS:
            instance.report_runless_asset_event(raw_load(key, "v2" if key == RAW_TIME_ENTRIES else "v1"))
        result = evaluate_automation_conditions(defs, instance, cursor=result.cursor)
        assert result.total_requested == 0


def test_every_op_of_every_job_has_a_name_that_says_what_it_builds() -> None:
    """One dbt op per stage, named; none split by Dagster into numbered copies (``dbt_models_2``),
    which it does when one op would sit both before and after another asset of the job."""
    jobs = [*(defs.resolve_job_def(job.name) for job in defs.jobs or ()), defs.resolve_implicit_global_asset_job_def()]
    for job in jobs:
        names = set(job.graph.node_dict)
        assert not [n for n in names if re.search(r"_\d+$", n)], (job.name, sorted(names))
        assert {n for n in names if n.startswith("dbt")} <= {name for name, *_ in DBT_STAGES}, job.name
    assert {name for name, *_ in DBT_STAGES} <= set(defs.resolve_job_def("refresh_all").graph.node_dict)


def test_a_subset_of_a_job_runs_the_checks_of_the_job_not_every_check_of_its_assets() -> None:
    """A posting job leaves the dbt tests out; Dagster plans a subset of it taken by assets
    with every check of those assets, dbt tests over models the job never builds among them.
    The dbt step runs only the job's own; the main job has every check."""
    job = defs.resolve_job_def(POST_INVOICES_JOB)
    subset = job.get_subset(asset_selection=set(job.asset_layer.selected_asset_keys) - {INVOICES_KEY})
    dbt_checks = {spec.key for spec in DBT_CHECK_SPECS}
    assert subset.asset_layer.asset_graph.asset_check_keys & dbt_checks  # what Dagster plans
    own = posting_selection(INVOICES_KEY).resolve_checks(GRAPH)
    assert job_check_keys(subset) == job_check_keys(job) == own and not own & dbt_checks
    main = defs.resolve_job_def("refresh_all")
    assert dbt_checks <= job_check_keys(main.get_subset(asset_selection={AssetKey(["marts", "dim_rate_card"])}))


class _FinishedInvocation:
    """What ``failed_nodes`` reads of a dbt invocation: its run_results.json, or none."""

    def __init__(self, results: list[dict] | None) -> None:
        self.results = results

    def get_artifact(self, name: str) -> dict:
        assert name == "run_results.json"
        if self.results is None:
            raise FileNotFoundError(name)
        return {"results": self.results}


def test_a_failed_dbt_build_names_each_failed_node_and_dbt_message() -> None:
    invocation = _FinishedInvocation([
        {"unique_id": "model.ps.dim_customer", "status": "success", "message": "OK"},
        {"unique_id": "test.ps.unique_dim_project_key", "status": "fail",
         "message": "Got 2 results,\n configured to fail if != 0"},
        {"unique_id": "model.ps.fct_time", "status": "error", "message": "Binder Error: column x not found"},
        {"unique_id": "test.ps.warned", "status": "warn", "message": "Got 1 result"},
    ])
    error = DbtBuildError(failed_nodes(invocation))  # type: ignore[arg-type]
    assert str(error) == ("dbt build failed: test.ps.unique_dim_project_key: fail: Got 2 results, configured to fail "
                          "if != 0; model.ps.fct_time: error: Binder Error: column x not found")
    assert str(DbtBuildError(failed_nodes(_FinishedInvocation(None)))) == (  # type: ignore[arg-type]
        "dbt build failed: no node failed: see the dbt log")
