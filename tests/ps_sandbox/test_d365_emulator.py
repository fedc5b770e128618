"""The sandbox's Dynamics 365 Finance and Operations emulation over real HTTP: Entra ID tokens,
the OData service (companies, query options, paging, writes, $batch change sets) and service
protection, plus the fault machinery a write-back client is tested against."""

from __future__ import annotations

import json
import time
import uuid
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
import requests

from ps_sandbox import d365_data
from ps_sandbox.catalog import d365 as catalog
from ps_sandbox.context import DEFAULT_CREDENTIALS
from tests.conftest import RunningSandbox

CREDS = DEFAULT_CREDENTIALS["d365"]
DEFAULT_COMPANY = CREDS["default_company"]


def token_response(sandbox: RunningSandbox, **overrides: str) -> requests.Response:
    form = {"grant_type": "client_credentials", "client_id": CREDS["client_id"],
            "client_secret": CREDS["client_secret"], "scope": f"{sandbox.url}/.default"}
    tenant = overrides.pop("tenant", CREDS["tenant"])
    return requests.post(f"{sandbox.url}/{tenant}/oauth2/v2.0/token", data={**form, **overrides}, timeout=30)


def bearer(sandbox: RunningSandbox) -> dict[str, str]:
    response = token_response(sandbox)
    response.raise_for_status()
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def get(sandbox: RunningSandbox, path: str, headers: dict[str, str], **params: str) -> requests.Response:
    return requests.get(f"{sandbox.url}/data/{path}", headers=headers, params=params, timeout=30)


def read_all(sandbox: RunningSandbox, path: str, headers: dict[str, str], **params: str) -> list[dict[str, Any]]:
    """Every page, following ``@odata.nextLink``."""
    url, rows = f"{sandbox.url}/data/{path}", []
    response = requests.get(url, headers=headers, params=params, timeout=30)
    while True:
        response.raise_for_status()
        body = response.json()
        rows += body["value"]
        if "@odata.nextLink" not in body:
            return rows
        response = requests.get(body["@odata.nextLink"], headers=headers, timeout=30)


def stored(sandbox: RunningSandbox, entity: str) -> list[dict[str, Any]]:
    """The emulator's own records, read from its store (what the API must answer)."""
    return sandbox.ctx.store.scan("d365", entity, order="id")


@pytest.fixture
def auth(sandbox: RunningSandbox) -> dict[str, str]:
    headers = bearer(sandbox)
    get(sandbox, "LegalEntities", headers).raise_for_status()  # the first request derives the data
    return headers


# -- Microsoft Entra ID ----------------------------------------------------------------------------


def test_token_answers_client_credentials_grant(sandbox: RunningSandbox) -> None:
    body = token_response(sandbox).json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == body["ext_expires_in"] == 3599
    assert body["access_token"]


@pytest.mark.parametrize(("override", "status", "error", "code"), [
    ({"client_secret": "wrong"}, 401, "invalid_client", 7000215),
    ({"client_id": "someone-else"}, 400, "unauthorized_client", 700016),
    ({"scope": "https://other.operations.dynamics.com/.default"}, 400, "invalid_scope", 70011),
    ({"grant_type": "password"}, 400, "unsupported_grant_type", 70003),
    ({"tenant": "contoso.onmicrosoft.com"}, 400, "invalid_request", 90002),
])
def test_token_refusals_answer_entra_error_bodies(sandbox: RunningSandbox, override: dict[str, str], status: int,
                                                  error: str, code: int) -> None:
    response = token_response(sandbox, **override)
    assert response.status_code == status
    body = response.json()
    assert body["error"] == error
    assert body["error_codes"] == [code]
    assert body["error_description"].startswith(f"AADSTS{code}: ")
    assert {"timestamp", "trace_id", "correlation_id", "error_uri"} <= set(body)


def test_data_requests_need_a_live_token(sandbox: RunningSandbox) -> None:
    assert get(sandbox, "CustomersV3", {}).status_code == 401
    unknown = get(sandbox, "CustomersV3", {"Authorization": "Bearer not-a-token"})
    assert unknown.status_code == 401
    assert unknown.headers["WWW-Authenticate"].startswith("Bearer")

    sandbox.control("PUT", "limits", {"d365_token_ttl_seconds": 1})
    short = token_response(sandbox).json()
    assert short["expires_in"] == 1
    headers = {"Authorization": f"Bearer {short['access_token']}"}
    assert get(sandbox, "Currencies", headers).status_code == 200
    time.sleep(1.2)
    assert get(sandbox, "Currencies", headers).status_code == 401

    sandbox.control("PUT", "limits", {"d365_token_ttl_seconds": None})
    headers = bearer(sandbox)
    sandbox.control("POST", "tokens/expire", {"platform": "d365"})
    assert get(sandbox, "Currencies", headers).status_code == 401


# -- companies, query options, paging --------------------------------------------------------------


def test_company_entities_answer_the_default_company_unless_cross_company(sandbox: RunningSandbox,
                                                                          auth: dict[str, str]) -> None:
    every = stored(sandbox, "CustomersV3")
    companies = {row["dataAreaId"] for row in every}
    assert len(companies) > 1, "the sandbox's customers span several legal entities"

    default = read_all(sandbox, "CustomersV3", auth)
    assert {row["dataAreaId"] for row in default} == {DEFAULT_COMPANY}
    assert len(default) == sum(row["dataAreaId"] == DEFAULT_COMPANY for row in every)

    cross = read_all(sandbox, "CustomersV3", auth, **{"cross-company": "true"})
    assert len(cross) == len(every)

    other = sorted(companies - {DEFAULT_COMPANY})[0]
    one = read_all(sandbox, "CustomersV3", auth, **{"cross-company": "true", "$filter": f"dataAreaId eq '{other}'"})
    assert {row["CustomerAccount"] for row in one} == {r["CustomerAccount"] for r in every if r["dataAreaId"] == other}
    # Shared entities (no dataAreaId in their key) answer the same either way.
    assert len(read_all(sandbox, "Currencies", auth)) == len(stored(sandbox, "Currencies"))


def test_paging_honours_maxpagesize_and_follows_next_links(sandbox: RunningSandbox, auth: dict[str, str]) -> None:
    total = len(stored(sandbox, "ExchangeRates"))
    page_size = 500
    assert total > 2 * page_size
    response = get(sandbox, "ExchangeRates", {**auth, "Prefer": f"odata.maxpagesize={page_size}"}, **{"$count": "true"})
    assert response.headers["Preference-Applied"] == f"odata.maxpagesize={page_size}"
    body = response.json()
    assert body["@odata.context"].endswith("/data/$metadata#ExchangeRates")
    assert body["@odata.count"] == total
    assert len(body["value"]) == page_size
    pages, rows, url = 1, body["value"], body["@odata.nextLink"]
    while url:
        page = requests.get(url, headers={**auth, "Prefer": f"odata.maxpagesize={page_size}"}, timeout=30).json()
        rows += page["value"]
        pages += 1
        url = page.get("@odata.nextLink")
    assert pages == -(-total // page_size)
    keys = [(r["FromCurrency"], r["ToCurrency"], r["StartDate"]) for r in rows]
    assert len(set(keys)) == total  # no row twice, none skipped

    # Without a preference the server's page (10,000) holds them all.
    whole = get(sandbox, "ExchangeRates", auth).json()
    assert len(whole["value"]) == total and "@odata.nextLink" not in whole


def test_filter_select_orderby_top(sandbox: RunningSandbox, auth: dict[str, str]) -> None:
    rates = [r for r in stored(sandbox, "ExchangeRates")
             if r["FromCurrency"] == "GBP" and r["StartDate"] >= "2026-06-01T12:00:00Z"]
    expected = sorted(rates, key=lambda r: r["StartDate"], reverse=True)[:7]
    response = get(sandbox, "ExchangeRates", auth, **{
        "$filter": "FromCurrency eq 'gbp' and StartDate ge 2026-06-01T12:00:00Z",
        "$select": "FromCurrency,StartDate,Rate", "$orderby": "StartDate desc", "$top": "7"})
    body = response.json()
    assert body["@odata.context"].endswith("#ExchangeRates(FromCurrency,StartDate,Rate)")
    assert [(r["StartDate"], Decimal(str(r["Rate"]))) for r in body["value"]] == \
        [(r["StartDate"], Decimal(str(r["Rate"]))) for r in expected]
    assert all(set(r) == {"@odata.etag", "FromCurrency", "StartDate", "Rate"} for r in body["value"])

    either = read_all(sandbox, "Currencies", auth, **{"$filter": "CurrencyCode eq 'EUR' or (CurrencyCode eq 'AUD')"})
    assert sorted(r["CurrencyCode"] for r in either) == ["AUD", "EUR"]

    customer = next(r for r in stored(sandbox, "CustomersV3") if r["dataAreaId"] == DEFAULT_COMPANY)
    fragment = customer["OrganizationName"].split()[0][1:].lower()
    wildcard = read_all(sandbox, "CustomersV3", auth, **{"$filter": f"OrganizationName eq '*{fragment}*'"})
    assert customer["CustomerAccount"] in {r["CustomerAccount"] for r in wildcard}
    assert all(fragment in r["OrganizationName"].lower() for r in wildcard)

    refused = get(sandbox, "Currencies", auth, **{"$filter": "CurrencyCode in ('EUR')"})
    assert refused.status_code == 400
    assert "not supported" in refused.json()["error"]["message"]
    unknown = get(sandbox, "Currencies", auth, **{"$filter": "Nope eq 1"})
    assert unknown.status_code == 400 and "Nope" in unknown.json()["error"]["message"]


# -- writes ---------------------------------------------------------------------------------------


def test_create_read_by_key_and_patch(sandbox: RunningSandbox, auth: dict[str, str]) -> None:
    new = {"CustomerAccount": "US-90001", "OrganizationName": "Quill & Ink LLC", "CustomerGroupId": "PSCUST",
           "SalesCurrencyCode": "USD"}
    created = requests.post(f"{sandbox.url}/data/CustomersV3", headers=auth, json=new, timeout=30)
    assert created.status_code == 201
    assert created.json()["dataAreaId"] == DEFAULT_COMPANY  # the user's default company
    key_url = f"{sandbox.url}/data/CustomersV3(dataAreaId='{DEFAULT_COMPANY}',CustomerAccount='US-90001')"
    assert created.headers["Location"] == key_url

    patched = requests.patch(key_url, headers=auth, json={"OrganizationName": "Quill and Ink LLC"}, timeout=30)
    assert patched.status_code == 204 and not patched.content
    read = requests.get(key_url, headers=auth, timeout=30).json()
    assert read["OrganizationName"] == "Quill and Ink LLC"
    assert read["@odata.context"].endswith("#CustomersV3/$entity")

    duplicate = requests.post(f"{sandbox.url}/data/CustomersV3", headers=auth, json=new, timeout=30)
    assert duplicate.status_code == 400
    error = duplicate.json()["error"]
    assert set(error) == {"code", "message", "innererror"}
    assert "CustCustomerV3Entity" in error["innererror"]["message"]
    assert "already exists" in error["innererror"]["message"]

    missing_group = requests.post(f"{sandbox.url}/data/CustomersV3", headers=auth,
                                  json={"CustomerAccount": "US-90002", "OrganizationName": "No Group"}, timeout=30)
    assert missing_group.status_code == 400 and "CustomerGroupId" in missing_group.text
    partial_key = requests.get(f"{sandbox.url}/data/CustomersV3(CustomerAccount='US-90001')", headers=auth, timeout=30)
    assert partial_key.status_code == 400


def _batch(changesets: list[list[tuple[str, str, dict[str, Any]]]]) -> tuple[str, bytes]:
    """A ``multipart/mixed`` $batch body: one change set per list of (method, url, json)."""
    batch = f"batch_{uuid.uuid4()}"
    lines = []
    for operations in changesets:
        changeset = f"changeset_{uuid.uuid4()}"
        lines += [f"--{batch}", f"Content-Type: multipart/mixed; boundary={changeset}", ""]
        for number, (method, url, body) in enumerate(operations, start=1):
            lines += [f"--{changeset}", "Content-Type: application/http", "Content-Transfer-Encoding: binary",
                      f"Content-ID: {number}", "", f"{method} {url} HTTP/1.1",
                      "Content-Type: application/json; type=entry", "", json.dumps(body)]
        lines.append(f"--{changeset}--")
    lines.append(f"--{batch}--")
    return f"multipart/mixed; boundary={batch}", "\r\n".join(lines).encode()


def _invoice(sandbox: RunningSandbox, reference: str, project: str, lines: list[dict[str, Any]]
             ) -> list[tuple[str, str, dict[str, Any]]]:
    customer = next(p["CustomerAccount"] for p in stored(sandbox, "Projects") if p["ProjectID"] == project)
    header = {"CustomerAccount": customer, "ExternalInvoiceId": reference, "CustomerReference": reference}
    return [("POST", f"{sandbox.url}/data/FreeTextInvoiceHeaders", header),
            *(("POST", "$1/CustFreeTextInvoiceHeader", line) for line in lines)]


def test_batch_change_set_creates_header_and_lines_together(sandbox: RunningSandbox, auth: dict[str, str]) -> None:
    project = next(p["ProjectID"] for p in stored(sandbox, "Projects") if p["dataAreaId"] == DEFAULT_COMPANY)
    lines = [{"Description": "Consultant 7.25 h", "Quantity": 7.25, "UnitPrice": 170, "ProjectId": project},
             {"Description": "Travel", "Quantity": 1, "UnitPrice": 412.37, "ProjectId": project}]
    content_type, body = _batch([_invoice(sandbox, "psp:inv:test:ok", project, lines)])
    response = requests.post(f"{sandbox.url}/data/$batch", headers={**auth, "Content-Type": content_type},
                             data=body, timeout=30)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("multipart/mixed; boundary=batchresponse_")
    assert response.text.count("HTTP/1.1 201 Created") == 3

    headers = read_all(sandbox, "FreeTextInvoiceHeaders", auth, **{"$filter": "ExternalInvoiceId eq 'psp:inv:test:ok'"})
    assert len(headers) == 1 and headers[0]["IsPosted"] == "No"
    recid = headers[0]["InvoiceIdentifier"]
    created = read_all(sandbox, "FreeTextInvoiceLines", auth, **{"$filter": f"ParentRecId eq {recid}",
                                                                   "$orderby": "LineNumber"})
    assert [Decimal(str(line["TransactionCurrencyAmount"])) for line in created] == \
        [Decimal("1232.50"), Decimal("412.37")]
    assert [line["LineNumber"] for line in created] == [1, 2]


def test_batch_change_set_is_all_or_nothing(sandbox: RunningSandbox, auth: dict[str, str]) -> None:
    project = next(p["ProjectID"] for p in stored(sandbox, "Projects") if p["dataAreaId"] == DEFAULT_COMPANY)
    headers_before = len(stored(sandbox, "FreeTextInvoiceHeaders"))
    lines_before = len(stored(sandbox, "FreeTextInvoiceLines"))
    lines = [{"Description": "Good line", "Quantity": 2, "UnitPrice": 100, "ProjectId": project},
             {"Description": "Bad project", "Quantity": 1, "UnitPrice": 50, "ProjectId": "PRJ-NOPE"}]
    content_type, body = _batch([_invoice(sandbox, "psp:inv:test:bad", project, lines)])
    response = requests.post(f"{sandbox.url}/data/$batch", headers={**auth, "Content-Type": content_type},
                             data=body, timeout=30)
    assert response.status_code == 200
    assert "HTTP/1.1 201" not in response.text  # a failed change set answers its one failure
    assert "HTTP/1.1 400 Bad Request" in response.text and "PRJ-NOPE" in response.text
    assert len(stored(sandbox, "FreeTextInvoiceHeaders")) == headers_before
    assert len(stored(sandbox, "FreeTextInvoiceLines")) == lines_before
    found = read_all(sandbox, "FreeTextInvoiceHeaders", auth, **{"$filter": "ExternalInvoiceId eq 'psp:inv:test:bad'"})
    assert found == []


# -- service protection and faults ---------------------------------------------------------------------


def test_requests_over_the_user_limit_answer_429_with_retry_after(sandbox: RunningSandbox,
                                                                 auth: dict[str, str]) -> None:
    sandbox.control("PUT", "limits", {"d365_requests_per_5_minutes": 3})
    statuses = [get(sandbox, "Currencies", auth) for _ in range(5)]
    refused = [r for r in statuses if r.status_code == 429]
    assert refused, [r.status_code for r in statuses]
    assert int(refused[0].headers["Retry-After"]) >= 1
    assert refused[0].json()["error"]["message"] == \
        "Number of requests exeeded the limit of 3 over the time window of 300 seconds."


def test_injected_faults_answer_in_odata_shape_and_drop_after_write(sandbox: RunningSandbox,
                                                                    auth: dict[str, str]) -> None:
    sandbox.control("PUT", "faults/d365", {"queue": [{"kind": "429", "retry_after": 7}, {"kind": "503"}]})
    throttled = get(sandbox, "Currencies", auth)
    assert throttled.status_code == 429 and throttled.headers["Retry-After"] == "7"
    assert "error" in throttled.json()
    assert get(sandbox, "Currencies", auth).status_code == 503
    assert get(sandbox, "Currencies", auth).status_code == 200

    # A lost response: the create is committed, the client hears nothing, and finds it by looking.
    sandbox.control("PUT", "faults/d365", {"method": "POST", "queue": [{"kind": "drop", "after": True}]})
    new = {"CustomerAccount": "US-90009", "OrganizationName": "Lost Answer Ltd", "CustomerGroupId": "PSCUST"}
    with pytest.raises(requests.ConnectionError):
        requests.post(f"{sandbox.url}/data/CustomersV3", headers=auth, json=new, timeout=30)
    found = read_all(sandbox, "CustomersV3", auth, **{"$filter": "CustomerAccount eq 'US-90009'"})
    assert [r["OrganizationName"] for r in found] == ["Lost Answer Ltd"]


# -- business events ---------------------------------------------------------------------------------


def test_posting_event_posts_free_text_invoices_into_the_journal(sandbox: RunningSandbox,
                                                                 auth: dict[str, str]) -> None:
    project = next(p for p in stored(sandbox, "Projects") if p["dataAreaId"] == DEFAULT_COMPANY)
    header = {"CustomerAccount": project["CustomerAccount"], "ExternalInvoiceId": "psp:inv:test:post"}
    created = requests.post(f"{sandbox.url}/data/FreeTextInvoiceHeaders", headers=auth, json=header, timeout=30)
    assert created.status_code == 201
    recid = created.json()["InvoiceIdentifier"]
    line_url = f"{created.headers['Location']}/CustFreeTextInvoiceHeader"
    for quantity, price in (("3.5", "210.00"), ("1", "99.99")):
        line = {"Description": "Work", "Quantity": quantity, "UnitPrice": price, "ProjectId": project["ProjectID"]}
        assert requests.post(line_url, headers=auth, json=line, timeout=30).status_code == 201

    posted = sandbox.control("POST", "events/d365-post-invoices", {"invoice_identifiers": [recid]})["posted"]
    assert [p["InvoiceIdentifier"] for p in posted] == [recid]
    number = posted[0]["InvoiceId"]

    key = f"FreeTextInvoiceHeaders(dataAreaId='{DEFAULT_COMPANY}',InvoiceIdentifier={recid})"
    after = get(sandbox, key, auth).json()
    assert (after["IsPosted"], after["InvoiceId"]) == ("Yes", number)
    journal = read_all(sandbox, "SalesInvoiceHeadersV2", auth, **{"$filter": f"InvoiceNumber eq '{number}'"})
    assert Decimal(str(journal[0]["TotalInvoiceAmount"])) == Decimal("735.00") + Decimal("99.99")
    journal_lines = read_all(sandbox, "SalesInvoiceLines", auth, **{"$filter": f"InvoiceNumber eq '{number}'"})
    assert sorted(Decimal(str(line["LineAmount"])) for line in journal_lines) == [Decimal("99.99"), Decimal("735.00")]

    refused = requests.post(line_url, headers=auth, json={"Description": "Late", "UnitPrice": 1}, timeout=30)
    assert refused.status_code == 400 and "posted" in refused.json()["error"]["innererror"]["message"]


def test_touch_changes_values_of_entities_without_a_modified_timestamp(sandbox: RunningSandbox,
                                                                      auth: dict[str, str]) -> None:
    before = {r["CustomerAccount"]: r.get("PaymentTerms") for r in stored(sandbox, "CustomersV3")}
    touched = sandbox.control("POST", "events/touch", {"platform": "d365", "object": "CustomersV3", "count": 2})
    assert touched["touched"] == 2
    after = {r["CustomerAccount"]: r["PaymentTerms"] for r in read_all(sandbox, "CustomersV3", auth,
                                                                       **{"cross-company": "true"})}
    assert sum(after[account] != (terms or "") for account, terms in before.items()) == 2


def test_count_segment_metadata_and_keys_of_every_kind(sandbox: RunningSandbox, auth: dict[str, str]) -> None:
    rates = stored(sandbox, "ExchangeRates")
    assert get(sandbox, "ExchangeRates/$count", auth).text == str(len(rates))
    gbp = sum(r["FromCurrency"] == "GBP" for r in rates)
    assert get(sandbox, "ExchangeRates/$count", auth, **{"$filter": "FromCurrency eq 'GBP'"}).text == str(gbp)

    metadata = get(sandbox, "$metadata", auth)
    assert metadata.headers["Content-Type"].startswith("application/xml")
    assert '<EntitySet Name="FreeTextInvoiceHeaders"' in metadata.text

    rate = rates[-1]
    by_key = get(sandbox, f"ExchangeRates(RateTypeName='{rate['RateTypeName']}',FromCurrency='{rate['FromCurrency']}',"
                          f"ToCurrency='{rate['ToCurrency']}',StartDate={rate['StartDate']})", auth)
    assert by_key.status_code == 200 and Decimal(str(by_key.json()["Rate"])) == Decimal(str(rate["Rate"]))
    assert get(sandbox, "Currencies('EUR')", auth).json()["CurrencyCode"] == "EUR"

    line = stored(sandbox, "FreeTextInvoiceLines")[0]
    line_url = (f"FreeTextInvoiceLines(dataAreaId='{line['dataAreaId']}',LineNumber={line['LineNumber']},"
                f"ParentRecId={line['ParentRecId']})")
    assert get(sandbox, line_url, auth).json()["Description"] == line["Description"]
    assert get(sandbox, "Currencies('XXX')", auth).status_code == 404


def test_writes_check_company_and_patch_null_clears(sandbox: RunningSandbox, auth: dict[str, str]) -> None:
    nowhere = requests.post(f"{sandbox.url}/data/CustomersV3", headers=auth, timeout=30, json={
        "dataAreaId": "zzzz", "CustomerAccount": "ZZ-1", "OrganizationName": "Nowhere", "CustomerGroupId": "PSCUST"})
    assert nowhere.status_code == 400 and "zzzz" in nowhere.text

    customer = next(r for r in stored(sandbox, "CustomersV3") if r["dataAreaId"] == DEFAULT_COMPANY)
    account = customer["CustomerAccount"]
    url = f"{sandbox.url}/data/CustomersV3(dataAreaId='{DEFAULT_COMPANY}',CustomerAccount='{account}')"
    assert requests.patch(url, headers=auth, json={"KnownAs": "Bramble"}, timeout=30).status_code == 204
    assert requests.get(url, headers=auth, timeout=30).json()["KnownAs"] == "Bramble"
    assert requests.patch(url, headers=auth, json={"KnownAs": None}, timeout=30).status_code == 204
    assert requests.get(url, headers=auth, timeout=30).json()["KnownAs"] == ""
    renamed_key = requests.patch(url, headers=auth, json={"CustomerAccount": "US-77777"}, timeout=30)
    assert renamed_key.status_code == 400


def test_server_pages_hold_at_most_ten_thousand(sandbox: RunningSandbox, auth: dict[str, str]) -> None:
    entity = catalog.ENTITY_SETS["ExchangeRates"]
    start = date(1990, 1, 1)
    extra = []
    for n in range(10_050):
        body = {"RateTypeName": "Budget", "FromCurrency": "GBP", "ToCurrency": "USD",
                "StartDate": d365_data.wire_date(start + timedelta(days=n)), "Rate": 125, "ConversionFactor": "Hundred"}
        extra.append((d365_data.store_id(entity, body), sandbox.ctx.store.now(), body))
    sandbox.ctx.store.put_many("d365", "ExchangeRates", extra)
    params = {"$filter": "RateTypeName eq 'Budget'"}
    first = get(sandbox, "ExchangeRates", {**auth, "Prefer": "odata.maxpagesize=50000"}, **params)
    assert first.headers["Preference-Applied"] == "odata.maxpagesize=10000"
    body = first.json()
    assert len(body["value"]) == 10_000
    rest = requests.get(body["@odata.nextLink"], headers=auth, timeout=30).json()
    assert len(rest["value"]) == 50 and "@odata.nextLink" not in rest
