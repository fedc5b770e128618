"""Watch over the CLI's in-process run: stop it on SIGTERM or Ctrl-C, never let it wait silently.

``execute_in_process`` replaces the SIGINT and SIGTERM handlers while the run executes: inside
a step a signal raises (the step fails as interrupted and the run ends), but between steps it
is only noted, and a run whose steps wait for a pool slot never looks at the note. A run
blocked by a slot that is never freed therefore ignored SIGTERM for good. The guard learns of
every signal through ``signal.set_wakeup_fd`` (written by the interpreter whatever Python
handler is installed) and acts from its own thread:

* at the first signal it marks the run CANCELING, so a step that stops cleanly ends the run
  CANCELED; if the process is still there after a grace period (a step did not react), it
  marks the run CANCELED itself, frees its pool slots, stops its child processes (the
  sandbox, a dbt build) and exits. It does that at once when the run was only waiting for a
  pool (no step of it runs then, and nothing else would ever stop the wait) and at a second
  signal.
* while steps of the run wait for a pool, it ends any dead run holding that pool (see
  ``ps_pipelines.defs.automation.dead_runs``) and says which live run holds it, in the output and
  in the run's event log: once, again when the holder changes, and every few minutes.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import sys
import threading
import time
from collections.abc import Callable
from types import FrameType, TracebackType

from dagster import DagsterInstance, DagsterRunStatus

from ps_pipelines.defs.automation.dead_runs import FINISHED_STATUSES, free_dead_runs, only_waits_for_pools, pool_waits
from ps_pipelines.lib.processes import terminate_children

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
# Long enough for a step to unwind, short enough to be "stops within seconds".
GRACE_SECONDS = 5.0
POLL_SECONDS = 2.0
REMIND_SECONDS = 300.0


def _terminal_fileno() -> int:
    """The descriptor behind stdout; the process's own standard output when stdout has none
    (a test's captured stream, an embedding application)."""
    try:
        return sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is an OSError
        return sys.__stdout__.fileno() if sys.__stdout__ is not None else 1


NOTICE_PREFIX = "ps-pipelines: "


def say(message: str) -> None:
    print(NOTICE_PREFIX + message, flush=True)


class RunGuard:
    """Guards the run ``run_id`` (executed in this process, in the main thread) while entered.

    Enter it in the main thread, before anything that should be cleaned up on a stop: outside
    the run's execution a stop signal raises ``KeyboardInterrupt`` there, so ``with`` blocks
    (the sandbox) unwind.
    """

    def __init__(self, instance: DagsterInstance, run_id: str, *, grace_seconds: float = GRACE_SECONDS,
                 poll_seconds: float = POLL_SECONDS, remind_seconds: float = REMIND_SECONDS,
                 report: Callable[[str], None] | None = None) -> None:
        self.instance, self.run_id = instance, run_id
        self.grace_seconds, self.poll_seconds, self.remind_seconds = grace_seconds, poll_seconds, remind_seconds
        self._report = report
        self.stopped_by: int | None = None
        self._deadline: float | None = None
        self._told: dict[str, tuple[str, float]] = {}
        self._done = threading.Event()
        self._lock = threading.Lock()

    # -- entering and leaving (main thread) ---------------------------------------------------

    def __enter__(self) -> RunGuard:
        # While steps run, Dagster captures this process's stdout into its compute logs and a
        # helper process copies it to the terminal; a stop kills that helper. The guard writes
        # to the terminal's own descriptor, taken before the capture starts.
        sys.stdout.flush()
        self._out_fd = os.dup(_terminal_fileno())
        self._read_fd, self._write_fd = os.pipe()
        os.set_blocking(self._read_fd, False)
        os.set_blocking(self._write_fd, False)
        self._previous_wakeup_fd = signal.set_wakeup_fd(self._write_fd, warn_on_full_buffer=False)
        self._previous_handlers = {signum: signal.signal(signum, self._raise_interrupt) for signum in STOP_SIGNALS}
        self._thread = threading.Thread(target=self._watch, name="run-guard", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._done.set()
        self._thread.join(timeout=self.poll_seconds + 5)
        self._drain()  # a signal that arrived just before the run returned still counts
        signal.set_wakeup_fd(self._previous_wakeup_fd)
        for signum, handler in self._previous_handlers.items():
            signal.signal(signum, handler)
        os.close(self._read_fd)
        os.close(self._write_fd)
        os.close(self._out_fd)

    def report(self, message: str) -> None:
        if self._report is not None:
            self._report(message)
            return
        with contextlib.suppress(OSError):
            os.write(self._out_fd, f"{NOTICE_PREFIX}{message}\n".encode())

    def _raise_interrupt(self, signum: int, frame: FrameType | None) -> None:
        self.stopped_by = self.stopped_by or signum
        raise KeyboardInterrupt

    # -- the watcher thread -------------------------------------------------------------------

    def _watch(self) -> None:
        next_check = time.monotonic() + self.poll_seconds
        while not self._done.is_set():
            now = time.monotonic()
            wait = next_check - now if self._deadline is None else self._deadline - now
            with contextlib.suppress(InterruptedError):
                select.select([self._read_fd], [], [], max(0.0, min(wait, self.poll_seconds)))
            if self._done.is_set():
                return
            self._drain()
            if self._deadline is not None and time.monotonic() >= self._deadline:
                name = signal.Signals(self.stopped_by or signal.SIGTERM).name
                self._force_stop(f"did not stop within {self.grace_seconds:.0f}s of {name}")
            if self._deadline is None and time.monotonic() >= next_check:
                self._guarded(self._check_pools)
                next_check = time.monotonic() + self.poll_seconds

    def _drain(self) -> None:
        try:
            received = os.read(self._read_fd, 512)
        except (BlockingIOError, OSError):
            return
        for signum in received:
            if signum in STOP_SIGNALS:
                self._on_stop_signal(signum)

    def _on_stop_signal(self, signum: int) -> None:
        with self._lock:
            first = self._deadline is None
            self.stopped_by = self.stopped_by or signum
            if first:
                self._deadline = time.monotonic() + self.grace_seconds
        name = signal.Signals(signum).name
        if not first:
            self._force_stop(f"got a second {name}")
            return
        self.report(f"{name} received: stopping run {self.run_id} (at most {self.grace_seconds:.0f}s; "
                    "send it again to stop at once)")
        self._guarded(lambda: self._mark(DagsterRunStatus.CANCELING, f"ps-pipelines received {name}."))
        waiting = False
        with contextlib.suppress(Exception):
            waiting = only_waits_for_pools(self.instance, self.run_id)
        if waiting:
            self._force_stop(f"was waiting for a pool slot at {name}")

    def _mark(self, status: DagsterRunStatus, message: str) -> None:
        run = self.instance.get_run_by_id(self.run_id)
        if run is None or run.status in FINISHED_STATUSES:
            return
        if status == DagsterRunStatus.CANCELING and run.status == DagsterRunStatus.STARTED:
            self.instance.report_run_canceling(run, message)
        elif status == DagsterRunStatus.CANCELED:
            self.instance.report_run_canceled(run, message)

    def _force_stop(self, why: str) -> None:
        if threading.current_thread() is threading.main_thread() or self._done.is_set():
            return  # the run already returned: the main thread is cleaning up on its own
        self._guarded(lambda: self._mark(DagsterRunStatus.CANCELED,
                                         f"Canceled by ps-pipelines: the run {why}; its pool slots were freed."))
        self._guarded(lambda: self.instance.event_log_storage.free_concurrency_slots_for_run(self.run_id))
        self._guarded(terminate_children)
        self.report(f"run {self.run_id} {why}: marked CANCELED, freed its pool slots, stopped its child processes")
        os._exit(128 + (self.stopped_by or signal.SIGTERM))

    def _check_pools(self) -> None:
        waits = pool_waits(self.instance, [self.run_id])
        if not waits:
            return
        # The holder may have died since this run started (or ended and kept its slot).
        freed = free_dead_runs(self.instance)
        for run in freed:
            self.report(run.message())
        if freed:
            waits = pool_waits(self.instance, [self.run_id])
        now = time.monotonic()
        for wait in waits:
            key, told_at = self._told.get(wait.pool, ("", 0.0))
            if key == wait.key() and now - told_at < self.remind_seconds:
                continue
            self._told[wait.pool] = (wait.key(), now)
            self.report(wait.message())
            run = self.instance.get_run_by_id(self.run_id)
            if run is not None:
                self.instance.report_engine_event(wait.message(), run)

    def _guarded(self, action: Callable[[], object]) -> None:
        """Run ``action``; the watcher must outlive any one failure (a locked database, say)."""
        try:
            action()
        except Exception as error:
            self.report(f"run guard: {type(error).__name__}: {error}")
