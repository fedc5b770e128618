"""A killed posting's create may still land after the rerun looked for it: the rerun waits.

The trials run what an operator sees: records to create in an outbound table, the posting in a
child process killed with SIGKILL while the target is slowly creating them (the sandbox holds
each create for a few seconds, then commits it whether or not anyone is still listening), then
an immediate rerun. Two creates have no idempotency key: a Kantata workspace (activation) and a
Dynamics 365 free-text invoice, whose header id the server assigns (billing: header and lines in
one ``$batch`` change set). Before the fence the rerun looked, found nothing yet, and created a
second record per source record.

The target's client gets short timeouts here, so each attempt's lease (the client's whole time
budget plus the settings' margins) is seconds, not the production minutes.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pytest

from ps_pipelines.lib.warehouse.warehouse import Warehouse
from ps_pipelines.lib.writeback import POSTED, PostSummary, Targets, reconcile_invoices
from ps_pipelines.lib.writeback.payloads import ACTIVATION_TABLE, BILLING_TABLE
from tests.conftest import RunningSandbox
from tests.lib.writeback.conftest import (
    AMOUNTS,
    ERP_BOOKS,
    close_targets,
    make_targets,
    one_invoice,
    set_faults,
    won_deal,
    workspaces_for,
    write_outbound,
)
from tests.lib.writeback.posting_child import FLOWS, post_settings
from tests.lib.writeback.test_reconcile import GO_LIVE

ROOT = Path(__file__).resolve().parents[3]
SOURCES = 3  # source records per trial: their three creates go out together (max_in_flight 5)
SLOW_CREATE_SECONDS = 5.0  # how long the target holds a create before committing it
# One send of at most 1 + 7 s, no retry. The lease counts every send the client may make: Kantata
# (a fixed token) one, 8 s; Dynamics 365 two (one more after a 401 refreshes its OAuth token), 16 s.
SHORT_CLIENT = {"connect_timeout": 1.0, "read_timeout": 7.0, "max_retries": 0}
# Lease = budget + 3 s for the send to start (a loaded CI machine) + 1 s for a late landing.
LEASE_SETTINGS = {"lease_send_slack": 3.0, "lease_landing_grace": 1.0, "retry_backoff_seconds": 0.0}
# Seconds after the first create reached the target: spread over the 5 s the creates are in flight.
KILL_DELAYS = [0.0, 1.0, 2.0, 3.0, 4.0, 4.8]
PATIENCE = 120.0  # generous: the machine is shared
D365 = ERP_BOOKS["d365"]


@dataclass(frozen=True)
class Trial:
    """One flow's create without an idempotency key, as the trial drives and reads it."""

    flow: str  # the posting (posting_child's FLOWS)
    system: str  # the target: its client gets SHORT_CLIENT, its faults hold the create
    record_type: str  # the ledger's record type: outbox key = system:record_type:source id
    create_path: str  # the create's path: the fault's filter and the fault log's path
    # Writes SOURCES rows to the outbound table; returns their source ids (the ledger's external ids).
    prepare: Callable[[RunningSandbox, Warehouse], list[str]]
    records: Callable[[Targets, str], list[str]]  # ids of the target's records of one source id
    # What else must hold once every create is adopted (targets, warehouse connection, source ids).
    verify: Callable[[Targets, duckdb.DuckDBPyConnection, list[str]], None] | None = None

    def key(self, source: str) -> str:
        return f"{self.system}:{self.record_type}:{source}"


def won_deals(sandbox: RunningSandbox, warehouse: Warehouse) -> list[str]:
    deals = pd.concat([won_deal(sandbox) for _ in range(SOURCES)], ignore_index=True)
    with warehouse.connect() as con:
        write_outbound(con, ACTIVATION_TABLE, deals)
    return list(deals["opportunity_id"])


def invoices_due(sandbox: RunningSandbox, warehouse: Warehouse) -> list[str]:
    """One invoice of AMOUNTS per Dynamics 365 project, each its own source invoice."""
    targets = make_targets(sandbox.url)
    try:
        projects = D365.projects(sandbox, targets, SOURCES)
    finally:
        close_targets(targets)
    assert len(projects) == SOURCES, "the sandbox has too few Dynamics 365 projects with a customer"
    lines = pd.concat([D365.lines(project, AMOUNTS, workspace=f"70{n}") for n, project in enumerate(projects)],
                      ignore_index=True)
    with warehouse.connect() as con:
        write_outbound(con, BILLING_TABLE, lines)
    return list(dict.fromkeys(lines["invoice_external_id"]))


def invoices_reconcile(targets: Targets, con: duckdb.DuckDBPyConnection, sources: list[str]) -> None:
    """Each invoice's lines as the outbound rows priced them (Decimal), and the ledger agrees with D365."""
    for source in sources:
        one_invoice(D365, targets, source)
    result = reconcile_invoices(con, targets.d365, from_date=GO_LIVE)
    assert result.passed, result.describe()
    assert (result.ledger_invoices, result.erp_invoices) == (SOURCES, SOURCES), result.describe()


TRIALS = {
    "activation": Trial("activation", "kantata", "workspace", "/api/v1/workspaces", won_deals,
                        lambda targets, opp: sorted(w["id"] for w in workspaces_for(targets, opp))),
    "billing": Trial("billing", "d365", "invoice", "/data/$batch", invoices_due,
                     lambda targets, invoice: sorted(i["id"] for i in D365.invoices(targets, invoice)),
                     invoices_reconcile),
}


def wait_for(condition: Callable[[], Any], what: str, timeout: float = PATIENCE) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def slow_creates(sandbox: RunningSandbox, trial: Trial) -> list[dict[str, Any]]:
    return [e for e in sandbox.control("GET", "faults/log")
            if e["kind"] == "slow" and e["method"] == "POST" and e["path"] == trial.create_path]


def start_posting(sandbox: RunningSandbox, trial: Trial, warehouse: Path, run_id: str) -> subprocess.Popen[str]:
    spec = {"flow": trial.flow, "warehouse": str(warehouse), "url": sandbox.url, "run_id": run_id,
            "clients": {trial.system: SHORT_CLIENT}, "settings": LEASE_SETTINGS}
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    return subprocess.Popen([sys.executable, "-m", "tests.lib.writeback.posting_child", json.dumps(spec)],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def kill_mid_create(sandbox: RunningSandbox, trial: Trial, child: subprocess.Popen[str], delay: float) -> None:
    """SIGKILL ``child`` ``delay`` seconds after its first create reached the target."""
    def arrived() -> bool:
        if child.poll() is not None:
            _, err = child.communicate()
            raise AssertionError(f"the posting ended before its creates were in flight:\n{err[-3000:]}")
        return bool(slow_creates(sandbox, trial))

    try:
        wait_for(arrived, f"the first {trial.system} create to reach the target")
        time.sleep(delay)
    finally:
        child.send_signal(signal.SIGKILL)
        child.communicate(timeout=PATIENCE)
    assert child.returncode == -signal.SIGKILL, "the posting finished before it was killed: the trial proves nothing"


def rerun(trial: Trial, warehouse: Warehouse, sandbox: RunningSandbox, run_id: str) -> PostSummary:
    targets = make_targets(sandbox.url, overrides={trial.system: SHORT_CLIENT})
    try:
        with warehouse.connect() as con:
            return FLOWS[trial.flow](con, targets, run_id=run_id, settings=post_settings(LEASE_SETTINGS))
    finally:
        close_targets(targets)


def records_per_source(sandbox: RunningSandbox, trial: Trial, sources: list[str]) -> dict[str, list[str]]:
    targets = make_targets(sandbox.url)
    try:
        return {source: trial.records(targets, source) for source in sources}
    finally:
        close_targets(targets)


@pytest.mark.parametrize(("flow", "kill_after"), list(itertools.product(TRIALS, KILL_DELAYS)))
def test_a_create_in_flight_when_the_posting_was_killed_lands_once_however_soon_the_rerun(
    sandbox: RunningSandbox, tmp_path: Path, flow: str, kill_after: float
) -> None:
    trial = TRIALS[flow]
    path = tmp_path / "warehouse.duckdb"
    warehouse = Warehouse(path)
    sources = trial.prepare(sandbox, warehouse)
    set_faults(sandbox, trial.system, {"method": "POST", "path_contains": trial.create_path,
                                       "rates": {"slow_ms": SLOW_CREATE_SECONDS * 1000}})
    sandbox.control("DELETE", "faults/log")

    kill_mid_create(sandbox, trial, start_posting(sandbox, trial, path, "killed"), kill_after)
    resumed = rerun(trial, warehouse, sandbox, "rerun")  # at once: the killed run's creates are still in flight

    # Every create that reached the target lands (the sandbox commits it after its delay); once
    # they all have, no source record may have two target records.
    sent = len(slow_creates(sandbox, trial))
    wait_for(lambda: sum(map(len, records_per_source(sandbox, trial, sources).values())) >= sent,
             f"the {sent} create(s) sent to land")
    landed = records_per_source(sandbox, trial, sources)
    assert all(len(ids) <= 1 for ids in landed.values()), f"duplicate {trial.record_type}s: {landed}"

    # The rerun left each record whose create was in flight waiting, visibly, without a call.
    keys = [trial.key(source) for source in sources]
    with warehouse.connect() as con:
        ledger = {key: (state, error) for key, state, error in con.execute(
            "SELECT outbox_key, state, last_error FROM ops.outbox WHERE outbox_key IN (SELECT unnest(?))",
            [keys]).fetchall()}
        [(lease_end,)] = con.execute("SELECT max(lease_until) FROM ops.outbox_attempts WHERE run_id = 'killed'"
                                     ).fetchall()
    assert sorted(ledger) == sorted(keys), ledger
    waiting = [key for key, (state, _) in ledger.items() if state != POSTED]
    assert waiting and resumed.waiting == len(waiting), (ledger, resumed.as_metadata())
    for key in waiting:
        assert ledger[key][1].startswith("waiting for in-flight attempt 1 of run killed until "), ledger[key]

    # Once the leases have passed, the next run looks again and adopts what landed.
    wait_for(lambda: datetime.now(UTC) > lease_end, "the killed run's leases to pass")
    final = rerun(trial, warehouse, sandbox, "after-lease")
    assert (final.waiting, final.failed_retryable, final.dead, final.blocked) == (0, 0, 0, 0), final.as_metadata()
    landed = records_per_source(sandbox, trial, sources)
    assert len(slow_creates(sandbox, trial)) == SOURCES  # one create per source record, across all three runs
    outcomes: list[str] = []
    targets = make_targets(sandbox.url)
    try:
        with warehouse.connect() as con:
            for source, key in zip(sources, keys, strict=True):
                [(state, target_id)] = con.execute("SELECT state, target_id FROM ops.outbox WHERE outbox_key = ?",
                                                   [key]).fetchall()
                assert (state, [target_id]) == (POSTED, landed[source])
                if key not in waiting:
                    continue  # answered and recorded just before the kill
                attempts = con.execute("SELECT run_id, outcome, finished_at IS NOT NULL FROM ops.outbox_attempts "
                                       "WHERE outbox_key = ? ORDER BY attempt", [key]).fetchall()
                assert attempts[0] == ("killed", "abandoned", True)
                # Adopted when the killed run's create had been sent; created now when it never left.
                assert attempts[-1][0] == "after-lease" and attempts[-1][1] in ("adopted", "posted"), attempts
                outcomes.append(attempts[-1][1])
            if trial.verify is not None:
                trial.verify(targets, con, sources)
    finally:
        close_targets(targets)
    # What the trial did, for `pytest -s`: when the kill came, and how each source record ended.
    print(f"{flow}: kill {kill_after}s after the first create: {sent} create(s) in flight, {len(waiting)} waited, "
          f"then {outcomes}; {trial.record_type}s per source {[len(ids) for ids in landed.values()]}")
