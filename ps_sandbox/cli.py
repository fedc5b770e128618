"""The emulator's command line: ``python -m ps_sandbox serve ...`` (and ``ps-pipelines sandbox serve``)."""

from __future__ import annotations

import argparse

from ps_sandbox.generate import PSA_CRMS

DEFAULT_PORT = 8765


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``serve`` options, shared with ``ps-pipelines sandbox serve``."""
    parser.add_argument("--host", default="127.0.0.1", help="Interface to listen on.")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="Port to listen on (0 = any free port).")
    parser.add_argument("--scale", type=float, default=1.0, help="Data scale (time entries = 10,000 x scale).")
    parser.add_argument("--seed", type=int, default=42, help="Seed of the generated data.")
    parser.add_argument("--state", default=".ps_pipelines/sandbox.sqlite", help="Sandbox database file.")
    parser.add_argument("--salesforce-package", dest="salesforce_packages", action="append", default=[],
                        choices=("certinia",),
                        help="A managed package the Salesforce org runs (certinia: Certinia PSA's pse__ objects).")
    parser.add_argument("--psa-crm", default=PSA_CRMS[0], choices=PSA_CRMS,
                        help="The CRM whose won deals the PSA's projects deliver (hubspot: the firm sells in "
                             "HubSpot, so its delivered deals are in the portal and Certinia projects name them).")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ps_sandbox", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    add_serve_arguments(commands.add_parser("serve", help="Serve the emulated platform APIs."))
    args = parser.parse_args(argv)
    from ps_sandbox.serve import serve  # the whole emulator: imported only to serve

    serve(host=args.host, port=args.port, scale=args.scale, seed=args.seed, state=args.state,
          salesforce_packages=tuple(args.salesforce_packages), psa_crm=args.psa_crm)
    return 0

