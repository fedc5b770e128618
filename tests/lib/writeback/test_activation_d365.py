"""Project activation into Dynamics 365 over real HTTP: a won deal becomes one ``CustomersV3``
customer and one ``Projects`` project (keys derived from the CRM ids), its workspace and CRM
status as for NetSuite, whatever is repeated or crashes in between."""

from __future__ import annotations

from typing import Any

import duckdb
import pandas as pd
import pytest

from ps_pipelines.lib.writeback import POSTED, Targets, run_activation
from ps_pipelines.lib.writeback.activation import STATUS_COMPLETE
from ps_pipelines.lib.writeback.d365 import CUSTOMER_GROUP, KEY_MAX, derived_key
from ps_pipelines.lib.writeback.outbox import OutboxRow
from ps_pipelines.lib.writeback.payloads import ACTIVATION_TABLE
from ps_pipelines.lib.writeback.senders import Outcome
from tests.conftest import RunningSandbox
from tests.lib.writeback.conftest import ledger_row, won_deal, workspaces_for, write_outbound


class Crash(Exception):
    pass


def _d365_deal(sandbox: RunningSandbox) -> pd.DataFrame:
    # A d365 estate's outbound row: the legal entity (dataAreaId) and currency code as ERP ids.
    return won_deal(sandbox, erp_platform="d365", erp_subsidiary_id="usmf", erp_currency_id="USD",
                    currency_code="USD")


def _records(targets: Targets, entity: str, field: str, value: str) -> list[dict[str, Any]]:
    return targets.d365.find(entity, f"{field} eq '{value}' and dataAreaId eq 'usmf'")


def assert_activated_once_in_d365(targets: Targets, request: pd.DataFrame) -> None:
    """One customer and one project of the deal in its legal entity, linked; the CRM told."""
    opportunity, account = request.at[0, "opportunity_id"], request.at[0, "customer_external_id"]
    [customer] = _records(targets, "CustomersV3", "PsCrmAccountId", account)
    assert customer["CustomerGroupId"] == CUSTOMER_GROUP and len(customer["CustomerAccount"]) <= KEY_MAX
    [project] = _records(targets, "Projects", "PsCrmOpportunityId", opportunity)
    assert (project["ProjectID"], project["CustomerAccount"]) == (derived_key(opportunity),
                                                                   customer["CustomerAccount"])
    [workspace] = workspaces_for(targets, opportunity)
    crm = targets.salesforce.get("Opportunity", opportunity)
    assert (crm["ERP_Project_Id__c"], crm["Activation_Status__c"]) == (project["ProjectID"], STATUS_COMPLETE)
    assert workspace["title"] == request.at[0, "project_name"]


def test_a_won_deal_gets_one_d365_customer_and_project_when_repeated(
    sandbox: RunningSandbox, con: duckdb.DuckDBPyConnection, targets: Targets
) -> None:
    request = _d365_deal(sandbox)
    write_outbound(con, ACTIVATION_TABLE, request)
    first = run_activation(con, targets, run_id="r1")
    assert (first.posted, first.dead, first.failed_retryable) == (4, 0, 0), first.failures
    assert ledger_row(con, f"d365:customer:{request.at[0, 'customer_external_id']}")["state"] == POSTED
    assert ledger_row(con, f"d365:project:{request.at[0, 'opportunity_id']}")["state"] == POSTED
    assert_activated_once_in_d365(targets, request)
    # A fresh ledger (a replay from scratch): the ERP records are found and updated, not made
    # twice. (The workspace, a create Kantata cannot deduplicate, is left out: the model knows it.)
    con.execute("DELETE FROM ops.outbox_attempts")
    con.execute("DELETE FROM ops.outbox")
    write_outbound(con, ACTIVATION_TABLE, request.assign(needs_psa_workspace=False))
    again = run_activation(con, targets, run_id="r2")
    assert (again.dead, again.failed_retryable) == (0, 0), again.failures
    assert_activated_once_in_d365(targets, request)


@pytest.mark.parametrize("crash_on", ["customer", "project"])
def test_a_crash_after_a_d365_create_is_resumed_without_a_second_record(
    sandbox: RunningSandbox, con: duckdb.DuckDBPyConnection, targets: Targets, crash_on: str
) -> None:
    request = _d365_deal(sandbox)
    write_outbound(con, ACTIVATION_TABLE, request)

    def crash(row: OutboxRow, outcome: Outcome) -> None:
        if row.target_system == "d365" and row.record_type == crash_on:
            raise Crash(row.outbox_key)

    with pytest.raises(Crash):
        run_activation(con, targets, run_id="r1", after_call=crash)
    resumed = run_activation(con, targets, run_id="r2")
    assert (resumed.dead, resumed.failed_retryable) == (0, 0), resumed.failures
    assert_activated_once_in_d365(targets, request)


def test_a_create_answered_already_exists_adopts_the_record(
    sandbox: RunningSandbox, con: duckdb.DuckDBPyConnection, targets: Targets
) -> None:
    request = _d365_deal(sandbox)
    account = request.at[0, "customer_external_id"]
    # The account's customer exists under our key without the CRM link (made by hand, or a
    # create whose answer was lost before the link was read): the POST is refused, then adopted.
    targets.d365.create("CustomersV3", {"dataAreaId": "usmf", "CustomerAccount": derived_key(account),
                                        "OrganizationName": "typed by hand", "CustomerGroupId": CUSTOMER_GROUP})
    write_outbound(con, ACTIVATION_TABLE, request)
    summary = run_activation(con, targets, run_id="r1")
    assert (summary.posted, summary.dead) == (4, 0), summary.failures
    assert_activated_once_in_d365(targets, request)
    [customer] = _records(targets, "CustomersV3", "PsCrmAccountId", account)
    assert (customer["CustomerAccount"], customer["OrganizationName"]) == (derived_key(account),
                                                                          request.at[0, "company_name"])
