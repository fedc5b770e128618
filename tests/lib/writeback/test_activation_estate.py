"""Project activation in a HubSpot + Certinia estate, over real HTTP: the same flow as the default
estate's, with the deal's CRM and PSA steps going to HubSpot and Certinia (issue 13)."""

from __future__ import annotations

from collections.abc import Iterator

import duckdb
import orjson
import pandas as pd
import pytest

from ps_pipelines.lib.contracts.certinia import DEAL_ID_FIELD
from ps_pipelines.lib.writeback import POSTED, Targets, run_activation
from ps_pipelines.lib.writeback.activation import STATUS_COMPLETE, activation_items, read_activation_requests
from ps_pipelines.lib.writeback.payloads import ACTIVATION_TABLE
from ps_pipelines.lib.writeback.readback import entities_to_read_back
from tests.conftest import RunningSandbox
from tests.lib.writeback.conftest import (
    NO_BACKOFF,
    certinia_projects_of,
    close_targets,
    ledger_row,
    make_targets,
    ns_records,
    set_faults,
    won_deal,
    won_hubspot_deal,
    write_outbound,
)


@pytest.fixture
def certinia_targets(certinia_sandbox: RunningSandbox) -> Iterator[Targets]:
    built = make_targets(certinia_sandbox.url)
    yield built
    close_targets(built)


def _keys(request: pd.DataFrame) -> list[str]:
    return [item.key for item in activation_items(request)]


def _as_stored(request: pd.DataFrame) -> list[tuple[str, bytes, list[str]]]:
    return [(item.key, orjson.dumps(item.payload), item.depends_on) for item in activation_items(request)]


def test_a_hubspot_certinia_request_becomes_hubspot_deal_and_certinia_project_steps(
    certinia_sandbox: RunningSandbox,
) -> None:
    request = won_hubspot_deal(certinia_sandbox)
    deal, company = request.at[0, "opportunity_id"], request.at[0, "customer_external_id"]
    assert _keys(request) == [f"netsuite:customer:{company}", f"netsuite:job:{deal}", f"certinia:project:{deal}",
                              f"hubspot:deal:{deal}"]
    items = {item.key: item for item in activation_items(request)}
    assert items[f"hubspot:deal:{deal}"].payload == {"ps_external_id": {"$ref": f"netsuite:job:{deal}"},
                                                     "ps_activation_status": STATUS_COMPLETE}
    project = items[f"certinia:project:{deal}"].payload
    assert project["Name"] == request.at[0, "project_name"]
    # A HubSpot deal is no record of the org: the package's opportunity lookup stays unset.
    assert "pse__Opportunity__c" not in project


def test_the_default_estates_items_are_unchanged_by_the_platform_columns(
    sandbox: RunningSandbox, con: duckdb.DuckDBPyConnection
) -> None:
    request = won_deal(sandbox)
    explicit = request.assign(crm_platform="salesforce", psa_platform="kantata")
    assert _as_stored(explicit) == _as_stored(request)
    opportunity = request.at[0, "opportunity_id"]
    assert _keys(request)[2:] == [f"kantata:workspace:{opportunity}", f"salesforce:opportunity:{opportunity}"]
    # An outbound model built before the columns existed reads as the default estate.
    write_outbound(con, ACTIVATION_TABLE, request)
    read = read_activation_requests(con)
    assert (read.at[0, "crm_platform"], read.at[0, "psa_platform"]) == ("salesforce", "kantata")
    assert _as_stored(read) == _as_stored(request)


def test_a_won_hubspot_deal_gets_one_certinia_project_and_its_deal_properties(
    certinia_sandbox: RunningSandbox, con: duckdb.DuckDBPyConnection, certinia_targets: Targets
) -> None:
    request = won_hubspot_deal(certinia_sandbox)
    deal = request.at[0, "opportunity_id"]
    write_outbound(con, ACTIVATION_TABLE, request)
    first = run_activation(con, certinia_targets, run_id="r1")
    assert (first.posted, first.blocked, first.dead, first.failed_retryable) == (4, 0, 0, 0)
    _assert_activated_once(certinia_sandbox, certinia_targets, request)
    again = run_activation(con, certinia_targets, run_id="r2")
    assert (again.posted, again.unchanged) == (0, 4)
    _assert_activated_once(certinia_sandbox, certinia_targets, request)
    assert entities_to_read_back(["hubspot:deal", "certinia:project"]) == ["certinia__projects", "hubspot__deals"]
    assert ledger_row(con, f"certinia:project:{deal}")["state"] == POSTED


@pytest.mark.parametrize("drops", [1, 4], ids=["answer lost once (the client's retry)",
                                               "answer lost on every try (the next run)"])
def test_a_certinia_project_created_but_not_acknowledged_is_not_created_twice(
    certinia_sandbox: RunningSandbox, con: duckdb.DuckDBPyConnection, certinia_targets: Targets, drops: int
) -> None:
    request = won_hubspot_deal(certinia_sandbox)
    deal = request.at[0, "opportunity_id"]
    write_outbound(con, ACTIVATION_TABLE, request)
    # The create lands, then the connection closes before its answer (drop "after").
    set_faults(certinia_sandbox, "salesforce", {"queue": [{"kind": "drop", "after": True}] * drops,
                                                "path_contains": "pse__Proj__c", "method": "PATCH"})
    run_activation(con, certinia_targets, run_id="r1", settings=NO_BACKOFF)
    assert len(certinia_projects_of(certinia_sandbox, deal)) == 1
    dropped = [e for e in certinia_sandbox.control("GET", "faults/log") if e.get("kind") == "drop"]
    assert len(dropped) == drops
    run_activation(con, certinia_targets, run_id="r2", settings=NO_BACKOFF)
    [project] = certinia_projects_of(certinia_sandbox, deal)
    row = ledger_row(con, f"certinia:project:{deal}")
    assert (row["state"], row["target_id"]) == (POSTED, project["Id"])
    _assert_activated_once(certinia_sandbox, certinia_targets, request)


def _assert_activated_once(sandbox: RunningSandbox, targets: Targets, request: pd.DataFrame) -> None:
    deal, company = request.at[0, "opportunity_id"], request.at[0, "customer_external_id"]
    [customer] = ns_records(targets, "customer", company)
    [job] = ns_records(targets, "job", deal)
    assert job["parent"] == customer["id"]
    [project] = certinia_projects_of(sandbox, deal)
    read = targets.certinia.get("pse__Proj__c", project["Id"])
    assert (read["Name"], read[DEAL_ID_FIELD], read["CurrencyIsoCode"]) == (
        request.at[0, "project_name"], deal, request.at[0, "currency_code"])
    properties = targets.hubspot.get("deals", deal, ["ps_external_id", "ps_activation_status"])["properties"]
    assert (properties["ps_external_id"], properties["ps_activation_status"]) == (job["id"], STATUS_COMPLETE)
