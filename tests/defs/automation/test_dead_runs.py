"""Dead runs are found by their process, ended, and their pool slots freed; live ones are left alone.

The runs here are written straight into a real (SQLite) instance with the state a killed
process leaves: STARTED, a claimed ``duckdb_warehouse`` slot, and an owner that no longer
exists. The end-to-end kill of a real ``ps-pipelines run`` is ``tests/test_runner_recovery.py``.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from dagster import (
    DagsterEvent,
    DagsterEventType,
    DagsterInstance,
    DagsterRun,
    DagsterRunStatus,
    MetadataValue,
    build_sensor_context,
)
from dagster._core.events import EngineEventData

from ps_pipelines.dagster_home import DAGSTER_YAML
from ps_pipelines.defs.automation.dead_runs import (
    OWNER_TAG,
    RUN_ID_ENV,
    free_dead_runs,
    free_pool_slots_of_dead_runs,
    only_waits_for_pools,
    owner_tags,
    pool_waits,
    run_processes,
)
from ps_pipelines.lib.processes import ProcessIdentity
from ps_pipelines.lib.warehouse.lock import WAREHOUSE_POOL

STEP = "raw__kantata__time_entries"


@pytest.fixture
def instance(tmp_path: Path) -> Iterator[DagsterInstance]:
    (tmp_path / "dagster.yaml").write_text(DAGSTER_YAML)
    with DagsterInstance.from_config(str(tmp_path)) as instance:
        yield instance


@pytest.fixture(scope="module")
def gone() -> ProcessIdentity:
    """A process that existed and exited (and was reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    identity = ProcessIdentity(host=socket.gethostname(), pid=child.pid,
                               started_at=psutil.Process(child.pid).create_time())
    child.kill()
    child.wait()
    return identity


def add_run(instance: DagsterInstance, owner: ProcessIdentity | None,
            status: DagsterRunStatus = DagsterRunStatus.STARTED) -> DagsterRun:
    tags = {OWNER_TAG: owner.to_tag()} if owner else {}
    return instance.add_run(DagsterRun(job_name="ingest_all", run_id=str(uuid.uuid4()), status=status, tags=tags))


def claim(instance: DagsterInstance, run: DagsterRun, step: str = STEP) -> bool:
    storage = instance.event_log_storage
    if WAREHOUSE_POOL not in storage.get_concurrency_keys():
        storage.initialize_concurrency_limit_to_default(WAREHOUSE_POOL)
    return storage.claim_concurrency_slot(WAREHOUSE_POOL, run.run_id, step).is_claimed


def holders(instance: DagsterInstance) -> list[str]:
    return [slot.run_id for slot in instance.event_log_storage.get_concurrency_info(WAREHOUSE_POOL).claimed_slots]


def status(instance: DagsterInstance, run: DagsterRun) -> DagsterRunStatus:
    found = instance.get_run_by_id(run.run_id)
    assert found is not None
    return found.status


# -- a process's identity ---------------------------------------------------------------------


def test_a_process_identity_survives_its_tag_and_tells_alive_from_gone(gone: ProcessIdentity) -> None:
    me = ProcessIdentity.current()
    assert ProcessIdentity.from_tag(me.to_tag()) == me
    assert json.loads(owner_tags()[OWNER_TAG])["pid"] == me.pid
    assert me.is_alive() is True
    assert gone.is_alive() is False
    with pytest.raises(ValueError):
        ProcessIdentity.from_tag("4242")


def test_a_reused_pid_is_another_process_and_another_host_is_unknowable() -> None:
    me = ProcessIdentity.current()
    assert me.started_at is not None
    assert ProcessIdentity(me.host, me.pid, started_at=me.started_at - 3600).is_alive() is False
    assert ProcessIdentity(me.host, me.pid, seen_at=me.started_at - 3600).is_alive() is False
    assert ProcessIdentity(me.host, me.pid, seen_at=me.started_at + 10).is_alive() is True
    assert ProcessIdentity(f"not-{me.host}", me.pid, started_at=me.started_at).is_alive() is None


def test_a_zombie_is_dead() -> None:
    """Exited, not yet collected by its parent: the pid and start time still answer."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    process = psutil.Process(child.pid)
    identity = ProcessIdentity(socket.gethostname(), child.pid, started_at=process.create_time())
    try:
        deadline = time.monotonic() + 60
        while process.status() != psutil.STATUS_ZOMBIE and time.monotonic() < deadline:
            time.sleep(0.05)
        assert process.status() == psutil.STATUS_ZOMBIE
        assert identity.is_alive() is False
    finally:
        child.wait()


# -- ending dead runs and freeing their slots ---------------------------------------------------


def test_a_dead_run_is_marked_failed_and_its_slot_goes_to_the_waiting_run(instance: DagsterInstance,
                                                                         gone: ProcessIdentity) -> None:
    dead = add_run(instance, gone)
    assert claim(instance, dead)
    waiting = add_run(instance, ProcessIdentity.current())
    assert not claim(instance, waiting)

    freed = free_dead_runs(instance)

    assert [f.run_id for f in freed] == [dead.run_id]
    message = freed[0].message()
    assert f"dead run {dead.run_id}" in message and "freed" in message and STEP in message
    assert f"pid {gone.pid}" in message
    assert status(instance, dead) == DagsterRunStatus.FAILURE
    assert "is gone" in (instance.all_logs(dead.run_id)[-1].message or "")
    assert holders(instance) == []
    assert claim(instance, waiting)
    assert free_dead_runs(instance) == []  # nothing left to do: a second check changes nothing


def test_what_a_dead_run_started_is_stopped_with_it(instance: DagsterInstance, gone: ProcessIdentity) -> None:
    """A dbt build outlives the killed ``ps-pipelines run`` that started it, and keeps DuckDB open."""
    dead = add_run(instance, gone)
    assert claim(instance, dead)
    env = {**os.environ, RUN_ID_ENV: dead.run_id}
    leftover = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], env=env)
    unrelated = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        wait_until = time.monotonic() + 30  # until its environment is readable
        while not psutil.Process(leftover.pid).environ().get(RUN_ID_ENV) and time.monotonic() < wait_until:
            time.sleep(0.05)

        freed = free_dead_runs(instance)

        assert "stopped what it had started: python" in freed[0].message()
        assert leftover.wait(timeout=30) is not None
        assert unrelated.poll() is None
    finally:
        for process in (leftover, unrelated):
            process.kill()
            process.wait()


def test_a_dead_canceling_run_ends_canceled(instance: DagsterInstance, gone: ProcessIdentity) -> None:
    dead = add_run(instance, gone, DagsterRunStatus.CANCELING)
    assert claim(instance, dead)
    assert [f.marked for f in free_dead_runs(instance)] == [DagsterRunStatus.CANCELED]
    assert status(instance, dead) == DagsterRunStatus.CANCELED


def test_live_runs_and_runs_of_other_hosts_or_unknown_owners_are_left_alone(instance: DagsterInstance,
                                                                            gone: ProcessIdentity) -> None:
    alive = add_run(instance, ProcessIdentity.current())
    elsewhere = add_run(instance, ProcessIdentity(f"not-{gone.host}", gone.pid, started_at=gone.started_at))
    unknown = add_run(instance, None)  # no tag and no worker event
    assert claim(instance, alive)

    assert free_dead_runs(instance) == []
    for run in (alive, elsewhere, unknown):
        assert status(instance, run) == DagsterRunStatus.STARTED
    assert holders(instance) == [alive.run_id]


def test_a_launched_run_is_judged_by_the_worker_pid_in_its_event_log(instance: DagsterInstance,
                                                                     gone: ProcessIdentity) -> None:
    """Runs of the daemon or the UI carry no tag: their worker logs its pid when it starts."""
    dead, alive = add_run(instance, None), add_run(instance, None)
    for run, pid in ((dead, gone.pid), (alive, ProcessIdentity.current().pid)):
        instance.report_engine_event(f"Started process for run (pid: {pid}).", run, EngineEventData.in_process(pid))
    assert run_processes(instance, dead).owner == ProcessIdentity(
        gone.host, gone.pid, seen_at=instance.all_logs(dead.run_id)[-1].timestamp)
    assert claim(instance, dead)

    assert [f.run_id for f in free_dead_runs(instance)] == [dead.run_id]
    assert status(instance, alive) == DagsterRunStatus.STARTED


def test_a_run_is_alive_while_a_step_process_of_it_runs_even_when_its_worker_is_gone(
        instance: DagsterInstance, gone: ProcessIdentity) -> None:
    """A multiprocess run's step process outlives a killed worker and still writes the warehouse."""
    run = add_run(instance, None)
    instance.report_engine_event(f"Started process for run (pid: {gone.pid}).", run,
                                 EngineEventData.in_process(gone.pid))
    me = ProcessIdentity.current().pid
    instance.report_dagster_event(DagsterEvent(
        DagsterEventType.STEP_WORKER_STARTED.value, job_name=run.job_name, step_key=STEP,
        message=f'Executing step "{STEP}" in subprocess.',
        event_specific_data=EngineEventData(metadata={"pid": MetadataValue.text(str(me))})), run_id=run.run_id)
    assert claim(instance, run)

    assert run_processes(instance, run).alive() is True
    assert free_dead_runs(instance) == []
    assert holders(instance) == [run.run_id]


def test_a_run_that_ended_but_kept_its_slot_gets_it_freed_once_its_process_is_gone(
        instance: DagsterInstance, gone: ProcessIdentity) -> None:
    """A forced termination in the UI marks a run CANCELED and leaves its slot taken."""
    ended = add_run(instance, ProcessIdentity.current())
    assert claim(instance, ended)
    instance.report_run_canceled(ended, "forced")
    assert free_dead_runs(instance) == []  # its process is still there: maybe still writing
    instance.add_run_tags(ended.run_id, {OWNER_TAG: gone.to_tag()})

    freed = free_dead_runs(instance)

    assert [(f.run_id, f.marked) for f in freed] == [(ended.run_id, None)]
    assert "ended CANCELED but still held pool slots" in freed[0].message()
    assert holders(instance) == []


# -- who holds the pool ---------------------------------------------------------------------------


def test_a_waiting_run_is_told_which_live_run_holds_the_pool(instance: DagsterInstance) -> None:
    holder, waiting = add_run(instance, ProcessIdentity.current()), add_run(instance, ProcessIdentity.current())
    assert claim(instance, holder)
    assert not claim(instance, waiting, "raw__netsuite__invoices")

    waits = pool_waits(instance, [waiting.run_id])

    assert [(w.run_id, w.pool, w.steps) for w in waits] == [(waiting.run_id, WAREHOUSE_POOL,
                                                              ("raw__netsuite__invoices",))]
    message = waits[0].message()
    assert f"held by run {holder.run_id}" in message and STEP in message and "alive" in message
    assert pool_waits(instance, [holder.run_id]) == []
    assert only_waits_for_pools(instance, waiting.run_id)
    assert not only_waits_for_pools(instance, holder.run_id)


def test_steps_waiting_behind_their_own_run_are_not_reported(instance: DagsterInstance) -> None:
    run = add_run(instance, ProcessIdentity.current())
    assert claim(instance, run)
    assert not claim(instance, run, "raw__netsuite__invoices")
    assert pool_waits(instance) == []


# -- the sensor -------------------------------------------------------------------------------------


def test_the_sensor_frees_dead_runs_and_tells_waiting_runs_once(instance: DagsterInstance,
                                                                 gone: ProcessIdentity) -> None:
    dead = add_run(instance, gone)
    assert claim(instance, dead)
    holder, waiting = add_run(instance, ProcessIdentity.current()), add_run(instance, ProcessIdentity.current())

    def tick(cursor: str | None) -> str | None:
        context = build_sensor_context(instance=instance, cursor=cursor)
        result = free_pool_slots_of_dead_runs.evaluate_tick(context)
        assert not result.run_requests
        return result.cursor

    cursor = tick(None)
    assert status(instance, dead) == DagsterRunStatus.FAILURE
    assert holders(instance) == []

    assert claim(instance, holder)
    assert not claim(instance, waiting, "raw__netsuite__invoices")
    cursor = tick(cursor)
    cursor = tick(cursor)

    told = [e.message for e in instance.all_logs(waiting.run_id) if e.message and "held by run" in e.message]
    assert len(told) == 1 and holder.run_id in told[0]
