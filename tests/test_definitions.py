"""The code location loads, and every source entity is an asset a data engineer can find."""

from __future__ import annotations

from dagster import AssetKey, Definitions

from ps_pipelines.definitions import build_definitions, defs
from ps_pipelines.ingest import ingest_assets
from ps_pipelines.ingest.factory import CONTRACT_CHECK, DRIFT_CHECK, WAREHOUSE_POOL
from ps_pipelines.lib.contracts import ALL_CONTRACTS


def test_local_and_production_definitions_load() -> None:
    Definitions.validate_loadable(defs)
    # Production resources are EnvVars: loading must not read them (nothing is set here).
    Definitions.validate_loadable(build_definitions("production"))


def test_every_contract_has_an_ingest_asset_with_checks_owner_kind_and_pool() -> None:
    by_key = {key: asset for asset in ingest_assets for key in asset.keys}
    for contract in ALL_CONTRACTS:
        key = AssetKey(["raw", contract.platform, contract.entity])
        asset = by_key[key]
        spec = next(s for s in asset.specs if s.key == key)
        assert spec.owners and spec.description and contract.platform in spec.kinds
        assert spec.group_name.endswith(contract.platform)
        assert {c.name for c in asset.check_specs} == {CONTRACT_CHECK, DRIFT_CHECK}
        assert asset.op.pool == WAREHOUSE_POOL


def test_main_job_resolves() -> None:
    job = defs.resolve_job_def("refresh_all")
    assert len(job.asset_layer.executable_asset_keys) >= len(ALL_CONTRACTS)
