"""Project activation over real HTTP: a won deal becomes one ERP customer, one ERP project, one
PSA workspace and a CRM status, whatever fails or crashes in between."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import duckdb
import pytest

from ps_pipelines.lib.writeback import DEAD, FAILED_RETRYABLE, INVALID, POSTED, Targets, run_activation
from ps_pipelines.lib.writeback.activation import NEEDS_ATTENTION
from ps_pipelines.lib.writeback.outbox import OutboxRow
from ps_pipelines.lib.writeback.payloads import ACTIVATION_TABLE
from ps_pipelines.lib.writeback.senders import Outcome
from tests.conftest import RunningSandbox
from tests.lib.writeback.conftest import (
    NO_BACKOFF,
    assert_activated_once,
    attempts_of,
    ledger_row,
    ns_records,
    set_faults,
    won_deal,
    workspaces_for,
    write_outbound,
)


def test_a_won_deal_gets_exactly_one_customer_project_workspace_and_crm_status(
    sandbox: RunningSandbox, con: duckdb.DuckDBPyConnection, targets: Targets
) -> None:
    request = won_deal(sandbox)
    write_outbound(con, ACTIVATION_TABLE, request)
    first = run_activation(con, targets, run_id="r1")
    assert (first.posted, first.blocked, first.dead, first.failed_retryable) == (4, 0, 0, 0)
    assert_activated_once(targets, request)
    # The same request again (a replayed event, or the model not yet rebuilt): nothing is sent.
    again = run_activation(con, targets, run_id="r2")
    assert (again.posted, again.unchanged, again.requests) == (0, 4, 0)
    assert_activated_once(targets, request)


class Crash(Exception):
    pass


def _crash_after_workspace(row: OutboxRow, outcome: Outcome) -> None:
    if row.target_system == "kantata":
        raise Crash(row.outbox_key)


@pytest.mark.parametrize("failure", ["connection dropped after the create", "crash before the ledger write"])
def test_a_workspace_created_but_not_recorded_waits_out_its_lease_then_is_adopted_not_duplicated(
    sandbox: RunningSandbox, con: duckdb.DuckDBPyConnection, targets: Targets, failure: str
) -> None:
    request = won_deal(sandbox)
    write_outbound(con, ACTIVATION_TABLE, request)
    key = f"kantata:workspace:{request.at[0, 'opportunity_id']}"
    if failure.startswith("connection"):
        set_faults(sandbox, "kantata", {"queue": [{"kind": "drop", "after": True}],
                                        "path_contains": "/api/v1/workspaces"})
        first = run_activation(con, targets, run_id="r1", settings=NO_BACKOFF)
        # A POST is not re-sent once it may have landed: the row waits, the CRM step with it.
        assert (first.failed_retryable, first.blocked) == (1, 1)
        assert ledger_row(con, key)["state"] == FAILED_RETRYABLE
        assert "not re-sent: the request is not idempotent" in ledger_row(con, key)["last_error"]
        assert attempts_of(con, key)[-1][2] == "in_doubt"
    else:
        with pytest.raises(Crash):
            run_activation(con, targets, run_id="r1", after_call=_crash_after_workspace)
    assert len(workspaces_for(targets, request.at[0, "opportunity_id"])) == 1
    [(lease_until,)] = con.execute("SELECT lease_until FROM ops.outbox_attempts WHERE outbox_key = ?",
                                   [key]).fetchall()
    assert lease_until - datetime.now(UTC) > timedelta(minutes=4)  # the client's budget: 4 sends of 65 s

    # Before the lease has passed the create may still land: no call, the row says why.
    early = run_activation(con, targets, run_id="r2", settings=NO_BACKOFF)
    assert (early.waiting, early.requests, early.failed_retryable) == (1, 0, 0)
    assert ledger_row(con, key)["last_error"].startswith("waiting for in-flight attempt 1 of run r1 until ")
    assert len(attempts_of(con, key)) == 1

    # Once it has passed (a clock past the lease), the run looks again and adopts.
    later = run_activation(con, targets, run_id="r3", settings=NO_BACKOFF,
                           clock=lambda: datetime.now(UTC) + (lease_until - datetime.now(UTC)) + timedelta(seconds=1))
    assert later.failed_retryable == later.dead == later.waiting == 0
    outcomes = [attempt[2] for attempt in attempts_of(con, key)]
    assert outcomes == ["in_doubt" if failure.startswith("connection") else "abandoned", "adopted"]
    assert_activated_once(targets, request)


def test_an_open_create_from_before_leases_waits_for_the_lease_it_would_have_had(
    sandbox: RunningSandbox, con: duckdb.DuckDBPyConnection, targets: Targets
) -> None:
    request = won_deal(sandbox)
    write_outbound(con, ACTIVATION_TABLE, request)
    key = f"kantata:workspace:{request.at[0, 'opportunity_id']}"
    with pytest.raises(Crash):
        run_activation(con, targets, run_id="r1", after_call=_crash_after_workspace)
    con.execute("UPDATE ops.outbox_attempts SET lease_until = NULL")  # as a warehouse upgraded mid-flight
    waiting = run_activation(con, targets, run_id="r2", settings=NO_BACKOFF)
    assert (waiting.waiting, waiting.abandoned, waiting.requests) == (1, 0, 0)
    assert attempts_of(con, key) == [(1, 1, None, None, False)]


def test_an_incomplete_deal_shows_in_the_crm_and_activates_once_fixed(
    sandbox: RunningSandbox, con: duckdb.DuckDBPyConnection, targets: Targets
) -> None:
    request = won_deal(sandbox, tax_code=None, validation_errors="tax_code")
    opportunity = request.at[0, "opportunity_id"]
    write_outbound(con, ACTIVATION_TABLE, request)
    first = run_activation(con, targets, run_id="r1")
    assert (first.posted, first.invalid) == (1, 3)
    assert targets.salesforce.get("Opportunity", opportunity)["Activation_Status__c"] == NEEDS_ATTENTION + "tax_code"
    assert ns_records(targets, "job", opportunity) == []
    assert ledger_row(con, f"netsuite:job:{opportunity}")["state"] == INVALID

    # Sales ops fills in the tax code; the rebuilt model no longer flags the deal.
    write_outbound(con, ACTIVATION_TABLE, request.assign(tax_code="US-EXEMPT", validation_errors=None))
    fixed = run_activation(con, targets, run_id="r2")
    assert (fixed.posted, fixed.updated, fixed.invalid) == (3, 1, 0)
    assert_activated_once(targets, request)


def test_a_rejected_step_holds_back_the_deals_later_steps(
    sandbox: RunningSandbox, con: duckdb.DuckDBPyConnection, targets: Targets
) -> None:
    request = won_deal(sandbox, erp_subsidiary_id="999")
    opportunity = request.at[0, "opportunity_id"]
    write_outbound(con, ACTIVATION_TABLE, request)
    status_before = targets.salesforce.get("Opportunity", opportunity)["Activation_Status__c"]
    summary = run_activation(con, targets, run_id="r1")
    customer_key = f"netsuite:customer:{request.at[0, 'customer_external_id']}"
    assert (summary.dead, summary.blocked, summary.posted) == (1, 3, 0)
    assert ledger_row(con, customer_key)["state"] == DEAD
    assert "INVALID_KEY_OR_REF" in summary.failures[customer_key]
    assert summary.failures[f"salesforce:opportunity:{opportunity}"].startswith("blocked: waiting for")
    assert ns_records(targets, "job", opportunity) == [] and workspaces_for(targets, opportunity) == []
    assert targets.salesforce.get("Opportunity", opportunity)["Activation_Status__c"] == status_before
    assert ledger_row(con, f"salesforce:opportunity:{opportunity}")["state"] != POSTED
