"""Sandbox start-up cost with the Dynamics 365 emulation: generation, first requests.

Dynamics 365 records are derived lazily from the generated ERP records on the first Dynamics
365 request (``ps_sandbox.d365_data``), so a sandbox whose estate does not use Dynamics 365
generates and starts exactly as before. This measures, on a fresh state at ``--scale``:

1. ``populate``: generation into a new state file (unchanged by the emulation);
2. ``first other``: server start and a first non-Dynamics request (a Salesforce token);
3. ``first d365``: a token and the first ``/data`` request, which pays the derivation;
4. ``second d365``: the next ``/data`` request.

On 2 shared cores (other work running, so wall times are noisy), against the parent commit
cc1f270 (generation only, from ``git archive``):

| scale | populate (parent) | populate (this) | first d365 request (derivation) | rows derived | next request |
|---|---|---|---|---|---|
| 0.1 | 0.22 s | 0.60 s | 0.20 s | 2,375 | 9 ms |
| 1 | 2.64 s | 2.19 s | 0.28 s | 3,085 | 8 ms |
| 10 | 22.6 s | 24.7 s | 0.96 s | 13,459 | 7 ms |

Generation runs the same code as before (the differences are noise); the derivation is paid
once per state file, by the first Dynamics 365 request.

    .venv/bin/python bench/bench_d365_startup.py --scale 1
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import requests

from ps_sandbox.app import open_sandbox, start_server
from ps_sandbox.context import DEFAULT_CREDENTIALS, SandboxConfig
from ps_sandbox.generate import record_counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", type=float, default=1.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        ctx = open_sandbox(Path(tmp) / "sandbox.sqlite", SandboxConfig(scale=args.scale))
        populated = time.perf_counter()
        server = start_server(ctx, port=0)
        url = f"http://127.0.0.1:{server.server_port}"
        sf = DEFAULT_CREDENTIALS["salesforce"]
        requests.post(f"{url}/services/oauth2/token", data={"grant_type": "client_credentials", **sf},
                      timeout=60).raise_for_status()
        other = time.perf_counter()
        creds = DEFAULT_CREDENTIALS["d365"]
        token = requests.post(f"{url}/{creds['tenant']}/oauth2/v2.0/token", timeout=60, data={
            "grant_type": "client_credentials", "client_id": creds["client_id"],
            "client_secret": creds["client_secret"], "scope": f"{url}/.default"}).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        before_first = time.perf_counter()
        requests.get(f"{url}/data/LegalEntities", headers=headers, timeout=600).raise_for_status()
        first = time.perf_counter()
        requests.get(f"{url}/data/LegalEntities", headers=headers, timeout=600).raise_for_status()
        second = time.perf_counter()
        server.shutdown()
        derived = sum(n for key, n in record_counts(ctx.store).items() if key.startswith("d365."))
    print(f"scale {args.scale}: populate {populated - started:.2f} s, first other request "
          f"{other - populated:.2f} s, first d365 request {first - before_first:.2f} s "
          f"({derived:,} rows derived), second d365 request {(second - first) * 1000:.0f} ms")


if __name__ == "__main__":
    main()
