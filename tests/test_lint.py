"""The repository's linters report nothing: ruff over the Python, sqlfluff over the dbt models.

Both run as CI runs them, with this venv's executables from the repository root (where
pyproject.toml and .sqlfluff configure them); a finding fails with the linter's own report.
"""

import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
# Far above a lint of this repository (under 2 minutes on a loaded 2-core machine): a hang fails.
LINT_TIMEOUT_SECONDS = 900


@pytest.mark.parametrize(
    "command",
    [
        ["ruff", "check", "."],
        # One process: sqlfluff's worker pool (spawned from a pytest-xdist worker) was seen to
        # hang for good once its children finished; CI must fail, never wait.
        ["sqlfluff", "lint", "dbt_project/models", "--processes", "1"],
    ],
    ids=["ruff", "sqlfluff"],
)
def test_linter_reports_nothing(command: list[str]) -> None:
    result = subprocess.run([str(VENV_BIN / command[0]), *command[1:]], cwd=REPO_ROOT, capture_output=True, text=True,
                            timeout=LINT_TIMEOUT_SECONDS)
    assert result.returncode == 0, f"{' '.join(command)} reported:\n{result.stdout}{result.stderr}"
