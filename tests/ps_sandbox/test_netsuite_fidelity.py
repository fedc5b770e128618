"""NetSuite behaviours a real account has and the connector must live with (issue 10): the
vendor's SuiteQL catalogue, display-format dates and TO_CHAR, transaction main lines, the
100,000-row SuiteQL cap and NetSuite's error body for unknown paths. Each test names the vendor
document it follows."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from ps_pipelines.lib.contracts import netsuite as contracts
from ps_pipelines.lib.http import ValidationError
from ps_pipelines.lib.sources.netsuite import MAIN_LINE_FIELDS, TABLE_FILTERS, NetSuiteClient, build_suiteql
from ps_pipelines.lib.writeback.reconcile import erp_invoices
from ps_sandbox import suiteql
from ps_sandbox.catalog import netsuite as catalog
from ps_sandbox.context import DEFAULT_CREDENTIALS
from ps_sandbox.platforms import netsuite
from ps_sandbox.platforms.netsuite import MAX_RESULTS_KEY, SUITEQL_TABLES
from tests.conftest import RunningSandbox
from tests.ps_sandbox.test_netsuite_api import RECORD, SHOWN_BASE, _error, _items, _seed, _suiteql, _token
from tests.ps_sandbox.test_workday_api import Served, serve

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def ns(tmp_path: Path) -> Iterator[Served]:
    with serve(tmp_path, netsuite.register, _seed) as served:
        served.http.headers["Authorization"] = f"Bearer {_token(served.http, served.url)}"
        yield served


def _client(sandbox: RunningSandbox, **kw: object) -> NetSuiteClient:
    return NetSuiteClient(sandbox.url, **DEFAULT_CREDENTIALS["netsuite"], **{"page_size": 40, "sleep": [].append,
                                                                              **kw})


# -- the catalogue is the vendor's, not ours ------------------------------------------------------





def test_the_catalogue_has_fields_the_pipeline_never_reads() -> None:
    """NetSuite Records Catalog (analytics data source): tables carry far more than our contracts
    select, and customizations are the tenant's (custcol_ps_line_key), declared as such."""
    read = {field for contract in contracts.ALL for field in contract.source_fields}
    assert {"foreignamountunpaid", "postingperiod", "terms"} <= set(catalog.TABLES["transaction"].columns) - read
    assert catalog.TABLES["transactionline"].custom == {"custcol_ps_line_key"}
    assert "subsidiary" not in catalog.TABLES["transaction"].columns  # NOT_EXPOSED in SuiteQL
    assert {"mainline", "taxline", "subsidiary"} <= set(catalog.TABLES["transactionline"].columns)


def test_every_contract_field_exists_in_the_catalogue() -> None:
    """Every field a NetSuite contract reads is a column of its SuiteQL table in the account's
    catalogue, or (subsidiary of an invoice) of the transaction's main line; every query the
    connector builds binds against the catalogue."""
    for contract in contracts.ALL:
        table = catalog.TABLES[contract.source_object]
        from_main_line = set(MAIN_LINE_FIELDS.get(contract.source_object, ()))
        for field in contract.source_fields:
            home = catalog.TABLES["transactionline"] if field in from_main_line else table
            assert field in home.columns, f"{contract.key}.{field} is not in NetSuite's {home.name}"
        for query in (build_suiteql(contract), build_suiteql(contract, keys=["1", "2"])):
            suiteql.bind(suiteql.parse(query), SUITEQL_TABLES)
    for conditions in TABLE_FILTERS.values():
        for condition in conditions:
            assert condition.split()[0] in catalog.TABLES["transactionline"].columns | catalog.TABLES[
                "transaction"].columns


def test_a_contract_field_the_account_lacks_fails_against_the_sandbox(sandbox: RunningSandbox) -> None:
    """A contract naming a field the account does not have is refused as NetSuite refuses it:
    400 with "NOT_EXPOSED - Unknown identifier" (SuiteQL via REST web services)."""
    fields = tuple("companyname_typo" if f == "companyname" else f for f in contracts.CUSTOMERS.source_fields)
    renamed = dataclasses.replace(contracts.CUSTOMERS, source_fields=fields)
    with pytest.raises(ValidationError) as caught:
        list(_client(sandbox).extract(renamed, since=None))
    assert caught.value.status == 400
    assert "NOT_EXPOSED - Unknown identifier 'companyname_typo'" in str(caught.value)

    # The same for a header field SuiteQL keeps on the main line only.
    exposed = dataclasses.replace(contracts.INVOICES, source_fields=contracts.INVOICES.source_fields)
    query = build_suiteql(exposed).replace("SELECT id,", "SELECT id, subsidiary,")
    with pytest.raises(ValidationError, match="Unknown identifier 'subsidiary'"):
        list(_client(sandbox).suiteql(query))


# -- dates --------------------------------------------------------------------------------------


def test_suiteql_answers_dates_in_the_account_date_format(ns: Served) -> None:
    """SuiteQL answers date and datetime columns in the account's date format preference (a
    datetime cut to its date); only the REST record service answers ISO 8601 (NetSuite help,
    "Using Datetime Fields", section_157305090645; salto-io/salto PR #3308)."""
    row = _items(ns, "SELECT trandate, duedate, lastmodifieddate FROM transaction WHERE id = 5001")[0]
    assert row == {"links": [], "trandate": "10/1/2025", "duedate": "10/31/2025", "lastmodifieddate": SHOWN_BASE}
    record = ns.http.get(f"{ns.url}{RECORD}/invoice/5001").json()
    assert record["tranDate"] == "2025-10-01" and record["lastModifiedDate"].endswith("Z")

    ns.ctx.store.kv_set(netsuite.DATE_FORMAT_KEY, "DD/MM/YYYY")  # another account preference
    assert _items(ns, "SELECT trandate FROM transaction WHERE id = 5001")[0]["trandate"] == "01/10/2025"


def test_to_char_formats_dates_in_select_where_and_order_by(ns: Served) -> None:
    """Oracle TO_CHAR(date, fmt) with YYYY, MM, DD, HH24, MI, SS and "quoted" literals, in the
    select list (named with AS), WHERE and ORDER BY, as public SuiteQL connectors use it."""
    iso = "TO_CHAR(lastmodifieddate, 'YYYY-MM-DD\"T\"HH24:MI:SS')"
    rows = _items(ns, f"SELECT id, {iso} AS lastmodifieddate, TO_CHAR(trandate, 'YYYY-MM-DD') FROM transaction "
                      f"WHERE {iso} >= '2025-10-01T09:02:00' ORDER BY {iso} DESC")
    assert rows == [{"links": [], "id": "5003", "lastmodifieddate": "2025-10-01T09:03:00", "expr1": "2025-10-01"},
                    {"links": [], "id": "5002", "lastmodifieddate": "2025-10-01T09:02:00", "expr1": "2025-10-01"}]
    bad = _suiteql(ns, "SELECT TO_CHAR(trandate, 'Month DD') FROM transaction")
    assert bad.status_code == 400


def test_to_date_and_to_timestamp_filter_on_the_stored_moment(ns: Served) -> None:
    """TO_DATE / TO_TIMESTAMP literals compare with the date, not its display text."""
    since = "TO_TIMESTAMP('2025-10-01 09:02:00', 'YYYY-MM-DD HH24:MI:SS')"
    assert [r["id"] for r in _items(ns, f"SELECT id FROM transaction WHERE lastmodifieddate >= {since} "
                                        "ORDER BY id")] == ["5002", "5003"]
    assert len(_items(ns, "SELECT id FROM transaction WHERE trandate >= TO_DATE('2025-10-02', 'YYYY-MM-DD')")) == 0


def test_connector_reads_iso_dates_from_display_format_suiteql(sandbox: RunningSandbox) -> None:
    """The connector selects every date and timestamp with TO_CHAR and passes ISO values on (raw
    tables keep their types): trandate 2026-05-15, lastmodifieddate 2026-05-15T10:00:00Z."""
    invoices = [r for page in _client(sandbox).extract(contracts.INVOICES, since=None) for r in page]
    stored = {r["id"]: r for r in sandbox.ctx.store.scan("netsuite", "transaction", equals={"type": "CustInvc"})}
    assert invoices and len(invoices) == len(stored)
    for row in invoices:
        assert row["trandate"] == stored[row["id"]]["trandate"]  # ISO date, not 5/15/2026
        assert row["lastmodifieddate"] == stored[row["id"]]["lastmodifieddate"]  # ISO UTC with Z
        assert row["subsidiary"] == stored[row["id"]]["subsidiary"]  # from the main line


# -- main lines ---------------------------------------------------------------------------------


def test_every_transaction_has_one_main_line(ns: Served) -> None:
    """Each transaction has exactly one main line in transactionline (mainline = 'T') besides its
    item lines (mainline = 'F') (netsuitediagnostics.com, "SuiteQL: Transaction Line Mainline")."""
    mains = _items(ns, "SELECT transaction, id, subsidiary, foreignamount FROM transactionline "
                       "WHERE mainline = 'T' ORDER BY transaction")
    assert [(m["transaction"], m["id"]) for m in mains] == [("5001", "0"), ("5002", "0"), ("5003", "0")]
    created = ns.http.post(f"{ns.url}{RECORD}/invoice", json={
        "entity": {"id": "92"}, "subsidiary": {"id": "2"}, "currency": {"id": "1"},
        "item": {"items": [{"item": {"id": "7"}, "quantity": 2, "rate": 50}]}})
    new_id = created.headers["Location"].rsplit("/", 1)[1]
    lines = _items(ns, f"SELECT id, mainline, subsidiary, foreignamount FROM transactionline "
                       f"WHERE transaction = {new_id} ORDER BY id")
    assert lines == [
        {"links": [], "id": "0", "mainline": "T", "subsidiary": "2", "foreignamount": "100.00"},
        {"links": [], "id": "1", "mainline": "F", "subsidiary": "2", "foreignamount": "100.00"},
    ]
    # The record's item sublist is the item lines only.
    assert len(ns.http.get(created.headers["Location"]).json()["item"]["items"]) == 1


def test_generated_invoices_have_main_lines_and_line_totals_stay_right(sandbox: RunningSandbox) -> None:
    """Generated history has one main line per invoice; the connector's invoice lines are the
    item lines only, so each invoice's lines add up to its total."""
    store = sandbox.ctx.store
    invoices = store.scan("netsuite", "transaction", equals={"type": "CustInvc"})
    mains = store.scan("netsuite", "transactionline", equals={"mainline": "T"})
    assert sorted(m["transaction"] for m in mains) == sorted(i["id"] for i in invoices)
    lines = [r for page in _client(sandbox).extract(contracts.INVOICE_LINES, since=None) for r in page]
    totals: dict[str, float] = {}
    for line in lines:
        totals[line["transaction"]] = totals.get(line["transaction"], 0.0) + float(line["foreignamount"])
    assert {i["id"]: round(totals[i["id"]], 2) for i in invoices} == {
        i["id"]: float(i["foreigntotal"]) for i in invoices}


def test_reconciliation_reads_iso_dates_and_item_lines(sandbox: RunningSandbox) -> None:
    """Reconciliation compares the ledger's ISO tranDate with TO_CHAR'd trandates (not the display
    format) and counts item lines only (not the main line)."""
    client = _client(sandbox)
    body = {"entity": {"id": sandbox.ctx.store.scan("netsuite", "customer", limit=1)[0]["id"]},
            "subsidiary": {"id": "1"}, "currency": {"id": "1"}, "tranDate": "2026-10-05",
            "item": {"items": [{"item": {"id": "7"}, "quantity": 1, "rate": 10, "custcol_ps_line_key": "k:1"},
                               {"item": {"id": "7"}, "quantity": 2, "rate": 5, "custcol_ps_line_key": "k:2"}]}}
    internal_id = client.upsert_by_external_id("invoice", "psp:inv:test:2026-10", body)
    facts = erp_invoices(client)["psp:inv:test:2026-10"]
    assert (facts.internal_id, facts.tran_date, facts.subsidiary) == (internal_id, "2026-10-05", "1")
    assert facts.line_keys == ("k:1", "k:2") and str(facts.total) == "20.00"


# -- the 100,000-row cap ------------------------------------------------------------------------


def test_suiteql_answers_only_the_first_rows_up_to_the_cap(ns: Served) -> None:
    """SuiteQL via REST answers at most 100,000 results of a query (NetSuite help "Collection
    Paging", section_156414087576; salto-io/salto PR #6061): past the cap there are no more pages."""
    ns.ctx.store.kv_set(MAX_RESULTS_KEY, 12)
    q = "SELECT id FROM customer ORDER BY id"
    first = _suiteql(ns, q, limit=10).json()
    assert (first["totalResults"], first["hasMore"], first["count"]) == (12, True, 10)
    second = _suiteql(ns, q, limit=10, offset=10).json()
    assert (second["count"], second["hasMore"]) == (2, False)
    assert _suiteql(ns, q, limit=10, offset=20).json()["items"] == []
    assert netsuite.MAX_RESULTS == 100_000


@pytest.mark.parametrize("contract", [contracts.EXCHANGE_RATES, contracts.INVOICE_LINES, contracts.INVOICES],
                         ids=lambda c: c.entity)
def test_tables_larger_than_the_cap_load_completely(sandbox: RunningSandbox, contract: object) -> None:
    """With the account's cap lowered below a table's size, the connector still reads every row:
    it re-anchors its query (keyset on lastmodifieddate, or on the parent transaction) instead of
    paging past the cap, while plain offset paging stops at the cap."""
    assert isinstance(contract, type(contracts.CUSTOMERS))
    covered = {"transactionline": {"mainline": "F"}, "transaction": {"type": "CustInvc"}}.get(contract.source_object)
    expected = sorted(contract.source_id(contract.normalize(r))
                      for r in sandbox.ctx.store.scan("netsuite", contract.source_object, equals=covered))
    cap = len(expected) // 3
    assert cap >= 5
    sandbox.ctx.store.kv_set(MAX_RESULTS_KEY, cap)
    client = _client(sandbox, page_size=max(2, cap // 2))
    got = [contract.source_id(contract.normalize(r)) for page in client.extract(contract, since=None) for r in page]
    assert sorted(got) == expected
    capped = [r for page in client.suiteql(f"SELECT id FROM {contract.source_object}") for r in page]
    assert len(capped) == cap


# -- errors -------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/services/rest/record/v1/customer/91/extra/segments",
                                  "/services/rest/nothing-here", "/services/rest/query/v2/suiteql"])
def test_unknown_paths_answer_netsuite_error_body(ns: Served, path: str) -> None:
    """NetSuite REST web services answer errors as RFC 9457-style bodies: type (RFC 9110 section
    15.5.5 for 404), title, status and o:errorDetails with detail and o:errorCode (NetSuite help,
    "Error Handling in REST Web Services", section_156570709583)."""
    response = requests.get(f"{ns.url}{path}", headers=dict(ns.http.headers), timeout=10)
    assert response.status_code == 404
    body = response.json()
    assert body["type"] == "https://www.rfc-editor.org/rfc/rfc9110.html#section-15.5.5"
    assert body["title"] == "Not Found" and body["status"] == 404
    assert _error(response)["o:errorCode"] == "NONEXISTENT_ID"
    assert path in _error(response)["detail"]
