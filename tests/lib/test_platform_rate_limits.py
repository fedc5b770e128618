"""The connectors stay within the Kantata and Workday request rates the sandbox enforces:
a 429 is waited out for its ``Retry-After`` and the read completes (see the rate-limit notes in
ps_sandbox/platforms/kantata.py and workday.py for the vendor documents)."""

from __future__ import annotations

import time

import requests

from ps_pipelines.lib.contracts import kantata as kantata_contracts
from ps_pipelines.lib.contracts import workday as workday_contracts
from ps_pipelines.lib.sources import KantataClient, WorkdayClient
from ps_sandbox.context import DEFAULT_CREDENTIALS
from tests.conftest import RunningSandbox

LIMIT = 60  # a token a second: a drained bucket answers Retry-After: 1


def _drain(url: str, count: int, **kwargs: object) -> None:
    for _ in range(count):
        requests.get(url, timeout=30, **kwargs)  # type: ignore[arg-type]


def test_kantata_client_waits_out_429s(sandbox: RunningSandbox) -> None:
    token = DEFAULT_CREDENTIALS["kantata"]["token"]
    sandbox.control("PUT", "limits", json={"kantata_requests_per_minute": LIMIT})
    _drain(f"{sandbox.url}/api/v1/users", LIMIT, headers={"Authorization": f"Bearer {token}"})
    client = KantataClient(sandbox.url, token, per_page=200, backoff_max=5)
    started = time.monotonic()
    rows = [row for page in client.extract(kantata_contracts.USERS, since=None) for row in page]
    assert len(rows) == sandbox.ctx.store.count("kantata", "users")
    assert client.stats()["throttled"] >= 1
    assert time.monotonic() - started < 30


def test_workday_client_waits_out_429s(sandbox: RunningSandbox) -> None:
    creds = DEFAULT_CREDENTIALS["workday"]
    sandbox.control("PUT", "limits", json={"workday_requests_per_minute": LIMIT})
    _drain(f"{sandbox.url}/ccx/api/v1/{creds['tenant']}/workers", LIMIT)  # unauthorized, but counted
    client = WorkdayClient(sandbox.url, **creds, workers_page_size=100, backoff_max=5)
    rows = [row for page in client.extract(workday_contracts.WORKERS, since=None) for row in page]
    assert len(rows) == sandbox.ctx.store.count("workday", "workers")
    assert client.stats()["throttled"] >= 1
