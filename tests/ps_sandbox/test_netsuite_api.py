"""The sandbox's NetSuite REST endpoints (SuiteQL, record API, governance) over real HTTP,
and the SuiteQL parser behind them."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from requests_oauthlib import OAuth1

from ps_sandbox import suiteql
from ps_sandbox.context import DEFAULT_CREDENTIALS, SandboxContext
from ps_sandbox.http import Request, Response, Router, json_response
from ps_sandbox.platforms import netsuite
from ps_sandbox.platforms.netsuite import SUITEQL_TABLES, lines_of, ns_timestamp
from ps_sandbox.platforms.netsuite_auth import JWT_BEARER
from ps_sandbox.store import SandboxStore
from ps_sandbox.suiteql import SuiteQLError
from tests.ps_sandbox.test_workday_api import Served, serve

BASE = datetime(2025, 10, 1, 9, 0, tzinfo=UTC)
SHOWN_BASE = "10/1/2025"  # BASE as SuiteQL answers it: the account's date format, no time
CUSTOMERS = 25
CREDENTIALS = DEFAULT_CREDENTIALS["netsuite"]
TBA = DEFAULT_CREDENTIALS["netsuite_tba"]
TOKEN_URL = "/services/rest/auth/oauth2/v1/token"
SUITEQL = "/services/rest/query/v1/suiteql"
RECORD = "/services/rest/record/v1"
DELETED_CUSTOMER, DELETED_INVOICE = "199", "5999"
DELETED_AT = BASE + timedelta(days=3)


def _customer(index: int) -> dict[str, Any]:
    body = {
        "id": str(90 + index),
        "entityid": f"C{90 + index} Customer {index}",
        "companyname": f"Customer {index}",
        "externalid": f"001EXT{index:04d}",
        "subsidiary": "1" if index % 2 else "2",
        "currency": "1" if index % 2 else "2",
        "isinactive": "T" if index % 7 == 0 else "F",
        "datecreated": ns_timestamp(BASE),
        "lastmodifieddate": ns_timestamp(BASE + timedelta(hours=index)),
    }
    if index == 4:
        del body["datecreated"]  # SuiteQL leaves empty columns out
    return body


def _invoice(number: int, customer: str, lines: list[tuple[str, str]]) -> tuple[dict, list[dict]]:
    tran_id = str(5000 + number)
    rows = [
        {
            "transaction": tran_id,
            "id": str(seq),
            "linesequencenumber": str(seq),
            "item": "7",
            "memo": f"line {seq}",
            "quantity": quantity,
            "rate": rate,
            "foreignamount": f"{float(quantity) * float(rate):.2f}",
            "mainline": "F",
            "taxline": "F",
        }
        for seq, (quantity, rate) in enumerate(lines, start=1)
    ]
    total = sum(float(row["foreignamount"]) for row in rows)
    # The transaction's main line (mainline = 'T', id 0), as every NetSuite transaction has one.
    rows.insert(0, {"transaction": tran_id, "id": "0", "linesequencenumber": "0", "mainline": "T", "taxline": "F",
                    "entity": customer, "subsidiary": "1", "foreignamount": f"{total:.2f}"})
    invoice = {
        "id": tran_id,
        "tranid": f"INV-{number:06d}",
        "type": "CustInvc",
        "entity": customer,
        "subsidiary": "1",
        "currency": "1",
        "trandate": "2025-10-01",
        "duedate": "2025-10-31",
        "status": "Open",
        "foreigntotal": f"{total:.2f}",
        "memo": f"Invoice {number}",
        "createddate": ns_timestamp(BASE),
        "lastmodifieddate": ns_timestamp(BASE + timedelta(minutes=number)),
    }
    return invoice, rows


def _seed(store: SandboxStore) -> None:
    store.put_many(
        "netsuite",
        "subsidiary",
        [
            (
                sid,
                BASE,
                {
                    "id": sid,
                    "name": name,
                    "country": country,
                    "currency": sid,
                    "isinactive": "F",
                    "lastmodifieddate": ns_timestamp(BASE),
                },
            )
            for sid, name, country in (("1", "PS Inc", "US"), ("2", "PS Ltd", "GB"))
        ],
    )
    store.put_many(
        "netsuite",
        "currency",
        [
            (
                cid,
                BASE,
                {
                    "id": cid,
                    "symbol": symbol,
                    "name": name,
                    "isbasecurrency": base,
                    "exchangerate": rate,
                    "lastmodifieddate": ns_timestamp(BASE),
                },
            )
            for cid, symbol, name, base, rate in (
                ("1", "USD", "US Dollar", "T", "1.000000"),
                ("2", "GBP", "British Pound", "F", "1.270000"),
            )
        ],
    )
    customers = [_customer(index) for index in range(1, CUSTOMERS + 1)]
    store.put_many(
        "netsuite",
        "customer",
        [(c["id"], BASE + timedelta(hours=i), c) for i, c in enumerate(customers, start=1)],
    )
    job = {
        "id": "300",
        "entityid": "PRJ300",
        "companyname": "Rollout",
        "externalid": "006EXT0001",
        "parent": "91",
        "subsidiary": "1",
        "currency": "1",
        "entitystatus": "In Progress",
        "startdate": "2025-10-01",
        "lastmodifieddate": ns_timestamp(BASE),
    }
    store.put("netsuite", "job", "300", job, BASE)
    for number, customer, lines in (
        (1, "91", [("2.00", "150.00"), ("1.50", "100.00")]),
        (2, "92", [("1.00", "999.99")]),
        (3, "93", [("10.00", "12.50")] * 11),
    ):
        invoice, rows = _invoice(number, customer, lines)
        stamp = BASE + timedelta(minutes=number)
        store.put("netsuite", "transaction", invoice["id"], invoice, stamp)
        store.put_many(
            "netsuite", "transactionline", [(f"{r['transaction']}|{r['id']}", stamp, r) for r in rows]
        )
    for table, record_id in (("customer", DELETED_CUSTOMER), ("transaction", DELETED_INVOICE)):
        store.put(
            "netsuite", table, record_id, {"id": record_id, "lastmodifieddate": ns_timestamp(BASE)}, BASE
        )
        store.hard_delete("netsuite", table, record_id, DELETED_AT)


def _assertion(url: str, *, key: str | None = None, headers: dict | None = None, **claims: Any) -> str:
    """A client assertion as NetSuite's "The Request Token Structure" describes it."""
    now = int(time.time())
    body = {"iss": CREDENTIALS["client_id"], "scope": "rest_webservices", "aud": f"{url}{TOKEN_URL}",
            "iat": now, "exp": now + 300, **claims}
    header = {"typ": "JWT", "kid": CREDENTIALS["certificate_id"], **(headers or {})}
    algorithm = header.pop("alg", "PS256")
    return jwt.encode(body, key or CREDENTIALS["private_key_pem"], algorithm=algorithm, headers=header)


def _token_response(http: requests.Session, url: str, assertion: str | None = None, **form: str) -> requests.Response:
    data = {"grant_type": "client_credentials", "client_assertion_type": JWT_BEARER,
            "client_assertion": assertion or _assertion(url), **form}
    return http.post(f"{url}{TOKEN_URL}", data={k: v for k, v in data.items() if v is not None})


def _token(http: requests.Session, url: str) -> str:
    response = _token_response(http, url)
    response.raise_for_status()
    return response.json()["access_token"]


@pytest.fixture
def ns(tmp_path: Path) -> Iterator[Served]:
    with serve(tmp_path, netsuite.register, _seed) as served:
        served.http.headers["Authorization"] = f"Bearer {_token(served.http, served.url)}"
        yield served


def _suiteql(
    ns: Served, q: str, limit: int | None = None, offset: int | None = None, prefer: str | None = "transient"
) -> requests.Response:
    params = {k: v for k, v in (("limit", limit), ("offset", offset)) if v is not None}
    headers = {"Prefer": prefer} if prefer else {}
    return ns.http.post(f"{ns.url}{SUITEQL}", params=params, json={"q": q}, headers=headers)


def _items(ns: Served, q: str, **paging: Any) -> list[dict]:
    response = _suiteql(ns, q, **paging)
    assert response.status_code == 200, response.text
    return response.json()["items"]


def _error(response: requests.Response) -> dict:
    body = response.json()
    assert body["status"] == response.status_code and body["type"].startswith("https://www.rfc-editor.org/")
    return body["o:errorDetails"][0]


# -- auth --------------------------------------------------------------------------------------


def test_m2m_client_assertion_gets_a_token(tmp_path: Path) -> None:
    """NetSuite help, "POST Request to the Token Endpoint and the Access Token Response"
    (section_162755359851) and "The Request Token Structure" (section_162790605110): grant_type
    client_credentials, client_assertion_type jwt-bearer, a JWT with kid = the M2M certificate id,
    iss = client id, aud = the token endpoint, scope, iat/exp; PS256, ES256 (and RS256) signatures."""
    with serve(tmp_path, netsuite.register, _seed) as served:
        body = _token_response(served.http, served.url).json()
        assert body["token_type"] == "Bearer" and body["expires_in"] == 3600 and body["access_token"]
        assert body["scope"] == "rest_webservices"
        rs256 = _assertion(served.url, headers={"alg": "RS256"}, scope="rest_webservices,restlets")
        assert _token_response(served.http, served.url, rs256).status_code == 200
        response = served.http.get(f"{served.url}{RECORD}/customer/91",
                                   headers={"Authorization": f"Bearer {body['access_token']}"})
        assert response.status_code == 200


def test_client_id_and_secret_alone_are_refused(tmp_path: Path) -> None:
    """NetSuite help, "POST Request to the Token Endpoint and the Access Token Response": the M2M
    client authenticates with a signed client_assertion only; a client id + secret (form or Basic)
    is refused with an RFC 6749 section 5.2 error body."""
    with serve(tmp_path, netsuite.register, _seed) as served:
        url = f"{served.url}{TOKEN_URL}"
        form = {"grant_type": "client_credentials", "client_id": CREDENTIALS["client_id"],
                "client_secret": "sandbox-ns-secret"}
        refused = served.http.post(url, data=form)
        assert refused.status_code == 400 and refused.json() == {"error": "invalid_request"}
        basic = served.http.post(url, data={"grant_type": "client_credentials"},
                                 auth=(CREDENTIALS["client_id"], "sandbox-ns-secret"))
        assert basic.status_code == 400 and basic.json() == {"error": "invalid_request"}
        wrong_grant = _token_response(served.http, served.url, grant_type="password")
        assert wrong_grant.json() == {"error": "unsupported_grant_type"}


def rsa_key_pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


_OTHER_KEY = rsa_key_pem()  # a key pair no certificate mapping of the account holds
_SHARED_SECRET = "a-shared-secret-is-no-certificate-0123456789"


@pytest.mark.parametrize(
    ("assertion", "error"),
    [
        pytest.param(lambda url: _assertion(url, key=_OTHER_KEY), "invalid_grant", id="signed-by-another-key"),
        pytest.param(lambda url: _assertion(url, headers={"kid": "unknown-certificate"}), "invalid_grant",
                     id="unknown-kid"),
        pytest.param(lambda url: _assertion(url, iat=int(time.time()) - 7200, exp=int(time.time()) - 3600),
                     "invalid_grant", id="expired"),
        pytest.param(lambda url: _assertion(url, exp=int(time.time()) + 7200), "invalid_grant",
                     id="lifetime-over-60-minutes"),
        pytest.param(lambda url: _assertion(url, iss="someone-else"), "invalid_grant", id="wrong-issuer"),
        pytest.param(lambda url: _assertion(url, aud="https://elsewhere.example/token"), "invalid_grant",
                     id="wrong-audience"),
        pytest.param(lambda url: _assertion(url, scope="everything"), "invalid_scope", id="unknown-scope"),
        pytest.param(lambda url: _assertion(url, headers={"alg": "HS256"}, key=_SHARED_SECRET), "invalid_grant",
                     id="hmac-not-a-certificate"),
    ],
)
def test_bad_client_assertions_are_refused(tmp_path: Path, assertion: Any, error: str) -> None:
    """NetSuite help, "The Request Token Structure" (section_162790605110): signed with the mapped
    certificate's private key, kid = its certificate id, iss = client id, aud = token endpoint,
    exp less than 60 minutes after iat, scope among restlets, rest_webservices, suite_analytics."""
    with serve(tmp_path, netsuite.register, _seed) as served:
        response = _token_response(served.http, served.url, assertion(served.url))
        assert response.status_code == 400 and response.json() == {"error": error}


def _tba(**changes: Any) -> OAuth1:
    creds = {**TBA, **changes}
    return OAuth1(creds["consumer_key"], client_secret=creds["consumer_secret"], resource_owner_key=creds["token_id"],
                  resource_owner_secret=creds["token_secret"], signature_method=changes.get("method", "HMAC-SHA256"),
                  realm=changes.get("realm", TBA["account_id"]))


def test_tba_signed_requests_authenticate(tmp_path: Path) -> None:
    """NetSuite help, "The Signature for Web Services and RESTlets" (section_1534941088) and "The
    Authorization Headers" (section_1534941295): OAuth 1.0a per RFC 5849, HMAC-SHA256, realm =
    account id, consumer key/secret + token id/secret; query parameters are signed too."""
    with serve(tmp_path, netsuite.register, _seed) as served:
        got = requests.get(f"{served.url}{RECORD}/customer/eid:001EXT0001", auth=_tba(), timeout=10)
        assert got.status_code == 200 and got.json()["id"] == "91"
        query = requests.post(f"{served.url}{SUITEQL}", params={"limit": 5, "offset": 0}, auth=_tba(),
                              json={"q": "SELECT id FROM customer ORDER BY id"}, headers={"Prefer": "transient"},
                              timeout=10)
        assert query.status_code == 200 and len(query.json()["items"]) == 5
        put = requests.put(f"{served.url}{RECORD}/customer/eid:001TBA", json=_customer_body(), auth=_tba(), timeout=10)
        assert put.status_code == 204


@pytest.mark.parametrize(
    "auth",
    [
        pytest.param(_tba(token_secret="wrong"), id="wrong-token-secret"),
        pytest.param(_tba(consumer_secret="wrong"), id="wrong-consumer-secret"),
        pytest.param(_tba(realm="7654321"), id="another-account-realm"),
        pytest.param(_tba(method="HMAC-SHA1"), id="hmac-sha1-ended-2023.1"),
        pytest.param(_tba(token_id="unknown-token"), id="unknown-token"),
    ],
)
def test_bad_tba_signatures_are_refused(tmp_path: Path, auth: OAuth1) -> None:
    """NetSuite help, "The Signature for Web Services and RESTlets" (section_1534941088): HMAC-SHA1
    support ended with 2023.1; a wrong secret, realm or token is INVALID_LOGIN ("RESTlets and REST
    Web Services Authentication Errors")."""
    with serve(tmp_path, netsuite.register, _seed) as served:
        response = requests.get(f"{served.url}{RECORD}/customer/91", auth=auth, timeout=10)
        assert response.status_code == 401 and _error(response)["o:errorCode"] == "INVALID_LOGIN"


def test_a_tba_nonce_is_good_once(tmp_path: Path) -> None:
    """RFC 5849 section 3.3: a nonce/timestamp pair may be used once (replays are refused)."""
    with serve(tmp_path, netsuite.register, _seed) as served:
        prepared = requests.Request("GET", f"{served.url}{RECORD}/customer/91", auth=_tba()).prepare()
        with requests.Session() as http:
            assert http.send(prepared, timeout=10).status_code == 200
            assert http.send(prepared, timeout=10).status_code == 401


def test_rest_calls_need_a_valid_token(ns: Served) -> None:
    for token in ("", "Bearer forged"):
        response = ns.http.get(f"{ns.url}{RECORD}/customer", headers={"Authorization": token})
        assert response.status_code == 401
        assert response.json() == {
            "type": "https://www.rfc-editor.org/rfc/rfc9110.html#section-15.5.2",
            "title": "Unauthorized",
            "status": 401,
            "o:errorDetails": [{"detail": "Invalid login attempt.", "o:errorCode": "INVALID_LOGIN"}],
        }


# -- SuiteQL -----------------------------------------------------------------------------------


def test_suiteql_pages_with_limit_offset_and_links(ns: Served) -> None:
    q = "SELECT id, companyname, isinactive, datecreated FROM customer ORDER BY lastmodifieddate"
    first = _suiteql(ns, q, limit=10).json()
    assert (first["count"], first["hasMore"], first["offset"], first["totalResults"]) == (
        10,
        True,
        0,
        CUSTOMERS,
    )
    links = {link["rel"]: link["href"] for link in first["links"]}
    assert links["self"] == f"{ns.url}{SUITEQL}?limit=10&offset=0"
    assert links["next"] == f"{ns.url}{SUITEQL}?limit=10&offset=10"
    assert first["items"][0] == {
        "links": [],
        "id": "91",
        "companyname": "Customer 1",
        "isinactive": "F",
        "datecreated": SHOWN_BASE,  # the account's date format, the time cut off
    }
    assert "datecreated" not in first["items"][3]  # NULL columns are left out of the item

    last = _suiteql(ns, q, limit=10, offset=20).json()
    assert (last["count"], last["hasMore"], last["offset"]) == (5, False, 20)
    assert [link["rel"] for link in last["links"]] == ["self"]
    everything = [item["id"] for offset in (0, 10, 20) for item in _items(ns, q, limit=10, offset=offset)]
    assert everything == [str(90 + i) for i in range(1, CUSTOMERS + 1)]


def test_suiteql_filters_and_numeric_ordering(ns: Served) -> None:
    since = "TO_TIMESTAMP('2025-10-01 18:00:00', 'YYYY-MM-DD HH24:MI:SS')"
    changed = _items(
        ns, f"select ID from CUSTOMER where lastmodifieddate > {since} and isinactive = 'F' order by id desc"
    )
    ids = [item["id"] for item in changed]
    assert ids == [str(90 + i) for i in range(CUSTOMERS, 9, -1) if i % 7]  # 115 sorts above 99 numerically
    assert _items(ns, "SELECT id FROM customer WHERE id IN (91, '93') AND subsidiary = 1") == [
        {"links": [], "id": "91"},
        {"links": [], "id": "93"},
    ]
    dated = _items(
        ns,
        "SELECT id FROM transaction WHERE trandate >= TO_DATE('2025-10-01', 'YYYY-MM-DD') "
        "AND foreigntotal < 1000 ORDER BY foreigntotal",
    )
    assert [item["id"] for item in dated] == ["5001", "5002"]
    assert _items(ns, "SELECT id FROM customer WHERE datecreated IS NULL") == [{"links": [], "id": "94"}]


def test_index_paging_and_python_paging_agree(ns: Served) -> None:
    since = "TO_TIMESTAMP('2025-10-01 12:00:00', 'YYYY-MM-DD HH24:MI:SS')"
    indexed = f"SELECT id FROM customer WHERE lastmodifieddate >= {since} ORDER BY lastmodifieddate, id"
    # The extra always-true condition cannot be answered by the store, forcing the Python path.
    filtered = indexed.replace("ORDER BY", "AND companyname IS NOT NULL ORDER BY")

    def pages(q: str) -> list[tuple[int, bool, list[str]]]:
        result = []
        for offset in range(0, 30, 5):
            body = _suiteql(ns, q, limit=5, offset=offset).json()
            result.append((body["totalResults"], body["hasMore"], [item["id"] for item in body["items"]]))
        return result

    assert pages(indexed) == pages(filtered)
    assert pages(indexed)[0] == (CUSTOMERS - 2, True, ["93", "94", "95", "96", "97"])


def test_transaction_lines_by_transaction(ns: Served) -> None:
    items = _items(
        ns,
        "SELECT transaction, id, quantity, rate, foreignamount FROM transactionline "
        "WHERE transaction IN (5001, 5003) AND mainline = 'F' ORDER BY transaction, linesequencenumber",
    )
    assert len(items) == 2 + 11
    assert items[:2] == [
        {
            "links": [],
            "transaction": "5001",
            "id": "1",
            "quantity": "2.00",
            "rate": "150.00",
            "foreignamount": "300.00",
        },
        {
            "links": [],
            "transaction": "5001",
            "id": "2",
            "quantity": "1.50",
            "rate": "100.00",
            "foreignamount": "150.00",
        },
    ]
    assert [item["id"] for item in items[2:]] == [str(n) for n in range(1, 12)]  # 10 after 9, numerically
    # The range lookup must not bleed into transactions whose id merely starts the same.
    assert {row["transaction"] for row in lines_of(ns.ctx.store, ["500"])} == set()


def test_deletedrecord_lists_tombstones_as_record_types(ns: Served) -> None:
    items = _items(
        ns,
        "SELECT recordid, type, deleteddate FROM deletedrecord WHERE deleteddate >= "
        "TO_TIMESTAMP('2025-10-02 00:00:00', 'YYYY-MM-DD HH24:MI:SS') ORDER BY recordid",
    )
    assert items == [
        {
            "links": [],
            "recordid": DELETED_CUSTOMER,
            "type": "customer",
            "deleteddate": "10/4/2025",
        },
        {
            "links": [],
            "recordid": DELETED_INVOICE,
            "type": "invoice",
            "deleteddate": "10/4/2025",
        },
    ]
    assert _items(ns, "SELECT recordid FROM deletedrecord WHERE type = 'invoice'") == [
        {"links": [], "recordid": DELETED_INVOICE}
    ]
    late = "TO_TIMESTAMP('2025-10-05 00:00:00', 'YYYY-MM-DD HH24:MI:SS')"
    assert _items(ns, f"SELECT recordid FROM deletedrecord WHERE deleteddate > {late}") == []


@pytest.mark.parametrize(
    ("q", "paging", "prefer", "code", "named"),
    [
        ("SELECT id FROM customer", {}, None, "INVALID_HEADER", "Prefer"),
        ("SELECT id, balance FROM customer", {}, "transient", "INVALID_PARAMETER", "balance"),
        ("SELECT id FROM salesorder", {}, "transient", "INVALID_PARAMETER", "salesorder"),
        ("SELECT id FROM customer ORDER BY nope", {}, "transient", "INVALID_PARAMETER", "nope"),
        ("SELECT id customer", {}, "transient", "INVALID_PARAMETER", "Invalid search query"),
        ("SELECT id FROM customer", {"limit": 1001}, "transient", "INVALID_PARAMETER", "limit"),
        ("SELECT id FROM customer", {"limit": 10, "offset": 5}, "transient", "INVALID_PARAMETER", "offset"),
    ],
)
def test_suiteql_errors(ns: Served, q: str, paging: dict, prefer: str | None, code: str, named: str) -> None:
    response = _suiteql(ns, q, prefer=prefer, **paging)
    assert response.status_code == 400
    detail = _error(response)
    assert detail["o:errorCode"] == code and named in detail["detail"]


# -- record API: reads -------------------------------------------------------------------------


def test_record_list_and_get(ns: Served) -> None:
    listing = ns.http.get(f"{ns.url}{RECORD}/customer", params={"limit": 5, "offset": 5}).json()
    assert (listing["count"], listing["hasMore"], listing["totalResults"]) == (5, True, CUSTOMERS)
    item = listing["items"][0]
    assert item["links"] == [{"rel": "self", "href": f"{ns.url}{RECORD}/customer/{item['id']}"}]

    customer = ns.http.get(f"{ns.url}{RECORD}/customer/91").json()
    assert customer == {
        "links": [{"rel": "self", "href": f"{ns.url}{RECORD}/customer/91"}],
        "id": "91",
        "entityId": "C91 Customer 1",
        "companyName": "Customer 1",
        "externalId": "001EXT0001",
        "subsidiary": {"id": "1", "refName": "PS Inc"},
        "currency": {"id": "1", "refName": "US Dollar"},
        "isInactive": False,
        "dateCreated": ns_timestamp(BASE),
        "lastModifiedDate": ns_timestamp(BASE + timedelta(hours=1)),
    }
    by_external_id = ns.http.get(f"{ns.url}{RECORD}/customer/eid:001EXT0001").json()
    assert by_external_id["id"] == "91"

    invoice = ns.http.get(f"{ns.url}{RECORD}/invoice/5001").json()
    assert (invoice["tranId"], invoice["total"], invoice["entity"]["id"]) == ("INV-000001", 450.0, "91")
    assert invoice["item"]["items"][1] == {
        "line": 2,
        "item": {"id": "7"},
        "description": "line 2",
        "quantity": 1.5,
        "rate": 100.0,
        "amount": 150.0,
    }


@pytest.mark.parametrize("path", ["customer/424242", "customer/eid:nope", "invoice/91", "widget/1"])
def test_unknown_records_answer_404(ns: Served, path: str) -> None:
    response = ns.http.get(f"{ns.url}{RECORD}/{path}")
    assert response.status_code == 404
    assert _error(response)["o:errorCode"] == "NONEXISTENT_ID"


# -- record API: writes ------------------------------------------------------------------------


def _customer_body(**changes: Any) -> dict[str, Any]:
    return {"companyName": "Initech", "subsidiary": {"id": "1"}, "currency": {"id": "1"}, **changes}


def test_create_then_read_back_through_record_api_and_suiteql(ns: Served) -> None:
    created = ns.http.post(f"{ns.url}{RECORD}/customer", json=_customer_body(externalId="001NEW"))
    assert created.status_code == 204 and created.content == b""
    location = created.headers["Location"]
    assert location.startswith(f"{ns.url}{RECORD}/customer/")
    new_id = location.rsplit("/", 1)[1]
    assert int(new_id) > netsuite.NEW_ID_BASE

    record = ns.http.get(location).json()
    assert (record["companyName"], record["entityId"], record["isInactive"]) == (
        "Initech",
        f"C{new_id} Initech",
        False,
    )
    iso = "TO_CHAR(lastmodifieddate, 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') AS lastmodifieddate"
    row = _items(
        ns, f"SELECT id, isinactive, {iso}, TO_CHAR(datecreated, 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') datecreated "
        f"FROM customer WHERE id = {new_id}"
    )[0]
    assert row["isinactive"] == "F" and row["lastmodifieddate"] == record["lastModifiedDate"]
    assert row["datecreated"] == row["lastmodifieddate"]
    # The write is the newest change, so an incremental read picks it up.
    newest = _items(ns, "SELECT id FROM customer ORDER BY lastmodifieddate DESC", limit=1)
    assert newest == [{"links": [], "id": new_id}]

    duplicate = ns.http.post(f"{ns.url}{RECORD}/customer", json=_customer_body(externalId="001NEW"))
    assert duplicate.status_code == 400 and _error(duplicate)["o:errorCode"] == "USER_ERROR"


def test_put_by_external_id_is_an_idempotent_upsert(ns: Served) -> None:
    url = f"{ns.url}{RECORD}/customer/eid:001UPSERT"
    first = ns.http.put(url, json=_customer_body())
    second = ns.http.put(url, json=_customer_body(companyName="Initrode", isInactive=True))
    assert first.status_code == second.status_code == 204
    assert first.headers["Location"] == second.headers["Location"]
    rows = _items(ns, "SELECT id, companyname, isinactive FROM customer WHERE externalid = '001UPSERT'")
    assert [(r["companyname"], r["isinactive"]) for r in rows] == [("Initrode", "T")]

    ns.http.patch(second.headers["Location"], json={"companyName": "Initrode Global"}).raise_for_status()
    assert ns.http.get(url).json()["companyName"] == "Initrode Global"
    mismatch = ns.http.put(url, json=_customer_body(externalId="other"))
    assert mismatch.status_code == 400
    by_internal_id = ns.http.put(second.headers["Location"], json=_customer_body())
    assert by_internal_id.status_code == 400


def _invoice_body(*lines: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {
        "entity": {"id": "91"},
        "subsidiary": {"id": "1"},
        "currency": {"id": "1"},
        "job": {"id": "300"},
        "tranDate": "2026-01-31",
        "memo": "January",
        "item": {"items": list(lines)},
        **changes,
    }


def _line(
    quantity: float, rate: float, amount: float | None = None, key: str | None = None
) -> dict[str, Any]:
    line = {
        "item": {"id": "7"},
        "description": "Consulting",
        "quantity": quantity,
        "rate": rate,
        "custcol_ps_line_key": key,
    }
    return line if amount is None else {**line, "amount": amount}


def test_invoice_upsert_writes_transaction_and_replaces_its_lines(ns: Served) -> None:
    url = f"{ns.url}{RECORD}/invoice/eid:psp:inv:1"
    lines = (_line(7.5, 120.0, 900.0, "k1"), _line(2, 99.99, key="k2"), _line(1, 0.333, 0.33, "k3"))
    assert ns.http.put(url, json=_invoice_body(*lines)).status_code == 204
    tran_id = ns.http.get(url).json()["id"]
    header = _items(
        ns, f"SELECT type, status, foreigntotal, externalid, tranid FROM transaction WHERE id = {tran_id}"
    )
    assert header == [
        {
            "links": [],
            "type": "CustInvc",
            "status": "Open",
            "foreigntotal": "1100.31",
            "externalid": "psp:inv:1",
            "tranid": f"INV-{tran_id}",
        }
    ]
    keys = (f"SELECT custcol_ps_line_key, foreignamount FROM transactionline WHERE transaction = {tran_id} "
            "AND mainline = 'F'")
    assert [(r["custcol_ps_line_key"], r["foreignamount"]) for r in _items(ns, keys)] == [
        ("k1", "900.00"),
        ("k2", "199.98"),
        ("k3", "0.33"),
    ]

    assert ns.http.put(url, json=_invoice_body(_line(1, 50, key="only"))).status_code == 204
    assert [r["custcol_ps_line_key"] for r in _items(ns, keys)] == ["only"]
    assert ns.http.get(url).json()["total"] == 50.0
    assert len(_items(ns, "SELECT id FROM transaction WHERE externalid = 'psp:inv:1'")) == 1


@pytest.mark.parametrize(
    ("body", "code", "named"),
    [
        (_invoice_body(_line(2, 10, 25)), "USER_ERROR", "item.items[0].amount"),
        (_invoice_body(), "USER_ERROR", "item.items"),
        ({**_invoice_body(_line(1, 1)), "item": None}, "USER_ERROR", "item.items"),
        (_invoice_body(_line(1, 1), entity={"id": "424242"}), "INVALID_KEY_OR_REF", "entity"),
        (_invoice_body(_line(1, 1), job={"id": "1"}), "INVALID_KEY_OR_REF", "job"),
        (
            {k: v for k, v in _invoice_body(_line(1, 1)).items() if k != "subsidiary"},
            "USER_ERROR",
            "subsidiary",
        ),
        (_invoice_body({"item": {"id": "7"}, "quantity": "lots", "rate": 1}), "USER_ERROR", "quantity"),
        (_invoice_body(_line(1, 1), shipDate="2026-01-01"), "USER_ERROR", "shipDate"),
    ],
)
def test_invoice_validation(ns: Served, body: dict, code: str, named: str) -> None:
    response = ns.http.post(f"{ns.url}{RECORD}/invoice", json=body)
    assert response.status_code == 400
    detail = _error(response)
    assert detail["o:errorCode"] == code
    assert named in detail["detail"] or named == detail.get("o:errorPath")
    assert len(_items(ns, "SELECT id FROM transaction")) == 3  # nothing was written


def test_amounts_within_a_cent_are_accepted(ns: Served) -> None:
    response = ns.http.post(f"{ns.url}{RECORD}/invoice", json=_invoice_body(_line(3, 33.333, 100.0)))
    assert response.status_code == 204, response.text


@pytest.mark.parametrize(
    ("record", "body", "code", "named"),
    [
        ("customer", _customer_body(companyName=None), "USER_ERROR", "companyName"),
        ("customer", _customer_body(subsidiary={"id": "9"}), "INVALID_KEY_OR_REF", "subsidiary"),
        ("customer", _customer_body(currency="USD"), "USER_ERROR", "currency"),
        ("job", {"companyName": "Phase 2"}, "USER_ERROR", "parent"),
        ("job", {"companyName": "Phase 2", "parent": {"id": "424242"}}, "INVALID_KEY_OR_REF", "parent"),
    ],
)
def test_entity_validation(ns: Served, record: str, body: dict, code: str, named: str) -> None:
    response = ns.http.post(f"{ns.url}{RECORD}/{record}", json=body)
    assert response.status_code == 400
    detail = _error(response)
    assert detail["o:errorCode"] == code and named in detail["detail"]


def test_job_inherits_subsidiary_and_currency_from_its_customer(ns: Served) -> None:
    created = ns.http.post(
        f"{ns.url}{RECORD}/job",
        json={"companyName": "Phase 2", "parent": {"id": "92"}, "entityStatus": "In Progress"},
    )
    assert created.status_code == 204, created.text
    job = ns.http.get(created.headers["Location"]).json()
    assert (job["subsidiary"]["id"], job["currency"]["id"], job["parent"]["refName"]) == (
        "2",
        "2",
        "Customer 2",
    )
    assert job["entityId"] == f"PRJ{job['id']}" and job["entityStatus"] == "In Progress"


# -- concurrency governance --------------------------------------------------------------------


def test_requests_beyond_the_concurrency_limit_get_429(tmp_path: Path) -> None:
    entered, release = threading.Semaphore(0), threading.Event()

    def hold(request: Request) -> Response:
        entered.release()
        release.wait(timeout=30)
        return json_response({"held": True})

    def register(router: Router, ctx: SandboxContext) -> None:
        netsuite.register(router, ctx)
        # A NetSuite route that stays in flight until the test lets it go: no timing guesses.
        router.add("GET", "/services/rest/test/hold", "netsuite", hold)

    with serve(tmp_path, register, _seed) as served, ThreadPoolExecutor(max_workers=12) as pool:
        served.ctx.store.kv_set("netsuite_concurrency_limit", 4)
        token = {"Authorization": f"Bearer {_token(served.http, served.url)}"}

        def call() -> requests.Response:
            return requests.get(f"{served.url}/services/rest/test/hold", headers=token, timeout=30)

        futures = [pool.submit(call) for _ in range(12)]
        for _ in range(4):
            assert entered.acquire(timeout=10), "the first requests never reached the handler"
        finished: set = set()
        while len(finished) < 8:  # everything beyond the limit is answered while four are held
            done, _ = wait([f for f in futures if f not in finished], timeout=10, return_when=FIRST_COMPLETED)
            assert done, "requests over the limit were not rejected"
            finished |= done
        blocked = _currencies(served, token)
        new_token = _token(served.http, served.url)  # the token endpoint is not governed
        release.set()
        statuses = sorted(f.result().status_code for f in futures)

        assert statuses == [200] * 4 + [429] * 8
        assert blocked.status_code == 429
        assert _error(blocked)["o:errorCode"] == "CONCURRENCY_LIMIT_EXCEEDED"
        assert new_token
        # Slots free up as soon as the held requests finish.
        assert _currencies(served, token).status_code == 200


def _currencies(served: Served, headers: dict[str, str]) -> requests.Response:
    return requests.post(
        f"{served.url}{SUITEQL}",
        json={"q": "SELECT id FROM currency"},
        headers={**headers, "Prefer": "transient"},
        timeout=10,
    )


# -- SuiteQL unit tests ------------------------------------------------------------------------


def test_parse_full_grammar() -> None:
    query = suiteql.parse(
        "select ID, CompanyName from Customer where lastmodifieddate >= "
        "TO_TIMESTAMP('2026-10-01 08:30:00', 'YYYY-MM-DD HH24:MI:SS') and trandate < TO_DATE('2026-10-02', "
        "'YYYY-MM-DD') and memo = 'it''s' and id in (1, '2') and id not in (3) and x is not null and y <> 4 "
        "order by id desc, companyname"
    )
    assert (query.columns, query.table) == (("id", "companyname"), "customer")
    conditions = [(c.field, c.op, tuple(lit.value for lit in c.literals)) for c in query.conditions]
    assert conditions == [
        ("lastmodifieddate", ">=", (datetime(2026, 10, 1, 8, 30, tzinfo=UTC),)),
        ("trandate", "<", (datetime(2026, 10, 2, tzinfo=UTC),)),
        ("memo", "=", ("it's",)),
        ("id", "IN", (1.0, "2")),
        ("id", "NOT IN", (3.0,)),
        ("x", "IS NOT NULL", ()),
        ("y", "!=", (4.0,)),
    ]
    assert [(o.field, o.descending) for o in query.order_by] == [("id", True), ("companyname", False)]
    assert suiteql.parse("SELECT * FROM job").columns == ()


@pytest.mark.parametrize(
    "text",
    [
        "SELECT FROM customer",
        "SELECT id FROM customer WHERE",
        "SELECT id FROM customer WHERE id = ",
        "SELECT id FROM customer WHERE d > TO_TIMESTAMP('2026-10-01', 'YYYY-MM-DD HH24:MI:SS')",
        "SELECT id FROM customer WHERE d > TO_DATE('2026-10-01', 'DD.MON.YYYY')",
        "SELECT id FROM customer WHERE a = 1 OR b = 2",
        "SELECT id FROM customer ORDER id",
        "SELECT id FROM customer WHERE memo = 'open",
        "SELECT id FROM customer extra",
    ],
)
def test_parse_rejects_malformed_queries(text: str) -> None:
    with pytest.raises(SuiteQLError) as error:
        suiteql.parse(text)
    assert error.value.error_code == "INVALID_PARAMETER"


def test_evaluation_converts_strings_to_the_literal_type() -> None:
    row = {
        "id": "120",
        "foreigntotal": "99.50",
        "memo": "Open",
        "lastmodifieddate": "2026-10-01T12:00:00Z",
        "trandate": "2026-10-01",
        "job": "",
    }

    def matches(where: str) -> bool:
        return suiteql.bind(suiteql.parse(f"SELECT * FROM t WHERE {where}"), {"t": tuple(row)}).matches(row)

    assert matches("id > 99") and not matches("id > '99'")  # numbers compare numerically, text lexically
    assert matches("foreigntotal = 99.5") and matches("memo = 'Open'") and not matches("memo = 'open'")
    assert matches("lastmodifieddate > TO_TIMESTAMP('2026-10-01 11:59:59', 'YYYY-MM-DD HH24:MI:SS')")
    assert matches("trandate >= TO_DATE('2026-10-01', 'YYYY-MM-DD')")
    assert matches("job IS NULL") and not matches("job IS NOT NULL") and not matches("job = ''")


def test_bind_checks_tables_and_columns() -> None:
    suiteql.bind(suiteql.parse("SELECT id, foreigntotal FROM transaction ORDER BY trandate"), SUITEQL_TABLES)
    for text, named in (
        ("SELECT id FROM nowhere", "nowhere"),
        ("SELECT nope FROM customer", "nope"),
        ("SELECT id FROM job WHERE nope = 1", "nope"),
    ):
        with pytest.raises(SuiteQLError, match=named):
            suiteql.bind(suiteql.parse(text), SUITEQL_TABLES)


def test_sort_is_numeric_for_numbers_and_puts_nulls_last() -> None:
    rows = [{"id": "10"}, {"id": None}, {"id": "9"}, {"id": "100"}]
    bound = suiteql.bind(suiteql.parse("SELECT id FROM t ORDER BY id"), {"t": ("id",)})
    assert [r["id"] for r in bound.sort(rows)] == ["9", "10", "100", None]
