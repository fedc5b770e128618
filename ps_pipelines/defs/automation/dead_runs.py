"""Runs whose process is gone: found, ended, and their pool slots freed; and who holds a pool.

Dagster frees a pool slot when the step holding it ends. A run whose process dies inside a
step (SIGKILL, the OOM killer, a reboot) never ends that step: the run stays STARTED and keeps
the one ``duckdb_warehouse`` slot, and every later step of every later run waits for it
forever. Dagster's run monitoring catches this only for run launchers that can check their
workers' health (not the default launcher of ``dagster dev``, not the in-process runs of
``ps-pipelines run``), so ps-pipelines checks itself:

* ``ps-pipelines run`` tags its run with its process (host, pid, start time);
* a run launched by the daemon or the UI names its worker's pid in its event log
  ("Started process for run (pid: ...)"); that pid is checked only when the instance's
  storage is SQLite, i.e. every run of the instance ran on this machine;
* a run whose processes are all gone is marked failed (canceled if it was canceling) and its
  pool slots and queued claims are freed; a run that already ended but still holds a slot
  gets it freed too once no process of it is left (a forced termination in the UI leaves the
  slot taken, and so does Dagster's code server when it marks failed a run whose worker was
  killed).

The check runs at the start of ``ps-pipelines run`` and ``ps-pipelines dev``, while a run of
the CLI waits for a pool, and in the sensor ``free_pool_slots_of_dead_runs`` under the daemon.
A run on another host, or one whose owner is unknown, is never touched.
"""

from __future__ import annotations

import contextlib
import json
import socket
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import psutil
from dagster import (
    DagsterEventType,
    DagsterInstance,
    DagsterRun,
    DagsterRunStatus,
    DefaultSensorStatus,
    EventLogEntry,
    RunsFilter,
    SensorEvaluationContext,
    SkipReason,
    sensor,
)

from ps_pipelines.lib.processes import ProcessIdentity, processes_with_env, terminate

OWNER_TAG = "ps_pipelines/owner"
# Set by `ps-pipelines run` in its environment, so every process it starts (the sandbox, a dbt
# build) carries its run id: a dbt build outlives a killed runner and keeps DuckDB open.
RUN_ID_ENV = "PS_PIPELINES_RUN_ID"
# Runs that have, or are about to have, a process working on them. A QUEUED run has none
# yet and a SUSPENDED one has none on purpose; neither can hold a pool slot.
LIVE_STATUSES = (DagsterRunStatus.NOT_STARTED, DagsterRunStatus.STARTING, DagsterRunStatus.STARTED,
                 DagsterRunStatus.CANCELING)
FINISHED_STATUSES = (DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED)
# Engine events written by the process that executes a run, each with its pid in the metadata.
WORKER_EVENT_PREFIXES = (
    "Started process for run",  # the worker of a launched run (dagster api execute_run)
    "Executing steps in process",  # the in-process executor (execute_in_process)
    "Executing steps using multiprocess executor",  # its parent process
)
SENSOR_NAME = "free_pool_slots_of_dead_runs"
SENSOR_INTERVAL_SECONDS = 60


def owner_tags() -> dict[str, str]:
    """The tag that names this process as the owner of a run it executes."""
    return {OWNER_TAG: ProcessIdentity.current().to_tag()}


def runs_stay_on_this_machine(instance: DagsterInstance) -> bool:
    """True when every run of ``instance`` ran on this machine: SQLite (or in-memory) storage.

    Only then does a pid found in the event log name a process of this machine.
    """
    # Private import: Dagster exports no public way to ask what the storage is. Should it move,
    # only the runs tagged by ps-pipelines (which name their host) are judged.
    try:
        from dagster._core.storage.runs import InMemoryRunStorage, SqliteRunStorage
    except ImportError:
        return False
    return isinstance(instance.run_storage, SqliteRunStorage | InMemoryRunStorage)


@dataclass(frozen=True)
class RunProcesses:
    """Who works on a run: its owner (the CLI process, or a launched run's worker) and the step
    processes a multiprocess run started (a step may outlive a killed worker, still writing)."""

    owner: ProcessIdentity | None
    steps: tuple[ProcessIdentity, ...] = ()

    def alive(self) -> bool | None:
        """True if any is alive, False if every one is gone, None if that cannot be known here."""
        known = [p for p in (self.owner, *self.steps) if p is not None]
        states = [p.is_alive() for p in known]
        if not states or (None in states and True not in states):
            return None
        return True in states

    def describe(self) -> str:
        main = self.owner or (self.steps[0] if self.steps else None)
        return main.describe() if main else "unknown"


def _pid_of(entry: EventLogEntry) -> int | None:
    event = entry.dagster_event
    pid = event.engine_event_data.metadata.get("pid") if event is not None else None
    try:
        return int(pid.value) if pid is not None else None  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def run_processes(instance: DagsterInstance, run: DagsterRun, *,
                  local_instance: bool | None = None) -> RunProcesses:
    """The processes executing ``run``, as far as they can be known from here."""
    tag = run.tags.get(OWNER_TAG)
    if tag:
        try:
            return RunProcesses(ProcessIdentity.from_tag(tag))
        except ValueError:
            return RunProcesses(None)
    if local_instance is None:
        local_instance = runs_stay_on_this_machine(instance)
    if not local_instance:
        return RunProcesses(None)
    host = socket.gethostname()
    owner, steps = None, []
    entries = instance.all_logs(run.run_id, of_type={DagsterEventType.ENGINE_EVENT,
                                                     DagsterEventType.STEP_WORKER_STARTED})
    for entry in entries:
        event = entry.dagster_event
        if event is None:
            continue
        pid = _pid_of(entry)
        if pid is None:
            continue
        identity = ProcessIdentity(host=host, pid=pid, seen_at=entry.timestamp)
        if event.event_type == DagsterEventType.STEP_WORKER_STARTED:
            steps.append(identity)
        elif (event.message or "").startswith(WORKER_EVENT_PREFIXES):
            owner = identity  # a resumed run has a newer worker: the last one counts
    return RunProcesses(owner, tuple(steps))


@dataclass(frozen=True)
class HeldSlot:
    pool: str
    step_key: str | None
    claimed: bool  # False: the slot is assigned to the step, which has not taken it yet

    def describe(self) -> str:
        return f"{self.pool} (step {self.step_key}{'' if self.claimed else ', assigned'})"


def held_slots(instance: DagsterInstance) -> dict[str, list[HeldSlot]]:
    """run id -> the pool slots it holds or has been assigned, over every pool of the instance."""
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        return {}
    held: dict[str, list[HeldSlot]] = defaultdict(list)
    for pool, info in storage.get_concurrency_infos(sorted(storage.get_concurrency_keys())).items():
        for slot in info.claimed_slots:
            held[slot.run_id].append(HeldSlot(pool, slot.step_key, claimed=True))
        claimed = {(slot.run_id, slot.step_key) for slot in info.claimed_slots}
        for pending in info.pending_steps:
            if pending.assigned_timestamp is not None and (pending.run_id, pending.step_key) not in claimed:
                held[pending.run_id].append(HeldSlot(pool, pending.step_key, claimed=False))
    return held


def only_waits_for_pools(instance: DagsterInstance, run_id: str) -> bool:
    """True when steps of ``run_id`` wait for a pool and it holds no slot: no pool step is running."""
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits or held_slots(instance).get(run_id):
        return False
    infos = storage.get_concurrency_infos(sorted(storage.get_concurrency_keys())).values()
    return any(p.run_id == run_id and p.assigned_timestamp is None for info in infos for p in info.pending_steps)


@dataclass(frozen=True)
class FreedRun:
    run_id: str
    job_name: str
    status: DagsterRunStatus | None  # when it was found; None: the run was deleted
    slots: tuple[HeldSlot, ...]
    processes: RunProcesses | None = None
    marked: DagsterRunStatus | None = None  # what it was marked, when it had not ended
    leftovers: tuple[str, ...] = ()  # processes it had started, stopped with it

    def message(self) -> str:
        slots = ", ".join(slot.describe() for slot in self.slots) or "none held"
        if self.marked is not None:
            owner = self.processes.describe() if self.processes else "unknown"
            stopped = f"; stopped what it had started: {', '.join(self.leftovers)}" if self.leftovers else ""
            return (f"dead run {self.run_id} ({self.job_name}, {self.status.value}; its process {owner} is gone): "
                    f"marked {self.marked.value} and freed its pool slots: {slots}{stopped}")
        ended = f"ended {self.status.value}" if self.status else "was deleted"
        return f"run {self.run_id} ({self.job_name}) {ended} but still held pool slots: freed {slots}"


def _end_dead_run(instance: DagsterInstance, run: DagsterRun, processes: RunProcesses,
                  slots: Sequence[HeldSlot]) -> FreedRun | None:
    current = instance.get_run_by_id(run.run_id)
    if current is None or current.status not in LIVE_STATUSES:
        return None  # it ended (or someone else ended it) since the query
    reason = (f"The process executing this run ({processes.describe()}) is gone: it was killed or crashed "
              "without ending the run. ps-pipelines marked the run ended and freed its pool slots.")
    if current.status == DagsterRunStatus.CANCELING:
        instance.report_run_canceled(current, reason)
        marked = DagsterRunStatus.CANCELED
    else:
        instance.report_run_failed(current, reason)
        marked = DagsterRunStatus.FAILURE
    instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
    return FreedRun(run.run_id, run.job_name, current.status, tuple(slots), processes, marked,
                    stop_leftover_processes(run.run_id))


def stop_leftover_processes(run_id: str) -> tuple[str, ...]:
    """Stop the processes a dead run of ``ps-pipelines run`` started and left behind."""
    leftovers = processes_with_env(RUN_ID_ENV, run_id)
    names = []
    for process in leftovers:
        with contextlib.suppress(psutil.Error):
            names.append(f"{process.name()} (pid {process.pid})")
    terminate(leftovers, timeout_seconds=5)
    return tuple(names)


def free_dead_runs(instance: DagsterInstance) -> list[FreedRun]:
    """End every run whose process is gone and free every pool slot a dead or ended run holds."""
    slots = held_slots(instance)
    local_instance = runs_stay_on_this_machine(instance)
    freed: list[FreedRun] = []
    for run in instance.get_runs(filters=RunsFilter(statuses=list(LIVE_STATUSES))):
        processes = run_processes(instance, run, local_instance=local_instance)
        if processes.alive() is not False:
            continue
        ended = _end_dead_run(instance, run, processes, slots.get(run.run_id, []))
        if ended is not None:
            freed.append(ended)
    done = {f.run_id for f in freed}
    storage = instance.event_log_storage
    queued = storage.get_concurrency_run_ids() if storage.supports_global_concurrency_limits else set()
    for run_id in sorted((set(slots) | queued) - done):
        run = instance.get_run_by_id(run_id)
        if run is not None and run.status not in FINISHED_STATUSES:
            continue
        # An ended run takes no slot again (a deleted one, None, cannot even be ended), but one
        # marked failed while a step process of it still runs (its worker was killed) keeps
        # the slot until that process is gone: it is still writing.
        if run is not None and run_processes(instance, run, local_instance=local_instance).alive():
            continue
        storage.free_concurrency_slots_for_run(run_id)
        if slots.get(run_id):
            freed.append(FreedRun(run_id, run.job_name if run else "deleted run",
                                  run.status if run else None, tuple(slots[run_id])))
    return freed


@dataclass(frozen=True)
class Holder:
    run_id: str
    slot: HeldSlot
    job_name: str
    status: str
    processes: RunProcesses
    alive: bool | None

    def describe(self) -> str:
        if self.processes.owner is None and not self.processes.steps:
            state = "its process is unknown"
        elif self.alive is None:
            state = f"its process {self.processes.describe()} is on another host"
        else:
            state = f"its process {self.processes.describe()} is {'alive' if self.alive else 'gone'}"
        return f"run {self.run_id} ({self.job_name}, {self.status}, step {self.slot.step_key}; {state})"


@dataclass(frozen=True)
class PoolWait:
    """Steps of one run waiting for a pool, and the runs holding that pool."""

    run_id: str
    pool: str
    steps: tuple[str, ...]
    holders: tuple[Holder, ...]

    def message(self) -> str:
        steps = f"{len(self.steps)} steps" if len(self.steps) > 1 else f"step {self.steps[0]}"
        held = "; ".join(f"held by {holder.describe()}" for holder in self.holders)
        return f"{steps} of run {self.run_id} waiting for pool {self.pool}: {held}"

    def key(self) -> str:
        """Changes when the holders change: a new message is worth writing only then."""
        return json.dumps(sorted((h.run_id, h.slot.step_key or "") for h in self.holders))


def pool_waits(instance: DagsterInstance, run_ids: Iterable[str] | None = None) -> list[PoolWait]:
    """Every run (or those in ``run_ids``) with steps waiting for a pool another run holds.

    Steps waiting while a step of their own run holds the pool are just taking turns: not listed.
    """
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        return []
    wanted = set(run_ids) if run_ids is not None else None
    local_instance = runs_stay_on_this_machine(instance)
    slots = held_slots(instance)
    known: dict[str, tuple[DagsterRun | None, RunProcesses, bool | None]] = {}

    def holder(run_id: str, slot: HeldSlot) -> Holder:
        if run_id not in known:
            run = instance.get_run_by_id(run_id)
            processes = run_processes(instance, run, local_instance=local_instance) if run else RunProcesses(None)
            known[run_id] = (run, processes, processes.alive())
        run, processes, alive = known[run_id]
        return Holder(run_id, slot, run.job_name if run else "deleted run",
                      run.status.value if run else "deleted", processes, alive)

    waits = []
    for pool, info in storage.get_concurrency_infos(sorted(storage.get_concurrency_keys())).items():
        waiting: dict[str, list[str]] = defaultdict(list)
        for pending in info.pending_steps:
            if pending.assigned_timestamp is None and (wanted is None or pending.run_id in wanted):
                waiting[pending.run_id].append(pending.step_key)
        for run_id, steps in sorted(waiting.items()):
            holders = tuple(holder(other, slot) for other, held in sorted(slots.items()) if other != run_id
                            for slot in held if slot.pool == pool)
            if holders:
                waits.append(PoolWait(run_id, pool, tuple(sorted(steps)), holders))
    return waits


@sensor(name=SENSOR_NAME, minimum_interval_seconds=SENSOR_INTERVAL_SECONDS,
        default_status=DefaultSensorStatus.RUNNING,
        description="Ends runs whose process is gone and frees their pool slots; tells every run "
                    "waiting for a pool which run holds it (in that run's event log).")
def free_pool_slots_of_dead_runs(context: SensorEvaluationContext) -> SkipReason:
    instance = context.instance
    freed = free_dead_runs(instance)
    for run in freed:
        context.log.warning(run.message())
    # One event per waiting run and set of holders: the run's log says who it waits for,
    # without a new line every minute.
    told: dict[str, str] = json.loads(context.cursor) if context.cursor else {}
    waits = pool_waits(instance)
    now_told = {}
    for wait in waits:
        marker = f"{wait.run_id}|{wait.pool}"
        now_told[marker] = wait.key()
        if told.get(marker) != wait.key():
            run = instance.get_run_by_id(wait.run_id)
            if run is not None:
                instance.report_engine_event(wait.message(), run)
    context.update_cursor(json.dumps(now_told, sort_keys=True))
    return SkipReason(f"freed {len(freed)} run(s) of dead processes; {len(waits)} run(s) waiting for a pool")
