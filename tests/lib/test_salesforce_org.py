"""The Salesforce connector against the emulated org: its documented request limits, and the
data contracts checked against the org's own field catalogue (its sObject Describe).

The emulated org's fields come from Salesforce's documented objects plus the firm's custom
fields (``ps_sandbox/catalog/salesforce.py``), never from the contracts, so a wrong field name in
a contract fails here the way it would fail against a real tenant.
"""

from __future__ import annotations

import dataclasses
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dagster import AssetKey, materialize

from ps_pipelines.defs.salesforce import assets as salesforce_ingest
from ps_pipelines.ingest.factory import DRIFT_CHECK, build_ingest_asset
from ps_pipelines.lib.contracts import salesforce as salesforce_contracts
from ps_pipelines.lib.contracts.base import EntityContract
from ps_pipelines.lib.http import ApiClient, QuotaExhaustedError, StaticBearer, ValidationError
from ps_pipelines.lib.ingestion import ingest_entity
from ps_pipelines.lib.sources import SalesforceClient
from ps_pipelines.lib.sources.base import MissingFieldsError
from ps_pipelines.lib.sources.salesforce import classify_error
from ps_pipelines.lib.warehouse.warehouse import Warehouse
from ps_pipelines.resources import build_resources
from ps_sandbox.app import open_sandbox, start_server
from ps_sandbox.context import DEFAULT_CREDENTIALS, SandboxConfig
from ps_sandbox.http import json_response
from tests.conftest import TEST_SCALE, TEST_SEED, RunningSandbox
from tests.lib.test_http_client import OK, ScriptedServer

CREDS = DEFAULT_CREDENTIALS["salesforce"]


def _client(url: str, sleeps: list[float] | None = None, **kw: Any) -> SalesforceClient:
    return SalesforceClient(url, **CREDS, sleep=(sleeps if sleeps is not None else []).append, **kw)


def _renamed(contract: EntityContract, old: str, new: str) -> EntityContract:
    """The contract with one field misspelled, in its field list and its schema alike."""
    fields = tuple(new if name == old else name for name in contract.source_fields)
    schema = contract.schema.rename_columns({old.lower(): new.lower()})
    return dataclasses.replace(contract, source_fields=fields, schema=schema)


@pytest.fixture
def scripted() -> Iterator[ScriptedServer]:
    server = ScriptedServer()
    server.server.serve_in_thread()
    yield server
    server.server.shutdown()
    server.server.server_close()


# -- request limits: 403 REQUEST_LIMIT_EXCEEDED, classified in one place --------------------------

CONCURRENT = [{"message": "ConcurrentPerOrgLongTxn Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}]
TOTAL = [{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}]


def test_concurrent_limit_is_waited_out_and_daily_allocation_stops_at_once(
    scripted: ScriptedServer,
) -> None:
    """"API Request Limits and Allocations": the concurrent long-running request limit frees up
    as requests finish, the total allocation does not within a run; the REST API answers both
    as 403 REQUEST_LIMIT_EXCEEDED ("Status Codes and Error Responses"). The Salesforce classifier
    turns the first into a retry with backoff and the second into a clear stop, no retries."""
    sleeps: list[float] = []
    scripted.script("GET", "/busy", json_response(CONCURRENT, 403), json_response(CONCURRENT, 403), OK)
    scripted.script("GET", "/spent", json_response(TOTAL, 403))
    scripted.script("GET", "/forbidden", json_response([{"message": "no", "errorCode": "INSUFFICIENT_ACCESS"}], 403))
    client = ApiClient("salesforce", scripted.url, StaticBearer("t"), sleep=sleeps.append, jitter=lambda: 1.0,
                       classify_error=classify_error)
    assert client.get_json("/busy") == {"ok": True}
    assert sleeps == [0.5, 1.0] and client.stats()["throttled"] == 2

    with pytest.raises(QuotaExhaustedError) as spent:
        client.get_json("/spent")
    assert scripted.count("/spent") == 1  # no retry storm against a spent allocation
    assert "403 REQUEST_LIMIT_EXCEEDED: TotalRequests Limit exceeded." in str(spent.value)
    assert "not retried" in str(spent.value)
    with pytest.raises(ValidationError):  # any other 403 is still a refusal, not a limit
        client.get_json("/forbidden")
    assert client.stats()["retries"] == 2


def test_extraction_waits_out_the_orgs_concurrent_limit(sandbox: RunningSandbox) -> None:
    """"API Request Limits and Allocations": while the org's long-running requests are at the
    limit, new ones are refused with REQUEST_LIMIT_EXCEEDED; a run that meets it waits and
    finishes instead of failing (it failed on the first 403 before)."""
    store = sandbox.ctx.store
    store.kv_set("salesforce_concurrent_long_running_limit", 1)
    store.kv_set("salesforce_long_running_seconds", 0.1)  # 20 s in a real org; shrunk for the test
    sandbox.control("PUT", "faults/salesforce", {"queue": [{"kind": "slow", "ms": 1500}],
                                                 "path_contains": "/limits"})
    blocker = _client(sandbox.url)
    hog = threading.Thread(target=lambda: blocker.client.get_json(blocker._data_url("limits")))
    hog.start()
    waits: list[float] = []

    def wait(seconds: float) -> None:  # really wait: the limit frees up only as time passes
        waits.append(seconds)
        time.sleep(seconds)

    client = SalesforceClient(sandbox.url, **CREDS, sleep=wait, backoff_base=0.5)
    try:
        time.sleep(0.4)  # the blocker is now a long-running request: the org is at its limit
        records = [r for page in client.extract(salesforce_contracts.ACCOUNTS, since=None) for r in page]
    finally:
        hog.join()
    assert len(records) == store.count("salesforce", "Account", include_deleted=True)
    assert client.stats()["throttled"] >= 1 and waits


def test_a_spent_daily_allocation_stops_the_run_with_a_clear_error(sandbox: RunningSandbox) -> None:
    """"API Request Limits and Allocations" (total API requests per 24 hours): once the org's
    allocation is spent every call answers 403 REQUEST_LIMIT_EXCEEDED "TotalRequests Limit
    exceeded." until usage drops; the run stops at once, naming the cause, without retries."""
    sandbox.ctx.store.kv_set("salesforce_daily_api_limit", 1)
    client = _client(sandbox.url)
    client.describe("Account")  # the org's last request for today
    with pytest.raises(QuotaExhaustedError) as stopped:
        list(client.extract(salesforce_contracts.ACCOUNTS, since=None))
    assert "TotalRequests Limit exceeded." in str(stopped.value)
    assert client.stats()["retries"] == 0


# -- contracts against the org's catalogue --------------------------------------------------------


@pytest.mark.parametrize("contract", salesforce_contracts.ALL, ids=lambda c: c.key)
def test_every_contract_field_exists_in_the_orgs_describe(sandbox: RunningSandbox, contract: EntityContract) -> None:
    """REST API Developer Guide, "sObject Describe": the org's own list of an object's fields.
    Every field a contract reads is one of them, and the org has no custom field the contract
    does not know."""
    drift = _client(sandbox.url).field_drift(contract)
    assert drift.missing == () and drift.unknown == ()
    assert drift.unread > 5  # the org's objects have many standard fields the pipeline skips


def test_a_misspelled_contract_field_fails_against_the_org(
    sandbox_template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """REST API Developer Guide, "Status Codes and Error Responses" / SOQL: a query naming a
    field the object does not have is refused with 400 INVALID_FIELD. The emulated org's
    catalogue is Salesforce's, so a contract typo fails here too, even when the contract module
    itself is the one that carries it (the emulator used to build its catalogue from it)."""
    typo = _renamed(salesforce_contracts.OPPORTUNITIES, "Tax_Code__c", "TaxCode__c")
    monkeypatch.setattr(salesforce_contracts, "OPPORTUNITIES", typo)
    monkeypatch.setattr(salesforce_contracts, "ALL", (salesforce_contracts.ACCOUNTS, salesforce_contracts.CONTACTS,
                                                      typo, salesforce_contracts.CONTRACTS))
    state = tmp_path / "sandbox.sqlite"
    shutil.copyfile(sandbox_template, state)
    server = start_server(open_sandbox(state, SandboxConfig(seed=TEST_SEED, scale=TEST_SCALE)), port=0)
    try:
        client = _client(f"http://127.0.0.1:{server.server_port}")
        with pytest.raises(ValidationError) as refused:
            ingest_entity(client, Warehouse(tmp_path / "warehouse.duckdb"), typo, "run-typo")
        assert refused.value.status == 400
        assert "INVALID_FIELD: No such column 'TaxCode__c' on entity 'Opportunity'" in str(refused.value)
        with pytest.raises(MissingFieldsError) as named:
            client.check_fields(typo)
        assert "TaxCode__c" in str(named.value) and "salesforce__opportunities" in str(named.value)
    finally:
        server.shutdown()
        server.server_close()


# -- the ingestion asset's drift check -----------------------------------------------------------


def _materialize_one(sandbox: RunningSandbox, contract: EntityContract, warehouse: Path, raise_on_error: bool = True):
    asset = build_ingest_asset(contract, resource_key="salesforce", group_name="crm_salesforce",
                               owner="team:revenue-operations", kind="salesforce", source=salesforce_ingest.SOURCE)
    resources = build_resources("local", sandbox_url=sandbox.url, warehouse_path=str(warehouse))
    return materialize([asset], resources=resources, raise_on_error=raise_on_error)


def test_ingestion_reports_org_fields_the_contract_does_not_read(sandbox: RunningSandbox, tmp_path: Path) -> None:
    """REST API Developer Guide, "sObject Describe" (custom fields carry ``custom: true``): a
    custom field of the tenant's object that the contract does not read (an admin added or
    renamed one) fails the no_schema_drift check, naming it; a field the contract reads that
    the org lacks stops the asset before any query, naming every such field."""
    narrower = dataclasses.replace(
        salesforce_contracts.OPPORTUNITIES,
        source_fields=tuple(f for f in salesforce_contracts.OPPORTUNITIES.source_fields if f != "Tax_Code__c"))
    result = _materialize_one(sandbox, narrower, tmp_path / "warehouse.duckdb")
    check = next(e for e in result.get_asset_check_evaluations() if e.check_name == DRIFT_CHECK)
    assert check.asset_key == AssetKey(["raw", "salesforce", "opportunities"])
    assert not check.passed
    assert check.metadata["org_fields_not_in_contract"].value == ["Tax_Code__c"]

    typo = _renamed(salesforce_contracts.OPPORTUNITIES, "Billing_Model__c", "BillingModel__c")
    failed = _materialize_one(sandbox, typo, tmp_path / "warehouse.duckdb", raise_on_error=False)
    assert not failed.success
    failure = next(e for e in failed.all_events if e.event_type_value == "STEP_FAILURE")
    assert "BillingModel__c" in failure.event_specific_data.error.to_string()
