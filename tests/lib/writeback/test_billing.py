"""Invoices into NetSuite over real HTTP: updates, rejections, invalid payloads and the concurrency cap.

The crash and fault cases (a crash after the call, a write dropped after it applied, 429 and
5xx, retries exhausted) run against every ERP in ``test_billing_erp.py``."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import date
from typing import Any

import duckdb
import pandas as pd
import pytest

from ps_pipelines.lib.writeback import DEAD, INVALID, POSTED, PostSettings, Targets, run_billing
from ps_pipelines.lib.writeback.outbox import OutboxRow
from ps_pipelines.lib.writeback.payloads import BILLING_TABLE
from ps_pipelines.lib.writeback.senders import Outcome
from tests.conftest import RunningSandbox
from tests.lib.writeback.conftest import (
    NsProject,
    attempts_of,
    billing_lines,
    erp_invoices,
    erp_lines,
    invoice_id,
    ledger_row,
    make_targets,
    write_outbound,
)


class Crash(Exception):
    """The process dies between the target's answer and the ledger write."""


def _crash_after_call(row: OutboxRow, outcome: Outcome) -> None:
    raise Crash(row.outbox_key)


def _key(project: NsProject, period: str = "2026-10") -> str:
    return f"netsuite:invoice:{invoice_id(project, period)}"


def test_posting_twice_yields_one_invoice_and_a_change_updates_it(
    con: duckdb.DuckDBPyConnection, targets: Targets, project: NsProject
) -> None:
    write_outbound(con, BILLING_TABLE, billing_lines(project))
    first = run_billing(con, targets, run_id="r1")
    assert (first.posted, first.updated, first.dead, first.failed_retryable) == (1, 0, 0, 0)
    assert first.requests >= 1 and first.posted_per_second > 0
    second = run_billing(con, targets, run_id="r2")
    assert (second.posted, second.unchanged, second.requests) == (0, 1, 0)
    [invoice] = erp_invoices(targets, invoice_id(project))
    assert float(invoice["foreigntotal"]) == 8 * 150 + 4.5 * 200
    assert invoice["entity"] == project.customer_id

    # One more hour on line 2 after posting: the same ERP invoice is updated, as version 2,
    # its lines replaced (NetSuite merges sublist lines unless told to replace them).
    write_outbound(con, BILLING_TABLE, billing_lines(project, [(8.0, 150.0), (5.5, 200.0)]))
    sent = RequestRecorder(targets.netsuite.client.session.request)
    targets.netsuite.client.session.request = sent
    third = run_billing(con, targets, run_id="r3")
    assert [(method, options["params"]) for method, options in sent.calls] == [("PUT", {"replace": "item"})]
    assert (third.posted, third.updated) == (0, 1)
    [updated] = erp_invoices(targets, invoice_id(project))
    assert updated["id"] == invoice["id"] and float(updated["foreigntotal"]) == 8 * 150 + 5.5 * 200
    assert [line["foreignamount"] for line in erp_lines(targets, updated["id"])] == ["1200.00", "1100.00"]
    row = ledger_row(con, _key(project))
    assert (row["state"], row["version"], row["posted_version"], row["target_id"], row["posted_run_id"]) == (
        POSTED, 2, 2, invoice["id"], "r3")


def test_an_erp_rejection_is_dead_with_its_detail_and_replayed_once_fixed(
    sandbox: RunningSandbox, con: duckdb.DuckDBPyConnection, targets: Targets, project: NsProject
) -> None:
    missing_customer = "8999999"
    write_outbound(con, BILLING_TABLE, billing_lines(project, erp_customer_id=missing_customer))
    summary = run_billing(con, targets, run_id="r1")
    row = ledger_row(con, _key(project))
    assert (summary.dead, summary.retries, row["state"], row["attempts"]) == (1, 0, DEAD, 1)  # 4xx: no retry
    assert "400 INVALID_KEY_OR_REF: Invalid entity reference key 8999999" in row["last_error"]
    assert summary.failures[_key(project)] == row["last_error"]
    assert attempts_of(con, _key(project)) == [(1, 1, DEAD, 400, True)]

    # Not replayed by an ordinary run; the cause is fixed in the ERP; replayed on request.
    assert run_billing(con, targets, run_id="r2").requests == 0
    customer = sandbox.control("GET", f"records/netsuite/customer/{project.customer_id}")
    sandbox.control("POST", "records/netsuite/customer", json={"id": missing_customer,
                                                               "body": {**customer, "id": missing_customer}})
    replay = run_billing(con, targets, run_id="r3", settings=PostSettings(replay_dead=True))
    assert (replay.posted, replay.dead) == (1, 0)
    [invoice] = erp_invoices(targets, invoice_id(project))
    assert invoice["entity"] == missing_customer


def test_invalid_payloads_are_never_sent(
    con: duckdb.DuckDBPyConnection, targets: Targets, project: NsProject
) -> None:
    write_outbound(con, BILLING_TABLE, billing_lines(project, period="2026-09"))
    summary = run_billing(con, targets, run_id="r1", closed_through=date(2026, 9, 30))
    key = _key(project, "2026-09")
    assert (summary.invalid, summary.posted, summary.requests) == (1, 0, 0)
    assert summary.as_metadata()["failing"] == {key: "period_open: invoice date 2026-09-30 is in a closed period"}
    assert ledger_row(con, key)["state"] == INVALID
    assert erp_invoices(targets, invoice_id(project, "2026-09")) == []
    # The period is reopened: the same payload now validates and is sent.
    reopened = run_billing(con, targets, run_id="r2", closed_through=date(2026, 8, 31))
    assert (reopened.posted, reopened.enqueue.revalidated) == (1, 1)


class RequestRecorder:
    """Wraps a session's ``request`` and keeps each call's method and options."""

    def __init__(self, send: Callable[..., Any]) -> None:
        self._send = send
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, method: str, url: str, **options: Any) -> Any:
        self.calls.append((method, options))
        return self._send(method, url, **options)


class InFlightGauge:
    """Wraps a session's ``request`` and records the most calls ever in flight at once."""

    def __init__(self, send: Callable[..., Any]) -> None:
        self._send = send
        self._lock = threading.Lock()
        self._now = 0
        self.peak = 0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            self._now += 1
            self.peak = max(self.peak, self._now)
        try:
            time.sleep(0.02)  # widens each call, so calls the poster lets overlap do overlap
            return self._send(*args, **kwargs)
        finally:
            with self._lock:
                self._now -= 1


@pytest.mark.parametrize("in_flight", [3, 6])
def test_the_concurrency_cap_bounds_the_calls_in_flight(
    sandbox: RunningSandbox, con: duckdb.DuckDBPyConnection, project: NsProject, in_flight: int
) -> None:
    sandbox.control("PUT", "limits", json={"netsuite_concurrency_limit": 3})
    # The client's own cap would hide the poster's: lift it, so only the poster limits.
    targets = make_targets(sandbox.url, max_in_flight=10, max_retries=8)
    gauge = InFlightGauge(targets.netsuite.client.session.request)
    targets.netsuite.client.session.request = gauge
    periods = [f"2027-{month:02d}" for month in range(1, 13)]
    write_outbound(con, BILLING_TABLE, pd.concat([billing_lines(project, period=p) for p in periods],
                                                 ignore_index=True))
    summary = run_billing(con, targets, run_id="r1", settings=PostSettings(max_in_flight=in_flight))
    assert summary.posted == 12
    assert gauge.peak == in_flight
    if in_flight <= 3:  # inside NetSuite's limit: never throttled
        assert summary.throttled == 0
