"""The ``ps-pipelines`` command: ``run`` (the main job on the embedded defaults),
``dev`` (the Dagster UI with the sandbox running) and ``sandbox serve``."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from ps_sandbox.cli import add_serve_arguments

DEFAULT_HOME = Path(".ps_pipelines")
DAGSTER_YAML = """\
# Written by ps-pipelines. One DuckDB writer at a time: every asset that writes the
# warehouse declares pool "duckdb_warehouse", limited here to one slot.
concurrency:
  pools:
    default_limit: 1
telemetry:
  enabled: false
"""


def prepare_dagster_home(home: Path) -> Path:
    dagster_home = (home / "dagster_home").resolve()
    dagster_home.mkdir(parents=True, exist_ok=True)
    config = dagster_home / "dagster.yaml"
    if not config.exists():
        config.write_text(DAGSTER_YAML)
    os.environ["DAGSTER_HOME"] = str(dagster_home)
    return dagster_home


def _serve(args: argparse.Namespace) -> int:
    from ps_sandbox.serve import serve

    serve(host=args.host, port=args.port, scale=args.scale, seed=args.seed, state=args.state)
    return 0


def _run(args: argparse.Namespace) -> int:
    from ps_pipelines.runner import run_main_job

    return run_main_job(home=Path(args.home), scale=args.scale, seed=args.seed, job_name=args.job,
                        full_refresh=args.full_refresh, sandbox_url=args.sandbox_url)


def _dev(args: argparse.Namespace) -> int:
    from urllib.parse import urlsplit

    from ps_pipelines.local_sandbox import SandboxProcess
    from ps_pipelines.resources import DEFAULT_SANDBOX_URL

    home = Path(args.home)
    prepare_dagster_home(home)
    # The local code location's resources point at this port; the UI's runs reach it there.
    port = urlsplit(DEFAULT_SANDBOX_URL).port
    with SandboxProcess(home / "sandbox.sqlite", scale=args.scale, seed=args.seed, port=port) as sandbox:
        print(f"sandbox: {sandbox.url} (control API {sandbox.url}/_sandbox/)", flush=True)
        command = [sys.executable, "-m", "dagster", "dev", "-w", "workspace.yaml", "-p", str(args.ui_port)]
        try:
            return subprocess.call(command)
        except KeyboardInterrupt:
            return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ps-pipelines", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="Run the main job end to end on the sandbox and print a summary.")
    run.add_argument("--home", default=str(DEFAULT_HOME), help="Folder for the warehouse, sandbox and Dagster.")
    run.add_argument("--scale", type=float, default=1.0, help="Sandbox data scale (time entries = 10,000 x scale).")
    run.add_argument("--seed", type=int, default=42)
    run.add_argument("--job", default="refresh_all")
    run.add_argument("--full-refresh", action="store_true", help="Ignore high-water marks.")
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
    serve = sandbox_commands.add_parser("serve", help="Serve the sandbox APIs (same as python -m ps_sandbox serve).")
    add_serve_arguments(serve)
    serve.set_defaults(handler=_serve)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
