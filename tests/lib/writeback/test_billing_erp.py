"""Invoices into each ERP (NetSuite, Dynamics 365) over real HTTP: exactly one invoice per source
invoice whatever happens between the call and the ledger, amounts checked as Decimal.

NetSuite's invoice write is an upsert by external id; Dynamics 365's is a change set creating a
free-text invoice header (server-assigned id) with its lines, fenced by the poster's lease."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import duckdb
import pandas as pd
import pytest

from ps_pipelines.lib.writeback import DEAD, FAILED_RETRYABLE, POSTED, PostSettings, Targets, run_billing
from ps_pipelines.lib.writeback.outbox import OutboxRow
from ps_pipelines.lib.writeback.payloads import BILLING_TABLE
from ps_pipelines.lib.writeback.senders import Outcome
from ps_sandbox.d365_data import post_free_text_invoices
from tests.conftest import RunningSandbox
from tests.lib.writeback.conftest import (
    AMOUNTS,
    ERP_BOOKS,
    ErpBook,
    attempts_of,
    invoice_id,
    ledger_row,
    make_targets,
    one_invoice,
    set_faults,
    write_outbound,
)


class Crash(Exception):
    """The process dies between the ERP's answer and the ledger write."""


def _crash_after_call(row: OutboxRow, outcome: Outcome) -> None:
    raise Crash(row.outbox_key)


def test_posting_twice_yieldsone_invoice(
    sandbox: RunningSandbox, con: duckdb.DuckDBPyConnection, targets: Targets, erp: ErpBook
) -> None:
    [project] = erp.projects(sandbox, targets)
    write_outbound(con, BILLING_TABLE, erp.lines(project, AMOUNTS))
    first = run_billing(con, targets, run_id="r1")
    assert (first.posted, first.dead, first.failed_retryable) == (1, 0, 0), first.failures
    second = run_billing(con, targets, run_id="r2")
    assert (second.posted, second.unchanged, second.requests) == (0, 1, 0)
    invoice = one_invoice(erp, targets, invoice_id(project))
    row = ledger_row(con, erp.key(project))
    assert (row["state"], row["target_id"]) == (POSTED, invoice["id"])


def test_a_crash_after_the_erp_call_is_resumed_without_a_second_invoice(
    sandbox: RunningSandbox, con: duckdb.DuckDBPyConnection, targets: Targets, erp: ErpBook
) -> None:
    [project] = erp.projects(sandbox, targets)
    write_outbound(con, BILLING_TABLE, erp.lines(project, AMOUNTS))
    with pytest.raises(Crash):
        run_billing(con, targets, run_id="r1", after_call=_crash_after_call)
    assert len(erp.invoices(targets, invoice_id(project))) == 1  # the ERP has it ...
    assert ledger_row(con, erp.key(project))["state"] != POSTED  # ... the ledger does not know
    # A create without a key (D365) waits for the crashed attempt's lease, then looks it up
    # and adopts it; an upsert (NetSuite) is sent again at once.
    later = datetime.now(UTC) + timedelta(hours=1)
    resumed = run_billing(con, targets, run_id="r2", clock=lambda: later)
    assert (resumed.posted, resumed.waiting, resumed.abandoned) == (1, 0, 1), resumed.as_metadata()
    invoice = one_invoice(erp, targets, invoice_id(project))
    assert ledger_row(con, erp.key(project))["target_id"] == invoice["id"]
    outcome = "adopted" if erp.name == "d365" else "posted"
    assert [a[2] for a in attempts_of(con, erp.key(project))] == ["abandoned", outcome]


def test_a_write_applied_but_unacknowledged_is_resent_as_the_same_invoice(
    sandbox: RunningSandbox, con: duckdb.DuckDBPyConnection, targets: Targets, erp: ErpBook
) -> None:
    [project] = erp.projects(sandbox, targets)
    write_outbound(con, BILLING_TABLE, erp.lines(project, AMOUNTS))
    set_faults(sandbox, erp.name, {"queue": [{"kind": "drop", "after": True}], "path_contains": erp.fault_path})
    first = run_billing(con, targets, run_id="r1")
    assert [entry["kind"] for entry in sandbox.control("GET", "faults/log")] == ["drop"]
    if erp.name == "d365":
        # The change set may have applied: not re-sent; the row waits out its lease, then the
        # next run finds the invoice and adopts it.
        assert (first.posted, first.failed_retryable) == (0, 1), first.as_metadata()
        later = datetime.now(UTC) + timedelta(hours=1)
        second = run_billing(con, targets, run_id="r2", settings=PostSettings(retry_backoff_seconds=0.0),
                             clock=lambda: later)
        assert (second.posted, second.failed_retryable) == (1, 0), second.as_metadata()
        assert attempts_of(con, erp.key(project))[-1][2] == "adopted"
    else:
        assert (first.posted, first.retries) == (1, 1)
    invoice = one_invoice(erp, targets, invoice_id(project))
    assert ledger_row(con, erp.key(project))["target_id"] == invoice["id"]


def test_throttling_and_server_errors_end_in_success_without_duplicates(
    sandbox: RunningSandbox, con: duckdb.DuckDBPyConnection, erp: ErpBook
) -> None:
    faults = [{"kind": "429", "retry_after": 0}, {"kind": "503"}, {"kind": "500"}, {"kind": "429"}]
    targets = make_targets(sandbox.url, max_retries=len(faults))
    projects = erp.projects(sandbox, targets, 3)
    write_outbound(con, BILLING_TABLE, pd.concat([erp.lines(p, AMOUNTS, workspace=f"70{i}")
                                                  for i, p in enumerate(projects)], ignore_index=True))
    if erp.name == "d365":  # a 5xx may have applied a create: only 429s are retried by the client
        faults = [{"kind": "429", "retry_after": 0}, {"kind": "429", "retry_after": 0}]
    set_faults(sandbox, erp.name, {"queue": faults, "path_contains": erp.fault_path})
    summary = run_billing(con, targets, run_id="r1")
    assert (summary.posted, summary.failed_retryable, summary.dead) == (3, 0, 0), summary.as_metadata()
    assert summary.throttled == 2
    for i, p in enumerate(projects):
        one_invoice(erp, targets, invoice_id(p, workspace=f"70{i}"))


def test_server_errors_on_a_d365_create_end_inone_invoice(
    sandbox: RunningSandbox, con: duckdb.DuckDBPyConnection, targets: Targets
) -> None:
    """A 5xx on a change set that creates may have applied it: the row is in doubt, waits out
    its lease, then finds and adopts the invoice or creates it; never two."""
    erp = ERP_BOOKS["d365"]
    [project] = erp.projects(sandbox, targets)
    write_outbound(con, BILLING_TABLE, erp.lines(project, AMOUNTS))
    set_faults(sandbox, "d365", {"queue": [{"kind": "503"}], "path_contains": erp.fault_path})
    first = run_billing(con, targets, run_id="r1")
    assert (first.posted, first.failed_retryable) == (0, 1)
    assert "may" in ledger_row(con, erp.key(project))["last_error"]
    later = datetime.now(UTC) + timedelta(hours=1)
    second = run_billing(con, targets, run_id="r2", clock=lambda: later)
    assert (second.posted, second.failed_retryable) == (1, 0)
    one_invoice(erp, targets, invoice_id(project))


def test_retries_exhausted_make_the_row_retryable_then_dead(
    sandbox: RunningSandbox, con: duckdb.DuckDBPyConnection, erp: ErpBook
) -> None:
    targets = make_targets(sandbox.url, max_retries=1)  # two sends per run
    [project] = erp.projects(sandbox, targets)
    write_outbound(con, BILLING_TABLE, erp.lines(project, AMOUNTS))
    # 429s: refused before any work, so even a create is retried (and never in doubt).
    set_faults(sandbox, erp.name, {"queue": [{"kind": "429", "retry_after": 0}] * 4,
                                   "path_contains": erp.fault_path})
    settings = PostSettings(max_attempts=2, retry_backoff_seconds=3600)
    first = run_billing(con, targets, run_id="r1", settings=settings)
    row = ledger_row(con, erp.key(project))
    assert (first.failed_retryable, row["state"], row["attempts"]) == (1, FAILED_RETRYABLE, 1)
    assert "429" in row["last_error"] and "gave up after 2 attempt(s)" in row["last_error"]
    assert run_billing(con, targets, run_id="r2", settings=settings).requests == 0
    later = row["next_attempt_at"].to_pydatetime() + timedelta(seconds=1)
    second = run_billing(con, targets, run_id="r3", settings=settings, clock=lambda: later)
    row = ledger_row(con, erp.key(project))
    assert (second.dead, row["state"], row["attempts"]) == (1, DEAD, 2)
    assert erp.invoices(targets, invoice_id(project)) == []


def test_a_new_version_replaces_the_d365_lines_and_a_posted_invoice_is_refused(
    sandbox: RunningSandbox, con: duckdb.DuckDBPyConnection, targets: Targets
) -> None:
    erp = ERP_BOOKS["d365"]
    [project] = erp.projects(sandbox, targets)
    write_outbound(con, BILLING_TABLE, erp.lines(project, AMOUNTS))
    assert run_billing(con, targets, run_id="r1").posted == 1
    first = one_invoice(erp, targets, invoice_id(project))
    changed = ((8.0, 150.0), (5.5, 200.0))  # one line fewer, one hour more
    write_outbound(con, BILLING_TABLE, erp.lines(project, changed))
    assert run_billing(con, targets, run_id="r2").updated == 1
    assert one_invoice(erp, targets, invoice_id(project), changed)["id"] == first["id"]

    # The accountant posts it; a later change is refused, naming the invoice.
    post_free_text_invoices(sandbox.ctx.store, sandbox.ctx.store.now(), identifiers=[int(first["id"])])
    write_outbound(con, BILLING_TABLE, erp.lines(project, AMOUNTS))
    third = run_billing(con, targets, run_id="r3")
    row = ledger_row(con, erp.key(project))
    assert (third.dead, row["state"]) == (1, DEAD)
    assert f"invoice {invoice_id(project)} is posted in Dynamics 365" in row["last_error"]
    assert one_invoice(erp, targets, invoice_id(project), changed)["posted"]
