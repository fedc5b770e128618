"""A killed or stopped ``ps-pipelines run`` never blocks the next one, and leaves nothing behind.

Every scenario runs the real CLI in its own process on a sandbox state prepared so that one
ingestion step (Kantata time entries) hangs inside an HTTP request: the step holds the one
``duckdb_warehouse`` slot for as long as the test wants, and the test acts only once the
Dagster instance shows the slot taken by that step. Nothing depends on how fast the machine
is: every wait polls for a condition with a generous deadline.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest
from dagster import DagsterInstance, DagsterRunStatus

from ps_pipelines.defs.automation.dead_runs import RUN_ID_ENV
from ps_pipelines.lib.processes import processes_with_env
from ps_pipelines.lib.warehouse.lock import WAREHOUSE_POOL
from ps_sandbox import faults
from ps_sandbox.store import SandboxStore
from tests.conftest import TEST_SCALE, TEST_SEED

REPO = Path(__file__).resolve().parents[1]
SLOW_STEP = "raw__kantata__time_entries"
# Every attempt hangs past the client's read timeout (60 s) and the client retries 6 times,
# so the step holds the pool slot for about 7 minutes unless the test acts first.
SLOW_REQUEST_MS = 600_000
SLOW_REQUESTS = 10
STEP_STARTED = f'Started execution of step "{SLOW_STEP}"'
START_TIMEOUT_SECONDS = 600  # import, sandbox start and the steps before the slow one
RERUN_TIMEOUT_SECONDS = 600  # a whole ingestion on a slow, shared machine
STOP_TIMEOUT_SECONDS = 30  # a stop takes a few seconds; the bound only catches a hang
GONE_TIMEOUT_SECONDS = 30
FINISHED = {DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED}


def wait_for(condition: Callable[[], object], timeout: float, what: str, poll: float = 0.2) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(poll)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def alive(processes: list[psutil.Process]) -> list[psutil.Process]:
    """The processes still running (a zombie has exited; it only waits for its parent)."""
    running = []
    for process in processes:
        try:
            if process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
                running.append(process)
        except psutil.NoSuchProcess:
            pass
    return running


class CliRun:
    """One ``ps-pipelines run`` in its own process, its output in a file."""

    def __init__(self, home: Path, log: Path, job: str = "ingest_all") -> None:
        self.log = log
        script = Path(sys.executable).with_name("ps-pipelines")
        command = [str(script)] if script.exists() else [sys.executable, "-m", "ps_pipelines.cli"]
        # --verbose: the scenarios wait for Dagster's step events, which a calm console leaves out.
        command += ["run", "--job", job, "--home", str(home), "--scale", f"{TEST_SCALE:g}", "--seed", str(TEST_SEED),
                    "--verbose"]
        with log.open("wb") as out:
            self.process = subprocess.Popen(command, cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
        self.descendants: list[psutil.Process] = []
        self.sandbox_processes: list[psutil.Process] = []

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.output().splitlines()[-lines:])

    def wait_for_output(self, text: str, timeout: float = START_TIMEOUT_SECONDS) -> None:
        def seen() -> bool:
            if self.process.poll() is not None and text not in self.output():
                raise AssertionError(f"ps-pipelines exited ({self.process.returncode}) before {text!r}:\n{self.tail()}")
            return text in self.output()

        wait_for(seen, timeout, repr(text))

    def remember_descendants(self) -> None:
        """Its child processes (the sandbox among them), to look for after it is gone."""
        self.descendants = psutil.Process(self.process.pid).children(recursive=True)
        self.sandbox_processes = [p for p in alive(self.descendants) if {"sandbox", "serve"} <= set(p.cmdline())]

    def sandboxes(self) -> list[psutil.Process]:
        return self.sandbox_processes

    def wait(self, timeout: float) -> int:
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"ps-pipelines still running after {timeout:.0f}s; its last lines:\n{self.tail()}")

    def clean_up(self) -> None:
        """Whatever a failing test left running must not outlive it."""
        if self.process.poll() is None:
            root = psutil.Process(self.process.pid)
            self.descendants += [root, *root.children(recursive=True)]
        for process in alive(self.descendants):
            process.kill()
        if self.process.poll() is None:
            self.process.wait()


@pytest.fixture
def home(tmp_path: Path, sandbox_template: Path) -> Path:
    """A home whose sandbox state (at the path ``ps-pipelines run`` uses) hangs one request of the slow step."""
    home = tmp_path / "home"
    home.mkdir()
    state = home / f"sandbox-scale{TEST_SCALE:g}-seed{TEST_SEED}.sqlite"
    shutil.copyfile(sandbox_template, state)
    faults.set_config(SandboxStore(state), "kantata", {
        "path_contains": "time_entries", "queue": [{"kind": "slow", "ms": SLOW_REQUEST_MS}] * SLOW_REQUESTS})
    return home


def clear_faults(home: Path) -> None:
    store = SandboxStore(home / f"sandbox-scale{TEST_SCALE:g}-seed{TEST_SEED}.sqlite")
    faults.clear_config(store, "kantata")


@pytest.fixture
def runs() -> Iterator[list[CliRun]]:
    started: list[CliRun] = []
    yield started
    for run in started:
        run.clean_up()


def open_instance(home: Path) -> DagsterInstance:
    return DagsterInstance.from_config(str(home / "dagster_home"))


def pool_holders(instance: DagsterInstance) -> dict[str, str]:
    """step key -> run id of every claimed slot of the warehouse pool."""
    info = instance.event_log_storage.get_concurrency_info(WAREHOUSE_POOL)
    return {slot.step_key: slot.run_id for slot in info.claimed_slots}


def run_holding_the_slow_step(home: Path, run: CliRun) -> str:
    """Wait until ``run`` is inside the slow step with the pool slot; its run id."""
    run.wait_for_output(STEP_STARTED)
    with open_instance(home) as instance:
        return str(wait_for(lambda: pool_holders(instance).get(SLOW_STEP), 60, f"{SLOW_STEP} to hold the pool"))


def status_of(home: Path, run_id: str) -> DagsterRunStatus:
    with open_instance(home) as instance:
        run = instance.get_run_by_id(run_id)
        assert run is not None
        return run.status


def test_a_killed_run_is_freed_by_the_next_run_and_leaves_no_sandbox(home: Path, tmp_path: Path,
                                                                     runs: list[CliRun]) -> None:
    killed = CliRun(home, tmp_path / "killed.log")
    runs.append(killed)
    dead_run_id = run_holding_the_slow_step(home, killed)
    killed.remember_descendants()
    assert killed.sandboxes(), f"no sandbox process under ps-pipelines:\n{killed.tail()}"

    killed.process.kill()
    killed.process.wait()
    clear_faults(home)  # the next run ingests at full speed

    started = time.monotonic()
    rerun = CliRun(home, tmp_path / "rerun.log")
    runs.append(rerun)
    code = rerun.wait(RERUN_TIMEOUT_SECONDS)
    elapsed = time.monotonic() - started
    output = rerun.output()
    assert code == 0, rerun.tail()
    freed = [line for line in output.splitlines() if f"dead run {dead_run_id}" in line]
    assert freed and "freed" in freed[0], f"no message about the dead run {dead_run_id}:\n{rerun.tail()}"
    assert "blocked by limit" not in output
    print(f"rerun after the kill finished in {elapsed:.1f}s; {freed[0].strip()}")

    assert status_of(home, dead_run_id) == DagsterRunStatus.FAILURE
    assert not processes_with_env(RUN_ID_ENV, dead_run_id), "a process started by the killed run is still running"
    with open_instance(home) as instance:
        assert pool_holders(instance) == {}
    wait_for(lambda: not alive(killed.sandboxes()), GONE_TIMEOUT_SECONDS, "the killed run's sandbox to exit")


def test_sigterm_and_ctrl_c_stop_a_blocked_run_and_a_running_run_within_seconds(home: Path, tmp_path: Path,
                                                                                runs: list[CliRun]) -> None:
    """SIGTERM stops the run waiting for the pool (which used to ignore it), SIGINT (Ctrl-C) the one in a step."""
    holder = CliRun(home, tmp_path / "holder.log")
    runs.append(holder)
    holder_run_id = run_holding_the_slow_step(home, holder)
    holder.remember_descendants()

    waiting = CliRun(home, tmp_path / "waiting.log")
    runs.append(waiting)
    waiting.wait_for_output(f"Step blocked by limit for pool {WAREHOUSE_POOL}")
    # Never a silent wait: the blocked run says which run holds the pool (and that it is alive).
    waiting.wait_for_output(f"held by run {holder_run_id}", timeout=120)
    waiting.remember_descendants()
    with open_instance(home) as instance:
        waiting_run_id = next(r.run_id for r in instance.get_runs() if r.run_id != holder_run_id)

    for run, run_id, signum in ((waiting, waiting_run_id, signal.SIGTERM), (holder, holder_run_id, signal.SIGINT)):
        started = time.monotonic()
        run.process.send_signal(signum)
        code = run.wait(STOP_TIMEOUT_SECONDS)
        elapsed = time.monotonic() - started
        print(f"{run.log.stem}: exited {code} {elapsed:.1f}s after {signum.name}")
        assert code == 128 + signum, run.tail()
        status = status_of(home, run_id)
        assert status in (DagsterRunStatus.CANCELED, DagsterRunStatus.FAILURE), f"{run.log.stem} left {status}"
        assert run.sandboxes(), f"no sandbox under {run.log.stem}"
        wait_for(lambda run=run: not alive(run.sandboxes()), GONE_TIMEOUT_SECONDS, f"{run.log.stem}'s sandbox to exit")
        with open_instance(home) as instance:
            assert run_id not in pool_holders(instance).values()


def test_a_run_waiting_for_the_pool_takes_it_over_when_the_holder_is_killed(home: Path, tmp_path: Path,
                                                                             runs: list[CliRun]) -> None:
    holder = CliRun(home, tmp_path / "holder.log")
    runs.append(holder)
    holder_run_id = run_holding_the_slow_step(home, holder)
    holder.remember_descendants()
    waiting = CliRun(home, tmp_path / "waiting.log")
    runs.append(waiting)
    waiting.wait_for_output(f"held by run {holder_run_id}", timeout=START_TIMEOUT_SECONDS)

    clear_faults(home)  # the request in flight stays slow; the waiting run's own are not
    holder.process.kill()
    holder.process.wait()

    assert waiting.wait(RERUN_TIMEOUT_SECONDS) == 0, waiting.tail()
    assert f"dead run {holder_run_id}" in waiting.output()
    assert status_of(home, holder_run_id) == DagsterRunStatus.FAILURE
    wait_for(lambda: not alive(holder.sandboxes()), GONE_TIMEOUT_SECONDS, "the killed run's sandbox to exit")
