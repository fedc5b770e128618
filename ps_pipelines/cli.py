"""The ``ps-pipelines`` command: ``run`` (the main job on the embedded defaults),
``dev`` (the Dagster UI with the sandbox running) and ``sandbox serve``."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ps_pipelines.estate import DEFAULT_ESTATE_TEXT, ESTATE_ENV, PLATFORM_ROLES, Estate, EstateError
from ps_sandbox.cli import DEFAULT_PORT as DEFAULT_SANDBOX_PORT
from ps_sandbox.cli import add_serve_arguments

DEFAULT_HOME = Path(".ps_pipelines")


def _serve(args: argparse.Namespace) -> int:
    from ps_sandbox.serve import serve

    if args.exit_with_parent:
        from ps_pipelines.lib.processes import exit_with_parent

        exit_with_parent(args.exit_with_parent, use_death_signal=not args.no_parent_death_signal)
    serve(host=args.host, port=args.port, scale=args.scale, seed=args.seed, state=args.state,
          salesforce_packages=tuple(args.salesforce_packages), psa_crm=args.psa_crm)
    return 0


def _estate(text: str) -> Estate:
    """``--estate``, its error shown as argparse shows a bad value (with the usage)."""
    try:
        return Estate.parse(text)
    except EstateError as error:
        raise argparse.ArgumentTypeError(str(error)) from error


def _run(args: argparse.Namespace) -> int:
    from ps_pipelines.runner import run_main_job

    code = run_main_job(home=Path(args.home), scale=args.scale, seed=args.seed, job_name=args.job,
                        full_refresh=args.full_refresh, sandbox_url=args.sandbox_url, verbose=args.verbose,
                        estate=args.estate or Estate.from_env())
    if code > 128:
        # Stopped by a signal, with the run ended and the sandbox stopped. Threads the
        # interrupted step left behind (an HTTP request waiting out its timeout and retries)
        # would hold up the interpreter's exit for as long as they run: leave without them.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


def _dev(args: argparse.Namespace) -> int:
    from ps_pipelines.dev import DevOptions, run_dev

    return run_dev(DevOptions(home=Path(args.home), ui_port=args.ui_port, sandbox_port=args.sandbox_port,
                              scale=args.scale, seed=args.seed, verbose=args.verbose,
                              estate=args.estate or Estate.from_env()))


def add_home_scale_seed(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--home", default=str(DEFAULT_HOME),
                        help="Folder for the warehouse, sandbox database and Dagster instance (default: %(default)s).")
    parser.add_argument("--scale", type=float, default=1.0,
                        help="Sandbox data scale: time entries = 10,000 x scale (default: %(default)s).")
    parser.add_argument("--seed", type=int, default=42, help="Seed of the sandbox's data (default: %(default)s).")


def add_estate(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--estate", type=_estate, default=None,
                        help=f"The platforms the firm runs, one per role or more, comma-separated (default: "
                             f"${ESTATE_ENV}, else {DEFAULT_ESTATE_TEXT}); known: {', '.join(PLATFORM_ROLES)}.")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ps-pipelines", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="Run the main job end to end on the sandbox and print a summary.")
    add_home_scale_seed(run)
    run.add_argument("--job", default="refresh_all",
                     help="Job to run (default: %(default)s, the main job that converges ingestion, dbt, "
                          "write-back and publication; or ingest_all, or a write-back job).")
    run.add_argument("--full-refresh", action="store_true",
                     help="Ignore high-water marks, and rebuild and republish everything even if nothing changed.")
    run.add_argument("--sandbox-url", default=None, help="Use a sandbox already running here instead of starting one.")
    run.add_argument("--verbose", action="store_true",
                     help="Show the whole stream (Dagster's events, dbt's output) on the console too, not only in "
                          "the log file under --home.")
    add_estate(run)
    run.set_defaults(handler=_run)

    dev = commands.add_parser("dev", help="Start the sandbox and the Dagster UI (dagster dev).")
    add_home_scale_seed(dev)
    dev.add_argument("--ui-port", type=int, default=3000, help="Port of the Dagster UI (default: %(default)s).")
    dev.add_argument("--sandbox-port", type=int, default=DEFAULT_SANDBOX_PORT,
                     help="Port of the sandbox; the UI's runs and sensors call it there (default: %(default)s).")
    dev.add_argument("--verbose", action="store_true",
                     help="Show the Dagster services' info logs (every sensor tick) and the sandbox's output.")
    add_estate(dev)
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
