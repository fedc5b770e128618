"""The write-back as Dagster runs it: a pipeline over a real sandbox, an ephemeral instance."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pytest
from dagster import (
    DagsterInstance,
    Definitions,
    ExecuteInProcessResult,
    RunRequest,
    build_sensor_context,
)
from dagster._core.definitions.sensor_definition import SensorExecutionData

from ps_pipelines.definitions import build_definitions
from ps_pipelines.events.definitions import build_event_definitions
from ps_pipelines.lib.sources import NetSuiteClient
from ps_sandbox.context import DEFAULT_CREDENTIALS
from tests.conftest import RunningSandbox

QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


@dataclass
class Pipeline:
    """Both code locations (the main graph and the write-back events) on one sandbox and instance."""

    sandbox: RunningSandbox
    defs: Definitions
    instance: DagsterInstance
    warehouse: Path
    netsuite: NetSuiteClient
    events: Definitions

    def tick(self, sensor_name: str, cursor: str | None) -> SensorExecutionData:
        # Evaluated as the daemon does: the sensor reads its resources from the context.
        sensor = self.events.resolve_sensor_def(sensor_name)
        with build_sensor_context(instance=self.instance, cursor=cursor, resources=self.resources,
                                  sensor_name=sensor_name) as context:
            return sensor.evaluate_tick(context)

    def run_event(self, job_name: str, request: RunRequest | None = None) -> ExecuteInProcessResult:
        """An event job as its sensor's run request would start it."""
        job = self.events.resolve_job_def(job_name)
        tags = dict(request.tags) if request else {}
        result = job.execute_in_process(instance=self.instance, tags=tags, run_config=QUIET, raise_on_error=False)
        assert result.success, [e.message for e in result.all_events if e.is_failure]
        return result

    @property
    def resources(self) -> dict[str, Any]:
        return dict(self.defs.resources or {})

    def run(self, job_name: str, request: RunRequest | None = None, **kwargs: Any) -> ExecuteInProcessResult:
        job = self.defs.resolve_job_def(job_name)
        tags = dict(request.tags) if request else {}
        result = job.execute_in_process(instance=self.instance, tags=tags, run_config=QUIET, raise_on_error=False,
                                        **kwargs)
        assert result.success, [e.message for e in result.all_events if e.is_failure]
        return result

    def suiteql(self, query: str) -> list[dict]:
        return [row for page in self.netsuite.suiteql(query) for row in page]

    def ledger(self, sql: str, params: list | None = None) -> list[tuple]:
        with duckdb.connect(str(self.warehouse), read_only=True) as con:
            return con.execute(sql, params or []).fetchall()


@pytest.fixture
def pipeline(sandbox: RunningSandbox, tmp_path: Path) -> Iterator[Pipeline]:
    warehouse = tmp_path / "warehouse.duckdb"
    defs = build_definitions("local", sandbox_url=sandbox.url, warehouse_path=str(warehouse))
    events = build_event_definitions("local", sandbox_url=sandbox.url, warehouse_path=str(warehouse))
    netsuite = NetSuiteClient(sandbox.url, **DEFAULT_CREDENTIALS["netsuite"])
    with DagsterInstance.ephemeral() as instance:
        yield Pipeline(sandbox, defs, instance, warehouse, netsuite, events)
    netsuite.client.close()


