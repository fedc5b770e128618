"""The sandbox's Salesforce REST endpoints over real HTTP, and the SOQL parser behind them."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from ps_sandbox import faults, soql
from ps_sandbox.context import DEFAULT_CREDENTIALS, SandboxContext
from ps_sandbox.http import Router
from ps_sandbox.platforms import salesforce
from ps_sandbox.platforms.salesforce import SalesforceApi, record_id, sf_timestamp, sobject_types
from ps_sandbox.soql import SoqlError
from ps_sandbox.store import SandboxStore
from tests.ps_sandbox.test_workday_api import Served, serve

BASE = datetime(2025, 10, 1, 9, 0, tzinfo=UTC)
ACCOUNTS = 450
DATA = "/services/data/v61.0"
CREDENTIALS = DEFAULT_CREDENTIALS["salesforce"]
SOFT_DELETED = "001TS0000000999AAA"
HARD_DELETED = "003TS0000000001AAA"
HARD_DELETED_AT = BASE + timedelta(days=2)


def _account_id(index: int) -> str:
    return f"001TS{index:010d}AAA"


def _account(index: int) -> dict[str, Any]:
    stamp = sf_timestamp(BASE + timedelta(minutes=index))
    return {
        "Id": _account_id(index),
        "Name": f"Acme {index:03d}",
        "Type": "Customer" if index % 2 else "Prospect",
        "Industry": None if index % 5 == 0 else "Consulting",
        "BillingCountry": "US",
        "CurrencyIsoCode": "USD",
        "ERP_Customer_Id__c": f"NS-{index}" if index % 3 == 0 else None,
        "Legal_Entity__c": "PS Inc",
        "OwnerId": "0055X0000000001AAA",
        "LastModifiedDate": stamp,
        "IsDeleted": False,
        "CreatedDate": sf_timestamp(BASE),
        "SystemModstamp": stamp,
    }


def _opportunity(index: int, amount: float, stage: str, close: str) -> dict[str, Any]:
    stamp = sf_timestamp(BASE + timedelta(seconds=index))
    return {
        "Id": f"006TS{index:010d}AAA",
        "AccountId": _account_id(index),
        "Name": f"Deal {index}",
        "StageName": stage,
        "Amount": amount,
        "CurrencyIsoCode": "USD",
        "CloseDate": close,
        "IsWon": stage == "Closed Won",
        "IsClosed": stage.startswith("Closed"),
        "Probability": 50.0,
        "IsDeleted": False,
        "CreatedDate": stamp,
        "SystemModstamp": stamp,
    }


def _seed(store: SandboxStore) -> None:
    accounts = [_account(index) for index in range(1, ACCOUNTS + 1)]
    store.put_many(
        "salesforce",
        "Account",
        [(a["Id"], BASE + timedelta(minutes=i), a) for i, a in enumerate(accounts, start=1)],
    )
    deleted = {**_account(999), "Id": SOFT_DELETED, "IsDeleted": True}
    store.put("salesforce", "Account", SOFT_DELETED, deleted, BASE)
    store.soft_delete("salesforce", "Account", SOFT_DELETED, deleted, BASE + timedelta(days=1))
    opportunities = [
        _opportunity(1, 1000.0, "Closed Won", "2026-01-15"),
        _opportunity(2, 250.5, "Prospecting", "2026-03-01"),
        _opportunity(3, 99.0, "Closed Lost", "2025-12-31"),
    ]
    store.put_many(
        "salesforce",
        "Opportunity",
        [(o["Id"], BASE + timedelta(seconds=i), o) for i, o in enumerate(opportunities, start=1)],
    )
    contact = {
        "Id": HARD_DELETED,
        "LastName": "Gone",
        "IsDeleted": False,
        "SystemModstamp": sf_timestamp(BASE),
    }
    store.put("salesforce", "Contact", HARD_DELETED, contact, BASE)
    store.hard_delete("salesforce", "Contact", HARD_DELETED, HARD_DELETED_AT)


def _token(http: requests.Session, url: str) -> str:
    response = http.post(
        f"{url}/services/oauth2/token", data={"grant_type": "client_credentials", **CREDENTIALS}
    )
    response.raise_for_status()
    return response.json()["access_token"]


@pytest.fixture
def sf(tmp_path: Path) -> Iterator[Served]:
    with serve(tmp_path, salesforce.register, _seed) as served:
        served.http.headers["Authorization"] = f"Bearer {_token(served.http, served.url)}"
        yield served


def _query(sf: Served, q: str, endpoint: str = "query", batch: int | None = None) -> requests.Response:
    headers = {"Sforce-Query-Options": f"batchSize={batch}"} if batch else {}
    return sf.http.get(f"{sf.url}{DATA}/{endpoint}", params={"q": q}, headers=headers)


def _error_code(response: requests.Response) -> str:
    body = response.json()
    assert isinstance(body, list) and set(body[0]) == {"message", "errorCode", "fields"}
    return body[0]["errorCode"]


# -- auth --------------------------------------------------------------------------------------


def test_client_credentials_token_describes_this_instance(tmp_path: Path) -> None:
    with serve(tmp_path, salesforce.register, _seed) as served:
        form = {"grant_type": "client_credentials", **CREDENTIALS}
        body = served.http.post(f"{served.url}/services/oauth2/token", data=form).json()
        assert body["instance_url"] == served.url
        assert body["token_type"] == "Bearer"
        assert {"access_token", "id", "issued_at", "signature"} <= set(body)

        refresh = {**form, "grant_type": "refresh_token", "refresh_token": "anything"}
        assert served.http.post(f"{served.url}/services/oauth2/token", data=refresh).status_code == 200

        bad = served.http.post(f"{served.url}/services/oauth2/token", data={**form, "client_secret": "nope"})
        assert bad.status_code == 400
        # Salesforce's own wording, as its token endpoint answers it (lower case).
        assert bad.json() == {"error": "invalid_client", "error_description": "invalid client credentials"}
        unsupported = served.http.post(
            f"{served.url}/services/oauth2/token", data={**form, "grant_type": "password"}
        )
        assert unsupported.json()["error"] == "unsupported_grant_type"


def test_data_endpoints_need_a_valid_bearer_token(sf: Served) -> None:
    for headers in ({"Authorization": ""}, {"Authorization": "Bearer forged"}):
        response = sf.http.get(
            f"{sf.url}{DATA}/query", params={"q": "SELECT Id FROM Account"}, headers=headers
        )
        assert response.status_code == 401
        assert response.json() == [
            {"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID", "fields": []}
        ]
    sf.ctx.tokens.expire_all("salesforce")
    assert _query(sf, "SELECT Id FROM Account").status_code == 401


def test_any_api_version_is_accepted_but_not_garbage(sf: Served) -> None:
    older = sf.http.get(f"{sf.url}/services/data/v58.0/query", params={"q": "SELECT Id FROM Account LIMIT 1"})
    assert older.status_code == 200
    assert older.json()["records"][0]["attributes"]["url"].startswith(
        "/services/data/v58.0/sobjects/Account/"
    )
    assert sf.http.get(f"{sf.url}/services/data/latest/query", params={"q": "x"}).status_code == 404


# -- API allowance -----------------------------------------------------------------------------


def test_daily_api_allowance_is_reported_and_enforced(sf: Served) -> None:
    sf.ctx.store.kv_set("salesforce_daily_api_limit", 3)
    usages = [_query(sf, "SELECT Id FROM Account LIMIT 1").headers["Sforce-Limit-Info"] for _ in range(2)]
    malformed = _query(sf, "SELECT FROM Account")  # errors count too, and carry the header
    assert usages == ["api-usage=1/3", "api-usage=2/3"]
    assert malformed.status_code == 400 and malformed.headers["Sforce-Limit-Info"] == "api-usage=3/3"

    spent = _query(sf, "SELECT Id FROM Account LIMIT 1")
    assert spent.status_code == 403
    assert spent.json() == [
        {"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED", "fields": []}
    ]
    assert spent.headers["Sforce-Limit-Info"] == "api-usage=3/3"

    sf.ctx.store.advance_clock(86_400)  # a new sandbox day starts a fresh allowance
    assert _query(sf, "SELECT Id FROM Account LIMIT 1").headers["Sforce-Limit-Info"] == "api-usage=1/3"


# -- query -------------------------------------------------------------------------------------


def test_query_answers_selected_fields_in_canonical_spelling(sf: Served) -> None:
    response = _query(
        sf, "select id, name, industry from account where name in ('ACME 005', 'Acme 006') order by name desc"
    )
    assert response.status_code == 200
    body = response.json()
    assert body["totalSize"] == 2 and body["done"] is True and "nextRecordsUrl" not in body
    first = body["records"][0]
    assert first == {
        "attributes": {"type": "Account", "url": f"{DATA}/sobjects/Account/{_account_id(6)}"},
        "Id": _account_id(6),
        "Name": "Acme 006",
        "Industry": "Consulting",
    }
    assert body["records"][1]["Industry"] is None  # index 5: a null field is answered as null


def test_query_filters_by_type(sf: Served) -> None:
    def ids(q: str) -> list[str]:
        response = _query(sf, q)
        assert response.status_code == 200, response.text
        return [r["Id"] for r in response.json()["records"]]

    deals = "SELECT Id FROM Opportunity WHERE "
    assert ids(deals + "Amount > 100 AND IsWon = false") == ["006TS0000000002AAA"]
    assert ids(deals + "CloseDate >= 2026-01-01 ORDER BY CloseDate DESC") == [
        "006TS0000000002AAA",
        "006TS0000000001AAA",
    ]
    assert ids(deals + "StageName NOT IN ('Closed Won', 'Closed Lost')") == ["006TS0000000002AAA"]
    since = sf_timestamp(BASE + timedelta(minutes=ACCOUNTS - 2))
    assert ids(f"SELECT Id FROM Account WHERE SystemModstamp > {since}") == [
        _account_id(ACCOUNTS - 1),
        _account_id(ACCOUNTS),
    ]
    assert len(ids("SELECT Id FROM Account WHERE ERP_Customer_Id__c != null")) == ACCOUNTS // 3


@pytest.mark.parametrize(
    ("q", "status", "code"),
    [
        ("SELECT Id, Bogus__c FROM Account", 400, "INVALID_FIELD"),
        ("SELECT Id FROM Account WHERE SystemModstamp > '2025-10-01'", 400, "INVALID_FIELD"),
        ("SELECT Id FROM Widget__c", 400, "INVALID_TYPE"),
        ("SELECT Id FROM Account WHERE", 400, "MALFORMED_QUERY"),
        ("SELECT Id FROM Account WHERE Name = 'a' OR Name = 'b'", 400, "MALFORMED_QUERY"),
    ],
)
def test_bad_queries_answer_salesforce_errors(sf: Served, q: str, status: int, code: str) -> None:
    response = _query(sf, q)
    assert response.status_code == status
    assert _error_code(response) == code


def test_unknown_field_error_names_field_and_object(sf: Served) -> None:
    message = _query(sf, "SELECT Id, Bogus__c FROM Account").json()[0]["message"]
    assert "No such column 'Bogus__c' on entity 'Account'" in message


def test_paging_is_a_snapshot_even_when_records_change_between_pages(sf: Served) -> None:
    q = "SELECT Id, Name FROM Account ORDER BY SystemModstamp"
    first = _query(sf, q, batch=200).json()
    assert first["totalSize"] == ACCOUNTS and len(first["records"]) == 200 and not first["done"]
    delivered = [r["Id"] for r in first["records"]]

    # Move a delivered and a not-yet-delivered record to the end of the change-time order
    # (naive offset paging would repeat one and skip another) and add a brand-new account.
    last = _account_id(ACCOUNTS)
    for rid, name in ((delivered[0], "Touched early"), (_account_id(300), "Touched late"), (last, "Renamed")):
        assert sf.http.patch(f"{sf.url}{DATA}/sobjects/Account/{rid}", json={"Name": name}).status_code == 204
    created = sf.http.patch(
        f"{sf.url}{DATA}/sobjects/Account/ERP_Customer_Id__c/NS-NEW", json={"Name": "New"}
    )
    assert created.status_code == 201

    pages, url = [first], first["nextRecordsUrl"]
    while url:
        assert url.startswith(f"{DATA}/query/01g")
        page = sf.http.get(f"{sf.url}{url}").json()
        assert page["totalSize"] == ACCOUNTS
        pages.append(page)
        url = page.get("nextRecordsUrl")
    assert [len(p["records"]) for p in pages] == [200, 200, 50]
    ids = [r["Id"] for page in pages for r in page["records"]]
    assert ids == [_account_id(i) for i in range(1, ACCOUNTS + 1)]  # no skip, no repeat, snapshot order
    later = {r["Id"]: r["Name"] for r in pages[-1]["records"]}
    assert later[last] == "Renamed"  # rows on later pages show their current values


def test_batch_size_is_clamped_and_bad_locators_rejected(sf: Served) -> None:
    body = _query(sf, "SELECT Id FROM Account", batch=50).json()
    assert len(body["records"]) == 200  # Salesforce's minimum batch size
    locator = body["nextRecordsUrl"].rsplit("/", 1)[1]
    again = sf.http.get(f"{sf.url}{DATA}/queryAll/{locator}").json()  # queryAll/<locator> continues too
    assert [r["Id"] for r in again["records"]][:1] == [_account_id(201)]
    for bad in ("01gNOPE-200", locator.replace("-200", "-99999"), "garbage"):
        response = sf.http.get(f"{sf.url}{DATA}/query/{bad}")
        assert response.status_code == 400 and _error_code(response) == "INVALID_QUERY_LOCATOR"


def test_query_all_includes_soft_deleted_rows_and_query_does_not(sf: Served) -> None:
    q = f"SELECT Id, IsDeleted FROM Account WHERE Id = '{SOFT_DELETED}'"
    assert _query(sf, q).json()["totalSize"] == 0
    everything = _query(sf, q, endpoint="queryAll").json()
    assert everything["records"][0]["IsDeleted"] is True
    assert _query(sf, "SELECT Id FROM Account", endpoint="queryAll").json()["totalSize"] == ACCOUNTS + 1


def test_get_deleted_reports_hard_deletes_in_the_window(sf: Served) -> None:
    def deleted(start: datetime, end: datetime) -> dict:
        params = {"start": start.isoformat(), "end": end.isoformat()}
        response = sf.http.get(f"{sf.url}{DATA}/sobjects/Contact/deleted/", params=params)
        assert response.status_code == 200, response.text
        return response.json()

    hit = deleted(HARD_DELETED_AT - timedelta(hours=1), HARD_DELETED_AT + timedelta(hours=1))
    assert hit["deletedRecords"] == [{"id": HARD_DELETED, "deletedDate": sf_timestamp(HARD_DELETED_AT)}]
    assert hit["earliestDateAvailable"] == sf_timestamp(HARD_DELETED_AT)
    assert hit["latestDateCovered"] == sf_timestamp(HARD_DELETED_AT + timedelta(hours=1))
    assert deleted(BASE, HARD_DELETED_AT - timedelta(seconds=1))["deletedRecords"] == []
    missing = sf.http.get(f"{sf.url}{DATA}/sobjects/Contact/deleted/", params={"start": BASE.isoformat()})
    assert missing.status_code == 400


# -- records -----------------------------------------------------------------------------------


def test_get_record_and_not_found(sf: Served) -> None:
    record = sf.http.get(f"{sf.url}{DATA}/sobjects/account/{_account_id(3)}").json()
    assert record["attributes"] == {"type": "Account", "url": f"{DATA}/sobjects/Account/{_account_id(3)}"}
    assert record["Name"] == "Acme 003" and record["ERP_Customer_Id__c"] == "NS-3"
    by_external_id = sf.http.get(f"{sf.url}{DATA}/sobjects/Account/ERP_Customer_Id__c/NS-3").json()
    assert by_external_id["Id"] == _account_id(3)
    for path in (f"Account/{_account_id(9999)}", f"Account/{SOFT_DELETED}", "Widget/001"):
        response = sf.http.get(f"{sf.url}{DATA}/sobjects/{path}")
        assert response.status_code == 404
        assert response.json() == [
            {"errorCode": "NOT_FOUND", "message": "The requested resource does not exist", "fields": []}
        ]


def test_upsert_creates_then_updates_and_stamps_the_change_time(sf: Served) -> None:
    url = f"{sf.url}{DATA}/sobjects/Account/ERP_Customer_Id__c/NS-777"
    created = sf.http.patch(url, json={"Name": "Globex", "Industry": "Energy"})
    assert created.status_code == 201
    body = created.json()
    assert body["success"] is True and body["created"] is True and body["errors"] == []
    new_id = body["id"]
    assert len(new_id) == 18 and new_id.startswith("001")

    assert sf.http.patch(url, json={"Industry": "Utilities"}).status_code == 204
    record = sf.http.get(f"{sf.url}{DATA}/sobjects/Account/{new_id}").json()
    assert (record["Name"], record["Industry"], record["ERP_Customer_Id__c"]) == (
        "Globex",
        "Utilities",
        "NS-777",
    )
    assert record["CurrencyIsoCode"] == "USD" and record["IsDeleted"] is False
    assert record["SystemModstamp"] == record["LastModifiedDate"]

    # The write is visible to an incremental query on the change field, and only once.
    newest_seed = sf_timestamp(BASE + timedelta(minutes=ACCOUNTS))
    changed = _query(sf, f"SELECT Id FROM Account WHERE SystemModstamp > {newest_seed}").json()
    assert [r["Id"] for r in changed["records"]] == [new_id]
    stored = sf.ctx.store.scan("salesforce", "Account", ids=[new_id])[0]
    assert stored["SystemModstamp"] == record["SystemModstamp"]


def test_writes_derive_formula_and_audit_fields(sf: Served) -> None:
    """Object Reference, Opportunity: Name, StageName and CloseDate are required on create; IsWon
    and IsClosed follow the stage. "System Fields": every object carries LastModifiedDate and the
    audit user ids, set on each save."""
    url = f"{sf.url}{DATA}/sobjects/Opportunity/ERP_Project_Id__c/PRJ-1"
    body = {"Name": "Big deal", "AccountId": _account_id(1), "StageName": "Closed Won"}
    missing = sf.http.patch(url, json=body)
    assert missing.status_code == 400 and missing.json()[0]["fields"] == ["CloseDate"]
    created = sf.http.patch(url, json={**body, "CloseDate": "2026-10-01"})
    assert created.status_code == 201, created.text
    opportunity = sf.ctx.store.get("salesforce", "Opportunity", created.json()["id"])
    assert opportunity["IsWon"] is True and opportunity["IsClosed"] is True
    assert opportunity["LastModifiedDate"] == opportunity["SystemModstamp"] == opportunity["CreatedDate"]
    assert opportunity["CreatedById"] == opportunity["LastModifiedById"] == opportunity["OwnerId"]


@pytest.mark.parametrize(
    ("path", "body", "status", "code", "fields"),
    [
        (f"Account/{_account_id(1)}", {"Bogus__c": 1}, 400, "INVALID_FIELD", ["Bogus__c"]),
        (
            f"Account/{_account_id(1)}",
            {"SystemModstamp": "x"},
            400,
            "INVALID_FIELD_FOR_INSERT_UPDATE",
            ["SystemModstamp"],
        ),
        (f"Account/{_account_id(9999)}", {"Name": "x"}, 404, "NOT_FOUND", []),
        (f"Account/{SOFT_DELETED}", {"Name": "x"}, 404, "ENTITY_IS_DELETED", []),
        ("Account/ERP_Customer_Id__c/NS-NOPE", {"Industry": "x"}, 400, "REQUIRED_FIELD_MISSING", ["Name"]),
        ("Account/Name/Acme", {"Industry": "x"}, 404, "NOT_FOUND", []),
        ("Account/Id/001TS9999999999AAA", {"Name": "x"}, 404, "NOT_FOUND", []),
    ],
)
def test_write_errors(sf: Served, path: str, body: dict, status: int, code: str, fields: list[str]) -> None:
    response = sf.http.patch(f"{sf.url}{DATA}/sobjects/{path}", json=body)
    assert response.status_code == status
    assert response.json()[0]["errorCode"] == code
    assert response.json()[0]["fields"] == fields


def test_update_by_id_changes_only_given_fields(sf: Served) -> None:
    url = f"{sf.url}{DATA}/sobjects/Account/{_account_id(7)}"
    assert sf.http.patch(url, json={"industry": "Legal"}).status_code == 204  # names are case-insensitive
    record = sf.http.get(url).json()
    assert record["Industry"] == "Legal" and record["Name"] == "Acme 007"
    assert record["SystemModstamp"] > sf_timestamp(BASE + timedelta(days=365))


# -- ids and pushdown --------------------------------------------------------------------------


def test_new_ids_are_case_safe_18_character_ids() -> None:
    rid = record_id("006", 12345)
    assert len(rid) == 18 and rid.startswith("0065X")
    assert rid != record_id("006", 12346)
    # The 3-character suffix encodes the upper-case positions of the 15-character id.
    assert record_id("001", 1)[15:] == "QAA"


def test_change_time_filters_are_pushed_down_to_the_store_index() -> None:
    catalogue = {name: t.fields for name, t in sobject_types().items()}
    q = (
        "SELECT Id FROM Account WHERE LastModifiedDate >= 2026-01-01T00:00:00Z "
        "AND SystemModstamp > 2026-02-01T00:00:00Z AND SystemModstamp <= 2026-03-01T00:00:00Z "
        "AND Id IN ('a', 'b')"
    )
    filters = SalesforceApi._scan_filters(soql.bind(soql.parse(q), catalogue))
    assert filters == {
        "since": datetime(2026, 2, 1, tzinfo=UTC),
        "since_inclusive": False,
        "until": datetime(2026, 3, 1, tzinfo=UTC),
        "ids": ["a", "b"],
    }


# -- SOQL unit tests ---------------------------------------------------------------------------


def test_parse_full_grammar() -> None:
    query = soql.parse(
        "select Id, Name FROM Account WHERE Name = 'O\\'Brien' AND Amount >= -1.5 AND IsWon = TRUE "
        "AND CloseDate < 2026-10-01 AND SystemModstamp > 2026-10-01T00:00:00.000+0000 "
        "AND Type IN ('A', null) AND Id <> '1' ORDER BY Name DESC, Id LIMIT 5"
    )
    assert query.fields == ("Id", "Name") and query.sobject == "Account" and query.limit == 5
    values = [(c.field, c.op, tuple(lit.value for lit in c.literals)) for c in query.conditions]
    assert values == [
        ("Name", "=", ("O'Brien",)),
        ("Amount", ">=", (-1.5,)),
        ("IsWon", "=", (True,)),
        ("CloseDate", "<", (date(2026, 10, 1),)),
        ("SystemModstamp", ">", (datetime(2026, 10, 1, tzinfo=UTC),)),
        ("Type", "IN", ("A", None)),
        ("Id", "!=", ("1",)),
    ]
    assert [(o.field, o.descending) for o in query.order_by] == [("Name", True), ("Id", False)]


def test_parse_datetime_forms_are_equivalent() -> None:
    moments = {
        soql.parse(f"SELECT Id FROM Account WHERE SystemModstamp > {text}").conditions[0].literals[0].value
        for text in ("2026-10-01T02:00:00Z", "2026-10-01T02:00:00.000+0000", "2026-10-01T04:00:00+02:00")
    }
    assert moments == {datetime(2026, 10, 1, 2, tzinfo=UTC)}


@pytest.mark.parametrize(
    "text",
    [
        "",
        "SELECT FROM Account",
        "SELECT Id Account",
        "SELECT Id FROM Account WHERE Name",
        "SELECT Id FROM",
        "SELECT Id FROM Account WHERE Name = 'unterminated",
        "SELECT Id FROM Account LIMIT x",
        "SELECT Id FROM Account WHERE Name IN ()",
        "SELECT Id FROM Account ORDER Name",
        "SELECT Id, FROM Account",
        "SELECT Id FROM Account WHERE Name = 'a' extra",
        "SELECT Id FROM Account WHERE CloseDate = 2026-13-45",
    ],
)
def test_parse_rejects_malformed_queries(text: str) -> None:
    with pytest.raises(SoqlError) as error:
        soql.parse(text)
    assert error.value.error_code == "MALFORMED_QUERY"


def _bind(text: str) -> soql.BoundQuery:
    return soql.bind(soql.parse(text), {name: t.fields for name, t in sobject_types().items()})


def test_bind_resolves_names_case_insensitively() -> None:
    bound = _bind("SELECT id, STAGENAME FROM opportunity ORDER BY closedate")
    assert bound.sobject == "Opportunity"
    assert [f.name for f in bound.fields] == ["Id", "StageName"]
    assert bound.order_by[0][0].name == "CloseDate"


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("SELECT Id FROM Account WHERE Name = 5", "INVALID_FIELD"),
        ("SELECT Id FROM Opportunity WHERE Amount = '5'", "INVALID_FIELD"),
        ("SELECT Id FROM Opportunity WHERE CloseDate = 2026-10-01T00:00:00Z", "INVALID_FIELD"),
        ("SELECT Id FROM Opportunity WHERE IsWon = 'true'", "INVALID_FIELD"),
        ("SELECT Id FROM Opportunity WHERE Amount > null", "MALFORMED_QUERY"),
        ("SELECT Id, id FROM Account", "MALFORMED_QUERY"),
        ("SELECT Id FROM Account ORDER BY Nope", "INVALID_FIELD"),
    ],
)
def test_bind_rejects_what_salesforce_rejects(text: str, code: str) -> None:
    with pytest.raises(SoqlError) as error:
        _bind(text)
    assert error.value.error_code == code


def test_evaluation_semantics() -> None:
    account = {
        "Id": "001A",
        "Name": "ACME Corp",
        "Industry": None,
        "LastModifiedDate": "2026-10-01T12:00:00.000+0000",
    }

    def matches(where: str) -> bool:
        return _bind(f"SELECT Id FROM Account WHERE {where}").matches(account)

    assert matches("Name = 'acme corp'")  # text comparison ignores case
    assert not matches("Id = '001a'")  # ids do not
    assert matches("Industry = null") and not matches("Industry != null") and not matches("Industry != 'X'")
    assert matches("LastModifiedDate > 2026-10-01T11:59:59Z") and not matches(
        "LastModifiedDate > 2026-10-01T12:00:00Z"
    )
    assert matches("Name IN ('x', 'Acme Corp')") and not matches("Name NOT IN ('acme corp')")


def test_sort_orders_nulls_first_and_keeps_ties_stable() -> None:
    rows = [
        {"Id": "3", "Amount": 5.0},
        {"Id": "1", "Amount": None},
        {"Id": "2", "Amount": 5.0},
        {"Id": "4", "Amount": 1.0},
    ]
    ordered = _bind("SELECT Id FROM Opportunity ORDER BY Amount DESC, Id").sort(rows)
    assert [r["Id"] for r in ordered] == ["2", "3", "4", "1"]
    ascending = _bind("SELECT Id FROM Opportunity ORDER BY Amount").sort(list(rows))
    assert ascending[0]["Id"] == "1"


# -- vendor fidelity (issue 10): each test names the Salesforce document it follows ---------------


def _with_faults(router: Router, ctx: SandboxContext) -> None:
    faults.install(router, ctx)
    salesforce.register(router, ctx)


@pytest.fixture
def sf_faulty(tmp_path: Path) -> Iterator[Served]:
    """The Salesforce endpoints behind the fault injector, as the full sandbox serves them."""
    with serve(tmp_path, _with_faults, _seed) as served:
        served.http.headers["Authorization"] = f"Bearer {_token(served.http, served.url)}"
        yield served





def test_the_org_has_documented_standard_fields_the_pipeline_does_not_read() -> None:
    """Object Reference for the Salesforce Platform (Account, Opportunity, Contract) and
    "System Fields": the org's objects carry their documented standard fields, read or not."""
    types = sobject_types()
    account = {info.name for info in types["Account"].fields.values()}
    assert {"Id", "Name", "Type", "Industry", "BillingCity", "BillingCountry", "OwnerId", "CreatedDate",
            "CreatedById", "LastModifiedDate", "LastModifiedById", "SystemModstamp", "IsDeleted",
            "ParentId", "Phone", "Website", "AnnualRevenue", "NumberOfEmployees"} <= account
    for name, sobject in types.items():
        assert {"LastModifiedDate", "SystemModstamp", "IsDeleted", "CreatedById"} <= {
            i.name for i in sobject.fields.values()}, name
    assert types["Opportunity"].required == ("Name", "StageName", "CloseDate")
    assert {"IsWon", "IsClosed", "ExpectedRevenue"} <= types["Opportunity"].read_only
    assert {"ContractNumber", "EndDate", "SystemModstamp"} <= types["Contract"].read_only


def test_exceeded_limits_answer_403_request_limit_exceeded_never_429(sf_faulty: Served) -> None:
    """REST API Developer Guide, "Status Codes and Error Responses": 403 with errorCode
    REQUEST_LIMIT_EXCEEDED when the org's request limits are exceeded. "API Request Limits and
    Allocations": a request running 20 s or longer counts against the concurrent long-running
    limit, and new requests are refused while the limit is reached. The injected rate-limit
    fault renders the same way."""
    sf = sf_faulty
    sf.ctx.store.kv_set(salesforce.CONCURRENT_LIMIT_KEY, 1)
    sf.ctx.store.kv_set(salesforce.LONG_RUNNING_KEY, 0.2)  # 20 s in a real org; shrunk for the test
    sf.ctx.store.kv_set("faults:salesforce", {"queue": [{"kind": "slow", "ms": 1500}]})
    slow = threading.Thread(target=lambda: _query(sf, "SELECT Id FROM Account LIMIT 1"))
    slow.start()
    time.sleep(0.6)  # the slow request is now long-running: the org is at its limit
    refused = _query(sf, "SELECT Id FROM Account LIMIT 1")
    slow.join()
    assert refused.status_code == 403
    assert refused.json() == [{"message": "ConcurrentPerOrgLongTxn Limit exceeded.",
                               "errorCode": "REQUEST_LIMIT_EXCEEDED", "fields": []}]
    assert _query(sf, "SELECT Id FROM Account LIMIT 1").status_code == 200  # freed once it finished

    sf.ctx.store.kv_set("faults:salesforce", {"queue": [{"kind": "429", "retry_after": 3}]})
    injected = _query(sf, "SELECT Id FROM Account LIMIT 1")
    assert injected.status_code == 403 and "Retry-After" not in injected.headers
    assert injected.json()[0]["errorCode"] == "REQUEST_LIMIT_EXCEEDED"


def test_limits_resource_reports_the_daily_api_allocation(sf: Served) -> None:
    """REST API Developer Guide, "Limits": ``GET /services/data/vXX.X/limits`` lists each limit as
    ``{"Max": n, "Remaining": n}``; DailyApiRequests is the org's daily API request allocation."""
    sf.ctx.store.kv_set("salesforce_daily_api_limit", 100)
    _query(sf, "SELECT Id FROM Account LIMIT 1")
    response = sf.http.get(f"{sf.url}{DATA}/limits")
    assert response.status_code == 200
    assert response.json()["DailyApiRequests"] == {"Max": 100, "Remaining": 98}  # the query and this call
    assert all(set(value) == {"Max", "Remaining"} for value in response.json().values())


def test_describe_global_and_sobject_describe(sf: Served) -> None:
    """REST API Developer Guide, "Describe Global" (``/sobjects``: encoding, maxBatchSize,
    sobjects with their properties and urls) and "sObject Describe" (``/sobjects/X/describe``:
    every field with name, type, label, length, nillable, createable, updateable, custom,
    externalId, referenceTo, relationshipName, picklistValues, ...)."""
    everything = sf.http.get(f"{sf.url}{DATA}/sobjects").json()
    assert everything["encoding"] == "UTF-8" and everything["maxBatchSize"] == 200
    listed = {o["name"]: o for o in everything["sobjects"]}
    assert {"Account", "Contact", "Opportunity", "Contract"} <= set(listed)
    assert listed["Account"]["keyPrefix"] == "001" and listed["Account"]["queryable"] is True
    assert listed["Account"]["urls"]["describe"] == f"{DATA}/sobjects/Account/describe"

    described = sf.http.get(f"{sf.url}{DATA}/sobjects/opportunity/describe/").json()
    assert described["name"] == "Opportunity" and described["custom"] is False
    fields = {f["name"]: f for f in described["fields"]}
    assert fields["Id"]["type"] == "id" and fields["Id"]["createable"] is False
    assert fields["AccountId"]["type"] == "reference" and fields["AccountId"]["referenceTo"] == ["Account"]
    assert fields["AccountId"]["relationshipName"] == "Account"
    assert fields["CloseDate"]["type"] == "date" and fields["CloseDate"]["nillable"] is False
    assert fields["Amount"]["type"] == "currency" and fields["Amount"]["soapType"] == "xsd:double"
    assert "Closed Won" in [v["value"] for v in fields["StageName"]["picklistValues"]]
    assert fields["IsWon"]["updateable"] is False
    assert fields["ERP_Project_Id__c"]["custom"] is True and fields["ERP_Project_Id__c"]["externalId"] is True
    assert fields["LastModifiedDate"]["type"] == "datetime"
    account = sf.http.get(f"{sf.url}{DATA}/sobjects/Account/describe").json()
    assert {"childSObject": "Opportunity", "field": "AccountId", "relationshipName": "Opportunities"}.items() <= \
        next(c for c in account["childRelationships"] if c["childSObject"] == "Opportunity").items()

    missing = sf.http.get(f"{sf.url}{DATA}/sobjects/Widget__c/describe")
    assert missing.status_code == 404 and _error_code(missing) == "NOT_FOUND"


def test_delete_moves_the_record_to_the_recycle_bin(sf: Served) -> None:
    """REST API Developer Guide, "sObject Rows": DELETE answers 204 with no body. The record
    then shows in queryAll with IsDeleted = true ("QueryAll") and in the delete log that
    "sObject Get Deleted" reads; deleting it again answers ENTITY_IS_DELETED."""
    target = _account_id(11)
    before = sf.ctx.store.now()
    deleted = sf.http.delete(f"{sf.url}{DATA}/sobjects/Account/{target}")
    assert (deleted.status_code, deleted.content) == (204, b"")
    q = f"SELECT Id, IsDeleted FROM Account WHERE Id = '{target}'"
    assert _query(sf, q).json()["totalSize"] == 0
    assert _query(sf, q, endpoint="queryAll").json()["records"][0]["IsDeleted"] is True
    window = {"start": (before - timedelta(minutes=1)).isoformat(),
              "end": (sf.ctx.store.now() + timedelta(minutes=1)).isoformat()}
    log = sf.http.get(f"{sf.url}{DATA}/sobjects/Account/deleted/", params=window).json()
    assert target in [entry["id"] for entry in log["deletedRecords"]]
    again = sf.http.delete(f"{sf.url}{DATA}/sobjects/Account/{target}")
    assert again.status_code == 404 and _error_code(again) == "ENTITY_IS_DELETED"
    unknown = sf.http.delete(f"{sf.url}{DATA}/sobjects/Account/{_account_id(9999)}")
    assert unknown.status_code == 404 and _error_code(unknown) == "NOT_FOUND"


def test_unknown_paths_answer_salesforce_error_bodies(sf: Served) -> None:
    """REST API Developer Guide, "Status Codes and Error Responses": 404 when the resource does
    not exist and 405 for a method the resource does not allow, each with the platform's
    ``[{"message", "errorCode"}]`` body (not the sandbox's own shape)."""
    for path in (f"{DATA}/nothing/here", f"{DATA}/sobjects/Account/{_account_id(1)}/extra/segment"):
        response = sf.http.get(f"{sf.url}{path}")
        assert response.status_code == 404
        assert response.json() == [
            {"errorCode": "NOT_FOUND", "message": "The requested resource does not exist", "fields": []}]
    wrong_method = sf.http.put(f"{sf.url}{DATA}/sobjects/Account/{_account_id(1)}", json={})
    assert wrong_method.status_code == 405 and _error_code(wrong_method) == "METHOD_NOT_ALLOWED"
    anonymous = requests.get(f"{sf.url}{DATA}/nothing/here", timeout=10)
    assert anonymous.status_code == 401 and anonymous.json()[0]["errorCode"] == "INVALID_SESSION_ID"


def test_token_endpoint_accepts_http_basic_client_authentication(tmp_path: Path) -> None:
    """OAuth 2.0 Client Credentials Flow for Server-to-Server Integration (Salesforce Help,
    ``remoteaccess_oauth_client_credentials_flow``) with the client authenticated by HTTP Basic
    (RFC 6749 section 2.3.1), as simple-salesforce sends it; refusals use the token endpoint's
    ``{"error", "error_description"}`` body."""
    with serve(tmp_path, salesforce.register, _seed) as served:
        url = f"{served.url}/services/oauth2/token"
        grant = {"grant_type": "client_credentials"}
        good = served.http.post(url, data=grant, auth=(CREDENTIALS["client_id"], CREDENTIALS["client_secret"]))
        assert good.status_code == 200 and good.json()["instance_url"] == served.url
        wrong_secret = served.http.post(url, data=grant, auth=(CREDENTIALS["client_id"], "nope"))
        assert wrong_secret.status_code == 400
        assert wrong_secret.json() == {"error": "invalid_client", "error_description": "invalid client credentials"}
        unknown = served.http.post(url, data=grant, auth=("someone-else", CREDENTIALS["client_secret"]))
        assert unknown.json() == {"error": "invalid_client_id", "error_description": "client identifier invalid"}
        token = good.json()["access_token"]
        query = served.http.get(f"{served.url}{DATA}/query", params={"q": "SELECT Id FROM Account LIMIT 1"},
                                headers={"Authorization": f"Bearer {token}"})
        assert query.status_code == 200


def test_count_answers_total_size_without_records(sf: Served) -> None:
    """SOQL and SOSL Reference, "COUNT()": ``SELECT COUNT() FROM ...`` returns the number of
    matching rows as totalSize, and no records."""
    body = _query(sf, "SELECT COUNT() FROM Account WHERE Type = 'Customer'").json()
    assert body == {"totalSize": ACCOUNTS // 2, "done": True, "records": []}
    assert _query(sf, "SELECT COUNT() FROM Account", endpoint="queryAll").json()["totalSize"] == ACCOUNTS + 1


def test_date_literals_are_ranges_relative_to_today(sf: Served) -> None:
    """SOQL and SOSL Reference, "Date Formats and Date Literals in WHERE": TODAY, YESTERDAY and
    LAST_N_DAYS:n name whole-day ranges relative to the current day (LAST_N_DAYS:n includes
    today), ``=`` is within the range and ``>`` after its end; they filter date and dateTime
    fields alike."""
    store = sf.ctx.store
    today = store.now().date()
    stamps = {"006TS0000000001AAA": 0, "006TS0000000002AAA": 1, "006TS0000000003AAA": 5}
    for rid, days_ago in stamps.items():
        record = store.get("salesforce", "Opportunity", rid)
        moment = datetime.combine(today - timedelta(days=days_ago), datetime.min.time(), UTC) + timedelta(hours=9)
        record.update(CloseDate=(today - timedelta(days=days_ago)).isoformat(), SystemModstamp=sf_timestamp(moment))
        store.put("salesforce", "Opportunity", rid, record, moment)

    def ids(where: str) -> list[str]:
        response = _query(sf, f"SELECT Id FROM Opportunity WHERE {where} ORDER BY Id")
        assert response.status_code == 200, response.text
        return [r["Id"][-4:-3] for r in response.json()["records"]]

    assert ids("CloseDate = TODAY") == ["1"]
    assert ids("CloseDate = YESTERDAY") == ["2"]
    assert ids("SystemModstamp = LAST_N_DAYS:1") == ["1", "2"]
    assert ids("SystemModstamp >= LAST_N_DAYS:7") == ["1", "2", "3"]
    assert ids("CloseDate < YESTERDAY") == ["3"]
    assert ids("CloseDate > YESTERDAY") == ["1"]
    assert ids("CloseDate != TODAY") == ["2", "3"]
    assert _error_code(_query(sf, "SELECT Id FROM Opportunity WHERE CloseDate = LAST_N_FORTNIGHTS:2")) == \
        "MALFORMED_QUERY"


def test_parent_relationship_fields_come_back_nested(sf: Served) -> None:
    """SOQL and SOSL Reference, "Using Relationship Queries": a child-to-parent query names the
    parent's fields through the relationship (``Account.Name``); each parent comes back as a
    nested object with its own ``attributes``, or null when the lookup is blank."""
    body = _query(sf, "SELECT Id, Name, Account.Name, Account.Industry FROM Opportunity "
                      "WHERE Account.Name = 'Acme 001'").json()
    assert body["totalSize"] == 1
    assert body["records"][0] == {
        "attributes": {"type": "Opportunity", "url": f"{DATA}/sobjects/Opportunity/006TS0000000001AAA"},
        "Id": "006TS0000000001AAA",
        "Name": "Deal 1",
        "Account": {"attributes": {"type": "Account", "url": f"{DATA}/sobjects/Account/{_account_id(1)}"},
                    "Name": "Acme 001", "Industry": "Consulting"},
    }
    record = sf.ctx.store.get("salesforce", "Opportunity", "006TS0000000002AAA")
    sf.ctx.store.put("salesforce", "Opportunity", record["Id"], {**record, "AccountId": None}, BASE)
    orphan = _query(sf, "SELECT Id, Account.Name FROM Opportunity WHERE Id = '006TS0000000002AAA'").json()
    assert orphan["records"][0]["Account"] is None
    bad = _query(sf, "SELECT Id, Acount.Name FROM Opportunity")
    assert bad.status_code == 400 and _error_code(bad) == "INVALID_FIELD"
