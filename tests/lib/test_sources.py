"""The four source clients against the real sandbox over HTTP (the ``sandbox`` fixture)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ps_pipelines.lib.contracts import ALL_CONTRACTS, EntityContract
from ps_pipelines.lib.contracts import d365 as d365_contracts
from ps_pipelines.lib.contracts import kantata as kantata_contracts
from ps_pipelines.lib.contracts import netsuite as netsuite_contracts
from ps_pipelines.lib.contracts import salesforce as salesforce_contracts
from ps_pipelines.lib.contracts import workday as workday_contracts
from ps_pipelines.lib.http import AuthError, ValidationError
from ps_pipelines.lib.sources import (
    KantataClient,
    NetSuiteClient,
    SalesforceClient,
    SourceClient,
    WorkdayClient,
)
from ps_pipelines.lib.sources.base import parse_timestamp
from ps_pipelines.lib.sources.d365 import D365Client
from ps_pipelines.lib.sources.netsuite import build_suiteql
from ps_pipelines.lib.sources.salesforce import build_soql
from ps_sandbox.context import DEFAULT_CREDENTIALS
from ps_sandbox.generate import stamp
from tests.conftest import RunningSandbox

# Rows of a store object that a contract covers (the rest of the object is other record types).
COVERED: dict[str, dict[str, str]] = {
    "stories": {"story_type": "milestone"},
    "transaction": {"type": "CustInvc"},
    "transactionline": {"mainline": "F"},  # item lines: not the transactions' main lines
}


def make_client(platform: str, sandbox: RunningSandbox, sleeps: list[float] | None = None, **kw: Any) -> SourceClient:
    """A client with small pages, so every extraction below pages several times. Backoff
    delays are recorded in ``sleeps`` instead of slept, so retries cost no wall time."""
    creds = DEFAULT_CREDENTIALS[platform]
    settings: dict[str, Any] = {"sleep": (sleeps if sleeps is not None else []).append, **kw}
    if platform == "salesforce":
        return SalesforceClient(sandbox.url, **creds, clock=sandbox.ctx.store.now, **settings)
    if platform == "kantata":
        return KantataClient(sandbox.url, creds["token"], **{"per_page": 40, **settings})
    if platform == "workday":
        return WorkdayClient(sandbox.url, **creds, **{"workers_page_size": 4, **settings})
    if platform == "d365":
        return D365Client(sandbox.url, creds["tenant"], creds["client_id"], creds["client_secret"],
                          login_url=sandbox.url, **{"page_size": 40, **settings})
    return NetSuiteClient(sandbox.url, **creds, **{"page_size": 40, **settings})


def ids_of(contract: EntityContract, records: Iterable[dict]) -> list[str]:
    return [contract.source_id(contract.normalize(record)) for record in records]


def extracted(client: SourceClient, contract: EntityContract, **kw: Any) -> list[dict]:
    pages = list(client.extract(contract, since=kw.pop("since", None), **kw))
    assert all(isinstance(page, list) and page for page in pages)
    return [record for page in pages for record in page]


def store_ids(sandbox: RunningSandbox, contract: EntityContract) -> list[str]:
    records = sandbox.ctx.store.scan(
        contract.platform,
        contract.source_object,
        equals=COVERED.get(contract.source_object),
        include_deleted=contract.platform == "salesforce",  # queryAll includes the recycle bin
    )
    return ids_of(contract, records)


def change_times(contract: EntityContract, records: list[dict]) -> list[datetime]:
    column = contract.change_column or ""
    return [parse_timestamp(contract.normalize(record)[column]) for record in records]


def touch(sandbox: RunningSandbox, contract: EntityContract, count: int) -> tuple[list[str], datetime]:
    """Edit ``count`` random records now through the control API; returns the ids the contract
    covers and the change time they got."""
    answer = sandbox.control(
        "POST", "events/touch", {"platform": contract.platform, "object": contract.source_object, "count": count}
    )
    covered = set(store_ids(sandbox, contract))
    return [i for i in answer["ids"] if i in covered], parse_timestamp(answer["updated_at"])


def edit_records(sandbox: RunningSandbox, platform: str, obj: str, records: list[dict]) -> None:
    """Save ``records`` again with a new change time, as an edit in the platform would."""
    now = sandbox.ctx.store.now()
    for record in records:
        body = dict(record)
        stamp(platform, obj, body, now)
        sandbox.control("POST", f"records/{platform}/{obj}", {"id": _store_id(platform, obj, body), "body": body})


def delete(sandbox: RunningSandbox, platform: str, obj: str, record_id: str, *, hard: bool) -> None:
    sandbox.control("POST", "events/delete", {"platform": platform, "object": obj, "id": record_id, "hard": hard})


def _store_id(platform: str, obj: str, record: dict) -> str:
    if platform == "salesforce":
        return record["Id"]
    if obj in ("Worker_Cost_Rates", "Worker_Job_History"):
        return f"{record['Worker_ID']}|{record['Effective_Date']}"
    return str(record["id"])


# -- query text (no sandbox needed) -------------------------------------------------------------
def test_soql_text() -> None:
    since = datetime(2026, 10, 1, tzinfo=UTC)
    soql = build_soql(salesforce_contracts.CONTRACTS, since)
    assert soql.startswith("SELECT Id, AccountId, ContractNumber, ")
    assert soql.endswith(
        " FROM Contract WHERE SystemModstamp >= 2026-10-01T00:00:00.000Z ORDER BY SystemModstamp ASC, Id ASC"
    )
    assert "Id IN ('006x', 'it\\'s')" in build_soql(salesforce_contracts.CONTRACTS, None, ["006x", "it's"])


def test_suiteql_text() -> None:
    since = datetime(2026, 10, 1, 12, 30, tzinfo=UTC)
    invoices = build_suiteql(netsuite_contracts.INVOICES, since)
    assert invoices.endswith(
        " FROM transaction WHERE type = 'CustInvc' AND lastmodifieddate >= "
        "TO_TIMESTAMP('2026-10-01 12:30:00', 'YYYY-MM-DD HH24:MI:SS') ORDER BY lastmodifieddate ASC, id ASC"
    )
    # Dates and datetimes are formatted to ISO (SuiteQL answers the display format otherwise);
    # the subsidiary comes from the main line, which the transaction table does not expose.
    assert "TO_CHAR(trandate, 'YYYY-MM-DD') AS trandate" in invoices
    assert "TO_CHAR(lastmodifieddate, 'YYYY-MM-DD\"T\"HH24:MI:SS') AS lastmodifieddate" in invoices
    assert " subsidiary" not in invoices
    assert build_suiteql(netsuite_contracts.INVOICE_LINES, None, ["12", "13"]).endswith(
        " FROM transactionline WHERE mainline = 'F' AND taxline = 'F' AND transaction IN (12, 13)"
        " ORDER BY transaction ASC, id ASC"
    )


# -- full extraction -------------------------------------------------------------------------------
@pytest.mark.parametrize("contract", ALL_CONTRACTS, ids=lambda c: c.key)
def test_every_contract_extracts_completely(sandbox: RunningSandbox, contract: EntityContract) -> None:
    client = make_client(contract.platform, sandbox)
    records = extracted(client, contract)
    ids = ids_of(contract, records)
    expected = store_ids(sandbox, contract)
    assert expected, "the sandbox should hold data for every contract"
    assert sorted(ids) == sorted(expected)  # every row, once
    if contract.change_column:
        times = change_times(contract, records)
        assert times == sorted(times)  # change field ascending: a safe high-water mark


@pytest.mark.parametrize(
    ("contract", "page_size"),
    [
        (kantata_contracts.TIME_ENTRIES, 40),
        (netsuite_contracts.EXCHANGE_RATES, 40),
        (workday_contracts.WORKERS, 4),
    ],
    ids=lambda v: getattr(v, "key", v),
)
def test_large_entities_are_read_in_many_pages(
    sandbox: RunningSandbox, contract: EntityContract, page_size: int
) -> None:
    client = make_client(contract.platform, sandbox)
    pages = list(client.extract(contract, since=None))
    assert len(pages) > 2 and max(len(page) for page in pages) <= page_size
    assert sum(len(page) for page in pages) == len(store_ids(sandbox, contract))


@pytest.mark.parametrize(
    "contract", [kantata_contracts.TIME_ENTRIES, netsuite_contracts.EXCHANGE_RATES], ids=lambda c: c.key
)
def test_rows_updated_mid_listing_are_not_missed(sandbox: RunningSandbox, contract: EntityContract) -> None:
    """Rows already read that are edited mid-listing move to the end of the change order; the
    rows that slide forward onto the page already read must still be read."""
    client = make_client(contract.platform, sandbox)
    pages = client.extract(contract, since=None)
    records = next(pages)
    already_read = sandbox.ctx.store.scan(contract.platform, contract.source_object, limit=5)
    edit_records(sandbox, contract.platform, contract.source_object, already_read)
    records += [record for page in pages for record in page]
    ids = ids_of(contract, records)
    assert set(ids) == set(store_ids(sandbox, contract))
    assert all(ids.count(record_id) <= 2 for record_id in ids_of(contract, already_read))


def test_salesforce_follows_next_records_url(sandbox: RunningSandbox) -> None:
    # Salesforce pages at 200 rows at least: clone contacts until the result needs three pages
    # (straight into the store: 450 control API calls would only slow the test down).
    store = sandbox.ctx.store
    template = store.scan("salesforce", "Contact", limit=1)[0]
    moment = store.now().replace(microsecond=0)
    modstamp = moment.strftime("%Y-%m-%dT%H:%M:%S.000+0000")
    clones = [
        (f"0035X{n:010d}AAA", moment, {**template, "Id": f"0035X{n:010d}AAA", "SystemModstamp": modstamp})
        for n in range(450)
    ]
    store.put_many("salesforce", "Contact", clones)
    client = make_client("salesforce", sandbox, batch_size=200)
    pages = list(client.extract(salesforce_contracts.CONTACTS, since=moment))
    assert [len(page) for page in pages] == [200, 200, 50]
    assert client.stats()["api_usage"] >= 3 and client.stats()["api_limit"] > 0


# -- incremental -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("contract", "count"),
    [
        (salesforce_contracts.OPPORTUNITIES, 4),
        (kantata_contracts.MILESTONES, 20),  # stories are mostly tasks: touch enough to hit milestones
        (kantata_contracts.TIME_ENTRIES, 10),
        (workday_contracts.COST_RATES, 4),
        (netsuite_contracts.INVOICES, 4),
        (netsuite_contracts.CUSTOMERS, 2),
    ],
    ids=lambda v: getattr(v, "key", v),
)
def test_since_returns_only_changed_rows(sandbox: RunningSandbox, contract: EntityContract, count: int) -> None:
    touched, since = touch(sandbox, contract, count)
    assert touched, "the touch should hit rows the contract covers"
    client = make_client(contract.platform, sandbox)
    records = extracted(client, contract, since=since)
    assert sorted(ids_of(contract, records)) == sorted(touched)


@pytest.mark.parametrize(
    "contract",
    [
        salesforce_contracts.ACCOUNTS,
        kantata_contracts.PROJECTS,
        workday_contracts.WORKERS,
        workday_contracts.JOB_HISTORY,
        netsuite_contracts.CUSTOMERS,
    ],
    ids=lambda c: c.key,
)
def test_extract_by_ids(sandbox: RunningSandbox, contract: EntityContract) -> None:
    wanted = [*store_ids(sandbox, contract)[:2], "999999999"]  # the last one does not exist
    records = extracted(make_client(contract.platform, sandbox), contract, ids=wanted)
    assert sorted(ids_of(contract, records)) == sorted(wanted[:2])


def test_netsuite_invoice_lines_by_invoice_ids(sandbox: RunningSandbox) -> None:
    invoices = sandbox.ctx.store.scan("netsuite", "transaction", equals={"type": "CustInvc"}, limit=3)
    invoice_ids = [invoice["id"] for invoice in invoices]
    client = make_client("netsuite", sandbox)
    lines = extracted(client, netsuite_contracts.INVOICE_LINES, ids=invoice_ids)
    expected = [
        line for line in sandbox.ctx.store.scan("netsuite", "transactionline", equals=COVERED["transactionline"])
        if line["transaction"] in invoice_ids
    ]
    assert lines and sorted(ids_of(netsuite_contracts.INVOICE_LINES, lines)) == sorted(
        ids_of(netsuite_contracts.INVOICE_LINES, expected)
    )


# -- deletes ---------------------------------------------------------------------------------------
def test_salesforce_soft_and_hard_deletes(sandbox: RunningSandbox) -> None:
    store = sandbox.ctx.store
    soft, hard = store.scan("salesforce", "Account", limit=2)
    since = store.now() - timedelta(seconds=1)
    delete(sandbox, "salesforce", "Account", soft["Id"], hard=False)
    delete(sandbox, "salesforce", "Account", hard["Id"], hard=True)
    client = make_client("salesforce", sandbox)

    changed = extracted(client, salesforce_contracts.ACCOUNTS, since=since)
    assert [(r["Id"], r["IsDeleted"]) for r in changed] == [(soft["Id"], True)]  # queryAll sees the bin
    everything = ids_of(salesforce_contracts.ACCOUNTS, extracted(client, salesforce_contracts.ACCOUNTS))
    assert soft["Id"] in everything and hard["Id"] not in everything
    deletions = list(client.deleted(salesforce_contracts.ACCOUNTS, since=since))
    # getDeleted reads the org's delete log: the recycle bin's records as well as purged ones
    # (REST API Developer Guide, "sObject Get Deleted").
    assert [record_id for record_id, _ in deletions] == [soft["Id"], hard["Id"]]
    assert all(since <= deleted_at <= store.now() for _, deleted_at in deletions)
    assert list(client.deleted(salesforce_contracts.ACCOUNTS, since=store.now() + timedelta(seconds=1))) == []


def test_salesforce_deleted_spans_windows(sandbox: RunningSandbox) -> None:
    first, second = sandbox.ctx.store.scan("salesforce", "Contact", limit=2)
    start = sandbox.ctx.store.now()
    delete(sandbox, "salesforce", "Contact", first["Id"], hard=True)
    sandbox.control("POST", "clock/advance", {"seconds": 43 * 86400})
    delete(sandbox, "salesforce", "Contact", second["Id"], hard=True)
    client = make_client("salesforce", sandbox)  # its clock is the sandbox's, now 43 days on
    found = list(client.deleted(salesforce_contracts.CONTACTS, since=start - timedelta(days=20)))
    assert [record_id for record_id, _ in found] == [first["Id"], second["Id"]]
    assert client.stats()["requests"] == 4  # the token, then three windows of at most 30 days


def test_netsuite_deleted_records(sandbox: RunningSandbox) -> None:
    customer = sandbox.ctx.store.scan("netsuite", "customer", limit=1)[0]
    since = sandbox.ctx.store.now() - timedelta(seconds=1)
    delete(sandbox, "netsuite", "customer", customer["id"], hard=True)
    client = make_client("netsuite", sandbox)
    deletions = list(client.deleted(netsuite_contracts.CUSTOMERS, since=since))
    assert [record_id for record_id, _ in deletions] == [customer["id"]]
    assert list(client.deleted(netsuite_contracts.PROJECTS, since=since)) == []
    assert list(client.deleted(netsuite_contracts.CURRENCIES, since=since)) == []  # no feed for the table


def test_platforms_without_a_delete_feed_yield_nothing(sandbox: RunningSandbox) -> None:
    since = datetime(2020, 1, 1, tzinfo=UTC)
    assert list(make_client("kantata", sandbox).deleted(kantata_contracts.PROJECTS, since=since)) == []
    assert list(make_client("workday", sandbox).deleted(workday_contracts.WORKERS, since=since)) == []


# -- auth ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "contract",
    [salesforce_contracts.ACCOUNTS, workday_contracts.WORKERS, netsuite_contracts.SUBSIDIARIES],
    ids=lambda c: c.platform,
)
def test_expired_tokens_are_refreshed(sandbox: RunningSandbox, contract: EntityContract) -> None:
    client = make_client(contract.platform, sandbox)
    first = extracted(client, contract)
    sandbox.control("POST", "tokens/expire")
    assert ids_of(contract, extracted(client, contract)) == ids_of(contract, first)
    assert client.stats()["auth_refreshes"] == 1


def test_bad_credentials_fail_without_retrying(sandbox: RunningSandbox) -> None:
    creds = {**DEFAULT_CREDENTIALS["netsuite"], "certificate_id": "not-the-mapped-certificate"}
    client = NetSuiteClient(sandbox.url, **creds, sleep=[].append)
    with pytest.raises(AuthError) as caught:
        extracted(client, netsuite_contracts.SUBSIDIARIES)
    assert "PRIVATE KEY" not in str(caught.value) and "invalid_grant" in str(caught.value)
    assert client.stats()["retries"] == 0


# -- faults ----------------------------------------------------------------------------------------
FAULT_CONTRACTS = {
    "salesforce": salesforce_contracts.OPPORTUNITIES,
    "kantata": kantata_contracts.TIME_ENTRIES,
    "workday": workday_contracts.WORKERS,
    "netsuite": netsuite_contracts.INVOICES,
    "d365": d365_contracts.INVOICE_LINES,
}
FAULTS: dict[str, dict[str, Any]] = {
    "429-retry-after": {"kind": "429", "retry_after": 1},
    "429": {"kind": "429"},
    "500": {"kind": "500"},
    "drop": {"kind": "drop"},
    "malformed": {"kind": "malformed"},
}


@pytest.mark.parametrize("fault", FAULTS, ids=str)
@pytest.mark.parametrize("platform", FAULT_CONTRACTS, ids=str)
def test_injected_faults_end_in_a_complete_extraction(sandbox: RunningSandbox, platform: str, fault: str) -> None:
    contract = FAULT_CONTRACTS[platform]
    sleeps: list[float] = []
    client = make_client(platform, sandbox, sleeps)
    # Two faults in a row: whichever requests they hit (token or page), both must be retried.
    sandbox.control("PUT", f"faults/{platform}", {"queue": [FAULTS[fault], FAULTS[fault]]})
    records = extracted(client, contract)
    assert sorted(ids_of(contract, records)) == sorted(store_ids(sandbox, contract))
    stats = client.stats()
    assert stats["retries"] == 2
    if fault.startswith("429"):
        assert stats["throttled"] == 2
    if fault == "429-retry-after" and platform != "salesforce":  # Salesforce sends no Retry-After
        assert sleeps == [1.0, 1.0]  # the server's Retry-After, not the backoff schedule
    else:
        assert len(sleeps) == 2 and sleeps[0] <= 0.5 and sleeps[1] <= 1.0  # full jitter under 0.5 s, 1 s


# -- writeback -------------------------------------------------------------------------------------
def test_salesforce_writeback(sandbox: RunningSandbox) -> None:
    client = make_client("salesforce", sandbox)
    assert isinstance(client, SalesforceClient)
    opportunity = sandbox.ctx.store.scan("salesforce", "Opportunity", limit=1)[0]
    client.update("Opportunity", opportunity["Id"], {"ERP_Project_Id__c": "JOB-1"})
    assert client.get("Opportunity", opportunity["Id"])["ERP_Project_Id__c"] == "JOB-1"
    updated = client.upsert("Opportunity", "Id", opportunity["Id"], {"Activation_Status__c": "Activated"})
    assert updated == {"id": opportunity["Id"], "created": False, "success": True, "errors": []}
    with pytest.raises(ValidationError) as caught:
        client.update("Opportunity", opportunity["Id"], {"Foo": 1})
    message = str(caught.value)
    assert message.startswith(f"salesforce PATCH /services/data/v61.0/sobjects/Opportunity/{opportunity['Id']} -> 400")
    assert "INVALID_FIELD" in message and message.endswith(f"(record {opportunity['Id']})")


def test_kantata_writeback(sandbox: RunningSandbox) -> None:
    client = make_client("kantata", sandbox)
    assert isinstance(client, KantataClient)
    workspace = client.create_workspace({"title": "Sandbox rollout", "currency": "EUR"})
    assert workspace["title"] == "Sandbox rollout" and workspace["id"]
    renamed = client.update_workspace(workspace["id"], {"title": "Sandbox rollout II"})
    assert renamed["id"] == workspace["id"] and renamed["title"] == "Sandbox rollout II"
    assert sandbox.ctx.store.get("kantata", "workspaces", workspace["id"])["title"] == "Sandbox rollout II"


def test_netsuite_writeback(sandbox: RunningSandbox) -> None:
    client = make_client("netsuite", sandbox)
    assert isinstance(client, NetSuiteClient)
    existing = sandbox.ctx.store.scan("netsuite", "customer", limit=1)[0]
    body = {
        "companyName": "Upserted Co",
        "subsidiary": {"id": existing["subsidiary"]},
        "currency": {"id": existing["currency"]},
    }
    created_id = client.upsert_by_external_id("customer", "sf-001-test", body)
    again_id = client.upsert_by_external_id("customer", "sf-001-test", {**body, "companyName": "Renamed Co"})
    assert created_id == again_id
    record = client.get_record("customer", "eid:sf-001-test")
    assert record is not None and record["id"] == created_id and record["companyName"] == "Renamed Co"
    assert client.get_record("customer", "eid:no-such-customer") is None
    other_id = client.create("customer", {**body, "companyName": "Created Co"})
    assert other_id not in (created_id, "") and client.get_record("customer", other_id)["companyName"] == "Created Co"
