"""Run the sandbox (``ps_sandbox``) as a child process (its own interpreter, so it never competes with the
pipeline for the GIL) and wait until it answers.

The child ends with its parent even when the parent is killed outright (SIGKILL runs no
``__exit__``): an orphaned sandbox would keep its port and its state file open forever.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import IO

import requests


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether a server could listen on ``port`` now (a port in TIME_WAIT counts as free, as
    for the servers themselves, which set SO_REUSEADDR)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class SandboxProcess:
    def __init__(self, state: Path, *, scale: float = 1.0, seed: int = 42, port: int | None = None,
                 startup_timeout_seconds: float = 1800.0, output: IO[str] | int | None = None,
                 salesforce_packages: Sequence[str] = (), psa_crm: str | None = None) -> None:
        """``output``: where the sandbox's own output goes: a log file (its errors too), or
        ``subprocess.DEVNULL`` to hide it (its errors then still reach this process's stderr).
        ``salesforce_packages``: managed packages the emulated org runs (e.g. ``certinia``).
        ``psa_crm``: the CRM whose won deals the PSA's projects deliver (None: the sandbox's default)."""
        self.state, self.scale, self.seed = state, scale, seed
        self.salesforce_packages = tuple(salesforce_packages)
        self.psa_crm = psa_crm
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.startup_timeout_seconds = startup_timeout_seconds
        self.process: subprocess.Popen | None = None
        self.output = output  # where the child writes (what it generated, its requests): inherited when None

    def __enter__(self) -> SandboxProcess:
        command = [sys.executable, "-m", "ps_pipelines.cli", "sandbox", "serve", "--port", str(self.port),
                   "--scale", str(self.scale), "--seed", str(self.seed), "--state", str(self.state),
                   "--exit-with-parent", str(os.getpid())]
        for package in self.salesforce_packages:
            command += ["--salesforce-package", package]
        if self.psa_crm:
            command += ["--psa-crm", self.psa_crm]
        if threading.current_thread() is not threading.main_thread():
            # Linux's parent-death signal follows the starting thread, which may end first.
            command.append("--no-parent-death-signal")
        to_file = self.output is not None and not isinstance(self.output, int)
        if to_file:
            self.output.flush()  # the child appends after what is written so far
        self.process = subprocess.Popen(command, stdout=self.output, stderr=self.output if to_file else None)
        try:
            self._wait_until_healthy()
        except BaseException:
            # A failed __enter__ gets no __exit__: stop the child here (Ctrl-C during a long generation).
            self.__exit__(None, None, None)
            raise
        return self

    def _wait_until_healthy(self) -> None:
        deadline = time.monotonic() + self.startup_timeout_seconds
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"sandbox exited with code {self.process.returncode} before it was ready")
            try:
                if requests.get(f"{self.url}/_sandbox/health", timeout=2).ok:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise TimeoutError(f"sandbox at {self.url} did not answer within {self.startup_timeout_seconds:.0f}s")

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
