"""The dbt project as Dagster sees it, and how its manifest comes to exist.

Dagster builds one asset per dbt model from ``target/manifest.json``, so the manifest must
exist before anything imports the definitions. It is never parsed at import (a code server
and every run worker import the definitions; parsing there would cost seconds each time and
race on ``target/``). Instead:

* ``dagster dev`` (and so ``ps-pipelines dev``): loading the definitions parses when a model,
  macro or config changed (``defs/transform/assets.py`` ``load_manifest``), as it does when
  the manifest is missing;
* ``ps-pipelines run``: the runner calls :func:`prepare_manifest` first;
* a fresh clone, CI, a deployment image: ``python -m ps_pipelines.transform.project``
  (the README's commands run it before the tests).

dagster-dbt's own preparer runs whatever ``dbt`` is first on PATH, which is nothing when the
virtualenv is not activated (``.venv/bin/ps-pipelines ...``), so the dbt beside this
interpreter is used explicitly.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from dagster_dbt import DbtCliResource, DbtProject

from ps_pipelines.estate import DEFAULT_ESTATE, ESTATE_ENV, Estate
from ps_pipelines.lib import dbt_project as dbt_paths
from ps_pipelines.lib.dbt_project import DBT_PROJECT_DIR, DBT_TARGET, dbt_executable
from ps_pipelines.lib.warehouse.lock import exclusive_lock

# `dbt docs generate` output (index.html, static_index.html), written by the main job.
DOCS_TARGET_PATH = DBT_PROJECT_DIR / "target" / "docs"
# Inputs of `dbt parse`: when none is newer than the manifest, parsing again changes nothing.
_PARSE_INPUTS = ("dbt_project.yml", "profiles.yml", "models", "macros", "tests", "seeds", "snapshots", "analyses")

dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR, target=DBT_TARGET)
# The profile the shared parse (``target/``) is made with. dbt re-parses everything when the
# rendered profile differs from the last parse's ("Unable to do partial parsing because profile
# has changed"; dbt-core parser/manifest.py hashes the connection info), and profiles.yml reads
# these variables, so the caller's environment (``ps-pipelines dev`` sets the warehouse path,
# a plain shell does not) must not decide them. The parse connects to no warehouse.
PARSE_PROFILE_ENV = {"PS_WAREHOUSE_PATH": str(DBT_PROJECT_DIR.parent / ".ps_pipelines" / "warehouse.duckdb"),
                     "PS_DBT_TARGET": DBT_TARGET}
_ENV_LOCK = threading.Lock()


@contextmanager
def dbt_env(variables: Mapping[str, str]) -> Iterator[None]:
    """Set ``variables`` for the dbt process started inside, and only for it.

    ``DbtCliResource.cli`` copies ``os.environ`` into the subprocess when it starts it, so the
    variables are set only around that call (serialized: the environment is process-wide), and
    the user's own environment never decides, say, which file dbt writes.
    """
    with _ENV_LOCK:
        previous = {name: os.environ.get(name) for name in variables}
        os.environ.update(variables)
        try:
            yield
        finally:
            for name, value in previous.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


def _newest_input_mtime(project: DbtProject) -> float:
    newest = 0.0
    for name in _PARSE_INPUTS:
        path = project.project_dir / name
        files = [path] if path.is_file() else path.rglob("*") if path.is_dir() else []
        newest = max([newest, *(f.stat().st_mtime for f in files if f.is_file())])
    return newest


def dbt_resource(project: DbtProject = dbt_project) -> DbtCliResource:
    return DbtCliResource(project_dir=project, dbt_executable=dbt_executable())


def manifest_is_stale(project: DbtProject = dbt_project) -> bool:
    manifest = project.manifest_path
    return not manifest.exists() or manifest.stat().st_mtime < _newest_input_mtime(project)


def estate_project(estate: Estate = DEFAULT_ESTATE) -> DbtProject:
    """The dbt project as ``estate`` sees it: the shared ``target/`` for the default estate, a
    target folder of its own for any other (its manifest enables the platforms it declares)."""
    if estate == DEFAULT_ESTATE:
        return dbt_project
    return DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR, target=DBT_TARGET,
                      target_path=Path("target") / f"estate-{'-'.join(estate.platforms)}")


def prepare_manifest(project: DbtProject = dbt_project, estate: Estate = DEFAULT_ESTATE) -> Path:
    """Parse the dbt project for ``estate`` when a model, macro or config changed since the last
    parse (``estate`` pinned like the profile: the caller's PS_ESTATE must not decide).

    The lock makes concurrent processes (two runs, test workers) parse once, one at a time.
    """
    target = project.project_dir / project.target_path
    with exclusive_lock(target / ".prepare.lock"):
        if manifest_is_stale(project):
            with dbt_env({**PARSE_PROFILE_ENV, ESTATE_ENV: str(estate)}):
                invocation = dbt_resource(project).cli(["parse", "--quiet"], target_path=project.target_path)
            invocation.wait()
    return project.manifest_path


def dbt_var(name: str, project: DbtProject = dbt_project) -> Any:
    """A variable of ``dbt_project.yml``: Python and SQL share one setting (e.g. the billing go-live)."""
    return dbt_paths.dbt_var(name, project.project_dir)


if __name__ == "__main__":
    print(prepare_manifest())
