"""``ps-pipelines dev``: the sandbox and ``dagster dev`` (webserver, daemon, code server) as one
command that says what it is waiting for, refuses busy ports before starting anything, and
leaves nothing running once it is stopped. ``--estate`` picks the firm's platforms: both code
locations get it as ``PS_ESTATE``, and the sandbox's org runs the Salesforce packages it needs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import requests

# Imported here, not in the functions that use it: one of them runs in a freshly forked child.
from ps_pipelines.estate import DEFAULT_ESTATE, ESTATE_ENV, Estate
from ps_pipelines.events import EVENTS_LOCATION
from ps_pipelines.lib.processes import become_subreaper, set_parent_death_signal, terminate_children

# dagster dev gives its webserver and daemon a minute each to stop.
DEV_STOP_TIMEOUT_SECONDS = 150
LOCATION_NAME = "ps_pipelines"
LOCATION_NAMES = (LOCATION_NAME, EVENTS_LOCATION)
WORKSPACE_YAML = f"""\
# Written by ps-pipelines dev: its code locations read the sandbox URL and the warehouse path
# from the environment this command gives dagster dev. The write-back events have a location
# of their own: a run started by an event loads no dbt manifest.
load_from:
  - python_module:
      module_name: ps_pipelines.definitions_dev
      location_name: {LOCATION_NAME}
  - python_module:
      module_name: ps_pipelines.events.definitions_dev
      location_name: {EVENTS_LOCATION}
"""
LOCATIONS_QUERY = """{ workspaceOrError { ... on Workspace { locationEntries {
    name loadStatus locationOrLoadError { __typename ... on PythonError { message } } } } } }"""
POLL_SECONDS = 0.5


@dataclass(frozen=True)
class DevOptions:
    home: Path
    ui_port: int
    sandbox_port: int
    scale: float = 1.0
    seed: int = 42
    verbose: bool = False
    estate: Estate = DEFAULT_ESTATE


class PortInUse(Exception):
    def __init__(self, port: int, option: str) -> None:
        super().__init__(f"port {port} is already in use on 127.0.0.1: stop what holds it, or choose another "
                         f"port with {option}")


def require_free_ports(options: DevOptions) -> None:
    """Raise ``PortInUse`` for the first busy port, before anything is started."""
    from ps_pipelines.local_sandbox import port_is_free

    if options.ui_port == options.sandbox_port:
        raise PortInUse(options.ui_port, "--ui-port or --sandbox-port (they must differ)")
    for port, option in ((options.ui_port, "--ui-port"), (options.sandbox_port, "--sandbox-port")):
        if not port_is_free(port):
            raise PortInUse(port, option)


class Progress:
    """What is starting and for how long: one line per step, and on a terminal a counter that
    ticks while a step waits (the sandbox and the code location can take a minute each)."""

    def __init__(self, stream: TextIO = sys.stdout) -> None:
        self.stream, self.started = stream, time.monotonic()
        self._ticking = threading.Event()
        self._step = ""

    def elapsed(self) -> str:
        return f"{time.monotonic() - self.started:.0f}s"

    def step(self, what: str) -> None:
        self._step = what
        if not self.stream.isatty():
            self._write(f"{what}...\n")
        elif not self._ticking.is_set():
            self._ticking.set()
            threading.Thread(target=self._tick, name="dev-progress", daemon=True).start()

    def done(self, what: str) -> None:
        self._write(f"\r\033[K{what} ({self.elapsed()})\n" if self.stream.isatty() else f"{what} ({self.elapsed()})\n")

    def stop(self) -> None:
        self._ticking.clear()

    def _tick(self) -> None:
        while self._ticking.is_set():
            self._write(f"\r\033[K{self._step}... {self.elapsed()}")
            time.sleep(1.0)

    def _write(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()


def write_workspace(dagster_home: Path) -> Path:
    workspace = dagster_home / "dev_workspace.yaml"
    workspace.write_text(WORKSPACE_YAML)
    return workspace


def dagster_dev_command(workspace: Path, options: DevOptions) -> list[str]:
    # The daemon logs every sensor tick at INFO (every 5 s here): warnings and errors only, unless asked.
    log_level = "info" if options.verbose else "warning"
    return [sys.executable, "-m", "ps_pipelines.dagster_dev", "dev", "-w", str(workspace),
            "-p", str(options.ui_port), "--log-level", log_level]


def dagster_dev_environment(sandbox_url: str, warehouse_path: Path, estate: Estate = DEFAULT_ESTATE) -> dict[str, str]:
    """The services' environment: both code locations read the sandbox, warehouse and estate from it."""
    from ps_pipelines.resources import SANDBOX_URL_ENV, WAREHOUSE_PATH_ENV

    return {**os.environ, SANDBOX_URL_ENV: sandbox_url, WAREHOUSE_PATH_ENV: str(warehouse_path),
            ESTATE_ENV: str(estate)}


def sandbox_state(home: Path, estate: Estate) -> Path:
    """The sandbox's database: one per set of Salesforce packages, which change the generated data."""
    return home / f"sandbox{''.join(f'-{p}' for p in estate.salesforce_packages())}.sqlite"


def location_status(ui_url: str) -> tuple[str, str | None] | None:
    """(load status, load errors) of this command's code locations taken together: LOADED once
    every one has loaded; None until the webserver answers."""
    try:
        answer = requests.post(f"{ui_url}/graphql", json={"query": LOCATIONS_QUERY}, timeout=5)
        entries = answer.json()["data"]["workspaceOrError"]["locationEntries"]
    except (requests.RequestException, ValueError, KeyError, TypeError):
        return None
    by_name = {entry["name"]: entry for entry in entries}
    if any(by_name.get(name, {}).get("loadStatus") != "LOADED" for name in LOCATION_NAMES):
        return "LOADING", None
    errors = [f"{name}: {message}" for name in LOCATION_NAMES
              if (message := (by_name[name]["locationOrLoadError"] or {}).get("message"))]
    return "LOADED", "; ".join(errors) or None


def wait_until_ready(ui: subprocess.Popen, ui_url: str, progress: Progress) -> bool:
    """Wait for the webserver, then the code location; False when dagster dev exited first."""
    answering = False
    while ui.poll() is None:
        status = location_status(ui_url)
        if status is not None and not answering:
            answering = True
            progress.done(f"webserver answering at {ui_url}")
            if status[0] != "LOADED":
                progress.step("loading the code locations")
        if status is not None and status[0] == "LOADED":
            if status[1]:
                progress.done(f"a code location failed to load (details in the UI): {status[1]}")
            else:
                progress.done(f"code locations {', '.join(LOCATION_NAMES)} loaded")
            return True
        time.sleep(POLL_SECONDS)
    return False


def _prepare_dagster_dev() -> None:
    """In the dagster dev child, before it starts: it stops its services on SIGTERM, and the
    kernel sends it one should ``ps-pipelines dev`` be killed outright.

    A shell starts background jobs with SIGINT ignored, and dagster dev gives SIGTERM the
    SIGINT handler it finds: inherited, the pair would make it ignore SIGTERM altogether.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    set_parent_death_signal()


def stop_dagster_dev(ui: subprocess.Popen, signals: list[int]) -> None:
    """Ask dagster dev to stop its services and wait for it; a second signal, or the timeout,
    cuts the wait short."""
    if ui.poll() is None:
        ui.terminate()
    deadline = time.monotonic() + DEV_STOP_TIMEOUT_SECONDS
    while ui.poll() is None and time.monotonic() < deadline and len(signals) < 2:
        time.sleep(0.2)


def run_dev(options: DevOptions) -> int:
    try:
        require_free_ports(options)
    except PortInUse as busy:
        print(f"ps-pipelines dev: {busy}", file=sys.stderr)
        return 2
    from dagster import DagsterInstance

    from ps_pipelines.dagster_home import prepare_dagster_home
    from ps_pipelines.defs.automation.dead_runs import free_dead_runs
    from ps_pipelines.run_guard import say

    progress = Progress()
    dagster_home = prepare_dagster_home(options.home)
    # Before the UI starts: runs queued behind a dead run's pool slot would otherwise wait
    # for the sensor's first tick.
    with DagsterInstance.get() as instance:
        for freed in free_dead_runs(instance):
            say(freed.message())
    signals: list[int] = []

    def on_signal(signum: int, frame: object) -> None:
        signals.append(signum)
        if len(signals) == 1:
            raise KeyboardInterrupt  # unwinds like Ctrl-C: dagster dev and the sandbox are stopped, not orphaned

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    # A service dagster dev leaves behind becomes our child instead of init's, so the
    # clean-up below finds it.
    become_subreaper()
    try:
        return _serve_until_stopped(options, dagster_home, progress, signals)
    except KeyboardInterrupt:
        return 0
    finally:
        progress.stop()
        # Whatever still runs: dagster dev after a timeout or a second signal, or what it left.
        terminate_children()


def _serve_until_stopped(options: DevOptions, dagster_home: Path, progress: Progress, signals: list[int]) -> int:
    from ps_pipelines.local_sandbox import SandboxProcess

    ui_url = f"http://127.0.0.1:{options.ui_port}"
    progress.step(f"starting the sandbox on port {options.sandbox_port}")
    sandbox_output = None if options.verbose else subprocess.DEVNULL
    with SandboxProcess(sandbox_state(options.home, options.estate), scale=options.scale, seed=options.seed,
                        port=options.sandbox_port, output=sandbox_output,
                        salesforce_packages=options.estate.salesforce_packages()) as sandbox:
        progress.done(f"sandbox up at {sandbox.url} (control API {sandbox.url}/_sandbox/)")
        progress.step(f"starting Dagster (webserver, daemon, code server) for the estate {options.estate}")
        environment = dagster_dev_environment(sandbox.url, (options.home / "warehouse.duckdb").resolve(),
                                              options.estate)
        # Its own process group: a Ctrl-C at the terminal reaches this process only, which
        # passes dagster dev exactly one SIGTERM (a second one would cut its shutdown short).
        ui = subprocess.Popen(dagster_dev_command(write_workspace(dagster_home), options), env=environment,
                              process_group=0, preexec_fn=_prepare_dagster_dev)
        try:
            if wait_until_ready(ui, ui_url, progress):
                progress.stop()
                print(f"Dagster UI: {ui_url}  sandbox: {sandbox.url}", flush=True)
            code = ui.wait()
        except KeyboardInterrupt:
            progress.stop()
            print(f"\nstopping ({signal.Signals(signals[0]).name if signals else 'SIGINT'})...", flush=True)
            stop_dagster_dev(ui, signals)
            return 0
        print(f"ps-pipelines dev: dagster dev exited with code {code}", file=sys.stderr)
        return code or 1
