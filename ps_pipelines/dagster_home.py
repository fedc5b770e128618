"""The Dagster instance folder (``DAGSTER_HOME``) of ``ps-pipelines run`` and ``ps-pipelines dev``.

Apart from the CLI so that the runner, which the CLI starts, does not import the CLI back.
"""

from __future__ import annotations

import os
from pathlib import Path

_POOLS = """\
# Written by ps-pipelines. One DuckDB writer at a time: every asset that writes the
# warehouse declares pool "duckdb_warehouse", limited here to one slot.
concurrency:
  pools:
    default_limit: 1
"""
_RUN_MONITORING = """\
# Under the daemon (ps-pipelines dev, dagster dev, a deployment): fail runs that never start
# or never finish canceling, and free the pool slots a finished run still holds. The default
# run launcher cannot check a worker's health, and the runs of `ps-pipelines run` are not
# launched at all: their dead runs are found by the sensor free_pool_slots_of_dead_runs and
# at every start of `ps-pipelines run` and `ps-pipelines dev`.
run_monitoring:
  enabled: true
  start_timeout_seconds: 180
  cancel_timeout_seconds: 180
  max_resume_run_attempts: 0
  poll_interval_seconds: 60
  free_slots_after_run_end_seconds: 60
"""
_RUN_QUEUE = """\
# Runs leave the queue within a second (Dagster's default checks every 5 s): an event's run
# starts seconds after the sensor asked for it.
run_coordinator:
  module: dagster.core.run_coordinator
  class: QueuedRunCoordinator
  config:
    dequeue_interval_seconds: 1
"""
_TELEMETRY = """\
telemetry:
  enabled: false
"""
DAGSTER_YAML = _POOLS + _RUN_MONITORING + _RUN_QUEUE + _TELEMETRY
# What earlier versions wrote: replaced when found unchanged, never when someone edited it.
PREVIOUS_DAGSTER_YAMLS = (
    _POOLS + _RUN_MONITORING + _TELEMETRY,
    _POOLS + _TELEMETRY,
)


def prepare_dagster_home(home: Path) -> Path:
    dagster_home = (home / "dagster_home").resolve()
    dagster_home.mkdir(parents=True, exist_ok=True)
    config = dagster_home / "dagster.yaml"
    if not config.exists() or config.read_text() in PREVIOUS_DAGSTER_YAMLS:
        config.write_text(DAGSTER_YAML)
    os.environ["DAGSTER_HOME"] = str(dagster_home)
    return dagster_home
