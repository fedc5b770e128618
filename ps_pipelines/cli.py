"""The ``ps-pipelines`` command: ``run`` (the main job on the embedded defaults),
``dev`` (the Dagster UI with the sandbox running) and ``sandbox serve``."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from pathlib import Path

from ps_pipelines.dagster_home import prepare_dagster_home

# Imported here, not in the functions that use it: one of them runs in a freshly forked child.
from ps_pipelines.lib.processes import set_parent_death_signal, terminate_children
from ps_sandbox.cli import add_serve_arguments

DEFAULT_HOME = Path(".ps_pipelines")
# dagster dev gives its webserver and daemon a minute each to stop.
DEV_STOP_TIMEOUT_SECONDS = 150


def _serve(args: argparse.Namespace) -> int:
    from ps_sandbox.serve import serve

    if args.exit_with_parent:
        from ps_pipelines.lib.processes import exit_with_parent

        exit_with_parent(args.exit_with_parent, use_death_signal=not args.no_parent_death_signal)
    serve(host=args.host, port=args.port, scale=args.scale, seed=args.seed, state=args.state)
    return 0


def _run(args: argparse.Namespace) -> int:
    from ps_pipelines.runner import run_main_job

    code = run_main_job(home=Path(args.home), scale=args.scale, seed=args.seed, job_name=args.job,
                        full_refresh=args.full_refresh, sandbox_url=args.sandbox_url)
    if code > 128:
        # Stopped by a signal, with the run ended and the sandbox stopped. Threads the
        # interrupted step left behind (an HTTP request waiting out its timeout and retries)
        # would hold up the interpreter's exit for as long as they run: leave without them.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


def _dev(args: argparse.Namespace) -> int:
    from urllib.parse import urlsplit

    from dagster import DagsterInstance

    from ps_pipelines.defs.automation.dead_runs import free_dead_runs
    from ps_pipelines.local_sandbox import SandboxProcess
    from ps_pipelines.resources import DEFAULT_SANDBOX_URL
    from ps_pipelines.run_guard import say

    home = Path(args.home)
    prepare_dagster_home(home)
    # Before the UI starts: runs queued behind a dead run's pool slot would otherwise wait
    # for the sensor's first tick.
    with DagsterInstance.get() as instance:
        for freed in free_dead_runs(instance):
            say(freed.message())
    terminated = []

    def on_sigterm(signum: int, frame: object) -> None:
        terminated.append(signum)
        raise KeyboardInterrupt

    # SIGTERM unwinds like Ctrl-C, so dagster dev and the sandbox are stopped, not orphaned.
    signal.signal(signal.SIGTERM, on_sigterm)
    # The local code location's resources point at this port; the UI's runs reach it there.
    port = urlsplit(DEFAULT_SANDBOX_URL).port
    with SandboxProcess(home / "sandbox.sqlite", scale=args.scale, seed=args.seed, port=port) as sandbox:
        print(f"sandbox: {sandbox.url} (control API {sandbox.url}/_sandbox/)", flush=True)
        command = [sys.executable, "-m", "dagster", "dev", "-w", "workspace.yaml", "-p", str(args.ui_port)]
        ui = subprocess.Popen(command, preexec_fn=_prepare_dagster_dev)
        try:
            return ui.wait()
        except KeyboardInterrupt:
            # Ctrl-C reached dagster dev too (the terminal signals the whole group), and a
            # second signal would cut its shutdown short: only a SIGTERM sent to us is passed on.
            if terminated:
                ui.terminate()
            try:
                ui.wait(timeout=DEV_STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                # Its webserver, daemon and code server are still our descendants: stop them too.
                terminate_children()
            return 0


def _prepare_dagster_dev() -> None:
    """In the dagster dev child, before it starts: it stops its services on SIGTERM, and the
    kernel sends it one should ``ps-pipelines dev`` be killed outright.

    A shell starts background jobs with SIGINT ignored, and dagster dev gives SIGTERM the
    SIGINT handler it finds: inherited, the pair would make it ignore SIGTERM altogether.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    set_parent_death_signal()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ps-pipelines", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="Run the main job end to end on the sandbox and print a summary.")
    run.add_argument("--home", default=str(DEFAULT_HOME), help="Folder for the warehouse, sandbox and Dagster.")
    run.add_argument("--scale", type=float, default=1.0, help="Sandbox data scale (time entries = 10,000 x scale).")
    run.add_argument("--seed", type=int, default=42)
    run.add_argument("--job", default="refresh_all")
    run.add_argument("--full-refresh", action="store_true",
                     help="Ignore high-water marks, and rebuild and republish everything even if nothing changed.")
    run.add_argument("--sandbox-url", default=None, help="Use a sandbox already running here instead of starting one.")
    run.set_defaults(handler=_run)

    dev = commands.add_parser("dev", help="Start the sandbox and the Dagster UI (dagster dev).")
    dev.add_argument("--home", default=str(DEFAULT_HOME))
    dev.add_argument("--ui-port", type=int, default=3000)
    dev.add_argument("--scale", type=float, default=1.0)
    dev.add_argument("--seed", type=int, default=42)
    dev.set_defaults(handler=_dev)

    sandbox = commands.add_parser("sandbox", help="The local emulation of Salesforce, Kantata, Workday, NetSuite.")
    sandbox_commands = sandbox.add_subparsers(dest="sandbox_command", required=True)
    serve = sandbox_commands.add_parser("serve", help="Serve the sandbox APIs (python -m ps_sandbox serve, plus "
                                                      "--exit-with-parent).")
    add_serve_arguments(serve)
    serve.add_argument("--exit-with-parent", type=int, default=None, metavar="PID",
                       help="Stop when process PID is gone (how ps-pipelines run and dev start it).")
    serve.add_argument("--no-parent-death-signal", action="store_true", help=argparse.SUPPRESS)
    serve.set_defaults(handler=_serve)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
