"""Where the dbt project is and how to call its dbt, without Dagster (the event path's
process never imports dagster-dbt; ``transform/project.py`` builds the Dagster view on this)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

import yaml

DBT_PROJECT_DIR = Path(__file__).resolve().parents[2] / "dbt_project"
DBT_TARGET = "duckdb"


def dbt_executable() -> str:
    # The dbt beside this interpreter: nothing is on PATH when the virtualenv is not activated.
    beside_python = Path(sys.executable).with_name("dbt")
    return str(beside_python) if beside_python.exists() else shutil.which("dbt") or "dbt"


def dbt_var(name: str, project_dir: Path = DBT_PROJECT_DIR) -> Any:
    """A variable of ``dbt_project.yml``: Python and SQL share one setting (e.g. the billing go-live)."""
    config = yaml.safe_load((project_dir / "dbt_project.yml").read_text())
    return config.get("vars", {})[name]
