"""Processes that can be told apart after they die, and children that die with their parent.

A pid alone does not name a process: the kernel hands it out again once the process is gone,
so "is pid 4242 alive?" can answer yes about a stranger. The pair (pid, start time) does
name one, for as long as the machine runs; with the host it is meaningful in a shared
Dagster instance too.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import psutil

# psutil recomputes the start time from the boot time and the process's start tick on every
# call, so two reads of one process can differ by a tick or a clock adjustment.
START_TIME_TOLERANCE_SECONDS = 1.0
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
PR_SET_CHILD_SUBREAPER = 36
# How long an orphaned child may take to stop on SIGTERM before it exits outright.
ORPHAN_GRACE_SECONDS = 10.0


@dataclass(frozen=True)
class ProcessIdentity:
    """One process: its host, pid, and when it started (``started_at``) or a moment it was
    known to be running (``seen_at``: a process started after that moment is another one)."""

    host: str
    pid: int
    started_at: float | None = None
    seen_at: float | None = None

    @classmethod
    def current(cls) -> ProcessIdentity:
        return cls(host=socket.gethostname(), pid=os.getpid(), started_at=psutil.Process().create_time())

    def to_tag(self) -> str:
        return json.dumps({"host": self.host, "pid": self.pid, "started_at": self.started_at}, sort_keys=True)

    @classmethod
    def from_tag(cls, tag: str) -> ProcessIdentity:
        """Parse what ``to_tag`` wrote; ``ValueError`` for anything else."""
        try:
            data = json.loads(tag)
            started_at = data.get("started_at")
            return cls(host=str(data["host"]), pid=int(data["pid"]),
                       started_at=None if started_at is None else float(started_at))
        except (TypeError, KeyError, AttributeError, json.JSONDecodeError) as error:
            raise ValueError(f"not a process identity: {tag!r}") from error

    def is_alive(self) -> bool | None:
        """True or False on this host; None when the process runs on another host (unknowable here)."""
        if self.host != socket.gethostname():
            return None
        try:
            process = psutil.Process(self.pid)
            if process.status() == psutil.STATUS_ZOMBIE:
                return False  # it has exited; only its parent has not collected it yet
            created = process.create_time()
        except psutil.NoSuchProcess:
            return False
        except psutil.AccessDenied:
            return True  # it exists; a process we may not inspect is not ours to declare dead
        if self.started_at is not None:
            return abs(created - self.started_at) <= START_TIME_TOLERANCE_SECONDS
        if self.seen_at is not None:
            return created <= self.seen_at + START_TIME_TOLERANCE_SECONDS
        return True

    def describe(self) -> str:
        return f"pid {self.pid} on {self.host}"


def exit_with_parent(parent_pid: int, *, use_death_signal: bool = True, poll_seconds: float = 1.0) -> None:
    """End this process (SIGTERM to itself) as soon as ``parent_pid`` is gone, however it went.

    A parent killed with SIGKILL runs no cleanup, so the child has to notice on its own. On
    Linux the kernel signals it at once (``PR_SET_PDEATHSIG``); that fires when the *thread*
    that started the child ends, so the parent passes ``use_death_signal=False`` unless it
    started the child from its main thread. Everywhere, a thread also watches for the child
    being re-parented, which also covers a parent that died before the ``prctl`` call.
    """
    # An ignored or blocked SIGTERM is inherited through fork and exec (a parent that started us
    # from a thread with signals blocked, or a shell that ignores them): neither the kernel's
    # signal nor the watcher's would end us. SIGTERM ends this process whatever it inherited.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
    if signal.getsignal(signal.SIGTERM) == signal.SIG_IGN:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if use_death_signal:
        set_parent_death_signal()  # where it is missing, the watcher below ends us a second later
    if os.getppid() != parent_pid:
        os.kill(os.getpid(), signal.SIGTERM)

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(poll_seconds)
        os.kill(os.getpid(), signal.SIGTERM)
        # A handler that outlasts this (a stuck shutdown) must not keep an orphan alive.
        time.sleep(ORPHAN_GRACE_SECONDS)
        os._exit(128 + signal.SIGTERM)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def set_parent_death_signal() -> None:
    """For ``Popen(preexec_fn=...)``: the kernel sends the child SIGTERM when its parent dies (Linux only).

    Only for children started from the main thread (see ``exit_with_parent``).
    """
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def become_subreaper() -> None:
    """Orphaned descendants of this process become its children, not init's (Linux only), so
    ``terminate_children`` still finds what a child that exited left running."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def terminate_children(timeout_seconds: float = 3.0) -> list[psutil.Process]:
    """SIGTERM every descendant of this process, SIGKILL those still there after the timeout.

    Returns the processes that had to be killed.
    """
    return terminate(psutil.Process().children(recursive=True), timeout_seconds)


def terminate(processes: list[psutil.Process], timeout_seconds: float = 3.0) -> list[psutil.Process]:
    """SIGTERM ``processes``, SIGKILL those still there after the timeout; returns the killed ones."""
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.terminate()
    _, survivors = psutil.wait_procs(processes, timeout=timeout_seconds)
    for process in survivors:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.kill()
    psutil.wait_procs(survivors, timeout=timeout_seconds)
    return survivors


def processes_with_env(name: str, value: str) -> list[psutil.Process]:
    """The processes of this machine whose environment has ``name=value`` (those we may read).

    A process inherits its parent's environment, so a variable set by a process marks every
    process it started, and theirs, even after they were re-parented by its death.
    """
    found = []
    for process in psutil.process_iter():
        with contextlib.suppress(psutil.Error):
            if process.pid != os.getpid() and process.environ().get(name) == value:
                found.append(process)
    return found


@contextlib.contextmanager
def inherited_by_children(name: str, value: str) -> Iterator[None]:
    """Set an environment variable for the processes started inside (this process's own
    environment is theirs), and put back what was there."""
    previous = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = previous
