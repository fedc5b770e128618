"""The Dagster instance ``ps-pipelines`` writes: one warehouse writer, and run monitoring on."""

from __future__ import annotations

from pathlib import Path

import pytest
from dagster import DagsterInstance

from ps_pipelines.dagster_home import DAGSTER_YAML, PREVIOUS_DAGSTER_YAMLS, prepare_dagster_home


@pytest.fixture(autouse=True)
def restore_dagster_home(monkeypatch: pytest.MonkeyPatch) -> None:
    """prepare_dagster_home sets DAGSTER_HOME for the process; keep it to this test."""
    monkeypatch.delenv("DAGSTER_HOME", raising=False)


def test_the_instance_limits_the_pool_and_monitors_runs(tmp_path: Path) -> None:
    dagster_home = prepare_dagster_home(tmp_path)
    with DagsterInstance.from_config(str(dagster_home)) as instance:
        assert instance.get_concurrency_config().pool_config.default_pool_limit == 1
        assert instance.run_monitoring_enabled
        settings = instance.run_monitoring_settings
        # A finished run's slots are freed a minute after it ends, not after the 5 minutes of the docs' example.
        assert settings["free_slots_after_run_end_seconds"] == 60
        assert settings["max_resume_run_attempts"] == 0  # the default run launcher cannot resume


def test_an_unchanged_older_config_is_upgraded_and_an_edited_one_kept(tmp_path: Path) -> None:
    old, edited = tmp_path / "old", tmp_path / "edited"
    for home, text in ((old, PREVIOUS_DAGSTER_YAMLS[0]), (edited, PREVIOUS_DAGSTER_YAMLS[0] + "# mine\n")):
        (home / "dagster_home").mkdir(parents=True)
        (home / "dagster_home" / "dagster.yaml").write_text(text)
        prepare_dagster_home(home)
    assert (old / "dagster_home" / "dagster.yaml").read_text() == DAGSTER_YAML
    assert (edited / "dagster_home" / "dagster.yaml").read_text().endswith("# mine\n")
