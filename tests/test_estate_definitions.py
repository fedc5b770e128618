"""Only the declared estate's platforms have raw assets in the graph (issue 13)."""

from __future__ import annotations

import pytest
from dagster import AssetKey, Definitions

from ps_pipelines.definitions import build_definitions
from ps_pipelines.defs.writeback.assets import ACTIVATIONS_KEY
from ps_pipelines.defs.writeback.jobs import read_back_selection
from ps_pipelines.estate import ESTATE_ENV, Estate
from ps_pipelines.ingest.catalog import estate_ingest_assets, ingest_assets
from ps_pipelines.runner import _op_config


def _raw_platforms(defs: Definitions) -> set[str]:
    """Platforms with a raw asset the graph can materialize (the dbt sources of the others stay
    as external keys: the models still name them)."""
    graph = defs.resolve_asset_graph()
    return {key.path[1] for key in graph.materializable_asset_keys if key.path[0] == "raw"}


def test_the_default_graph_is_unchanged(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ESTATE_ENV, raising=False)
    defs = build_definitions("local")
    assert _raw_platforms(defs) == {"salesforce", "kantata", "workday", "netsuite"}
    raw = {key for key in defs.resolve_asset_graph().materializable_asset_keys if key.path[0] == "raw"}
    assert raw == {asset.key for asset in ingest_assets}
    assert {asset.key for asset in estate_ingest_assets()} == raw
    assert "hubspot" not in defs.resources
    assert _activation_targets(defs) == {"netsuite", "kantata", "salesforce"}


def _activation_targets(defs: Definitions) -> set[str]:
    """The target systems the activation posting (and its duplicate check) connect to."""
    posting = defs.resolve_assets_def(ACTIVATIONS_KEY)
    [check] = [c for c in defs.asset_checks or () if any(k.asset_key == ACTIVATIONS_KEY for k in c.check_keys)]
    assert posting.required_resource_keys - {"io_manager"} == check.required_resource_keys - {"io_manager"}
    return set(posting.required_resource_keys) - {"io_manager", "warehouse"}


def test_a_hubspot_and_certinia_estate_ingests_those_and_not_salesforce_or_kantata() -> None:
    estate = Estate.parse("hubspot,certinia,workday,netsuite")
    defs = build_definitions("local", estate=estate)
    assert _raw_platforms(defs) == {"hubspot", "certinia", "workday", "netsuite"}
    assert {"hubspot", "certinia"} <= set(defs.resources)
    # Its activations go to the estate's CRM and PSA: the posting needs no Salesforce or Kantata.
    assert _activation_targets(defs) == {"netsuite", "certinia", "hubspot"}
    # ... and what they write is read back from there.
    read_back = {key.to_user_string() for key in read_back_selection().resolve(defs.resolve_asset_graph())
                 if key.path[0] == "raw"}
    assert {"raw/hubspot/deals", "raw/certinia/projects", "raw/netsuite/projects"} <= read_back
    assert not any(key.split("/")[1] in ("salesforce", "kantata") for key in read_back)
    ingest = defs.resolve_job_def("ingest_all").asset_layer.executable_asset_keys
    assert AssetKey(["raw", "hubspot", "deals"]) in ingest and AssetKey(["raw", "certinia", "timecards"]) in ingest
    assert not any(key.path[1] in ("salesforce", "kantata") for key in ingest)
    # --full-refresh configures the estate's ingestion ops, and only those (others would be an error).
    ops = set(_op_config(True, None, estate)["ops"])
    assert ops == {asset.op.name for asset in estate_ingest_assets(estate)}
    assert not ops & {asset.op.name for asset in ingest_assets if asset.key.path[1] == "salesforce"}


def test_ps_estate_is_read_when_the_definitions_are_built(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ESTATE_ENV, "salesforce,kantata,certinia,workday,netsuite")
    assert _raw_platforms(build_definitions("production")) == {"salesforce", "kantata", "certinia", "workday",
                                                               "netsuite"}
    Definitions.validate_loadable(build_definitions("production"))  # the Certinia org's settings are EnvVars


def test_a_declaring_estates_dbt_graph_stages_its_platforms_from_their_raw_assets() -> None:
    """A manifest of the estate's own (its own target folder): HubSpot and Certinia staging are
    dbt assets fed by their raw assets; the default graph has neither."""
    graph = build_definitions("local", estate=Estate.parse("hubspot,certinia,workday,netsuite")).resolve_asset_graph()
    companies, timecards = AssetKey(["staging", "stg_hubspot__companies"]), AssetKey(["staging",
                                                                                      "stg_certinia__timecards"])
    assert graph.get(companies).parent_keys == {AssetKey(["raw", "hubspot", "companies"])}
    assert graph.get(timecards).parent_keys == {AssetKey(["raw", "certinia", "timecards"])}
    default = build_definitions("local").resolve_asset_graph()
    assert not {key for key in default.get_all_asset_keys() if "hubspot" in key.to_user_string()}
    assert not {key for key in default.get_all_asset_keys() if "certinia" in key.to_user_string()}


def test_a_d365_estate_ingests_dynamics_instead_of_netsuite() -> None:
    defs = build_definitions("local", estate=Estate.parse("salesforce,kantata,workday,d365"))
    assert _raw_platforms(defs) == {"salesforce", "kantata", "workday", "d365"}
    assert "d365" in defs.resources
    graph = defs.resolve_asset_graph()
    assert AssetKey(["raw", "d365", "invoice_lines"]) in graph.materializable_asset_keys
    assert graph.get(AssetKey(["raw", "d365", "customers"])).group_name == "erp_d365"


def test_a_d365_estates_write_back_posts_to_dynamics_without_netsuite() -> None:
    """The invoice posting, its reconciliation and the activation need the estate's ERP (d365),
    never the NetSuite resource: a Dynamics 365 firm sets no NetSuite settings."""
    from ps_pipelines.defs.writeback.assets import ACTIVATIONS_KEY, INVOICES_KEY, RECONCILIATION_CHECK

    defs = build_definitions("local", estate=Estate.parse("salesforce,kantata,workday,d365"))
    graph = defs.resolve_asset_graph()
    for key in (INVOICES_KEY, ACTIVATIONS_KEY):
        required = graph.get(key).assets_def.required_resource_keys
        assert "d365" in required and "netsuite" not in required, (key, required)
    assert any(c.asset_key == INVOICES_KEY and c.name == RECONCILIATION_CHECK for c in graph.asset_check_keys)
