"""Write-back benchmark: event-to-ERP latency with the Dagster daemon and sensors on, and posting
throughput at month-end volume.

1. Latency (``--part latency``): a sandbox at ``--scale`` (default 1) in a temporary home, the
   main job (``refresh_all``) once so the warehouse is built and the backlog posted. Then, per
   mode, on a fresh copy of that estate and a fresh Dagster home (``prepare_dagster_home``: run
   queue checked every second): each event job once in process (warm-up: the first event run
   compiles the dbt plan and fills the event store, once per install), then ``dagster-daemon
   run`` on a workspace with both code locations (the main graph and the write-back events,
   pointed at this sandbox and warehouse). Once both write-back sensors have ticked (their cursors
   start at "now"), ``--deals`` deals are won and ``--weeks`` weeks of time approved through the
   control API, interleaved one event every ``--spacing`` seconds. NetSuite is polled over
   SuiteQL until each posting is visible: the ERP project (``job`` whose externalId is the
   opportunity id) for a deal, every billable line of the week (``custcol_ps_line_key``) on an
   invoice for a week. Latency = first poll that sees it - the event's control call, split along
   the timeline of the event run that posted it (run records and event log): sensor wait (->
   run created by the tick), queue (-> dequeued), launch (-> RUN_START: process start, code
   location load), each op (STEP_START -> STEP_SUCCESS), other in run, ERP visible (run success
   -> the poll; slightly negative when the poll sees the posting before the run records success;
   large when the run that posted it is not the one the event's tick requested). Modes
   (``--modes``, both by default): ``quiet``, and ``concurrent-refresh``, where ``refresh_all
   --full-refresh`` is launched through the daemon first and runs while the events fire. CPU
   seconds of the daemon's process group (daemon and code servers, each location's runs) while
   the events run, next to the wall time.
2. Throughput (``--part throughput``): a sandbox at ``--throughput-scale`` (default 25, about
   12,000 billable invoice lines), ingestion and the dbt models the billing model needs (the
   ``post_invoices`` job without its posting step), then ``run_billing`` alone, timed, against
   the sandbox's NetSuite (5 calls in flight), and the reconciliation with what NetSuite holds.

Events are chosen so the pipeline should post them: open deals whose legal entity and currency
NetSuite knows, and weeks whose unapproved billable time lies on valid, priced invoices
(read from the bootstrapped warehouse). Anything not visible after ``--timeout`` seconds is
reported as missing, with its ledger state, and the exit code is 1.

    .venv/bin/python bench/bench_writeback.py                  # both parts, both latency modes
    .venv/bin/python bench/bench_writeback.py --part latency --scale 0.3 --deals 3 --weeks 3 --concurrent-refresh
    .venv/bin/python bench/bench_writeback.py --part throughput --throughput-scale 100 --sandbox-home /tmp/big
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import requests
import yaml

import ps_sandbox as sandbox_package
from ps_pipelines.dagster_home import prepare_dagster_home
from ps_pipelines.events.jobs import EVENT_JOBS_BY_FLOW
from ps_pipelines.events.sensors import APPROVED_WORK_SENSOR, WON_DEALS_SENSOR
from ps_pipelines.lib.sources.netsuite import IDS_PER_QUERY, NetSuiteClient, suiteql_literal
from ps_pipelines.lib.writeback.activation import ACTIVATION_FLOW
from ps_pipelines.lib.writeback.payloads import BILLING_FLOW
from ps_pipelines.local_sandbox import SandboxProcess
from ps_pipelines.transform.project import DBT_PROJECT_DIR, prepare_manifest
from ps_sandbox.context import DEFAULT_CREDENTIALS
from ps_sandbox.generate import MARKETS_BY_COUNTRY

SUMMARY: list[str] = []
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
WRITEBACK_SENSORS = (WON_DEALS_SENSOR, APPROVED_WORK_SENSOR)
EVENT_JOBS = tuple(EVENT_JOBS_BY_FLOW.values())
NETSUITE_CONCURRENCY = 5  # the sandbox's default, what the pipeline's poster is built for
STOP_GRACE_SECONDS = 20.0


def say(line: str = "") -> None:
    SUMMARY.append(line)
    print(line, flush=True)


def percentile(values: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def spread(values: Sequence[float], unit: str = "s") -> str:
    if not values:
        return "n/a"
    return (f"p50 {percentile(values, 0.5):.1f}{unit}  p95 {percentile(values, 0.95):.1f}{unit}  "
            f"max {max(values):.1f}{unit}  (n={len(values)})")


# -- processes ---------------------------------------------------------------------------------
@contextlib.contextmanager
def process_group(command: Sequence[str], log: Path, *, env: dict[str, str] | None = None,
                  cwd: Path | None = None) -> Iterator[subprocess.Popen]:
    """A child in its own session, so stopping it also stops everything it started (the daemon's
    code server and run workers), on success, error or Ctrl-C alike."""
    with log.open("ab") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=cwd,
                                   start_new_session=True)
    try:
        yield process
    finally:
        stop_group(process)


def stop_group(process: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=STOP_GRACE_SECONDS)
    # Whatever is left of the group (the leader, or children that outlived it) is killed.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)


def run_to_completion(command: Sequence[str], log: Path, *, timeout: float) -> int:
    with process_group(command, log) as process:
        try:
            return process.wait(timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            raise SystemExit(f"{' '.join(command[:4])} did not finish within {timeout:.0f}s (log {log})") from exc


def sandbox_copy(template_home: str | None, scale: float, seed: int, work: Path) -> Path:
    """A private copy of a generated sandbox database (posting changes the sandbox, so a shared
    template stays pristine); the template is generated first when it does not exist yet."""
    target = work / f"sandbox-scale{scale:g}-seed{seed}.sqlite"
    if template_home is None:
        return target  # generated on first use by the sandbox itself
    template = Path(template_home) / target.name
    if not template.exists():
        template.parent.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        with SandboxProcess(template, scale=scale, seed=seed):
            pass
        print(f"generated the sandbox template {template} in {time.perf_counter() - started:.0f}s", flush=True)
    elif template.stat().st_mtime < newest_generator_change():
        print(f"WARNING: {template} is older than the sandbox's code; delete it to generate it again", flush=True)
    copy_sqlite(template, target)
    return target


def copy_sqlite(source_path: Path, target: Path) -> None:
    """SQLite's backup API: consistent even when the source has a WAL beside it."""
    with contextlib.closing(sqlite3.connect(source_path)) as source, \
            contextlib.closing(sqlite3.connect(target)) as copy:
        source.backup(copy)


def newest_generator_change() -> float:
    """When the sandbox's code last changed: a template generated before may hold other data."""
    return max(path.stat().st_mtime for path in Path(sandbox_package.__file__).parent.rglob("*.py"))


def control(url: str, path: str, payload: dict | None = None, method: str = "POST") -> dict:
    response = requests.request(method, f"{url}/_sandbox/{path}", json=payload or {}, timeout=60)
    response.raise_for_status()
    return response.json()


# -- latency part: choosing events the pipeline should post -------------------------------------
@dataclass
class Event:
    kind: str  # "deal" or "week"
    label: str
    keys: set[str] = field(default_factory=set)  # what must be visible in NetSuite
    sent_at: float = 0.0
    visible_at: float | None = None

    @property
    def latency(self) -> float | None:
        return None if self.visible_at is None else self.visible_at - self.sent_at


def pick_deals(con: duckdb.DuckDBPyConnection, count: int) -> list[str]:
    """Open deals that pass activation once won: a live account, a legal entity that is a NetSuite
    subsidiary, a currency NetSuite knows, a tax code (the sandbox fills it from the market)."""
    rows = con.execute("""
        SELECT o.opportunity_id
        FROM staging.stg_salesforce__opportunities o
        JOIN staging.stg_salesforce__accounts a ON a.account_id = o.account_id AND NOT a.is_deleted
        JOIN staging.stg_netsuite__subsidiaries s
          ON s.subsidiary_name = coalesce(o.legal_entity_name, a.legal_entity_name)
        JOIN staging.stg_netsuite__currencies c ON c.currency_code = o.currency_code
        WHERE NOT o.is_closed AND NOT o.is_deleted
          AND (o.tax_code IS NOT NULL OR list_contains(?, a.billing_country))
        ORDER BY o.opportunity_id LIMIT ?""", [sorted(MARKETS_BY_COUNTRY), count]).fetchall()
    return [row[0] for row in rows]


# A week qualifies when its unapproved billable time falls on project months that already have a
# valid invoice of ours (so no manual invoice covers them and the project is set up for billing)
# and every such entry is priced and positive (one bad line would hold the whole invoice back).
_WEEKS_SQL = """
WITH open_periods AS (
    SELECT DISTINCT project_key, billing_period_start
    FROM outbound.erp_billing_transactions
    WHERE source_type = 'time_entry' AND is_invoice_valid
),
pending AS (
    SELECT t.kantata_user_id AS user_id, CAST(date_trunc('week', t.work_date) AS DATE) AS week_start,
           t.time_entry_id, coalesce(t.bill_rate, 0) > 0 AND t.hours > 0 AS is_priced
    FROM marts.fct_time_entries t
    JOIN open_periods p
      ON p.project_key = t.project_key AND p.billing_period_start = date_trunc('month', t.work_date)
    WHERE t.is_billable AND NOT t.is_approved AND NOT t.is_deleted
      AND coalesce(t.billing_model, 'Time and Materials') = 'Time and Materials'
),
weeks AS (
    SELECT user_id, week_start, list(time_entry_id ORDER BY time_entry_id) AS entry_ids
    FROM pending GROUP BY ALL HAVING bool_and(is_priced)
)
SELECT user_id, week_start, entry_ids
FROM weeks
-- one week per person in turn, newest first, so the events spread over people and projects
ORDER BY row_number() OVER (PARTITION BY user_id ORDER BY week_start DESC), user_id
LIMIT ?
"""


def pick_weeks(con: duckdb.DuckDBPyConnection, count: int) -> list[tuple[str, str, list[str]]]:
    return [(user, week.isoformat(), ids) for user, week, ids in con.execute(_WEEKS_SQL, [count]).fetchall()]


def line_key(time_entry_id: str) -> str:
    return f"psp:inl:time_entry:{time_entry_id}"  # dbt macro psp_line_external_id


# -- latency part: the daemon -----------------------------------------------------------------
MAIN_LOCATION, EVENTS_LOCATION = "ps_pipelines_bench", "ps_pipelines_bench_events"
MAIN_FILE, EVENTS_FILE = "bench_location.py", "bench_events.py"
CODE_LOCATIONS = {
    MAIN_FILE: '''\
"""Written by bench/bench_writeback.py: the main graph on the benchmark's sandbox and warehouse."""
from ps_pipelines.definitions import build_definitions

defs = build_definitions("local", sandbox_url={url!r}, warehouse_path={warehouse!r})
''',
    EVENTS_FILE: '''\
"""Written by bench/bench_writeback.py: the write-back events on the benchmark's sandbox and warehouse."""
from ps_pipelines.events.definitions import build_event_definitions

defs = build_event_definitions("local", sandbox_url={url!r}, warehouse_path={warehouse!r},
                               sensor_interval_seconds={interval})
''',
}
WORKSPACE = f"""\
load_from:
  - python_file:
      relative_path: {MAIN_FILE}
      location_name: {MAIN_LOCATION}
  - python_file:
      relative_path: {EVENTS_FILE}
      location_name: {EVENTS_LOCATION}
"""


def write_workspace(home: Path, url: str, warehouse: Path, interval: int) -> Path:
    """Both code locations, as in the repository's workspace.yaml, on this sandbox and warehouse."""
    for name, template in CODE_LOCATIONS.items():
        (home / name).write_text(template.format(url=url, warehouse=str(warehouse), interval=interval))
    workspace = home / "workspace.yaml"
    workspace.write_text(WORKSPACE)
    return workspace


def dagster_cli(name: str) -> str:
    path = Path(sys.executable).with_name(name)
    if not path.exists():
        raise SystemExit(f"{name} not found beside {sys.executable}")
    return str(path)


def wait_for_sensor_ticks(instance, daemon: subprocess.Popen, timeout: float) -> float:
    """Seconds until both write-back sensors stored a cursor (their first tick starts it at "now")."""
    from dagster._core.definitions.run_request import InstigatorType

    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        if daemon.poll() is not None:
            raise SystemExit(f"dagster-daemon exited with code {daemon.returncode} before the sensors ticked")
        cursors = {state.instigator_name: getattr(state.instigator_data, "cursor", None)
                   for state in instance.all_instigator_state(instigator_type=InstigatorType.SENSOR)}
        if all(cursors.get(name) for name in WRITEBACK_SENSORS):
            return time.perf_counter() - started
        time.sleep(1.0)
    raise SystemExit(f"the write-back sensors did not tick within {timeout:.0f}s")


def warm_event_path(url: str, warehouse: Path) -> list[str]:
    """Each event job once in this process, on the instance and warehouse the daemon uses: the
    first event run of an install compiles the dbt plan, fills the event store and catches the
    ledger up (tens of seconds, once), which is not what an event costs afterwards."""
    from dagster import DagsterInstance

    from ps_pipelines.events.definitions import build_event_definitions

    defs = build_event_definitions("local", sandbox_url=url, warehouse_path=str(warehouse))
    lines = []
    with DagsterInstance.get() as instance:
        for job_name in EVENT_JOBS:
            started = time.perf_counter()
            result = defs.resolve_job_def(job_name).execute_in_process(
                instance=instance, run_config=QUIET, tags={"ps/bench": "warm-up"}, raise_on_error=False)
            if not result.success:
                raise SystemExit(f"warming {job_name} failed (run {result.run_id})")
            lines.append(f"{job_name} {time.perf_counter() - started:.0f}s")
    return lines


def launch_refresh(workspace: Path, log: Path) -> str:
    """``refresh_all`` with every ingestion ignoring its high-water mark (``ps-pipelines run
    --full-refresh``), submitted to the instance's run queue, so the daemon starts it as it would
    a run launched from the UI."""
    from ps_pipelines.runner import _op_config

    run_id = str(uuid.uuid4())
    command = [dagster_cli("dagster"), "job", "launch", "-w", str(workspace), "-l", MAIN_LOCATION,
               "-j", "refresh_all", "--run-id", run_id, "--tags", json.dumps({"ps/bench": "concurrent-refresh"}),
               "--config-json", json.dumps(_op_config(full_refresh=True))]
    if run_to_completion(command, log, timeout=600) != 0:
        raise SystemExit(f"launching refresh_all failed; see {log}")
    return run_id


def wait_for_run_to_work(instance, run_id: str, timeout: float) -> float:
    """Seconds until the run's first step started (it holds its pool slot then)."""
    from dagster import DagsterEventType

    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        if instance.all_logs(run_id, of_type=DagsterEventType.STEP_START):
            return time.perf_counter() - started
        run = instance.get_run_by_id(run_id)
        if run is not None and run.is_finished:
            raise SystemExit(f"refresh_all run {run_id} ended ({run.status.value}) before any step started")
        time.sleep(1.0)
    raise SystemExit(f"refresh_all run {run_id} started no step within {timeout:.0f}s")


# -- latency part: CPU of the daemon's process group -----------------------------------------------
@dataclass(frozen=True)
class ProcessTimes:
    pid: int
    ppid: int
    own: float  # user + system seconds of the process itself
    reaped: float  # of its children that ended and were waited for
    cmdline: str


def group_processes(session_id: int) -> list[ProcessTimes]:
    """Every process of the session (the daemon started in its own), from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue  # ended meanwhile
        fields = stat[stat.rindex(")") + 2:].split()  # after "pid (comm) "
        if int(fields[3]) != session_id:
            continue
        utime, stime, cutime, cstime = (int(value) / tick for value in fields[11:15])
        found.append(ProcessTimes(int(entry.name), int(fields[1]), utime + stime, cutime + cstime, cmdline))
    return found


def cpu_by_role(session_id: int) -> dict[str, float]:
    """CPU seconds so far of the daemon's group: the daemon and its code servers (sensor ticks,
    run queue), and the runs of each location (run workers, alive or reaped by their code server).

    A process's time moves to its parent's "reaped" times when it ends, so one snapshot sums
    every process the group ever ran, each once."""
    processes = group_processes(session_id)
    by_pid = {p.pid: p for p in processes}
    roles = {"daemon + code servers": 0.0, f"{EVENTS_LOCATION} runs": 0.0, f"{MAIN_LOCATION} runs": 0.0}

    def location_of(process: ProcessTimes | None) -> str | None:
        while process is not None:
            if EVENTS_FILE in process.cmdline:
                return EVENTS_LOCATION
            if MAIN_FILE in process.cmdline:
                return MAIN_LOCATION
            process = by_pid.get(process.ppid)
        return None

    for process in processes:
        own_location = EVENTS_LOCATION if EVENTS_FILE in process.cmdline else \
            MAIN_LOCATION if MAIN_FILE in process.cmdline else None
        location = location_of(process)
        if location is None:
            roles["daemon + code servers"] += process.own + process.reaped
        elif own_location is not None:  # a code server: what it reaped were its runs
            roles["daemon + code servers"] += process.own
            roles[f"{location} runs"] += process.reaped
        else:
            roles[f"{location} runs"] += process.own + process.reaped
    return roles


# -- latency part: events and visibility --------------------------------------------------------
class ErpWatcher:
    """Polls NetSuite's SuiteQL for the postings the events should produce."""

    def __init__(self, url: str) -> None:
        # One call at a time: the observer must not take the pipeline's concurrency slots.
        self.client = NetSuiteClient(url, **DEFAULT_CREDENTIALS["netsuite"], max_in_flight=1)

    def _values(self, table: str, column: str, wanted: Sequence[str]) -> set[str]:
        found: set[str] = set()
        for start in range(0, len(wanted), IDS_PER_QUERY):
            chunk = ", ".join(suiteql_literal(value) for value in wanted[start:start + IDS_PER_QUERY])
            for page in self.client.suiteql(f"SELECT {column} FROM {table} WHERE {column} IN ({chunk})"):
                found.update(str(row[column]) for row in page)
        return found

    def mark_visible(self, events: Sequence[Event]) -> list[Event]:
        """Stamp the events whose postings are all in NetSuite now; returns them."""
        pending = [event for event in events if event.visible_at is None]
        deals = [key for event in pending if event.kind == "deal" for key in event.keys]
        lines = [key for event in pending if event.kind == "week" for key in event.keys]
        found = (self._values("job", "externalid", deals) if deals else set()) | \
                (self._values("transactionline", "custcol_ps_line_key", lines) if lines else set())
        now = time.time()
        newly = [event for event in pending if event.keys <= found]
        for event in newly:
            event.visible_at = now
        return newly


def fire(url: str, plan: tuple[str, object]) -> Event:
    kind, target = plan
    if kind == "deal":
        answer = control(url, "events/deal-won", {"opportunity_id": target})
        event = Event("deal", f"deal {answer['opportunity_id']}", {answer["opportunity_id"]})
    else:
        user, week, entry_ids = target
        answer = control(url, "events/approve-week", {"user_id": user, "week_start": week})
        approved = set(answer["approved"])
        # Only the entries chosen as billable must reach an invoice; the rest of the week is approved too.
        event = Event("week", f"week {week} of user {user}", {line_key(i) for i in entry_ids if i in approved})
    event.sent_at = time.time()
    return event


def interleave(deals: Sequence[str], weeks: Sequence[tuple]) -> list[tuple[str, object]]:
    plan: list[tuple[str, object]] = []
    for index in range(max(len(deals), len(weeks))):
        plan += [("deal", deals[index])] if index < len(deals) else []
        plan += [("week", weeks[index])] if index < len(weeks) else []
    return plan


def drive_events(url: str, plan: Sequence[tuple[str, object]], spacing: float, timeout: float,
                 poll_seconds: float) -> list[Event]:
    """Fire the plan one event per ``spacing`` seconds while polling NetSuite; returns when every
    event is visible or has waited ``timeout`` seconds."""
    watcher, events = ErpWatcher(url), []
    next_fire = time.time()
    while True:
        if len(events) < len(plan) and time.time() >= next_fire:
            event = fire(url, plan[len(events)])
            events.append(event)
            print(f"  {time.strftime('%H:%M:%S')} {event.label}: {len(event.keys)} posting key(s) to watch",
                  flush=True)
            next_fire += spacing
        for event in watcher.mark_visible([e for e in events if e.keys]):
            print(f"  {time.strftime('%H:%M:%S')} visible in NetSuite after {event.latency:6.1f}s: {event.label}",
                  flush=True)
        waiting = [e for e in events if e.visible_at is None and e.keys and time.time() - e.sent_at < timeout]
        if len(events) == len(plan) and not waiting:
            return events
        time.sleep(max(0.0, min(poll_seconds, next_fire - time.time())) if len(events) < len(plan)
                   else poll_seconds)


# -- latency part: where each event's seconds went (Dagster's run records and event log) ---------
STEP_NAMES = ("ingest_sources", "build_outbound", "post")
COMPONENTS = ("sensor wait", "queue", "launch", *STEP_NAMES, "other in run", "ERP visible")
FLOW_OF_KIND = {"deal": ACTIVATION_FLOW, "week": BILLING_FLOW}


@dataclass
class RunTimeline:
    run_id: str
    job_name: str
    status: str
    created: float
    dequeued: float | None = None
    started: float | None = None  # RUN_START: the run worker loaded the code location
    finished: float | None = None  # RUN_SUCCESS
    steps: dict[str, tuple[float, float]] = field(default_factory=dict)  # op -> (STEP_START, STEP_SUCCESS)


def run_timelines(instance, job_names: Sequence[str], since: datetime) -> list[RunTimeline]:
    from dagster import DagsterEventType, RunsFilter

    timelines = []
    for record in instance.get_run_records(filters=RunsFilter(job_name=None, created_after=since)):
        run = record.dagster_run
        if run.job_name not in job_names:
            continue
        timeline = RunTimeline(run.run_id, run.job_name, run.status.value, record.create_timestamp.timestamp())
        step_starts: dict[str, float] = {}
        for entry in instance.all_logs(run.run_id):
            event = entry.dagster_event
            if event is None:
                continue
            kind = event.event_type
            if kind in (DagsterEventType.RUN_DEQUEUED, DagsterEventType.RUN_STARTING) and timeline.dequeued is None:
                timeline.dequeued = entry.timestamp
            elif kind == DagsterEventType.RUN_START:
                timeline.started = entry.timestamp
            elif kind == DagsterEventType.RUN_SUCCESS:
                timeline.finished = entry.timestamp
            elif kind == DagsterEventType.STEP_START:
                step_starts[event.step_key] = entry.timestamp
            elif kind == DagsterEventType.STEP_SUCCESS and event.step_key in step_starts:
                timeline.steps[event.step_key] = (step_starts[event.step_key], entry.timestamp)
        timelines.append(timeline)
    return timelines


def wait_for_event_runs(instance, since: datetime, timeout: float) -> None:
    """Until every event run has finished: the one that posted an event may still be recording
    its success when the event is seen in NetSuite."""
    from dagster import RunsFilter

    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        runs = instance.get_runs(filters=RunsFilter(job_name=None, created_after=since))
        if not any(run.job_name in EVENT_JOBS and not run.is_finished for run in runs):
            return
        time.sleep(1.0)


def posting_run(event: Event, timelines: Sequence[RunTimeline]) -> RunTimeline | None:
    """The event job run that made the event visible: of the flow's successful runs whose posting
    step started before the first poll that saw it, the latest (an earlier one posted before
    the event, or its posting would already have been seen)."""
    flow = FLOW_OF_KIND[event.kind]
    post_step = f"{flow}_post"
    candidates = [t for t in timelines if t.job_name == EVENT_JOBS_BY_FLOW[flow] and t.finished
                  and post_step in t.steps and t.steps[post_step][0] <= (event.visible_at or 0)]
    return max(candidates, key=lambda t: t.steps[post_step][0], default=None)


def latency_components(event: Event, run: RunTimeline) -> dict[str, float]:
    """The event's latency split along the run's timeline; the parts add up to the latency. Marks
    before the event (a run already queued or starting when it was fired) count from the event."""
    flow = FLOW_OF_KIND[event.kind]

    def at(moment: float | None, fallback: float) -> float:
        return max(event.sent_at, fallback if moment is None else moment)

    created = at(run.created, event.sent_at)
    dequeued = at(run.dequeued, created)
    started = at(run.started, dequeued)
    finished = at(run.finished, started)
    parts = {"sensor wait": created - event.sent_at, "queue": dequeued - created, "launch": started - dequeued}
    for step in STEP_NAMES:
        begin, end = run.steps.get(f"{flow}_{step}", (started, started))
        parts[step] = at(end, started) - at(begin, started)
    parts["other in run"] = finished - started - sum(parts[step] for step in STEP_NAMES)
    parts["ERP visible"] = (event.visible_at or finished) - finished
    return parts


def report_events(events: Sequence[Event], timelines: Sequence[RunTimeline]) -> dict[str, dict[str, list[float]]]:
    """One line per event; returns each flow's totals and components for the summary table."""
    header = f"    {'event':<40} {'run':<8} {'total':>6} " + " ".join(f"{name:>12}" for name in COMPONENTS)
    say(header)
    figures: dict[str, dict[str, list[float]]] = {}
    for event in events:
        if event.latency is None:
            say(f"    {event.label:<40} {'-':<8} {'not visible' if event.keys else 'nothing to post'}")
            continue
        run = posting_run(event, timelines)
        if run is None:
            say(f"    {event.label:<40} {'?':<8} {event.latency:6.1f}  "
                "(no successful event run posted before it was seen)")
            continue
        parts = latency_components(event, run)
        flow = figures.setdefault(event.kind, {name: [] for name in ("total", *COMPONENTS)})
        flow["total"].append(event.latency)
        for name, seconds in parts.items():
            flow[name].append(seconds)
        say(f"    {event.label:<40} {run.run_id[:8]:<8} {event.latency:6.1f} "
            + " ".join(f"{parts[name]:12.1f}" for name in COMPONENTS))
    return figures


def latency_table(title: str, figures: dict[str, dict[str, list[float]]]) -> list[str]:
    lines = [f"  {title}",
             f"    {'flow':<26} {'':<4} {'total':>6} " + " ".join(f"{name:>12}" for name in COMPONENTS)]
    for kind, label in (("deal", "deal won -> ERP project"), ("week", "week approved -> invoice")):
        values = figures.get(kind)
        if not values or not values["total"]:
            lines.append(f"    {label:<26} no event measured")
            continue
        for stat, q in (("p50", 0.5), ("p95", 0.95), ("max", 1.0)):
            lines.append(f"    {label if stat == 'p50' else '':<26} {stat:<4} {percentile(values['total'], q):6.1f} "
                         + " ".join(f"{percentile(values[name], q):12.1f}" for name in COMPONENTS))
        lines.append(f"    {'':<26} n={len(values['total'])}")
    return lines


def report_missing(events: Sequence[Event]) -> list[Event]:
    missing = [e for e in events if e.keys and e.visible_at is None]
    skipped = [e for e in events if not e.keys]
    say(f"  events: {len(events)} fired, {sum(e.visible_at is not None for e in events)} visible, "
        f"{len(missing)} MISSING, {len(skipped)} with nothing to post")
    return missing


def report_runs(instance, since: datetime) -> None:
    from dagster import RunsFilter

    records = instance.get_run_records(filters=RunsFilter(created_after=since))
    by_job: dict[str, list] = {}
    for record in records:
        by_job.setdefault(record.dagster_run.job_name, []).append(record)
    say(f"  runs created since the daemon started: {len(records)}")
    for job, group in sorted(by_job.items()):
        finished = [r.end_time - r.start_time for r in group if r.start_time and r.end_time]
        waits = [r.start_time - r.create_timestamp.timestamp() for r in group if r.start_time]
        statuses: dict[str, int] = {}
        for record in group:
            statuses[record.dagster_run.status.value] = statuses.get(record.dagster_run.status.value, 0) + 1
        say(f"    {job:<26} {len(group):>3} run(s) {statuses}")
        say(f"    {'':<26} duration {spread(finished)}")
        say(f"    {'':<26} created -> started {spread(waits)}")


def explain_missing(warehouse: Path, missing: Sequence[Event]) -> None:
    """Where each missing posting stands in the ledger and the event store (read after the
    daemon stopped)."""
    from ps_pipelines.lib.writeback.event_path import EventStore
    from ps_pipelines.lib.writeback.ledger_store import ledger_path_for

    if not missing:
        return
    with duckdb.connect(str(EventStore.beside(warehouse).path), read_only=True) as con:
        con.execute(f"ATTACH {suiteql_literal(str(ledger_path_for(warehouse)))} AS ledger (READ_ONLY)")
        for event in missing:
            keys = sorted(event.keys)
            if event.kind == "deal":
                rows = con.execute("SELECT outbox_key, state, attempts, last_error FROM ledger.ops.outbox "
                                   "WHERE external_id = ?", [keys[0]]).fetchall()
            else:
                rows = con.execute("""
                    SELECT DISTINCT o.outbox_key, o.state, o.attempts, o.last_error
                    FROM outbound.erp_billing_transactions b
                    JOIN ledger.ops.outbox o ON o.external_id = b.invoice_external_id
                    WHERE b.line_external_id IN (SELECT unnest(?))""", [keys]).fetchall()
            say(f"  MISSING {event.label}: ledger {rows or 'has no row for it (not in the outbound model yet)'}")


# -- latency part ----------------------------------------------------------------------------------
MODES = ("quiet", "concurrent-refresh")
MODE_TITLES = {"quiet": "quiet (nothing else launched)",
               "concurrent-refresh": "with a concurrent full refresh (refresh_all --full-refresh)"}


def bootstrap(home: Path, url: str) -> float:
    """The main job once (``ps-pipelines run``): warehouse built, historical backlog posted."""
    log = home / "bootstrap.log"
    started = time.perf_counter()
    code = run_to_completion([sys.executable, "-m", "ps_pipelines.cli", "run", "--home", str(home),
                              "--sandbox-url", url], log, timeout=1800)
    if code != 0:
        raise SystemExit(f"the bootstrap main job failed (exit {code}); see {log}")
    return time.perf_counter() - started


def copy_bootstrapped(source: Path, target: Path) -> None:
    """The sandbox's database and the warehouse (with its ledger) as the bootstrap left them, so
    each mode starts from the same estate and leaves nothing behind for the next."""
    target.mkdir(parents=True, exist_ok=True)
    copy_sqlite(source / "sandbox.sqlite", target / "sandbox.sqlite")
    for path in source.glob("warehouse*.duckdb"):
        shutil.copy2(path, target / path.name)


@dataclass
class ModeResult:
    ok: bool
    table: list[str]


def measure_mode(args: argparse.Namespace, home: Path, mode: str, plan: Sequence[tuple[str, object]]) -> ModeResult:
    from dagster import DagsterInstance

    say(f"-- {MODE_TITLES[mode]} (home {home}) --")
    with SandboxProcess(home / "sandbox.sqlite", scale=args.scale, seed=args.seed) as sandbox:
        # The poller is one more NetSuite client: one more slot, so it never throttles the poster.
        control(sandbox.url, "limits", {"netsuite_concurrency_limit": NETSUITE_CONCURRENCY + 1}, method="PUT")
        warehouse = (home / "warehouse.duckdb").resolve()
        workspace = write_workspace(home, sandbox.url, warehouse, args.sensor_interval)
        prepare_dagster_home(home)  # the instance the daemon reads: run queue checked every second
        say(f"  warm-up, each event job once in process (dbt plan compiled, event store filled, ledger "
            f"caught up; not measured): {', '.join(warm_event_path(sandbox.url, warehouse))}")
        since = datetime.now(UTC)
        with DagsterInstance.get() as instance, \
                process_group([dagster_cli("dagster-daemon"), "run", "-w", str(workspace)], home / "daemon.log",
                              cwd=home) as daemon:
            say(f"  dagster-daemon up (both code locations), write-back sensors ticked after "
                f"{wait_for_sensor_ticks(instance, daemon, args.timeout):.0f}s (log {home / 'daemon.log'})")
            refresh_id = None
            if mode == "concurrent-refresh":
                refresh_id = launch_refresh(workspace, home / "launch.log")
                say(f"  refresh_all run {refresh_id[:8]} launched; its first step started after "
                    f"{wait_for_run_to_work(instance, refresh_id, args.timeout):.0f}s")
            cpu_before, clock = cpu_by_role(daemon.pid), time.perf_counter()
            events = drive_events(sandbox.url, plan, args.spacing, args.timeout, args.poll_interval)
            wall = time.perf_counter() - clock
            cpu = {role: seconds - cpu_before[role] for role, seconds in cpu_by_role(daemon.pid).items()}
            wait_for_event_runs(instance, since, args.timeout)
            figures = report_events(events, run_timelines(instance, EVENT_JOBS, since))
            missing = report_missing(events)
            if refresh_id is not None:
                report_overlap(instance, refresh_id, events)
            say(f"  while the events ran: wall {wall:.0f}s, CPU " + ", ".join(f"{role} {seconds:.1f}s"
                                                                          for role, seconds in cpu.items()))
            report_runs(instance, since)
    explain_missing(warehouse, missing)
    return ModeResult(not missing, latency_table(MODE_TITLES[mode], figures))


def report_overlap(instance, refresh_id: str, events: Sequence[Event]) -> None:
    record = instance.get_run_record_by_id(refresh_id)
    run = record.dagster_run
    end = record.end_time or float("inf")
    during = sum(record.start_time is not None and record.start_time <= e.sent_at <= end for e in events)
    lasted = (f" after {record.end_time - record.start_time:.0f}s" if record.end_time and record.start_time
              else " (stopped with the daemon)")
    say(f"  refresh_all {run.status.value}{lasted}; {during} of {len(events)} events fired while it ran")


def latency_part(args: argparse.Namespace, home: Path) -> bool:
    say(f"== latency: {args.deals} deals won + {args.weeks} weeks approved, sandbox scale {args.scale:g}, "
        f"sensor interval {args.sensor_interval}s ==")
    base = home / "bootstrap"
    base.mkdir()
    with SandboxProcess(base / "sandbox.sqlite", scale=args.scale, seed=args.seed) as sandbox:
        say(f"  bootstrap main job (refresh_all) {bootstrap(base, sandbox.url):.0f}s (log {base / 'bootstrap.log'})")
    with duckdb.connect(str(base / "warehouse.duckdb"), read_only=True) as con:
        deals, weeks = pick_deals(con, args.deals), pick_weeks(con, args.weeks)
    if len(deals) < args.deals or len(weeks) < args.weeks:
        say(f"  only {len(deals)} open deals and {len(weeks)} billable weeks qualify at this scale")
    ok, tables = len(deals) == args.deals and len(weeks) == args.weeks, []
    for mode in args.modes:
        copy_bootstrapped(base, home / mode)
        result = measure_mode(args, home / mode, mode, interleave(deals, weeks))
        ok &= result.ok
        tables += result.table
    say("  latency (s) per flow, event's control call -> first NetSuite poll that sees it; components from "
        "the posting run's records and event log")
    for line in tables:
        say(line)
    return ok


# -- throughput part -----------------------------------------------------------------------------
def build_billing_inputs(url: str, warehouse: Path) -> float:
    """Ingestion and the dbt models up to ``outbound.erp_billing_transactions``, as a posting run
    builds them (``post_invoices`` without its posting step: dbt tests left out, the raw tables'
    contract checks kept)."""
    from dagster import AssetSelection, DagsterInstance

    from ps_pipelines.definitions import build_definitions
    from ps_pipelines.defs.writeback.assets import BILLING_TRANSACTIONS_KEY
    from ps_pipelines.defs.writeback.jobs import DBT_TESTS

    defs = build_definitions("local", sandbox_url=url, warehouse_path=str(warehouse))
    graph = defs.resolve_asset_graph()
    selection = (AssetSelection.assets(BILLING_TRANSACTIONS_KEY).upstream()
                 - DBT_TESTS)
    keys = {key for key in selection.resolve(graph) if graph.get(key).is_materializable}
    job = defs.resolve_job_def("post_invoices").get_subset(asset_selection=keys,
                                                          asset_check_selection=selection.resolve_checks(graph))
    started = time.perf_counter()
    with DagsterInstance.ephemeral() as instance:
        result = job.execute_in_process(instance=instance, run_config=QUIET, raise_on_error=False)
    if not result.success:
        raise SystemExit(f"building the billing inputs failed (run {result.run_id})")
    return time.perf_counter() - started


def billing_start_date() -> date:
    """The pipeline's go-live (dbt var): reconciliation starts there, as invoices carrying our prefix
    from before it (the sandbox generates a few) were never in any ledger."""
    project = yaml.safe_load((DBT_PROJECT_DIR / "dbt_project.yml").read_text())
    return date.fromisoformat(project["vars"]["billing_start_date"])


def pending_volume(con: duckdb.DuckDBPyConnection) -> tuple[int, int, int, int]:
    """(lines on valid invoices, those invoices, lines of them already in NetSuite, lines held back
    on invalid invoices) in the outbound model: what a month-end posting run sends."""
    return con.execute("""
        SELECT count(*) FILTER (WHERE is_invoice_valid),
               count(DISTINCT invoice_external_id) FILTER (WHERE is_invoice_valid),
               count(*) FILTER (WHERE is_invoice_valid AND is_posted_in_erp),
               count(*) FILTER (WHERE NOT is_invoice_valid)
        FROM outbound.erp_billing_transactions""").fetchone()


def report_reconciliation(reconciliation, seconds: float) -> bool:
    """Print the reconciliation; true when what this run posted is exactly in NetSuite.

    Invoices with our prefix that no ledger knows (``unknown_in_erp``) predate this run, so they
    say nothing about the posting measured here, but they do fail the ``reconciled_with_erp``
    asset check: they are reported, not counted against the posting.
    """
    own = {"missing in NetSuite": reconciliation.missing_in_erp,
           "unconfirmed in the ledger": reconciliation.unconfirmed_in_erp,
           "mismatched": reconciliation.mismatched}
    say(f"  reconciliation (invoices from {billing_start_date()}) {'passed' if reconciliation.passed else 'FAILED'} "
        f"in {seconds:.1f}s: ledger {reconciliation.ledger_invoices:,} invoices, NetSuite "
        f"{reconciliation.erp_invoices:,}; " + ", ".join(f"{name} {len(found)}" for name, found in own.items()))
    unknown = reconciliation.unknown_in_erp
    if unknown:
        say(f"  NOTE: {len(unknown)} invoice(s) in NetSuite carry our prefix but were never in a ledger "
            f"(generated history, e.g. {', '.join(unknown[:3])}); with them {len(reconciliation.groups)} "
            f"subsidiary/currency/period group(s) differ, so the reconciled_with_erp check fails on this data")
    return not any(own.values())


def throughput_part(args: argparse.Namespace, work: Path) -> bool:
    from ps_pipelines.lib.warehouse.warehouse import Warehouse
    from ps_pipelines.lib.writeback import Targets, reconcile_invoices, run_billing
    from ps_pipelines.lib.writeback.ledger_store import posting_ledger
    from ps_pipelines.resources import NetSuiteResource

    say(f"== throughput: month-end posting at sandbox scale {args.throughput_scale:g} ==")
    started = time.perf_counter()
    state = sandbox_copy(args.sandbox_home, args.throughput_scale, args.seed, work)
    warehouse = work / "warehouse.duckdb"
    with SandboxProcess(state, scale=args.throughput_scale, seed=args.seed) as sandbox:
        say(f"  sandbox ready in {time.perf_counter() - started:.0f}s; ingestion + dbt models "
            f"{build_billing_inputs(sandbox.url, warehouse):.0f}s")
        # The resource's client: the same timeouts, retries and 5 calls in flight as a posting run.
        netsuite = NetSuiteResource(base_url=sandbox.url, **DEFAULT_CREDENTIALS["netsuite"]).client()
        with Warehouse(warehouse).connect() as con, posting_ledger(con, Warehouse(warehouse).ledger) as ledger:
            lines, invoices, in_erp, invalid = pending_volume(con)
            say(f"  to post: {lines:,} invoice lines on {invoices:,} invoices ({in_erp:,} of the lines already "
                f"in NetSuite; {invalid:,} lines on invalid invoices are held back)")
            clock = time.perf_counter()
            summary = run_billing(con, Targets(netsuite=netsuite), run_id="bench-throughput", ledger=ledger)
            seconds = time.perf_counter() - clock
            posted_lines, posted = ledger.execute(
                "SELECT coalesce(sum(line_count), 0), count(*) FROM ops.outbox "
                "WHERE flow = 'billing' AND posted_run_id = 'bench-throughput'").fetchone()
            clock = time.perf_counter()
            reconciliation = reconcile_invoices(ledger, netsuite, from_date=billing_start_date())
            reconcile_seconds = time.perf_counter() - clock
    say(f"  posted {posted:,} invoices with {posted_lines:,} lines in {seconds:.1f}s (enqueue + validation + "
        f"posting; the poster alone {summary.seconds:.1f}s)")
    say(f"  {posted / seconds:,.1f} invoices/s  {posted_lines / seconds:,.0f} lines/s  "
        f"requests {summary.requests:,}  retries {summary.retries}  throttled (429) {summary.throttled}  "
        f"failed {summary.failed_retryable}  dead {summary.dead}  blocked {summary.blocked}")
    posting_sound = report_reconciliation(reconciliation, reconcile_seconds)
    enough = posted_lines >= args.min_lines
    if not enough:
        say(f"  BELOW month-end volume: {posted_lines:,} lines < {args.min_lines:,}; raise --throughput-scale")
    return enough and summary.ok and not summary.blocked and posted == invoices and posting_sound


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", choices=("both", "latency", "throughput"), default="both")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--scale", type=float, default=1.0, help="Sandbox scale of the latency part.")
    parser.add_argument("--deals", type=int, default=20)
    parser.add_argument("--weeks", type=int, default=20)
    parser.add_argument("--spacing", type=float, default=1.5, help="Seconds between two events.")
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES),
                        help="Latency modes, each on a fresh copy of the bootstrapped estate.")
    parser.add_argument("--concurrent-refresh", dest="modes", action="store_const", const=["concurrent-refresh"],
                        help="Only the mode with a full refresh running while the events fire.")
    parser.add_argument("--sensor-interval", type=int, default=5, help="Write-back sensors' minimum interval.")
    parser.add_argument("--timeout", type=float, default=300.0, help="Seconds an event may take to be visible.")
    parser.add_argument("--poll-interval", type=float, default=0.5, help="Seconds between two NetSuite polls.")
    parser.add_argument("--throughput-scale", type=float, default=25.0)
    parser.add_argument("--min-lines", type=int, default=10_000, help="Month-end volume the throughput part needs.")
    parser.add_argument("--sandbox-home", default=None,
                        help="Folder of generated sandbox databases (sandbox-scale<S>-seed<N>.sqlite) copied "
                             "for the throughput part; generated there when missing.")
    parser.add_argument("--keep", action="store_true", help="Keep the temporary homes (logs, warehouses).")
    args = parser.parse_args()

    # A plain kill (timeout, CI) unwinds like Ctrl-C, so the daemon's and sandbox's groups are stopped.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    prepare_manifest()  # parse now if a model changed: loading the definitions reads the manifest
    work = Path(tempfile.mkdtemp(prefix="ps-bench-writeback-"))
    started, ok, finished = time.perf_counter(), True, False
    try:
        if args.part in ("both", "latency"):
            (work / "latency").mkdir()
            ok &= latency_part(args, work / "latency")
        if args.part in ("both", "throughput"):
            (work / "throughput").mkdir()
            ok &= throughput_part(args, work / "throughput")
        finished = True
    finally:
        if args.keep or not (ok and finished):  # logs and warehouses to look into
            print(f"kept {work}", flush=True)
        else:
            shutil.rmtree(work, ignore_errors=True)
    say(f"total {time.perf_counter() - started:.0f}s, {'OK' if ok else 'FAILED'}")
    print("\n== summary ==\n" + "\n".join(SUMMARY))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
