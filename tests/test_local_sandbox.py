"""The sandbox child never outlives the process that started it, even one killed outright."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from tests.conftest import TEST_SCALE, TEST_SEED

STARTER = f"""
import signal, sys, threading, time
from pathlib import Path
from ps_pipelines.local_sandbox import SandboxProcess

# What a child inherits through fork and exec, whatever Python does with it afterwards.
if sys.argv[2] == "sigterm-ignored":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
if sys.argv[2] == "sigterm-blocked":
    signal.pthread_sigmask(signal.SIG_BLOCK, {{signal.SIGTERM}})

def start():
    sandbox = SandboxProcess(Path(sys.argv[1]), scale={TEST_SCALE}, seed={TEST_SEED}).__enter__()
    print("sandbox pid", sandbox.pid, flush=True)

if sys.argv[2] == "thread":
    thread = threading.Thread(target=start)
    thread.start()
    thread.join()  # the thread that started the sandbox is gone; the process is not
else:
    start()
time.sleep(600)
"""


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.mark.parametrize("started_from", ["main", "thread", "sigterm-ignored", "sigterm-blocked"])
def test_the_sandbox_exits_when_its_parent_is_killed(started_from: str, sandbox_template: Path,
                                                     tmp_path: Path) -> None:
    state = tmp_path / "sandbox.sqlite"
    shutil.copyfile(sandbox_template, state)
    parent = subprocess.Popen([sys.executable, "-c", STARTER, str(state), started_from], stdout=subprocess.PIPE,
                              text=True)
    sandbox_pid = None
    try:
        assert parent.stdout is not None
        line = ""
        while not line.startswith("sandbox pid"):  # the sandbox writes to the same pipe
            line = parent.stdout.readline()
            assert line, "the starter exited before the sandbox answered"
        sandbox_pid = int(line.split()[-1])
        time.sleep(2)  # the end of the starting thread must not stop the sandbox
        assert not gone(sandbox_pid)

        parent.send_signal(signal.SIGKILL)
        parent.wait()
        deadline = time.monotonic() + 30
        while not gone(sandbox_pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert gone(sandbox_pid), "the sandbox outlived its parent"
    finally:
        parent.kill()
        parent.wait()
        if sandbox_pid and not gone(sandbox_pid):
            psutil.Process(sandbox_pid).kill()
