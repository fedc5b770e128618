"""dbt's partial parsing stays valid between the pipeline's own dbt invocations.

dbt re-parses the whole project when the rendered profile differs from the last parse's. The
shared parse (``prepare_manifest``) must therefore not depend on the caller's environment, and
two builds of one warehouse must partially parse. Run on a copy of the project, so the shared
``target/`` of the worktree is left alone.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import orjson
import pytest
from dagster_dbt import DbtProject

from ps_pipelines.transform.project import DBT_PROJECT_DIR, DBT_TARGET, prepare_manifest

REPARSE = "UnableToPartialParse"


@pytest.fixture
def project(tmp_path: Path) -> DbtProject:
    copy = tmp_path / "dbt_project"
    shutil.copytree(DBT_PROJECT_DIR, copy, ignore=shutil.ignore_patterns("target", "logs", "dbt_packages"))
    return DbtProject(project_dir=copy, profiles_dir=copy, target=DBT_TARGET)


def parse_events(log: Path) -> list[list[str]]:
    """Event names of each dbt invocation in a dbt log, in order."""
    invocations: list[list[str]] = []
    for line in log.read_text().splitlines():
        name = orjson.loads(line)["info"]["name"]
        if name == "MainReportArgs":
            invocations.append([])
        if invocations:
            invocations[-1].append(name)
    return invocations


def touch_a_model(project: DbtProject) -> None:
    model = next((project.project_dir / "models").rglob("*.sql"))
    stamp = project.manifest_path.stat().st_mtime + 1
    os.utime(model, (stamp, stamp))


def test_the_shared_parse_partially_parses_whatever_warehouse_the_callers_environment_names(
    project: DbtProject, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PS_WAREHOUSE_PATH", str(tmp_path / "dev_home" / "warehouse.duckdb"))
    prepare_manifest(project)
    touch_a_model(project)  # a changed model: the manifest is stale and parsed again
    monkeypatch.setenv("PS_WAREHOUSE_PATH", str(tmp_path / "cli_home" / "warehouse.duckdb"))
    prepare_manifest(project)

    [_first, second] = parse_events(project.project_dir / project.target_path / "dbt.log")
    assert "PartialParsingEnabled" in second and REPARSE not in second
