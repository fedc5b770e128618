"""The code location loads, and every source entity is an asset a data engineer can find."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from dagster import AssetKey, Definitions

from ps_pipelines import definitions_production
from ps_pipelines.definitions import defs
from ps_pipelines.ingest.catalog import ingest_assets
from ps_pipelines.ingest.factory import CONTRACT_CHECK, DRIFT_CHECK
from ps_pipelines.lib.contracts import ALL_CONTRACTS
from ps_pipelines.lib.warehouse.lock import WAREHOUSE_POOL


def test_local_and_production_definitions_load() -> None:
    Definitions.validate_loadable(defs())
    # Production resources are EnvVars: loading must not read them (nothing is set here).
    Definitions.validate_loadable(definitions_production.defs())


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
    job = defs().resolve_job_def("refresh_all")
    assert len(job.asset_layer.executable_asset_keys) >= len(ALL_CONTRACTS)


REPO = Path(__file__).resolve().parents[1]


def test_importing_the_definitions_needs_no_dbt_manifest(tmp_path: Path) -> None:
    """A fresh clone has no ``dbt_project/target``: importing builds nothing and parses nothing."""
    skip = shutil.ignore_patterns("__pycache__", "target", "dbt_packages", "logs", "*.duckdb")
    for name in ("ps_pipelines", "ps_sandbox", "dbt_project"):
        shutil.copytree(REPO / name, tmp_path / name, ignore=skip)
    shutil.copy(REPO / "pyproject.toml", tmp_path)
    script = ("import ps_pipelines.definitions, ps_pipelines.definitions_production;"
              "import ps_pipelines.transform.project as p; print(p.DBT_PROJECT_DIR)")
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env={"PYTHONPATH": str(tmp_path)},
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(tmp_path / "dbt_project")  # the copy was imported, not the checkout
    assert not (tmp_path / "dbt_project" / "target").exists()
