"""A killed posting's create may still land after the rerun looked for it: the rerun waits.

The trials run what an operator sees: deals won, the activation posting in a child process
killed with SIGKILL while the PSA is slowly creating the workspaces (the sandbox holds each
``POST /api/v1/workspaces`` for a few seconds, then commits it whether or not anyone is still
listening), then an immediate rerun. Kantata has no idempotency key for a workspace, so before
the fence the rerun looked, found nothing yet, and created a second workspace per deal.

The Kantata client gets short timeouts here, so each attempt's lease (the client's whole time
budget plus the settings' margins) is seconds, not the production minutes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from ps_pipelines.lib.warehouse.warehouse import Warehouse
from ps_pipelines.lib.writeback import POSTED, run_activation
from ps_pipelines.lib.writeback.payloads import ACTIVATION_TABLE
from tests.conftest import RunningSandbox
from tests.lib.writeback.conftest import make_targets, set_faults, workspaces_for, write_outbound
from tests.lib.writeback.posting_child import post_settings
from tests.lib.writeback.test_activation import won_deal

ROOT = Path(__file__).resolve().parents[3]
DEALS = 3  # their three creates go out together (max_in_flight 5)
SLOW_CREATE_SECONDS = 5.0  # how long the PSA holds a create before committing it
# One send of at most 1 + 7 s, no retry: the create's budget is 8 s (the create itself takes 5 s).
KANTATA_CLIENT = {"connect_timeout": 1.0, "read_timeout": 7.0, "max_retries": 0}
# Lease = 8 s budget + 3 s for the send to start (a loaded CI machine) + 1 s for a late landing.
LEASE_SETTINGS = {"lease_send_slack": 3.0, "lease_landing_grace": 1.0, "retry_backoff_seconds": 0.0}
# Seconds after the first create reached the PSA: spread over the 5 s the creates are in flight.
KILL_DELAYS = [0.0, 1.0, 2.0, 3.0, 4.0, 4.8]
PATIENCE = 120.0  # generous: the machine is shared


def wait_for(condition: Callable[[], Any], what: str, timeout: float = PATIENCE) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def slow_creates(sandbox: RunningSandbox) -> list[dict[str, Any]]:
    return [e for e in sandbox.control("GET", "faults/log")
            if e["kind"] == "slow" and e["method"] == "POST" and e["path"] == "/api/v1/workspaces"]


def start_posting(sandbox: RunningSandbox, warehouse: Path, run_id: str) -> subprocess.Popen[str]:
    spec = {"warehouse": str(warehouse), "url": sandbox.url, "run_id": run_id, "kantata": KANTATA_CLIENT,
            "settings": LEASE_SETTINGS}
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    return subprocess.Popen([sys.executable, "-m", "tests.lib.writeback.posting_child", json.dumps(spec)],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def kill_mid_create(sandbox: RunningSandbox, child: subprocess.Popen[str], delay: float) -> None:
    """SIGKILL ``child`` ``delay`` seconds after its first workspace create reached the PSA."""
    def arrived() -> bool:
        if child.poll() is not None:
            _, err = child.communicate()
            raise AssertionError(f"the posting ended before its creates were in flight:\n{err[-3000:]}")
        return bool(slow_creates(sandbox))

    try:
        wait_for(arrived, "the first workspace create to reach the PSA")
        time.sleep(delay)
    finally:
        child.send_signal(signal.SIGKILL)
        child.communicate(timeout=PATIENCE)
    assert child.returncode == -signal.SIGKILL, "the posting finished before it was killed: the trial proves nothing"


def rerun(warehouse: Warehouse, sandbox: RunningSandbox, run_id: str) -> Any:
    targets = make_targets(sandbox.url, kantata=KANTATA_CLIENT)
    try:
        with warehouse.connect() as con:
            return run_activation(con, targets, run_id=run_id, settings=post_settings(LEASE_SETTINGS))
    finally:
        for client in (targets.netsuite, targets.kantata, targets.salesforce):
            client.client.close()


def workspaces_per_deal(sandbox: RunningSandbox, opportunities: list[str]) -> dict[str, list[str]]:
    targets = make_targets(sandbox.url)
    try:
        return {opp: sorted(w["id"] for w in workspaces_for(targets, opp)) for opp in opportunities}
    finally:
        targets.kantata.client.close()


@pytest.mark.parametrize("kill_after", KILL_DELAYS)
def test_a_create_in_flight_when_the_posting_was_killed_lands_once_however_soon_the_rerun(
    sandbox: RunningSandbox, tmp_path: Path, kill_after: float
) -> None:
    path = tmp_path / "warehouse.duckdb"
    warehouse = Warehouse(path)
    deals = pd.concat([won_deal(sandbox) for _ in range(DEALS)], ignore_index=True)
    opportunities = list(deals["opportunity_id"])
    with warehouse.connect() as con:
        write_outbound(con, ACTIVATION_TABLE, deals)
    set_faults(sandbox, "kantata", {"method": "POST", "path_contains": "/api/v1/workspaces",
                                    "rates": {"slow_ms": SLOW_CREATE_SECONDS * 1000}})
    sandbox.control("DELETE", "faults/log")

    kill_mid_create(sandbox, start_posting(sandbox, path, "killed"), kill_after)
    resumed = rerun(warehouse, sandbox, "rerun")  # at once: the killed run's creates are still in flight

    # Every create that reached the PSA lands (the sandbox commits it after its delay); once
    # they all have, no deal may have two workspaces.
    sent = len(slow_creates(sandbox))
    wait_for(lambda: sum(map(len, workspaces_per_deal(sandbox, opportunities).values())) >= sent,
             f"the {sent} create(s) sent to land")
    landed = workspaces_per_deal(sandbox, opportunities)
    assert all(len(ids) <= 1 for ids in landed.values()), f"duplicate workspaces: {landed}"

    # The rerun left each workspace whose create was in flight waiting, visibly, without a call.
    keys = [f"kantata:workspace:{opp}" for opp in opportunities]
    with warehouse.connect() as con:
        ledger = {key: (state, error) for key, state, error in con.execute(
            "SELECT outbox_key, state, last_error FROM ops.outbox WHERE outbox_key IN (SELECT unnest(?))",
            [keys]).fetchall()}
        [(lease_end,)] = con.execute("SELECT max(lease_until) FROM ops.outbox_attempts WHERE run_id = 'killed'"
                                     ).fetchall()
    waiting = [key for key, (state, _) in ledger.items() if state != POSTED]
    assert waiting and resumed.waiting == len(waiting), (ledger, resumed.as_metadata())
    for key in waiting:
        assert ledger[key][1].startswith("waiting for in-flight attempt 1 of run killed until "), ledger[key]

    # Once the leases have passed, the next run looks again and adopts what landed.
    wait_for(lambda: datetime.now(UTC) > lease_end, "the killed run's leases to pass")
    final = rerun(warehouse, sandbox, "after-lease")
    assert (final.waiting, final.failed_retryable, final.dead, final.blocked) == (0, 0, 0, 0), final.as_metadata()
    landed = workspaces_per_deal(sandbox, opportunities)
    assert len(slow_creates(sandbox)) == DEALS  # one create per deal, across all three runs
    outcomes: list[str] = []
    with warehouse.connect() as con:
        for opp, key in zip(opportunities, keys, strict=True):
            [(state, target_id)] = con.execute("SELECT state, target_id FROM ops.outbox WHERE outbox_key = ?",
                                               [key]).fetchall()
            assert (state, [target_id]) == (POSTED, landed[opp])
            if key not in waiting:
                continue  # answered and recorded just before the kill
            attempts = con.execute("SELECT run_id, outcome, finished_at IS NOT NULL FROM ops.outbox_attempts "
                                   "WHERE outbox_key = ? ORDER BY attempt", [key]).fetchall()
            assert attempts[0] == ("killed", "abandoned", True)
            # Adopted when the killed run's create had been sent; created now when it never left.
            assert attempts[-1][0] == "after-lease" and attempts[-1][1] in ("adopted", "posted"), attempts
            outcomes.append(attempts[-1][1])
    # What the trial did, for `pytest -s`: when the kill came, and how each deal ended.
    print(f"kill {kill_after}s after the first create: {sent} create(s) in flight, {len(waiting)} waited, "
          f"then {outcomes}; workspaces per deal {[len(ids) for ids in landed.values()]}")
